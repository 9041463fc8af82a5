"""IAQI at, just below and just above every breakpoint of every column (§2), both schemes.

Expectations come from the §2 table typed into ``aqi_reference`` and the §2 formula on
Fractions with the §4 ceiling; the engine is only ever called through ``compute()``.
Steps: 1 µg/m³ and 0.1 mg/m³ (CO) under HJ 633-2026, whose concentrations are rounded
before indexing; 0.1 µg/m³ and 0.01 mg/m³ (CO) under HJ 633-2012, which indexes the
concentration as measured.
"""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise

import pytest
from aqi_reference import (
    COLUMNS,
    PATHS,
    S2012,
    S2026,
    Path,
    expected_iaqi,
    iaqi_formula,
    indexed_conc,
    top,
)

from aqi_service.aqi import compute, get_scheme


def step(path: Path) -> Decimal:
    co = path.column.startswith("co_")
    if path.scheme == S2026:
        return Decimal("0.1") if co else Decimal(1)
    return Decimal("0.01") if co else Decimal("0.1")


def run(path: Path, value: object):
    """compute() on just this indicator (plus what is needed to reach its column)."""
    return compute({**path.context, path.key: value}, get_scheme(path.scheme), path.report)


def breakpoint_cases():
    for path in PATHS:
        points = COLUMNS[path.scheme][path.column]
        column_top = top(path.scheme, path.column)
        for bp, level in points:
            bp = Decimal(bp)
            offsets = [("at", Decimal(0))]
            if bp > 0:
                offsets.insert(0, ("below", -step(path)))
            if bp < column_top:
                offsets.append(("above", step(path)))
            for where, offset in offsets:
                value = bp + offset
                yield pytest.param(
                    path, value, level if where == "at" else None,
                    id=f"{path.id}-{where}-{bp}[{value}]",
                )


def test_reference_table_shape():
    """The typed table: every column starts at 0 and rises; the PM cells differ by scheme."""
    for scheme in (S2012, S2026):
        for name, points in COLUMNS[scheme].items():
            bps = [bp for bp, _ in points]
            assert bps[0] == 0 and bps == sorted(set(bps)), name
    assert COLUMNS[S2012]["pm10_24h"][2] == (150, 100)
    assert COLUMNS[S2026]["pm10_24h"][2] == (120, 100)
    assert COLUMNS[S2012]["pm2_5_24h"][2] == (75, 100)
    assert COLUMNS[S2026]["pm2_5_24h"][2] == (60, 100)
    assert top(S2026, "so2_1h") == 800 and top(S2026, "o3_8h") == 800


@pytest.mark.parametrize(("path", "value", "table_level"), list(breakpoint_cases()))
def test_iaqi_around_breakpoint(path: Path, value: Decimal, table_level: int | None):
    expected, beyond = expected_iaqi(path.scheme, path.column, value)
    assert not beyond
    if table_level is not None:
        # On a breakpoint the IAQI is the table's row, from either segment (§2: no gaps).
        assert expected == table_level
    result = run(path, float(value))
    assert result.indicator_iaqi[path.key] == expected
    assert result.iaqi[path.pollutant] == expected
    assert result.beyond_index is False


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.id)
def test_segments_join_end_to_end(path: Path):
    """Both segments meeting at a breakpoint give the table's IAQI there (no EPA-style +1)."""
    points = COLUMNS[path.scheme][path.column]
    for (bp_lo, i_lo), (bp_hi, i_hi) in pairwise(points):
        assert run(path, bp_lo).indicator_iaqi[path.key] == i_lo
        assert run(path, bp_hi).indicator_iaqi[path.key] == i_hi


# ---------------------------------------------------------------------------------------
# Above the top of a column: capped at 500 and flagged (§4), unless a special rule applies.

CAPPED = [p for p in PATHS if p.above == "cap"]


def cap_cases():
    for path in CAPPED:
        t = Decimal(top(path.scheme, path.column))
        yield pytest.param(path, t, 500, False, id=f"{path.id}-top")
        yield pytest.param(path, t + step(path), 500, True, id=f"{path.id}-top+step")
        yield pytest.param(path, t * 10, 500, True, id=f"{path.id}-10xtop")
        if path.scheme == S2026:
            # Rounding comes first: a value that rounds down onto the top is within the index.
            co = path.column.startswith("co_")
            below_half, half = (Decimal("0.04"), Decimal("0.05")) if co else (
                Decimal("0.4"), Decimal("0.5"))
            yield pytest.param(path, t + below_half, 500, False, id=f"{path.id}-rounds-to-top")
            # Every top is even in its last place: the exact half rounds down onto it.
            yield pytest.param(path, t + half, 500, False, id=f"{path.id}-half-rounds-to-top")


@pytest.mark.parametrize(("path", "value", "expected", "beyond"), list(cap_cases()))
def test_above_top_is_capped(path: Path, value: Decimal, expected: int, beyond: bool):
    assert expected_iaqi(path.scheme, path.column, value) == (expected, beyond)
    result = run(path, float(value))
    assert result.indicator_iaqi[path.key] == expected
    assert result.iaqi[path.pollutant] == expected
    assert result.beyond_index is beyond
    if path.scheme == S2026:
        assert result.indexed[path.key] == indexed_conc(path.scheme, path.column, value)


# (b) SO2 1 h above 800 ------------------------------------------------------------------

@pytest.mark.parametrize(
    "value", [800, 800.4, 800.5, 801, 850, 2620, 10_000, 1e12],
    ids=lambda v: f"so2={v}",
)
def test_2026_so2_1h_above_800_counts_200(value):
    result = compute({"so2": value}, get_scheme(S2026), "hourly")
    assert result.iaqi["so2"] == 200
    assert result.indicator_iaqi["so2"] == 200
    assert result.beyond_index is False


def test_2026_so2_1h_above_800_ignores_so2_24h():
    """2026 real-time indexes only the 1 h SO2; a 24 h value is not an input of the report."""
    result = compute({"so2": 900, "so2_24h": 2000}, get_scheme(S2026), "hourly")
    assert result.iaqi == {"so2": 200}
    assert "so2_24h" not in result.indicator_iaqi


@pytest.mark.parametrize(
    ("so2_24h", "expected"),
    [
        (300, 124),  # §9 example 4: 100 + 50/325 × 150 = 123.08 → 124
        (50, 50),
        (150, 100),
        (150.1, 101),
        (800, 200),
        (2620, 500),
    ],
    ids=lambda v: str(v),
)
def test_2012_so2_1h_above_800_uses_24h(so2_24h, expected):
    assert expected_iaqi(S2012, "so2_24h", so2_24h) == (expected, False)
    result = compute({"so2": 800.01, "so2_24h": so2_24h}, get_scheme(S2012), "hourly")
    assert result.iaqi["so2"] == expected
    assert result.indicator_iaqi == {"so2_24h": expected}
    assert result.beyond_index is False


def test_2012_so2_1h_at_800_is_indexed_on_the_1h_column():
    result = compute({"so2": 800, "so2_24h": 2000}, get_scheme(S2012), "hourly")
    assert result.indicator_iaqi == {"so2": 200}
    assert result.iaqi["so2"] == 200


def test_2012_so2_1h_below_800_ignores_so2_24h():
    result = compute({"so2": 100, "so2_24h": 2000}, get_scheme(S2012), "hourly")
    assert result.indicator_iaqi == {"so2": 34}  # 50/150 × 100 = 33.3 → 34
    assert result.iaqi["so2"] == 34


def test_2012_so2_1h_above_800_without_24h_is_not_indexed():
    result = compute({"so2": 900}, get_scheme(S2012), "hourly")
    assert "so2" not in result.iaqi
    assert result.indicator_iaqi == {}
    assert result.aqi is None


def test_2012_so2_1h_above_800_and_24h_above_top_is_capped():
    result = compute({"so2": 900, "so2_24h": 2620.1}, get_scheme(S2012), "hourly")
    assert result.iaqi["so2"] == 500
    assert result.beyond_index is True


# (c) O3 8 h above 800 -------------------------------------------------------------------

@pytest.mark.parametrize(
    "value", [800, 800.4, 800.5, 801, 850, 1200, 10_000, 1e12],
    ids=lambda v: f"o3_8h={v}",
)
def test_2026_o3_8h_above_800_counts_300(value):
    result = compute({"o3_8h_24h": value}, get_scheme(S2026), "daily")
    assert result.iaqi["o3"] == 300
    assert result.indicator_iaqi["o3_8h_24h"] == 300
    assert result.beyond_index is False


@pytest.mark.parametrize(
    ("report", "key_8h", "key_1h"),
    [("hourly", "o3_8h", "o3"), ("daily", "o3_8h_24h", "o3_24h")],
    ids=["hourly", "daily"],
)
class TestO3_8hAbove800In2012:
    def test_at_800_is_indexed(self, report, key_8h, key_1h):
        result = compute({key_8h: 800}, get_scheme(S2012), report)
        assert result.indicator_iaqi == {key_8h: 300}

    @pytest.mark.parametrize("value", [800.01, 850, 5000])
    def test_above_800_is_dropped(self, report, key_8h, key_1h, value):
        result = compute({key_8h: value}, get_scheme(S2012), report)
        assert "o3" not in result.iaqi
        assert result.indicator_iaqi == {}
        assert result.beyond_index is False

    @pytest.mark.parametrize(
        ("o3_1h", "expected"),
        [(120, 38), (1000, 400), (1200, 500), (1200.1, 500)],
        ids=["120", "1000", "1200", "1200.1"],
    )
    def test_above_800_o3_comes_from_1h(self, report, key_8h, key_1h, o3_1h, expected):
        # 120: 50/160 × 120 = 37.5 → 38; 1000 → 400 (§9 example 5); 1200.1 above the column.
        result = compute({key_8h: 850, key_1h: o3_1h}, get_scheme(S2012), report)
        assert result.indicator_iaqi == {key_1h: expected}
        assert result.iaqi["o3"] == expected
        assert result.beyond_index is (o3_1h > 1200)

    def test_below_800_o3_is_the_larger_of_1h_and_8h(self, report, key_8h, key_1h):
        # 8 h 161 → 100 + 50/55 → 101; 1 h 120 → 38.
        result = compute({key_8h: 161, key_1h: 120}, get_scheme(S2012), report)
        assert result.indicator_iaqi == {key_8h: 101, key_1h: 38}
        assert result.iaqi["o3"] == 101


def test_2026_hourly_has_no_o3_8h_indicator():
    """O3 8 h is not in the 2026 real-time report: only the 1 h value is indexed."""
    result = compute({"o3": 100, "o3_8h": 790}, get_scheme(S2026), "hourly")
    assert result.indicator_iaqi == {"o3": iaqi_formula(S2026, "o3_1h", 100)}
