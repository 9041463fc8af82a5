"""Error answers: one JSON envelope for the API, one HTML error page for the pages.

The API answers ``{"error": {"code", "message", "details"}}``; the pages answer
``error.html`` (the site's layout, zh/en by the page language, a link back). A database
outage answers 503 with ``Retry-After`` (code ``database_unavailable`` on the API).

No middleware does this (each one costs every request, ``/api/v1/now`` included): handlers
that read the database are wrapped when their routes are registered (:func:`json_route`,
and the pages' own wrappers call :func:`outage_page`), and the answers aiohttp makes itself
(unknown path, wrong method, a body too large, the 500 of an unhandled exception) are
rewritten in ``on_response_prepare`` (:func:`envelope_errors`).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

RETRY_AFTER_S = 10
"""Seconds a client is asked to wait during a database outage (the pool reconnects at once
when the database is back; the snapshot keeps /now, the widget and cached pages served)."""
OUTAGE_LOG_EVERY_S = 10.0
"""At most one log line per this many seconds during an outage (with the count in between)."""


class ApiError(web.HTTPException):
    """An error answered with the envelope; raise it from handlers."""

    def __init__(self, status: int, code: str, message: str,
                 details: dict[str, Any] | None = None) -> None:
        self.status_code = status
        super().__init__(text=_body(code, message, details), content_type="application/json")


def _body(code: str, message: str, details: dict[str, Any] | None = None) -> str:
    return json.dumps({"error": {"code": code, "message": message, "details": details or {}}},
                      ensure_ascii=False)


# -- database outages ------------------------------------------------------------------------

DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)
"""What a lost database may raise; :func:`database_unavailable` decides among them."""


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached (rather than a bug or bad data).

    Connection errors (SQLSTATE class 08), operator intervention (57: shutdown, terminated
    sessions, a server starting up, cancelled statements), insufficient resources (53: too
    many connections), a database refusing connections (``ALLOW_CONNECTIONS false``), a
    closed connection or one whose protocol a terminated session left confused, and socket
    errors or timeouts raised inside asyncpg (refused, reset, the pool's acquire).
    """
    if isinstance(exc, (asyncpg.PostgresConnectionError, asyncpg.OperatorInterventionError,
                        asyncpg.InsufficientResourcesError)):
        return True
    if isinstance(exc, asyncpg.ObjectNotInPrerequisiteStateError):
        return "not currently accepting connections" in str(exc)
    if isinstance(exc, asyncpg.InternalClientError):
        return True   # the protocol of a connection whose server session was terminated
    if isinstance(exc, asyncpg.InterfaceError):
        return "connection" in str(exc) and "closed" in str(exc)
    if isinstance(exc, OSError):
        return _raised_in_asyncpg(exc)
    return False


def _raised_in_asyncpg(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").startswith("asyncpg"):
            return True
        tb = tb.tb_next
    return False


class _OutageLog:
    """One warning per ``OUTAGE_LOG_EVERY_S`` with the number of refused requests."""

    def __init__(self) -> None:
        self.last = 0.0
        self.refused = 0

    def note(self, request: web.BaseRequest, exc: BaseException) -> None:
        self.refused += 1
        now = time.monotonic()
        if now - self.last >= OUTAGE_LOG_EVERY_S:
            log.warning("database unavailable (%s: %s): answering 503 (%d request(s) since "
                        "the last line, now %s %s)", type(exc).__name__, str(exc)[:200],
                        self.refused, request.method, request.path)
            self.last = now
            self.refused = 0


_outages = _OutageLog()


def unavailable(request: web.BaseRequest, exc: BaseException) -> ApiError:
    """The 503 envelope of a database outage (logged, at most once per interval)."""
    _outages.note(request, exc)
    err = ApiError(503, "database_unavailable",
                   "the database is unavailable; retry shortly",
                   {"retry_after_s": RETRY_AFTER_S})
    err.headers["Retry-After"] = str(RETRY_AFTER_S)
    return err


def json_route(handler: Handler) -> Handler:
    """``handler`` answering a database outage with the 503 envelope (for route registration;
    attributes such as an admin handler's scopes are kept)."""
    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except DATABASE_ERRORS as exc:
            if not database_unavailable(exc):
                raise
            raise unavailable(request, exc) from None
    return guarded


# -- HTML error pages ------------------------------------------------------------------------

_PAGE_MESSAGES: dict[int, tuple[str, str]] = {
    404: ("没有这个页面。", "There is no such page."),
    405: ("这个页面不接受这种请求方法。", "This page does not accept this request method."),
    413: ("请求内容过大。", "The request is too large."),
    500: ("服务器出错，已记录。请稍后再试。", "A server error occurred and was logged. Please "
          "try again later."),
    503: ("数据库暂时无法访问，请稍后再试。实时数据概况仍可查看。",
          "The database is temporarily unavailable; please try again shortly. The overview "
          "of the latest hour is still served."),
}


def html_error(request: web.BaseRequest, status: int, message_zh: str | None = None,
               message_en: str | None = None) -> web.Response:
    """The HTML error page (the site's layout, the page's language, a way back)."""
    from aqi_service.web import templating

    zh, en = _PAGE_MESSAGES.get(status, ("请求有误。", "Bad request."))
    body = templating.render_string("error.html", request, {  # type: ignore[arg-type]
        "status": status, "message_zh": message_zh or zh, "message_en": message_en or en})
    resp = templating.html_response(request, body, templating.ERROR_MAX_AGE,  # type: ignore[arg-type]
                                    status=status)
    if status == 503:
        resp.headers["Retry-After"] = str(RETRY_AFTER_S)
        resp.headers["Cache-Control"] = "no-store"
    return resp


def outage_page(request: web.Request, exc: BaseException) -> web.Response | None:
    """The HTML 503 page when ``exc`` is a database outage (None otherwise)."""
    if not database_unavailable(exc):
        return None
    _outages.note(request, exc)
    return html_error(request, 503)


API_PREFIXES = ("/api/", "/healthz", "/readyz", "/metrics")
"""Paths answered in JSON (or text) even for errors; every other path is a page."""


def is_page_path(path: str) -> bool:
    """Whether an error at ``path`` is answered with the HTML error page."""
    return not path.startswith(API_PREFIXES) and not path.endswith((".atom", ".js"))


ERROR_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
               413: "too_large", 500: "internal_error", 504: "timeout"}


async def envelope_errors(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """``on_response_prepare``: aiohttp's own error answers become the envelope, or on the
    pages' paths the HTML error page.

    Those are the router's (unknown path, wrong method), the server's limits (a body too
    large), an ``HTTPException`` a handler let through, and the 500 of an unhandled
    exception (which aiohttp has logged with its traceback; the answer names nothing
    internal). Answers already in JSON (``ApiError``) and the HTML error pages that handlers
    render themselves are left alone. Done here rather than in a middleware, which would
    cost every request a layer; a success returns at the first comparison.
    """
    status = response.status
    if status < 400 or response.content_type == "application/json":
        return
    if not isinstance(response, web.HTTPException) and (
            status != 500 or response.content_type == "text/html"):
        return   # a handler's own answer (the pages' error pages among them)
    if not isinstance(response, web.Response):
        return
    if is_page_path(request.path):
        page = html_error(request, status)
        assert isinstance(page.body, bytes)
        response.body = page.body
        for name in ("Content-Security-Policy", "X-Content-Type-Options", "Content-Language",
                     "Vary", "Cache-Control"):
            response.headers[name] = page.headers[name]
        response.content_type = "text/html"
    else:
        code = ERROR_CODES.get(status, "http_error")
        message = "internal server error" if status == 500 else (response.reason or code)
        response.body = _body(code, message).encode()
        response.content_type = "application/json"
    response.charset = "utf-8"
    assert isinstance(response.body, bytes)
    response.headers["Content-Length"] = str(len(response.body))  # set already for the old body
