"""Validation through the real pipeline: simulator over loopback → collector → PostgreSQL.

The simulated loggers send sentinels (9999.9, 9999, -99), out-of-range values and hours
with PM2.5 above PM10 at 5 % of station-hours each. The same seed without faults, collected
into a second database, is the clean series: the faults may remove values, never add an
AQI 500 the clean series does not have.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from aqi_service.collect.client import create_session
from aqi_service.collect.collector import Collector
from aqi_service.config import Config
from aqi_service.monitoring.metrics import Metrics
from aqi_service.simulator import FaultRates, SimStation, Simulator, run_simulator, simulator_url
from aqi_service.storage import stations
from aqi_service.storage.db import _init_connection

pytestmark = pytest.mark.db

HOUR = timedelta(hours=1)
POLLUTANTS = ("so2", "no2", "co", "o3", "pm10", "pm2_5")
SENTINELS = {Decimal("9999.9"), Decimal("9999"), Decimal("-99")}
RATES = FaultRates(sentinel=0.05, out_of_range=0.05, pm25_above_pm10=0.05)


@pytest.fixture
async def clean_pool(pg_server: str, template_db: str) -> AsyncIterator[asyncpg.Pool]:
    """A second fresh database (from the same migrated template) for the clean series."""
    name = f"aqi_t_{os.getpid()}_clean_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(pg_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    finally:
        await admin.close()
    dsn = urlunsplit(urlsplit(pg_server)._replace(path=f"/{name}"))
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4, init=_init_connection)
    try:
        yield pool
    finally:
        await pool.close()
        admin = await asyncpg.connect(pg_server)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def collect(config: Config, pool: asyncpg.Pool, clock: object, rates: FaultRates,
                  metrics: Metrics | None = None) -> Simulator:
    """One collection (the first: a back-fill) from a simulator with ``rates``."""
    sim = Simulator([SimStation(s.code, s.lat, s.lon, s.name_zh) for s in config.stations],
                    seed=2014, clock=clock, rates=rates)
    runner = await run_simulator(sim, "127.0.0.1", 0)
    async with pool.acquire() as conn:
        await stations.sync_stations(conn, config.stations)
    session = create_session(config.collection)
    try:
        collector = Collector(pool, session, config, simulator_url(runner), clock=clock,
                              events=metrics)
        summary = await collector.run("test")
        assert summary.ok == len(config.stations) and summary.failed == 0
    finally:
        await session.close()
        await runner.cleanup()
    return sim


async def fetch(pool: asyncpg.Pool, sql: str) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch(sql)


def injected(faulty: Simulator, clean: Simulator, first: datetime,
             last: datetime) -> dict[tuple[str, str, datetime], object]:
    """(station, pollutant, hour) → the value the faulty logger sent instead of the clean one."""
    out: dict[tuple[str, str, datetime], object] = {}
    for st in clean.stations:
        bad = {r["time"]: r for r in faulty.hourly_records(st.code, first - HOUR, last)}
        for rec in clean.hourly_records(st.code, first - HOUR, last):
            hour = datetime.fromisoformat(rec["time"])
            for pol in POLLUTANTS:
                if bad[rec["time"]][pol] != rec[pol]:
                    out[(st.code, pol, hour)] = bad[rec["time"]][pol]
    return out


async def test_faults_at_5_percent_store_no_false_value_and_no_false_aqi_500(
        config: Config, pool: asyncpg.Pool, clean_pool: asyncpg.Pool, clock) -> None:
    metrics = Metrics(config)
    faulty = await collect(config, pool, clock, RATES, metrics)
    clean = await collect(config, clean_pool, clock, FaultRates())

    span = (await fetch(clean_pool, "SELECT min(hour_end) AS a, max(hour_end) AS b, "
                                    "count(*) AS n FROM observations"))[0]
    assert span["n"] == len(config.stations) * 6 * ((span["b"] - span["a"]) // HOUR + 1)
    changes = injected(faulty, clean, span["a"], span["b"])
    sentinels = {k: v for k, v in changes.items() if Decimal(str(v)) in SENTINELS}
    assert len(sentinels) >= 30  # ~5 % of the station-hours carry one
    assert {Decimal(str(v)) for v in sentinels.values()} == SENTINELS

    # 1. No sentinel (nor any value a logger could not have measured) is stored as valid.
    bad_valid = await fetch(pool, "SELECT * FROM observations WHERE valid AND (value < 0 OR "
                                  "value IN (9999, 9999.9, -99) OR value > 10000)")
    assert bad_valid == []

    # 2. Every injected sentinel is in rejected_values, as received, with its reason.
    rejected = {(r["station_code"], r["pollutant"], r["hour_end"]): r for r in await fetch(
        pool, "SELECT * FROM rejected_values")}
    for key, value in sentinels.items():
        assert key in rejected, key
        assert rejected[key]["reason"] == "sentinel", (key, rejected[key]["reason"])
        assert Decimal(rejected[key]["raw_value"]) == Decimal(str(value))
    by_reason = {r["reason"]: r["n"] for r in await fetch(
        pool, "SELECT reason, count(*) AS n FROM rejected_values GROUP BY reason")}
    assert by_reason["sentinel"] == len(sentinels)
    assert by_reason["out_of_range"] >= 20

    # ... and counted by reason in the metrics, station by station.
    for reason, n in by_reason.items():
        counted = sum(metrics.registry.get_sample_value(
            "aqi_collector_rejected_values_total", {"station": s.code, "reason": reason}) or 0
            for s in config.stations)
        assert counted == n, reason

    # 3. The faults add no AQI 500: every one is in the clean series too.
    sql = ("SELECT station_code, hour_end FROM station_hourly "
           "WHERE aqi = 500 OR computed_aqi = 500")
    false_500 = ({(r["station_code"], r["hour_end"]) for r in await fetch(pool, sql)}
                 - {(r["station_code"], r["hour_end"]) for r in await fetch(clean_pool, sql)})
    assert false_500 == set()
    city_sql = "SELECT hour_end FROM city_hourly WHERE aqi = 500 OR computed_aqi = 500"
    assert ({r["hour_end"] for r in await fetch(pool, city_sql)}
            <= {r["hour_end"] for r in await fetch(clean_pool, city_sql)})

    # 4. Hours with PM2.5 above PM10: both values stored as received, both valid.
    lowered = {k: v for k, v in changes.items() if k[1] == "pm10" and k not in sentinels
               and 0 <= v < 10000}
    assert len(lowered) >= 20
    stored = {(r["station_code"], r["pollutant"], r["hour_end"]): r for r in await fetch(
        pool, "SELECT * FROM observations WHERE pollutant IN ('pm10', 'pm2_5')")}
    checked = 0
    for (code, _, hour), pm10 in lowered.items():
        row10 = stored[(code, "pm10", hour)]
        assert row10["valid"] and row10["value"] == pm10
        if (code, "pm2_5", hour) not in changes:  # PM2.5 not hit by another fault
            row25 = stored[(code, "pm2_5", hour)]
            assert row25["valid"] and row25["value"] > row10["value"]
            checked += 1
    assert checked >= 20
