"""Cacheable JSON responses: strong ETag, 304, Last-Modified, Cache-Control, CORS, gzip."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timezone
from email.utils import format_datetime
from functools import lru_cache
from typing import Any

from aiohttp import hdrs, web
from multidict import CIMultiDict, CIMultiDictProxy, istr

STALE_WHILE_REVALIDATE = 300
"""Seconds a cache may serve a stale copy while it fetches a fresh one."""


def _dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def etag_of(body: bytes) -> str:
    """A strong ETag: a hash of the exact bytes."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def matches(request: web.Request, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (or ``*``)."""
    header = request.headers.get("If-None-Match")
    return bool(header) and _names(header, etag)


def _names(header: str, etag: str) -> bool:
    """Whether an ``If-None-Match`` value names ``etag`` (or is ``*``)."""
    return header.strip() == "*" or etag in (t.strip() for t in header.split(","))


# Header values are cached: they repeat for every request of a snapshot (a hot path).
@lru_cache(maxsize=256)
def http_date(when: datetime) -> str:
    """``when`` as an HTTP date (IMF-fixdate, GMT)."""
    return format_datetime(when.astimezone(timezone.utc), usegmt=True)


@lru_cache(maxsize=4096)
def cache_control(max_age: int) -> str:
    """The Cache-Control value of a public response fresh for ``max_age`` seconds."""
    return (f"public, max-age={max(max_age, 0)}, "
            f"stale-while-revalidate={STALE_WHILE_REVALIDATE}")


@lru_cache(maxsize=64)
def _fixed_headers(etag: str, max_age: int, modified: datetime | None,
                   encoding: str | None) -> CIMultiDictProxy[str]:
    """The headers of a 200 answer, built once per (validator, age, encoding)."""
    headers = CIMultiDict(_headers(etag, max_age, modified))
    headers[hdrs.CONTENT_TYPE] = "application/json; charset=utf-8"
    if encoding:
        headers[hdrs.CONTENT_ENCODING] = encoding
    return CIMultiDictProxy(headers)


def _headers(etag: str, max_age: int, modified: datetime | None) -> dict[istr, str]:
    # aiohttp's istr names: their case-folded form is computed once, not per response.
    headers = {hdrs.ETAG: etag, hdrs.CACHE_CONTROL: cache_control(max_age),
               hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: "*", hdrs.VARY: "Accept-Encoding"}
    if modified is not None:
        headers[hdrs.LAST_MODIFIED] = http_date(modified)
    return headers


def cache_headers(resp: web.StreamResponse, etag: str, max_age: int,
                  modified: datetime | None = None) -> None:
    """Headers every public GET carries."""
    resp.headers.update(_headers(etag, max_age, modified))


def respond(request: web.Request, body: bytes, etag: str, max_age: int,
            modified: datetime | None = None) -> web.Response:
    """200 with the body (gzip-compressed when accepted and worth it), or 304 when the
    client already has it."""
    if matches(request, etag):
        return web.Response(status=304, headers=_headers(etag, max_age, modified))
    resp = web.Response(body=body, headers=_fixed_headers(etag, max_age, modified, None))
    if len(body) > 1024 and "gzip" in request.headers.get(hdrs.ACCEPT_ENCODING, ""):
        resp.enable_compression()
    return resp


class Prepared:
    """A body answered many times as is (the ``/now`` snapshot), with its gzip copy and both
    representations' strong ETags made once; the header sets come from ``_fixed_headers``.

    ``expires_at`` is when the next publication is expected: ``max-age`` counts down to it.
    """

    __slots__ = ("_etags", "_expires", "body", "etag", "gzipped", "modified")

    def __init__(self, body: bytes, etag: str, modified: datetime, expires_at: datetime,
                 gzipped: bytes) -> None:
        self.body, self.etag, self.gzipped, self.modified = body, etag, gzipped, modified
        self._etags = (etag, gzip_etag(etag))
        self._expires = expires_at.timestamp()

    def respond(self, request: web.Request) -> web.Response:
        """200 with the representation the client accepts, or 304 when it holds either."""
        headers = request.headers
        max_age = int(self._expires - time.time())
        if max_age < 0:
            max_age = 0
        gz = "gzip" in headers.get(hdrs.ACCEPT_ENCODING, "")
        held = headers.get(hdrs.IF_NONE_MATCH)
        if held and any(_names(held, tag) for tag in self._etags):
            return web.Response(status=304,
                                headers=_headers(self._etags[gz], max_age, self.modified))
        return web.Response(body=self.gzipped if gz else self.body, headers=_fixed_headers(
            self._etags[gz], max_age, self.modified, "gzip" if gz else None))


def gzip_etag(etag: str) -> str:
    """The strong ETag of the gzip-encoded representation of ``etag``'s body."""
    return etag[:-1] + '-gzip"'


def json_response(request: web.Request, data: Any, max_age: int,
                  modified: datetime | None = None) -> web.Response:
    """Serialise ``data`` and answer it conditionally."""
    body = _dumps(data)
    return respond(request, body, etag_of(body), max_age, modified)


def seconds_until(when: datetime) -> int:
    """Whole seconds from now until ``when`` (0 if past)."""
    return max(int(when.timestamp() - time.time()), 0)
