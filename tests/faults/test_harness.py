"""The suite's own instruments can fail: the proxy's faults are real, the checker sees
tampering (a suite whose checker passed everything would prove nothing)."""

from __future__ import annotations

import time
from pathlib import Path

import asyncpg
import pytest
from service_support import wait_for

from .harness import World, upstream_of
from .proxy import FaultProxy
from .scenarios import Outcome, baseline

pytestmark = [pytest.mark.db]


def proxied(proxy: FaultProxy, _dsn: str) -> str:
    return f"postgresql://postgres@127.0.0.1:{proxy.port}/postgres"


async def test_proxy_forwards_cuts_refuses_stalls_and_delays(pg_server: str) -> None:
    host, port, unix = upstream_of(pg_server)
    proxy = await FaultProxy(host or "127.0.0.1", port, unix_path=unix).start()
    try:
        conn = await asyncpg.connect(proxied(proxy, pg_server), timeout=5)
        assert await conn.fetchval("SELECT 41 + 1") == 42
        assert proxy.cut_all() >= 1
        with pytest.raises((asyncpg.PostgresConnectionError, ConnectionError, OSError)):
            await conn.fetchval("SELECT 1", timeout=5)
        conn.terminate()

        await proxy.refuse_for(0.5)
        with pytest.raises(OSError):
            await asyncpg.connect(proxied(proxy, pg_server), timeout=2)
        assert not proxy.listening

        async def listening() -> bool:
            return proxy.listening
        await wait_for(listening, timeout=5)
        conn = await asyncpg.connect(proxied(proxy, pg_server), timeout=5)

        proxy.stall()
        with pytest.raises(TimeoutError):
            await conn.fetchval("SELECT 1", timeout=0.5)
        proxy.release()
        conn.terminate()

        proxy.latency_s = 0.2
        conn = await asyncpg.connect(proxied(proxy, pg_server), timeout=10)
        started = time.monotonic()
        await conn.fetchval("SELECT 1")
        assert time.monotonic() - started >= 0.4  # there and back
        proxy.heal()

        proxy.cut_after(10_000)
        with pytest.raises((asyncpg.PostgresConnectionError, ConnectionError, OSError)):
            await conn.fetch("SELECT repeat('x', 100000)", timeout=5)
        conn.terminate()
    finally:
        await proxy.close()


async def test_checker_sees_each_kind_of_damage(pg_server: str, tmp_path: Path) -> None:
    async with World.create(pg_server, tmp_path / "logs") as world:
        out = Outcome("baseline")
        await baseline(world, out)
        await world.wait_idle(10)
        clean = await world.check()
        assert clean.hours_lost == clean.false_values == clean.derived_mismatches == 0, \
            clean.summary()
        await world.stop_service()
        conn = await asyncpg.connect(world.db_dsn)
        try:
            await conn.execute(
                "UPDATE observations SET value = 9999.9 WHERE station_code = 'LF03' "
                "AND pollutant = 'pm10' AND hour_end = (SELECT max(hour_end) - interval '5 h' "
                "FROM observations)")
            await conn.execute(
                "DELETE FROM station_hourly WHERE station_code = 'LF05' AND hour_end = "
                "(SELECT max(hour_end) - interval '30 h' FROM station_hourly)")
            await conn.execute(
                "UPDATE city_hourly SET aqi = aqi + 1 WHERE hour_end = "
                "(SELECT max(hour_end) - interval '40 h' FROM city_hourly)")
            await conn.execute(
                "INSERT INTO collection_runs (trigger, target_hour, instance) "
                "VALUES ('scheduled', now(), 'gone')")
        finally:
            await conn.close()
        damaged = await world.check()
    assert damaged.false_values == 1, damaged.summary()
    assert damaged.lost_station_hours == 1, damaged.summary()
    assert damaged.runs_running == 1, damaged.summary()
    # The tampered value moves its station record and the next 30 h (24 h means) and the
    # city's; the deleted record and the edited city record differ too.
    assert damaged.derived_mismatches >= 3, damaged.summary()
    assert not damaged.ok
