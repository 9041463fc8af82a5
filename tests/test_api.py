"""API v1 series and reference endpoints on a real database: shapes, errors, caching."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from aiohttp.test_utils import TestClient
from aqi_reference import S2026, expected_iaqi
from metrics_support import HOUR, collect, fault

from aqi_service.aqi.schemes import SHANGHAI
from aqi_service.web import keys

pytestmark = pytest.mark.db


async def test_stations_list_and_detail(client: TestClient) -> None:
    resp = await client.get("/api/v1/stations")
    assert resp.status == 200
    data = await resp.json()
    assert data["count"] == 11
    assert [s["station_code"] for s in data["stations"]] == [f"LF{i:02d}" for i in range(1, 12)]
    one = await (await client.get("/api/v1/stations/LF03")).json()
    assert one["county_zh"] == "廊坊经济技术开发区"
    assert isinstance(one["latest"]["aqi"], int)
    assert one["latest"]["status"] == "on_time"


@pytest.mark.parametrize("path", [
    "/api/v1/stations/NOPE", "/api/v1/stations/LF99/hourly",
    "/api/v1/stations/%27%3B%20DROP%20TABLE%20stations%3B--", "/api/v1/stations/" + "x" * 300,
])
async def test_unknown_station_is_a_404_envelope(client: TestClient, path: str) -> None:
    resp = await client.get(path)
    assert resp.status == 404
    body = await resp.json()
    assert set(body["error"]) == {"code", "message", "details"}


async def test_station_hourly_defaults_to_the_last_day(client: TestClient) -> None:
    data = await (await client.get("/api/v1/stations/LF01/hourly")).json()
    assert data["count"] == 24
    times = [r["time_point"] for r in data["records"]]
    assert times == sorted(times) and all(t.endswith("+08:00") for t in times)
    rec = data["records"][-1]
    for key in ("so2", "pm2_5_24h", "o3_8h", "iaqi", "aqi", "level", "category", "scheme",
                "valid_hours", "primary_pollutants"):
        assert key in rec


async def test_station_hourly_range_in_local_time(client: TestClient) -> None:
    resp = await client.get("/api/v1/stations/LF01/hourly",
                            params={"from": "2026-11-20T05:00", "to": "2026-11-20T08:00"})
    data = await resp.json()
    assert [r["time_point"] for r in data["records"]] == [
        f"2026-11-20T0{h}:00:00+08:00" for h in (5, 6, 7, 8)]


@pytest.mark.parametrize(("query", "parameter", "code"), [
    ({"from": "yesterday"}, "from", "bad_parameter"),
    ({"to": "2026-13-01"}, "to", "bad_parameter"),
    ({"from": "2026-11-20T08:00", "to": "2026-11-20T05:00"}, "from", "bad_parameter"),
    ({"from": "2026-01-01", "to": "2026-11-20"}, "from", "range_too_long"),
    ({"from": "' OR 1=1 --"}, "from", "bad_parameter"),
    ({"from": "9" * 500}, "from", "bad_parameter"),
    ({"from": "0001-01-01T00:00+14:00"}, "from", "bad_parameter"),
])
async def test_bad_query_is_a_400_naming_the_parameter(
        client: TestClient, query: dict, parameter: str, code: str) -> None:
    resp = await client.get("/api/v1/stations/LF01/hourly", params=query)
    assert resp.status == 400
    body = await resp.json()
    assert body["error"]["code"] == code
    assert body["error"]["details"]["parameter"] == parameter
    if code == "range_too_long":
        assert "download" in body["error"]["message"]


async def test_repeated_parameter_is_refused(client: TestClient) -> None:
    resp = await client.get("/api/v1/stations/LF01/hourly?from=2026-11-20&from=2026-11-19")
    assert resp.status == 400


async def test_city_series_and_daily_records(client: TestClient) -> None:
    hourly = await (await client.get("/api/v1/city/hourly")).json()
    assert hourly["area_code"] == "131000" and hourly["count"] == 24
    daily = await (await client.get("/api/v1/stations/LF02/daily",
                                    params={"from": "2026-11-18", "to": "2026-11-20"})).json()
    # The back-fill began at 10:00 on the 18th: that day is partial, the 19th whole.
    assert [r["day"] for r in daily["records"]] == ["2026-11-18", "2026-11-19"]
    day = daily["records"][1]
    assert day["valid_hours"]["pm2_5_24h_hours"] == 24
    assert daily["records"][0]["pm2_5_24h"] is None
    assert set(day["valid_hours"]) >= {"pm2_5_24h_hours", "o3_8h_24h_windows"}
    city = await (await client.get("/api/v1/city/daily",
                                   params={"from": "2026-11-19", "to": "2026-11-19"})).json()
    assert city["count"] == 1


async def test_schemes_are_published_as_data(client: TestClient) -> None:
    data = await (await client.get("/api/v1/schemes")).json()
    ids = [s["id"] for s in data["schemes"]]
    assert ids == ["HJ633-2012", "HJ633-2012-text", "HJ633-2026"]
    by_id = {s["id"]: s for s in data["schemes"]}
    # The text's reading of 2012 is listed, says how it differs, and is not the default.
    assert by_id["HJ633-2012"]["default"] and not by_id["HJ633-2012-text"]["default"]
    assert "text" in by_id["HJ633-2012-text"]["description"]
    assert "24 h moving" in by_id["HJ633-2012-text"]["description"]
    assert "24 小时滑动平均" in by_id["HJ633-2012-text"]["description_zh"]
    assert "1 小时值" in by_id["HJ633-2012"]["description_zh"]
    s26 = by_id["HJ633-2026"]
    assert s26["columns"]["pm2_5_24h"] == [0, 35, 60, 115, 150, 250, 350, 500]
    assert s26["levels"][2]["color"] == "#FF7E00"


async def test_revisions_since(client: TestClient) -> None:
    data = await (await client.get("/api/v1/revisions",
                                   params={"since": "2026-01-01T00:00+08:00"})).json()
    assert data["count"] == 0 and data["revisions"] == []


async def test_revisions_list_a_value_the_station_corrected(quiet: TestClient, clock) -> None:
    """LF07 corrects the PM2.5 of an hour it has published (+40 µg/m³) and the next
    collection stores it: /api/v1/revisions lists the observation's old and new value, and
    the fields of the station's records that follow from it, with a public reason and the
    time of the change; nothing of another station, nothing before that hour."""
    code = "LF07"
    hour = clock.now.replace(minute=0, second=0, microsecond=0) - HOUR
    pool = quiet.app[keys.POOL]
    select_record = "SELECT * FROM station_hourly WHERE station_code = $1 AND hour_end = $2"
    async with pool.acquire() as conn:
        old = await conn.fetchrow("SELECT value, flag FROM observations WHERE station_code = $1"
                                  " AND pollutant = 'pm2_5' AND hour_end = $2", code, hour)
        before = await conn.fetchrow(select_record, code, hour)
        started = await conn.fetchval("SELECT now()")
    await fault(quiet, station=code, kind="revised_value", hours=[hour.isoformat()],
                value={"pollutant": "pm2_5", "delta": 40})
    await collect(quiet, clock, hours=0)
    async with pool.acquire() as conn:
        after = await conn.fetchrow(select_record, code, hour)
        finished = await conn.fetchval("SELECT now()")
    resp = await quiet.get("/api/v1/revisions", params={"since": started.isoformat()})
    assert resp.status == 200
    data = await resp.json()
    rows = data["revisions"]
    assert data["count"] == len(rows) > 0 and "next_since" not in data

    (obs,) = [r for r in rows if r["kind"] == "observation"]
    assert (obs["subject"], obs["field"]) == (code, "pm2_5")
    assert obs["period_end"] == hour.astimezone(SHANGHAI).isoformat()
    old_value, old_flag = obs["old_value"].split()
    new_value, new_flag = obs["new_value"].split()
    assert Decimal(old_value) == old["value"] and Decimal(new_value) == old["value"] + 40
    assert old_flag == new_flag == old["flag"]

    # The hour's record: its 1 h PM2.5 is the corrected value, its 24 h mean moves by 40
    # over the valid hours of its window, its IAQI follows HJ 633-2026 (the reference).
    fields = {r["field"]: r for r in rows if r["kind"] == "station_hourly"
              and r["subject"] == code and r["period_end"] == obs["period_end"]}
    assert float(fields["pm2_5"]["old_value"]) == before["pm2_5"] == float(old["value"])
    assert float(fields["pm2_5"]["new_value"]) == after["pm2_5"] == float(old["value"] + 40)
    mean_before = float(fields["pm2_5_24h"]["old_value"])
    mean_after = float(fields["pm2_5_24h"]["new_value"])
    # (revisions log values to 6 decimals)
    assert mean_before == pytest.approx(before["pm2_5_24h"], abs=1e-6)
    assert mean_after - mean_before == pytest.approx(40 / after["pm2_5_24h_hours"], abs=2e-6)
    iaqi_before, _ = expected_iaqi(S2026, "pm2_5_24h", old["value"])
    iaqi_after, _ = expected_iaqi(S2026, "pm2_5_24h", old["value"] + 40)
    if iaqi_after != iaqi_before:
        assert (fields["iaqi_pm2_5"]["old_value"], fields["iaqi_pm2_5"]["new_value"]) == \
            (str(iaqi_before), str(iaqi_after))
    else:
        assert "iaqi_pm2_5" not in fields

    # The city's hour: the mean of its stations' valid values moves by 40 / their number.
    city = quiet.app[keys.CONFIG].city.code
    async with pool.acquire() as conn:
        members = await conn.fetchval("SELECT count(*) FROM observations WHERE pollutant = "
                                      "'pm2_5' AND hour_end = $1 AND valid", hour)
    (city_pm,) = [r for r in rows if r["kind"] == "city_hourly" and r["subject"] == city
                  and r["field"] == "pm2_5" and r["period_end"] == obs["period_end"]]
    assert float(city_pm["new_value"]) - float(city_pm["old_value"]) == \
        pytest.approx(40 / members, abs=2e-6)

    # Only what the corrected hour feeds: this station and the city it is part of, that
    # hour and the 23 hours after it, changed by this collection.
    last = (hour + 23 * HOUR).astimezone(SHANGHAI).isoformat()
    for r in rows:
        assert r["subject"] in (code, city), r
        assert r["kind"] in ("observation", "station_hourly", "city_hourly",
                             "station_daily", "city_daily"), r
        if r["kind"].endswith("hourly"):
            assert obs["period_end"] <= r["period_end"] <= last, r
        assert r["reason"] and "revised" in r["reason"], r
        changed = datetime.fromisoformat(r["changed_at"])
        assert started <= changed <= finished, r


async def test_conditional_get_and_cors_on_every_series(client: TestClient) -> None:
    for path in ("/api/v1/stations", "/api/v1/stations/LF01", "/api/v1/stations/LF01/hourly",
                 "/api/v1/city/daily", "/api/v1/schemes"):
        first = await client.get(path)
        assert first.headers["Access-Control-Allow-Origin"] == "*"
        assert "max-age=" in first.headers["Cache-Control"]
        again = await client.get(path, headers={"If-None-Match": first.headers["ETag"]})
        assert again.status == 304, path


async def test_rankings_of_a_month_with_their_inputs(client: TestClient) -> None:
    data = await (await client.get("/api/v1/rankings",
                                   params={"period": "month", "month": "2026-11"})).json()
    counties = data["counties"]
    assert len(counties) == 11
    assert [c["rank_composite"] for c in counties] == list(range(1, 12))
    indexes = [c["composite_index"] for c in counties]
    assert indexes == sorted(indexes)
    assert sorted(c["rank_pm2_5"] for c in counties) == list(range(1, 12))
    limits = {p["pollutant"]: p["limit"] for p in counties[0]["composite_parts"]}
    assert limits == {"so2": 60, "no2": 40, "pm10": 60, "pm2_5": 30, "co": 4, "o3": 160}
    # One valid day (the 19th): each term is that day's value over its limit, summed.
    c = counties[0]
    total = sum(p["value"] / p["limit"] for p in c["composite_parts"])
    assert abs(total - c["composite_index"]) < 0.01
    assert c["days"] == 2 and c["valid_days"]["pm2_5"] == 1
    assert c["complete"] is False and c["required_days"] == 27
    daily = await (await client.get(f"/api/v1/stations/{c['station_code']}/daily",
                                    params={"from": "2026-11-19", "to": "2026-11-19"})).json()
    assert c["pm2_5_mean"] == pytest.approx(daily["records"][0]["pm2_5_24h"], abs=0.5)


@pytest.mark.parametrize("query", [{"period": "decade"}, {"month": "2026-13"},
                                   {"period": "year", "year": "20x6"}])
async def test_rankings_bad_parameters(client: TestClient, query: dict) -> None:
    resp = await client.get("/api/v1/rankings", params=query)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "bad_parameter"
