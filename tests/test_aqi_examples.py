"""The worked examples and rules of aqi-standards.md (§4 rounding, §5 levels and primary
pollutants, §6 missing data, §1 scheme switch, §9 examples), checked through compute().

Every expected number is derived by hand from the §2 table (the derivation is in the
comment) or computed by ``aqi_reference`` on Fractions — never taken from the engine.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise

import pytest
from aqi_reference import (
    COLUMNS,
    LEVELS,
    S2012,
    S2012P,
    S2026,
    expected_iaqi,
    level_of,
)

from aqi_service.aqi import (
    all_schemes,
    compute,
    get_scheme,
    iaqi,
    scheme_for_day,
    scheme_for_hour,
)
from aqi_service.errors import ConcentrationError, SchemeError

CST = timezone(timedelta(hours=8))

# Low background concentrations (every IAQI below 50), hand-derived:
#   so2 1 h 5 → 50/150×5 = 1.67 → 2;  no2 1 h 10 → 5;  co 1 h 0.2 → 2;  o3 1 h 20 → 6.25 → 7;
#   o3 8 h 20 → 10;  pm10 10 → 10;  pm2.5 5 → 50/35×5 = 7.1 → 8 (both schemes);
#   so2 24 h 5 → 5;  no2 24 h 10 → 12.5 → 13;  co 24 h 0.2 → 5.
BACKGROUND = {
    (S2026, "hourly"): {"so2": 5, "no2": 10, "co": 0.2, "o3": 20, "pm10": 10, "pm2_5": 5},
    (S2026, "daily"): {"so2_24h": 5, "no2_24h": 10, "co_24h": 0.2, "o3_8h_24h": 20,
                       "pm10_24h": 10, "pm2_5_24h": 5},
    (S2012, "hourly"): {"so2": 5, "no2": 10, "co": 0.2, "o3": 20, "o3_8h": 20,
                        "pm10_24h": 10, "pm2_5_24h": 5},
    (S2012, "daily"): {"so2_24h": 5, "no2_24h": 10, "co_24h": 0.2, "o3_24h": 20,
                       "o3_8h_24h": 20, "pm10_24h": 10, "pm2_5_24h": 5},
    (S2012P, "hourly"): {"so2": 5, "no2": 10, "co": 0.2, "o3": 20, "pm10": 10, "pm2_5": 5},
}
BACKGROUND_AQI = {(S2026, "hourly"): 10, (S2026, "daily"): 13,
                  (S2012, "hourly"): 10, (S2012, "daily"): 13, (S2012P, "hourly"): 10}


def full(scheme: str, report: str, **values):
    """compute() with every pollutant of the report present: the background plus ``values``."""
    return compute({**BACKGROUND[(scheme, report)], **values}, get_scheme(scheme), report)


@pytest.mark.parametrize("case", list(BACKGROUND), ids=lambda c: f"{c[0]}-{c[1]}")
def test_background_is_low_and_complete(case):
    result = full(*case)
    assert result.aqi == BACKGROUND_AQI[case]
    assert result.missing == ()
    assert result.primary_pollutants == ()


# ---------------------------------------------------------------------------------------
# §9 worked examples


def test_example_1_realtime_2026():
    r = compute({"so2": 10, "no2": 30, "co": 0.5, "o3": 80, "pm10": 40, "pm2_5": 20},
                get_scheme(S2026), "hourly")
    # so2 50/150×10 = 3.3 → 4; no2 15; co 5; o3 50/160×80 = 25; pm10 40; pm2.5 50/35×20 → 29
    assert r.iaqi == {"so2": 4, "no2": 15, "co": 5, "o3": 25, "pm10": 40, "pm2_5": 29}
    assert r.aqi == 40
    assert (r.level.level, r.level.category_zh) == (1, "优")
    assert r.primary_pollutants == ()


def test_example_2_daily_2026():
    r = compute({"so2_24h": 8, "no2_24h": 30, "co_24h": 0.6, "o3_8h_24h": 90,
                 "pm10_24h": 100, "pm2_5_24h": 75}, get_scheme(S2026), "daily")
    # no2 50/40×30 = 37.5 → 38; co 25×0.6 = 15; o3 45;
    # pm10 50 + 50/70×50 = 85.7 → 86; pm2.5 100 + 50/55×15 = 113.6 → 114
    assert r.iaqi == {"so2": 8, "no2": 38, "co": 15, "o3": 45, "pm10": 86, "pm2_5": 114}
    assert r.aqi == 114
    assert (r.level.level, r.level.category_zh) == (3, "轻度污染")
    assert r.primary_pollutants == ("pm2_5",)


def test_example_2_daily_2012_with_o3_1h():
    r = compute({"so2_24h": 8, "no2_24h": 30, "co_24h": 0.6, "o3_24h": 120, "o3_8h_24h": 90,
                 "pm10_24h": 100, "pm2_5_24h": 75}, get_scheme(S2012), "daily")
    # pm10 50 + 50/100×50 = 75; pm2.5 exactly 100; o3 max(1 h 37.5 → 38, 8 h 45) = 45
    assert r.iaqi == {"so2": 8, "no2": 38, "co": 15, "o3": 45, "pm10": 75, "pm2_5": 100}
    assert r.indicator_iaqi["o3_24h"] == 38
    assert r.aqi == 100
    assert (r.level.level, r.level.category_zh) == (2, "良")
    assert r.primary_pollutants == ("pm2_5",)
    assert r.exceeding_pollutants == ()


@pytest.mark.parametrize(
    ("scheme", "report", "key", "value", "pollutant", "expected"),
    [
        # PM2.5 61 (2026): 100 + 50/55×1 = 100.9 → 101
        (S2026, "hourly", "pm2_5", 61, "pm2_5", 101),
        (S2026, "daily", "pm2_5_24h", 61, "pm2_5", 101),
        # PM2.5 76 (2012): 100 + 50/40×1 = 101.25 → 102
        (S2012, "hourly", "pm2_5_24h", 76, "pm2_5", 102),
        (S2012, "daily", "pm2_5_24h", 76, "pm2_5", 102),
        # CO 24 h 4.1: 100 + 5×0.1 = 100.5 → 101
        (S2026, "daily", "co_24h", 4.1, "co", 101),
        (S2012, "daily", "co_24h", 4.1, "co", 101),
        # O3 8 h 161: 100 + 50/55 → 101
        (S2026, "daily", "o3_8h_24h", 161, "o3", 101),
        (S2012, "daily", "o3_8h_24h", 161, "o3", 101),
        (S2012, "hourly", "o3_8h", 161, "o3", 101),
    ],
    ids=lambda v: str(v),
)
def test_example_3_just_above_100(scheme, report, key, value, pollutant, expected):
    r = full(scheme, report, **{key: value})
    assert r.iaqi[pollutant] == expected
    assert r.aqi == expected
    assert r.level.level == 3
    assert r.primary_pollutants == (pollutant,)
    assert r.exceeding_pollutants == ((pollutant,) if scheme == S2012 else None)


def test_example_4_so2_1h_850_in_2026():
    r = full(S2026, "hourly", so2=850)
    assert r.iaqi["so2"] == 200
    assert r.aqi == 200
    assert r.level.level == 4
    assert r.primary_pollutants == ("so2",)
    assert r.beyond_index is False


def test_example_4_so2_1h_850_in_2012_uses_24h_300():
    r = full(S2012, "hourly", so2=850, so2_24h=300)
    # 100 + 50/325×150 = 123.08 → 124
    assert r.iaqi["so2"] == 124
    assert r.aqi == 124
    assert r.level.level == 3
    assert r.primary_pollutants == ("so2",)
    assert r.exceeding_pollutants == ("so2",)


def test_example_5_o3_8h_850_in_2026():
    r = full(S2026, "daily", o3_8h_24h=850)
    assert r.iaqi["o3"] == 300
    assert r.aqi == 300
    assert (r.level.level, r.level.category_zh) == (5, "重度污染")
    assert r.beyond_index is False


def test_example_5_o3_8h_850_in_2012_uses_1h_1000():
    r = full(S2012, "daily", o3_8h_24h=850, o3_24h=1000)
    assert r.iaqi["o3"] == 400
    assert "o3_8h_24h" not in r.indicator_iaqi
    assert r.aqi == 400
    assert (r.level.level, r.level.category_zh) == (6, "严重污染")


@pytest.mark.parametrize("scheme", [S2026, S2012])
@pytest.mark.parametrize(
    ("report", "key", "value", "expected"),
    [
        ("hourly", "co", 12.3, 105),   # 100 + 50/25×2.3 = 104.6 → 105
        ("daily", "co_24h", 3.2, 80),  # 50 + 25×1.2 = 80 exactly
        ("daily", "co_24h", 2.2, 55),  # 50 + 25×0.2 = 55 exactly (float gives 56)
    ],
    ids=["co_1h-12.3", "co_24h-3.2", "co_24h-2.2"],
)
def test_example_6_co(scheme, report, key, value, expected):
    r = full(scheme, report, **{key: value})
    assert r.iaqi["co"] == expected
    assert r.aqi == expected


def test_example_7_tie_at_100():
    r = full(S2026, "daily", no2_24h=80, pm2_5_24h=60)
    assert r.iaqi["no2"] == r.iaqi["pm2_5"] == 100
    assert r.aqi == 100
    assert r.level.level == 2
    assert r.primary_pollutants == ("no2", "pm2_5")


def test_example_8_above_the_index():
    r = full(S2026, "daily", pm2_5_24h=600)
    assert r.iaqi["pm2_5"] == 500
    assert r.aqi == 500
    assert (r.level.level, r.level.category_zh) == (6, "严重污染")
    assert r.beyond_index is True
    assert r.to_dict()["beyond_index"] is True


@pytest.mark.parametrize(
    ("scheme", "expected", "level"),
    [
        (S2012, 94, 2),   # 24 h moving 70: 50 + 50/40×35 = 93.75 → 94 (良)
        (S2012P, 158, 4),  # 1 h 120 on the 2012 column 115-150: 150 + 50/35×5 → 158
        (S2026, 158, 4),  # 1 h 120: 150 + 50/35×5 = 157.1 → 158 (中度污染)
    ],
    ids=["2012-text", "2012-practice", "2026"],
)
def test_example_9_pm25_1h_vs_24h(scheme, expected, level):
    r = full(scheme, "hourly", pm2_5=120, pm2_5_24h=70)
    assert r.iaqi["pm2_5"] == expected
    assert r.aqi == expected
    assert r.level.level == level


def test_example_10_no2_200_4_rounds_to_200():
    r = full(S2026, "hourly", no2=200.4)
    assert r.indexed["no2"] == 200
    assert r.iaqi["no2"] == 100
    assert r.aqi == 100
    assert (r.level.level, r.level.category_zh) == (2, "良")


# ---------------------------------------------------------------------------------------
# §4 floating point traps and sweeps against the exact reference


def test_float_trap_is_real():
    """The naive float formula really gives the wrong integers the engine must avoid."""
    assert math.ceil((50 / 2) * (2.2 - 2) + 50) == 56
    assert math.ceil((300 - 200) / (90 - 60) * (65.4 - 60) + 200) == 219


@pytest.mark.parametrize("scheme", [S2026, S2012])
@pytest.mark.parametrize(
    ("report", "key", "value", "pollutant", "expected"),
    [
        ("daily", "co_24h", 2.2, "co", 55),  # 50 + 25×0.2
        ("hourly", "co", 65.4, "co", 218),   # 200 + 100/30×5.4 = 218
    ],
    ids=["co_24h-2.2", "co_1h-65.4"],
)
def test_float_trap_cells(scheme, report, key, value, pollutant, expected):
    r = compute({key: value}, get_scheme(scheme), report)
    assert r.iaqi[pollutant] == expected


def _decimal_grid(upper: int, step: str):
    """(float, Decimal) for 0, step, 2·step, … upper; each float's repr is the decimal."""
    q = Decimal(step)
    n = int(Decimal(upper) / q)
    for k in range(n + 1):
        dec = k * q
        value = float(dec)
        assert Decimal(repr(value)) == dec
        yield value, dec


SWEEPS = [
    # scheme, report, key, column, upper, step
    (S2026, "daily", "co_24h", "co_24h", 60, "0.1"),
    (S2012, "daily", "co_24h", "co_24h", 60, "0.1"),
    (S2026, "hourly", "co", "co_1h", 150, "0.1"),
    (S2012, "hourly", "co", "co_1h", 150, "0.1"),
    (S2026, "daily", "co_24h", "co_24h", 60, "0.05"),   # every GB/T 8170 tie
    (S2026, "hourly", "co", "co_1h", 150, "0.05"),
    (S2012, "daily", "co_24h", "co_24h", 60, "0.01"),
    (S2012, "hourly", "co", "co_1h", 150, "0.01"),
    # µg/m³ columns: 2012 as measured on a 0.1 grid, 2026 on a 0.5 grid (every tie).
    (S2012, "daily", "so2_24h", "so2_24h", 2620, "0.1"),
    (S2012, "hourly", "so2", "so2_1h", 800, "0.1"),
    (S2012, "daily", "no2_24h", "no2_24h", 940, "0.1"),
    (S2012, "hourly", "no2", "no2_1h", 3840, "0.1"),
    (S2012, "hourly", "o3", "o3_1h", 1200, "0.1"),
    (S2012, "daily", "o3_8h_24h", "o3_8h", 800, "0.1"),
    (S2012, "daily", "pm10_24h", "pm10_24h", 600, "0.1"),
    (S2012, "daily", "pm2_5_24h", "pm2_5_24h", 500, "0.1"),
    (S2026, "daily", "so2_24h", "so2_24h", 2620, "0.5"),
    (S2026, "hourly", "so2", "so2_1h", 800, "0.5"),
    (S2026, "daily", "no2_24h", "no2_24h", 940, "0.5"),
    (S2026, "hourly", "no2", "no2_1h", 3840, "0.5"),
    (S2026, "hourly", "o3", "o3_1h", 1200, "0.5"),
    (S2026, "daily", "o3_8h_24h", "o3_8h", 800, "0.5"),
    (S2026, "hourly", "pm10", "pm10_24h", 600, "0.5"),
    (S2026, "hourly", "pm2_5", "pm2_5_24h", 500, "0.5"),
]


def _sweep_params():
    for scheme, report, key, column, upper, step in SWEEPS:
        size = int(upper / Decimal(step))
        yield pytest.param(
            scheme, report, key, column, upper, step,
            id=f"{scheme[-4:]}-{key}@{column}-0..{upper}-by-{step}",
            marks=[pytest.mark.slow] if size > 5000 else [],
        )


@pytest.mark.parametrize(
    ("scheme", "report", "key", "column", "upper", "step"), list(_sweep_params())
)
def test_sweep_equals_exact_fraction(scheme, report, key, column, upper, step):
    sch = get_scheme(scheme)
    count_traps = scheme == S2012 and column.startswith("co_")
    wrong = []
    traps = 0
    for value, dec in _decimal_grid(upper, step):
        expected, _ = expected_iaqi(scheme, column, dec)
        got = compute({key: value}, sch, report).indicator_iaqi[key]
        if got != expected:
            wrong.append((value, got, expected))
        if count_traps:
            # Cells where the naive float formula would have been wrong.
            traps += _naive_float_iaqi(scheme, column, value) != expected
    assert wrong == [], f"{len(wrong)} values differ (value, engine, exact): {wrong[:10]}"
    if count_traps:
        assert traps > 0  # the sweep does cover float-trap cells


def _naive_float_iaqi(scheme, column, value: float) -> int:
    """The §2 formula in binary floating point: what §4 warns against."""
    points = COLUMNS[scheme][column]
    for (bp_lo, i_lo), (bp_hi, i_hi) in pairwise(points):
        if bp_lo < value <= bp_hi:
            return math.ceil((i_hi - i_lo) / (bp_hi - bp_lo) * (value - bp_lo) + i_lo)
    return 0


# ---------------------------------------------------------------------------------------
# §4 rounding order: 2026 rounds the concentration (GB/T 8170, half to even) first


@pytest.mark.parametrize(
    ("value", "indexed", "expected"),
    [
        (200.4, 200, 100),  # 10th example
        (200.5, 200, 100),  # tie → even
        (199.5, 200, 100),  # tie → even
        (201.5, 202, 101),  # tie → even; 100 + 50/500×2 = 100.2 → 101
        (200.6, 201, 101),
        (0.5, 0, 0),
        (1.5, 2, 1),
        (2.5, 2, 1),
    ],
    ids=lambda v: str(v),
)
def test_2026_no2_1h_rounding(value, indexed, expected):
    r = compute({"no2": value}, get_scheme(S2026), "hourly")
    assert r.indexed["no2"] == indexed
    assert r.iaqi["no2"] == expected


@pytest.mark.parametrize(
    ("value", "expected", "level"),
    [(200.4, 101, 3), (200.5, 101, 3), (200, 100, 2)],  # 100 + 50/500×0.4 = 100.04 → 101
    ids=lambda v: str(v),
)
def test_2012_no2_1h_is_not_rounded(value, expected, level):
    r = full(S2012, "hourly", no2=value)
    assert r.indexed["no2"] == Fraction(Decimal(str(value)))
    assert r.iaqi["no2"] == expected
    assert r.aqi == expected
    assert r.level.level == level


@pytest.mark.parametrize(
    ("value", "indexed", "expected"),
    [
        (2.25, "2.2", 55),  # tie → even
        (2.15, "2.2", 55),  # tie → even
        (2.35, "2.4", 60),  # tie → even (as a float 2.35 < 2.35 exactly; read as the decimal)
        (2.45, "2.4", 60),
        (2.05, "2.0", 50),
        (2.26, "2.3", 58),  # 50 + 25×0.3 = 57.5 → 58
    ],
    ids=lambda v: str(v),
)
def test_2026_co_rounds_to_one_decimal(value, indexed, expected):
    r = compute({"co_24h": value}, get_scheme(S2026), "daily")
    assert r.indexed["co_24h"] == Fraction(Decimal(indexed))
    assert r.iaqi["co"] == expected


def test_2012_co_is_not_rounded():
    r = compute({"co_24h": 2.25}, get_scheme(S2012), "daily")
    assert r.indexed["co_24h"] == Fraction(9, 4)
    assert r.iaqi["co"] == 57  # 50 + 25×0.25 = 56.25 → 57


@pytest.mark.parametrize(
    ("report", "key"), [("hourly", "pm2_5"), ("daily", "pm2_5_24h")], ids=["hourly", "daily"]
)
def test_2026_pm25_60_5_rounds_to_60(report, key):
    r = full(S2026, report, **{key: 60.5})
    assert r.indexed[key] == 60
    assert r.iaqi["pm2_5"] == 100
    assert r.aqi == 100
    assert r.level.level == 2


@pytest.mark.parametrize("report", ["hourly", "daily"])
def test_2012_pm25_60_5_is_not_rounded(report):
    r = full(S2012, report, pm2_5_24h=60.5)
    assert r.indexed["pm2_5_24h"] == Fraction(121, 2)
    assert r.iaqi["pm2_5"] == 82  # 50 + 50/40×25.5 = 81.875 → 82


@pytest.mark.parametrize(
    "value",
    [2.2, "2.2", " 2.2 ", Decimal("2.2"), Decimal("2.20"), Fraction(11, 5), "22e-1"],
    ids=lambda v: f"{type(v).__name__}:{v!r}",
)
@pytest.mark.parametrize("scheme", [S2026, S2012])
def test_input_types_are_read_exactly(scheme, value):
    r = compute({"co_24h": value}, get_scheme(scheme), "daily")
    assert r.iaqi["co"] == 55


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 0), (-0.0, 0), (2, 50), (4, 100)], ids=str
)
def test_integer_inputs(value, expected):
    assert compute({"co_24h": value}, get_scheme(S2026), "daily").iaqi["co"] == expected


# ---------------------------------------------------------------------------------------
# §5 primary and exceeding pollutants


def test_primary_tie_on_integer_iaqi():
    # pm2.5 47 → 50 + 50/25×12 = 74 exactly; o3 1 h 179 → 50 + 50/40×19 = 73.75 → 74
    r = full(S2026, "hourly", pm2_5=47, o3=179)
    assert r.iaqi["pm2_5"] == 74
    assert r.iaqi["o3"] == 74
    assert r.aqi == 74
    assert r.primary_pollutants == ("o3", "pm2_5")


def test_primary_no_tie_one_below():
    # o3 1 h 178 → 50 + 50/40×18 = 72.5 → 73
    r = full(S2026, "hourly", pm2_5=47, o3=178)
    assert r.primary_pollutants == ("pm2_5",)


def test_three_way_tie_sorted():
    # no2 1 h 148 → 50 + 50/100×48 = 74; pm10 74 → 50 + 50/70×24 = 67.1 → 68 (not tied)
    r = full(S2026, "hourly", pm2_5=47, o3=179, no2=148, pm10=74)
    assert r.aqi == 74
    assert r.primary_pollutants == ("no2", "o3", "pm2_5")


@pytest.mark.parametrize("scheme", [S2026, S2012])
@pytest.mark.parametrize(
    ("no2", "aqi", "primary"),
    [(100, 50, ()), (101, 51, ("no2",))],  # 101 → 50.5 → 51
    ids=["aqi50", "aqi51"],
)
def test_primary_only_above_50(scheme, no2, aqi, primary):
    r = full(scheme, "hourly", no2=no2)
    assert r.aqi == aqi
    assert r.primary_pollutants == primary
    assert r.to_dict()["primary_pollutants"] == list(primary)


def test_tie_at_50_has_no_primary():
    r = full(S2026, "hourly", no2=100, pm2_5=35)
    assert r.aqi == 50
    assert r.primary_pollutants == ()


def test_exceeding_pollutants_2012():
    # no2 1 h 201 → 100.1 → 101; pm2.5 24 h 76 → 102; o3 1 h 200 → exactly 100 (not exceeding)
    r = full(S2012, "hourly", no2=201, pm2_5_24h=76, o3=200)
    assert r.iaqi["o3"] == 100
    assert r.exceeding_pollutants == ("no2", "pm2_5")
    assert r.primary_pollutants == ("pm2_5",)


def test_exceeding_pollutants_2012_none_when_all_at_most_100():
    r = full(S2012, "daily", pm2_5_24h=75)
    assert r.aqi == 100
    assert r.exceeding_pollutants == ()


def test_no_exceeding_pollutants_in_2026():
    r = full(S2026, "hourly", no2=201, pm2_5=76)
    assert r.aqi > 100
    assert r.exceeding_pollutants is None


# ---------------------------------------------------------------------------------------
# §5 levels, categories and colours at every boundary

COLOR_HEX = {1: "#00E400", 2: "#FFFF00", 3: "#FF7E00", 4: "#FF0000", 5: "#99004C", 6: "#7E0023"}

# NO2 1 h concentration → AQI, hand-derived on the no2_1h column (background below 50):
BOUNDARIES = [
    (100, 50),     # 50
    (101, 51),     # 50.5 → 51
    (200, 100),
    (201, 101),    # 100.1 → 101
    (700, 150),
    (701, 151),    # 150.1 → 151
    (1200, 200),
    (1201, 201),   # 200 + 100/1140 → 201
    (2340, 300),
    (2341, 301),   # 300 + 100/750 → 301
    (3840, 500),
]


@pytest.mark.parametrize("scheme", [S2026, S2012])
@pytest.mark.parametrize(("no2", "aqi"), BOUNDARIES, ids=[f"aqi{a}" for _, a in BOUNDARIES])
def test_level_at_boundary(scheme, no2, aqi):
    r = full(scheme, "hourly", no2=no2)
    assert r.aqi == aqi
    number, lo, hi, zh, en, _colour, rgb = level_of(aqi)
    assert r.level.level == number
    assert lo <= aqi <= hi
    assert (r.level.category_zh, r.level.category_en, r.level.rgb) == (zh, en, rgb)
    assert r.category_zh == zh
    assert r.color == COLOR_HEX[number]
    d = r.to_dict()
    assert (d["aqi"], d["level"], d["category"], d["category_en"], d["color"]) == (
        aqi, number, zh, en, COLOR_HEX[number])
    assert d["scheme"] == scheme
    assert d["beyond_index"] is False


@pytest.mark.parametrize("scheme", [S2026, S2012])
def test_levels_table_matches_section_5(scheme):
    levels = get_scheme(scheme).levels
    assert [(lv.level, lv.aqi_min, lv.aqi_max, lv.category_zh, lv.category_en,
             lv.color_name_zh, lv.rgb) for lv in levels] == [tuple(row) for row in LEVELS]
    for lv in levels:
        assert lv.color == COLOR_HEX[lv.level]
        assert lv.color == "#{:02X}{:02X}{:02X}".format(*lv.rgb)


@pytest.mark.parametrize(("scheme", "report"), list(BACKGROUND), ids=lambda v: str(v))
def test_all_zero_is_aqi_0_level_1(scheme, report):
    zeros = {k: 0 for k in BACKGROUND[(scheme, report)]}
    r = compute(zeros, get_scheme(scheme), report)
    assert r.aqi == 0
    assert r.level.level == 1
    assert r.primary_pollutants == ()


def test_above_top_is_level_6_beyond():
    r = full(S2026, "hourly", no2=3841)
    assert (r.aqi, r.level.level, r.color, r.beyond_index) == (500, 6, "#7E0023", True)


# ---------------------------------------------------------------------------------------
# §1 scheme switch: hour-ending labels, natural days


@pytest.mark.parametrize(
    ("label", "scheme"),
    [
        (datetime(2026, 2, 28, 23, 0, tzinfo=CST), S2012P),
        (datetime(2026, 3, 1, 0, 0, tzinfo=CST), S2012P),   # covers 23:00–24:00 on 28 Feb
        (datetime(2026, 3, 1, 1, 0, tzinfo=CST), S2026),   # covers 00:00–01:00 on 1 Mar
        (datetime(2026, 3, 1, 2, 0, tzinfo=CST), S2026),
        (datetime(2026, 2, 28, 16, 0, tzinfo=UTC), S2012P),  # = 3-01 00:00 +08
        (datetime(2026, 2, 28, 17, 0, tzinfo=UTC), S2026),  # = 3-01 01:00 +08
        (datetime(2015, 6, 1, 12, 0, tzinfo=CST), S2012P),
        (datetime(2031, 1, 1, 0, 0, tzinfo=CST), S2026),
    ],
    ids=lambda v: v.isoformat() if isinstance(v, datetime) else v,
)
def test_scheme_for_hour(label, scheme):
    """By default an hour before the switch is indexed as the national platform published."""
    assert scheme_for_hour(label).id == scheme
    assert scheme_for_hour(label, variant="practice").id == scheme
    # The text's reading differs before the switch only: HJ 633-2026 is both.
    assert scheme_for_hour(label, variant="text").id == (S2012 if scheme == S2012P else S2026)


@pytest.mark.parametrize(
    ("day", "scheme"),
    [
        (date(2026, 2, 28), S2012P),
        (date(2026, 3, 1), S2026),
        (date(2013, 1, 1), S2012P),
        (date(2030, 12, 31), S2026),
    ],
    ids=str,
)
def test_scheme_for_day(day, scheme):
    assert scheme_for_day(day).id == scheme
    assert scheme_for_day(day, variant="text").id == (S2012 if scheme == S2012P else S2026)


def test_unknown_variant_is_rejected():
    with pytest.raises(SchemeError, match="variant"):
        scheme_for_hour(datetime(2020, 1, 1, 1, 0, tzinfo=CST), variant="textbook")


@pytest.mark.parametrize("report", ["hourly", "daily"])
def test_2012_readings_share_the_daily_report_and_differ_hourly(report):
    """The two 2012 files differ only in what the hourly report indexes (§3 vs practice)."""
    text, practice = get_scheme(S2012), get_scheme(S2012P)
    assert text.columns == practice.columns and text.levels == practice.levels
    if report == "daily":
        assert text.report("daily") == practice.report("daily")
    else:
        assert practice.inputs("hourly") == ("so2", "so2_24h", "no2", "co", "o3", "pm10",
                                             "pm2_5")
        assert text.inputs("hourly") == ("so2", "so2_24h", "no2", "co", "o3", "o3_8h",
                                         "pm10_24h", "pm2_5_24h")


def test_2012_practice_indexes_1h_pm_and_no_o3_8h():
    """Hand-derived from §2: PM10 1 h 160 → 100 + 50/100×10 = 105; PM2.5 1 h 76 → 101.25 →
    102; O3 8 h 230 (text: 165) is not indexed; the 24 h PM averages are not either."""
    r = full(S2012P, "hourly", pm10=160, pm2_5=76, pm10_24h=10, pm2_5_24h=5, o3_8h=230)
    assert (r.iaqi["pm10"], r.iaqi["pm2_5"], r.iaqi["o3"]) == (105, 102, 7)
    assert (r.aqi, r.primary_pollutants) == (105, ("pm10",))
    assert "o3_8h" not in r.indicator_iaqi and "pm10_24h" not in r.indexed


def test_2012_practice_so2_above_800_uses_the_24h_average():
    # SO2 24 h 300: 100 + 50·150/325 = 123.1 → 124 (the 2012 rule, §2 b)
    r = full(S2012P, "hourly", so2=850, so2_24h=300)
    assert (r.iaqi["so2"], r.aqi) == (124, 124)


def test_2012_practice_publishes_from_the_pollutants_present():
    r = compute({"pm2_5": 20}, get_scheme(S2012P), "hourly")
    assert (r.aqi, r.missing) == (29, ("so2", "no2", "co", "o3", "pm10"))


def test_naive_time_is_rejected():
    with pytest.raises(SchemeError):
        scheme_for_hour(datetime(2026, 3, 1, 1, 0))


def test_schemes_shipped():
    assert [s.id for s in all_schemes()] == [S2012P, S2012, S2026]
    with pytest.raises(SchemeError):
        get_scheme("HJ633-1999")


def test_unknown_report_is_rejected():
    with pytest.raises(SchemeError):
        compute({"no2": 1}, get_scheme(S2026), "weekly")


# ---------------------------------------------------------------------------------------
# §6 missing data (2026): publish only above 100; not-monitored pollutants do not block


def _without(case, *keys):
    return {k: v for k, v in BACKGROUND[case].items() if k not in keys}


@pytest.mark.parametrize("how", ["absent", "None"])
def test_2026_missing_pm10_and_aqi_100_is_na(how):
    values = _without((S2026, "hourly"), "pm10")
    if how == "None":
        values["pm10"] = None
    r = compute({**values, "no2": 200}, get_scheme(S2026), "hourly")
    assert r.missing == ("pm10",)
    assert r.computed_aqi == 100
    assert r.aqi is None
    assert r.level is None
    assert r.category_zh is None and r.color is None
    assert r.primary_pollutants == ()
    assert r.iaqi["no2"] == 100  # single-pollutant IAQIs are still published
    assert "pm10" not in r.iaqi
    d = r.to_dict()
    assert (d["aqi"], d["level"], d["category"], d["category_en"], d["color"]) == (None,) * 5
    assert d["iaqi"]["no2"] == 100


def test_2026_missing_pm10_and_aqi_101_is_published():
    values = _without((S2026, "hourly"), "pm10")
    r = compute({**values, "no2": 201}, get_scheme(S2026), "hourly")
    assert r.missing == ("pm10",)
    assert r.aqi == 101
    assert r.level.level == 3
    assert r.primary_pollutants == ("no2",)


@pytest.mark.parametrize(("pm25", "aqi"), [(60, None), (61, 101)], ids=["100-NA", "101"])
def test_2026_daily_missing_o3(pm25, aqi):
    values = _without((S2026, "daily"), "o3_8h_24h")
    r = compute({**values, "pm2_5_24h": pm25}, get_scheme(S2026), "daily")
    assert r.missing == ("o3",)
    assert r.aqi == aqi
    assert r.computed_aqi == (100 if aqi is None else aqi)


@pytest.mark.parametrize(("scheme", "report", "key", "pollutant"), [
    (S2026, "hourly", "pm2_5", "pm2_5"),
    (S2026, "daily", "co_24h", "co"),
])
def test_2026_single_pollutant_keeps_iaqi(scheme, report, key, pollutant):
    r = compute({key: 0.5}, get_scheme(scheme), report)
    assert r.aqi is None
    assert pollutant in r.iaqi


def test_2026_not_monitored_does_not_block():
    # §9 example 1 without CO, CO not in the monitoring plan: AQI 40 is published.
    values = {"so2": 10, "no2": 30, "o3": 80, "pm10": 40, "pm2_5": 20}
    r = compute(values, get_scheme(S2026), "hourly", not_monitored=("co",))
    assert r.missing == ()
    assert r.not_monitored == ("co",)
    assert r.aqi == 40
    assert r.level.level == 1


def test_2026_not_monitored_with_a_value_is_not_indexed():
    r = compute({**BACKGROUND[(S2026, "hourly")], "co": 50}, get_scheme(S2026), "hourly",
                not_monitored=("co",))
    assert "co" not in r.iaqi
    assert r.aqi == 10


def test_2026_not_monitored_and_missing_is_still_na():
    values = _without((S2026, "hourly"), "co", "pm10")
    r = compute(values, get_scheme(S2026), "hourly", not_monitored=("co",))
    assert r.missing == ("pm10",)
    assert r.aqi is None


@pytest.mark.parametrize(
    ("report", "values", "aqi"),
    [
        ("hourly", {"no2": 30}, 15),
        ("hourly", {"no2": 30, "pm2_5_24h": None}, 15),
        ("daily", {"pm2_5_24h": 20}, 29),  # 50/35×20 = 28.6 → 29
    ],
    ids=["hourly-no2-only", "hourly-pm-None", "daily-pm25-only"],
)
def test_2012_computes_from_available(report, values, aqi):
    r = compute(values, get_scheme(S2012), report)
    assert r.aqi == aqi
    assert r.level.level == 1
    assert r.missing  # reported, but it does not hide the AQI


def test_nothing_supplied():
    for scheme in (S2012, S2026):
        r = compute({}, get_scheme(scheme), "hourly")
        assert r.aqi is None and r.level is None and r.iaqi == {}


# ---------------------------------------------------------------------------------------
# Bad inputs

BAD_VALUES = [
    -1, -0.001, "-5", Fraction(-1, 3), Decimal("-1"),
    float("nan"), float("inf"), float("-inf"),
    Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("-Infinity"),
    "nan", "inf", "Infinity", "abc", "", "1,5", "12 µg",
    True, False, [1.0], {"v": 1}, object(), 1 + 0j, b"12",
]


@pytest.mark.parametrize("value", BAD_VALUES, ids=lambda v: f"{type(v).__name__}:{v!r}")
@pytest.mark.parametrize(
    ("scheme", "report", "key"),
    [
        (S2026, "hourly", "pm2_5"),
        (S2026, "daily", "co_24h"),
        (S2012, "hourly", "o3_8h"),
        (S2012, "daily", "so2_24h"),
    ],
    ids=lambda v: str(v),
)
def test_bad_value_raises(scheme, report, key, value):
    values = {**BACKGROUND[(scheme, report)], key: value}
    with pytest.raises(ConcentrationError, match=key) as info:
        compute(values, get_scheme(scheme), report)
    assert isinstance(info.value, ValueError)


def test_bad_fallback_input_is_rejected_even_if_unused():
    """2012 real-time reads so2_24h (the fallback); garbage there is not silently ignored."""
    with pytest.raises(ConcentrationError):
        compute({"so2": 100, "so2_24h": -3}, get_scheme(S2012), "hourly")


# ---------------------------------------------------------------------------------------
# The single-column helper iaqi(column, value, decimals)


@pytest.mark.parametrize(
    ("scheme", "column", "value", "decimals", "expected"),
    [
        (S2026, "co_24h", 2.2, 1, (55, False)),
        (S2026, "co_24h", 2.25, 1, (55, False)),   # rounded to 2.2 first
        (S2026, "co_24h", 2.25, None, (57, False)),  # no rounding asked: 56.25 → 57
        (S2026, "co_24h", 60.04, 1, (500, False)),  # rounds onto the top
        (S2026, "co_24h", 60.1, 1, (500, True)),
        (S2026, "no2_1h", 200.4, 0, (100, False)),
        (S2012, "co_1h", 65.4, None, (218, False)),
        (S2012, "pm2_5_24h", 76, None, (102, False)),
        (S2026, "pm2_5_24h", 76, 0, (115, False)),  # 100 + 50/55×16 = 114.5 → 115
    ],
    ids=lambda v: str(v),
)
def test_iaqi_helper(scheme, column, value, decimals, expected):
    assert iaqi(get_scheme(scheme).columns[column], value, decimals) == expected


# ---------------------------------------------------------------------------------------
# Extremes: any positive concentration has a positive 2012 IAQI (ceiling, no rounding);
# 2026 rounds a tiny value to 0 first. Huge values are capped at 500 and flagged.

TINY = [5e-324, 1e-40, Decimal("1e-40"), "1e-40", Fraction(1, 10**40), Decimal("1e-7")]
TINY += [Decimal("1e-999999999"), "1e-999999999"]


def _tiny_params():
    for value in TINY:
        vid = f"{type(value).__name__}:{value!r}"
        yield pytest.param(S2012, 1, value, id=f"2012-{vid}")
        yield pytest.param(S2026, 0, value, id=f"2026-{vid}")


@pytest.mark.parametrize(("scheme", "expected", "value"), list(_tiny_params()))
def test_tiny_positive_concentration(scheme, expected, value):
    assert compute({"no2": value}, get_scheme(scheme), "hourly").iaqi["no2"] == expected


HUGE = [1e308, 10**40, 10**400, Decimal("1e40"), Decimal("1e400"), "1e400", Fraction(10**50, 3),
        Decimal("1e999999999"), "1e999999999"]


@pytest.mark.parametrize("value", HUGE, ids=lambda v: f"{type(v).__name__}:{str(v)[:12]}")
@pytest.mark.parametrize("scheme", [S2012, S2026])
def test_huge_concentration_is_capped(scheme, value):
    r = compute({"no2": value}, get_scheme(scheme), "hourly")
    assert (r.iaqi["no2"], r.beyond_index) == (500, True)
