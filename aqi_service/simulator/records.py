"""The records a logger publishes: model values, rounded, with data faults injected.

Data faults come from two sources: faults added on demand (already matched to the station
and counted by ``FaultRegistry.take_data``) and ``FaultRates``, drawn per station-hour by
hashing (seed, kind, station, hour) so the same hour misbehaves the same way every time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aqi_service.simulator.faults import Fault, FaultRates
from aqi_service.simulator.hashing import FloatArray, hash_keys, string_key, uniform
from aqi_service.simulator.hours import HOUR_S, hour_labels, time_label
from aqi_service.simulator.kinds import FLAG_OF_KIND, FaultKind
from aqi_service.simulator.series import POLLUTANTS, round_reported

REVISION_LAG_S = 3 * HOUR_S
"""A value revised by rate changes this long after it is first published."""
OFF_HOUR_MINUTES = 17
_OUTAGE_MAX_HOURS = 24
_RATE_STREAM = 0xFA17
_RATE_REPLACEMENTS: dict[FaultKind, tuple[float | str, ...]] = {
    FaultKind.OUT_OF_RANGE: (20000, 12000.5),
    FaultKind.NEGATIVE: (-5, -1),
    FaultKind.NON_NUMERIC: ("—", "abc", ""),
    FaultKind.SENTINEL: (9999.9, 9999, -99),
}
"""What rate-drawn value faults write: above every plausible range (not a sentinel), below
zero, text, and the loggers' "no value" codes."""
_RATE_PM_RATIOS = (1.1, 1.5, 2.5)
"""PM2.5 / PM10 of rate-drawn ``pm25_above_pm10`` hours."""


@dataclass(frozen=True)
class RecordContext:
    """What record building needs beyond the values: who, when, and the random rates."""

    seed: int
    station_code: str
    rates: FaultRates
    now: datetime
    publish_delay_s: float


def _per_pollutant() -> dict[str, dict[int, Any]]:
    return {p: {} for p in POLLUTANTS}


@dataclass
class _Table:
    """Hourly columns with sparse changes: dropped and duplicated rows, overrides, flags."""

    hours: NDArray[np.int64]
    values: dict[str, FloatArray]
    drop: NDArray[np.bool_]
    dup: NDArray[np.bool_]
    overrides: dict[str, dict[int, Any]] = field(default_factory=_per_pollutant)
    flags: dict[str, dict[int, str]] = field(default_factory=_per_pollutant)
    times: dict[int, str] = field(default_factory=dict)


class _Draws:
    """Per station-hour random draws for the rate-based faults."""

    def __init__(self, ctx: RecordContext, hours: NDArray[np.int64]) -> None:
        self._ctx = ctx
        self._hours = hours
        self._station = string_key(ctx.station_code)

    def rate(self, kind: FaultKind) -> float:
        """The probability per station-hour of ``kind``."""
        return self._ctx.rates.of(kind)

    def hits(self, kind: FaultKind, hours: NDArray[np.int64] | None = None) -> NDArray[np.bool_]:
        """Which hours the fault ``kind`` strikes at its rate."""
        hours = self._hours if hours is None else hours
        rate = self.rate(kind)
        if rate <= 0.0:
            return np.zeros(hours.shape, dtype=bool)
        return self._uniform(kind, 0, hours) < rate

    def choice(self, kind: FaultKind, salt: int, n: int,
               hours: NDArray[np.int64] | None = None) -> NDArray[np.int64]:
        """A hashed choice in ``range(n)`` per hour (which pollutant, how late, …)."""
        hours = self._hours if hours is None else hours
        return (self._uniform(kind, salt, hours) * n).astype(np.int64)

    def _uniform(self, kind: FaultKind, salt: int, hours: NDArray[np.int64]) -> FloatArray:
        key = string_key(kind.value)
        return uniform(hash_keys(self._ctx.seed, _RATE_STREAM, key, salt, self._station, hours))


def build_rows(
    hours: NDArray[np.int64],
    values: dict[str, FloatArray],
    faults: list[Fault],
    ctx: RecordContext,
) -> list[Row]:
    """The published records for ``hours`` (ascending) with the data faults applied."""
    n = hours.size
    table = _Table(hours, {p: v.copy() for p, v in values.items()},
                   np.zeros(n, dtype=bool), np.zeros(n, dtype=bool))
    draws = _Draws(ctx, hours)
    now_s = ctx.now.timestamp()
    published_s = hours * HOUR_S + ctx.publish_delay_s

    _revise(table, faults, draws, now_s, published_s)
    columns = _round(table.values)
    _lower_pm10(table, columns, faults, draws)
    _drop_and_duplicate(table, faults, draws, now_s, published_s)
    _replace_values(table, faults, draws)
    _flag(table, faults, draws)
    _mangle_times(table, faults, draws, now_s)
    return _assemble(table, columns)


def _revise(table: _Table, faults: list[Fault], draws: _Draws, now_s: float,
            published_s: NDArray[np.float64]) -> None:
    for fault in faults:
        if fault.kind is FaultKind.REVISED_VALUE:
            mask = fault.hour_mask(table.hours)
            for p in fault.params.pollutants:
                table.values[p][mask] += fault.params.delta
    hit = draws.hits(FaultKind.REVISED_VALUE) & (now_s >= published_s + REVISION_LAG_S)
    if hit.any():
        which = draws.choice(FaultKind.REVISED_VALUE, 1, len(POLLUTANTS))
        sign = np.where(draws.choice(FaultKind.REVISED_VALUE, 2, 2) == 1, 1.0, -1.0)
        for i in np.flatnonzero(hit):
            p = POLLUTANTS[which[i]]
            step = 0.02 if p == "co" else 2.0
            value = table.values[p][i]
            table.values[p][i] = value + sign[i] * max(0.2 * value, step)
    for v in table.values.values():
        np.maximum(v, 0.0, out=v)


def _round(values: dict[str, FloatArray]) -> dict[str, list[Any]]:
    rounded = round_reported(values)
    return {p: (v.tolist() if p == "co" else v.astype(np.int64).tolist())
            for p, v in rounded.items()}


def _lower_pm10(table: _Table, columns: dict[str, list[Any]], faults: list[Fault],
                draws: _Draws) -> None:
    """``pm25_above_pm10``: the hour's PM10 reads PM2.5 / ratio (PM2.5 is left as it was)."""
    ratios: dict[int, float] = {}
    for fault in faults:
        if fault.kind is FaultKind.PM25_ABOVE_PM10:
            rows = np.flatnonzero(fault.hour_mask(table.hours)).tolist()
            ratios.update(dict.fromkeys(rows, fault.params.ratio))
    hit = draws.hits(FaultKind.PM25_ABOVE_PM10)
    if hit.any():
        pick = draws.choice(FaultKind.PM25_ABOVE_PM10, 1, len(_RATE_PM_RATIOS))
        for i in np.flatnonzero(hit).tolist():
            ratios[i] = _RATE_PM_RATIOS[pick[i]]
    pm10, pm2_5 = columns["pm10"], columns["pm2_5"]
    for i, ratio in ratios.items():
        if pm2_5[i] > 0:
            pm10[i] = min(pm10[i], int(pm2_5[i] / ratio))


def _drop_and_duplicate(table: _Table, faults: list[Fault], draws: _Draws, now_s: float,
                        published_s: NDArray[np.float64]) -> None:
    hours = table.hours
    for fault in faults:
        if fault.kind is FaultKind.MISSING_HOUR:
            table.drop |= fault.hour_mask(hours)
        elif fault.kind is FaultKind.LATE_HOUR:
            table.drop |= fault.hour_mask(hours) & (now_s < published_s + fault.params.seconds)
        elif fault.kind is FaultKind.SILENT and fault.params.start is not None:
            table.drop |= hours * HOUR_S > fault.params.start.timestamp()
        elif fault.kind is FaultKind.DUPLICATE_HOUR:
            table.dup |= fault.hour_mask(hours)
    table.drop |= draws.hits(FaultKind.MISSING_HOUR)
    late = draws.hits(FaultKind.LATE_HOUR)
    if late.any():
        late_s = (1 + draws.choice(FaultKind.LATE_HOUR, 1, 3)) * HOUR_S
        table.drop |= late & (now_s < published_s + late_s)
    table.drop |= _outages(table.hours, draws)
    table.dup |= draws.hits(FaultKind.DUPLICATE_HOUR)


def _outages(hours: NDArray[np.int64], draws: _Draws) -> NDArray[np.bool_]:
    """Hours inside a rate-drawn outage (``silent``): each lasts 1-24 hours."""
    covered = np.zeros(hours.shape, dtype=bool)
    if hours.size == 0 or draws.rate(FaultKind.SILENT) <= 0.0:
        return covered
    starts = np.arange(hours[0] - _OUTAGE_MAX_HOURS + 1, hours[-1] + 1)
    hit = draws.hits(FaultKind.SILENT, starts)
    if not hit.any():
        return covered
    lengths = 1 + draws.choice(FaultKind.SILENT, 1, _OUTAGE_MAX_HOURS, starts)
    for start, length in zip(starts[hit].tolist(), lengths[hit].tolist(), strict=True):
        covered |= (hours >= start) & (hours < start + length)
    return covered


def _replace_values(table: _Table, faults: list[Fault], draws: _Draws) -> None:
    for fault in faults:
        if fault.kind in _RATE_REPLACEMENTS:
            rows = np.flatnonzero(fault.hour_mask(table.hours)).tolist()
            for p in fault.params.pollutants:
                table.overrides[p].update(dict.fromkeys(rows, fault.params.replacement))
    for kind, choices in _RATE_REPLACEMENTS.items():
        hit = draws.hits(kind)
        if hit.any():
            which = draws.choice(kind, 1, len(POLLUTANTS))
            pick = draws.choice(kind, 2, len(choices))
            for i in np.flatnonzero(hit).tolist():
                table.overrides[POLLUTANTS[which[i]]][i] = choices[pick[i]]


def _flag(table: _Table, faults: list[Fault], draws: _Draws) -> None:
    for fault in faults:
        letter = FLAG_OF_KIND.get(fault.kind)
        if letter is not None:
            rows = np.flatnonzero(fault.hour_mask(table.hours)).tolist()
            for p in fault.params.pollutants:
                table.flags[p].update(dict.fromkeys(rows, letter))
    for kind, letter in FLAG_OF_KIND.items():
        hit = draws.hits(kind)
        if hit.any():
            which = draws.choice(kind, 1, len(POLLUTANTS))
            for i in np.flatnonzero(hit).tolist():
                table.flags[POLLUTANTS[which[i]]][i] = letter


def _mangle_times(table: _Table, faults: list[Fault], draws: _Draws, now_s: float) -> None:
    hours = table.hours
    future_base = (now_s // HOUR_S + 24) * HOUR_S

    def mangle(i: int, mode: str, minutes: int) -> None:
        if mode == "future":
            table.times[i] = time_label(future_base + i * HOUR_S)
        else:
            table.times[i] = time_label(int(hours[i]) * HOUR_S + minutes * 60)

    for fault in faults:
        if fault.kind is FaultKind.BAD_TIMESTAMP:
            for i in np.flatnonzero(fault.hour_mask(hours)).tolist():
                mangle(i, fault.params.mode, OFF_HOUR_MINUTES)
    hit = draws.hits(FaultKind.BAD_TIMESTAMP)
    if hit.any():
        future = draws.choice(FaultKind.BAD_TIMESTAMP, 1, 2)
        minutes = 1 + draws.choice(FaultKind.BAD_TIMESTAMP, 2, 59)
        for i in np.flatnonzero(hit).tolist():
            mangle(i, "future" if future[i] else "off_hour", int(minutes[i]))


RECORD_KEYS = ("time", *(k for p in POLLUTANTS for k in (p, f"{p}_flag")))
"""The fields of a record, in order: time, then each pollutant's value and flag."""

Row = tuple[Any, ...]


def rows_to_records(rows: list[Row]) -> list[dict[str, Any]]:
    """Records as dicts keyed by ``RECORD_KEYS``."""
    return [dict(zip(RECORD_KEYS, row, strict=True)) for row in rows]


def _assemble(table: _Table, columns: dict[str, list[Any]]) -> list[Row]:
    n = table.hours.size
    times = hour_labels(table.hours)
    for i, label in table.times.items():
        times[i] = label
    cols: list[list[Any]] = [times]
    for p in POLLUTANTS:
        values = columns[p]
        for i, replacement in table.overrides[p].items():
            values[i] = replacement
        flags = ["N"] * n
        for i, letter in table.flags[p].items():
            flags[i] = letter
        cols += [values, flags]
    rows = list(zip(*cols, strict=True))
    if not (table.drop.any() or table.dup.any()):
        return rows
    kept: list[Row] = []
    for row, drop, dup in zip(rows, table.drop.tolist(), table.dup.tolist(), strict=True):
        if not drop:
            kept += [row, row] if dup else [row]
    return kept
