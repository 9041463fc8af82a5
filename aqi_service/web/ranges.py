"""Range requests made conditional the way RFC 9110 §13.1.5 says (``If-Range``).

aiohttp's ``FileResponse`` reads ``If-Range`` only as a date and treats a date *before*
the file's modification as a match: an entity tag (the usual validator) or a wrong date is
ignored and the range is served anyway, so a client resuming a download of a file that
changed glues two versions together. Here, when a request has both ``Range`` and
``If-Range``, the range is served only if the validator matches the current one: an entity
tag by strong comparison (neither weak, same opaque tag), or an HTTP-date equal to
``Last-Modified``; a date is a strong validator here because the files served are
written once (attachments under new random names, static files shipped with a release;
§8.8.2.2). Otherwise ``Range`` is ignored and the whole representation is answered 200.

:class:`FileResponse` is used for attachments, :class:`StaticResource` for ``/static/``.
The monthly bulk files answer whole bodies only (no ``Accept-Ranges``), so ``If-Range``
does not concern them.
"""

from __future__ import annotations

import math
import os
from email.utils import parsedate_to_datetime
from pathlib import Path

from aiohttp import hdrs, web

CONDITIONAL = (hdrs.RANGE, hdrs.IF_RANGE)


def file_validators(stat: os.stat_result) -> tuple[str, int]:
    """The ETag (quoted, as aiohttp's ``FileResponse`` makes it) and the Last-Modified
    second (aiohttp rounds the modification time up) of a file."""
    return f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"', math.ceil(stat.st_mtime)


def if_range_matches(value: str, etag: str, last_modified: int) -> bool:
    """Whether an ``If-Range`` value matches the current ETag / Last-Modified (§13.1.5)."""
    value = value.strip()
    if value.startswith(("W/", "w/")):
        return False    # a weak tag never matches: the client must not send one
    if value.startswith('"'):
        return value == etag and not etag.startswith("W/")
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return False
    return when.tzinfo is not None and int(when.timestamp()) == last_modified


class FileResponse(web.FileResponse):
    """aiohttp's file answer, with ``If-Range`` evaluated by RFC 9110."""

    async def prepare(self, request: web.BaseRequest):  # type: ignore[no-untyped-def]
        """Drop ``Range`` when ``If-Range`` does not match; then answer as aiohttp does."""
        if_range = request.headers.get(hdrs.IF_RANGE)
        if if_range is not None and hdrs.RANGE in request.headers:
            try:
                etag, modified = file_validators(os.stat(self._path))
            except OSError:
                etag, modified = "", -1   # aiohttp answers the missing file itself
            if not if_range_matches(if_range, etag, modified):
                headers = request.headers.copy()
                for name in CONDITIONAL:
                    headers.popall(name, None)
                request = request.clone(headers=headers)
        return await super().prepare(request)


class StaticResource(web.StaticResource):
    """``/static/`` files answered by :class:`FileResponse`."""

    def _resolve_path_to_response(self, unresolved_path: Path) -> web.StreamResponse:
        resp = super()._resolve_path_to_response(unresolved_path)
        if type(resp) is web.FileResponse:
            return FileResponse(resp._path, chunk_size=self._chunk_size)
        return resp


def add_static(app: web.Application, prefix: str, path: Path, name: str) -> None:
    """``router.add_static`` (with ``append_version``) made of :class:`StaticResource`."""
    app.router.register_resource(StaticResource(prefix.rstrip("/"), path, name=name,
                                                append_version=True))
