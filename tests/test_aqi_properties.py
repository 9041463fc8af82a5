"""Properties of the AQI engine (hypothesis), checked against the §2 table in aqi_reference.

- an IAQI never falls as a concentration rises, on every column of both schemes;
- an IAQI equals the exact Fraction computation (2026: after GB/T 8170 rounding);
- a published AQI is the largest IAQI, and the level is the §5 level of that AQI;
- any non-negative finite number is accepted; negative, NaN and infinite values are not;
- the columnar engine (batch) gives compute()'s results row for row, every scheme and report.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from aqi_reference import (
    PATHS,
    REPORT_KEYS,
    S2012,
    S2012P,
    S2026,
    Path,
    expected_iaqi,
    level_of,
    top,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aqi_service.aqi import POLLUTANTS, compute, get_scheme
from aqi_service.aqi.batch import compute_batch
from aqi_service.errors import ConcentrationError

# Modest example counts: 54 column cases x 40, 4 reports x 150 per report property.
FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
REPORTS = settings(max_examples=150, deadline=None)


def _upper(path: Path) -> Decimal:
    """Up to the top where the column has a special above-top rule needing other inputs."""
    t = Decimal(top(path.scheme, path.column))
    return t if path.above in ("drop", "fallback_so2_24h") else t * Decimal("1.25")


def _values(path: Path, kind: str):
    upper = _upper(path)
    if kind == "decimal":
        places = 3 if path.column.startswith("co_") else 2
        return st.decimals(min_value=0, max_value=upper, places=places)
    return st.floats(min_value=0, max_value=float(upper))


def _expected(path: Path, value) -> int:
    """The standard's IAQI for ``value`` on ``path`` including the special rules (§2 b, c)."""
    iaqi, _ = expected_iaqi(path.scheme, path.column, value)
    if path.above == "fixed200" and iaqi == 500:
        return 200
    if path.above == "fixed300" and iaqi == 500:
        return 300
    return iaqi


KINDS = ("decimal", "float")
PATH_KIND = [pytest.param(p, k, id=f"{p.id}-{k}") for p in PATHS for k in KINDS]


def _iaqi(path: Path, value) -> int:
    r = compute({**path.context, path.key: value}, get_scheme(path.scheme), path.report)
    return r.indicator_iaqi[path.key]


@pytest.mark.parametrize(("path", "kind"), PATH_KIND)
@FAST
@given(data=st.data())
def test_iaqi_is_non_decreasing(path: Path, kind: str, data):
    a = data.draw(_values(path, kind), label="a")
    b = data.draw(_values(path, kind), label="b")
    lo, hi = sorted((a, b))
    assert _iaqi(path, lo) <= _iaqi(path, hi)


@pytest.mark.parametrize(("path", "kind"), PATH_KIND)
@FAST
@given(data=st.data())
def test_iaqi_equals_exact_fraction(path: Path, kind: str, data):
    value = data.draw(_values(path, kind), label="value")
    assert _iaqi(path, value) == _expected(path, value)


# ---------------------------------------------------------------------------------------
# Whole reports

REPORT_CASES = [pytest.param(s, r, id=f"{s}-{r}") for (s, r) in REPORT_KEYS]


def _report_values(keys):
    """Each key: absent, None, or a concentration across and beyond the whole table."""
    def one(key):
        upper = 160 if key.startswith("co") else 4000
        places = 2 if key.startswith("co") else 1
        return st.one_of(
            st.none(),
            st.decimals(min_value=0, max_value=upper, places=places),
            st.floats(min_value=0, max_value=upper),
        )
    return st.fixed_dictionaries({}, optional={k: one(k) for k in keys})


@pytest.mark.parametrize(("scheme", "report"), REPORT_CASES)
@REPORTS
@given(data=st.data())
def test_published_aqi_is_max_iaqi(scheme, report, data):
    values = data.draw(_report_values(REPORT_KEYS[(scheme, report)]), label="values")
    r = compute(values, get_scheme(scheme), report)
    assert set(r.iaqi) <= set(POLLUTANTS)
    computed = max(r.iaqi.values()) if r.iaqi else None
    assert r.computed_aqi == computed
    if r.aqi is not None:
        assert r.aqi == computed
        primary = tuple(sorted(p for p, v in r.iaqi.items() if v == r.aqi)) if r.aqi > 50 else ()
        assert r.primary_pollutants == primary
    else:
        assert r.primary_pollutants == ()
    # A pollutant's IAQI is the larger of its indicators' (2012: O3 1 h and 8 h).
    if scheme == S2012 and {"o3", "o3_8h"} <= set(r.indicator_iaqi):
        assert r.iaqi["o3"] == max(r.indicator_iaqi["o3"], r.indicator_iaqi["o3_8h"])
    # §6: 2026 hides an AQI of at most 100 when a pollutant is missing; the 2012 text never
    # does; the platform's 2012 hourly publishing had no AQI without any PM value.
    hidden_2026 = scheme == S2026 and r.missing and computed is not None and computed <= 100
    no_pm_2012 = (get_scheme(scheme).id == "HJ633-2012" and report == "hourly"
                  and {"pm10", "pm2_5"} <= set(r.missing))
    if hidden_2026 or no_pm_2012:
        assert r.aqi is None
    elif computed is not None:
        assert r.aqi == computed
    # §5: exceeding pollutants only in 2012 (both readings).
    if scheme in (S2012, S2012P):
        assert r.exceeding_pollutants == tuple(sorted(p for p, v in r.iaqi.items() if v > 100))
    else:
        assert r.exceeding_pollutants is None


@pytest.mark.parametrize(("scheme", "report"), REPORT_CASES)
@REPORTS
@given(data=st.data())
def test_level_matches_aqi(scheme, report, data):
    values = data.draw(_report_values(REPORT_KEYS[(scheme, report)]), label="values")
    r = compute(values, get_scheme(scheme), report)
    if r.aqi is None:
        assert r.level is None
        return
    number, lo, hi, zh, en, _colour, rgb = level_of(r.aqi)
    assert (r.level.level, r.level.category_zh, r.level.category_en, r.level.rgb) == (
        number, zh, en, rgb)
    assert r.level.aqi_min <= r.aqi <= r.level.aqi_max
    assert (lo, hi) == (r.level.aqi_min, r.level.aqi_max)


# ---------------------------------------------------------------------------------------
# Input acceptance

HUGE = [1e308, Decimal("1e400"), 10**100, Fraction(10**60, 7), "1e300", 5e-324,
        Decimal("1e-400")]

non_negative = st.one_of(
    st.floats(min_value=0, allow_nan=False, allow_infinity=False),
    st.decimals(min_value=0, max_value=Decimal("1e50"), allow_nan=False, allow_infinity=False),
    st.integers(min_value=0, max_value=10**30),
    st.fractions(min_value=0, max_value=10**6, max_denominator=10**6),
    st.decimals(min_value=0, max_value=10**6, places=3).map(str),
    st.sampled_from(HUGE),
)


@pytest.mark.parametrize(("scheme", "report"), REPORT_CASES)
@REPORTS
@given(data=st.data())
def test_any_non_negative_finite_input_is_accepted(scheme, report, data):
    keys = REPORT_KEYS[(scheme, report)]
    values = data.draw(st.fixed_dictionaries({k: non_negative for k in keys}), label="values")
    r = compute(values, get_scheme(scheme), report)
    assert r.computed_aqi is not None
    assert 0 <= r.computed_aqi <= 500
    assert all(0 <= v <= 500 for v in r.iaqi.values())
    if r.beyond_index:
        assert r.computed_aqi == 500
    if scheme == S2026:
        assert r.aqi == r.computed_aqi  # nothing missing: always published


bad = st.one_of(
    st.floats(max_value=-1e-300, allow_nan=False),
    st.decimals(max_value=Decimal("-1e-9"), allow_nan=False, allow_infinity=False),
    st.integers(max_value=-1),
    st.fractions(max_value=Fraction(-1, 10**9)),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), Decimal("NaN"),
                     Decimal("sNaN"), Decimal("Infinity"), Decimal("-Infinity"),
                     "nan", "-inf", "Infinity", "-0.5"]),
)


@pytest.mark.parametrize(("scheme", "report"), REPORT_CASES)
@REPORTS
@given(data=st.data())
def test_negative_nan_inf_are_rejected(scheme, report, data):
    keys = REPORT_KEYS[(scheme, report)]
    key = data.draw(st.sampled_from(keys), label="key")
    value = data.draw(bad, label="value")
    values = {k: 1 for k in keys} | {key: value}
    with pytest.raises(ConcentrationError):
        compute(values, get_scheme(scheme), report)


# ---------------------------------------------------------------------------------------
# The columnar engine equals the exact one, row for row

ROWS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _row_values(keys):
    """Each key missing (None) or a float across and beyond the table; ties and whole IAQIs
    are hit often (multiples of 0.5 and of the breakpoints)."""
    def one(key):
        upper = 160.0 if key.startswith("co") else 4000.0
        return st.one_of(
            st.none(),
            st.floats(min_value=0, max_value=upper),
            st.integers(min_value=0, max_value=int(upper) * 20).map(lambda n: n / 20),
            st.integers(min_value=0, max_value=int(upper) * 100).map(lambda n: n / 100),
        )
    return st.fixed_dictionaries({k: one(k) for k in keys})


@pytest.mark.parametrize(("scheme", "report"), REPORT_CASES)
@ROWS
@given(data=st.data())
def test_batch_equals_compute_row_for_row(scheme, report, data):
    keys = REPORT_KEYS[(scheme, report)]
    rows = data.draw(st.lists(_row_values(keys), min_size=1, max_size=40), label="rows")
    columns = {k: [float("nan") if r[k] is None else r[k] for r in rows] for k in keys}
    batch = compute_batch(columns, get_scheme(scheme), report)
    for i, row in enumerate(rows):
        exact = compute({k: v for k, v in row.items() if v is not None},
                        get_scheme(scheme), report)
        assert batch.row(i) == exact.to_dict(), (i, row)
        assert int(batch.computed_aqi[i]) == (
            -1 if exact.computed_aqi is None else exact.computed_aqi)
