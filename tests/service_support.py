"""The service's app after a short back-fill (the ``client`` fixture), and waiting on a
condition with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from aqi_service.config import Config
from aqi_service.web import keys
from aqi_service.web.app import create_app


def small(config: Config) -> Config:
    """Two days of initial back-fill (one whole natural day) keep start-up quick."""
    return config.replace(collection={"initial_backfill_days": 2})


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 30.0,
                   what: str = "condition not met in time") -> None:
    """Poll the coroutine function ``predicate`` (every 50 ms) until it is true; fail with
    ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    assert await predicate(), what


@pytest.fixture
async def client(config: Config, clock) -> AsyncIterator[TestClient]:
    """The app (with its scheduler) once the start-up back-fill is stored and published."""
    app = create_app(small(config), clock=clock)
    async with TestClient(TestServer(app)) as c:
        pool = app[keys.POOL]

        async def collected() -> bool:
            async with pool.acquire() as conn:
                return bool(await conn.fetchval(
                    "SELECT count(*) FROM collection_runs WHERE finished_at IS NOT NULL"))
        await wait_for(collected)
        await wait_for(lambda: _snapshot_has_data(app))
        yield c


async def _snapshot_has_data(app: web.Application) -> bool:
    snap = app[keys.SNAPSHOT].current
    return snap is not None and snap.data["data_as_of"] is not None
