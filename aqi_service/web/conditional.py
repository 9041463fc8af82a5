"""Cacheable JSON responses: strong ETag, 304, Last-Modified, Cache-Control, CORS, gzip."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

from aiohttp import web

STALE_WHILE_REVALIDATE = 300
"""Seconds a cache may serve a stale copy while it fetches a fresh one."""


def _dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def etag_of(body: bytes) -> str:
    """A strong ETag: a hash of the exact bytes."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def matches(request: web.Request, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (or ``*``)."""
    header = request.headers.get("If-None-Match", "")
    return header.strip() == "*" or etag in (t.strip() for t in header.split(","))


def cache_headers(resp: web.StreamResponse, etag: str, max_age: int,
                  modified: datetime | None = None) -> None:
    """Headers every public GET carries."""
    resp.headers["ETag"] = etag
    if modified is not None:
        resp.headers["Last-Modified"] = format_datetime(modified.astimezone(timezone.utc),
                                                        usegmt=True)
    resp.headers["Cache-Control"] = (
        f"public, max-age={max(max_age, 0)}, stale-while-revalidate={STALE_WHILE_REVALIDATE}")
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.headers["Vary"] = "Accept-Encoding"


def respond(request: web.Request, body: bytes, etag: str, max_age: int,
            modified: datetime | None = None) -> web.Response:
    """200 with the body, or 304 when the client already has it."""
    if matches(request, etag):
        resp = web.Response(status=304)
    else:
        resp = web.Response(body=body, content_type="application/json", charset="utf-8")
        if "gzip" in request.headers.get("Accept-Encoding", "") and len(body) > 1024:
            resp.enable_compression()
    cache_headers(resp, etag, max_age, modified)
    return resp


def json_response(request: web.Request, data: Any, max_age: int,
                  modified: datetime | None = None) -> web.Response:
    """Serialise ``data`` and answer it conditionally."""
    body = _dumps(data)
    return respond(request, body, etag_of(body), max_age, modified)


def seconds_until(when: datetime) -> int:
    """Whole seconds from now until ``when`` (0 if past)."""
    return max(int((when - datetime.now(timezone.utc)).total_seconds()), 0)
