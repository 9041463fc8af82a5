"""Monitoring plans: a pollutant a station does not measure is neither indexed nor missing.

HJ 633-2026 §5.3 withholds an AQI of 100 or less when a pollutant of the report is missing
or invalid; a pollutant outside the station's monitoring plan (``/`` on the national
platform) is not missing. The real case: national station 4263A (毕节市工业大道) publishes
CO as ``/``; its hour ending 2026-03-01 01:00 (``tests/data/cnemc/2026-03-01T01.csv``, line
114) was published with AQI 50, and 1957A (巴音郭楞蒙古自治州棉纺厂, SO2 and CO ``/``)
with AQI 119. Expected values are those published values and the reference of
``tests/aqi_reference.py`` (the §2 table typed in), never the service's output.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from aqi_reference import S2026, expected_iaqi, level_of
from history_support import FIRST_2026, LAST_2012, _hour, _hourly, _import, published
from pipeline_support import RT_2026_COLUMNS, Rig, target_hour

from aqi_service.collect import derive
from aqi_service.config import Config, StationConfig, load_config
from aqi_service.errors import ConfigError
from aqi_service.storage import stations

pytestmark = pytest.mark.db
POLLUTANTS = ("so2", "no2", "co", "o3", "pm10", "pm2_5")
PLANNED = "LF03"
"""The configured station given ``not_monitored = ["co"]`` in this module."""


@pytest.fixture
def config(config: Config) -> Config:
    """The shipped configuration, with LF03 not measuring CO."""
    return replace(config, stations=tuple(
        replace(s, not_monitored=("co",)) if s.code == PLANNED else s
        for s in config.stations))


def _row(path: Path, code: str) -> dict[str, str]:
    (row,) = [r for r in published(path) if r["stationcode"] == code]
    return row


# -- configuration -------------------------------------------------------------------------

def _stations_toml(tmp_path: Path, plan: str) -> Path:
    (tmp_path / "service.toml").write_text("", encoding="utf-8")
    (tmp_path / "stations.toml").write_text(f"""
[[stations]]
code = "CN01"
name_zh = "国控点"
name_en = "National station"
lat = 39.5
lon = 116.7
{plan}
""", encoding="utf-8")
    return tmp_path


def test_the_plan_is_read_validated_and_defaults_to_everything_measured(
        tmp_path: Path) -> None:
    assert load_config(_stations_toml(tmp_path, ""), env={}).stations[0].not_monitored == ()
    cfg = load_config(_stations_toml(tmp_path, 'not_monitored = ["co", "so2"]'), env={})
    assert cfg.stations[0].not_monitored == ("so2", "co")   # in the standard's order
    bad = {
        'not_monitored = ["CO2"]': r"stations\[0\]\.not_monitored: unknown pollutants \['CO2'\]",
        'not_monitored = ["co", "co"]': r"listed twice \['co'\]",
        'not_monitored = [1]': r"stations\[0\]\.not_monitored\[0\]: expected a string",
        'not_monitored = ["so2", "no2", "co", "o3", "pm10", "pm2_5"]':
            "must monitor at least one pollutant",
    }
    for text, message in bad.items():
        with pytest.raises(ConfigError, match=message):
            load_config(_stations_toml(tmp_path, text), env={})


# -- history import ------------------------------------------------------------------------

async def test_a_4263a_hour_imported_gives_the_published_aqi(
        config: Config, pool: asyncpg.Pool, served: TestClient) -> None:
    """CO ``/`` and AQI 50: published, not withheld; SO2 and CO ``/`` at 1957A, AQI 119."""
    row = _row(FIRST_2026, "4263A")
    assert (row["co"], row["co_24h"], row["aqi"]) == ("/", "/", "50")
    async with pool.acquire() as conn:
        report = await _import(conn, config, FIRST_2026, add_stations=True)
    assert report.imported and not report.errors
    assert report.plans.added["4263A"] == ("co",) and report.plans.added["1957A"] == (
        "so2", "co")
    assert "4263A does not monitor co" in "\n".join(report.lines())
    assert not [d for d in report.disagreements if d["station"] in ("4263A", "1957A")]
    got = await _hourly(served, "4263A", "2026-03-01T01:00", "2026-03-01T01:00")
    rec = got["2026-03-01T01:00:00+08:00"]
    assert rec["scheme"] == "HJ633-2026"
    assert rec["aqi"] == 50 and rec["level"] == level_of(50)[0] == 1
    assert rec["primary_pollutants"] == []            # published NA: AQI ≤ 50
    assert rec["missing_pollutants"] == [] and "co" not in rec["iaqi"]
    assert rec["co"] is None and rec["co_24h"] is None
    other = await _hourly(served, "1957A", "2026-03-01T01:00", "2026-03-01T01:00")
    assert other["2026-03-01T01:00:00+08:00"]["aqi"] == int(_row(FIRST_2026, "1957A")["aqi"])
    station = await (await served.get("/api/v1/stations/4263A")).json()
    assert station["not_monitored"] == ["co"]
    series = await (await served.get("/api/v1/stations/4263A/hourly")).json()
    assert series["not_monitored"] == ["co"]


async def test_a_configured_station_the_file_contradicts_is_refused(
        config: Config, pool: asyncpg.Pool, tmp_path: Path) -> None:
    """4263A configured as measuring everything: the file's CO ``/`` is a bad row; with
    ``not_monitored = ["co"]`` it imports with the published AQI."""
    national = StationConfig("4263A", "工业大道", "Gongye Dadao", 27.3598, 105.3688)
    cfg = replace(config, stations=(*config.stations, national))
    one = tmp_path / "4263A.csv"
    text = FIRST_2026.read_text(encoding="utf-8").splitlines()
    one.write_text("\n".join([text[0], text[113]]) + "\n", encoding="utf-8")
    async with pool.acquire() as conn:
        await stations.sync_stations(conn, cfg.stations)
        refused = await _import(conn, cfg, one)
        assert not refused.imported
        assert await conn.fetchval("SELECT count(*) FROM observations") == 0
        ((line, column, reason),) = [(e.line, e.column, e.reason) for e in refused.errors]
        assert (line, column) == (2, "co")
        assert 'not_monitored = ["co"]' in reason and "stations.toml" in reason
        cfg = replace(cfg, stations=(*config.stations, replace(national,
                                                               not_monitored=("co",))))
        await stations.sync_stations(conn, cfg.stations)
        done = await _import(conn, cfg, one)
        assert done.imported and not done.errors
        assert await conn.fetchval("SELECT aqi FROM station_hourly WHERE station_code = "
                                   "'4263A'") == 50
        # The plan says CO is not measured, the file has it measured: refused too.
        measured = tmp_path / "measured.csv"
        measured.write_text(one.read_text(encoding="utf-8").replace(",/,/\n", ",NA,NA\n"),
                            encoding="utf-8")
        again = await _import(conn, cfg, measured)
    assert not again.imported
    assert [(e.line, e.column) for e in again.errors] == [(2, "co")]
    assert "lists it in not_monitored" in again.errors[0].reason


async def test_a_station_showing_two_plans_is_refused(
        config: Config, pool: asyncpg.Pool, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.csv"
    lines = LAST_2012.read_text(encoding="utf-8").splitlines()
    later = FIRST_2026.read_text(encoding="utf-8").splitlines()[113]
    mixed.write_text("\n".join([lines[0], lines[113], later.replace(",/,/", ",0.6,0.6")])
                     + "\n", encoding="utf-8")
    async with pool.acquire() as conn:
        report = await _import(conn, config, mixed, add_stations=True)
        assert await conn.fetchval("SELECT count(*) FROM stations WHERE code = '4263A'") == 0
    assert not report.imported
    assert [(e.line, e.column) for e in report.errors] == [(3, "co")]
    assert "one monitoring plan" in report.errors[0].reason


async def test_an_imported_station_follows_the_file_and_its_hours_are_derived_again(
        config: Config, pool: asyncpg.Pool) -> None:
    """4263A imported when plans were not stored (an empty plan: CO counted missing);
    importing the next hour sets its plan from the file and derives the stored hour again."""
    t00, t01 = _row(LAST_2012, "4263A"), _row(FIRST_2026, "4263A")
    async with pool.acquire() as conn:
        await _import(conn, config, LAST_2012, add_stations=True)
        await stations.set_plans(conn, {"4263A": ()})     # as before plans were stored
        await derive.derive_marked_stations(conn, _hour(t00["timepoint"]), "test")
        before = await conn.fetchrow("SELECT pollutant_names(missing_mask) AS missing, aqi "
                                     "FROM station_hourly WHERE station_code = '4263A'")
        report = await _import(conn, config, FIRST_2026)
        after = await conn.fetch("SELECT hour_end, aqi, pollutant_names(missing_mask) AS "
                                 "missing FROM station_hourly WHERE station_code = '4263A' "
                                 "ORDER BY hour_end")
        plan = await conn.fetchval("SELECT not_monitored FROM stations WHERE code = '4263A'")
    assert list(before["missing"]) == ["co"]
    assert before["aqi"] == int(t00["aqi"]) == 52   # HJ 633-2012: no §5.3
    assert report.imported and report.plans.changed == {"4263A": ((), ("co",))}
    assert "4263A (an imported station) follows the file" in "\n".join(report.lines())
    assert plan == ["co"]
    assert [list(r["missing"]) for r in after] == [[], []]
    assert after[0]["aqi"] == 52 and after[1]["aqi"] == int(t01["aqi"]) == 50


# -- collection ------------------------------------------------------------------------------

async def test_a_configured_station_without_co_gets_its_aqi(rig: Rig) -> None:
    """LF03 (not_monitored = ["co"]) collected through the simulator: its records index the
    five others, count nothing missing, and add no CO to the city's mean."""
    await rig.collector.run("test")
    hour = target_hour(rig)
    async with rig.pool.acquire() as conn:
        obs = {r["pollutant"]: r["value"] for r in await conn.fetch(
            "SELECT pollutant, value FROM observations WHERE station_code = $1 AND "
            "hour_end = $2 AND valid", PLANNED, hour)}
        rec = await conn.fetchrow(
            "SELECT *, pollutant_names(missing_mask) AS missing FROM station_hourly "
            "WHERE station_code = $1 AND hour_end = $2", PLANNED, hour)
        co = [r["co"] for r in await conn.fetch(
            "SELECT co FROM station_hourly WHERE hour_end = $1 AND station_code <> $2",
            hour, PLANNED)]
        city = await conn.fetchrow("SELECT co, co_24h_hours FROM city_hourly "
                                   "WHERE hour_end = $1", hour)
        daily = await conn.fetch("SELECT co_24h, iaqi_co, aqi, pollutant_names(missing_mask) "
                                 "AS missing FROM station_daily WHERE station_code = $1",
                                 PLANNED)
    assert sorted(obs) == sorted(POLLUTANTS)      # the logger's CO is kept as observed …
    assert rec["co"] is None and rec["co_24h"] is None and rec["iaqi_co"] is None  # … not used
    iaqis = {p: expected_iaqi(S2026, RT_2026_COLUMNS[p], obs[p])[0]
             for p in POLLUTANTS if p != "co"}
    for pol, value in iaqis.items():
        assert rec[f"iaqi_{pol}"] == value, pol
    assert rec["aqi"] == max(iaqis.values()) and list(rec["missing"]) == []
    assert rec["level"] == level_of(rec["aqi"])[0]
    assert len(co) == 10 and city["co_24h_hours"] == 10
    assert abs(Fraction(city["co"]) - sum(Fraction(v) for v in co) / 10) <= Fraction(
        1, 2 * 10**6)
    assert all(d["co_24h"] is None and d["iaqi_co"] is None and "co" not in d["missing"]
               for d in daily)
    assert [d for d in daily if d["aqi"] is not None and list(d["missing"]) == []]


async def test_a_changed_plan_derives_the_stored_hours_again(
        rig: Rig, config: Config) -> None:
    """LF03 measuring everything, then not CO: the next collection re-derives its hours."""
    everything = replace(config, stations=tuple(replace(s, not_monitored=())
                                                for s in config.stations))
    async with rig.pool.acquire() as conn:
        await stations.sync_stations(conn, everything.stations)
    await rig.collector.run("test")
    async with rig.pool.acquire() as conn:
        with_co = await conn.fetchval("SELECT count(*) FROM station_hourly WHERE "
                                      "station_code = $1 AND iaqi_co IS NOT NULL", PLANNED)
        await stations.sync_stations(conn, config.stations)
        marked = await conn.fetchval("SELECT count(*) FROM derive_pending WHERE "
                                     "station_code = $1", PLANNED)
    await rig.collector.run("test")
    async with rig.pool.acquire() as conn:
        left = await conn.fetchval("SELECT count(*) FROM station_hourly WHERE "
                                   "station_code = $1 AND (iaqi_co IS NOT NULL OR "
                                   "co IS NOT NULL)", PLANNED)
        others = await conn.fetchval("SELECT count(*) FROM station_hourly WHERE "
                                     "station_code <> $1 AND iaqi_co IS NULL", PLANNED)
        plan = await conn.fetchval("SELECT not_monitored FROM stations WHERE code = $1",
                                   PLANNED)
    assert with_co > 24 and marked == 1
    assert left == 0 and others == 0 and plan == ["co"]
