"""One JSON error envelope for every error: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)


class ApiError(web.HTTPException):
    """An error answered with the envelope; raise it from handlers."""

    def __init__(self, status: int, code: str, message: str,
                 details: dict[str, Any] | None = None) -> None:
        self.status_code = status
        super().__init__(
            text=json.dumps({"error": {"code": code, "message": message,
                                       "details": details or {}}}, ensure_ascii=False),
            content_type="application/json")


def envelope(status: int, code: str, message: str,
             details: dict[str, Any] | None = None) -> web.Response:
    """An error response in the envelope."""
    return web.json_response(
        {"error": {"code": code, "message": message, "details": details or {}}},
        status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Map every failure to the envelope; never leak internals in a 500."""
    try:
        return await handler(request)
    except ApiError:
        raise
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            exc.status, "http_error")
        return envelope(exc.status, code, exc.reason)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return envelope(500, "internal_error", "internal server error")
