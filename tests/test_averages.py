"""GB 3095 averages (aqi_service.aqi.averages) against aqi-standards.md §7.

Every expectation is worked by hand from the standard:

* daily / 24 h mean: the mean of the hourly values present, valid with >= 20 of 24;
* 8 h mean: valid with >= 6 of 8 hourly values;
* O3 daily max 8 h: the 17 windows of a natural day ending 08:00 ... 24:00 (hour-ending
  labels 01:00 ... 24:00 are list indices 0 ... 23; the window ending at label h averages
  labels h-7 ... h, i.e. indices h-8 ... h-1), valid with >= 14 valid windows, or with fewer
  only if the maximum exceeds 160 µg/m³; no window crosses midnight.

Averages are exact Fractions: a float, Decimal or string input means the decimal it prints as.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aqi_service.aqi.averages import (
    Average,
    daily_max_1h,
    daily_mean,
    moving_8h,
    moving_24h,
    moving_max,
    moving_max_1h,
    moving_means,
    o3_daily_max_8h,
)
from aqi_service.errors import ConcentrationError

F = Fraction


def day_with_missing(value, missing):
    """24 hourly values equal to ``value`` with the list indices in ``missing`` set to None."""
    return [None if i in missing else value for i in range(24)]


# --------------------------------------------------------------------------------------------
# daily_mean: >= 20 valid hours of 24
# --------------------------------------------------------------------------------------------


def test_daily_mean_of_a_complete_day():
    # 1 + 2 + ... + 24 = 300; 300 / 24 = 12.5
    avg = daily_mean(list(range(1, 25)))
    assert avg == Average(F(25, 2), 24, 24)
    assert avg.is_valid
    assert avg.coverage == 1


@pytest.mark.parametrize(
    "missing",
    [
        pytest.param({20, 21, 22, 23}, id="last-4-missing"),
        pytest.param({0, 1, 2, 3}, id="first-4-missing"),
        pytest.param({0, 7, 15, 23}, id="scattered-4-missing"),
    ],
)
def test_daily_mean_valid_with_20_of_24_hours(missing):
    day = day_with_missing(7, missing)
    avg = daily_mean(day)
    assert avg.value == 7
    assert avg.valid == 20
    assert avg.expected == 24
    assert avg.is_valid
    assert avg.coverage == F(20, 24)


def test_daily_mean_averages_over_the_valid_hours_only():
    # Hours 1..20 present (values 1..20), 4 missing: (1 + ... + 20) / 20 = 210 / 20 = 21/2.
    day = [*range(1, 21), None, None, None, None]
    assert daily_mean(day) == Average(F(21, 2), 20, 24)


@pytest.mark.parametrize(
    "missing",
    [
        pytest.param({19, 20, 21, 22, 23}, id="last-5-missing"),
        pytest.param({0, 5, 10, 15, 20}, id="scattered-5-missing"),
    ],
)
def test_daily_mean_invalid_with_19_of_24_hours(missing):
    avg = daily_mean(day_with_missing(7, missing))
    assert avg.value is None
    assert avg.valid == 19
    assert avg.expected == 24
    assert not avg.is_valid
    assert avg.coverage == F(19, 24)


def test_daily_mean_of_an_empty_day():
    assert daily_mean([None] * 24) == Average(None, 0, 24)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        # 1/24 = 0.041666...: a repeating decimal that a float cannot hold
        pytest.param([1] + [0] * 23, F(1, 24), id="one-24th"),
        # 21 valid hours: 1/21 = 0.047619...
        pytest.param([1] + [0] * 20 + [None] * 3, F(1, 21), id="one-21st"),
        # 2 * 24 + 1 = 49 over 24 hours
        pytest.param([3] + [2] * 23, F(49, 24), id="49-24ths"),
    ],
)
def test_daily_mean_is_exact_for_repeating_decimals(day, expected):
    avg = daily_mean(day)
    assert isinstance(avg.value, Fraction)
    assert avg.value == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(0.1, F(1, 10), id="float-0.1"),
        pytest.param("0.1", F(1, 10), id="str-0.1"),
        pytest.param(Decimal("0.1"), F(1, 10), id="decimal-0.1"),
        pytest.param(F(1, 10), F(1, 10), id="fraction-1/10"),
        pytest.param(2.2, F(11, 5), id="float-2.2"),
        pytest.param(" 35.5 ", F(71, 2), id="str-with-spaces"),
        pytest.param(12, F(12), id="int"),
    ],
)
def test_daily_mean_reads_each_number_as_its_decimal(value, expected):
    # 24 x 0.1 summed in binary floating point gives 2.4000000000000004: the mean must be 1/10.
    assert daily_mean([value] * 24).value == expected


def test_daily_mean_of_mixed_input_types():
    # 6 of each of 0.1, 0.2, 0.3, 0.4 (as float, str, Decimal, Fraction): mean 0.25.
    day = [0.1] * 6 + ["0.2"] * 6 + [Decimal("0.3")] * 6 + [F(2, 5)] * 6
    assert daily_mean(day).value == F(1, 4)


def test_daily_mean_of_float_tenths_is_exact():
    # 0.1 + 0.2 + 0.3 + ... + 2.4 = 0.1 * 300 = 30; 30 / 24 = 5/4 exactly.
    day = [i / 10 for i in range(1, 25)]
    assert daily_mean(day).value == F(5, 4)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(-1, id="negative-int"),
        pytest.param(-0.1, id="negative-float"),
        pytest.param("-3", id="negative-str"),
        pytest.param(Decimal("-0.5"), id="negative-decimal"),
        pytest.param(math.nan, id="float-nan"),
        pytest.param(math.inf, id="float-inf"),
        pytest.param("NaN", id="str-nan"),
        pytest.param(Decimal("NaN"), id="decimal-nan"),
        pytest.param("Infinity", id="str-infinity"),
        pytest.param("abc", id="str-garbage"),
        pytest.param("", id="str-empty"),
        pytest.param(True, id="boolean"),
        pytest.param([1], id="list"),
    ],
)
def test_daily_mean_rejects_bad_values(bad):
    day = [10] * 24
    day[5] = bad
    with pytest.raises(ConcentrationError):
        daily_mean(day)


@pytest.mark.parametrize("length", [0, 1, 23, 25, 48], ids=lambda n: f"{n}-values")
def test_daily_mean_needs_24_values(length):
    with pytest.raises(ValueError, match="24"):
        daily_mean([1] * length)


# --------------------------------------------------------------------------------------------
# moving means: 24 h (>= 20 valid) and 8 h (>= 6 valid)
# --------------------------------------------------------------------------------------------


def test_moving_8h_warms_up_and_becomes_valid_at_6_values():
    # Values 1..8 from the start of the series; hours before it count as missing.
    out = moving_8h([1, 2, 3, 4, 5, 6, 7, 8])
    assert [a.valid for a in out] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert all(a.expected == 8 for a in out)
    assert [a.value for a in out[:5]] == [None] * 5
    assert out[5].value == F(21, 6)   # (1+...+6) / 6
    assert out[6].value == F(28, 7)   # (1+...+7) / 7
    assert out[7].value == F(36, 8)   # (1+...+8) / 8


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        # The window ending at index 9 holds indices 2..9 (values 3..10).
        pytest.param(set(), Average(F(52, 8), 8, 8), id="8-of-8"),
        pytest.param({2, 3}, Average(F(45, 6), 6, 8), id="6-of-8-valid"),
        pytest.param({2, 9}, Average(F(39, 6), 6, 8), id="6-of-8-valid-ends"),
        pytest.param({2, 3, 4}, Average(None, 5, 8), id="5-of-8-invalid"),
    ],
)
def test_moving_8h_validity_edge(missing, expected):
    series = [None if i in missing else i + 1 for i in range(10)]
    assert moving_8h(series)[9] == expected


def test_moving_8h_values_outside_the_window_do_not_count():
    # A spike 8 hours back has left the window ending at index 8 (indices 1..8).
    series = [800] + [10] * 8
    out = moving_8h(series)
    assert out[7].value == F(800 + 7 * 10, 8)
    assert out[8].value == 10


@pytest.mark.parametrize(
    ("missing_count", "expected_value"),
    [
        pytest.param(4, F(5), id="20-of-24-valid"),
        pytest.param(5, None, id="19-of-24-invalid"),
    ],
)
def test_moving_24h_validity_edge(missing_count, expected_value):
    # 30 hours; the window ending at index 29 holds indices 6..29.
    series = [5] * 30
    for i in range(6, 6 + missing_count):
        series[i] = None
    avg = moving_24h(series)[29]
    assert avg.value == expected_value
    assert avg.valid == 24 - missing_count
    assert avg.expected == 24


def test_moving_24h_slides_by_one_hour():
    # Index 0 is 1000, then 24 hours of 1. Window ending at 23 = (1000 + 23) / 24;
    # the window ending at 24 no longer holds index 0 and is exactly 1.
    out = moving_24h([1000] + [1] * 24)
    assert out[23] == Average(F(1023, 24), 24, 24)
    assert out[24] == Average(F(1), 24, 24)
    # 19 hours into the series there are only 19 values: not valid yet; 20 are.
    assert out[18] == Average(None, 19, 24)
    assert out[19] == Average(F(1000 + 19, 20), 20, 24)


def test_moving_means_generic_window():
    # window 3, minimum 2: [3, None, 6, 9]
    out = moving_means([3, None, 6, 9], window=3, minimum=2)
    assert out == [
        Average(None, 1, 3),        # [-, -, 3]
        Average(None, 1, 3),        # [-, 3, None]
        Average(F(9, 2), 2, 3),     # [3, None, 6]
        Average(F(15, 2), 2, 3),    # [None, 6, 9]
    ]


def test_moving_means_of_an_empty_series():
    assert moving_means([], window=8, minimum=6) == []
    assert moving_24h([]) == []
    assert moving_8h([]) == []


def test_moving_means_keep_the_series_length():
    assert len(moving_24h([1] * 50)) == 50
    assert len(moving_8h([1] * 50)) == 50


def test_moving_means_are_exact():
    # 8 values of 0.1 (float) and a 7-value window of [0, 0, 0, 0, 0, 0, 1] -> 1/7.
    assert moving_8h([0.1] * 8)[7].value == F(1, 10)
    assert moving_means([0, 0, 0, 0, 0, 0, 1], window=7, minimum=7)[6].value == F(1, 7)


@pytest.mark.parametrize(
    "bad", [-1, math.nan, "x", True], ids=["negative", "nan", "garbage", "boolean"]
)
def test_moving_means_reject_bad_values(bad):
    with pytest.raises(ConcentrationError):
        moving_24h([1, 2, bad])
    with pytest.raises(ConcentrationError):
        moving_8h([1, 2, bad])


# --------------------------------------------------------------------------------------------
# moving maxima (CNEMC o3_8h_24h, o3_24h)
# --------------------------------------------------------------------------------------------


def test_moving_max_over_averages():
    avgs = [
        Average(F(5), 8, 8),
        Average(None, 3, 8),
        Average(F(7), 8, 8),
        Average(F(3), 6, 8),
    ]
    assert moving_max(avgs, window=2) == [
        Average(F(5), 1, 2),     # [5]
        Average(F(5), 1, 2),     # [5, None]
        Average(F(7), 1, 2),     # [None, 7]
        Average(F(7), 2, 2),     # [7, 3]
    ]


def test_moving_max_with_nothing_valid():
    assert moving_max([Average(None, 0, 8)] * 3, window=24) == [Average(None, 0, 24)] * 3


def test_moving_max_1h_drops_a_peak_after_24_hours():
    # A 300 at index 0, then 10s: the 24 h maximum ending at index 23 still holds it,
    # the one ending at index 24 does not.
    out = moving_max_1h([300] + [10] * 25)
    assert out[0] == Average(F(300), 1, 24)
    assert out[23] == Average(F(300), 24, 24)
    assert out[24] == Average(F(10), 24, 24)


def test_moving_max_1h_counts_valid_hours():
    out = moving_max_1h([None, 50, None, 40])
    assert [a.value for a in out] == [None, 50, 50, 50]
    assert [a.valid for a in out] == [0, 1, 1, 2]


def test_moving_max_1h_is_exact():
    assert moving_max_1h([0.1, 0.3, 0.2])[-1].value == F(3, 10)


def test_o3_8h_24h_is_the_24h_max_of_the_8h_means():
    # 8 h means of [80]*8 + [160]*8: the last window is 160; its 24 h max is 160.
    eight = moving_8h([80] * 8 + [160] * 8)
    assert moving_max(eight)[-1].value == 160
    # at index 7 only one valid 8 h mean exists: 80
    assert moving_max(eight)[7] == Average(F(80), 3, 24)  # 8 h means valid at 5, 6, 7


# --------------------------------------------------------------------------------------------
# O3 daily maximum 8 h
# --------------------------------------------------------------------------------------------


def test_o3_mda8_of_a_constant_day():
    assert o3_daily_max_8h([100] * 24) == Average(F(100), 17, 17)


def test_o3_mda8_first_window_is_labels_01_to_08():
    # Labels 01..08 (indices 0..7) at 80, the rest 0: the first window (ending 08:00) is 80,
    # the second (labels 02..09) is 7 * 80 / 8 = 70.
    assert o3_daily_max_8h([80] * 8 + [0] * 16).value == 80


def test_o3_mda8_last_window_is_labels_17_to_24():
    assert o3_daily_max_8h([0] * 16 + [100] * 8).value == 100


@pytest.mark.parametrize(
    "index", [0, 23], ids=["label-01:00", "label-24:00"]
)
def test_o3_mda8_has_no_partial_window_at_the_day_edges(index):
    # A single 800 at the first (or last) hour lies in exactly one full window: 800 / 8 = 100.
    # A partial window (e.g. 6 hours ending 06:00, or starting 19:00) would give 800 / 6.
    day = [0] * 24
    day[index] = 800
    assert o3_daily_max_8h(day) == Average(F(100), 17, 17)


def test_o3_mda8_peak_in_the_middle():
    # 400 at label 12:00 (index 11) is in the 8 windows ending 12:00..19:00: 400 / 8 = 50.
    day = [0] * 24
    day[11] = 400
    assert o3_daily_max_8h(day).value == 50


def test_o3_mda8_window_with_6_values_averages_over_6():
    # Labels 01, 02 missing, labels 03..08 = 120, the rest 0. The first window has 6 valid
    # hours, all 120: its mean is 120 (not 720 / 8 = 90). Still 17 valid windows.
    day = [None, None] + [120] * 6 + [0] * 16
    assert o3_daily_max_8h(day) == Average(F(120), 17, 17)


def test_o3_mda8_is_exact():
    # Label 01 missing, label 02 = 1, the rest 0: the first window has 7 values -> 1/7;
    # the second has 8 -> 1/8.
    day = [None, 1] + [0] * 22
    assert o3_daily_max_8h(day).value == F(1, 7)


def test_o3_mda8_ignores_the_previous_day():
    # The day before was all 400. A moving 8 h mean at 01:00..07:00 of today holds
    # yesterday's hours; the daily max 8 h of today must not.
    yesterday, today = [400] * 24, [50] * 24
    assert o3_daily_max_8h(today) == Average(F(50), 17, 17)
    crossing = moving_8h(yesterday + today)[24:31]  # windows ending 01:00..07:00 of today
    assert all(a.value > 50 for a in crossing)


# A run of k consecutive missing hours at one end of the day makes k - 2 windows invalid
# (a window needs >= 6 of its 8 hours): k = 5 -> 3 invalid, 14 valid; k = 6 -> 13 valid.
LEADING_5 = set(range(5))
TRAILING_5 = set(range(19, 24))
LEADING_6 = set(range(6))
TRAILING_6 = set(range(18, 24))


@pytest.mark.parametrize(
    "missing",
    [pytest.param(LEADING_5, id="first-5-hours"), pytest.param(TRAILING_5, id="last-5-hours")],
)
def test_o3_mda8_valid_with_14_windows(missing):
    assert o3_daily_max_8h(day_with_missing(100, missing)) == Average(F(100), 14, 17)


@pytest.mark.parametrize(
    "missing",
    [pytest.param(LEADING_6, id="first-6-hours"), pytest.param(TRAILING_6, id="last-6-hours")],
)
@pytest.mark.parametrize(
    ("level", "expected"),
    [
        pytest.param(100, None, id="100-invalid"),
        pytest.param(160, None, id="160-at-limit-invalid"),
        pytest.param(161, F(161), id="161-above-limit-stands"),
    ],
)
def test_o3_mda8_with_13_windows_only_if_above_160(missing, level, expected):
    assert o3_daily_max_8h(day_with_missing(level, missing)) == Average(expected, 13, 17)


def test_o3_mda8_with_few_windows_just_above_the_limit():
    # 6 leading hours missing (13 windows), the rest 160 except one 161 at index 6 (label 07:00).
    # The first valid window (labels 05..12, indices 4..11) has 6 values, 161 and five 160s:
    # (161 + 800) / 6 = 160 + 1/6 > 160, larger than the 7- and 8-value windows holding 161
    # (160 + 1/7, 160 + 1/8). The maximum stands with 13 windows.
    day = day_with_missing(160, LEADING_6)
    day[6] = 161
    assert o3_daily_max_8h(day) == Average(F(961, 6), 13, 17)


def test_o3_mda8_every_fourth_hour_missing_keeps_all_windows():
    # Indices 3, 7, 11, 15, 19, 23 missing: every 8-hour window misses exactly 2 -> all valid.
    day = day_with_missing(90, {3, 7, 11, 15, 19, 23})
    assert o3_daily_max_8h(day) == Average(F(90), 17, 17)


def test_o3_mda8_of_an_empty_day():
    assert o3_daily_max_8h([None] * 24) == Average(None, 0, 17)


def test_o3_mda8_reads_decimal_inputs():
    assert o3_daily_max_8h(["0.1"] * 24).value == F(1, 10)
    assert o3_daily_max_8h([Decimal("100.5")] * 24).value == F(201, 2)


@pytest.mark.parametrize("length", [0, 8, 23, 25], ids=lambda n: f"{n}-values")
def test_o3_mda8_needs_24_values(length):
    with pytest.raises(ValueError, match="24"):
        o3_daily_max_8h([1] * length)


@pytest.mark.parametrize(
    "bad", [-5, math.nan, "NaN", "ozone"], ids=["negative", "nan", "str-nan", "garbage"]
)
def test_o3_mda8_rejects_bad_values(bad):
    day = [10] * 24
    day[12] = bad
    with pytest.raises(ConcentrationError):
        o3_daily_max_8h(day)


def _mda8_reference(day):
    """The §7 definition written out: 17 windows of indices e-8..e-1 for e = 8..24."""
    windows = []
    for end in range(8, 25):
        hours = [v for v in day[end - 8:end] if v is not None]
        if len(hours) >= 6:
            windows.append(F(sum(hours), len(hours)))
    if not windows:
        return None, 0
    best = max(windows)
    return (best if len(windows) >= 14 or best > 160 else None), len(windows)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(0, 400)), min_size=24, max_size=24))
def test_o3_mda8_matches_the_definition(day):
    value, windows = _mda8_reference(day)
    assert o3_daily_max_8h(day) == Average(value, windows, 17)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(0, 1000)), min_size=24, max_size=24))
def test_daily_mean_matches_the_definition(day):
    hours = [v for v in day if v is not None]
    expected = F(sum(hours), len(hours)) if len(hours) >= 20 else None
    assert daily_mean(day) == Average(expected, len(hours), 24)


# --------------------------------------------------------------------------------------------
# daily maximum 1 h (O3 in the 2012 daily report)
# --------------------------------------------------------------------------------------------


def test_daily_max_1h_complete_day():
    day = [10] * 24
    day[14] = 230
    assert daily_max_1h(day) == Average(F(230), 24, 24)


@pytest.mark.parametrize(
    ("missing", "peak", "expected"),
    [
        pytest.param(set(range(4)), 150, F(150), id="20-valid"),
        pytest.param(set(range(5)), 150, None, id="19-valid-below-limit"),
        pytest.param(set(range(5)), 200, None, id="19-valid-at-limit"),
        pytest.param(set(range(5)), 201, F(201), id="19-valid-above-limit-stands"),
    ],
)
def test_daily_max_1h_validity(missing, peak, expected):
    day = day_with_missing(20, missing)
    day[12] = peak
    avg = daily_max_1h(day)
    assert avg.value == expected
    assert avg.valid == 24 - len(missing)
    assert avg.expected == 24


def test_daily_max_1h_empty_and_exact():
    assert daily_max_1h([None] * 24) == Average(None, 0, 24)
    assert daily_max_1h([0.1] * 23 + [0.3]).value == F(3, 10)


def test_daily_max_1h_errors():
    with pytest.raises(ValueError, match="24"):
        daily_max_1h([1] * 23)
    with pytest.raises(ConcentrationError):
        daily_max_1h([1] * 23 + [-1])
