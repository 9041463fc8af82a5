"""Published records from hourly matrices: CNEMC-style station hours, days and city values.

Pure and vectorised: a matrix holds one row per station and one column per consecutive
hour (hour-ending labels), NaN where an hour is missing or invalid. Sums are taken on
integers in micro-units (10⁻⁶ µg/m³ or mg/m³), so every mean is an exact quotient; the
float handed to the index (:mod:`aqi_service.aqi.batch`) differs from it by far less than
the distance from any rounding tie or whole IAQI such quotients can have, so indexing is
exact. (Values are read at micro-unit resolution; instruments report three decimals.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aqi_service.aqi.averages import (
    DAILY_MIN_HOURS,
    EIGHT_HOUR_MIN,
    MDA8_FIRST_WINDOW_END,
    MDA8_MIN_WINDOWS,
    O3_1H_LIMIT,
    O3_8H_LIMIT,
)
from aqi_service.aqi.batch import compute_batch
from aqi_service.aqi.schemes import POLLUTANTS, Scheme

Matrix = npt.NDArray[np.float64]
MICRO = 1_000_000

HOURLY_FIELDS: tuple[str, ...] = (
    "so2", "so2_24h", "no2", "no2_24h", "co", "co_24h", "o3", "o3_8h", "o3_24h", "o3_8h_24h",
    "pm10", "pm10_24h", "pm2_5", "pm2_5_24h",
)
"""Concentration fields of an hourly record (CNEMC names)."""
HOURLY_COUNTS: tuple[str, ...] = (
    "so2_24h_hours", "no2_24h_hours", "co_24h_hours", "o3_8h_hours", "o3_24h_hours",
    "o3_8h_24h_hours", "pm10_24h_hours", "pm2_5_24h_hours",
)
"""Valid hours (or valid 8 h windows for o3_8h_24h) behind each averaged field."""
DAILY_FIELDS: tuple[str, ...] = (
    "so2_24h", "no2_24h", "co_24h", "pm10_24h", "pm2_5_24h", "o3_24h", "o3_8h_24h",
)
DAILY_COUNTS: tuple[str, ...] = (
    "so2_24h_hours", "no2_24h_hours", "co_24h_hours", "pm10_24h_hours", "pm2_5_24h_hours",
    "o3_24h_hours", "o3_8h_24h_windows",
)
CONTEXT_HOURS = 24 + 7
"""Hours before the first output hour that its record depends on (O3 max of 8 h means)."""
O3_8H_24H_MIN_WINDOWS = MDA8_MIN_WINDOWS
"""Valid 8 h means among the last 24 for the rolling O3 max 8 h [project choice]."""


def _window_sums(x: Matrix, window: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Sums (micro-units) and counts of valid values over each trailing ``window``."""
    valid = ~np.isnan(x)
    units = np.where(valid, np.rint(np.where(valid, x, 0.0) * MICRO), 0).astype(np.int64)
    zeros = np.zeros((x.shape[0], 1), dtype=np.int64)
    cs = np.concatenate([zeros, np.cumsum(units, axis=1)], axis=1)
    cc = np.concatenate([zeros, np.cumsum(valid, axis=1, dtype=np.int64)], axis=1)
    hours = x.shape[1]
    end = np.arange(1, hours + 1)
    start = np.maximum(end - window, 0)
    return cs[:, end] - cs[:, start], cc[:, end] - cc[:, start]


def moving_mean(x: Matrix, window: int, minimum: int) -> tuple[Matrix, npt.NDArray[np.int64]]:
    """Trailing moving means (NaN where fewer than ``minimum`` valid) and valid counts."""
    sums, counts = _window_sums(x, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts >= minimum, sums / (np.maximum(counts, 1) * float(MICRO)), np.nan)
    return mean, counts


def moving_max(x: Matrix, window: int) -> tuple[Matrix, npt.NDArray[np.int64]]:
    """Trailing maximum of valid values over ``window`` columns, and the valid counts."""
    rows = x.shape[0]
    padded = np.concatenate([np.full((rows, window - 1), np.nan), x], axis=1)
    view = np.lib.stride_tricks.sliding_window_view(padded, window, axis=1)
    counts = (~np.isnan(view)).sum(axis=2)
    best = np.max(np.where(np.isnan(view), -np.inf, view), axis=2)
    best = np.where(counts > 0, best, np.nan)
    return best, counts


@dataclass(slots=True)
class Records:
    """Columns of derived records: ``fields`` and ``counts`` are (rows, periods) arrays."""

    fields: dict[str, Matrix]
    counts: dict[str, npt.NDArray[np.int64]]


def station_hours(values: Mapping[str, Matrix], skip: int) -> Records:
    """Hourly records for columns ``skip…`` of ``values`` (earlier columns are context)."""
    out: dict[str, Matrix] = {}
    counts: dict[str, npt.NDArray[np.int64]] = {}
    for pol in POLLUTANTS:
        x = values[pol]
        out[pol] = x
        if pol != "o3":
            mean, n = moving_mean(x, 24, DAILY_MIN_HOURS)
            out[f"{pol}_24h"], counts[f"{pol}_24h_hours"] = mean, n
    o3 = values["o3"]
    o3_8h, n8 = moving_mean(o3, 8, EIGHT_HOUR_MIN)
    out["o3_8h"], counts["o3_8h_hours"] = o3_8h, n8
    best1, n1 = moving_max(o3, 24)
    ok1 = (n1 >= DAILY_MIN_HOURS) | (best1 > O3_1H_LIMIT)
    out["o3_24h"], counts["o3_24h_hours"] = np.where(ok1, best1, np.nan), n1
    best8, nw = moving_max(o3_8h, 24)
    ok8 = (nw >= O3_8H_24H_MIN_WINDOWS) | (best8 > O3_8H_LIMIT)
    out["o3_8h_24h"], counts["o3_8h_24h_hours"] = np.where(ok8, best8, np.nan), nw
    return Records(
        {k: out[k][:, skip:] for k in HOURLY_FIELDS},
        {k: counts[k][:, skip:] for k in HOURLY_COUNTS},
    )


def station_days(values: Mapping[str, Matrix]) -> Records:
    """Daily records from matrices whose columns are whole natural days (24 labels each).

    Column 0 must be the hour labelled 01:00 local time of the first day.
    """
    rows, hours = values["so2"].shape
    if hours % 24:
        raise ValueError("daily records need whole days of 24 hours")
    days = hours // 24
    out: dict[str, Matrix] = {}
    counts: dict[str, npt.NDArray[np.int64]] = {}
    for pol in ("so2", "no2", "co", "pm10", "pm2_5"):
        x = values[pol].reshape(rows * days, 24)
        mean, n = moving_mean(x, 24, DAILY_MIN_HOURS)
        out[f"{pol}_24h"] = mean[:, -1].reshape(rows, days)
        counts[f"{pol}_24h_hours"] = n[:, -1].reshape(rows, days)
    o3 = values["o3"].reshape(rows * days, 24)
    best1, n1 = moving_max(o3, 24)
    best1, n1 = best1[:, -1], n1[:, -1]
    ok1 = (n1 >= DAILY_MIN_HOURS) | (best1 > O3_1H_LIMIT)
    out["o3_24h"] = np.where(ok1, best1, np.nan).reshape(rows, days)
    counts["o3_24h_hours"] = n1.reshape(rows, days)
    # 8 h windows inside the day only: the first ends at 08:00 (column 7).
    o3_8h, _ = moving_mean(o3, 8, EIGHT_HOUR_MIN)
    windows = o3_8h[:, MDA8_FIRST_WINDOW_END - 1:]
    nw = (~np.isnan(windows)).sum(axis=1)
    best8 = np.max(np.where(np.isnan(windows), -np.inf, windows), axis=1)
    best8 = np.where(nw > 0, best8, np.nan)
    ok8 = (nw >= MDA8_MIN_WINDOWS) | (best8 > O3_8H_LIMIT)
    out["o3_8h_24h"] = np.where(ok8, best8, np.nan).reshape(rows, days)
    counts["o3_8h_24h_windows"] = nw.reshape(rows, days)
    return Records(out, counts)


def area_mean(records: Records, member_rows: npt.NDArray[np.int64]) -> Records:
    """A city's (or county's) records: per field the mean of its stations' valid values."""
    fields: dict[str, Matrix] = {}
    counts: dict[str, npt.NDArray[np.int64]] = {}
    for name, x in records.fields.items():
        part = x[member_rows]
        n = (~np.isnan(part)).sum(axis=0)
        total = np.where(np.isnan(part), 0.0, part).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            fields[name] = np.where(n > 0, total / np.maximum(n, 1), np.nan)[None, :]
        counts[name] = n[None, :]
    return Records(fields, counts)


@dataclass(slots=True)
class Indexed:
    """Index results of flattened records, merged across schemes (one entry per record)."""

    scheme: npt.NDArray[np.object_]
    aqi: npt.NDArray[np.int16]
    computed_aqi: npt.NDArray[np.int16]
    level: npt.NDArray[np.int8]
    iaqi: dict[str, npt.NDArray[np.int16]]
    primary: npt.NDArray[np.uint8]
    exceeding: npt.NDArray[np.uint8]
    has_exceeding: npt.NDArray[np.bool_]
    missing: npt.NDArray[np.uint8]
    beyond_index: npt.NDArray[np.bool_]


def index_records(
    fields: Mapping[str, npt.NDArray[np.float64]], schemes: list[Scheme], report: str,
    not_monitored: Sequence[frozenset[str]] | None = None,
) -> Indexed:
    """Index flattened records, ``schemes[i]`` being the scheme of record ``i`` and
    ``not_monitored[i]`` (if given) the pollutants its station's plan does not measure."""
    size = len(schemes)
    plans = list(not_monitored) if not_monitored is not None else [frozenset()] * size
    out = Indexed(
        scheme=np.array([s.id for s in schemes], dtype=object),
        aqi=np.full(size, -1, np.int16), computed_aqi=np.full(size, -1, np.int16),
        level=np.zeros(size, np.int8),
        iaqi={p: np.full(size, -1, np.int16) for p in POLLUTANTS},
        primary=np.zeros(size, np.uint8), exceeding=np.zeros(size, np.uint8),
        has_exceeding=np.zeros(size, bool), missing=np.zeros(size, np.uint8),
        beyond_index=np.zeros(size, bool),
    )
    groups = {(id(s), plan): (s, plan) for s, plan in zip(schemes, plans, strict=True)}
    for scheme, plan in groups.values():
        mask = np.fromiter((s is scheme and p == plan for s, p in zip(schemes, plans,
                                                                      strict=True)),
                           dtype=bool, count=size)
        res = compute_batch({k: v[mask] for k, v in fields.items()}, scheme, report,
                            not_monitored=plan)
        out.aqi[mask], out.computed_aqi[mask], out.level[mask] = (
            res.aqi, res.computed_aqi, res.level)
        for p, v in res.iaqi.items():
            out.iaqi[p][mask] = v
        out.primary[mask], out.missing[mask] = res.primary, res.missing
        out.beyond_index[mask] = res.beyond_index
        if res.exceeding is not None:
            out.exceeding[mask] = res.exceeding
            out.has_exceeding[mask] = True
    return out
