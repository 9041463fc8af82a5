"""History import of CNEMC archive hours, methodology recompute as revisions, the HJ 633-2012
reading chosen by configuration, and the ``cnemc`` field mapping of the http source.

Every expected value comes from the files in ``tests/data/cnemc/`` (CNEMC's published hours,
sources in the README there), never from the service: the published AQI and moving
averages of each row are read from the file itself and compared with what
``/api/v1/stations/{code}/hourly`` serves after the import.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from history_support import DATA, FIRST_2026, LAST_2012, _hour, _hourly, _import, published
from pipeline_support import Rig

from aqi_service.aqi.schemes import SHANGHAI
from aqi_service.collect import recompute
from aqi_service.collect.client import create_session
from aqi_service.collect.collector import Collector
from aqi_service.collect.history import COMPARED
from aqi_service.config import Config, load_config
from aqi_service.errors import ConfigError
from aqi_service.storage import stations

pytestmark = pytest.mark.db
REPO = Path(__file__).resolve().parent.parent
LANGFANG = DATA / "langfang_2026-02-28_2026-03-01.csv"
LANGFANG_DAYS = DATA / "langfang_2026-02-27_2026-03-02.csv"
POLLUTANTS_1H = ("so2", "no2", "co", "o3", "pm10", "pm2_5")


async def test_imported_langfang_hours_come_back_as_published(
        config: Config, pool: asyncpg.Pool, served: TestClient) -> None:
    """6(b): Langfang's national stations across the switch, and the last HJ 633-2012 hour
    of 154 stations: /api/v1/stations/{code}/hourly gives every published AQI, and every
    moving average the stored hours allow."""
    async with pool.acquire() as conn:
        for path in (LANGFANG, LAST_2012):
            report = await _import(conn, config, path, add_stations=True)
            assert report.imported and not report.errors
    aqi_total = aqi_same = ma_total = ma_same = 0
    misses = []
    for path in (LANGFANG, LAST_2012):
        rows = published(path)
        for code in sorted({r["stationcode"] for r in rows}):
            mine = [r for r in rows if r["stationcode"] == code]
            hours = sorted(_hour(r["timepoint"]) for r in mine)
            got = await _hourly(served, code, hours[0].isoformat(), hours[-1].isoformat())
            for row in mine:
                rec = got.get(_hour(row["timepoint"]).isoformat())
                assert rec is not None, (code, row["timepoint"])
                if row["aqi"] not in ("", "NA"):
                    aqi_total += 1
                    aqi_same += rec["aqi"] == int(row["aqi"])
                    if rec["aqi"] != int(row["aqi"]):
                        misses.append((code, row["timepoint"], "aqi", row["aqi"], rec["aqi"]))
                for name, field in COMPARED.items():
                    if row[name] in ("", "NA", "/") or rec[field] is None:
                        continue  # not published, or its window's hours are not stored
                    want = float(row[name]) if name.startswith("co") else int(row[name])
                    ma_total += 1
                    ma_same += rec[field] == want
                    if rec[field] != want:
                        misses.append((code, row["timepoint"], name, row[name], rec[field]))
    print(f"AQI {aqi_same}/{aqi_total}, moving averages {ma_same}/{ma_total}; "
          f"disagreements: {misses[:20]}")
    assert aqi_total == 44 + 154 and aqi_same == aqi_total
    assert ma_total >= 8 and ma_same >= 0.99 * ma_total
    # The first HJ 633-2026 hour: at Langfang's stations (complete records) as published.
    first_2026 = await _hourly(served, "1067A", "2026-03-01T02:00", "2026-03-01T02:00")
    assert [r["scheme"] for r in first_2026.values()] == ["HJ633-2026"]


WINDOWS = {"pm10_24h": ("pm10_24h", 24, "pm10"), "pm2_5_24h": ("pm2_5_24h", 24, "pm2_5"),
           "no2_24h": ("no2_24h", 24, "no2"), "so2_24h": ("so2_24h", 24, "so2"),
           "co_24h": ("co_24h", 24, "co"), "o3_8h_24h": ("o3_8h", 8, "o3")}
"""Each published average compared: the served field of the same meaning, the hours of 1 h
values behind it (a full window the file must hold) and the 1 h column averaged.
HeQinWill/CNEMC's README defines its O3 columns (README.md there, commit
05712c93b87e69d53068ce0c569f79f0e529af20): the file's ``o3_8h_24h`` is the 8 h moving mean
within the natural day (from 08:00), the served ``o3_8h``; the file's ``o3_8h`` is the
largest 8 h mean of the natural day so far and its ``o3_24h`` the 1 h value (equal to ``o3``
in every row here), neither a served field."""
UNCOMPARED = ("o3_8h", "o3_24h")
MISSING = ("", "NA", "/")
MIN_VALID_24H = 20
"""GB 3095-2012 Table 4 (and HJ 663): a 24 h mean needs at least 20 hourly values."""


def _full_window(hours: set[datetime], end: datetime, n: int) -> bool:
    return all(end - timedelta(hours=k) in hours for k in range(n))


def _valid_in_window(by_hour: dict[datetime, dict[str, str]], end: datetime, n: int,
                     column: str) -> int:
    """How many of the window's 1 h values of ``column`` the file holds (window in the file)."""
    return sum(by_hour[end - timedelta(hours=k)][column] not in MISSING for k in range(n))


def _classify(rows: list[dict[str, str]]) -> dict[tuple[str, str, str], str]:
    """For each published moving average of the file, from the file alone: ``whole`` (every
    1 h value of its window in the file: compared, and counted in the figures), ``gaps``
    (window in the file, some 1 h values missing: the platform's average rests on data the
    archive does not hold, printed only), ``short`` (a 24 h window with fewer than 20 valid
    hours: no average may be served) or ``outside`` (window not in the file, or no served
    field)."""
    out = {}
    for code in sorted({r["stationcode"] for r in rows}):
        by_hour = {_hour(r["timepoint"]): r for r in rows if r["stationcode"] == code}
        for hour, row in by_hour.items():
            for name in (*WINDOWS, *UNCOMPARED):
                if row[name] in MISSING:
                    continue  # not published
                key = (code, row["timepoint"], name)
                if name in UNCOMPARED or not _full_window(set(by_hour), hour, WINDOWS[name][1]):
                    out[key] = "outside"
                    continue
                _, n, column = WINDOWS[name]
                valid = _valid_in_window(by_hour, hour, n, column)
                out[key] = ("whole" if valid == n else
                            "short" if n == 24 and valid < MIN_VALID_24H else "gaps")
    return out


async def test_consecutive_langfang_days_across_the_switch(
        config: Config, pool: asyncpg.Pool, served: TestClient) -> None:
    """Langfang's four national stations, every hour from 2026-02-27 00:00 to 2026-03-02
    23:00 Beijing (HJ 633-2026 from 2026-03-01 01:00): the record of each hour has the
    published AQI and primary pollutant, and each published moving average whose whole
    window of 1 h values the file holds (its first hours cannot); a 24 h window with fewer
    than 20 valid hours has no average served, though the platform published one."""
    from cnemc_published import primary_of

    async with pool.acquire() as conn:
        report = await _import(conn, config, LANGFANG_DAYS, add_stations=True)
    assert report.imported and not report.errors
    print("\n".join(report.lines()))
    rows = published(LANGFANG_DAYS)
    # What the file holds, from the file alone: every station has every hour of its span.
    codes = sorted({r["stationcode"] for r in rows})
    span = {_hour(r["timepoint"]) for r in rows}
    n_hours = int((max(span) - min(span)) / timedelta(hours=1)) + 1
    assert len(rows) == len(codes) * n_hours == len({(r["stationcode"], r["timepoint"])
                                                     for r in rows})
    published_aqis = sum(r["aqi"] not in MISSING for r in rows)
    kinds = _classify(rows)
    comparable = {name: sum(1 for k, v in kinds.items() if k[2] == name and v == "whole")
                  for name in WINDOWS}
    aqi = [0, 0]
    averages = {name: [0, 0] for name in WINDOWS}
    gaps = {name: [0, 0] for name in WINDOWS}
    short = {name: [0, 0] for name in WINDOWS}
    excluded = dict.fromkeys((*WINDOWS, *UNCOMPARED), 0)
    misses, gap_misses = [], []
    for code in codes:
        mine = [r for r in rows if r["stationcode"] == code]
        hours = {_hour(r["timepoint"]) for r in mine}
        got = await _hourly(served, code, min(hours).isoformat(), max(hours).isoformat())
        for row in mine:
            hour = _hour(row["timepoint"])
            rec = got[hour.isoformat()]
            if row["aqi"] not in MISSING:
                same = (rec["aqi"], sorted(rec["primary_pollutants"])) == (
                    int(row["aqi"]), primary_of(row["primarypollutant"]))
                aqi[0] += same
                aqi[1] += 1
                if not same:
                    misses.append((code, row["timepoint"], "aqi", row["aqi"],
                                   row["primarypollutant"], rec["aqi"],
                                   rec["primary_pollutants"]))
            for name in (*WINDOWS, *UNCOMPARED):
                kind = kinds.get((code, row["timepoint"], name))
                if kind is None:
                    continue  # not published
                if kind == "outside":
                    excluded[name] += 1
                    continue
                field = WINDOWS[name][0]
                want = float(row[name]) if name.startswith("co") else int(row[name])
                tally = {"whole": averages, "gaps": gaps, "short": short}[kind][name]
                ok = rec[field] is None if kind == "short" else rec[field] == want
                tally[0] += ok
                tally[1] += 1
                if not ok:
                    (misses if kind != "gaps" else gap_misses).append(
                        (code, row["timepoint"], name, row[name], rec[field]))
    total = [sum(v[i] for v in averages.values()) for i in (0, 1)]
    print(f"AQI and primary pollutant {aqi[0]}/{aqi[1]}; moving averages (whole windows) "
          f"{total[0]}/{total[1]}: " + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in
                                                 averages.items()))
    print("windows with 1 h values missing (>= 20 valid for 24 h), as published: "
          + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in gaps.items() if v[1]))
    print("24 h windows with fewer than 20 valid hours, none served (published anyway): "
          + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in short.items() if v[1]))
    print(f"published, not compared (window not in the file, or no served field): {excluded}")
    print(f"disagreements: {misses}")
    print(f"disagreements where the window has 1 h values missing: {gap_misses}")
    assert aqi[1] == published_aqis and aqi[0] == aqi[1]
    assert {k: v[1] for k, v in averages.items()} == comparable
    assert total[1] >= 1000 and total[0] >= 0.99 * total[1]
    assert all(v[0] == v[1] for v in short.values())  # GB 3095: no 24 h mean from < 20 hours
    # The command's own reconciliation compares the same windows (every 1 h value there).
    assert {k: t.derivable for k, t in report.averages.items()} == comparable
    assert report.averages_total().gappy == sum(v[1] for v in (*gaps.values(),
                                                               *short.values()))


async def test_first_2026_hour_differs_only_where_section_5_3_withholds(
        config: Config, pool: asyncpg.Pool) -> None:
    """The reconciliation of the first HJ 633-2026 hour: every complete record's AQI is
    reproduced, and so is every record whose only gaps are outside the station's monitoring
    plan (``/``: 4263A, 1957A); the disagreements are all hours with a 1 h value missing,
    which §5.3 withholds (METHODOLOGY: the platform published most of them)."""
    rows = published(FIRST_2026)
    incomplete = {r["stationcode"] for r in rows if r["aqi"] not in ("", "NA")
                  and any(r[p] in ("", "NA") for p in POLLUTANTS_1H)}
    not_monitored = {r["stationcode"] for r in rows if any(r[p] == "/" for p in POLLUTANTS_1H)}
    assert not_monitored == {"4263A", "1957A"} and not not_monitored & incomplete
    async with pool.acquire() as conn:
        report = await _import(conn, config, FIRST_2026, add_stations=True)
    differ = {d["station"] for d in report.disagreements if d["field"] == "aqi"}
    assert report.aqi.derivable - report.aqi.reproduced == len(differ) > 0
    assert differ <= incomplete  # every complete record, and every "/" one: as published
    assert report.aqi.reproduced >= report.aqi.derivable - len(incomplete) > 100


async def test_import_is_idempotent_and_a_changed_value_is_a_revision(
        config: Config, pool: asyncpg.Pool, tmp_path: Path) -> None:
    async with pool.acquire() as conn:
        first = await _import(conn, config, LANGFANG, add_stations=True)
        assert first.inserted == 44 * 6
        again = await _import(conn, config, LANGFANG)
        assert (again.inserted, again.updated, again.revisions) == (0, 0, 0)
        assert await conn.fetchval("SELECT count(*) FROM revisions") == 0
        # The archive corrected one value: stored as a revision, the record follows.
        text = LANGFANG.read_text(encoding="utf-8").replace(
            "2026-02-28T0500,1070A,116.7246,39.5273,廊坊市,北华航天学院,细颗粒物(PM2.5),102,80,"
            "61,76,", "2026-02-28T0500,1070A,116.7246,39.5273,廊坊市,北华航天学院,"
            "细颗粒物(PM2.5),102,80,61,50,")
        fixed = tmp_path / "fixed.csv"
        fixed.write_text(text, encoding="utf-8")
        third = await _import(conn, config, fixed)
        assert third.updated == 1
        kinds = {r["kind"] for r in await conn.fetch("SELECT kind FROM revisions")}
        assert kinds >= {"observation", "station_hourly"}


async def test_unknown_stations_are_refused_and_bad_rows_located(
        config: Config, pool: asyncpg.Pool, tmp_path: Path) -> None:
    header = LANGFANG.read_text(encoding="utf-8").splitlines()[0]
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([
        header,
        "2026-02-28T0000,LF01,116.7,39.5,廊坊市,x,,79,80,46,58,29,24,,63,45,33,17,1,2,0.7,0.5",
        "2026-02-28 00:00,LF02,116.7,39.5,廊坊市,x,,79,80,46,58,29,24,,63,45,33,17,1,2,0.7,0.5",
        "2026-02-28T0100,LF03,116.7,39.5,廊坊市,x,,79,80,46,-5,29,24,,63,45,33,17,1,2,0.7,0.5",
        "2026-02-28T0100,LF04,116.7,39.5,廊坊市,x,,79,80,46,58,29,abc,,63,45,33,17,1,2,0.7,0.5",
        "2026-02-28T0100,LF05,116.7,39.5,廊坊市,x,,79,80,46,58,29,24,,63,45,33,17,1,2,0.7",
    ]) + "\n", encoding="utf-8")
    async with pool.acquire() as conn:
        await stations.sync_stations(conn, config.stations)
        report = await _import(conn, config, bad)
        assert not report.imported
        assert await conn.fetchval("SELECT count(*) FROM observations") == 0
        refused = await _import(conn, config, LANGFANG)
        assert not refused.imported
        assert sorted(refused.unknown) == ["1067A", "1068A", "1070A", "2919A"]
        assert "--add-stations" in "\n".join(refused.lines())
        dry = await _import(conn, config, LANGFANG, add_stations=True, dry_run=True)
        assert not dry.imported and not dry.error_count
        assert await conn.fetchval("SELECT count(*) FROM observations") == 0
        assert await conn.fetchval("SELECT count(*) FROM stations WHERE code = '1067A'") == 0
    where = {(e.line, e.column) for e in report.errors}
    assert where == {(3, "timepoint"), (4, "pm2_5"), (5, "o3"), (6, "-")}, report.errors


async def test_a_file_streams_in_chunks_with_the_same_records(
        config: Config, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 5 rows (a large file's chunks are 20,000): the same observations, records
    and reconciliation as one chunk; a chunk's rows never wait for the rest of the file."""
    from aqi_service.collect import history

    monkeypatch.setattr(history, "CHUNK_ROWS", 5)
    async with pool.acquire() as conn:
        report = await _import(conn, config, LANGFANG, add_stations=True)
        records = await conn.fetch("SELECT station_code, hour_end, aqi, o3_8h, scheme "
                                   "FROM station_hourly ORDER BY 1, 2")
    assert report.inserted == 44 * 6 and len(records) == 44
    assert (report.aqi.reproduced, report.averages["o3_8h_24h"].reproduced) == (44, 8)
    assert report.averages["o3_8h_24h"].derivable == 8


async def test_added_stations_are_served_but_not_in_the_city(
        config: Config, pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await _import(conn, config, LANGFANG, add_stations=True)
        row = await conn.fetchrow("SELECT name_zh, lat, lon, source, city_member, active "
                                  "FROM stations WHERE code = '1067A'")
        # Syncing the configuration again (every start does) keeps them.
        await stations.sync_stations(conn, config.stations)
        active = await conn.fetchval("SELECT active FROM stations WHERE code = '1067A'")
        city = await conn.fetchval("SELECT count(*) FROM city_hourly")
    assert dict(row) == {"name_zh": "廊坊市药材公司", "lat": 39.5109, "lon": 116.6712,
                         "source": "import", "city_member": False, "active": True}
    assert active and city == 0


async def test_recompute_writes_revisions_once_and_dry_run_writes_nothing(
        config: Config, pool: asyncpg.Pool, served: TestClient) -> None:
    first, last = datetime(2026, 2, 27, 16, tzinfo=UTC), datetime(2026, 2, 28, 2, tzinfo=UTC)
    async with pool.acquire() as conn:
        await _import(conn, config, LANGFANG, add_stations=True, variant="text")
        dry = await recompute.recompute(conn, first, last, config.city.code, [], "practice",
                                        dry_run=True)
        assert dry.result.revisions > 0 and dry.sample
        assert await conn.fetchval("SELECT count(*) FROM revisions") == 0
        done = await recompute.recompute(conn, first, last, config.city.code, [], "practice")
        assert done.result.revisions == dry.result.revisions
        again = await recompute.recompute(conn, first, last, config.city.code, [], "practice")
        assert again.result.revisions == 0
        assert sum(w.updated for w in again.result.written.values()) == 0
    # Visible: the revisions feed names the reason; the record names its scheme and AQI.
    data = await (await served.get("/api/v1/revisions",
                                   params={"since": "2026-01-01T00:00+08:00"})).json()
    reasons = {r["reason"] for r in data["revisions"]}
    assert reasons == {"methodology: HJ 633-2012 hourly as published by the national platform"}
    got = await _hourly(served, "1067A", "2026-02-28T00:00", "2026-02-28T00:00")
    rec = got["2026-02-28T00:00:00+08:00"]
    assert (rec["scheme"], rec["aqi"], rec["revision"]) == ("HJ633-2012", 79, 1)
    page = await served.get("/stations/1067A")
    assert "methodology: HJ 633-2012" in await page.text()
    csv_resp = await served.get("/api/v1/download/hourly.csv", params={
        "stations": "1067A", "from": "2026-02-28T00:00", "to": "2026-02-28T00:00"})
    assert csv_resp.status == 200
    table = list(csv.DictReader((await csv_resp.text()).splitlines()))
    assert [(r["scheme"], r["revision"]) for r in table] == [("HJ633-2012", "1")]


async def test_first_start_after_upgrading_recomputes_and_records_the_version(
        config: Config, pool: asyncpg.Pool, caplog) -> None:
    async with pool.acquire() as conn:
        # Records derived with the 2012 text's reading, as before the upgrade.
        await _import(conn, config, LANGFANG, add_stations=True, variant="text")
        assert await recompute.stored_version(conn) == "hourly_2012=text"
        with caplog.at_level("WARNING"):
            report = await recompute.on_start(conn, config.city.code, [], "practice")
        assert report is not None and report.result.revisions > 0
        assert "recomputing" in caplog.text
        assert await recompute.stored_version(conn) == "hourly_2012=practice.2"
        assert await recompute.on_start(conn, config.city.code, [], "practice") is None
        aqi = await conn.fetchval("SELECT aqi FROM station_hourly WHERE station_code = '1067A' "
                                  "AND hour_end = '2026-02-27T16:00Z'")
    assert aqi == 79  # as published for 2026-02-28 00:00


def test_hourly_2012_reading_is_configured_and_validated(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parent.parent / "config"
    assert load_config(repo, env={}).aqi.hourly_2012 == "practice"
    assert load_config(repo, env={"AQI_AQI_HOURLY_2012": "text"}).aqi.hourly_2012 == "text"
    with pytest.raises(ConfigError, match=r"aqi\.hourly_2012"):
        load_config(repo, env={"AQI_AQI_HOURLY_2012": "platform"})


async def test_pipeline_publishes_the_configured_reading(config: Config, pool: asyncpg.Pool
                                                         ) -> None:
    """The same stored hours under each configured reading: each record names its scheme."""
    for variant, scheme in (("practice", "HJ633-2012"), ("text", "HJ633-2012-text")):
        cfg = config.replace(aqi={"hourly_2012": variant})
        async with pool.acquire() as conn:
            await _import(conn, cfg, LANGFANG, add_stations=True)
            await recompute.recompute(conn, datetime(2026, 2, 27, 16, tzinfo=UTC),
                                      datetime(2026, 2, 28, 1, tzinfo=UTC), cfg.city.code, [],
                                      cfg.aqi.hourly_2012)
            schemes = {r[0] for r in await conn.fetch(
                "SELECT DISTINCT scheme FROM station_hourly WHERE hour_end < '2026-02-28T17:00Z'")}
        assert schemes == {scheme}


@pytest.mark.parametrize(("variant", "scheme"), [("practice", "HJ633-2012"),
                                               ("text", "HJ633-2012-text")])
async def test_collections_follow_the_configured_reading(rig: Rig, variant: str,
                                                         scheme: str) -> None:
    rig.collector.cfg = rig.config.replace(aqi={"hourly_2012": variant})
    rig.clock.now = datetime(2026, 2, 28, 18, 20, tzinfo=UTC)  # 72 h back: 2012 and 2026
    await rig.collector.run("test")
    async with rig.pool.acquire() as conn:
        hourly = {r[0] for r in await conn.fetch(
            "SELECT DISTINCT scheme FROM station_hourly WHERE hour_end <= '2026-02-28T16:00Z'")}
        later = {r[0] for r in await conn.fetch(
            "SELECT DISTINCT scheme FROM city_hourly WHERE hour_end > '2026-02-28T16:00Z'")}
        city = {r[0] for r in await conn.fetch(
            "SELECT DISTINCT scheme FROM city_hourly WHERE hour_end <= '2026-02-28T16:00Z'")}
    assert hourly == city == {scheme} and later == {"HJ633-2026"}


CNEMC_FEED = [
    {"timepoint": "2026-11-20T0900", "stationcode": "CN01", "aqi": "41", "so2": "4",
     "no2": "18", "co": "0.5", "o3": "61", "pm10": "NA", "pm2_5": "22"},
    {"timepoint": "2026-11-20T1000", "stationcode": "CN01", "aqi": "44", "so2": "/",
     "no2": "20", "co": "0.6", "o3": "66", "pm10": "40", "pm2_5": "25"},
]


@pytest.fixture
async def cnemc_feed(serve_app) -> AsyncIterator[str]:
    """A real local HTTP server answering in CNEMC's JSON field names."""
    async def hourly(request: web.Request) -> web.Response:
        return web.Response(text=json.dumps({"records": CNEMC_FEED}),
                            content_type="application/json")

    app = web.Application()
    app.router.add_get("/cnemc/{code}", hourly)
    async with serve_app(app) as base:
        yield f"{base}/cnemc/{{code}}"


async def test_http_source_with_the_cnemc_preset(config: Config, pool: asyncpg.Pool, clock,
                                                 cnemc_feed: str, tmp_path: Path) -> None:
    (tmp_path / "service.toml").write_text("", encoding="utf-8")
    (tmp_path / "stations.toml").write_text(f"""
[[stations]]
code = "CN01"
name_zh = "国控点"
name_en = "National station"
lat = 39.5
lon = 116.7
source = "http"
url = "{cnemc_feed}"
[stations.http]
preset = "cnemc"
""", encoding="utf-8")
    loaded = load_config(tmp_path, env={})
    cfg = replace(config, stations=loaded.stations)
    async with pool.acquire() as conn:
        await stations.sync_stations(conn, cfg.stations)
    session = create_session(cfg.collection)
    try:
        summary = await Collector(pool, session, cfg, None, clock=clock).run(
            "test", lookback_hours=3)
    finally:
        await session.close()
    assert summary.outcomes == {"CN01": "ok"} and summary.rejected == 0
    async with pool.acquire() as conn:
        stored = {(r["hour_end"].astimezone(SHANGHAI).hour, r["pollutant"]): str(r["value"])
                  for r in await conn.fetch("SELECT * FROM observations")}
    assert len(stored) == 10  # NA and / are no value, not rejected
    assert stored[(10, "pm10")] == "40" and stored[(9, "co")] == "0.5"
    assert (9, "pm10") not in stored and (10, "so2") not in stored
    with pytest.raises(ConfigError, match="preset"):
        (tmp_path / "stations.toml").write_text(
            (tmp_path / "stations.toml").read_text().replace('"cnemc"', '"vendor"'))
        load_config(tmp_path, env={})


def _cli(dsn: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "AQI_DATABASE_URL": dsn, "PYTHONPATH": str(REPO), **env}
    return subprocess.run([sys.executable, "-m", "aqi_service", *args], cwd=REPO, env=full,
                          capture_output=True, text=True, timeout=120)


async def test_the_commands_in_real_processes(db_dsn: str, pool: asyncpg.Pool) -> None:
    refused = _cli(db_dsn, "import", "hourly", str(LANGFANG), "--format", "cnemc")
    assert refused.returncode == 1 and "1067A (廊坊市药材公司)" in refused.stdout
    done = _cli(db_dsn, "import", "hourly", str(LANGFANG), "--format", "cnemc",
                "--add-stations", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)["reconciliation"]
    assert report["aqi"] == {"published": 44, "derivable": 44, "reproduced": 44,
                             "gappy_windows": 0, "gappy_reproduced": 0}
    dry = _cli(db_dsn, "recompute", "--from", "2026-02-28", "--to", "2026-02-28",
               "--dry-run", AQI_AQI_HOURLY_2012="text")
    assert dry.returncode == 0 and "would change" in dry.stdout, dry.stdout + dry.stderr
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM revisions") == 0
    same = _cli(db_dsn, "recompute", "--from", "2026-02-28", "--to", "2026-02-28")
    assert same.returncode == 0 and "nothing to change" in same.stdout
    bad = _cli(db_dsn, "recompute", "--from", "2026-02-28T00:30", "--to", "2026-02-28")
    assert bad.returncode == 2 and "not on the hour" in bad.stderr
