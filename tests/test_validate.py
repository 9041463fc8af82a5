"""Validation of a logger's values: what cannot be measured is refused, with its reason.

Expectations come from the standards and from real published data, not from the code:
the plausible ranges and sentinels are those METHODOLOGY.md ("Validation") documents with
their sources; every value CNEMC actually published (tests/data/cnemc_published_hourly.csv,
from public archives named in tests/data/README.md) must pass; real dust-storm
PM10 figures reported by the Ministry of Ecology and Environment (2021-03-15) must pass.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from aqi_service.collect.validate import NumText, parse_hourly

HERE = Path(__file__).resolve().parent
PUBLISHED = HERE / "data" / "cnemc_published_hourly.csv"
SHANGHAI = ZoneInfo("Asia/Shanghai")
POLLUTANTS = ("so2", "no2", "co", "o3", "pm10", "pm2_5")
NOW = datetime(2026, 11, 20, 2, 20, tzinfo=UTC)
SINCE = NOW - timedelta(days=30)


@dataclass(frozen=True)
class Mapping:
    records: str = "records"
    time: str = "time"
    time_convention: str = "hour-ending"
    fields: dict[str, str] = field(default_factory=lambda: {p: p for p in POLLUTANTS})
    flags: dict[str, str] = field(default_factory=lambda: {p: f"{p}_flag" for p in POLLUTANTS})


MAPPING = Mapping()
CLEAN = {"so2": 8, "no2": 30, "co": NumText("0.6"), "o3": 60, "pm10": 80, "pm2_5": 50}


def hour_label(k: int) -> str:
    """The k-th hour before NOW's last whole hour, in Beijing time (hour-ending)."""
    end = NOW.replace(minute=0, second=0, microsecond=0) - k * timedelta(hours=1)
    return end.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M:%S")


def parse(records: list[dict[str, object]]):
    return parse_hourly({"records": records}, "LF01", MAPPING, SINCE, NOW, SHANGHAI, "test")


def one_record(**values: object) -> list[dict[str, object]]:
    return [{"time": hour_label(0), **CLEAN, **values}]


def stored(parsed, pollutant: str) -> list[tuple[object, bool]]:
    return [(r[3], r[5]) for r in parsed.rows if r[1] == pollutant]


def reasons(parsed) -> dict[str, str]:
    return {rej[1]: rej[5] for rej in parsed.rejected}


# -- sentinels --------------------------------------------------------------------------------

SENTINELS = [9999, 9999.9, 99999, 99999.9, 999999, 999999999, 9999.99, -99, -99.9, -999, -9999,
             -9999.9, -999999999]


@pytest.mark.parametrize("pollutant", POLLUTANTS)
@pytest.mark.parametrize("sentinel", SENTINELS, ids=str)
@pytest.mark.parametrize("encoding", ["number", "json_text", "string"])
def test_sentinels_are_refused_as_sentinel_for_every_pollutant(pollutant: str, sentinel: float,
                                                                encoding: str) -> None:
    raw: object = {"number": sentinel, "json_text": NumText(repr(sentinel)),
                   "string": str(sentinel)}[encoding]
    parsed = parse(one_record(**{pollutant: raw}))
    assert stored(parsed, pollutant) == []
    assert reasons(parsed) == {pollutant: "sentinel"}
    assert parsed.reject_reasons() == {"sentinel": 1}
    assert {r[1] for r in parsed.rows} == set(POLLUTANTS) - {pollutant}


def test_sentinel_inside_the_pm10_range_is_refused_in_a_whole_column() -> None:
    """9999.9 is within PM10's range (real dust reaches 8,108): it must not slip through
    the column-wise fast path either, whatever the column's type."""
    for cast in (int, NumText):
        records = [{"time": hour_label(k), **CLEAN, "pm10": cast(str(80 + k)) if cast is NumText
                    else 80 + k} for k in range(48)]
        records[5]["pm10"] = NumText("9999.9") if cast is NumText else 9999
        parsed = parse(records)
        assert len(stored(parsed, "pm10")) == 47
        assert parsed.reject_reasons() == {"sentinel": 1}
        assert all(float(v) < 9999 for v, _ in stored(parsed, "pm10"))


@pytest.mark.parametrize("value", [99, 999, 999.9, 9998, 9999.5, 10000])
def test_values_that_are_not_sentinels_pass_where_the_range_allows(value: float) -> None:
    """99 and 999 are real PM10 readings (99 appears 22 times in published PM10 hours;
    dust storms give hours around 1,000); only the 4-digit-and-longer all-nines are
    sentinels."""
    parsed = parse(one_record(pm10=value))
    assert stored(parsed, "pm10") == [(str(value) if isinstance(value, float) else value, True)]
    assert parsed.rejected == []


# -- plausible ranges -------------------------------------------------------------------------

# (pollutant, largest accepted, smallest refused): METHODOLOGY.md "Validation" table.
RANGES = [
    ("so2", 2620, 2621), ("no2", 3840, 3841), ("co", 150, 150.1), ("o3", 1200, 1201),
    ("pm10", 10000, 10001), ("pm2_5", 5000, 5001),
]


@pytest.mark.parametrize(("pollutant", "top", "above"), RANGES)
def test_each_pollutant_has_its_own_plausible_range(pollutant: str, top: float,
                                                    above: float) -> None:
    ok = parse(one_record(**{pollutant: top}))
    assert [valid for _, valid in stored(ok, pollutant)] == [True]
    bad = parse(one_record(**{pollutant: above}))
    assert stored(bad, pollutant) == []
    assert reasons(bad) == {pollutant: "out_of_range"}


def test_the_logged_fault_of_the_issue_is_refused() -> None:
    """9999.9 for SO2 and PM10 (the 5 % fault run: 41 values stored valid, 24 AQI-500 hours)."""
    parsed = parse(one_record(so2=9999.9, pm10=NumText("9999.9")))
    assert reasons(parsed) == {"so2": "sentinel", "pm10": "sentinel"}
    assert {r[1] for r in parsed.rows} == {"no2", "co", "o3", "pm2_5"}


@pytest.mark.parametrize(("raw", "reason"), [
    ("—", "non_numeric"), ("", "non_numeric"), ("NaN", "non_numeric"),
    (float("nan"), "non_numeric"),
    (True, "non_numeric"), ("1e999", "out_of_range"), (-5, "negative"), (-0.5, "negative"),
    (20000, "out_of_range"),
    # 0.0 as a float, but 20,000 decimal places as the text the numeric column would store
    # (PostgreSQL: "value overflows numeric format", failing the whole batch every run)
    (NumText("1e-20000"), "too_precise"), ("1e-20000", "too_precise"),
    (NumText("0." + "0" * 30 + "1"), "too_precise"), (1e-300, "too_precise"),
])
def test_every_kind_of_refusal_has_its_reason(raw: object, reason: str) -> None:
    parsed = parse(one_record(pm2_5=raw))
    assert reasons(parsed) == {"pm2_5": reason}
    assert parsed.reject_reasons() == {reason: 1}


@pytest.mark.parametrize("raw", [NumText("3.5e1"), NumText("35.00000000000000000001"),
                                 NumText("0.30000000000000004"), 0.30000000000000004])
def test_exponents_and_float_reprs_within_the_places_pass(raw: object) -> None:
    parsed = parse(one_record(pm2_5=raw))
    assert reasons(parsed) == {}
    assert [str(v) for v, _ in stored(parsed, "pm2_5")] == [str(raw)]


def test_unknown_flag_is_refused_and_known_flags_are_kept_invalid() -> None:
    parsed = parse(one_record(pm2_5_flag="Q", pm10_flag="M"))
    assert reasons(parsed) == {"pm2_5": "unknown_flag"}
    assert stored(parsed, "pm10") == [(80, False)]


def test_rejections_are_counted_by_reason() -> None:
    records = [{"time": hour_label(k), **CLEAN} for k in range(6)]
    records[0]["so2"] = 9999.9
    records[1]["no2"] = -99
    records[2]["o3"] = 5000
    records[3]["co"] = "abc"
    records[4]["pm10"] = -3
    parsed = parse(records)
    assert parsed.reject_reasons() == {"sentinel": 2, "out_of_range": 1, "non_numeric": 1,
                                       "negative": 1}
    assert len(parsed.rows) == 6 * 6 - 5


# -- PM2.5 above PM10 -------------------------------------------------------------------------

def test_pm2_5_above_pm10_keeps_both_values_as_received_and_names_the_hour() -> None:
    """The national platform published such pairs (501 of 12,445 station-hours in the
    archive, e.g. PM2.5 106 / PM10 37): both stay valid, the pair is reported."""
    records = [{"time": hour_label(k), **CLEAN} for k in range(3)]
    records[1].update(pm2_5=106, pm10=37)
    parsed = parse(records)
    assert parsed.rejected == []
    assert stored(parsed, "pm10") == [(80, True), (37, True), (80, True)]
    assert stored(parsed, "pm2_5") == [(50, True), (106, True), (50, True)]
    hour = datetime.fromisoformat(hour_label(1)).replace(tzinfo=SHANGHAI).astimezone(UTC)
    assert parsed.pm_inverted == [(hour, "37", "106")]


def test_pm_pair_check_ignores_refused_and_flagged_values() -> None:
    records = [{"time": hour_label(k), **CLEAN} for k in range(3)]
    records[0].update(pm2_5=90, pm10=9999.9)
    records[1].update(pm2_5=90, pm10=40, pm10_flag="C")
    parsed = parse(records)
    assert parsed.pm_inverted == []
    assert parsed.reject_reasons() == {"sentinel": 1}


# -- real published data ----------------------------------------------------------------------

def _published() -> list[dict[str, str]]:
    with PUBLISHED.open(newline="") as f:
        return list(csv.DictReader(f))


def _number(text: str) -> object:
    """A published value as a logger's JSON carries it (an int, or a JSON number's text)."""
    return NumText(text) if "." in text else int(text)


def test_fixture_holds_the_published_extremes() -> None:
    """The fixture is the whole hourly archive: its maxima are the published ones."""
    rows = _published()
    assert len(rows) == 13_503
    top = {p: max(float(r[p]) for r in rows if r[p]) for p in POLLUTANTS}
    assert top == {"so2": 434, "no2": 145, "co": 13.6, "o3": 401, "pm10": 633, "pm2_5": 346}
    inverted = [r for r in rows if r["pm10"] and r["pm2_5"]
                and float(r["pm2_5"]) > float(r["pm10"])]
    assert len(inverted) == 501


def test_every_published_hourly_value_passes_validation() -> None:
    """Each of the 13,503 real station-hours CNEMC published, as a logger would send it."""
    by_station: dict[tuple[str, str], dict[str, dict[str, object]]] = {}
    for row in _published():
        rec: dict[str, object] = {"time": row["time"][:16]}
        rec.update((pol, _number(row[pol])) for pol in POLLUTANTS if row[pol])
        # one record per hour, as a logger answers (a later snapshot replaces an earlier one)
        by_station.setdefault((row["dataset"], row["station"]), {})[rec["time"]] = rec
    since = datetime(2017, 1, 1, tzinfo=UTC)
    now = datetime(2020, 1, 1, tzinfo=UTC)
    kept = inverted = expected = 0
    for (_, station), records in by_station.items():
        expected += sum(len(rec) - 1 for rec in records.values())
        parsed = parse_hourly({"records": list(records.values())}, station, MAPPING, since,
                              now, SHANGHAI, "test")
        assert parsed.rejected == [], (station, parsed.rejected[:3])
        assert all(row[5] for row in parsed.rows)
        kept += len(parsed.rows)
        inverted += len(parsed.pm_inverted)
    assert kept == expected
    assert inverted == 501


@pytest.mark.parametrize("pm10", [1370, 2000, 6450, 8108])
def test_real_dust_storm_pm10_passes(pm10: int) -> None:
    """Beijing, 2021-03-15 (MEE): PM10 1,370 at 08:00, 6,450 at 09:00, 8,108 in the six
    urban districts; PM2.5 462."""
    parsed = parse(one_record(pm10=pm10, pm2_5=462))
    assert parsed.rejected == []
    assert stored(parsed, "pm10") == [(pm10, True)]
