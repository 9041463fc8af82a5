"""Derived records across boundaries: the scheme switch, month partitions, daily records,
catch-up runs, and a vendor's logger read through a field mapping."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import asyncpg
import pytest
from aiohttp import web
from aqi_reference import S2012P, S2026, expected_iaqi
from pipeline_support import Rig, count

from aqi_service.collect.client import create_session
from aqi_service.collect.collector import Collector
from aqi_service.collect.derive import day_bounds
from aqi_service.config import Config, HttpSource, StationConfig
from aqi_service.storage import stations

pytestmark = pytest.mark.db
HOUR = timedelta(hours=1)


async def test_scheme_switches_with_the_hour_that_begins_on_1_march(rig: Rig) -> None:
    # 2026-03-01 02:20 +08:00: the 72 h look-back spans the switch at 2026-03-01 00:00 +08:00.
    rig.clock.now = datetime(2026, 2, 28, 18, 20, tzinfo=UTC)
    await rig.collector.run("test")
    last_2012 = datetime(2026, 2, 28, 16, 0, tzinfo=UTC)  # labelled 2026-03-01 00:00 +08:00
    async with rig.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT hour_end, scheme FROM station_hourly WHERE station_code = 'LF01' "
            "AND hour_end BETWEEN $1 AND $2 ORDER BY hour_end",
            last_2012 - HOUR, last_2012 + 2 * HOUR)
        rec = await conn.fetchrow(
            "SELECT * FROM station_hourly WHERE station_code = 'LF01' AND hour_end = $1", last_2012)
        daily = await conn.fetch(
            "SELECT day, scheme FROM station_daily WHERE station_code = 'LF01' ORDER BY day")
    assert [(r["hour_end"] - last_2012) // HOUR for r in rows] == [-1, 0, 1, 2]
    assert [r["scheme"] for r in rows] == ["HJ633-2012", "HJ633-2012", "HJ633-2026",
                                           "HJ633-2026"]
    # Under 2012 as the national platform published it, the real-time PM IAQI comes from the
    # 1 h value on the 24 h column, and O3's from its 1 h value only (no O3 8 h index).
    assert rec["iaqi_pm2_5"] == expected_iaqi(S2012P, "pm2_5_24h", rec["pm2_5"])[0]
    assert rec["iaqi_o3"] == expected_iaqi(S2012P, "o3_1h", rec["o3"])[0]
    assert rec["exceeding_mask"] is not None  # 2012 has exceeding pollutants; 2026 none
    assert {r["day"]: r["scheme"] for r in daily}[date(2026, 2, 28)] == "HJ633-2012"


async def test_backfill_across_a_month_boundary_lands_in_month_partitions(rig: Rig) -> None:
    rig.clock.now = datetime(2026, 12, 1, 10, 20, tzinfo=UTC)
    summary = await rig.collector.run("test")
    assert summary.observations == 11 * 72 * 6
    async with rig.pool.acquire() as conn:
        parts = await conn.fetch(
            "SELECT tableoid::regclass::text AS part, count(*) FROM observations GROUP BY 1")
    assert {r["part"] for r in parts} == {"observations_202611", "observations_202612"}
    assert sum(r["count"] for r in parts) == 11 * 72 * 6


async def test_daily_records_are_the_means_of_the_natural_day(rig: Rig) -> None:
    await rig.collector.run("test")
    day = date(2026, 11, 19)  # complete: the clock is 2026-11-20 10:20 +08:00
    first, last = day_bounds(day)
    async with rig.pool.acquire() as conn:
        hourly = await conn.fetch(
            "SELECT pollutant, value FROM observations WHERE station_code = 'LF02' AND valid "
            "AND hour_end BETWEEN $1 AND $2", first, last)
        rec = await conn.fetchrow(
            "SELECT * FROM station_daily WHERE station_code = 'LF02' AND day = $1", day)
        city = await conn.fetchrow("SELECT * FROM city_daily WHERE day = $1", day)
    values: dict[str, list[Fraction]] = {}
    for r in hourly:
        values.setdefault(r["pollutant"], []).append(Fraction(r["value"]))
    assert all(len(v) == 24 for v in values.values())
    for pol in ("so2", "no2", "co", "pm10", "pm2_5"):
        mean = sum(values[pol]) / 24
        assert abs(Fraction(rec[f"{pol}_24h"]) - mean) <= Fraction(1, 2 * 10**6), pol
        assert rec[f"{pol}_24h_hours"] == 24
    o3 = values["o3"]  # ordered by hour: refetch with ordering for the 8 h windows
    async with rig.pool.acquire() as conn:
        o3 = [Fraction(r["value"]) for r in await conn.fetch(
            "SELECT value FROM observations WHERE station_code = 'LF02' AND pollutant = 'o3' "
            "AND hour_end BETWEEN $1 AND $2 ORDER BY hour_end", first, last)]
    mda8 = max(sum(o3[end - 8:end]) / 8 for end in range(8, 25))
    assert abs(Fraction(rec["o3_8h_24h"]) - mda8) <= Fraction(1, 2 * 10**6)
    assert rec["o3_8h_24h_windows"] == 17
    columns = {"so2": "so2_24h", "no2": "no2_24h", "co": "co_24h", "pm10": "pm10_24h",
               "pm2_5": "pm2_5_24h"}
    iaqis = {p: expected_iaqi(S2026, c, rec[f"{p}_24h"])[0] for p, c in columns.items()}
    iaqis["o3"] = expected_iaqi(S2026, "o3_8h", rec["o3_8h_24h"])[0]
    assert rec["aqi"] == max(iaqis.values())
    assert city is not None and city["stations"] == 11


async def test_catch_up_polls_only_the_stations_missing_the_hour(rig: Rig) -> None:
    rig.sim.faults.add("down", "LF02", count=2)  # fails the run (one retry) then recovers
    first = await rig.collector.run("scheduled")
    assert first.failed == 1
    catch_up = await rig.collector.run("catch-up", only_missing=True)
    assert catch_up.polled == 1 and catch_up.outcomes == {"LF02": "ok"}
    hour = rig.clock.now.replace(minute=0, second=0, microsecond=0)
    assert await count(rig.pool, "SELECT count(*) FROM observations WHERE hour_end = $1",
                       hour) == 66


VENDOR_CODES = {"so2": "SO2", "no2": "NO2", "co": "CO", "o3": "O3", "pm10": "PM10",
                "pm2_5": "PM2.5"}


@pytest.fixture
async def vendor_logger(clock, serve_app) -> AsyncIterator[str]:
    """A vendor's data logger: its own JSON shape, hour-beginning local times, string values."""
    async def hourly(request: web.Request) -> web.Response:
        latest = clock.now.replace(minute=0, second=0, microsecond=0)
        since = datetime.fromisoformat(request.query["since"])
        rows = []
        hour = latest
        while hour > since:
            local = (hour - HOUR) + timedelta(hours=8)  # naive China Standard Time
            row = {"DataTime": local.strftime("%Y-%m-%d %H:%M:%S")}
            for i, code in enumerate(VENDOR_CODES.values()):
                row[code] = "0.8" if code == "CO" else str(20 + i)
                row[f"{code}_Flag"] = "N"
            rows.append(row)
            hour -= HOUR
        return web.Response(text=json.dumps({"result": {"rows": rows}}),
                            content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/{code}/hourly", hourly)
    async with serve_app(app) as base:
        yield f"{base}/api/{{code}}/hourly"


async def test_http_source_with_a_field_mapping(config: Config, pool: asyncpg.Pool, clock,
                                                vendor_logger: str) -> None:
    source = HttpSource(
        url=vendor_logger, records="result.rows", time="DataTime",
        time_convention="hour-beginning", fields=VENDOR_CODES,
        flags={p: f"{c}_Flag" for p, c in VENDOR_CODES.items()})
    station = StationConfig(code="VND1", name_zh="厂商站", name_en="Vendor station",
                            lat=39.5, lon=116.7, source="http", http=source)
    cfg = replace(config, stations=(station,))
    async with pool.acquire() as conn:
        await stations.sync_stations(conn, cfg.stations)
    session = create_session(cfg.collection)
    try:
        summary = await Collector(pool, session, cfg, None, clock=clock).run("test",
                                                                            lookback_hours=5)
    finally:
        await session.close()
    assert summary.outcomes == {"VND1": "ok"}
    hour = clock.now.replace(minute=0, second=0, microsecond=0)
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT pollutant, value, hour_end FROM observations "
                                "ORDER BY hour_end, pollutant")
    assert len(rows) == 5 * 6
    assert max(r["hour_end"] for r in rows) == hour  # hour-beginning 09:00 → ending 10:00
    assert {r["pollutant"]: r["value"] for r in rows if r["hour_end"] == hour}["co"] == \
        Decimal("0.8")
