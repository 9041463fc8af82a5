"""``aqi-service aqi`` against real hourly AQIs the national platform (CNEMC) published.

Each line fed to the CLI is a whole published record (every 1 h value and moving average,
the archive's names) with ``--scheme auto``; the expectation is what was published.
Sources: tests/cnemc_published.py and tests/data/cnemc/README.md.
"""

from __future__ import annotations

import pytest
from cnemc_published import (
    ARCHIVE_2026,
    KNOWN_DISAGREEMENT,
    SAMPLE,
    Hour,
    archive_line,
    load_archive_csv,
    load_shared,
    primary_of,
    reconcile,
    shared_dir,
)

SHARED = shared_dir()
needs_shared = pytest.mark.skipif(
    SHARED is None, reason="shared/data/cnemc-published not found (set AQI_SHARED_DIR)")


def _known(hour: Hour) -> bool:
    return (hour.station, hour.time) == KNOWN_DISAGREEMENT


def _report(rec) -> str:
    return "\n".join([rec.summary(), *rec.lines(50)])


def _check_no_aqi_without_pm(rec) -> int:
    """Hours with neither 1 h PM value: the platform published no AQI for any of them (the
    gases alone never made an hourly AQI), and neither does HJ633-2012. Returns how many."""
    without_pm = [(h, out) for h, out in rec.agree + rec.disagree + rec.unpublished
                  if {"pm10", "pm2_5"} <= set(h.missing_1h)]
    assert all(h.aqi is None for h, _ in without_pm), "published with no PM"
    assert [h for h, out in without_pm if out.get("aqi") is not None] == []
    return len(without_pm)


@pytest.fixture(scope="module")
def shared_hours() -> list[Hour]:
    assert SHARED is not None
    return load_shared(SHARED)


@needs_shared
def test_every_shared_hour_is_reproduced_but_the_known_one(shared_hours):
    rec = reconcile(shared_hours, "auto")
    print(_report(rec))
    published = len(rec.agree) + len(rec.disagree)
    assert published > 12_000
    assert len(rec.agree) / published >= 0.999, _report(rec)
    assert [h for h, _ in rec.disagree if not _known(h)] == [], _report(rec)
    assert all(out["scheme"] == "HJ633-2012" for _, out in rec.agree)
    # 147 with some gas measured, 309 with nothing at all.
    assert _check_no_aqi_without_pm(rec) == 456


@needs_shared
def test_the_2012_text_reading_is_not_what_was_published(shared_hours):
    """The text's reading (24 h PM, O3 8 h) reproduces about a ninth of the hours."""
    rec = reconcile(shared_hours, "HJ633-2012-text")
    print(rec.summary())
    published = len(rec.agree) + len(rec.disagree)
    assert len(rec.agree) / published < 0.2


@needs_shared
def test_the_committed_sample_is_the_shared_data():
    """The sample's rows are the shared rows, value for value (nothing retyped)."""
    shared = {(h.station, h.time): h for h in load_shared(SHARED)}
    for hour in load_archive_csv(SAMPLE):
        twin = shared[(hour.station, hour.time)]
        assert (hour.aqi, hour.primary) == (twin.aqi, twin.primary)
        for key, value in hour.record.items():
            same = twin.record.get(key)
            assert (value == "NA" and same is None) or float(value) == same, (hour, key)


def test_committed_sample_is_reproduced():
    hours = load_archive_csv(SAMPLE)
    rec = reconcile(hours, "auto")
    print(_report(rec))
    assert len(rec.agree) > 1500
    assert [h for h, _ in rec.disagree if not _known(h)] == [], _report(rec)
    # Missing 1 h values (NA) are in the sample and come back as published: 2012 has no
    # missing-data rule, the AQI is that of the pollutants present.
    with_missing = [h for h, _ in rec.agree if h.missing_1h]
    assert len(with_missing) > 1000
    assert {p for h in with_missing for p in h.missing_1h} == {
        "so2", "no2", "co", "o3", "pm10", "pm2_5"}
    assert _check_no_aqi_without_pm(rec) > 100


def test_committed_sample_text_reading_differs():
    rec = reconcile(load_archive_csv(SAMPLE), "HJ633-2012-text")
    assert len(rec.disagree) > 3 * len(rec.agree)


# --------------------------------------------------------------------------------------------
# Across the switch: CNEMC's archive, hours ending 2026-03-01 00:00 (HJ 633-2012) and 01:00
# (the first HJ 633-2026 hour)
# --------------------------------------------------------------------------------------------

LAST_2012, FIRST_2026 = (load_archive_csv(p) for p in ARCHIVE_2026)


def test_archive_hours_are_what_the_files_say():
    assert {h.time for h in LAST_2012} == {"2026-03-01T0000"}
    assert {h.time for h in FIRST_2026} == {"2026-03-01T0100"}
    assert len(LAST_2012) == 154 and len(FIRST_2026) == 152


def test_last_2012_hour_is_reproduced_whole():
    """Every row, PM10 missing (NA) and SO2/CO not monitored (/) included."""
    rec = reconcile(LAST_2012, "auto", archive_line)
    print(_report(rec))
    assert rec.disagree == [] and rec.unpublished == []
    assert {out["scheme"] for _, out in rec.agree} == {"HJ633-2012"}
    assert sum(1 for h, _ in rec.agree if h.missing_1h == ["pm10"]) == 17
    slash = {h.station: out["not_monitored"] for h, out in rec.agree if "/" in h.record.values()}
    assert slash == {"1957A": ["so2", "co"], "4263A": ["co"]}


def test_first_2026_hour_complete_records_are_reproduced():
    complete = [h for h in FIRST_2026 if not h.missing_1h]
    rec = reconcile(complete, "auto", archive_line)
    print(_report(rec))
    assert len(rec.agree) == len(complete) == 138
    assert {out["scheme"] for _, out in rec.agree} == {"HJ633-2026"}
    assert any(out["not_monitored"] == ["so2", "co"] for _, out in rec.agree)


def test_first_2026_hour_with_pm10_missing_follows_section_5_3():
    """§5.3: with a pollutant missing the AQI is published only above 100. The platform
    published these hours anyway (a practice no published rule states): the service computes
    the same number (computed_aqi) and withholds it where §5.3 says so."""
    incomplete = [h for h in FIRST_2026 if h.missing_1h and h.aqi is not None]
    rec = reconcile(incomplete, "auto", archive_line)
    print(_report(rec))
    assert len(incomplete) == 13 and {tuple(h.missing_1h) for h in incomplete} == {("pm10",)}
    for hour, out in rec.agree + rec.disagree:
        assert out["computed_aqi"] == hour.aqi, hour
        assert out["aqi"] == (hour.aqi if hour.aqi > 100 else None), hour
    assert (len(rec.agree), len(rec.disagree)) == (2, 11)


def test_first_2026_hour_with_nothing_measured_is_na():
    (empty,) = [h for h in FIRST_2026 if len(h.missing_1h) == 6]
    rec = reconcile([empty], "auto", archive_line)
    assert empty.aqi is None and rec.unpublished[0][1]["aqi"] is None


def test_the_switch_changes_the_pm_columns():
    """The same record read under the other scheme gives other AQIs: the hour decides."""
    wrong = reconcile(LAST_2012, "HJ633-2026", archive_line)
    assert len(wrong.disagree) > len(LAST_2012) // 2
    complete = [h for h in FIRST_2026 if not h.missing_1h]
    assert len(reconcile(complete, "HJ633-2012", archive_line).disagree) > 50


@pytest.mark.parametrize(("text", "names"), [
    ("颗粒物(PM10)", ["pm10"]), ("细颗粒物(PM2.5)", ["pm2_5"]),
    ("颗粒物(PM10),细颗粒物(PM2.5)", ["pm10", "pm2_5"]), ("臭氧1小时", ["o3"]),
    ("NA", []), ("", []),
])
def test_primary_pollutant_texts(text, names):
    assert primary_of(text) == names
