"""The hourly pipeline's test rig: the simulator over real HTTP and a collector into the
test's database (the ``rig`` fixture), and small reads of what was stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import pytest

from aqi_service.collect.client import create_session
from aqi_service.collect.collector import Collector
from aqi_service.config import Config
from aqi_service.simulator import SimStation, Simulator, run_simulator, simulator_url
from aqi_service.storage import stations

# The HJ 633-2026 real-time columns: 1 h values, and 24 h means for the particles.
RT_2026_COLUMNS = {"so2": "so2_1h", "no2": "no2_1h", "co": "co_1h", "o3": "o3_1h",
                   "pm10": "pm10_24h", "pm2_5": "pm2_5_24h"}


@dataclass
class Rig:
    """A simulator of the configured stations, a collector polling it, the pool, the clock."""

    sim: Simulator
    collector: Collector
    pool: asyncpg.Pool
    clock: object
    config: Config


@pytest.fixture
async def rig(config: Config, pool: asyncpg.Pool, clock) -> AsyncIterator[Rig]:
    """The simulator (seed 2014) on a free port and a collector of it, stations synced."""
    sim = Simulator([SimStation(s.code, s.lat, s.lon, s.name_zh) for s in config.stations],
                    seed=2014, clock=clock)
    runner = await run_simulator(sim, "127.0.0.1", 0)
    async with pool.acquire() as conn:
        await stations.sync_stations(conn, config.stations)
    session = create_session(config.collection)
    collector = Collector(pool, session, config, simulator_url(runner), clock=clock)
    try:
        yield Rig(sim, collector, pool, clock, config)
    finally:
        await session.close()
        await runner.cleanup()


def target_hour(rig: Rig) -> datetime:
    """The clock's time truncated to the hour."""
    return rig.clock.now.replace(minute=0, second=0, microsecond=0)


async def count(pool: asyncpg.Pool, sql: str, *args: object) -> int:
    """The single number a query returns."""
    async with pool.acquire() as conn:
        return int(await conn.fetchval(sql, *args))
