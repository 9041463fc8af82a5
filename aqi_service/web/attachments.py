"""Attachments over HTTP: multipart upload (admin) and download (public).

Uploads stream to disk in chunks (memory stays bounded; 413 past the limit, checked on
Content-Length first and again while reading), are typed by their bytes against an
allow-list (415 when the bytes, the declared type and the extension disagree), and are
kept under generated names. A file is public once a published record version, penalty or
EIA stage links it; before, only tokens that may upload can fetch it. Downloads carry
``Content-Disposition: attachment`` with the UTF-8 name (RFC 6266/5987),
``X-Content-Type-Options: nosniff`` and a CSP that forbids everything
(``default-src 'none'; sandbox``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from aqi_service.disclosure import tokens, uploads
from aqi_service.disclosure.files import CHUNK, TooLarge, keep_upload
from aqi_service.storage import disclosure as store
from aqi_service.web import keys, ranges
from aqi_service.web.admin_auth import actor_of, requires
from aqi_service.web.errors import ApiError

MULTIPART_OVERHEAD = 64 * 1024
"""Room for the multipart framing around the file in Content-Length."""
MALFORMED = (ValueError, AssertionError, HttpProcessingError)
"""What aiohttp's multipart reader raises on a broken body."""
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def _upload_error(exc: uploads.UploadError) -> ApiError:
    return ApiError(exc.status, exc.code, str(exc), exc.details or None)


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK):
        yield chunk


UPLOAD_SCOPES = ("disclosures:write", "eia:write", "penalties:write", "enterprises:write")


@requires(*UPLOAD_SCOPES)
async def upload(request: web.Request) -> web.Response:
    """``POST /api/v1/admin/attachments``: one multipart part named ``file``."""
    files = request.app[keys.ATTACHMENTS]
    length = request.content_length
    if length is not None and length > files.max_bytes + MULTIPART_OVERHEAD:
        raise ApiError(413, "too_large", f"the file is larger than {files.max_bytes} bytes",
                       {"limit_bytes": files.max_bytes})
    if not request.content_type.startswith("multipart/form-data"):
        raise ApiError(415, "unsupported_type", "send multipart/form-data with a part 'file'")
    try:
        reader = await request.multipart()
        part = await reader.next()
        is_sample = False
        while isinstance(part, BodyPartReader) and part.name == "is_sample":
            is_sample = (await part.text()).strip().lower() == "true"
            part = await reader.next()
    except MALFORMED as exc:
        raise ApiError(400, "bad_multipart", "malformed multipart body") from exc
    if not isinstance(part, BodyPartReader) or part.name != "file":
        raise ApiError(400, "bad_multipart", "the body needs one part named 'file'")
    try:
        received = await files.receive(_chunks(part))
    except TooLarge as exc:
        raise ApiError(413, "too_large", str(exc), {"limit_bytes": files.max_bytes}) from None
    except MALFORMED as exc:
        raise ApiError(400, "bad_multipart", "malformed multipart body") from exc
    try:
        try:
            if await reader.next() is not None:
                raise ApiError(400, "bad_multipart", "send one file per request")
        except MALFORMED as exc:
            raise ApiError(400, "bad_multipart", "malformed multipart body") from exc
        if received.size == 0:
            raise ApiError(400, "empty_file", "the file is empty")
    except BaseException:
        files.discard(received)
        raise
    declared = part.headers.get("Content-Type")
    async with request.app[keys.POOL].acquire() as conn:
        try:
            doc = await keep_upload(conn, files, received, part.filename or "", declared,
                                    actor_of(request), is_sample=is_sample)
        except uploads.UploadError as exc:
            raise _upload_error(exc) from None
    return web.json_response(doc, status=201,
                             headers={"Location": doc["url"]})


async def download(request: web.Request) -> web.StreamResponse:
    """``GET /api/v1/attachments/{id}``: the file, as an attachment, never rendered.

    Public once something published links it; before that only to a token that may
    upload (the others get the same 404 as for an unknown id, so ids found in a log or a
    shared draft reveal nothing).
    """
    try:
        attachment_id = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise ApiError(404, "not_found", "no such attachment") from None
    async with request.app[keys.POOL].acquire() as conn:
        row = await store.get_attachment(conn, attachment_id)
        linked = row is not None and await store.attachment_is_linked(conn, attachment_id)
    if row is None or (not linked and not await _may_see_drafts(request)):
        raise ApiError(404, "not_found", "no such attachment")
    path = request.app[keys.ATTACHMENTS].path_of(row["storage_name"])
    if not path.is_file():
        raise ApiError(404, "not_found", "the attachment's file is missing")
    headers = {
        **SECURITY_HEADERS,
        "Content-Type": row["content_type"],
        "Content-Disposition": uploads.content_disposition(row["filename"]),
        "X-Content-SHA256": row["sha256"],
        "Cache-Control": "public, max-age=86400, immutable" if linked
                         else "private, no-store",
    }
    return ranges.FileResponse(path, headers=headers)


async def _may_see_drafts(request: web.Request) -> bool:
    """Whether the request carries a token that may upload (401/429 for a bad token)."""
    if "Authorization" not in request.headers:
        return False
    principal = await request.app[keys.ADMIN_GUARD].authenticate(request)
    return tokens.grants(principal.scopes, UPLOAD_SCOPES)
