"""The app without a scheduler after a short back-fill (the ``quiet`` fixture), faults
injected through the simulator's HTTP API, and collections on a moved clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from service_support import small

from aqi_service.config import Config
from aqi_service.web import keys
from aqi_service.web.app import create_app, refresh_snapshot, startup_collection

HOUR = timedelta(hours=1)
STATIONS = [f"LF{i:02d}" for i in range(1, 12)]
EXPECTED_AT_START = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
"""The clock fixture reads 10:20 Beijing time; collection at :05 plus 10 minutes' grace
makes 10:00 (02:00 UTC) the newest hour due."""


@pytest.fixture
async def quiet(config: Config, clock) -> AsyncIterator[TestClient]:
    """The app without a scheduler (no job can run in between), after a 2-day back-fill."""
    app = create_app(small(config), scheduler=False, clock=clock)
    async with TestClient(TestServer(app)) as c:
        await startup_collection(app, clock)
        yield c


async def fault(c: TestClient, **body: object) -> None:
    """Inject a fault through the simulator's HTTP API."""
    url = c.app[keys.SIMULATOR_URL]
    resp = await c.session.post(f"{url}/_faults", json=body)
    assert resp.status in (200, 201), await resp.text()


async def collect(c: TestClient, clock, hours: int = 1) -> int:
    """Move the clock on, run a collection, rebuild /now; return the run's id."""
    clock.now += hours * HOUR
    summary = await c.app[keys.COLLECTOR].run("test")
    await refresh_snapshot(c.app, clock)
    return summary.run_id
