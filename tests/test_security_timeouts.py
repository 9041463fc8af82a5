"""Slow clients against the real server over loopback: request heads and bodies that do
not arrive in time close their connections, while normal requests keep being answered;
and ``serve`` runs with these timeouts."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from disclosure_support import admin_config, bearer, minter

from aqi_service.config import Config
from aqi_service.web import keys, server
from aqi_service.web.app import create_app

pytestmark = pytest.mark.db
REPO = Path(__file__).resolve().parent.parent
HEADER_S = 2.0
BODY_S = 2.0
MARGIN_S = 2.0
"""Timers fire late on a loaded machine (the slow clients share the server's loop)."""
SLOW_CLIENTS = 300


class Running:
    """The app served by ``server.runner_for`` on a loopback port."""

    def __init__(self, app: web.Application, port: int) -> None:
        self.app = app
        self.port = port

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
async def running(config: Config, clock: Any, tmp_path: Path) -> AsyncIterator[Running]:
    cfg = admin_config(config, tmp_path).replace(
        http={"header_timeout_s": HEADER_S, "body_timeout_s": BODY_S,
              "keepalive_timeout_s": 30.0})
    app = create_app(cfg, scheduler=False, clock=clock)
    runner = server.runner_for(app, cfg.http)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield Running(app, runner.addresses[0][1])
    finally:
        await runner.cleanup()


async def _trickle(port: int, data: bytes) -> tuple[float, bytes]:
    """Send ``data`` a byte a second until the server closes; (seconds from connecting to
    the close, what it answered)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = asyncio.get_running_loop().time()
    got = b""
    try:
        for byte in data:
            writer.write(bytes([byte]))
            try:
                got += await asyncio.wait_for(reader.read(4096), 1.0)
            except TimeoutError:
                continue
            if reader.at_eof() or got:
                break
        while not reader.at_eof():
            got += await asyncio.wait_for(reader.read(4096), 30.0)
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
    return asyncio.get_running_loop().time() - started, got


async def test_slow_request_heads_are_closed_while_others_are_served(
        running: Running) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
    slow = [asyncio.create_task(_trickle(running.port, head)) for _ in range(SLOW_CLIENTS)]
    answered = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while not all(t.done() for t in slow) and loop.time() - started < 20:
            async with session.get(running.url("/healthz")) as resp:
                answered.append(resp.status)
            await asyncio.sleep(0.2)
    results = await asyncio.gather(*slow)
    closed_at = [t for t, _ in results]
    assert max(closed_at) <= HEADER_S + MARGIN_S, max(closed_at)
    assert all(got.startswith(b"HTTP/1.1 408 ") for _, got in results)
    assert b'"request_timeout"' in results[0][1]
    assert len(answered) >= 5 and set(answered) == {200}


async def _response(reader: asyncio.StreamReader) -> bytes:
    """One whole response (head and Content-Length body) from ``reader``."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    return head + await asyncio.wait_for(reader.readexactly(length), 2)


async def test_a_head_within_the_timeout_passes_and_keep_alive_has_its_own_clock(
        running: Running) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    for part in (b"GET /healthz HTTP/1.1\r\n", b"Host: 127.0.0.1\r\n", b"\r\n"):
        writer.write(part)
        await asyncio.sleep(HEADER_S / 4)
    assert (await _response(reader)).startswith(b"HTTP/1.1 200")
    # idle on a kept-alive connection past the header timeout: still open
    await asyncio.sleep(HEADER_S + 0.5)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert (await _response(reader)).startswith(b"HTTP/1.1 200")
    # the next head starts and stalls: closed a header timeout later
    started = asyncio.get_running_loop().time()
    writer.write(b"GET /heal")
    rest = await asyncio.wait_for(reader.read(), HEADER_S + MARGIN_S + 1)
    assert asyncio.get_running_loop().time() - started <= HEADER_S + MARGIN_S
    assert b"HTTP/1.1 408 " in rest
    writer.close()


async def test_a_stalled_upload_is_answered_408_and_leaves_no_file(running: Running) -> None:
    class Client:
        app = running.app
    token = await minter(Client)("disclosures:write")  # type: ignore[arg-type]
    boundary = "slowboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4\n").encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    writer.write(b"POST /api/v1/admin/attachments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 + f"Authorization: {bearer(token)['Authorization']}\r\n".encode()
                 + f"Content-Type: multipart/form-data; boundary={boundary}\r\n".encode()
                 + b"Content-Length: 60000\r\n\r\n" + head)
    loop = asyncio.get_running_loop()
    started = loop.time()
    answer = b""
    for _ in range(int(BODY_S + MARGIN_S) * 4):
        writer.write(b"%")   # a body byte every 0.25 s: never idle, never done
        try:
            answer += await asyncio.wait_for(reader.read(4096), 0.25)
        except TimeoutError:
            continue
        if answer:
            break
    answer += await asyncio.wait_for(reader.read(), 5)
    assert loop.time() - started <= BODY_S + MARGIN_S
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b'"request_timeout"' in answer
    folder = running.app[keys.ATTACHMENTS].directory
    assert not folder.exists() or list(folder.iterdir()) == []
    async with running.app[keys.POOL].acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM attachments") == 0
    writer.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_applies_the_header_timeout(db_dsn: str, tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AQI_")}
    env.update(AQI_CONFIG_DIR=str(REPO / "config"), AQI_DATABASE_URL=db_dsn,
               AQI_HTTP_HEADER_TIMEOUT_S="1", AQI_COLLECTION_INITIAL_BACKFILL_DAYS="0")
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "aqi_service", "serve", "--no-scheduler",
                             "--data-dir", str(tmp_path / "var"), "--port", str(port)],
                            cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
            started = time.monotonic()
            answer = sock.recv(4096)
            assert time.monotonic() - started <= 1 + MARGIN_S
            assert answer.startswith(b"HTTP/1.1 408 ")
    finally:
        proc.terminate()
        assert proc.wait(30) == 0, log.read_text()[-3000:]
