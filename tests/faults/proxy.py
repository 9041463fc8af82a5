"""A fault-injection TCP proxy between the service and PostgreSQL (asyncio, loopback only).

The service is pointed at the proxy's port; the proxy forwards every byte to the real
server unless told to misbehave: cut every open connection now, refuse new connections for
a while (the listening socket is closed: the client sees ECONNREFUSED), add latency to each
forwarded chunk, stall (accept, then forward nothing until released), or cut every
connection once N more bytes have passed. Everything the proxy does is counted, so a
scenario can tell that its fault really happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

CHUNK = 64 * 1024


@dataclass
class ProxyStats:
    """What the proxy has done so far."""

    accepted: int = 0
    refused_periods: int = 0
    cut: int = 0
    bytes_up: int = 0
    bytes_down: int = 0


class _Pair:
    """One client connection and its upstream connection."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            with contextlib.suppress(Exception):
                writer.transport.abort()


class FaultProxy:
    """Forward ``127.0.0.1:<port>`` to the upstream server (TCP, or its Unix socket)."""

    def __init__(self, upstream_host: str, upstream_port: int, port: int = 0,
                 unix_path: str | None = None) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.unix_path = unix_path
        self.port = port
        self.latency_s = 0.0
        self._budget: int | None = None
        self.stats = ProxyStats()
        self._server: asyncio.Server | None = None
        self._pairs: set[_Pair] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._reopen: asyncio.TimerHandle | None = None

    async def start(self) -> FaultProxy:
        """Listen (on a free port the first time, on the same port afterwards)."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port,
                                                  reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def listening(self) -> bool:
        """Whether new connections are accepted."""
        return self._server is not None

    async def close(self) -> None:
        """Stop listening and cut everything."""
        if self._reopen is not None:
            self._reopen.cancel()
        await self._stop_listening()
        self._flowing.set()
        self.cut_all()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- faults ----------------------------------------------------------------------------

    def cut_all(self) -> int:
        """Abort every open connection (both sides see a reset); return how many."""
        pairs = list(self._pairs)
        for pair in pairs:
            pair.abort()
        self._pairs.clear()
        self.stats.cut += len(pairs)
        return len(pairs)

    async def refuse_for(self, seconds: float) -> None:
        """Close the listening socket now and listen again after ``seconds``."""
        await self._stop_listening()
        self.stats.refused_periods += 1
        loop = asyncio.get_running_loop()
        if self._reopen is not None:
            self._reopen.cancel()
        self._reopen = loop.call_later(seconds, lambda: self._spawn(self.start()))

    def cut_after(self, count: int) -> None:
        """Cut every open connection once ``count`` more bytes have been forwarded (once)."""
        self._budget = count

    def stall(self) -> None:
        """Accept connections, forward nothing (open connections hang too)."""
        self._flowing.clear()

    def release(self) -> None:
        """Forward again (after ``stall``)."""
        self._flowing.set()

    def heal(self) -> None:
        """Back to a plain pass-through (latency, cut-after and stall removed)."""
        self.latency_s = 0.0
        self._budget = None
        self.release()

    # -- forwarding ------------------------------------------------------------------------

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _stop_listening(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.accepted += 1
        try:
            if self.unix_path:
                up_reader, up_writer = await asyncio.open_unix_connection(self.unix_path)
            else:
                up_reader, up_writer = await asyncio.open_connection(self.upstream_host,
                                                                     self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        pair = _Pair(writer, up_writer)
        self._pairs.add(pair)
        try:
            await asyncio.gather(self._pump(reader, up_writer, pair, True),
                                 self._pump(up_reader, writer, pair, False))
        finally:
            self._pairs.discard(pair)
            pair.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    pair: _Pair, up: bool) -> None:
        try:
            while data := await reader.read(CHUNK):
                await self._flowing.wait()
                if self.latency_s:
                    await asyncio.sleep(self.latency_s)
                if self._budget is not None:
                    self._budget -= len(data)
                    if self._budget < 0:
                        self._budget = None
                        self.cut_all()
                        return
                if up:
                    self.stats.bytes_up += len(data)
                else:
                    self.stats.bytes_down += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            pair.abort()
