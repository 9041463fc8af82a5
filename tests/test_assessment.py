"""HJ 663 assessment statistics (aqi_service.aqi.assessment) against aqi-standards.md §7, §8.

Expectations are worked by hand:

* percentile: sort ascending, k = 1 + (n-1)·p/100, s = ⌊k⌋, X(s) + (X(s+1) − X(s))·(k − s)
  (1-based X); cross-checked with numpy.percentile(method="linear"), an independent
  implementation of the same formula;
* period validity: a month needs >= 27 daily values (February >= 25), a year >= 324;
* good-day ratio: days with AQI <= 100 over days with an AQI;
* city values: the mean of the stations' values; the city AQI comes from those means;
* composite index: Σ C_i/S_i with SO2, NO2, PM10, PM2.5 period means over the annual
  class-II limits (GB 3095-2012: 60/40/70/35; GB 3095-2026 transition, periods starting
  on/after 2026-03-01: 60/40/60/30), CO 95th percentile over 4, O3 90th percentile of the
  daily max 8 h over 160.
"""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aqi_service.aqi import compute, get_scheme
from aqi_service.aqi.assessment import (
    RULES_2012,
    RULES_2026,
    CompositeIndex,
    city_concentrations,
    city_value,
    composite_index,
    good_day_ratio,
    mean,
    percentile,
    period_mean,
    period_percentile,
    rules_for,
)
from aqi_service.errors import ConcentrationError

F = Fraction


# --------------------------------------------------------------------------------------------
# percentile (HJ 663)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        # n=5, p=50: k = 1 + 4·0.5 = 3 -> X(3)
        pytest.param([1, 2, 3, 4, 5], 50, F(3), id="median-odd"),
        # n=4, p=50: k = 2.5 -> X(2) + 0.5·(X(3) − X(2)) = 2 + 0.5
        pytest.param([1, 2, 3, 4], 50, F(5, 2), id="median-even"),
        # n=10 (10..100), p=90: k = 1 + 9·0.9 = 9.1 -> 90 + 0.1·10 = 91
        pytest.param([10 * i for i in range(1, 11)], 90, F(91), id="p90-n10"),
        # n=31 (1..31), p=95: k = 1 + 30·0.95 = 29.5 -> 29 + 0.5
        pytest.param(list(range(1, 32)), 95, F(59, 2), id="p95-n31"),
        # n=30 (1..30), p=98: k = 1 + 29·0.98 = 29.42 -> 29 + 0.42
        pytest.param(list(range(1, 31)), 98, F(2942, 100), id="p98-n30"),
        # n=2, p=95: k = 1.95 -> 0 + 0.95·(1 − 0)
        pytest.param([0, 1], 95, F(19, 20), id="p95-n2"),
        # n=3, p=90: k = 1 + 2·0.9 = 2.8 -> 10 + 0.8·(40 − 10) = 34
        pytest.param([40, 10, 0], 90, F(34), id="unsorted-input"),
        pytest.param([7, 3, 9], 0, F(3), id="p0-is-min"),
        pytest.param([7, 3, 9], 100, F(9), id="p100-is-max"),
        pytest.param([42], 95, F(42), id="single-value"),
        pytest.param([42], 0, F(42), id="single-value-p0"),
        # None is a missing day: [None, 1, 2, 3, None, 4] is [1, 2, 3, 4]
        pytest.param([None, 1, 2, 3, None, 4], 50, F(5, 2), id="none-skipped"),
        # repeated values: [5, 5, 5, 9], p=50: k = 2.5 -> 5 + 0.5·0 = 5
        pytest.param([5, 9, 5, 5], 50, F(5), id="ties"),
        # decimals exactly: [0.1, 0.2], p=50 -> 0.15
        pytest.param([0.1, 0.2], 50, F(3, 20), id="float-decimals-exact"),
        pytest.param(["0.1", Decimal("0.2")], 50, F(3, 20), id="str-decimal-exact"),
        # n=4, p=1/3 %: k = 1 + 3·(1/3)/100 = 1.01 -> 0 + 0.01·100 = 1
        pytest.param([0, 100, 200, 300], F(1, 3), F(1), id="fractional-p"),
    ],
)
def test_percentile_hand_cases(values, p, expected):
    got = percentile(values, p)
    assert isinstance(got, Fraction)
    assert got == expected


@pytest.mark.parametrize(
    "values", [[], [None], [None, None]], ids=["empty", "one-none", "all-none"]
)
def test_percentile_of_nothing_is_none(values):
    assert percentile(values, 95) is None


def test_percentile_accepts_an_iterator():
    assert percentile(iter([4, 1, 3, 2]), 50) == F(5, 2)


@pytest.mark.parametrize("bad", [-1, float("nan"), "x"], ids=["negative", "nan", "garbage"])
def test_percentile_rejects_bad_values(bad):
    with pytest.raises(ConcentrationError):
        percentile([1, 2, bad], 90)


@pytest.mark.parametrize("p", [-10, -100], ids=["p-minus-10", "p-minus-100"])
def test_percentile_rejects_negative_p(p):
    try:
        got = percentile([10, 20, 30], p)
    except ValueError:
        return
    raise AssertionError(f"percentile(p={p}) returned {got} instead of raising ValueError")


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.integers(0, 2000), min_size=1, max_size=400),
    p=st.sampled_from([0, 1, 10, 25, 50, 75, 90, 95, 98, 99, 100]),
)
def test_percentile_equals_numpy_linear_on_integers(values, p):
    expected = np.percentile(np.asarray(values, dtype=float), p, method="linear")
    assert float(percentile(values, p)) == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("seed", range(5), ids=lambda s: f"seed-{s}")
@pytest.mark.parametrize("p", [90, 95, 98])
def test_percentile_equals_numpy_linear_on_random_decimals(seed, p):
    rng = random.Random(seed)
    n = rng.randint(1, 366)
    values = [round(rng.uniform(0, 300), 1) for _ in range(n)]
    expected = np.percentile(values, p, method="linear")
    assert float(percentile(values, p)) == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------------------------
# period means and their validity (GB 3095 Table 4)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "period", "days", "valid"),
    [
        pytest.param(date(2025, 1, 1), "month", 27, True, id="january-27-days"),
        pytest.param(date(2025, 1, 1), "month", 26, False, id="january-26-days"),
        pytest.param(date(2026, 4, 1), "month", 27, True, id="april-2026-27-days"),
        pytest.param(date(2026, 4, 1), "month", 26, False, id="april-2026-26-days"),
        pytest.param(date(2025, 2, 1), "month", 25, True, id="february-25-days"),
        pytest.param(date(2025, 2, 1), "month", 24, False, id="february-24-days"),
        pytest.param(date(2028, 2, 1), "month", 25, True, id="leap-february-25-days"),
        pytest.param(date(2028, 2, 1), "month", 24, False, id="leap-february-24-days"),
        pytest.param(date(2025, 1, 1), "year", 324, True, id="year-324-days"),
        pytest.param(date(2025, 1, 1), "year", 323, False, id="year-323-days"),
        pytest.param(date(2027, 1, 1), "year", 324, True, id="year-2027-324-days"),
        pytest.param(date(2027, 1, 1), "year", 323, False, id="year-2027-323-days"),
    ],
)
def test_period_mean_validity(start, period, days, valid):
    required = {"month": 25 if start.month == 2 else 27, "year": 324}[period]
    # days valid values of 10 and 20 alternating, the rest of the period missing
    total = 365 if period == "year" else 31
    daily = [(10 if i % 2 else 20) if i < days else None for i in range(total)]
    stat = period_mean(daily, start, period)
    assert stat.days == days
    assert stat.required == required
    assert stat.is_valid is valid
    # the mean is given either way: (ceil(days/2)·20 + floor(days/2)·10) / days
    assert stat.value == F(20 * ((days + 1) // 2) + 10 * (days // 2), days)


def test_period_mean_is_exact():
    # 27 days: 26 of 0.1 and one of 0.2 -> (2.6 + 0.2) / 27 = 2.8 / 27 = 14/135
    stat = period_mean([0.1] * 26 + [0.2], date(2025, 3, 1))
    assert stat.value == F(14, 135)
    assert stat.is_valid


def test_period_mean_of_nothing():
    stat = period_mean([None] * 31, date(2025, 1, 1))
    assert stat.value is None
    assert stat.days == 0
    assert not stat.is_valid


def test_period_mean_unknown_period():
    with pytest.raises(ValueError, match="period"):
        period_mean([1] * 30, date(2025, 1, 1), "week")


def test_period_percentile_uses_the_pollutant_percentile():
    # 30 days of 1..30: SO2/NO2 98th (k = 29.42 -> 29.42), PM/CO 95th (k = 28.55 -> 28.55),
    # O3 90th (k = 27.1 -> 27.1)
    daily = list(range(1, 31))
    start = date(2025, 4, 1)
    assert period_percentile(daily, "so2", start).value == F(2942, 100)
    assert period_percentile(daily, "no2", start).value == F(2942, 100)
    assert period_percentile(daily, "pm2_5", start).value == F(2855, 100)
    assert period_percentile(daily, "co", start).value == F(2855, 100)
    assert period_percentile(daily, "o3", start).value == F(271, 10)
    stat = period_percentile(daily, "pm10", start)
    assert stat.value == F(2855, 100)
    assert (stat.days, stat.required, stat.is_valid) == (30, 27, True)


def test_mean_helper():
    assert mean([1, None, 2]) == F(3, 2)
    assert mean([]) is None
    assert mean([None]) is None


# --------------------------------------------------------------------------------------------
# good-day ratio
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aqis", "expected"),
    [
        pytest.param([50, 100, 101, 150], F(1, 2), id="100-good-101-not"),
        pytest.param([50, 100, 101, None, 150, None], F(1, 2), id="none-excluded"),
        pytest.param([0, 1, 100], F(1), id="all-good"),
        pytest.param([101, 300, 500], F(0), id="none-good"),
        pytest.param([20] * 2 + [120], F(2, 3), id="two-thirds"),
        pytest.param([], None, id="empty"),
        pytest.param([None, None], None, id="all-none"),
    ],
)
def test_good_day_ratio(aqis, expected):
    assert good_day_ratio(aqis) == expected


def test_good_day_ratio_over_a_year():
    # 365 days, 5 without AQI: 300 good of 360 valid -> 5/6
    aqis = [80] * 300 + [130] * 60 + [None] * 5
    assert good_day_ratio(aqis) == F(5, 6)


# --------------------------------------------------------------------------------------------
# city values: the mean over stations; the city AQI from the means
# --------------------------------------------------------------------------------------------


def test_city_value_is_the_mean_of_station_values():
    assert city_value([10, 20, 40]) == F(70, 3)
    assert city_value([10, None, 20]) == 15
    assert city_value([None, None]) is None
    assert city_value(["0.1", 0.2, Decimal("0.3")]) == F(1, 5)


def test_city_concentrations_per_key():
    stations = [
        {"pm2_5_24h": 70, "no2_24h": 30},
        {"pm2_5_24h": 50, "no2_24h": None},
        {"pm2_5_24h": 60, "no2_24h": 50, "so2_24h": 9},
    ]
    assert city_concentrations(stations) == {
        "pm2_5_24h": F(60),   # (70 + 50 + 60) / 3
        "no2_24h": F(40),     # (30 + 50) / 2
        "so2_24h": F(9),      # only one station measures it
    }


def test_city_concentrations_of_no_stations():
    assert city_concentrations([]) == {}


# Two stations of one city on one day (2026 daily report; µg/m³, CO mg/m³).
# Station A: PM2.5 115 -> IAQI 150 (a breakpoint); the others:
#   SO2 10 -> 10·50/50 = 10; NO2 20 -> 20·50/40 = 25; CO 0.4 -> 0.4·50/2 = 10;
#   O3 8 h 60 -> 60·50/100 = 30; PM10 50 -> 50.  AQI A = 150.
# Station B: the same but PM2.5 35 -> 50.  AQI B = 50.
# City means: PM2.5 (115 + 35) / 2 = 75 -> 100 + 50·(75 − 60)/(115 − 60) = 113.6… -> 114.
STATION_A = {"so2_24h": 10, "no2_24h": 20, "co_24h": "0.4", "o3_8h_24h": 60,
             "pm10_24h": 50, "pm2_5_24h": 115}
STATION_B = {**STATION_A, "pm2_5_24h": 35}


def test_city_aqi_is_computed_from_the_mean_concentrations():
    scheme = get_scheme("HJ633-2026")
    station_aqis = [compute(s, scheme, "daily").aqi for s in (STATION_A, STATION_B)]
    assert station_aqis == [150, 50]

    means = city_concentrations([STATION_A, STATION_B])
    assert means["pm2_5_24h"] == 75
    assert means["co_24h"] == F(2, 5)
    city = compute(means, scheme, "daily")
    assert city.aqi == 114
    assert city.primary_pollutants == ("pm2_5",)
    assert city.aqi != max(station_aqis)
    assert city.level.level == 3


# --------------------------------------------------------------------------------------------
# composite index (综合指数)
# --------------------------------------------------------------------------------------------


def test_rules_follow_the_period_start():
    assert rules_for(date(2026, 2, 1)) is RULES_2012
    assert rules_for(date(2026, 2, 28)) is RULES_2012
    assert rules_for(date(2026, 3, 1)) is RULES_2026
    assert rules_for(date(2027, 1, 1)) is RULES_2026
    assert dict(RULES_2012.annual_limits) == {"so2": 60, "no2": 40, "pm10": 70, "pm2_5": 35}
    assert dict(RULES_2026.annual_limits) == {"so2": 60, "no2": 40, "pm10": 60, "pm2_5": 30}


# A hand-worked 30-day month:
#   SO2 all 12                 -> mean 12
#   NO2 15 days 30, 15 days 50 -> mean 40
#   PM10 all 70                -> mean 70
#   PM2.5 all 42               -> mean 42
#   CO 0.1, 0.2, …, 3.0        -> 95th: k = 1 + 29·0.95 = 28.55 -> 2.8 + 0.55·0.1 = 2.855
#   O3 mda8 10, 20, …, 300     -> 90th: k = 1 + 29·0.9 = 27.1 -> 270 + 0.1·10 = 271
MONTH = {
    "so2": [12] * 30,
    "no2": [30] * 15 + [50] * 15,
    "pm10": [70] * 30,
    "pm2_5": [42] * 30,
    "co": [i / 10 for i in range(30, 0, -1)],   # descending, as floats
    "o3": [10 * i for i in range(1, 31)],
}
# GB 3095-2012: 12/60 + 40/40 + 70/70 + 42/35 + 2.855/4 + 271/160
#             = 0.2 + 1 + 1 + 1.2 + 0.71375 + 1.69375 = 5.8075
INDEX_2012 = F(58075, 10000)
# GB 3095-2026: 12/60 + 40/40 + 70/60 + 42/30 + 2.855/4 + 271/160
#             = 0.2 + 1 + 7/6 + 1.4 + 0.71375 + 1.69375 = 5.0075 + 7/6
INDEX_2026 = F(50075, 10000) + F(7, 6)


@pytest.mark.parametrize(
    ("start", "expected", "pm10_limit", "pm25_limit"),
    [
        pytest.param(date(2025, 4, 1), INDEX_2012, 70, 35, id="2025-04-gb3095-2012"),
        pytest.param(date(2026, 2, 1), INDEX_2012, 70, 35, id="2026-02-gb3095-2012"),
        pytest.param(date(2026, 3, 1), INDEX_2026, 60, 30, id="2026-03-gb3095-2026"),
        pytest.param(date(2026, 4, 1), INDEX_2026, 60, 30, id="2026-04-gb3095-2026"),
    ],
)
def test_composite_index_hand_worked_month(start, expected, pm10_limit, pm25_limit):
    idx = composite_index(MONTH, start)
    assert idx.value == expected
    assert idx.missing == ()
    parts = {p.pollutant: p for p in idx.parts}
    assert set(parts) == {"so2", "no2", "pm10", "pm2_5", "co", "o3"}
    expected_terms = {
        "so2": (F(12), F(60)),
        "no2": (F(40), F(40)),
        "pm10": (F(70), F(pm10_limit)),
        "pm2_5": (F(42), F(pm25_limit)),
        "co": (F(2855, 1000), F(4)),
        "o3": (F(271), F(160)),
    }
    for pol, (value, limit) in expected_terms.items():
        assert (parts[pol].value, parts[pol].limit) == (value, limit), pol
        assert parts[pol].ratio == value / limit
    assert parts["co"].ratio == F(71375, 100000)
    assert parts["o3"].ratio == F(169375, 100000)


def test_composite_index_rounded_half_even():
    idx = composite_index(MONTH, date(2025, 4, 1))
    assert idx.rounded(2) == F(581, 100)      # 5.8075 -> 5.81
    assert idx.rounded(3) == F(5808, 1000)    # 5.8075 is a tie at 3 places -> even 5.808
    assert idx.rounded(1) == F(58, 10)
    idx26 = composite_index(MONTH, date(2026, 4, 1))
    assert idx26.rounded(2) == F(617, 100)    # 6.17416… -> 6.17


@pytest.mark.parametrize(
    ("value", "places", "expected"),
    [
        pytest.param(F("4.125"), 2, F("4.12"), id="4.125-down-to-even"),
        pytest.param(F("4.135"), 2, F("4.14"), id="4.135-up-to-even"),
        pytest.param(F("4.1251"), 2, F("4.13"), id="above-tie-up"),
        pytest.param(F("4.1249"), 2, F("4.12"), id="below-tie-down"),
        pytest.param(F("2.5"), 0, F(2), id="2.5-to-2"),
        pytest.param(F("3.5"), 0, F(4), id="3.5-to-4"),
        pytest.param(F(1, 3), 2, F("0.33"), id="one-third"),
    ],
)
def test_composite_index_rounded(value, places, expected):
    idx = CompositeIndex(value, (), (), "test")
    assert idx.rounded(places) == expected


def test_composite_index_rounded_when_missing():
    assert CompositeIndex(None, (), ("o3",), "test").rounded(2) is None


@pytest.mark.parametrize(
    ("drop", "missing"),
    [
        pytest.param({"o3": None}, {"o3"}, id="o3-key-absent"),
        pytest.param({"co": [None] * 30}, {"co"}, id="co-all-none"),
        pytest.param({"pm2_5": []}, {"pm2_5"}, id="pm2_5-empty"),
        pytest.param({"so2": None, "no2": [None]}, {"so2", "no2"}, id="so2-and-no2"),
    ],
)
def test_composite_index_missing_pollutant(drop, missing):
    daily = dict(MONTH)
    for pol, replacement in drop.items():
        if replacement is None:
            del daily[pol]
        else:
            daily[pol] = replacement
    idx = composite_index(daily, date(2025, 4, 1))
    assert idx.value is None
    assert set(idx.missing) == missing
    assert {p.pollutant for p in idx.parts} == {"so2", "no2", "pm10", "pm2_5", "co", "o3"} - missing
    assert idx.rounded(2) is None


def test_composite_index_of_nothing():
    idx = composite_index({}, date(2026, 3, 1))
    assert idx.value is None
    assert set(idx.missing) == {"so2", "no2", "pm10", "pm2_5", "co", "o3"}


def test_composite_index_ignores_missing_days():
    # None days are not values: the month with some days knocked out of SO2 keeps mean 12.
    daily = {**MONTH, "so2": [12] * 27 + [None] * 3}
    assert composite_index(daily, date(2025, 4, 1)).value == INDEX_2012


def test_composite_index_rejects_negative():
    daily = {**MONTH, "pm10": [70] * 29 + [-1]}
    with pytest.raises(ConcentrationError):
        composite_index(daily, date(2025, 4, 1))


def test_composite_index_with_explicit_rules():
    # The 2026 divisors forced on a 2025 period give the 2026 value.
    assert composite_index(MONTH, date(2025, 4, 1), rules=RULES_2026).value == INDEX_2026
