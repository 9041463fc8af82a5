"""``conditional.Prepared``: the serialised answers of ``/api/v1/now`` on the wire.

Every request is written and read over a raw loopback socket, so what is checked is the
bytes a client gets. The serialised path (HTTP/1.1, kept-alive ``GET``/``HEAD``) must send
what aiohttp's own path sends for the same answer (``Connection: close`` takes that path),
keep the connection usable, and never overstate ``max-age``.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from aqi_service.web.conditional import Prepared, Serialized, etag_of

BODY = json.dumps({"stations": [{"code": f"LF{i:02d}", "aqi": 40 + i} for i in range(1, 12)]
                  * 20}).encode()
EXPIRES_IN = 600


@pytest.fixture
async def server() -> AsyncIterator[tuple[TestServer, Prepared, list[web.StreamResponse]]]:
    prepared = Prepared(BODY, etag_of(BODY), datetime(2026, 11, 26, 15, tzinfo=UTC),
                        datetime.now(UTC) + timedelta(seconds=EXPIRES_IN),
                        gzip.compress(BODY, mtime=0))
    answers: list[web.StreamResponse] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        answers.append(prepared.respond(request))
        return answers[-1]

    app = web.Application()
    app.router.add_get("/now", handler)
    async with TestServer(app) as srv:
        yield srv, prepared, answers


async def read_answer(reader: asyncio.StreamReader, head: bool = False,
                      ) -> tuple[str, dict[str, str], bytes]:
    """One HTTP/1.x answer: status line, headers (names lower-cased), body."""
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    status, *lines = raw.decode("latin-1").split("\r\n")[:-2]
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        assert name.lower() not in headers, f"{name} sent twice"
        headers[name.lower()] = value.strip()
    body = b""
    if not head and " 304 " not in status + " ":
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 5)
    return status, headers, body


def request(method: str = "GET", version: str = "1.1", **headers: str) -> bytes:
    lines = [f"{method} /now HTTP/{version}", "Host: 127.0.0.1"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def exchange(srv: TestServer, *requests: bytes, head: bool = False,
                   ) -> list[tuple[str, dict[str, str], bytes]]:
    reader, writer = await asyncio.open_connection(srv.host, srv.port)
    try:
        writer.write(b"".join(requests))
        return [await read_answer(reader, head) for _ in requests]
    finally:
        writer.close()


CASES = [
    ("GET", {}),
    ("GET", {"Accept_Encoding": "gzip, deflate"}),
    ("HEAD", {}),
    ("HEAD", {"Accept_Encoding": "gzip"}),
    ("GET", {"If_None_Match": "ETAG"}),
    ("GET", {"If_None_Match": '"other", GZETAG', "Accept_Encoding": "gzip"}),
    ("HEAD", {"If_None_Match": "ETAG"}),
]


@pytest.mark.parametrize(("method", "extra"), CASES)
async def test_serialised_answer_equals_aiohttps_own(server, method: str, extra: dict) -> None:
    srv, prepared, answers = server
    extra = {k: v.replace("GZETAG", prepared.etag[:-1] + '-gzip"').replace("ETAG", prepared.etag)
             for k, v in extra.items()}
    head = method == "HEAD"
    [(status, fast, body)] = await exchange(srv, request(method, **extra), head=head)
    assert type(answers[-1]) is Serialized
    [(status2, slow, body2)] = await exchange(srv, request(method, Connection="close", **extra),
                                              head=head)
    assert type(answers[-1]) is not Serialized
    assert slow.pop("connection") == "close"
    assert status == status2
    # The two were sent in different seconds at most one second apart.
    for h in (fast, slow):
        h.pop("date")
        h["cache-control"] = re.sub(r"max-age=\d+", "max-age=N", h["cache-control"])
    assert fast == slow
    assert body == body2
    if status.endswith("200 OK"):
        gz = "gzip" in extra.get("Accept_Encoding", "")
        sent = gzip.decompress(body) if gz and body else body
        assert sent == (b"" if head else BODY)
        assert fast["content-length"] == str(len(prepared.gzipped if gz else BODY))
        assert fast["etag"] == (prepared.etag[:-1] + '-gzip"' if gz else prepared.etag)
    else:
        assert status == "HTTP/1.1 304 Not Modified" and body == b""
        assert "content-length" not in fast and "content-type" not in fast


async def test_headers_and_freshness(server) -> None:
    srv, _, _ = server
    before = time.time()
    [(status, headers, _)] = await exchange(srv, request())
    assert status == "HTTP/1.1 200 OK"
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["access-control-allow-origin"] == "*"
    assert headers["vary"] == "Accept-Encoding"
    assert headers["last-modified"] == "Thu, 26 Nov 2026 15:00:00 GMT"
    assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", headers["date"])
    max_age = int(re.search(r"max-age=(\d+)", headers["cache-control"])[1])
    # Never beyond the expected publication, counted from when the answer left.
    assert EXPIRES_IN - 3 <= max_age <= EXPIRES_IN - (time.time() - before) + 0.001
    assert "stale-while-revalidate=300" in headers["cache-control"]


async def test_pipelined_requests_share_one_connection(server) -> None:
    srv, prepared, answers = server
    reader, writer = await asyncio.open_connection(srv.host, srv.port)
    try:
        writer.write(request() + request("HEAD") + request(If_None_Match=prepared.etag))
        first = await read_answer(reader)
        second = await read_answer(reader, head=True)
        third = await read_answer(reader)
        assert [a[0] for a in (first, second, third)] == [
            "HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 304 Not Modified"]
        assert first[2] == BODY and second[2] == b""
        # Still open: a fourth request on the same connection is answered too.
        writer.write(request(Accept_Encoding="gzip"))
        fourth = await read_answer(reader)
        assert gzip.decompress(fourth[2]) == BODY
        assert all(type(a) is Serialized for a in answers[-4:])
    finally:
        writer.close()


async def test_http_10_gets_aiohttps_path(server) -> None:
    srv, _, answers = server
    [(status, headers, body)] = await exchange(srv, request(version="1.0"))
    assert type(answers[-1]) is not Serialized
    assert status == "HTTP/1.0 200 OK" and body == BODY
    [(status, headers, body)] = await exchange(
        srv, request(version="1.0", Connection="keep-alive"))
    assert status == "HTTP/1.0 200 OK" and headers["connection"] == "keep-alive"
    assert body == BODY


def test_answers_are_made_once_per_second_and_kind() -> None:
    prepared = Prepared(BODY, etag_of(BODY), datetime(2026, 11, 26, 15, tzinfo=UTC),
                        datetime.now(UTC) + timedelta(seconds=EXPIRES_IN), gzip.compress(BODY))
    one = prepared._serialise(200, False, False, 1_700_000_000)
    assert one.endswith(b"\r\n\r\n" + BODY)
    assert b"Date: Tue, 14 Nov 2023 22:13:20 GMT\r\n" in one
    # The moment of a second closest to expiry decides: never more than is left.
    expires = prepared._expires
    for second in range(int(expires) - 20, int(expires) + 3):
        age = prepared._max_age(second)
        for moment in (second, second + 0.5, second + 0.999):
            assert age <= max(expires - moment, 0)
            assert age >= expires - moment - 2


@pytest.mark.parametrize(("header", "gzip_ok"), [
    ("gzip", True), ("GZIP", True), ("gzip, deflate, br, zstd", True), ("x-gzip", True),
    ("br;q=1.0, gzip;q=0.5", True), ("*", True), ("identity, *;q=0.1", True),
    ("", False), ("identity", False), ("deflate, br", False), ("gzip;q=0", False),
    ("gzip; q=0.000", False), ("*;q=0", False), ("gzip;q=0, *", False),
    ("gzip;q=abc", False), ("br;q=0.9, *;q=0", False),
])
async def test_gzip_is_sent_only_where_accepted(server, header: str, gzip_ok: bool) -> None:
    srv, _, _ = server
    [(status, headers, body)] = await exchange(srv, request(Accept_Encoding=header))
    assert status == "HTTP/1.1 200 OK"
    assert (headers.get("content-encoding") == "gzip") is gzip_ok
    assert (gzip.decompress(body) if gzip_ok else body) == BODY


# -- the fallback when aiohttp lacks the private attributes --------------------------------

def test_installed_aiohttp_supports_the_prepared_answers() -> None:
    """The pinned aiohttp keeps what ``Serialized`` sets (pyproject.toml's range)."""
    from aqi_service.web import conditional

    assert conditional.fast_path_supported()
    probe = web.StreamResponse()
    for name in conditional.FAST_PATH_ATTRIBUTES:
        assert hasattr(probe, name), name


@pytest.fixture
def without_fast_path(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    """An aiohttp without the private attributes, as the start-up check would find it."""
    from aqi_service.web import conditional

    monkeypatch.setattr(conditional, "fast_path_supported", lambda: False)
    monkeypatch.setattr(conditional, "_fallback_logged", False)
    caplog.set_level("WARNING", logger="aqi_service.web.conditional")
    assert conditional.check_fast_path() is False
    assert conditional.check_fast_path() is False   # checked again: logged once
    warnings = [r for r in caplog.records if r.name == "aqi_service.web.conditional"]
    assert len(warnings) == 1 and "ordinary path" in warnings[0].getMessage()
    yield
    monkeypatch.undo()
    assert conditional.check_fast_path() is True


@pytest.mark.parametrize(("method", "extra"), CASES)
async def test_fallback_answers_equal_the_fast_paths(server, without_fast_path, method: str,
                                                     extra: dict) -> None:
    """With the fast path off every answer takes aiohttp's path, kept alive, and carries the
    same status, headers and body as the prepared bytes would."""
    from aqi_service.web import conditional

    srv, prepared, answers = server
    extra = {k: v.replace("GZETAG", prepared.etag[:-1] + '-gzip"').replace("ETAG", prepared.etag)
             for k, v in extra.items()}
    head = method == "HEAD"
    reader, writer = await asyncio.open_connection(srv.host, srv.port)
    try:   # two answers on one connection: the fallback keeps it open
        writer.write(request(method, **extra) * 2)
        got = [await read_answer(reader, head) for _ in range(2)]
    finally:
        writer.close()
    assert all(type(a) is not Serialized for a in answers[-2:])
    conditional.fast_path = True
    [(status, fast, body)] = await exchange(srv, request(method, **extra), head=head)
    assert type(answers[-1]) is Serialized
    conditional.fast_path = False
    for h in (fast, *(g[1] for g in got)):
        h.pop("date")
        h["cache-control"] = re.sub(r"max-age=\d+", "max-age=N", h["cache-control"])
    for status2, slow, body2 in got:
        assert status2 == status
        assert slow == fast
        assert body2 == body


async def test_fallback_is_counted_in_the_metrics(without_fast_path, config) -> None:
    """The app built on such an aiohttp reports it: aqi_http_fast_path_disabled 1."""
    from prometheus_client import generate_latest

    from aqi_service.web import keys
    from aqi_service.web.app import create_app

    app = create_app(config, scheduler=False)
    text = generate_latest(app[keys.METRICS].registry).decode()
    assert "\naqi_http_fast_path_disabled 1.0\n" in text
