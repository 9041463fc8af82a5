"""The station simulator (aqi_service.simulator) over real HTTP on loopback.

The simulator's clock is fixed (and moved by hand) so "the latest hour" is known:
NOW is 2026-11-26 16:20 in Asia/Shanghai, whose latest published hour is 16:00.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from collections.abc import AsyncIterator
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from process_support import free_port

from aqi_service.errors import ConfigError
from aqi_service.simulator import (
    LANGFANG_STATIONS,
    POLLUTANTS,
    BadParameter,
    FaultKind,
    FaultRates,
    SimStation,
    Simulator,
    SimulatorConfig,
    add_simulate_parser,
    create_simulator_app,
    load_stations,
    run_simulator,
    simulator_ctx,
    simulator_url,
)
from aqi_service.simulator.cli import config_from_args

CST = timezone(timedelta(hours=8))


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
          second: int = 0) -> datetime:
    """A time in Asia/Shanghai."""
    return datetime(year, month, day, hour, minute, second, tzinfo=CST)


NOW = local(2026, 11, 26, 16, 20)
LATEST = local(2026, 11, 26, 16)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def sim(clock: Clock) -> Simulator:
    return Simulator(list(LANGFANG_STATIONS), clock=clock)


async def serve(sim: Simulator) -> TestClient:
    client = TestClient(TestServer(create_simulator_app(sim), host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[TestClient]:
    client = await serve(sim)
    yield client
    await client.close()


async def hourly(client: TestClient, code: str = "LF01", status: int = 200,
                 **params: str) -> dict[str, Any]:
    """GET /stations/{code}/hourly and decode the JSON body, checking the status."""
    params.setdefault("since", (LATEST - timedelta(hours=6)).isoformat())
    resp = await client.get(f"/stations/{code}/hourly", params=params)
    body = await resp.json()
    assert resp.status == status, body
    return body


async def records(client: TestClient, code: str = "LF01", **params: str) -> list[dict]:
    return (await hourly(client, code, **params))["records"]


def times(recs: list[dict]) -> list[str]:
    return [r["time"] for r in recs]


def by_time(recs: list[dict]) -> dict[str, dict]:
    return {r["time"]: r for r in recs}


def year_values(sim: Simulator, code: str, year: int = 2026) -> dict[str, np.ndarray]:
    return sim.values(code, local(year, 1, 1, 1), local(year + 1, 1, 1, 0))


def year_hours(year: int = 2026) -> tuple[np.ndarray, np.ndarray]:
    """(month, hour-ending label hour) of every hour of a year, in Asia/Shanghai."""
    start = local(year, 1, 1, 1)
    stamps = [start + timedelta(hours=i) for i in range(365 * 24)]
    return np.array([t.month for t in stamps]), np.array([t.hour for t in stamps])


# --- stations -------------------------------------------------------------------------


async def test_stations_lists_the_langfang_stations(client: TestClient) -> None:
    resp = await client.get("/stations")
    assert resp.status == 200
    stations = (await resp.json())["stations"]
    assert [s["code"] for s in stations] == [f"LF{i:02d}" for i in range(1, 12)]
    assert stations[3] == {"code": "LF04", "name": "三河市", "lat": 39.983, "lon": 117.078}


async def test_extra_stations_are_synthetic_and_stable(clock: Clock) -> None:
    sim = Simulator(list(LANGFANG_STATIONS), extra_stations=5, clock=clock)
    client = await serve(sim)
    try:
        stations = (await (await client.get("/stations")).json())["stations"]
        recs = await records(client, "SYN00003")
    finally:
        await client.close()
    synthetic = stations[11:]
    assert [s["code"] for s in synthetic] == [f"SYN{i:05d}" for i in range(1, 6)]
    for s in synthetic:
        assert 38.6 <= s["lat"] <= 40.1 and 116.1 <= s["lon"] <= 117.2
    assert len(recs) == 6
    other = Simulator(list(LANGFANG_STATIONS), seed=7, extra_stations=3, clock=clock)
    assert other.stations[11:14] == sim.stations[11:14]


def test_station_codes_must_be_unique() -> None:
    with pytest.raises(ConfigError, match="unique"):
        Simulator([SimStation("A", 39.5, 116.7), SimStation("A", 39.6, 116.8)])


# --- hourly records: shape, labels, ranges ----------------------------------------------


async def test_hourly_payload_is_hour_ending_local_time(client: TestClient) -> None:
    body = await hourly(client, since=local(2026, 11, 26, 11).isoformat())
    assert body["station_code"] == "LF01"
    assert body["time_convention"] == "hour-ending"
    assert body["timezone"] == "Asia/Shanghai"
    assert body["units"] == {"so2": "µg/m³", "no2": "µg/m³", "co": "mg/m³", "o3": "µg/m³",
                             "pm10": "µg/m³", "pm2_5": "µg/m³"}
    recs = body["records"]
    assert times(recs) == [f"2026-11-26T{h}:00:00+08:00" for h in range(12, 17)]
    for rec in recs:
        # All flags are N (normal) here, so the compact form leaves them out.
        assert list(rec) == ["time", *POLLUTANTS]
        for p in POLLUTANTS:
            value = rec[p]
            if p == "co":
                assert isinstance(value, float) and round(value, 3) == value
            else:
                assert isinstance(value, int)
            assert value >= 0


def test_values_are_plausible_over_a_year(sim: Simulator) -> None:
    for code in ("LF01", "LF04", "LF11"):
        v = year_values(sim, code)
        for p in POLLUTANTS:
            assert (v[p] >= 0).all()
        assert 250 <= v["pm2_5"].max() <= 900
        assert v["so2"].min() >= 2 and np.percentile(v["so2"], 99) <= 60
        assert v["co"].min() >= 0.1 and v["co"].max() <= 6
        assert 150 <= v["o3"].max() <= 400
        assert 15 <= np.median(v["no2"]) <= 45
        assert 1.3 <= np.median(v["pm10"] / v["pm2_5"]) <= 2.0
        assert np.all(v["co"] == np.round(v["co"], 3))
        assert np.all(v["pm2_5"] == np.rint(v["pm2_5"]))


async def test_since_is_exclusive_and_until_inclusive(client: TestClient) -> None:
    recs = await records(client, since=local(2026, 11, 26, 10).isoformat(),
                         until=local(2026, 11, 26, 13).isoformat())
    assert times(recs) == [f"2026-11-26T{h}:00:00+08:00" for h in (11, 12, 13)]
    # Off the hour: the first hour after since, the last hour at or before until.
    recs = await records(client, since=local(2026, 11, 26, 10, 30).isoformat(),
                         until=local(2026, 11, 26, 13, 59).isoformat())
    assert times(recs)[0] == "2026-11-26T11:00:00+08:00"
    assert times(recs)[-1] == "2026-11-26T13:00:00+08:00"
    # UTC and offset-less (Asia/Shanghai) inputs mean the same hours.
    assert await records(client, since="2026-11-26T02:00:00Z", until="2026-11-26T13:00") \
        == recs
    # until beyond the latest hour is capped; an empty range is not an error.
    recs = await records(client, since=local(2026, 11, 26, 14).isoformat(),
                         until=local(2026, 11, 27).isoformat())
    assert times(recs) == ["2026-11-26T15:00:00+08:00", "2026-11-26T16:00:00+08:00"]
    assert await records(client, since=LATEST.isoformat()) == []
    assert await records(client, since=local(2026, 11, 26, 12).isoformat(),
                         until=local(2026, 11, 26, 12).isoformat()) == []


async def test_unescaped_plus_in_query_is_accepted(client: TestClient) -> None:
    resp = await client.get("/stations/LF01/hourly?since=2026-11-26T14:00:00+08:00")
    assert resp.status == 200
    assert len((await resp.json())["records"]) == 2


async def test_latest_hour_follows_the_clock(sim: Simulator, clock: Clock,
                                             client: TestClient) -> None:
    since = local(2026, 11, 26, 14).isoformat()
    clock.now = local(2026, 11, 26, 16, 59, 59)
    assert times(await records(client, since=since))[-1] == "2026-11-26T16:00:00+08:00"
    clock.now = local(2026, 11, 26, 17)
    assert times(await records(client, since=since))[-1] == "2026-11-26T17:00:00+08:00"
    assert sim.latest_hour() == local(2026, 11, 26, 17)


async def test_publish_delay_postpones_the_latest_hour(clock: Clock) -> None:
    sim = Simulator(list(LANGFANG_STATIONS), clock=clock, publish_delay_s=600)
    client = await serve(sim)
    try:
        clock.now = local(2026, 11, 26, 17, 9)
        since = local(2026, 11, 26, 15).isoformat()
        assert times(await records(client, since=since))[-1] == "2026-11-26T16:00:00+08:00"
        clock.now = local(2026, 11, 26, 17, 10)
        assert times(await records(client, since=since))[-1] == "2026-11-26T17:00:00+08:00"
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("", "missing_since"),
        ("?since=yesterday", "bad_time"),
        ("?since=2026-11-26T10:00:00%2B08:00&until=soon", "bad_time"),
        ("?since=2026-10-26T15:59:00%2B08:00", "range_too_long"),
        ("?since=2026-01-01T00:00:00%2B08:00&until=2026-03-01T00:00:00%2B08:00",
         "range_too_long"),
    ],
)
async def test_bad_parameters_are_400_json(client: TestClient, query: str, code: str) -> None:
    resp = await client.get(f"/stations/LF01/hourly{query}")
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == code and error["message"]


async def test_31_days_is_the_longest_range(client: TestClient) -> None:
    recs = await records(client, since=(LATEST - timedelta(days=31)).isoformat())
    assert len(recs) == 31 * 24


async def test_unknown_station_and_path_are_404_json(client: TestClient) -> None:
    body = await hourly(client, "LF99", status=404)
    assert body["error"]["code"] == "unknown_station"
    resp = await client.get("/nowhere")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"
    resp = await client.post("/stations")
    assert resp.status == 405


# --- determinism ------------------------------------------------------------------------


async def test_values_are_deterministic_and_random_access(client: TestClient,
                                                          clock: Clock) -> None:
    since = (LATEST - timedelta(days=3)).isoformat()
    first = await records(client, since=since)
    assert await records(client, since=since) == first
    # A sub-range asked later, from another instance with extra stations, agrees.
    other = Simulator(list(LANGFANG_STATIONS), extra_stations=50, clock=clock)
    part = other.hourly_records("LF01", LATEST - timedelta(hours=30),
                                LATEST - timedelta(hours=10))
    # The wire leaves out N flags; the Python API spells every flag out.
    compact = [{k: v for k, v in r.items() if not (k.endswith("_flag") and v == "N")}
               for r in part]
    assert compact == first[-30:-10]
    # values() is the same series.
    v = other.values("LF01", LATEST - timedelta(hours=71), LATEST)
    assert [r["pm2_5"] for r in first] == v["pm2_5"].astype(int).tolist()
    assert [r["co"] for r in first] == v["co"].tolist()


def test_another_seed_gives_other_values(clock: Clock) -> None:
    a = Simulator(list(LANGFANG_STATIONS), seed=2014, clock=clock)
    b = Simulator(list(LANGFANG_STATIONS), seed=2015, clock=clock)
    start, end = LATEST - timedelta(days=7), LATEST
    va, vb = a.values("LF01", start, end), b.values("LF01", start, end)
    for p in POLLUTANTS:
        assert not np.array_equal(va[p], vb[p])
    assert np.array_equal(va["pm2_5"], Simulator(list(LANGFANG_STATIONS)).values(
        "LF01", start, end)["pm2_5"])


# --- realism ----------------------------------------------------------------------------


def test_winter_pm25_far_above_summer(sim: Simulator) -> None:
    month, _ = year_hours()
    winter = (month == 1) | (month == 12)
    severe = 0
    for code in ("LF01", "LF06", "LF09"):
        pm = year_values(sim, code)["pm2_5"]
        assert pm[winter].mean() > 2 * pm[month == 7].mean()
        assert pm[month == 7].mean() < 45
        # Heating-season episodes: hours at AQI 300+ (PM2.5 > 250) in winter, none in summer.
        severe += (pm[winter] > 250).sum()
        assert (pm[(month >= 6) & (month <= 8)] > 250).sum() == 0
    assert severe >= 10


def test_episodes_last_days(sim: Simulator) -> None:
    pm = year_values(sim, "LF01")["pm2_5"]
    daily = pm.reshape(365, 24).mean(axis=1)
    # Consecutive days resemble each other (lag-1 autocorrelation of daily means).
    assert np.corrcoef(daily[:-1], daily[1:])[0, 1] > 0.5


def test_summer_ozone_peaks_in_the_afternoon(sim: Simulator) -> None:
    month, hour = year_hours()
    o3 = year_values(sim, "LF01")["o3"]
    july = month == 7
    profile = np.array([o3[july & (hour == h)].mean() for h in range(24)])
    assert int(np.argmax(profile)) in (15, 16, 17)
    assert profile[[15, 16, 17]].mean() > 3 * profile[[3, 4, 5]].mean()
    daily_max = o3[july].reshape(-1, 24).max(axis=1)
    assert 150 <= np.median(daily_max) <= 280
    winter_afternoon = o3[(month == 1) & (hour == 16)].mean()
    assert winter_afternoon < profile[16] / 3


def test_no2_peaks_at_rush_hours(sim: Simulator) -> None:
    month, hour = year_hours()
    no2 = year_values(sim, "LF01")["no2"]
    jan = month == 1

    def mean_at(*hours: int) -> float:
        return float(no2[jan & np.isin(hour, hours)].mean())

    assert mean_at(9, 10) > 1.3 * mean_at(14, 15, 16)
    assert mean_at(20, 21, 22) > 1.5 * mean_at(14, 15, 16)


def test_spring_dust_raises_pm10(sim: Simulator) -> None:
    month, _ = year_hours()
    spring = (month >= 3) & (month <= 5)
    dusty = 0
    for code in ("LF01", "LF09"):
        v = year_values(sim, code)
        dusty += (spring & (v["pm10"] > 3 * v["pm2_5"]) & (v["pm10"] > 150)).sum()
        assert not ((month >= 10) & (v["pm10"] > 3 * v["pm2_5"])).any()
    assert dusty >= 5


def test_co_follows_pm_in_winter(sim: Simulator) -> None:
    month, _ = year_hours()
    v = year_values(sim, "LF01")
    jan = month == 1
    assert np.corrcoef(v["co"][jan], v["pm2_5"][jan])[0, 1] > 0.7
    assert v["co"][jan].mean() > 1.5 * v["co"][month == 7].mean()
    assert v["so2"][jan].mean() > 2 * v["so2"][month == 7].mean()


def test_nearby_stations_correlate_more(sim: Simulator) -> None:
    def r(a: str, b: str, month: int) -> float:
        start = local(2026, month, 1, 1)
        end = local(2026, month + 1, 1, 0)
        pa = sim.values(a, start, end)["pm2_5"]
        pb = sim.values(b, start, end)["pm2_5"]
        return float(np.corrcoef(pa, pb)[0, 1])

    near = [("LF01", "LF02"), ("LF01", "LF03"), ("LF02", "LF03")]  # Langfang city, < 10 km
    far = [("LF04", "LF11"), ("LF04", "LF10"), ("LF05", "LF11")]  # north vs south, > 110 km
    months = (1, 4, 7, 10)
    r_near = np.mean([r(a, b, m) for a, b in near for m in months])
    r_far = np.mean([r(a, b, m) for a, b in far for m in months])
    assert r_near > 0.75
    assert r_near > r_far + 0.15


# --- speed ------------------------------------------------------------------------------


async def test_2000_stations_by_72_hours_are_fast(clock: Clock) -> None:
    sim = Simulator([], extra_stations=2000, clock=clock)
    since = LATEST - timedelta(hours=72)
    started = time.process_time()
    total = sum(len(sim.hourly_records(s.code, since)) for s in sim.stations)
    elapsed = time.process_time() - started
    assert total == 2000 * 72
    assert elapsed < 8.0, f"{elapsed:.2f} s of CPU"
    # And over HTTP, a sample of them.
    client = await serve(sim)
    try:
        started = time.perf_counter()
        for s in sim.stations[:200]:
            assert len(await records(client, s.code, since=since.isoformat())) == 72
        assert time.perf_counter() - started < 8.0
    finally:
        await client.close()


# --- faults on demand -------------------------------------------------------------------


async def post_fault(client: TestClient, status: int = 201, **fault: Any) -> dict:
    resp = await client.post("/_faults", json=fault)
    body = await resp.json()
    assert resp.status == status, body
    return body


async def test_down_and_http_500_with_count(client: TestClient) -> None:
    await post_fault(client, station="LF01", kind="down", count=2)
    for _ in range(2):
        body = await hourly(client, status=503)
        assert body["error"]["code"] == "unavailable"
    await hourly(client)
    await post_fault(client, station="*", kind="http_500")
    body = await hourly(client, "LF07", status=500)
    assert body["error"] == {"code": "internal_error", "message": "internal error"}
    # The directory and the fault control never fail on purpose.
    assert (await client.get("/stations")).status == 200


async def test_station_faults_affect_only_that_station(client: TestClient) -> None:
    await post_fault(client, station="LF02", kind="down")
    await hourly(client, "LF02", status=503)
    await hourly(client, "LF01")


async def test_timeout_outlasts_the_client_timeout(sim: Simulator) -> None:
    client = await serve(sim)
    try:
        sim.faults.add("timeout", "LF01", value=30)
        with pytest.raises(asyncio.TimeoutError):
            await client.get("/stations/LF01/hourly",
                             params={"since": LATEST.isoformat()},
                             timeout=aiohttp.ClientTimeout(total=0.3))
        # A short timeout fault answers normally once it has waited.
        sim.faults.clear()
        sim.faults.add("timeout", "LF01", value=0.3, count=1)
        started = time.perf_counter()
        assert len(await records(client)) == 6
        assert time.perf_counter() - started >= 0.25
    finally:
        started = time.perf_counter()
        await client.close()
    # Shutting down wakes the handler still sleeping for the first fault.
    assert time.perf_counter() - started < 3.0


async def test_malformed_json_and_wrong_content(client: TestClient) -> None:
    await post_fault(client, station="LF01", kind="malformed_json", count=1)
    resp = await client.get("/stations/LF01/hourly", params={"since": LATEST.isoformat()})
    assert resp.status == 200 and resp.content_type == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(await resp.text())
    await post_fault(client, station="LF01", kind="wrong_content", count=1)
    resp = await client.get("/stations/LF01/hourly", params={"since": LATEST.isoformat()})
    assert resp.status == 200 and resp.content_type == "text/html"
    assert (await resp.text()).startswith("<!DOCTYPE html>")
    await hourly(client)


async def test_missing_and_duplicate_hours(client: TestClient) -> None:
    clean = await records(client)
    h14, h15 = local(2026, 11, 26, 14).isoformat(), local(2026, 11, 26, 15).isoformat()
    await post_fault(client, station="LF01", kind="missing_hour", hours=[h14])
    await post_fault(client, station="LF01", kind="duplicate_hour", hours=[h15])
    recs = await records(client)
    assert h14 not in times(recs)
    assert times(recs).count(h15) == 2
    assert [r for r in recs if r["time"] != h15] == [r for r in clean
                                                     if r["time"] not in (h14, h15)]


async def test_late_hour_appears_after_its_delay(client: TestClient, clock: Clock) -> None:
    await post_fault(client, station="LF01", kind="late_hour", value=1800)
    assert times(await records(client))[-1] == "2026-11-26T15:00:00+08:00"
    clock.now = local(2026, 11, 26, 16, 30)
    assert times(await records(client))[-1] == "2026-11-26T16:00:00+08:00"


async def test_revised_value_changes_later_answers(client: TestClient) -> None:
    h15 = local(2026, 11, 26, 15).isoformat()
    before = by_time(await records(client))
    await post_fault(client, station="LF01", kind="revised_value", hours=[h15],
                     value={"pollutant": "pm2_5", "delta": 15})
    after = by_time(await records(client))
    assert after[h15]["pm2_5"] == before[h15]["pm2_5"] + 15
    assert {k: v for k, v in after[h15].items() if k != "pm2_5"} == \
        {k: v for k, v in before[h15].items() if k != "pm2_5"}
    assert [r for t, r in after.items() if t != h15] == \
        [r for t, r in before.items() if t != h15]


@pytest.mark.parametrize(
    ("kind", "value", "pollutant", "expected"),
    [
        ("out_of_range", None, "pm2_5", 20000),
        ("sentinel", None, "pm2_5", 9999.9),
        ("sentinel", {"pollutant": "so2", "value": -99}, "so2", -99),
        ("sentinel", 9999, "pm2_5", 9999),
        ("negative", None, "pm2_5", -5),
        ("negative", {"pollutant": "co", "value": -0.4}, "co", -0.4),
        ("non_numeric", None, "pm2_5", "—"),
        ("non_numeric", {"pollutant": "o3", "value": "abc"}, "o3", "abc"),
    ],
)
async def test_bad_values(client: TestClient, kind: str, value: Any, pollutant: str,
                          expected: Any) -> None:
    h15 = local(2026, 11, 26, 15).isoformat()
    await post_fault(client, station="LF01", kind=kind, hours=[h15], value=value)
    recs = by_time(await records(client))
    assert recs[h15][pollutant] == expected
    others = [r[pollutant] for t, r in recs.items() if t != h15]
    assert all(isinstance(v, int | float) and v >= 0 for v in others)


async def test_pm2_5_above_pm10_lowers_pm10_below_pm2_5(client: TestClient) -> None:
    h15 = local(2026, 11, 26, 15).isoformat()
    before = by_time(await records(client))
    await post_fault(client, station="LF01", kind="pm25_above_pm10", hours=[h15], value=2)
    after = by_time(await records(client))
    assert after[h15]["pm2_5"] == before[h15]["pm2_5"] > 0
    assert after[h15]["pm10"] == before[h15]["pm2_5"] // 2 < after[h15]["pm2_5"]
    assert {t: r for t, r in after.items() if t != h15} == \
        {t: r for t, r in before.items() if t != h15}
    await post_fault(client, status=400, station="LF01", kind="pm25_above_pm10", value=0.9)


@pytest.mark.parametrize(("kind", "flag"), [("flag_maintenance", "M"),
                                            ("flag_calibration", "C"),
                                            ("flag_fault", "D")])
async def test_flags(sim: Simulator, client: TestClient, kind: str, flag: str) -> None:
    sim.faults.add(kind, "LF01", count=1)
    recs = await records(client)
    assert {r[f"{p}_flag"] for r in recs for p in POLLUTANTS} == {flag}
    sim.faults.add(kind, "LF01", value={"pollutant": "o3"})
    recs = await records(client)
    assert {r["o3_flag"] for r in recs} == {flag}
    assert {r["pm2_5_flag"] for r in recs} == {"N"}


async def test_bad_timestamps(sim: Simulator, client: TestClient) -> None:
    sim.faults.add("bad_timestamp", "LF01", hours=[local(2026, 11, 26, 15)], count=1)
    assert "2026-11-26T15:17:00+08:00" in times(await records(client))
    sim.faults.add("bad_timestamp", "LF01", hours=[local(2026, 11, 26, 15)], value="future")
    future = [datetime.fromisoformat(t) for t in times(await records(client))
              if datetime.fromisoformat(t) > NOW]
    assert len(future) == 1


async def test_silent_station_stops_reporting(sim: Simulator, clock: Clock,
                                              client: TestClient) -> None:
    sim.faults.add("silent", "LF03")
    clock.advance(hours=3)
    recs = await records(client, "LF03", since=local(2026, 11, 26, 12).isoformat())
    assert times(recs)[-1] == "2026-11-26T16:00:00+08:00"
    assert times(await records(client, "LF01"))[-1] == "2026-11-26T19:00:00+08:00"
    # An explicit start works the same way.
    sim.faults.add("silent", "LF05", value=local(2026, 11, 26, 13, 30).isoformat())
    recs = await records(client, "LF05", since=local(2026, 11, 26, 10).isoformat())
    assert times(recs)[-1] == "2026-11-26T13:00:00+08:00"


async def test_faults_expire_and_can_be_listed_and_removed(client: TestClient,
                                                           clock: Clock) -> None:
    until = (NOW + timedelta(minutes=30)).isoformat()
    added = (await post_fault(client, station="LF01", kind="down", until=until))["fault"]
    assert added["kind"] == "down" and added["station"] == "LF01"
    listed = await (await client.get("/_faults")).json()
    assert [f["id"] for f in listed["faults"]] == [added["id"]]
    assert listed["rates"] == {}
    await hourly(client, status=503)
    clock.advance(minutes=30)
    await hourly(client)
    assert (await (await client.get("/_faults")).json())["faults"] == []

    a = (await post_fault(client, kind="down"))["fault"]
    await post_fault(client, kind="http_500")
    resp = await client.delete(f"/_faults/{a['id']}")
    assert resp.status == 200
    assert (await client.delete(f"/_faults/{a['id']}")).status == 404
    await hourly(client, status=500)
    assert (await (await client.delete("/_faults")).json()) == {"cleared": 1}
    await hourly(client)


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ({"kind": "meteor"}, "bad_kind"),
        ({"station": "LF99", "kind": "down"}, "unknown_station"),
        ({"kind": "down", "count": 0}, "bad_count"),
        ({"kind": "down", "hours": ["2026-11-26T15:00:00+08:00"]}, "bad_hours"),
        ({"kind": "missing_hour", "hours": ["2026-11-26T15:30:00+08:00"]}, "bad_hour"),
        ({"kind": "negative", "value": 5}, "bad_value"),
        ({"kind": "sentinel", "value": "9999"}, "bad_value"),
        ({"kind": "pm25_above_pm10", "value": {"pollutant": "pm10"}}, "bad_value"),
        ({"kind": "flag_fault", "value": "pm25"}, "bad_value"),
        ({"kind": "down", "value": 1}, "bad_value"),
        ({"kind": "down", "colour": "red"}, "bad_fault"),
        ({"station": "LF01"}, "bad_fault"),
    ],
)
async def test_invalid_faults_are_400(client: TestClient, fault: dict, code: str) -> None:
    body = await post_fault(client, status=400, **fault)
    assert body["error"]["code"] == code


async def test_invalid_fault_body_is_400(client: TestClient) -> None:
    resp = await client.post("/_faults", data=b"{nope")
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "bad_json"


# --- faults by rate ---------------------------------------------------------------------


def test_rates_name_every_kind_and_are_checked() -> None:
    assert {f.name for f in fields(FaultRates)} == {k.value for k in FaultKind}
    assert FaultRates().nonzero() == {}
    with pytest.raises(BadParameter):
        FaultRates(down=1.5)
    with pytest.raises(BadParameter):
        FaultRates.from_mapping({"meteor": 0.1})


def test_transport_rates_are_deterministic(clock: Clock) -> None:
    rates = FaultRates(down=0.2, http_500=0.1)
    a = Simulator(list(LANGFANG_STATIONS), clock=clock, rates=rates)
    b = Simulator(list(LANGFANG_STATIONS), clock=clock, rates=rates)
    seq_a = [a.transport_fault("LF01") for _ in range(400)]
    assert seq_a == [b.transport_fault("LF01") for _ in range(400)]
    kinds = [f.kind if f else None for f in seq_a]
    assert 50 <= kinds.count(FaultKind.DOWN) <= 110
    assert 15 <= kinds.count(FaultKind.HTTP_500) <= 70
    c = Simulator(list(LANGFANG_STATIONS), seed=1, clock=clock, rates=rates)
    assert [c.transport_fault("LF01") for _ in range(400)] != seq_a


@pytest.mark.parametrize(("kind", "status", "content_type"), [
    ("down", 503, "application/json"),
    ("http_500", 500, "application/json"),
    ("malformed_json", 200, "application/json"),
    ("wrong_content", 200, "text/html"),
])
async def test_transport_faults_by_rate(clock: Clock, kind: str, status: int,
                                        content_type: str) -> None:
    sim = Simulator(list(LANGFANG_STATIONS), clock=clock,
                    rates=FaultRates.from_mapping({kind: 1.0}))
    client = await serve(sim)
    try:
        resp = await client.get("/stations/LF01/hourly", params={"since": LATEST.isoformat()})
        assert (resp.status, resp.content_type) == (status, content_type)
        if kind == "malformed_json":
            with pytest.raises(json.JSONDecodeError):
                json.loads(await resp.text())
        listed = await (await client.get("/_faults")).json()
        assert listed["rates"] == {kind: 1.0}
    finally:
        await client.close()


async def test_timeout_by_rate(clock: Clock) -> None:
    sim = Simulator(list(LANGFANG_STATIONS), clock=clock, rates=FaultRates(timeout=1.0))
    client = await serve(sim)
    try:
        with pytest.raises(asyncio.TimeoutError):
            await client.get("/stations/LF01/hourly", params={"since": LATEST.isoformat()},
                             timeout=aiohttp.ClientTimeout(total=0.2))
    finally:
        await client.close()


def month_of_records(clock: Clock, code: str = "LF01", **rates: float) -> list[dict]:
    sim = Simulator(list(LANGFANG_STATIONS), clock=clock, rates=FaultRates(**rates))
    return sim.hourly_records(code, LATEST - timedelta(days=31))


def test_no_faults_by_default(clock: Clock) -> None:
    recs = month_of_records(clock)
    assert len(recs) == 31 * 24
    assert {r.get(f"{p}_flag", "N") for r in recs for p in POLLUTANTS} == {"N"}
    assert all(isinstance(r[p], int | float) and r[p] >= 0 for r in recs for p in POLLUTANTS)
    assert all(r["time"].endswith(":00:00+08:00") for r in recs)


def test_data_faults_by_rate(clock: Clock) -> None:
    n = 31 * 24
    clean = month_of_records(clock)
    clean_times = set(times(clean))

    recs = month_of_records(clock, missing_hour=0.1)
    assert 0.8 * n < len(recs) < 0.97 * n
    assert set(times(recs)) < clean_times
    assert recs == month_of_records(clock, missing_hour=0.1)  # the same hours every time

    recs = month_of_records(clock, duplicate_hour=0.1)
    assert 1.03 * n < len(recs) < 1.2 * n and set(times(recs)) == clean_times

    recs = month_of_records(clock, out_of_range=0.05, negative=0.05, non_numeric=0.05)
    values = [r[p] for r in recs for p in POLLUTANTS]
    assert sum(v in (20000, 12000.5) for v in values) >= 10
    assert sum(isinstance(v, int | float) and v < 0 for v in values) >= 10
    assert sum(isinstance(v, str) for v in values) >= 10

    recs = month_of_records(clock, sentinel=0.05)
    values = [r[p] for r in recs for p in POLLUTANTS]
    found = {v for v in values if v in (9999.9, 9999, -99)}
    assert found == {9999.9, 9999, -99}
    assert sum(v in found for v in values) >= 20

    clean_pm = [(r["pm10"], r["pm2_5"]) for r in clean]
    recs = month_of_records(clock, pm25_above_pm10=0.05)
    inverted = [(r["pm10"], r["pm2_5"]) for r in recs if r["pm2_5"] > r["pm10"]]
    clean_inverted = [pair for pair in clean_pm if pair[1] > pair[0]]
    assert len(inverted) >= len(clean_inverted) + 20
    assert [r["pm2_5"] for r in recs] == [pm25 for _, pm25 in clean_pm]

    recs = month_of_records(clock, flag_maintenance=0.05, flag_calibration=0.05,
                            flag_fault=0.05)
    flags = [r.get(f"{p}_flag", "N") for r in recs for p in POLLUTANTS]
    assert {"M", "C", "D", "N"} == set(flags)

    recs = month_of_records(clock, bad_timestamp=0.05)
    stamps = [datetime.fromisoformat(t) for t in times(recs)]
    assert sum(t.minute != 0 for t in stamps) >= 5
    assert sum(t > NOW for t in stamps) >= 5


def test_late_and_revised_values_by_rate(clock: Clock) -> None:
    clean = by_time(month_of_records(clock))
    recs = by_time(month_of_records(clock, late_hour=0.5))
    recent = [t for t in clean if datetime.fromisoformat(t) > LATEST - timedelta(hours=3)]
    old = [t for t in clean if datetime.fromisoformat(t) <= LATEST - timedelta(hours=4)]
    assert set(old) <= set(recs)  # late hours do arrive in the end
    assert not set(recent) <= set(recs)

    revised = by_time(month_of_records(clock, revised_value=0.1))
    assert revised.keys() == clean.keys()
    changed = [t for t in clean if revised[t] != clean[t]]
    assert 20 <= len(changed) <= 150
    # A revision shows only some hours after the first publication.
    assert all(datetime.fromisoformat(t) <= LATEST - timedelta(hours=3) for t in changed)


def test_silent_outages_by_rate(clock: Clock) -> None:
    recs = month_of_records(clock, silent=0.01)
    present = {datetime.fromisoformat(t) for t in times(recs)}
    hours = [LATEST - timedelta(hours=i) for i in range(31 * 24)]
    gaps, run = [], 0
    for h in sorted(hours):
        if h in present:
            if run:
                gaps.append(run)
            run = 0
        else:
            run += 1
    assert gaps and max(gaps) >= 3  # outages last hours, not single missing hours


# --- running it -------------------------------------------------------------------------


async def test_run_simulator_on_a_free_port(sim: Simulator) -> None:
    runner = await run_simulator(sim, "127.0.0.1", 0)
    try:
        url = simulator_url(runner)
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session, \
                session.get(f"{url}/stations") as resp:
            assert resp.status == 200
            assert len((await resp.json())["stations"]) == 11
    finally:
        await runner.cleanup()


async def test_simulator_ctx_runs_with_another_app(sim: Simulator) -> None:
    """The simulator listens for as long as the app it is attached to lives, no longer."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/stations"
    app = web.Application()
    app.cleanup_ctx.append(simulator_ctx(sim, "127.0.0.1", port))
    runner = web.AppRunner(app)
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        with pytest.raises(aiohttp.ClientConnectionError):   # not before the app starts
            await session.get(url)
        await runner.setup()
        try:
            async with session.get(url) as resp:
                assert resp.status == 200
                codes = [s["code"] for s in (await resp.json())["stations"]]
            assert codes == [s.code for s in sim.stations]
        finally:
            await runner.cleanup()
        with pytest.raises(aiohttp.ClientConnectionError):   # and not after it stopped
            await session.get(url)


def test_cli_arguments_build_the_config(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_simulate_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["simulate"])
    config = config_from_args(args)
    assert (config.host, config.port, config.seed, config.extra_stations) == \
        ("127.0.0.1", 8081, 2014, 0)
    assert config.stations_file == Path("config/stations.toml")
    args = parser.parse_args([
        "simulate", "--port", "0", "--seed", "7", "--extra-stations", "3",
        "--stations-file", str(tmp_path / "none.toml"), "--fault-rate", "down=0.01",
        "--fault-rate", "missing_hour=0.02", "--fault-rate", "sentinel=0.05",
        "--fault-rate", "pm25_above_pm10=0.05",
    ])
    config = config_from_args(args)
    assert config.rates == FaultRates(down=0.01, missing_hour=0.02, sentinel=0.05,
                                      pm25_above_pm10=0.05)
    sim = config.build()
    assert len(sim.stations) == 14 and sim.seed == 7
    with pytest.raises(BadParameter):
        config_from_args(parser.parse_args(["simulate", "--fault-rate", "down"]))


def test_stations_file(tmp_path: Path) -> None:
    assert load_stations(tmp_path / "missing.toml") == list(LANGFANG_STATIONS)
    path = tmp_path / "stations.toml"
    path.write_text(
        '[[stations]]\ncode = "X1"\nname_zh = "一"\nname_en = "One"\nlat = 39.5\nlon = 116.7\n'
        '[[stations]]\ncode = "X2"\nname_en = "Two"\nlat = 39.6\nlon = 116.8\n',
        encoding="utf-8",
    )
    assert load_stations(path) == [SimStation("X1", 39.5, 116.7, "一"),
                                   SimStation("X2", 39.6, 116.8, "Two")]
    sim = SimulatorConfig(stations_file=path, extra_stations=2).build(clock=lambda: NOW)
    assert [s.code for s in sim.stations] == ["X1", "X2", "SYN00001", "SYN00002"]
    path.write_text('[[stations]]\ncode = "X1"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="lat"):
        load_stations(path)


def test_clock_must_be_aware() -> None:
    sim = Simulator(list(LANGFANG_STATIONS), clock=lambda: datetime(2026, 1, 1))
    with pytest.raises(ConfigError, match="aware"):
        sim.latest_hour()
    assert Simulator(list(LANGFANG_STATIONS)).now().tzinfo is not None
    assert math.isclose(Simulator(list(LANGFANG_STATIONS)).now().timestamp(),
                        datetime.now(UTC).timestamp(), abs_tol=5)
