"""A brief database outage during start-up does not end the process: each start-up step
that touches the database is retried with bounded back-off; a database that stays down
past the bound still ends the start-up with one clear error."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from clock_support import FakeClock

from aqi_service.config import Config
from aqi_service.storage.db import DatabaseUnavailable
from aqi_service.web.app import create_app

pytestmark = pytest.mark.db

WAITING_ON_LOCK = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'
"""


async def _terminate_when_blocked(dsn: str, timeout: float = 20.0) -> int:
    """Wait for a session of the database blocked on a lock, terminate it; its pid."""
    conn = await asyncpg.connect(dsn)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            pid = await conn.fetchval(WAITING_ON_LOCK)
            if pid is not None:
                await conn.execute("SELECT pg_terminate_backend($1)", pid)
                return int(pid)
            await asyncio.sleep(0.05)
        raise AssertionError("no start-up session blocked on the catalogue's table")
    finally:
        await conn.close()


async def test_a_session_terminated_during_the_catalogue_sync_is_retried(
        config: Config, clock: FakeClock, db_dsn: str,
        caplog: pytest.LogCaptureFixture) -> None:
    # The catalogue sync writes disclosure_categories: hold a lock on it so that the sync's
    # session waits at a known point, terminate that session there, then let go.
    holder = await asyncpg.connect(db_dsn)
    tx = holder.transaction()
    await tx.start()
    await holder.execute("LOCK TABLE disclosure_categories IN ACCESS EXCLUSIVE MODE")
    app = create_app(config, scheduler=False, clock=clock)
    caplog.set_level(logging.WARNING, logger="aqi_service.storage.retry")
    client = TestClient(TestServer(app))
    starting = asyncio.ensure_future(client.start_server())
    try:
        await _terminate_when_blocked(db_dsn)
        await tx.rollback()
        await asyncio.wait_for(starting, 30)
        resp = await client.get("/api/v1/now")
        assert resp.status == 200
        assert any("disclosure catalogue sync" in r.getMessage() and "retry 1" in r.getMessage()
                   for r in caplog.records), [r.getMessage() for r in caplog.records]
    finally:
        if not holder.is_closed():
            await holder.close()
        if not starting.done():
            starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await client.close()


async def test_a_database_that_stays_down_ends_the_start_up_with_one_clear_error(
        config: Config, clock: FakeClock, db_dsn: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from aqi_service.storage import retry

    monkeypatch.setattr(retry.retry_on_outage, "__defaults__", (2.0,))
    holder = await asyncpg.connect(db_dsn)
    tx = holder.transaction()
    await tx.start()
    await holder.execute("LOCK TABLE disclosure_categories IN ACCESS EXCLUSIVE MODE")
    stop = asyncio.Event()

    async def terminate_all() -> None:
        while not stop.is_set():
            try:
                await _terminate_when_blocked(db_dsn, timeout=5)
            except AssertionError:
                return

    killer = asyncio.ensure_future(terminate_all())
    app = create_app(config, scheduler=False, clock=clock)
    client = TestClient(TestServer(app))
    try:
        with pytest.raises(DatabaseUnavailable) as info:
            await asyncio.wait_for(client.start_server(), 30)
        message = str(info.value)
        assert "disclosure catalogue sync" in message and "\n" not in message
    finally:
        stop.set()
        await asyncio.gather(killer, return_exceptions=True)
        await tx.rollback()
        await holder.close()
        await client.close()
