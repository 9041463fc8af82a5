"""The readiness probe answers within its budget whatever the network to PostgreSQL does:
under a stall (connections accepted, nothing forwarded) the collection health check says
``database_down`` within about a second, keeps the last reading, and concurrent checks share
one probe instead of piling up connections."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import asyncpg
import pytest
from faults.harness import upstream_of
from faults.proxy import FaultProxy

from aqi_service.collect import health as health_mod
from aqi_service.collect.health import HealthCheck
from aqi_service.config import CollectionConfig
from aqi_service.storage import migrations

pytestmark = pytest.mark.db
BOUND_S = 1.5
"""A readiness probe's answer, at most (probe timeouts are typically 1-2 s)."""


async def test_stalled_network_answers_within_budget(db_dsn: str) -> None:
    host, port, unix = upstream_of(db_dsn)
    proxy = await FaultProxy(host or "127.0.0.1", port, unix_path=unix).start()
    name = urlsplit(db_dsn).path
    pool = await asyncpg.create_pool(f"postgresql://postgres@127.0.0.1:{proxy.port}{name}",
                                     min_size=1, max_size=4)
    try:
        check = HealthCheck(CollectionConfig(), lambda: datetime.now(UTC))
        before = await check.check(pool)
        assert before.database_up and before.state is not None
        proxy.stall()
        started = time.monotonic()
        answers = await asyncio.gather(*(check.check(pool) for _ in range(5)))
        took = time.monotonic() - started
        assert took < BOUND_S, f"5 concurrent checks took {took:.1f} s"
        for health in answers:
            assert not health.database_up
            assert "database_down" in health.problems
            assert health.state is before.state  # the last reading is kept
        # A second round while the first probe is still hung: no new probe, same bound.
        started = time.monotonic()
        again = await check.check(pool)
        assert time.monotonic() - started < BOUND_S
        assert "database_down" in again.problems
        migration = health_mod.SingleProbe()
        proxy.release()
        assert await migration.run(lambda: health_mod.migration_version(pool)) == \
            migrations.latest_version()
        proxy.stall()
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await migration.run(lambda: health_mod.migration_version(pool))
        assert time.monotonic() - started < BOUND_S
        proxy.release()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            after = await check.check(pool)
            if after.database_up:
                break
            await asyncio.sleep(0.5)
        assert after.database_up, "the check did not recover once the network flowed again"
    finally:
        proxy.release()
        await proxy.close()
        pool.terminate()
