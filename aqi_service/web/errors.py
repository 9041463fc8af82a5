"""One JSON error envelope for every error: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


class ApiError(web.HTTPException):
    """An error answered with the envelope; raise it from handlers."""

    def __init__(self, status: int, code: str, message: str,
                 details: dict[str, Any] | None = None) -> None:
        self.status_code = status
        super().__init__(text=_body(code, message, details), content_type="application/json")


def _body(code: str, message: str, details: dict[str, Any] | None = None) -> str:
    return json.dumps({"error": {"code": code, "message": message, "details": details or {}}},
                      ensure_ascii=False)


ERROR_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
               413: "too_large", 500: "internal_error", 504: "timeout"}


async def envelope_errors(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """``on_response_prepare``: aiohttp's own error answers become the envelope.

    Those are the router's (unknown path, wrong method), the server's limits (a body too
    large), an ``HTTPException`` a handler let through, and the 500 of an unhandled
    exception (which aiohttp has logged with its traceback; the answer names nothing
    internal). Answers already in JSON (``ApiError``) and the HTML error pages that handlers
    render themselves are left alone. Done here rather than in a middleware, which would
    cost every request a layer.
    """
    status = response.status
    if status < 400 or response.content_type == "application/json":
        return
    if not isinstance(response, web.HTTPException) and status < 500:
        return
    if not isinstance(response, web.Response):
        return
    code = ERROR_CODES.get(status, "http_error")
    message = "internal server error" if status == 500 else (response.reason or code)
    body = _body(code, message).encode()
    response.body = body
    response.headers["Content-Length"] = str(len(body))   # set already for the old body
    response.content_type = "application/json"
    response.charset = "utf-8"
