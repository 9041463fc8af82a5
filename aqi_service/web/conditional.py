"""Cacheable JSON responses: strong ETag, 304, Last-Modified, Cache-Control, CORS, gzip.

The ``/api/v1/now`` answers are prepared once per second and written as they are
(:class:`Serialized`), which relies on private attributes of aiohttp's ``StreamResponse``
(``FAST_PATH_ATTRIBUTES``). pyproject.toml pins aiohttp to the minor version the tests
cover; :func:`check_fast_path` runs at start-up and, should an aiohttp lack them, the
answers go through aiohttp's ordinary path (logged once; ``aqi_http_fast_path_disabled``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import format_datetime, formatdate
from functools import lru_cache
from typing import Any

from aiohttp import HttpVersion11, hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http import SERVER_SOFTWARE
from multidict import CIMultiDict, CIMultiDictProxy, istr

log = logging.getLogger(__name__)

STALE_WHILE_REVALIDATE = 300
"""Seconds a cache may serve a stale copy while it fetches a fresh one."""
FAST_PATH_ATTRIBUTES = ("_eof_sent", "_payload_writer", "_req", "_keep_alive", "_body_length")
"""The private attributes of ``web.StreamResponse`` that :class:`Serialized` sets."""
fast_path = True
"""Whether ``Prepared`` answers are written as prepared bytes (set by :func:`check_fast_path`)."""
_fallback_logged = False


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


def accepts_gzip(request: web.BaseRequest) -> bool:
    """Whether the client accepts a gzip-coded answer (RFC 9110 §12.5.3)."""
    return _gzip_acceptable(request.headers.get(hdrs.ACCEPT_ENCODING, ""))


@lru_cache(maxsize=256)   # clients send a handful of distinct values
def _gzip_acceptable(header: str) -> bool:
    """``gzip`` (or ``x-gzip``) listed with a weight above 0, or ``*`` with a weight above 0
    and gzip not listed. A weight that is not a number counts as 0."""
    star = False
    for item in header.split(","):
        coding, *parameters = item.split(";")
        coding = coding.strip().lower()
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value.strip())
                except ValueError:
                    weight = 0.0
        if coding in ("gzip", "x-gzip"):
            return weight > 0
        if coding == "*":
            star = weight > 0
    return star


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
    if len(body) > 1024 and accepts_gzip(request):
        resp.enable_compression(web.ContentCoding.gzip)
    return resp


class Serialized(web.StreamResponse):
    """An answer whose status line, headers and body are one prepared ``bytes`` object,
    written to the connection as it is.

    aiohttp's own path builds a header dict per response, serialises it, and (on Python
    before 3.12.9) joins head and body into a new buffer before sending; for ``/now`` that
    was a third of the instructions a request cost. Only ``Prepared`` makes these, and only
    for what needs no per-request decision from aiohttp: HTTP/1.1 ``GET``/``HEAD`` on a
    connection the client keeps open, status 200 or 304. Such an answer skips
    ``on_response_prepare``, whose one receiver (the error envelope) has nothing to do for
    them.
    """

    def __init__(self, status: int, wire: bytes) -> None:
        super().__init__(status=status)
        self._wire = wire
        self._keep_alive = True   # aiohttp reads this after the answer: keep the connection

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self._eof_sent:
            return None
        if self._payload_writer is None:
            self._req = request
            self._payload_writer = request.writer
        return self._payload_writer

    async def write_eof(self, data: bytes = b"") -> None:
        if self._eof_sent:
            return
        writer = self._payload_writer
        assert writer is not None, "prepare() comes first"
        await writer.write_eof(self._wire)   # one transport write, then drain
        self._eof_sent = True
        self._body_length = len(self._wire)
        self._req = None
        self._payload_writer = None


def fast_path_supported() -> bool:
    """Whether this aiohttp keeps the private state :class:`Serialized` sets, with the meaning
    it relies on: the attributes exist, and ``prepared``, ``keep_alive`` and ``body_length``
    read them."""
    probe = web.StreamResponse()
    if not all(hasattr(probe, name) for name in FAST_PATH_ATTRIBUTES):
        return False
    if not isinstance(getattr(web.BaseRequest, "writer", None), property):
        return False
    try:
        probe._keep_alive = True
        probe._body_length = 7
        probe._eof_sent = True
        return probe.prepared and probe.keep_alive is True and probe.body_length == 7
    except (AttributeError, TypeError):
        return False


def check_fast_path() -> bool:
    """Decide (at start-up) whether ``/api/v1/now`` uses the prepared answers; when this
    aiohttp lacks what they need, say so once in the log and use aiohttp's ordinary path."""
    global fast_path, _fallback_logged
    fast_path = fast_path_supported()
    if not fast_path and not _fallback_logged:
        _fallback_logged = True
        import aiohttp

        log.warning("aiohttp %s lacks the response attributes the prepared /api/v1/now "
                    "answers need (%s): serving them through aiohttp's ordinary path",
                    aiohttp.__version__, ", ".join(FAST_PATH_ATTRIBUTES))
    return fast_path


_NOT_MODIFIED = 304
_HEAD = 2
_GZIP = 1


class Prepared:
    """A body answered many times as is (the ``/now`` snapshot), with its gzip copy and both
    representations' strong ETags made once.

    ``expires_at`` is when the next publication is expected: ``max-age`` counts down to it,
    in whole seconds that never overstate it. The complete answers (status line, headers,
    body) are serialised once per second and kind — 200 or 304, identity or gzip, ``GET``
    or ``HEAD`` — and sent as ``Serialized``; any other request (HTTP/1.0, ``Connection:
    close``), or every request when ``fast_path`` is off, gets the same headers through
    aiohttp's usual path.
    """

    __slots__ = ("_etags", "_expires", "_second", "_wires", "body", "etag", "gzipped",
                 "modified")

    def __init__(self, body: bytes, etag: str, modified: datetime, expires_at: datetime,
                 gzipped: bytes) -> None:
        self.body, self.etag, self.gzipped, self.modified = body, etag, gzipped, modified
        self._etags = (etag, gzip_etag(etag))
        self._expires = expires_at.timestamp()
        self._second = -1
        self._wires: dict[int, bytes] = {}

    def respond(self, request: web.BaseRequest) -> web.StreamResponse:
        """200 with the representation the client accepts, or 304 when it holds either."""
        gz = accepts_gzip(request)
        held = request.headers.get(hdrs.IF_NONE_MATCH)
        status = 200
        if held and any(_names(held, tag) for tag in self._etags):
            status = _NOT_MODIFIED
        second = int(time.time())
        method = request.method
        if (fast_path and request.version == HttpVersion11 and request.keep_alive
                and (method == "GET" or method == "HEAD")):
            if second != self._second:
                self._second, self._wires = second, {}
            head = method == "HEAD"
            kind = status + (_GZIP if gz else 0) + (_HEAD if head else 0)
            wire = self._wires.get(kind)
            if wire is None:
                wire = self._wires[kind] = self._serialise(status, gz, head, second)
            return Serialized(status, wire)
        body = None if status == _NOT_MODIFIED else self.gzipped if gz else self.body
        return web.Response(status=status, body=body, headers=self._fields(status, gz, second))

    def _fields(self, status: int, gz: bool, second: int) -> Mapping[istr, str]:
        """The headers of an answer made in ``second`` (but those aiohttp adds itself)."""
        if status == _NOT_MODIFIED:      # no body, so no Content-Type (RFC 9110)
            return _headers(self._etags[gz], self._max_age(second), self.modified)
        return _fixed_headers(self._etags[gz], self._max_age(second), self.modified,
                              "gzip" if gz else None)

    def _max_age(self, second: int) -> int:
        """Whole seconds left until ``expires_at`` at any moment of ``second``."""
        return max(int(self._expires - second) - 1, 0)

    def _serialise(self, status: int, gz: bool, head: bool, second: int) -> bytes:
        """The whole answer on the wire: what aiohttp would send for it, byte for byte but
        for the order of the headers."""
        fields = dict(self._fields(status, gz, second))
        body = self.gzipped if gz else self.body
        if status != _NOT_MODIFIED:      # a 304 has no Content-Length (RFC 9110)
            fields[hdrs.CONTENT_LENGTH] = str(len(body))
        fields[hdrs.DATE] = formatdate(second, usegmt=True)
        fields[hdrs.SERVER] = SERVER_SOFTWARE
        reason = "Not Modified" if status == _NOT_MODIFIED else "OK"
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines.extend(f"{name}: {value}" for name, value in fields.items())
        head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head_bytes if head or status == _NOT_MODIFIED else head_bytes + body


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
