"""The ``aqi-service aqi`` command: its ``main`` in-process (stdin, stdout and stderr replaced)
for most tests, a real subprocess (``python -m aqi_service aqi``) where the process matters
(locale and encoding of the standard streams, a hang, the whole stream in one run).

Expected IAQIs are worked by hand from aqi-standards.md §2 (breakpoints), §3 (what each
report indexes), §4 (ceiling; 2026 rounds concentrations first), §5 (levels), §6 (2026:
with a pollutant missing the AQI is published only above 100) and the worked examples of §9.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess

import pytest
from cli_support import jsonl, run_aqi

S2012 = "HJ633-2012-text"
"""The 2012 text's reading (hourly: PM 24 h moving averages, O3 1 h and 8 h)."""
S2012P = "HJ633-2012"
"""HJ 633-2012 as the national platform published it (hourly: the six 1 h values)."""
S2026 = "HJ633-2026"

# §5: level -> (category, English category, colour)
LEVELS = {
    1: ("优", "Excellent", "#00E400"),
    2: ("良", "Good", "#FFFF00"),
    3: ("轻度污染", "Lightly polluted", "#FF7E00"),
    4: ("中度污染", "Moderately polluted", "#FF0000"),
    5: ("重度污染", "Heavily polluted", "#99004C"),
    6: ("严重污染", "Severely polluted", "#7E0023"),
}
RESULT_KEYS = {
    "aqi", "level", "category", "category_en", "color",
    "primary_pollutants", "iaqi", "scheme", "beyond_index",
}


def result(aqi, level, iaqi, scheme, primary=(), beyond=False) -> dict:
    """The full expected output object (the exact key set of the spec)."""
    category, category_en, color = LEVELS[level] if level else (None, None, None)
    return {
        "aqi": aqi, "level": level, "category": category, "category_en": category_en,
        "color": color, "primary_pollutants": sorted(primary), "iaqi": iaqi,
        "scheme": scheme, "beyond_index": beyond,
    }


# --------------------------------------------------------------------------------------------
# Worked examples (§9), both schemes, both reports
# --------------------------------------------------------------------------------------------

EX1_RT_2026 = {"so2": 10, "no2": 30, "co": 0.5, "o3": 80, "pm10": 40, "pm2_5": 20}
# 2012 real-time indexes PM on the 24 h moving averages; the 1 h PM values are ignored.
EX1_RT_2012 = {"so2": 10, "no2": 30, "co": 0.5, "o3": 80, "pm10_24h": 40, "pm2_5_24h": 20,
               "pm10": 400, "pm2_5": 300}
# SO2 10/150·50 = 3.3 -> 4; NO2 30/100·50 = 15; CO 0.5/5·50 = 5; O3 80/160·50 = 25;
# PM10 40/50·50 = 40; PM2.5 20/35·50 = 28.6 -> 29
EX1_IAQI = {"so2": 4, "no2": 15, "co": 5, "o3": 25, "pm10": 40, "pm2_5": 29}

EX2_DAILY = {"so2_24h": 8, "no2_24h": 30, "co_24h": 0.6, "o3_8h_24h": 90,
             "pm10_24h": 100, "pm2_5_24h": 75}
# low background for the other pollutants of a complete 2026 daily report:
# SO2 5 -> 5; NO2 10 -> 12.5 -> 13; CO 0.4 -> 10; O3 8 h 20 -> 10; PM10 10 -> 10; PM2.5 10 -> 15
LOW_DAILY = {"so2_24h": 5, "no2_24h": 10, "co_24h": 0.4, "o3_8h_24h": 20,
             "pm10_24h": 10, "pm2_5_24h": 10}
LOW_DAILY_IAQI = {"so2": 5, "no2": 13, "co": 10, "o3": 10, "pm10": 10, "pm2_5": 15}

WORKED = [
    pytest.param(
        S2026, "hourly", EX1_RT_2026, result(40, 1, EX1_IAQI, S2026),
        id="ex1-rt-2026-aqi40-no-primary"),
    pytest.param(
        S2012, "hourly", EX1_RT_2012, result(40, 1, EX1_IAQI, S2012),
        id="ex1-rt-2012-pm-from-24h"),
    # PM10 100: 50 + 50·50/70 = 85.7 -> 86; PM2.5 75: 100 + 50·15/55 = 113.6 -> 114;
    # SO2 8; NO2 30/40·50 = 37.5 -> 38; CO 0.6/2·50 = 15; O3 8 h 90/100·50 = 45
    pytest.param(
        S2026, "daily", EX2_DAILY,
        result(114, 3, {"so2": 8, "no2": 38, "co": 15, "o3": 45, "pm10": 86, "pm2_5": 114},
               S2026, ["pm2_5"]),
        id="ex2-daily-2026-aqi114"),
    # 2012: PM10 100 -> 75; PM2.5 75 -> exactly 100; O3 max(8 h 45, 1 h 120/160·50 = 37.5 -> 38)
    pytest.param(
        S2012, "daily", {**EX2_DAILY, "o3_24h": 120},
        result(100, 2, {"so2": 8, "no2": 38, "co": 15, "o3": 45, "pm10": 75, "pm2_5": 100},
               S2012, ["pm2_5"]),
        id="ex2-daily-2012-aqi100"),
    # §9.3; a single pollutant above 100 is published even under 2026 (§6)
    pytest.param(S2026, "daily", {"pm2_5_24h": 61},
                 result(101, 3, {"pm2_5": 101}, S2026, ["pm2_5"]), id="ex3-pm2_5-61-2026"),
    pytest.param(S2012, "daily", {"pm2_5_24h": 76},
                 result(102, 3, {"pm2_5": 102}, S2012, ["pm2_5"]), id="ex3-pm2_5-76-2012"),
    pytest.param(S2026, "daily", {"co_24h": 4.1},
                 result(101, 3, {"co": 101}, S2026, ["co"]), id="ex3-co-4.1-2026"),
    pytest.param(S2012, "daily", {"co_24h": 4.1},
                 result(101, 3, {"co": 101}, S2012, ["co"]), id="ex3-co-4.1-2012"),
    pytest.param(S2026, "daily", {"o3_8h_24h": 161},
                 result(101, 3, {"o3": 101}, S2026, ["o3"]), id="ex3-o3-8h-161-2026"),
    # §9.4: SO2 1 h 850 -> 200 (2026); 2012 uses SO2 24 h 300: 100 + 50·150/325 = 123.1 -> 124
    pytest.param(S2026, "hourly", {"so2": 850},
                 result(200, 4, {"so2": 200}, S2026, ["so2"]), id="ex4-so2-850-2026"),
    pytest.param(S2012, "hourly", {"so2": 850, "so2_24h": 300},
                 result(124, 3, {"so2": 124}, S2012, ["so2"]), id="ex4-so2-850-2012"),
    # §9.5: O3 8 h 850 -> 300 (2026); 2012 uses O3 1 h 1000 -> 400
    pytest.param(S2026, "daily", {"o3_8h_24h": 850},
                 result(300, 5, {"o3": 300}, S2026, ["o3"]), id="ex5-o3-8h-850-2026"),
    pytest.param(S2012, "daily", {"o3_8h_24h": 850, "o3_24h": 1000},
                 result(400, 6, {"o3": 400}, S2012, ["o3"]), id="ex5-o3-8h-850-2012"),
    # §9.6: CO 1 h 12.3 -> 100 + 50·2.3/25 = 104.6 -> 105; CO 24 h 3.2 -> 80; 2.2 -> 55 (not 56)
    pytest.param(S2026, "hourly", {"co": 12.3},
                 result(105, 3, {"co": 105}, S2026, ["co"]), id="ex6-co-1h-12.3-2026"),
    pytest.param(S2012, "hourly", {"co": 12.3},
                 result(105, 3, {"co": 105}, S2012, ["co"]), id="ex6-co-1h-12.3-2012"),
    pytest.param(S2012, "daily", {"co_24h": 3.2},
                 result(80, 2, {"co": 80}, S2012, ["co"]), id="ex6-co-24h-3.2-2012"),
    pytest.param(S2026, "daily", {**LOW_DAILY, "co_24h": 3.2},
                 result(80, 2, {**LOW_DAILY_IAQI, "co": 80}, S2026, ["co"]),
                 id="ex6-co-24h-3.2-2026"),
    pytest.param(S2012, "daily", {"co_24h": 2.2},
                 result(55, 2, {"co": 55}, S2012, ["co"]), id="ex6-co-24h-2.2-2012"),
    pytest.param(S2026, "daily", {**LOW_DAILY, "co_24h": 2.2},
                 result(55, 2, {**LOW_DAILY_IAQI, "co": 55}, S2026, ["co"]),
                 id="ex6-co-24h-2.2-2026"),
    # §9.7: NO2 80 and PM2.5 60 both exactly 100: a tie, both primary
    pytest.param(S2026, "daily", {**LOW_DAILY, "no2_24h": 80, "pm2_5_24h": 60},
                 result(100, 2, {**LOW_DAILY_IAQI, "no2": 100, "pm2_5": 100}, S2026,
                        ["no2", "pm2_5"]),
                 id="ex7-tie-no2-pm2_5-2026"),
    # §9.8: above the table: capped at 500, 六级, flagged
    pytest.param(S2026, "daily", {"pm2_5_24h": 600},
                 result(500, 6, {"pm2_5": 500}, S2026, ["pm2_5"], beyond=True),
                 id="ex8-pm2_5-600-2026-beyond"),
    pytest.param(S2012, "daily", {"pm2_5_24h": 600},
                 result(500, 6, {"pm2_5": 500}, S2012, ["pm2_5"], beyond=True),
                 id="ex8-pm2_5-600-2012-beyond"),
    # §9.9: PM2.5 1 h 120, 24 h 70. 2012: 24 h 70 -> 50 + 50·35/40 = 93.75 -> 94;
    # 2026: 1 h 120 on the daily column -> 150 + 50·5/35 = 157.1 -> 158
    pytest.param(S2012, "hourly", {"pm2_5": 120, "pm2_5_24h": 70},
                 result(94, 2, {"pm2_5": 94}, S2012, ["pm2_5"]), id="ex9-pm-2012-94"),
    pytest.param(S2026, "hourly", {"pm2_5": 120, "pm2_5_24h": 70},
                 result(158, 4, {"pm2_5": 158}, S2026, ["pm2_5"]), id="ex9-pm-2026-158"),
    # §9.10: NO2 1 h 200.4 -> 200 -> 100 (2026); unrounded (2012) 100.04 -> 101
    pytest.param(S2026, "hourly", {**EX1_RT_2026, "no2": 200.4},
                 result(100, 2, {**EX1_IAQI, "no2": 100}, S2026, ["no2"]),
                 id="ex10-no2-200.4-2026-rounded"),
    pytest.param(S2012, "hourly", {**EX1_RT_2012, "no2": 200.4},
                 result(101, 3, {**EX1_IAQI, "no2": 101}, S2012, ["no2"]),
                 id="ex10-no2-200.4-2012-unrounded"),
    # 2026 rounds half to even: NO2 200.5 -> 200 (IAQI 100), 201.5 -> 202 (100 + 50·2/500 -> 101)
    pytest.param(S2026, "hourly", {**EX1_RT_2026, "no2": 200.5},
                 result(100, 2, {**EX1_IAQI, "no2": 100}, S2026, ["no2"]),
                 id="no2-200.5-half-even-down"),
    pytest.param(S2026, "hourly", {**EX1_RT_2026, "no2": 201.5},
                 result(101, 3, {**EX1_IAQI, "no2": 101}, S2026, ["no2"]),
                 id="no2-201.5-half-even-up"),
    # 2012 real-time O3 has two indicators; the larger IAQI is O3's:
    # 1 h 250 -> 100 + 50·50/100 = 125 beats 8 h 170 -> 100 + 50·10/55 = 109.1 -> 110
    pytest.param(S2012, "hourly", {"o3": 250, "o3_8h": 170},
                 result(125, 3, {"o3": 125}, S2012, ["o3"]), id="o3-two-indicators-1h-wins"),
    # 8 h 230 -> 150 + 50·15/50 = 165 beats 1 h 180 -> 50 + 50·20/40 = 75
    pytest.param(S2012, "hourly", {"o3": 180, "o3_8h": 230},
                 result(165, 4, {"o3": 165}, S2012, ["o3"]), id="o3-two-indicators-8h-wins"),
    # 2012: O3 8 h above 800 is not computed; the 1 h 300 -> 150 stands
    pytest.param(S2012, "hourly", {"o3": 300, "o3_8h": 900},
                 result(150, 3, {"o3": 150}, S2012, ["o3"]), id="o3-8h-above-800-2012"),
    # §6: under 2026 a missing pollutant and AQI <= 100 -> NA; IAQIs still given
    pytest.param(S2026, "hourly", {"pm2_5": 20},
                 result(None, None, {"pm2_5": 29}, S2026), id="missing-na-2026"),
    pytest.param(S2012, "hourly", {"pm2_5_24h": 20},
                 result(29, 1, {"pm2_5": 29}, S2012), id="missing-available-2012"),
    # null is missing too
    pytest.param(S2026, "hourly", {**EX1_RT_2026, "co": None},
                 result(None, None, {k: v for k, v in EX1_IAQI.items() if k != "co"}, S2026),
                 id="null-is-missing-2026"),
    # "/" (not monitored) does not block publication
    pytest.param(S2026, "hourly", {**EX1_RT_2026, "co": "/"},
                 result(40, 1, {k: v for k, v in EX1_IAQI.items() if k != "co"}, S2026),
                 id="slash-not-monitored-2026"),
    pytest.param(S2026, "hourly",
                 {**{k: v for k, v in EX1_RT_2026.items() if k != "co"}, "not_monitored": ["co"]},
                 result(40, 1, {k: v for k, v in EX1_IAQI.items() if k != "co"}, S2026),
                 id="not_monitored-list-2026"),
    # numbers given as strings are read as their decimals
    pytest.param(S2026, "daily", {"co_24h": "4.1"},
                 result(101, 3, {"co": 101}, S2026, ["co"]), id="string-number"),
    # an empty object: nothing to index, but not an error
    pytest.param(S2012, "hourly", {},
                 result(None, None, {}, S2012), id="empty-object"),
]


# HJ 633-2012 hourly as the national platform published it: the six 1 h values, PM on the
# 24 h columns, no O3 8 h; the moving averages given beside them are ignored.
WORKED_PRACTICE = [
    # §9.1 with 1 h PM: IAQIs 4, 15, 5, 25, 40, 29 -> 40; the 24 h PM (400, 300) is ignored
    pytest.param(
        S2012P, "hourly", {**EX1_RT_2026, "pm10_24h": 400, "pm2_5_24h": 300},
        result(40, 1, EX1_IAQI, S2012P), id="practice-ex1-pm-from-1h"),
    # §9.9: PM2.5 1 h 120 on the 2012 column (115 -> 150, 150 -> 200): 150 + 50·5/35 -> 158
    pytest.param(S2012P, "hourly", {"pm2_5": 120, "pm2_5_24h": 70},
                 result(158, 4, {"pm2_5": 158}, S2012P, ["pm2_5"]), id="practice-ex9-158"),
    # PM2.5 1 h 76: 100 + 50·1/40 = 101.25 -> 102 (2012's column; 2026 would give 115)
    pytest.param(S2012P, "hourly", {"pm2_5": 76},
                 result(102, 3, {"pm2_5": 102}, S2012P, ["pm2_5"]), id="practice-pm2_5-76"),
    # PM10 1 h 160: 100 + 50·10/100 = 105 (2026's column would give 100 + 50·40/130 -> 116)
    pytest.param(S2012P, "hourly", {"pm10": 160, "pm10_24h": 20},
                 result(105, 3, {"pm10": 105}, S2012P, ["pm10"]), id="practice-pm10-160"),
    # §9.4: SO2 1 h 850 -> the 2012 rule, SO2 24 h 300: 100 + 50·150/325 = 123.1 -> 124
    # (PM2.5 1 h 10 -> 50·10/35 = 14.3 -> 15: as published, no hourly AQI without a PM value)
    pytest.param(S2012P, "hourly", {"so2": 850, "so2_24h": 300, "pm2_5": 10},
                 result(124, 3, {"so2": 124, "pm2_5": 15}, S2012P, ["so2"]),
                 id="practice-ex4-so2-850"),
    # O3 8 h is not indexed: 1 h 180 -> 50 + 50·20/40 = 75 (the text: 8 h 230 -> 165)
    pytest.param(S2012P, "hourly", {"o3": 180, "o3_8h": 230, "pm2_5": 10},
                 result(75, 2, {"o3": 75, "pm2_5": 15}, S2012P, ["o3"]), id="practice-no-o3-8h"),
    # Neither PM value: the platform published no hourly AQI from the gases alone
    pytest.param(S2012P, "hourly", {"so2": 20, "no2": 150, "co": 1.0, "o3": 100},
                 result(None, None, {"so2": 7, "no2": 75, "co": 10, "o3": 32}, S2012P),
                 id="practice-no-pm-no-aqi"),
    # no missing-data rule in 2012: published from the pollutants present
    pytest.param(S2012P, "hourly", {"pm2_5": 20},
                 result(29, 1, {"pm2_5": 29}, S2012P), id="practice-missing-available"),
    # §9.10 unrounded in 2012: NO2 200.4 -> 100.04 -> 101
    pytest.param(S2012P, "hourly", {**EX1_RT_2026, "no2": 200.4},
                 result(101, 3, {**EX1_IAQI, "no2": 101}, S2012P, ["no2"]),
                 id="practice-ex10-no2-200.4-unrounded"),
    # the daily report is the text's: §9.2 under 2012 -> 100
    pytest.param(
        S2012P, "daily", {**EX2_DAILY, "o3_24h": 120},
        result(100, 2, {"so2": 8, "no2": 38, "co": 15, "o3": 45, "pm10": 75, "pm2_5": 100},
               S2012P, ["pm2_5"]),
        id="practice-ex2-daily-aqi100"),
]


@pytest.mark.parametrize(("scheme", "report", "line", "expected"), WORKED + WORKED_PRACTICE)
def test_worked_example(scheme, report, line, expected):
    run = run_aqi("--scheme", scheme, "--report", report, stdin=jsonl(line))
    assert run.returncode == 0, run.stderr
    assert run.results == [expected]


def test_all_worked_examples_in_one_stream():
    """The same examples fed as one stream per (scheme, report) to a real process come out
    in order."""
    groups: dict[tuple[str, str], list] = {}
    for param in WORKED + WORKED_PRACTICE:
        scheme, report, line, expected = param.values
        groups.setdefault((scheme, report), []).append((line, expected))
    for (scheme, report), pairs in groups.items():
        run = run_aqi("--scheme", scheme, "--report", report, real=True,
                      stdin=jsonl(*(line for line, _ in pairs)))
        assert run.returncode == 0, run.stderr
        assert run.results == [expected for _, expected in pairs], (scheme, report)


@pytest.mark.parametrize(
    ("report", "line"),
    [("hourly", EX1_RT_2026), ("daily", EX2_DAILY), ("hourly", {"pm2_5": 20})],
    ids=["hourly", "daily", "na"],
)
def test_output_has_exactly_the_spec_keys(report, line):
    run = run_aqi("--scheme", S2026, "--report", report, stdin=jsonl(line))
    (out,) = run.results
    assert set(out) == RESULT_KEYS
    assert isinstance(out["primary_pollutants"], list)
    assert isinstance(out["beyond_index"], bool)


def test_defaults_are_auto_scheme_and_hourly_report():
    lines = [{"time": "2026-03-01T01:00+08:00", "pm2_5": 120, "pm2_5_24h": 70},
             {"time": "2026-03-01T00:00+08:00", "pm2_5": 76, "pm2_5_24h": 70}]
    assert run_aqi(stdin=jsonl(*lines), real=True).results == [
        result(158, 4, {"pm2_5": 158}, S2026, ["pm2_5"]),
        result(102, 3, {"pm2_5": 102}, S2012P, ["pm2_5"])]


# --------------------------------------------------------------------------------------------
# --scheme auto: the scheme follows the observation time
# --------------------------------------------------------------------------------------------

# Both index the 1 h PM2.5 76, on their own columns: 2012 100 + 50·1/40 = 101.25 -> 102;
# 2026 100 + 50·16/55 = 114.5 -> 115. (The 2012 text would index the 24 h 70 -> 94.)
HOURLY_PM = {"pm2_5": 76, "pm2_5_24h": 70}
R2012_HOURLY = result(102, 3, {"pm2_5": 102}, S2012P, ["pm2_5"])
R2026_HOURLY = result(115, 3, {"pm2_5": 115}, S2026, ["pm2_5"])
R2012_TEXT_HOURLY = result(94, 2, {"pm2_5": 94}, S2012, ["pm2_5"])


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        # hour-ending: the value labelled 00:00 on 1 March is the hour 23:00-24:00 of 28 February
        pytest.param("2026-03-01T00:00+08:00", R2012_HOURLY, id="label-00:00-is-28-feb"),
        pytest.param("2026-03-01T01:00+08:00", R2026_HOURLY, id="label-01:00-first-2026-hour"),
        pytest.param("2026-02-28T23:00+08:00", R2012_HOURLY, id="28-feb-23:00"),
        pytest.param("2026-03-01T00:00:00+08:00", R2012_HOURLY, id="with-seconds"),
        # no offset = Asia/Shanghai
        pytest.param("2026-03-01T00:00", R2012_HOURLY, id="no-offset-00:00"),
        pytest.param("2026-03-01T01:00", R2026_HOURLY, id="no-offset-01:00"),
        # the same instants in UTC
        pytest.param("2026-02-28T16:00+00:00", R2012_HOURLY, id="utc-16:00-is-00:00-cst"),
        pytest.param("2026-02-28T17:00+00:00", R2026_HOURLY, id="utc-17:00-is-01:00-cst"),
        pytest.param("2026-02-28T17:00Z", R2026_HOURLY, id="utc-z-suffix"),
        pytest.param("2020-07-01T12:00+08:00", R2012_HOURLY, id="2020"),
        pytest.param("2031-01-01T00:00+08:00", R2026_HOURLY, id="2031"),
        # CNEMC archives' timepoint, Beijing time, hour-ending
        pytest.param({"timepoint": "2026-03-01T0000"}, R2012_HOURLY, id="timepoint-00:00"),
        pytest.param({"timepoint": "2026-03-01T0100"}, R2026_HOURLY, id="timepoint-01:00"),
    ],
)
def test_auto_scheme_hourly(time, expected):
    stamp = time if isinstance(time, dict) else {"time": time}
    run = run_aqi("--scheme", "auto", "--report", "hourly", stdin=jsonl({**stamp, **HOURLY_PM}))
    assert run.returncode == 0, run.stderr
    assert run.results == [expected]


# PM2.5 24 h 76: 2012 -> 100 + 50·1/40 = 101.25 -> 102; 2026 -> 100 + 50·16/55 = 114.5 -> 115
@pytest.mark.parametrize(
    ("day", "aqi", "scheme"),
    [
        pytest.param("2026-02-28", 102, S2012P, id="28-feb-2012"),
        pytest.param("2026-03-01", 115, S2026, id="1-mar-2026"),
        pytest.param("2025-12-31", 102, S2012P, id="2025"),
        pytest.param("2026-03-02", 115, S2026, id="2-mar"),
    ],
)
def test_auto_scheme_daily(day, aqi, scheme):
    run = run_aqi("--scheme", "auto", "--report", "daily",
                  stdin=jsonl({"time": day, "pm2_5_24h": 76}))
    assert run.returncode == 0, run.stderr
    assert run.results == [result(aqi, 3, {"pm2_5": aqi}, scheme, ["pm2_5"])]


def test_fixed_scheme_ignores_time():
    line = {"time": "2026-03-01T01:00+08:00", **HOURLY_PM}
    assert run_aqi("--scheme", S2012, stdin=jsonl(line)).results == [R2012_TEXT_HOURLY]
    assert run_aqi("--scheme", S2012P, stdin=jsonl(line)).results == [R2012_HOURLY]


def test_auto_scheme_switches_within_one_stream():
    lines = [{"time": t, **HOURLY_PM} for t in (
        "2026-02-28T23:00+08:00", "2026-03-01T00:00+08:00", "2026-03-01T01:00+08:00",
        "2026-03-01T02:00+08:00")]
    run = run_aqi("--scheme", "auto", stdin=jsonl(*lines))
    assert [r["scheme"] for r in run.results] == [S2012P, S2012P, S2026, S2026]
    assert [r["aqi"] for r in run.results] == [102, 102, 115, 115]


# --------------------------------------------------------------------------------------------
# Bad lines: an error line in place, the others still processed, exit status 1
# --------------------------------------------------------------------------------------------

GOOD_BEFORE = {"time": "2026-03-01T01:00+08:00", **HOURLY_PM}   # -> R2026_HOURLY
GOOD_AFTER = {"time": "2026-03-01T00:00+08:00", **HOURLY_PM}    # -> R2012_HOURLY
T = '"time": "2026-03-01T01:00+08:00"'

BAD_LINES = [
    pytest.param('{"pm2_5": 10,', id="invalid-json-truncated"),
    pytest.param("{pm2_5: 10}", id="invalid-json-unquoted-key"),
    pytest.param("not json at all", id="invalid-json-text"),
    pytest.param('{"pm2_5": 10} {"pm2_5": 20}', id="two-objects-on-one-line"),
    pytest.param("[1, 2, 3]", id="json-array"),
    pytest.param(f"[{{{T}, \"pm2_5\": 10}}]", id="object-inside-array"),
    pytest.param('"pm2_5"', id="json-string"),
    pytest.param("42", id="json-number"),
    pytest.param("null", id="json-null"),
    pytest.param("true", id="json-true"),
    pytest.param(f'{{{T}, "pm2_5": -1}}', id="negative"),
    pytest.param(f'{{{T}, "co": -0.1}}', id="negative-decimal"),
    pytest.param(f'{{{T}, "pm2_5": "-5"}}', id="negative-string"),
    pytest.param(f'{{{T}, "pm2_5": NaN}}', id="nan"),
    pytest.param(f'{{{T}, "pm2_5": Infinity}}', id="infinity"),
    pytest.param(f'{{{T}, "pm2_5": -Infinity}}', id="minus-infinity"),
    pytest.param(f'{{{T}, "pm2_5": "NaN"}}', id="nan-string"),
    pytest.param(f'{{{T}, "pm2_5": "abc"}}', id="string-garbage"),
    pytest.param(f'{{{T}, "pm2_5": "12 µg"}}', id="string-with-unit"),
    pytest.param(f'{{{T}, "pm2_5": true}}', id="boolean-true"),
    pytest.param(f'{{{T}, "so2": false}}', id="boolean-false"),
    pytest.param(f'{{{T}, "pm2_5": [10]}}', id="list-value"),
    pytest.param(f'{{{T}, "pm2_5": {{"value": 10}}}}', id="object-value"),
    pytest.param(f'{{{T}, "not_monitored": "co"}}', id="not_monitored-not-a-list"),
    pytest.param(f'{{{T}, "not_monitored": ["carbon"]}}', id="not_monitored-unknown"),
    pytest.param(f'{{{T}, "not_monitored": [1]}}', id="not_monitored-number"),
    pytest.param('{"pm2_5": 10}', id="auto-missing-time"),
    pytest.param('{"time": null, "pm2_5": 10}', id="auto-null-time"),
    pytest.param('{"time": "yesterday", "pm2_5": 10}', id="auto-bad-time"),
    pytest.param('{"time": "", "pm2_5": 10}', id="auto-empty-time"),
    pytest.param('{"time": 20260301, "pm2_5": 10}', id="auto-time-number"),
    pytest.param('{"time": "2026-02-30T01:00+08:00", "pm2_5": 10}', id="auto-no-such-day"),
    pytest.param('{"time": "2026-03-01T25:00+08:00", "pm2_5": 10}', id="auto-hour-25"),
    pytest.param('{"time": "2026-03-01", "pm2_5": 10}', id="auto-hourly-date-only"),
]


@pytest.mark.parametrize("bad", BAD_LINES)
def test_bad_line_gives_an_error_line_in_place(bad):
    run = run_aqi("--scheme", "auto", "--report", "hourly",
                  stdin=jsonl(GOOD_BEFORE, bad, GOOD_AFTER))
    assert run.returncode == 1
    assert len(run.lines) == 3, run.stdout
    first, error, last = run.results
    assert first == R2026_HOURLY
    assert last == R2012_HOURLY
    assert set(error) == {"error"}
    assert isinstance(error["error"], str)
    assert error["error"].strip()


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param('{"time": "2026-02-28", "pm2_5_24h": -1}', id="negative"),
        pytest.param('{"time": "2026-02-28", "o3_24h": "x"}', id="garbage-in-2012-only-key"),
        pytest.param('{"time": "2026-03-01", "o3_8h_24h": NaN}', id="nan"),
        pytest.param('{"time": "2026-03-01", "co_24h": true}', id="boolean"),
        pytest.param('{"time": "2026-13-01", "pm2_5_24h": 10}', id="auto-bad-date"),
    ],
)
def test_bad_line_daily_report(bad):
    good = {"time": "2026-02-28", "pm2_5_24h": 76}
    run = run_aqi("--scheme", "auto", "--report", "daily", stdin=jsonl(good, bad, good))
    assert run.returncode == 1
    expected = result(102, 3, {"pm2_5": 102}, S2012P, ["pm2_5"])
    first, error, last = run.results
    assert (first, last) == (expected, expected)
    assert set(error) == {"error"}


def test_bad_line_under_a_fixed_scheme():
    run = run_aqi("--scheme", S2026, stdin=jsonl(EX1_RT_2026, '{"so2": -3}', EX1_RT_2026))
    assert run.returncode == 1
    ok = result(40, 1, EX1_IAQI, S2026)
    assert run.results[0] == ok
    assert set(run.results[1]) == {"error"}
    assert run.results[2] == ok


def test_many_bad_lines_keep_their_places():
    lines = []
    for i in range(60):
        lines.append("[]" if i % 3 == 1 else {"pm10_24h": i % 51})
    run = run_aqi("--scheme", S2012, stdin=jsonl(*lines))
    assert run.returncode == 1
    assert len(run.results) == 60
    for i, out in enumerate(run.results):
        if i % 3 == 1:
            assert set(out) == {"error"}, i
        else:
            assert out["iaqi"] == {"pm10": i % 51}, i


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--scheme", "HJ633-2099"], id="unknown-scheme"),
        pytest.param(["--scheme", "hj633-2026"], id="scheme-wrong-case"),
        pytest.param(["--scheme", ""], id="empty-scheme"),
        pytest.param(["--report", "weekly"], id="unknown-report"),
        pytest.param(["--format", "xml"], id="unknown-format"),
        pytest.param(["--no-such-option"], id="unknown-option"),
    ],
)
def test_bad_arguments_exit_2(args):
    run = run_aqi(*args, stdin=jsonl(EX1_RT_2026), real=args == ["--no-such-option"])
    assert run.returncode == 2
    assert run.stdout == ""
    assert "usage" in run.stderr.lower()


def test_exit_status_0_when_all_lines_succeed():
    run = run_aqi("--scheme", S2026, stdin=jsonl(EX1_RT_2026, {"pm2_5": 20}, {}))
    assert run.returncode == 0
    assert len(run.results) == 3


def test_blank_lines_are_skipped():
    text = "\n" + jsonl(EX1_RT_2026) + "   \n\t\n\n" + jsonl({"pm2_5": 600}) + "\n"
    run = run_aqi("--scheme", S2026, stdin=text)
    assert run.returncode == 0, run.stderr
    assert run.results == [
        result(40, 1, EX1_IAQI, S2026),
        result(500, 6, {"pm2_5": 500}, S2026, ["pm2_5"], beyond=True),
    ]


def test_empty_input():
    run = run_aqi("--scheme", S2026, stdin="")
    assert run.returncode == 0
    assert run.stdout == ""


def test_last_line_without_newline():
    run = run_aqi("--scheme", S2026, stdin=json.dumps(EX1_RT_2026))
    assert run.returncode == 0
    assert run.results == [result(40, 1, EX1_IAQI, S2026)]


def test_windows_line_endings():
    run = run_aqi("--scheme", S2026, stdin=json.dumps(EX1_RT_2026) + "\r\n" + "\r\n")
    assert run.returncode == 0
    assert run.results == [result(40, 1, EX1_IAQI, S2026)]


def test_output_is_utf8_json_with_chinese_categories():
    run = run_aqi("--scheme", S2026, stdin=jsonl(EX1_RT_2026))
    assert "优" in run.stdout   # written as text, not \\u escapes
    assert run.results[0]["category"] == "优"


# --------------------------------------------------------------------------------------------
# --detail
# --------------------------------------------------------------------------------------------


def test_detail_adds_fields_and_keeps_the_base_ones():
    line = {**EX1_RT_2026, "no2": 200.4}
    plain = run_aqi("--scheme", S2026, stdin=jsonl(line)).results[0]
    run = run_aqi("--scheme", S2026, "--detail", stdin=jsonl(line))
    assert run.returncode == 0
    (detail,) = run.results
    assert set(detail) > RESULT_KEYS
    assert {k: detail[k] for k in RESULT_KEYS} == plain
    # NO2 200.4 is indexed as the rounded 200 (GB/T 8170) with IAQI 100
    assert detail["indexed"]["no2"] == "200"
    assert detail["indicator_iaqi"]["no2"] == 100
    assert detail["report"] == "hourly"
    assert detail["computed_aqi"] == 100
    assert detail["missing"] == []


def test_detail_shows_the_computed_aqi_behind_na():
    run = run_aqi("--scheme", S2026, "--detail", stdin=jsonl({"pm2_5": 20}))
    (detail,) = run.results
    assert detail["aqi"] is None
    assert detail["computed_aqi"] == 29
    assert set(detail["missing"]) == {"so2", "no2", "co", "o3"} | {"pm10"}


def test_detail_2012_fallback_indicator():
    run = run_aqi("--scheme", S2012, "--detail", stdin=jsonl({"so2": 850, "so2_24h": 300}))
    (detail,) = run.results
    assert detail["aqi"] == 124
    assert detail["indicator_iaqi"].get("so2_24h") == 124
    assert detail["exceeding_pollutants"] == ["so2"]   # 2012 only: IAQI > 100


# --------------------------------------------------------------------------------------------
# --format csv
# --------------------------------------------------------------------------------------------

CSV_RESULT_COLUMNS = [
    "aqi", "level", "category", "category_en", "color", "primary_pollutants",
    "iaqi_so2", "iaqi_no2", "iaqi_co", "iaqi_o3", "iaqi_pm10", "iaqi_pm2_5",
    "scheme", "beyond_index", "error",
]


def read_csv(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames or []), list(reader)


def test_csv_round_trip():
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["station", "time", "so2", "no2", "co", "o3", "pm10", "pm2_5"])
    cst = "2026-03-01T01:00+08:00"
    rows = [
        ["A", cst, "10", "30", "0.5", "80", "40", "20"],       # ex1 -> 40
        ["B", cst, "10", "200.4", "0.5", "80", "40", "20"],    # ex10 -> 100, NO2
        ["C", cst, "10", "200", "0.5", "80", "40", "60"],      # NO2 and PM2.5 both 100
        ["D", cst, "10", "30", "/", "80", "40", "20"],         # CO not monitored -> 40
        ["E", cst, "10", "30", "", "80", "40", "20"],          # CO missing -> NA
        ["F", cst, "-1", "30", "0.5", "80", "40", "20"],       # error
        ["G", "2026-03-01T00:00+08:00", "10", "30", "0.5", "80", "40", "20"],  # 2012
        ["H", cst, "10", "30", "0.5", "80", "40", "600"],      # beyond the index
    ]
    writer.writerows(rows)
    run = run_aqi("--scheme", "auto", "--format", "csv", stdin=buf.getvalue())
    assert run.returncode == 1
    header, out = read_csv(run.stdout)
    assert header == ["station", "time", "so2", "no2", "co", "o3", "pm10", "pm2_5",
                      *CSV_RESULT_COLUMNS]
    assert [r["station"] for r in out] == list("ABCDEFGH")
    # the input columns are written back unchanged
    for row, got in zip(rows, out, strict=True):
        assert [got[c] for c in header[:8]] == row
    a, b, c, d, e, f, g, h = out

    def res(r):
        return {k: r[k] for k in CSV_RESULT_COLUMNS}

    assert res(a) == {
        "aqi": "40", "level": "1", "category": "优", "category_en": "Excellent",
        "color": "#00E400", "primary_pollutants": "",
        "iaqi_so2": "4", "iaqi_no2": "15", "iaqi_co": "5", "iaqi_o3": "25",
        "iaqi_pm10": "40", "iaqi_pm2_5": "29",
        "scheme": S2026, "beyond_index": "false", "error": "",
    }
    assert (b["aqi"], b["level"], b["primary_pollutants"], b["iaqi_no2"]) == ("100", "2", "no2",
                                                                             "100")
    assert (c["aqi"], c["primary_pollutants"]) == ("100", "no2;pm2_5")
    assert (d["aqi"], d["iaqi_co"], d["level"]) == ("40", "", "1")
    assert (e["aqi"], e["level"], e["category"], e["color"]) == ("", "", "", "")
    assert e["iaqi_pm2_5"] == "29"
    assert e["error"] == ""
    assert f["error"] != ""
    assert all(f[k] == "" for k in CSV_RESULT_COLUMNS if k != "error")
    # 2012 real-time as published reads the 1 h PM too: the same IAQIs as row A -> 40
    assert (g["scheme"], g["aqi"], g["iaqi_pm2_5"], g["iaqi_pm10"]) == (S2012P, "40", "29", "40")
    assert (h["aqi"], h["level"], h["beyond_index"], h["primary_pollutants"]) == (
        "500", "6", "true", "pm2_5")


def test_csv_daily_fixed_scheme_all_good():
    text = (
        "so2_24h,no2_24h,co_24h,o3_8h_24h,pm10_24h,pm2_5_24h,o3_24h\n"
        "8,30,0.6,90,100,75,120\n"        # ex2 -> 2012: 100
        ",,,,,76,\n"                       # 76 -> 102
        ",,2.2,,,,\n"                      # 55
    )
    run = run_aqi("--scheme", S2012, "--report", "daily", "--format", "csv", stdin=text)
    assert run.returncode == 0, run.stderr
    _, out = read_csv(run.stdout)
    assert [(r["aqi"], r["level"], r["primary_pollutants"]) for r in out] == [
        ("100", "2", "pm2_5"), ("102", "3", "pm2_5"), ("55", "2", "co")]
    assert out[0]["iaqi_o3"] == "45"
    assert all(r["error"] == "" and r["scheme"] == S2012 for r in out)


def test_csv_auto_without_time_column_fails_each_row():
    run = run_aqi("--scheme", "auto", "--format", "csv", stdin="pm2_5\n10\n20\n")
    assert run.returncode == 1
    _, out = read_csv(run.stdout)
    assert len(out) == 2
    assert all(r["error"] and r["aqi"] == "" for r in out)


def test_csv_quoted_fields_and_extra_columns_survive():
    text = 'name,pm2_5,note\n"Beijing, Dongcheng",600,"say ""hi"""\n'
    run = run_aqi("--scheme", S2026, "--format", "csv", stdin=text)
    assert run.returncode == 0, run.stderr
    header, out = read_csv(run.stdout)
    assert header[:3] == ["name", "pm2_5", "note"]
    assert out == [{**out[0], "name": "Beijing, Dongcheng", "note": 'say "hi"', "aqi": "500"}]


# --------------------------------------------------------------------------------------------
# Order and volume
# --------------------------------------------------------------------------------------------


def _order_line(i: int) -> dict:
    # 2012 real-time, first segments: PM10 24 h c -> IAQI c (0..50); NO2 1 h 2k -> IAQI k.
    return {"pm10_24h": i % 51, "no2": 2 * ((i // 51) % 51)}


def _order_expected(i: int) -> dict:
    c, k = i % 51, (i // 51) % 51
    return result(max(c, k), 1, {"no2": k, "pm10": c}, S2012)


def test_output_order_equals_input_order():
    n = 2601   # every (c, k) pair once: each line's result is distinct
    run = run_aqi("--scheme", S2012, stdin=jsonl(*(_order_line(i) for i in range(n))))
    assert run.returncode == 0, run.stderr
    assert run.results == [_order_expected(i) for i in range(n)]


def test_large_input_with_scattered_errors():
    n = 20_000
    bad = {i for i in range(n) if i % 997 == 500}
    lines = ['{"pm10_24h": -1}' if i in bad else _order_line(i) for i in range(n)]
    run = run_aqi("--scheme", S2012, stdin=jsonl(*lines))
    assert run.returncode == 1
    results = run.results
    assert len(results) == n
    for i, out in enumerate(results):
        if i in bad:
            assert set(out) == {"error"}, i
        else:
            assert out == _order_expected(i), i


# --------------------------------------------------------------------------------------------
# Inputs that once broke the command: each must be one bad line, never a crash or a hang
# --------------------------------------------------------------------------------------------


def test_huge_integer_literal_is_one_bad_line():
    huge = '{"pm2_5": 1' + "0" * 5000 + "}"
    run = run_aqi("--scheme", S2026, stdin=jsonl(EX1_RT_2026, huge, EX1_RT_2026))
    assert "Traceback" not in run.stderr
    assert len(run.lines) == 3
    assert run.results[0] == run.results[2] == result(40, 1, EX1_IAQI, S2026)


def test_huge_exponent_does_not_hang():
    try:
        run = run_aqi("--scheme", S2026, timeout=3, real=True,
                      stdin=jsonl(EX1_RT_2026, '{"so2": 1e999999999}', EX1_RT_2026))
    except subprocess.TimeoutExpired:
        pytest.fail("aqi-service aqi hung on {'so2': 1e999999999}")
    assert len(run.lines) == 3
    assert run.results[2] == result(40, 1, EX1_IAQI, S2026)


@pytest.mark.parametrize(
    ("report", "bad", "good"),
    [
        pytest.param("hourly", {"time": "0001-01-01T00:00+08:00", "pm2_5": 10}, GOOD_BEFORE,
                     id="hourly-year-1"),
        pytest.param("daily", {"time": "9999-12-31T23:00-12:00", "pm2_5_24h": 10},
                     {"time": "2026-02-28", "pm2_5_24h": 76}, id="daily-year-9999"),
    ],
)
def test_time_out_of_range_is_one_bad_line(report, bad, good):
    run = run_aqi("--scheme", "auto", "--report", report, stdin=jsonl(good, bad, good))
    assert "Traceback" not in run.stderr
    assert len(run.lines) == 3
    assert run.results[0] == run.results[2]


def test_invalid_utf8_line_under_strict_locale():
    data = jsonl(EX1_RT_2026).encode() + b'{"so2": 1\xff}\n' + jsonl(EX1_RT_2026).encode()
    run = run_aqi("--scheme", S2026, stdin=data, env={"PYTHONIOENCODING": "utf-8:strict"})
    assert "Traceback" not in run.stderr
    assert len(run.lines) == 3
    assert set(run.results[1]) == {"error"}


def test_invalid_utf8_line_in_utf8_mode():
    # In UTF-8 mode (surrogateescape) the same input gives one error line in place.
    data = jsonl(EX1_RT_2026).encode() + b'{"so2": 1\xff}\n' + jsonl(EX1_RT_2026).encode()
    run = run_aqi("--scheme", S2026, stdin=data)
    assert run.returncode == 1
    assert len(run.lines) == 3
    assert set(run.results[1]) == {"error"}


def test_csv_with_bom_reads_the_first_column():
    text = "\ufeffpm2_5,so2\n120,10\n"
    run = run_aqi("--scheme", S2026, "--format", "csv", stdin=text, real=True)
    _, out = read_csv(run.stdout.lstrip("\ufeff"))
    assert out[0]["iaqi_pm2_5"] == "158"
    assert out[0]["aqi"] == "158"


# --------------------------------------------------------------------------------------------
# Natural input: a whole real-time record, every 1 h value and moving average
# --------------------------------------------------------------------------------------------

# A CNEMC real-time record (station 1001A 万寿西宫, 2019-07-18 12:00, published AQI 133,
# primary PM2.5; cnemc-published/cnemc_eddycy.jsonl), under the archive's names.
RECORD = {"time": "2019-07-18T12:00+08:00", "station": "1001A",
          "so2": 3, "so2_24h": 3, "no2": 28, "no2_24h": 35, "co": 1.2, "co_24h": 0.8,
          "o3": 114, "o3_24h": 114, "o3_8h": 43, "o3_8h_24h": 61,
          "pm10": 92, "pm10_24h": 56, "pm2_5": 101, "pm2_5_24h": 65}
# Practice: PM2.5 1 h 101 on 75-115: 100 + 50·26/40 = 132.5 -> 133; PM10 92 -> 50 + 50·42/100
# = 71; O3 114/160·50 = 35.6 -> 36; NO2 28/100·50 = 14; CO 1.2/5·50 = 12; SO2 3/150·50 = 1
RECORD_IAQI = {"so2": 1, "no2": 14, "co": 12, "o3": 36, "pm10": 71, "pm2_5": 133}
MOVING = ["co_24h", "no2_24h", "o3_24h", "o3_8h", "o3_8h_24h", "pm10_24h", "pm2_5_24h"]


def test_whole_record_gives_the_published_aqi():
    run = run_aqi("--scheme", "auto", stdin=jsonl(RECORD))
    assert run.returncode == 0, run.stderr
    assert run.results == [result(133, 3, RECORD_IAQI, S2012P, ["pm2_5"])]


def test_detail_lists_the_ignored_keys():
    run = run_aqi("--scheme", "auto", "--detail", stdin=jsonl(RECORD))
    (out,) = run.results
    # so2_24h is read (SO2 1 h above 800 would use it); station is not a concentration
    assert out["ignored_keys"] == MOVING


@pytest.mark.parametrize(("scheme", "report", "ignored"), [
    (S2012, "hourly", ["co_24h", "no2_24h", "o3_24h", "o3_8h_24h", "pm10", "pm2_5"]),
    (S2026, "hourly", [*MOVING, "so2_24h"]),
    (S2012P, "daily", ["co", "no2", "o3", "o3_8h", "pm10", "pm2_5", "so2"]),
    (S2026, "daily", ["co", "no2", "o3", "o3_24h", "o3_8h", "pm10", "pm2_5", "so2"]),
], ids=["text-hourly", "2026-hourly", "2012-daily", "2026-daily"])
def test_ignored_keys_follow_scheme_and_report(scheme, report, ignored):
    run = run_aqi("--scheme", scheme, "--report", report, "--detail", stdin=jsonl(RECORD))
    assert run.returncode == 0, run.stderr
    assert sorted(run.results[0]["ignored_keys"]) == sorted(ignored)


def test_one_note_on_stderr_per_run_names_the_ignored_keys():
    later = {**RECORD, "time": "2026-03-01T01:00+08:00"}
    run = run_aqi("--scheme", "auto", stdin=jsonl(*[RECORD] * 50, later))
    assert run.returncode == 0
    notes = [line for line in run.stderr.splitlines() if "ignored" in line]
    assert len(notes) == 1, run.stderr
    assert f"{S2012P} hourly: {', '.join(MOVING)}" in notes[0]
    assert f"{S2026} hourly: {', '.join(sorted([*MOVING, 'so2_24h']))}" in notes[0]


def test_no_note_when_nothing_is_ignored():
    run = run_aqi("--scheme", S2026, stdin=jsonl(EX1_RT_2026))
    assert run.stderr == ""


def test_note_from_a_real_process():
    run = run_aqi("--scheme", "auto", stdin=jsonl(RECORD, RECORD), real=True)
    assert run.returncode == 0
    assert run.results[0]["aqi"] == 133
    assert run.stderr.count("ignored") == 1


def test_ignored_keys_are_not_validated():
    """A key the report does not read cannot fail the line (it is not used)."""
    line = {**RECORD, "pm2_5_24h": "x", "o3_8h": -1}
    run = run_aqi("--scheme", S2012P, stdin=jsonl(line))
    assert run.returncode == 0
    assert run.results == [result(133, 3, RECORD_IAQI, S2012P, ["pm2_5"])]


def test_o3_1h_is_a_synonym_of_o3():
    line = {k: v for k, v in RECORD.items() if k != "o3"} | {"o3_1h": 114}
    run = run_aqi("--scheme", "auto", "--detail", stdin=jsonl(line))
    (out,) = run.results
    assert out["iaqi"]["o3"] == 36
    assert "o3_1h" not in out["ignored_keys"]


def test_o3_and_o3_1h_that_differ_are_an_error():
    good = RECORD
    run = run_aqi("--scheme", "auto", stdin=jsonl(good, {**RECORD, "o3_1h": 115}, good))
    assert run.returncode == 1
    assert set(run.results[1]) == {"error"}
    assert run.results[1]["error"].startswith("line 2: ")
    assert run.results[0] == run.results[2]


def test_na_and_slash_in_a_record():
    """'NA' is missing, '/' not monitored (CNEMC archives); 2026 withholds an AQI <= 100."""
    base = {**RECORD, "time": "2026-03-01T01:00+08:00", "pm2_5": 40}
    # PM10 92 on 2026's 50-120: 50 + 50·42/70 = 80; PM2.5 40: 50 + 50·5/25 = 60
    na = run_aqi(stdin=jsonl({**base, "co": "NA"})).results[0]
    slash = run_aqi(stdin=jsonl({**base, "co": "/"})).results[0]
    assert (na["aqi"], na["iaqi"].get("co")) == (None, None)
    assert (slash["aqi"], slash["primary_pollutants"], slash["scheme"]) == (80, ["pm10"], S2026)


def test_archive_csv_is_natural_input():
    """A CNEMC archive file as it is (timepoint, NA, /): the AQI comes back, and keys holding
    no value (NA) are not named as ignored."""
    text = (
        "timepoint,stationcode,primarypollutant,aqi,pm10,pm10_24h,pm2_5,pm2_5_24h,o3,o3_24h,"
        "o3_8h,o3_8h_24h,no2,no2_24h,so2,so2_24h,co,co_24h\n"
        # 2695A 2026-03-01 01:00, published 232 (PM10 1 h 372: 200 + 100·22/70 = 231.4 -> 232)
        "2026-03-01T0100,2695A,颗粒物(PM10),232,372,505,145,154,7,7,NA,NA,73,17,8,4,3.1,1.1\n"
        # 1957A 2026-03-01 00:00 (HJ 633-2012), SO2 and CO not monitored, published 119
        # (PM10 1 h 187 on 150-250: 100 + 50·37/100 = 118.5 -> 119)
        "2026-03-01T0000,1957A,颗粒物(PM10),119,187,159,49,44,28,28,87,65,46,25,/,/,/,/\n"
    )
    run = run_aqi("--format", "csv", stdin=text)
    assert run.returncode == 0, run.stderr
    _, out = read_csv(run.stdout)
    assert [(r["aqi"], r["primary_pollutants"], r["scheme"]) for r in out] == [
        ("232", "pm10", S2026), ("119", "pm10", S2012P)]
    note = run.stderr.split("ignored (", 1)[1].rsplit(")", 1)[0]
    named = dict(part.split(" hourly: ") for part in note.split("; "))
    # 2026 row: o3_8h and o3_8h_24h are NA there; 2012 row: O3 8 h 87 is given, not indexed
    assert named[S2026].split(", ") == ["co_24h", "no2_24h", "o3_24h", "pm10_24h",
                                        "pm2_5_24h", "so2_24h"]
    assert "o3_8h" in named[S2012P].split(", ")
