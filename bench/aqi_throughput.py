"""Hourly AQI throughput: the project's columnar engine against ``aqi-hub`` 0.3.3.

What it measures
    Real-time (hourly) AQI under HJ 633-2026 for ``--rows`` station-hours (default
    1,000,000) of synthetic but realistic data for a North China plain city: a year of
    hourly values per station with seasonal, diurnal and multi-day (weather) structure and
    log-normal noise, values rounded as instruments report them (µg/m³ to 0.1, CO mg/m³ to
    0.001). The data are held as a Python list of row tuples
    ``(pm2_5, pm10, so2, no2, co, o3)``.

    * project: ``aqi_service.aqi.batch.compute_batch``. The timed region starts from the
      list of row tuples and includes converting it into the six column arrays, so the
      project pays for getting the data into numpy. Its result holds the AQI, every IAQI,
      the level, the primary pollutants and the beyond-index flag of every row.
    * baseline: ``aqi_hub.aqi_cn.cal_aqi_cn(pm25, pm10, so2, no2, co, o3,
      data_type="hourly")`` called once per row; aqi-hub has no batch interface, and a loop
      over rows is how it is used. It returns only the AQI and the IAQIs (no level, no
      primary pollutants), i.e. it does less work than the project.

Why the comparison is fair
    Both sides start from the same Python objects in the same process and run, and both
    keep every row's result. Rows are complete (no missing values), so aqi-hub never takes
    its warning path; warnings are silenced anyway. Each side runs ``--repeat`` times
    (default 3) and its best ``time.perf_counter`` time counts; the garbage collector is
    paused in the timed regions, as ``timeit`` does, which helps the allocation-heavy
    baseline more than the project.

Exactness
    After timing, every row of the project's result is checked against an independent
    reference written here from the HJ 633-2026 table: each concentration is rounded half
    to even (GB/T 8170) from its decimal form, the IAQI is computed on ``Fraction`` with a
    ceiling, SO2 1 h above 800 counts as IAQI 200 and anything else above its column as 500
    (beyond the index); AQI = largest IAQI, the level comes from the AQI ranges and the
    primary pollutants are those whose IAQI equals an AQI above 50. AQI, every IAQI, level,
    primary pollutants and the beyond-index flag are compared for every row; in addition a
    random sample of rows is checked through the public ``BatchResult.row(i)`` against the
    scalar exact engine ``compute(...).to_dict()``. ``exact`` is true only if nothing
    differs. The number of rows where aqi-hub's AQI differs from the reference is printed
    for information (aqi-hub does not round concentrations and takes ``math.ceil`` of a
    float, which lands one too high where the IAQI is exactly whole).

Output
    Human-readable lines first, then as the last line a JSON object
    ``{"project_per_s": …, "baseline_per_s": …, "ratio": …, "exact": true|false}``.

Run from the repository root::

    pip install -e '.[bench]'
    .venv/bin/python bench/aqi_throughput.py [--rows N] [--repeat K] [--seed S]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import time
import warnings
from bisect import bisect_left
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from importlib import metadata
from itertools import chain
from typing import Any, TypeVar

import numpy as np

from aqi_service.aqi import POLLUTANTS, compute, get_scheme
from aqi_service.aqi.batch import BatchResult, compute_batch

try:
    from aqi_hub.aqi_cn import cal_aqi_cn
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit(
        "bench/aqi_throughput.py needs the optional bench dependency aqi-hub 0.3.3: "
        "pip install -e '.[bench]'"
    )

T = TypeVar("T")

SCHEME_ID = "HJ633-2026"
REPORT = "hourly"
FIELDS: tuple[str, ...] = ("pm2_5", "pm10", "so2", "no2", "co", "o3")
"""Order of the values in a row tuple: the positional order of ``cal_aqi_cn``."""
HOURS_PER_YEAR = 8760
DEFAULT_SEED = 20260301
SPOT_CHECK_ROWS = 2000

# --- Independent reference: HJ 633-2026, Table 1, as typed from the standard -------------

IAQI_SCALE: tuple[int, ...] = (0, 50, 100, 150, 200, 300, 400, 500)
BREAKPOINTS: dict[str, tuple[int, ...]] = {
    "so2": (0, 150, 500, 650, 800),  # SO2 1 h average, µg/m³
    "no2": (0, 100, 200, 700, 1200, 2340, 3090, 3840),  # NO2 1 h average, µg/m³
    "co": (0, 5, 10, 35, 60, 90, 120, 150),  # CO 1 h average, mg/m³
    "o3": (0, 160, 200, 300, 400, 800, 1000, 1200),  # O3 1 h average, µg/m³
    "pm10": (0, 50, 120, 250, 350, 420, 500, 600),  # PM10, 24 h column, µg/m³
    "pm2_5": (0, 35, 60, 115, 150, 250, 350, 500),  # PM2.5, 24 h column, µg/m³
}
QUANTUM: dict[str, Decimal] = {p: Decimal("0.1") if p == "co" else Decimal(1) for p in FIELDS}
"""GB/T 8170 rounding before indexing: µg/m³ to integers, CO (mg/m³) to 0.1."""
SO2_ABOVE_TOP_IAQI = 200
BEYOND_INDEX_IAQI = 500
LEVEL_MAXIMA: tuple[int, ...] = (50, 100, 150, 200, 300, 500)
"""Upper AQI bound of levels 1…6 (0–50, 51–100, 101–150, 151–200, 201–300, 301–500)."""
PRIMARY_ABOVE = 50


def reference_iaqi(pollutant: str, value: float) -> tuple[int, bool]:
    """(IAQI, beyond the index) of one hourly concentration, exactly, per HJ 633-2026."""
    rounded = Decimal(repr(value)).quantize(QUANTUM[pollutant], rounding=ROUND_HALF_EVEN)
    conc = Fraction(rounded)
    bps = BREAKPOINTS[pollutant]
    if conc > bps[-1]:
        if pollutant == "so2":
            return SO2_ABOVE_TOP_IAQI, False
        return BEYOND_INDEX_IAQI, True
    if conc <= 0:
        return 0, False
    k = bisect_left(bps, conc)  # bps[k - 1] < conc <= bps[k]
    lo, hi, ilo, ihi = bps[k - 1], bps[k], IAQI_SCALE[k - 1], IAQI_SCALE[k]
    return math.ceil(Fraction(ihi - ilo, hi - lo) * (conc - lo) + ilo), False


def reference_level(aqi: int) -> int:
    """Level 1…6 of an AQI."""
    return bisect_left(LEVEL_MAXIMA, aqi) + 1


def reference_columns(rows: Sequence[tuple[float, ...]]) -> dict[str, list[tuple[int, bool]]]:
    """Reference (IAQI, beyond) of every value, column by column.

    The exact computation runs once per distinct reported value of a pollutant (a few
    thousand), cached in a dict; each row then costs a lookup.
    """
    out: dict[str, list[tuple[int, bool]]] = {}
    for j, pollutant in enumerate(FIELDS):
        column = [row[j] for row in rows]
        cache = {x: reference_iaqi(pollutant, x) for x in set(column)}
        out[pollutant] = list(map(cache.__getitem__, column))
    return out


def check_project(
    rows: Sequence[tuple[float, ...]],
    ref: dict[str, list[tuple[int, bool]]],
    result: BatchResult,
) -> tuple[int, list[int], list[int]]:
    """Compare every row of ``result`` with the reference.

    Returns (rows that differ, the first few of them, the reference AQI of every row).
    """
    order = POLLUTANTS  # BatchResult.primary: bit k set <=> POLLUTANTS[k] is primary
    ref_iaqi = [[v for v, _ in ref[p]] for p in order]
    ref_beyond = [[b for _, b in ref[p]] for p in order]
    got_iaqi = [result.iaqi[p].tolist() if p in result.iaqi else [None] * len(rows)
                for p in order]
    names_of_mask = [
        tuple(p for k, p in enumerate(order) if mask >> k & 1) for mask in range(1 << len(order))
    ]
    got_primary = map(names_of_mask.__getitem__, result.primary.tolist())
    got = zip(zip(*got_iaqi, strict=True), result.aqi.tolist(), result.level.tolist(),
              got_primary, result.beyond_index.tolist(), result.error.tolist(), strict=True)

    differ = 0
    examples: list[int] = []
    ref_aqi: list[int] = []
    for i, (iaqis, beyond, (g_iaqis, g_aqi, g_level, g_primary, g_beyond, g_error)) in enumerate(
        zip(zip(*ref_iaqi, strict=True), zip(*ref_beyond, strict=True), got, strict=True)
    ):
        aqi = max(iaqis)
        ref_aqi.append(aqi)
        primary = (
            tuple(p for p, v in zip(order, iaqis, strict=True) if v == aqi)
            if aqi > PRIMARY_ABOVE else ()
        )
        if (
            g_error
            or g_iaqis != iaqis
            or g_aqi != aqi
            or g_level != reference_level(aqi)
            or g_primary != primary
            or g_beyond != any(beyond)
        ):
            differ += 1
            if len(examples) < 5:
                examples.append(i)
    return differ, examples, ref_aqi


def spot_check(
    rows: Sequence[tuple[float, ...]], result: BatchResult, indices: Sequence[int]
) -> int:
    """Rows among ``indices`` whose ``result.row(i)`` differs from the scalar exact engine."""
    scheme = result.scheme
    differ = 0
    for i in indices:
        expected = compute(dict(zip(FIELDS, rows[i], strict=True)), scheme, REPORT).to_dict()
        if result.row(i) != expected:
            differ += 1
    return differ


# --- Realistic input ----------------------------------------------------------------------


def _daily_ar1(
    rng: np.random.Generator, days: int, phi: float, sigma: np.ndarray
) -> np.ndarray:
    """A day-to-day AR(1) series (weather: stagnant spells and clean-air days)."""
    z = np.empty(days)
    shocks = rng.standard_normal(days) * sigma
    z[0] = shocks[0] / math.sqrt(1 - phi * phi)
    for d in range(1, days):
        z[d] = phi * z[d - 1] + shocks[d]
    return z


def make_rows(n: int, seed: int) -> tuple[list[tuple[float, ...]], int]:
    """``n`` station-hours (a year of hours per station, stations one after another).

    Returns the rows as tuples ``FIELDS`` (Python floats) and the number of stations.
    """
    rng = np.random.default_rng(seed)
    stations = -(-n // HOURS_PER_YEAR)
    i = np.arange(n)
    station = i // HOURS_PER_YEAR
    hour = i % HOURS_PER_YEAR
    hod = hour % 24
    day_pos = hour / 24.0  # fractional day of the year

    # +1 in mid-January (heating, stagnation), -1 in mid-July (photochemistry).
    season = np.cos(2 * np.pi * (day_pos - 15) / 365)
    summer = (1 - season) / 2
    spring = np.exp(-(((day_pos - 100) / 25) ** 2))  # dust season around April

    # City-wide weather, shared by all stations, interpolated to the hour.
    days = HOURS_PER_YEAR // 24 + 1
    day_axis = np.arange(days, dtype=float)
    mid = np.cos(2 * np.pi * (day_axis - 15) / 365)
    stagnation = _daily_ar1(rng, days, 0.75, 0.18 + 0.22 * np.clip(mid, 0, None))
    sunshine = _daily_ar1(rng, days, 0.6, np.full(days, 0.15))
    stag = np.interp(day_pos, day_axis, stagnation)
    sun = np.interp(day_pos, day_axis, sunshine)

    # Station character (urban / traffic / suburban), log-normal.
    off = rng.normal(0.0, 0.15, (stations, 5))[station]

    def noise(sd: float) -> np.ndarray:
        return rng.normal(0.0, sd, n)

    night = np.cos(2 * np.pi * (hod - 23) / 24)  # shallow boundary layer at night
    rush = 0.45 * np.exp(-((hod - 8) ** 2) / 4) + 0.5 * np.exp(-((hod - 19) ** 2) / 6)
    afternoon = np.exp(-((hod - 15) ** 2) / (2 * 2.5**2))

    common = noise(0.2)  # shared hour-to-hour variation of primary pollutants
    pm2_5 = np.exp(np.log(47) + 0.45 * season + stag + 0.12 * night + off[:, 0]
                   + common + noise(0.2))
    pm10 = pm2_5 * np.exp(np.log(1.6) + 0.25 * spring + noise(0.15)).clip(1.05, None)
    so2 = np.exp(np.log(9.5) + 0.55 * season + 0.5 * stag + 0.1 * night + off[:, 1]
                 + noise(0.4))
    no2 = np.exp(np.log(31) + 0.2 * season + 0.4 * stag + rush + off[:, 2]
                 + 0.5 * common + noise(0.25))
    co = np.exp(np.log(0.9) + 0.35 * season + 0.6 * stag + 0.1 * night + 0.2 * rush
                + off[:, 3] + 0.7 * common + noise(0.2))
    o3 = ((12 + 38 * summer) * np.exp(noise(0.35))
          + afternoon * (20 + 130 * summer) * np.exp(sun + off[:, 4] + noise(0.15)))

    # As reported: µg/m³ to one decimal, CO (mg/m³) to three.
    columns = {
        "pm2_5": np.round(pm2_5, 1), "pm10": np.round(pm10, 1), "so2": np.round(so2, 1),
        "no2": np.round(no2, 1), "co": np.round(co, 3), "o3": np.round(o3, 1),
    }
    rows = list(zip(*(columns[f].tolist() for f in FIELDS), strict=True))
    return rows, stations


# --- The two engines, timed ----------------------------------------------------------------


def run_project(rows: Sequence[tuple[float, ...]], scheme: Any) -> BatchResult:
    """Python rows → six column arrays → ``compute_batch`` (all of it timed)."""
    n = len(rows)
    flat = np.fromiter(chain.from_iterable(rows), dtype=np.float64, count=n * len(FIELDS))
    table = flat.reshape(n, len(FIELDS)).T
    return compute_batch({key: table[j] for j, key in enumerate(FIELDS)}, scheme, REPORT)


def run_baseline(rows: Sequence[tuple[float, ...]]) -> list[tuple[Any, dict[str, Any]]]:
    """``cal_aqi_cn`` over every row, keeping each (aqi, iaqi) result."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [cal_aqi_cn(*row, data_type=REPORT) for row in rows]


def best_of(repeat: int, fn: Callable[[], T]) -> tuple[float, T]:
    """Best wall time of ``repeat`` calls of ``fn`` (GC paused while timing) and a result."""
    best = math.inf
    result: T | None = None
    for _ in range(repeat):
        result = None  # free the previous result before the next run
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - start
        finally:
            gc.enable()
        best = min(best, elapsed)
    assert result is not None
    return best, result


# --- Main ---------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text.replace("_", "").replace(",", ""))
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _describe_inputs(rows: Sequence[tuple[float, ...]]) -> list[str]:
    data = np.asarray(rows, dtype=np.float64)
    lines = []
    for j, name in enumerate(FIELDS):
        q = np.percentile(data[:, j], [50, 90, 99, 99.9])
        unit = "mg/m³" if name == "co" else "µg/m³"
        lines.append(
            f"  {name:<6} median {q[0]:8.3f}  p90 {q[1]:8.3f}  p99 {q[2]:8.3f}  "
            f"p99.9 {q[3]:8.3f}  max {data[:, j].max():8.3f} {unit}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=_positive_int, default=1_000_000,
                        help="station-hours to index (default 1,000,000)")
    parser.add_argument("--repeat", type=_positive_int, default=3,
                        help="timed runs per side; the best counts (default 3)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"random seed of the synthetic data (default {DEFAULT_SEED})")
    args = parser.parse_args(argv)

    scheme = get_scheme(SCHEME_ID)
    rows, stations = make_rows(args.rows, args.seed)
    n = len(rows)
    print(f"hourly AQI, {scheme.id}: {n:,} station-hours "
          f"({stations} station(s) x up to {HOURS_PER_YEAR} h, seed {args.seed})")
    print("inputs (as reported: µg/m³ to 0.1, CO mg/m³ to 0.001):")
    for line in _describe_inputs(rows):
        print(line)

    project_s, result = best_of(args.repeat, lambda: run_project(rows, scheme))
    baseline_s, baseline = best_of(args.repeat, lambda: run_baseline(rows))
    project_per_s = n / project_s
    baseline_per_s = n / baseline_s
    ratio = project_per_s / baseline_per_s
    print(f"project  aqi-service compute_batch (rows -> arrays included): "
          f"best of {args.repeat} {project_s:8.3f} s  {project_per_s:12,.0f} rows/s")
    print(f"baseline aqi-hub {metadata.version('aqi-hub')} cal_aqi_cn, one call per row:     "
          f"best of {args.repeat} {baseline_s:8.3f} s  {baseline_per_s:12,.0f} rows/s")
    print(f"ratio    {ratio:.1f}x")

    # Exactness, outside the timed regions.
    start = time.perf_counter()
    ref = reference_columns(rows)
    differ, examples, ref_aqi = check_project(rows, ref, result)
    levels = np.bincount([reference_level(a) for a in ref_aqi], minlength=7)[1:]
    print("reference AQI levels 1-6: " + ", ".join(f"{c:,}" for c in levels)
          + f"; beyond the index: {int(result.beyond_index.sum()):,}")
    print(f"project vs reference (AQI, 6 IAQIs, level, primary, beyond_index): "
          f"{differ:,} of {n:,} rows differ")
    for i in examples:
        print(f"  row {i}: input {dict(zip(FIELDS, rows[i], strict=True))} "
              f"project {result.row(i)}")

    sample_rng = np.random.default_rng(args.seed + 1)
    sample = sample_rng.choice(n, size=min(n, SPOT_CHECK_ROWS), replace=False).tolist()
    sample += np.flatnonzero(result.aqi == result.aqi.max())[:50].tolist()
    sample += np.flatnonzero(result.beyond_index)[:50].tolist()
    spot_differ = spot_check(rows, result, sample)
    print(f"project .row(i) vs scalar compute(...).to_dict(): "
          f"{spot_differ} of {len(sample):,} sampled rows differ")

    hub_differ = sum(got[0] != want for got, want in zip(baseline, ref_aqi, strict=True))
    print(f"aqi-hub vs reference: {hub_differ:,} of {n:,} rows "
          f"({100 * hub_differ / n:.2f}%) have a different AQI (informative)")
    print(f"checks took {time.perf_counter() - start:.1f} s")

    exact = differ == 0 and spot_differ == 0 and not result.error.any()
    print(json.dumps({
        "project_per_s": project_per_s,
        "baseline_per_s": baseline_per_s,
        "ratio": ratio,
        "exact": exact,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
