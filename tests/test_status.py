"""The public status page and ``/api/v1/status``: figures equal the stored data, faults
show, the JSON conforms to the OpenAPI document, the page speaks zh and en."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient
from metrics_support import EXPECTED_AT_START, HOUR, STATIONS, collect, fault
from openapi_support import response_validator

from aqi_service.aqi.schemes import SHANGHAI
from aqi_service.web import keys
from aqi_service.web.openapi import document

pytestmark = pytest.mark.db


def conforms(doc: dict, data: dict) -> list[str]:
    """Errors of ``data`` against the 200 schema of /api/v1/status in ``doc``."""
    validator = response_validator(doc, "/api/v1/status", "200")
    return [e.message for e in validator.iter_errors(data)]


def local(when: datetime) -> str:
    """Beijing time to the second, as the status shows times."""
    return when.astimezone(SHANGHAI).replace(microsecond=0).isoformat()


async def test_status_json_equals_the_stored_data(quiet: TestClient, clock) -> None:
    resp = await quiet.get("/api/v1/status")
    assert resp.status == 200
    data = await resp.json()
    served = await (await quiet.get("/api/v1/openapi.json")).json()
    assert conforms(served, data) == []
    pool = quiet.app[keys.POOL]
    expected = EXPECTED_AT_START
    async with pool.acquire() as conn:
        hours_7d = {r["station_code"]: r["n"] for r in await conn.fetch(
            "SELECT station_code, count(DISTINCT hour_end) AS n FROM observations "
            "WHERE hour_end > $1 AND hour_end <= $2 GROUP BY station_code",
            expected - 168 * HOUR, expected)}
        published = {(r["station_code"], r["hour_end"]): r["first_published_at"]
                     for r in await conn.fetch(
                         "SELECT station_code, hour_end, first_published_at FROM station_hourly "
                         "WHERE hour_end > $1", expected - 12 * HOUR)}
        cursors = {r["station_code"]: r for r in await conn.fetch(
            "SELECT * FROM station_cursors")}
        run = await conn.fetchrow("SELECT * FROM collection_runs ORDER BY id DESC LIMIT 1")
    assert data["expected_hour"] == "2026-11-20T10:00:00+08:00"
    assert data["checked_at"] == "2026-11-20T10:20:00+08:00"
    assert data["summary"] == {"on_time": 11, "late": 0, "missing": 0, "maintenance": 0}
    assert [s["station_code"] for s in data["stations"]] == STATIONS
    for s in data["stations"]:
        code = s["station_code"]
        assert s["last_report"] == "2026-11-20T10:00:00+08:00"
        assert s["data_age_s"] == 20 * 60
        assert s["missing_hours_24h"] == 0
        # Two days back-filled: 48 of the last 168 hours are there.
        assert s["missing_hours_7d"] == 168 - hours_7d[code] == 120
        hours = s["publication"]["hours"]
        assert [h["time_point"] for h in hours] == [
            local(expected - i * HOUR) for i in range(11, -1, -1)]
        latencies = []
        for h in hours:
            hour = datetime.fromisoformat(h["time_point"]).astimezone(UTC)
            first = published[(code, hour)]
            assert h["published_at"] == local(first)
            assert h["latency_s"] == int((first - hour).total_seconds())
            latencies.append(h["latency_s"])
        assert s["publication"]["max_latency_s"] == max(latencies)
        assert s["collector"]["last_outcome"] == cursors[code]["last_outcome"] == "ok"
        assert s["collector"]["last_success_at"] == local(cursors[code]["last_success_at"])
        assert s["collector"]["consecutive_failures"] == 0
    c = data["collector"]
    assert c["state"] == "idle" and c["scheduler"] == "off" and c["leader"] is None
    assert c["last_run"]["id"] == run["id"] and c["last_run"]["status"] == "ok"
    assert c["last_run"]["trigger"] == "initial" and c["last_run"]["stations_ok"] == 11
    assert c["last_success_at"] == local(run["finished_at"])
    again = await quiet.get("/api/v1/status", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status == 304


async def test_a_failing_station_shows_on_the_status(quiet: TestClient, clock) -> None:
    await fault(quiet, station="LF03", kind="down")
    await collect(quiet, clock)
    data = await (await quiet.get("/api/v1/status")).json()
    assert conforms(document(), data) == []
    by_code = {s["station_code"]: s for s in data["stations"]}
    lf03 = by_code["LF03"]
    assert lf03["status"] == "late"
    assert lf03["collector"]["last_outcome"] == "http_5xx"
    assert lf03["collector"]["consecutive_failures"] == 1
    assert lf03["missing_hours_24h"] == 1
    assert lf03["data_age_s"] == 3600 + 20 * 60
    assert lf03["publication"]["hours"][-1] == {
        "time_point": "2026-11-20T11:00:00+08:00", "published_at": None, "latency_s": None}
    assert by_code["LF01"]["publication"]["hours"][-1]["latency_s"] is not None
    assert data["summary"]["late"] == 1 and data["summary"]["on_time"] == 10
    assert data["collector"]["last_run"]["status"] == "partial"
    assert data["collector"]["last_run"]["stations_failed"] == 1

    page = await quiet.get("/status")
    assert page.status == 200
    html = await page.text()
    assert page.headers["Content-Language"] == "zh-CN"
    assert "服务状态" in html and "迟报" in html and "http_5xx" in html
    assert html.count('class="gap"') == 1
    en = await quiet.get("/status", params={"lang": "en"})
    text = await en.text()
    assert en.headers["Content-Language"] == "en"
    assert "Service status" in text and "Late" in text and "On time" in text
    assert "hour-ending" in text


async def test_status_is_a_503_envelope_when_the_database_is_gone(quiet: TestClient) -> None:
    stats = quiet.app[keys.MONITORING]
    await quiet.app[keys.POOL].close()
    stats.current = None  # nothing read before: nothing to show
    resp = await quiet.get("/api/v1/status")
    assert resp.status == 503
    body = await resp.json()
    assert body["error"]["code"] == "status_unavailable"


async def test_figures_are_read_again_only_when_the_snapshot_changes(
        quiet: TestClient, clock) -> None:
    stats = quiet.app[keys.MONITORING]
    await quiet.get("/api/v1/status")
    first = stats.current
    for _ in range(5):
        await quiet.get("/api/v1/status")
        await quiet.get("/metrics")
    assert stats.current is first
    clock.now += timedelta(minutes=1)
    from aqi_service.web.app import refresh_snapshot

    await refresh_snapshot(quiet.app, clock)
    await quiet.get("/metrics")
    assert stats.current is not first
    assert stats.current.checked_at == clock.now
