"""The HTTP server: aiohttp's, with the read timeouts it does not have.

aiohttp closes a connection that stays idle ``keepalive_timeout`` seconds, but a client
that sends its request head one byte a second is never idle, and one that stalls in the
middle of a body keeps its handler waiting: a few hundred such clients hold as many
connections for as long as they like (slowloris). :class:`TimedRequestHandler` adds two
deadlines to aiohttp's protocol:

* the **head** (request line and headers) must be complete ``header_timeout_s`` after the
  connection opened, or after the first byte of the next request on a kept-alive one;
  otherwise the server answers 408 (if any byte came) and closes the connection;
* the **body** must be complete ``body_timeout_s`` after its head: otherwise the handler's
  next read raises a 408 :class:`ApiError` (an upload in progress is discarded, like any
  failed one), the answer closes the connection, and a body nobody is reading any more is
  simply cut off.

:func:`run_app` replaces ``aiohttp.web.run_app`` for ``serve``: the same runner, signals and
graceful shutdown, with :class:`TimedServer` making the protocol instances.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from aqi_service.config import HttpConfig
from aqi_service.web.errors import ApiError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReadTimeouts:
    """How long a client may take to send a request head and a request body."""

    header_s: float
    body_s: float

    @classmethod
    def of(cls, http: HttpConfig) -> ReadTimeouts:
        """The timeouts of ``[http]``."""
        return cls(http.header_timeout_s, http.body_timeout_s)


def _head_timeout_answer(seconds: float) -> bytes:
    body = json.dumps({"error": {"code": "request_timeout", "message":
                                 f"the request head did not arrive within {seconds:g} s",
                                 "details": {}}}).encode()
    return (b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
            b"Content-Type: application/json; charset=utf-8\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body


class TimedRequestHandler(RequestHandler):
    """aiohttp's HTTP/1 protocol with deadlines on the request head and body."""

    def __init__(self, manager: web.Server, *, read_timeouts: ReadTimeouts,
                 **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.read_timeouts = read_timeouts
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._body: StreamReader | None = None
        self._body_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm_head()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_head()
        self._cancel_body()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._force_close or self._close:
            return
        if self._head_timer is None and data and not self._upgraded and (
                self._body is None or self._body.is_eof()):
            self._arm_head()    # the first byte of the next request on this connection
        if self._head_timer is not None:
            self._head_bytes += len(data)
        before = self._request_count
        super().data_received(data)
        if self._request_count != before:
            self._cancel_head()
            if self._messages:
                payload = self._messages[-1][1]
                if isinstance(payload, StreamReader) and not payload.is_eof():
                    self._watch_body(payload)
        elif self._body is not None and self._body.is_eof():
            self._cancel_body()

    def _arm_head(self) -> None:
        self._head_bytes = 0
        self._head_timer = self._loop.call_later(self.read_timeouts.header_s,
                                                 self._head_expired)

    def _cancel_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if self.transport is None or self._force_close:
            return
        if self._request_in_progress:
            # the next head is pipelined behind an answer still being made: its clock
            # starts again when the connection is free to read it
            self._arm_head()
            return
        log.debug("closing a connection whose request head did not arrive in %s s",
                  self.read_timeouts.header_s)
        if self._head_bytes:
            self.transport.write(_head_timeout_answer(self.read_timeouts.header_s))
        self.force_close()

    def _watch_body(self, payload: StreamReader) -> None:
        self._cancel_body()
        self._body = payload
        self._body_timer = self._loop.call_later(self.read_timeouts.body_s,
                                                 self._body_expired, payload)

    def _cancel_body(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_expired(self, payload: StreamReader) -> None:
        self._body_timer = None
        if payload.is_eof() or self.transport is None:
            return
        request = self._current_request
        if request is None or request.content is not payload:
            # no handler reads this body (answered already, or not started): drop it
            self.force_close()
            return
        seconds = self.read_timeouts.body_s
        log.debug("request body not complete after %s s: answering 408", seconds)
        payload.set_exception(ApiError(408, "request_timeout",
                                       f"the request body did not arrive within {seconds:g} s"))
        payload.feed_eof()   # the exception is raised first; nothing lingers to read it
        self.close()         # the rest of the body is never read: no keep-alive


class TimedServer(web.Server):
    """aiohttp's low-level server making :class:`TimedRequestHandler` protocols."""

    def __init__(self, *args: Any, read_timeouts: ReadTimeouts, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeouts = read_timeouts

    def __call__(self) -> RequestHandler:
        return TimedRequestHandler(self, loop=self._loop, read_timeouts=self.read_timeouts,
                                   **self._kwargs)


class TimedAppRunner(web.AppRunner):
    """``web.AppRunner`` whose server applies the read timeouts."""

    __slots__ = ("read_timeouts",)

    def __init__(self, app: web.Application, *, read_timeouts: ReadTimeouts,
                 **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.read_timeouts = read_timeouts

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()   # starts the app, as AppRunner does
        return TimedServer(plain.request_handler, request_factory=plain.request_factory,
                           handler_cancellation=plain.handler_cancellation,
                           loop=plain._loop, read_timeouts=self.read_timeouts,
                           **plain._kwargs)


def runner_for(app: web.Application, http: HttpConfig, **kwargs: Any) -> TimedAppRunner:
    """The app's runner with the ``[http]`` timeouts (keep-alive included)."""
    return TimedAppRunner(app, read_timeouts=ReadTimeouts.of(http),
                          keepalive_timeout=http.keepalive_timeout_s, **kwargs)


def run_app(app: web.Application, http: HttpConfig, *, shutdown_timeout: float = 10,
            access_log: logging.Logger | None = None) -> None:
    """Serve ``app`` on ``http.host:http.port`` until SIGINT/SIGTERM (``web.run_app``'s
    life cycle), then shut down gracefully."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    runner = runner_for(app, http, handle_signals=True, access_log=access_log,
                        shutdown_timeout=shutdown_timeout)

    async def serve() -> None:
        await runner.setup()
        try:
            await web.TCPSite(runner, http.host, http.port).start()
            while True:
                await asyncio.sleep(3600)
        finally:
            await runner.cleanup()

    task = loop.create_task(serve())
    try:
        loop.run_until_complete(task)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        if not task.done():
            task.cancel()
            with suppress(asyncio.CancelledError):
                loop.run_until_complete(task)
        rest = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in rest:
            t.cancel()
        if rest:
            loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
