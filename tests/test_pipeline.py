"""The hourly pipeline end to end: simulator (real HTTP) → collector → PostgreSQL.

Expected AQIs come from the independent reference (tests/aqi_reference.py: the §2 table
typed in, Fraction arithmetic), applied to the values stored; 24 h means are recomputed
here from the stored hourly values.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from fractions import Fraction

import asyncpg
import pytest
from aqi_reference import S2026, expected_iaqi, level_of
from pipeline_support import RT_2026_COLUMNS, Rig, count, target_hour

from aqi_service.collect.client import create_session
from aqi_service.collect.collector import Collector
from aqi_service.config import Config
from aqi_service.simulator import SimStation, Simulator, run_simulator, simulator_url
from aqi_service.storage import migrations, stations

pytestmark = pytest.mark.db

HOUR = timedelta(hours=1)
POLLUTANTS = ("so2", "no2", "co", "o3", "pm10", "pm2_5")


async def test_collection_stores_every_station_and_pollutant_with_exact_aqi(rig: Rig) -> None:
    summary = await rig.collector.run("test")
    hour = target_hour(rig)
    assert summary.status == "ok" and summary.ok == 11 and summary.failed == 0
    assert await count(rig.pool, "SELECT count(*) FROM observations WHERE hour_end = $1",
                       hour) == 11 * 6
    async with rig.pool.acquire() as conn:
        obs = await conn.fetch(
            "SELECT station_code, pollutant, value FROM observations "
            "WHERE hour_end = $1 AND valid", hour)
        recs = {r["station_code"]: r for r in await conn.fetch(
            "SELECT *, pollutant_names(primary_mask) AS primary_pollutants FROM station_hourly "
            "WHERE hour_end = $1", hour)}
    assert sorted(recs) == [s.code for s in rig.config.stations]
    values: dict[str, dict[str, object]] = {}
    for r in obs:
        values.setdefault(r["station_code"], {})[r["pollutant"]] = r["value"]
    for code, rec in recs.items():
        iaqis = {}
        for pol in POLLUTANTS:
            iaqi, _ = expected_iaqi(S2026, RT_2026_COLUMNS[pol], values[code][pol])
            if pol == "so2" and values[code][pol] > 800:
                iaqi = 200
            iaqis[pol] = iaqi
            assert rec[f"iaqi_{pol}"] == iaqi, (code, pol)
        aqi = max(iaqis.values())
        assert rec["aqi"] == aqi, code
        assert rec["level"] == level_of(aqi)[0]
        assert rec["scheme"] == "HJ633-2026"
        primary = sorted(p for p, v in iaqis.items() if v == aqi) if aqi > 50 else []
        assert list(rec["primary_pollutants"]) == primary


async def test_24h_means_and_valid_hours_match_the_stored_hours(rig: Rig) -> None:
    await rig.collector.run("test")
    hour = target_hour(rig)
    async with rig.pool.acquire() as conn:
        hours = await conn.fetch(
            "SELECT hour_end, value FROM observations WHERE station_code = 'LF05' "
            "AND pollutant = 'pm2_5' AND valid AND hour_end > $1 AND hour_end <= $2",
            hour - 24 * HOUR, hour)
        rec = await conn.fetchrow(
            "SELECT pm2_5_24h, pm2_5_24h_hours, o3_8h, o3_8h_hours FROM station_hourly "
            "WHERE station_code = 'LF05' AND hour_end = $1", hour)
        o3 = await conn.fetch(
            "SELECT value FROM observations WHERE station_code = 'LF05' AND pollutant = 'o3' "
            "AND valid AND hour_end > $1 AND hour_end <= $2", hour - 8 * HOUR, hour)
    assert len(hours) == 24 and rec["pm2_5_24h_hours"] == 24
    mean = sum(Fraction(r["value"]) for r in hours) / 24
    assert abs(Fraction(rec["pm2_5_24h"]) - mean) <= Fraction(1, 2 * 10**6)
    mean8 = sum(Fraction(r["value"]) for r in o3) / len(o3)
    assert rec["o3_8h_hours"] == 8
    assert abs(Fraction(rec["o3_8h"]) - mean8) <= Fraction(1, 2 * 10**6)


async def test_city_record_is_computed_from_station_means(rig: Rig) -> None:
    await rig.collector.run("test")
    hour = target_hour(rig)
    async with rig.pool.acquire() as conn:
        city = await conn.fetchrow("SELECT * FROM city_hourly WHERE hour_end = $1", hour)
        pm = await conn.fetch("SELECT pm2_5 FROM station_hourly WHERE hour_end = $1", hour)
    assert city is not None and city["stations"] == 11
    mean = sum(Fraction(r["pm2_5"]) for r in pm) / 11
    assert abs(Fraction(city["pm2_5"]) - mean) <= Fraction(1, 2 * 10**6)
    expected, _ = expected_iaqi(S2026, "pm2_5_24h", city["pm2_5"])
    assert city["iaqi_pm2_5"] == expected


async def test_outage_of_a_day_is_back_filled_without_duplicates(rig: Rig) -> None:
    await rig.collector.run("test")
    start = target_hour(rig)
    rig.sim.faults.add("down", "LF03")
    for _ in range(3):  # three hourly runs during the outage: the cursor must not move
        rig.clock.now += 8 * HOUR
        summary = await rig.collector.run("test")
        assert summary.outcomes["LF03"] == "http_5xx"
        assert summary.ok == 10
    rig.sim.faults.clear()
    rig.clock.now += 1 * HOUR  # 25 hours after the last good poll
    summary = await rig.collector.run("test")
    assert summary.outcomes["LF03"] == "ok"
    end = target_hour(rig)
    assert end - start == 25 * HOUR
    per_hour = await count(
        rig.pool, "SELECT count(DISTINCT hour_end) FROM observations WHERE station_code = "
        "'LF03' AND hour_end > $1 AND hour_end <= $2", start, end)
    assert per_hour == 25
    rows = await count(
        rig.pool, "SELECT count(*) FROM observations WHERE station_code = 'LF03' "
        "AND hour_end > $1 AND hour_end <= $2", start, end)
    assert rows == 25 * 6
    assert summary.backfilled >= 24
    assert await count(rig.pool, "SELECT count(*) FROM station_hourly WHERE station_code = "
                       "'LF03' AND hour_end > $1 AND hour_end <= $2", start, end) == 25


async def test_repeated_polls_store_nothing_twice_and_revise_changed_values(rig: Rig) -> None:
    await rig.collector.run("test")
    hour = target_hour(rig)
    total = await count(rig.pool, "SELECT count(*) FROM observations")
    async with rig.pool.acquire() as conn:
        before = await conn.fetch("SELECT station_code, pollutant, hour_end, updated_at "
                                  "FROM observations ORDER BY 1, 2, 3")
    again = await rig.collector.run("test", lookback_hours=72)
    assert again.observations == 0
    async with rig.pool.acquire() as conn:
        after = await conn.fetch("SELECT station_code, pollutant, hour_end, updated_at "
                                 "FROM observations ORDER BY 1, 2, 3")
    assert before == after and await count(rig.pool, "SELECT count(*) FROM observations") == total
    assert await count(rig.pool, "SELECT count(*) FROM revisions") == 0

    revised_hour = hour - HOUR
    rig.sim.faults.add("revised_value", "LF07", hours=[revised_hour],
                       value={"pollutant": "pm2_5", "delta": 40})
    async with rig.pool.acquire() as conn:
        old = await conn.fetchval("SELECT value FROM observations WHERE station_code = 'LF07' "
                                  "AND pollutant = 'pm2_5' AND hour_end = $1", revised_hour)
        old_aqi = await conn.fetchval("SELECT iaqi_pm2_5 FROM station_hourly WHERE "
                                      "station_code = 'LF07' AND hour_end = $1", revised_hour)
    third = await rig.collector.run("test")
    assert third.observations == 1
    assert await count(rig.pool, "SELECT count(*) FROM observations") == total
    async with rig.pool.acquire() as conn:
        new = await conn.fetchrow("SELECT value, revision FROM observations WHERE station_code "
                                  "= 'LF07' AND pollutant = 'pm2_5' AND hour_end = $1",
                                  revised_hour)
        log_rows = await conn.fetch("SELECT * FROM revisions WHERE kind = 'observation'")
        rec = await conn.fetchrow("SELECT iaqi_pm2_5, revision FROM station_hourly WHERE "
                                  "station_code = 'LF07' AND hour_end = $1", revised_hour)
        rec_revs = await conn.fetch("SELECT field FROM revisions WHERE kind = 'station_hourly' "
                                    "AND subject = 'LF07' AND period_end = $1", revised_hour)
    assert new["value"] == old + 40 and new["revision"] == 1
    assert len(log_rows) == 1
    assert log_rows[0]["old_value"].split()[0] == str(old)
    assert log_rows[0]["new_value"].split()[0] == str(old + 40)
    assert rec["revision"] == 1 and rec["iaqi_pm2_5"] >= old_aqi
    assert "pm2_5" in {r["field"] for r in rec_revs}


TRANSPORT = {"down": "http_5xx", "http_500": "http_5xx", "malformed_json": "malformed_json",
             "wrong_content": "malformed_json", "timeout": "timeout"}
DATA = {"out_of_range": "out_of_range", "negative": "negative", "non_numeric": "non_numeric",
        "bad_timestamp": None}
FLAGS = {"flag_maintenance": "M", "flag_calibration": "C", "flag_fault": "D"}


@pytest.mark.parametrize("kind", sorted(TRANSPORT))
async def test_transport_faults_fail_one_station_only(rig: Rig, kind: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    value = 5 if kind == "timeout" else None
    rig.sim.faults.add(kind, "LF02", value=value)
    with caplog.at_level(logging.WARNING):
        summary = await rig.collector.run("test")
    assert summary.outcomes["LF02"] == TRANSPORT[kind]
    assert summary.failed == 1 and summary.ok == 10
    assert any("LF02" in r.getMessage() and TRANSPORT[kind] in r.getMessage()
               for r in caplog.records)
    assert await count(rig.pool, "SELECT count(*) FROM observations WHERE station_code = "
                       "'LF02'") == 0
    assert await count(rig.pool, "SELECT count(*) FROM observations") == 10 * 72 * 6
    async with rig.pool.acquire() as conn:
        poll = await conn.fetchrow("SELECT outcome, attempts FROM station_polls WHERE "
                                   "station_code = 'LF02'")
    assert poll["outcome"] == TRANSPORT[kind]
    if kind != "wrong_content":
        assert poll["attempts"] == 2  # one retry (retries = 1 in the test config)


@pytest.mark.parametrize("kind", sorted(DATA))
async def test_bad_values_are_rejected_and_never_stored(rig: Rig, kind: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    hour = target_hour(rig)
    rig.sim.faults.add(kind, "LF04", hours=[hour])
    with caplog.at_level(logging.WARNING):
        summary = await rig.collector.run("test")
    assert summary.rejected >= 1
    assert summary.ok == 11
    async with rig.pool.acquire() as conn:
        rejected = await conn.fetch("SELECT * FROM rejected_values")
        stored = await conn.fetch("SELECT value FROM observations WHERE station_code = 'LF04' "
                                  "AND hour_end = $1", hour)
    assert {r["station_code"] for r in rejected} == {"LF04"}
    if DATA[kind]:
        assert {r["reason"] for r in rejected} == {DATA[kind]}
    assert all(r["value"] is None or 0 <= r["value"] < 10000 for r in stored)
    assert len(stored) < 6
    assert any("rejected" in r.getMessage() for r in caplog.records)
    assert await count(rig.pool, "SELECT count(*) FROM observations WHERE station_code <> "
                       "'LF04'") == 10 * 72 * 6


@pytest.mark.parametrize("kind", sorted(FLAGS))
async def test_flagged_values_are_kept_but_never_valid(rig: Rig, kind: str) -> None:
    hour = target_hour(rig)
    rig.sim.faults.add(kind, "LF06", hours=[hour])
    summary = await rig.collector.run("test")
    assert summary.ok == 11
    async with rig.pool.acquire() as conn:
        flagged = await conn.fetch("SELECT flag, valid FROM observations WHERE "
                                   "station_code = 'LF06' AND hour_end = $1", hour)
        rec = await conn.fetchrow("SELECT aqi, flags, pollutant_names(missing_mask) AS "
                                  "missing_pollutants FROM station_hourly "
                                  "WHERE station_code = 'LF06' AND hour_end = $1", hour)
    assert flagged and all(not r["valid"] and r["flag"] == FLAGS[kind] for r in flagged)
    assert set(rec["flags"].values()) == {FLAGS[kind]}
    assert sorted(rec["missing_pollutants"]) == sorted(POLLUTANTS)
    assert rec["aqi"] is None


async def test_missing_duplicate_and_silent_hours(rig: Rig) -> None:
    hour = target_hour(rig)
    rig.sim.faults.add("missing_hour", "LF08", hours=[hour - 2 * HOUR])
    rig.sim.faults.add("duplicate_hour", "LF09", hours=[hour - HOUR])
    rig.sim.faults.add("silent", "LF10")
    summary = await rig.collector.run("test")
    assert summary.ok == 11
    assert await count(rig.pool, "SELECT count(*) FROM observations WHERE station_code = "
                       "'LF08' AND hour_end = $1", hour - 2 * HOUR) == 0
    assert await count(rig.pool, "SELECT count(*) FROM observations WHERE station_code = "
                       "'LF09' AND hour_end = $1", hour - HOUR) == 6
    rig.clock.now += 2 * HOUR
    await rig.collector.run("test")
    newest = await count(rig.pool, "SELECT count(*) FROM observations WHERE station_code = "
                         "'LF10' AND hour_end > $1", hour)
    assert newest == 0


async def test_late_hour_arrives_on_a_later_poll(rig: Rig) -> None:
    hour = target_hour(rig)
    rig.sim.faults.add("late_hour", "LF11", hours=[hour], value=3000)
    await rig.collector.run("test")
    assert await count(rig.pool, "SELECT count(*) FROM observations WHERE station_code = "
                       "'LF11' AND hour_end = $1", hour) == 0
    rig.clock.now += HOUR
    summary = await rig.collector.run("catch-up")
    assert await count(rig.pool, "SELECT count(*) FROM observations WHERE station_code = "
                       "'LF11' AND hour_end = $1", hour) == 6
    assert summary.ok == 11


async def test_migrations_applied_twice_change_nothing(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        schema = """
            SELECT table_name, column_name, data_type FROM information_schema.columns
            WHERE table_schema = 'public' ORDER BY 1, 2
        """
        before = await conn.fetch(schema)
        indexes = await conn.fetch("SELECT indexname FROM pg_indexes WHERE schemaname = "
                                   "'public' ORDER BY 1")
        assert await migrations.migrate(conn) == []
        assert await migrations.migrate(conn) == []
        assert await conn.fetch(schema) == before
        assert await conn.fetch("SELECT indexname FROM pg_indexes WHERE schemaname = 'public' "
                                "ORDER BY 1") == indexes
        assert await migrations.current_version(conn) == migrations.latest_version()
    finally:
        await conn.close()


async def test_a_one_connection_pool_cannot_deadlock_the_pipeline(
        config: Config, db_dsn: str, clock) -> None:
    from aqi_service.storage.db import _init_connection

    small = await asyncpg.create_pool(db_dsn, min_size=1, max_size=1, init=_init_connection)
    sim = Simulator([SimStation(s.code, s.lat, s.lon) for s in config.stations], clock=clock)
    runner = await run_simulator(sim, "127.0.0.1", 0)
    session = create_session(config.collection)
    try:
        async with small.acquire() as conn:
            await stations.sync_stations(conn, config.stations)
        collector = Collector(small, session, config, simulator_url(runner), clock=clock)
        summary = await asyncio.wait_for(collector.run("test"), timeout=60)
        assert summary.ok == 11 and summary.observations == 11 * 72 * 6
    finally:
        await session.close()
        await runner.cleanup()
        await small.close()
