"""Recompute everything derived from changed hours: station and city, hourly and daily.

A changed hour h moves the station's record at h and the moving averages of the next 30
hours (24 h means; O3's largest 8 h mean of the last 24 h), the daily record of its
natural day, and the city's records of the same hours and day.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import asyncpg
import numpy as np

from aqi_service.aqi.batch import names
from aqi_service.aqi.schemes import POLLUTANTS, SHANGHAI, Scheme, scheme_for_day, scheme_for_hour
from aqi_service.aqi.series import (
    CONTEXT_HOURS,
    DAILY_COUNTS,
    DAILY_FIELDS,
    HOURLY_COUNTS,
    HOURLY_FIELDS,
    Indexed,
    Records,
    area_mean,
    index_records,
    station_days,
    station_hours,
)
from aqi_service.storage import observations, records

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
AFFECTS_HOURS = CONTEXT_HOURS - 1
"""A changed hour moves the records of this many following hours."""
PLACES = 6
"""Decimal places of stored averages (micro-units: no double-rounding at publication)."""

SELECT_HOURLY_FOR_CITY = """
SELECT station_code, hour_end, {fields}
FROM station_hourly
WHERE station_code = ANY($1::text[]) AND hour_end >= $2 AND hour_end <= $3
"""
SELECT_DAILY_FOR_CITY = """
SELECT station_code, day, {fields}
FROM station_daily
WHERE station_code = ANY($1::text[]) AND day >= $2 AND day <= $3
"""


@dataclass(slots=True)
class DeriveResult:
    """Counts of one derivation."""

    written: dict[str, records.WriteResult] = field(default_factory=dict)

    @property
    def revisions(self) -> int:
        """Revisions logged across all record tables."""
        return sum(w.revisions for w in self.written.values())


def _hours(first: datetime, last: datetime) -> list[datetime]:
    count = int((last - first) / HOUR) + 1
    return [first + i * HOUR for i in range(count)]


def _matrices(
    rows: Sequence[asyncpg.Record], stations: Sequence[str], hours: Sequence[datetime],
) -> tuple[dict[str, np.ndarray], np.ndarray, dict[tuple[int, int], dict[str, str]]]:
    """Value matrices (NaN unless valid), a 'reported' mask and the flags of invalid values."""
    s_index = {s: i for i, s in enumerate(stations)}
    first = hours[0]
    shape = (len(stations), len(hours))
    values = {p: np.full(shape, np.nan) for p in POLLUTANTS}
    reported = np.zeros(shape, dtype=bool)
    flags: dict[tuple[int, int], dict[str, str]] = {}
    for rec in rows:
        i = s_index[rec["station_code"]]
        j = int((rec["hour_end"] - first) / HOUR)
        reported[i, j] = True
        if rec["valid"]:
            values[rec["pollutant"]][i, j] = rec["value"]
        else:
            flags.setdefault((i, j), {})[rec["pollutant"]] = rec["flag"]
    return values, reported, flags


def _column(values: np.ndarray, places: int = PLACES) -> list[float | None]:
    rounded = np.round(values, places)
    out = rounded.astype(object)
    out[np.isnan(values)] = None
    return out.tolist()


def _ints(values: np.ndarray, missing: int = -1) -> list[int | None]:
    out = values.astype(object)
    out[values == missing] = None
    return out.tolist()


def _result_columns(ix: Indexed) -> list[list[object]]:
    primary = [names(int(b)) for b in ix.primary]
    exceeding = [names(int(b)) if has else None
                 for b, has in zip(ix.exceeding, ix.has_exceeding, strict=True)]
    missing = [names(int(b)) for b in ix.missing]
    level = ix.level.astype(object)
    level[ix.level == 0] = None
    return [
        *(_ints(ix.iaqi[p]) for p in POLLUTANTS),
        _ints(ix.aqi), _ints(ix.computed_aqi), level.tolist(), primary, exceeding, missing,
        ix.beyond_index.tolist(),
    ]


def _hourly_rows(
    entities: Sequence[str], hours: Sequence[datetime], recs: Records,
    keep: np.ndarray, flags: Mapping[tuple[int, int], Mapping[str, str]] | None,
    extra: list[list[object]] | None = None,
) -> list[tuple[object, ...]]:
    """Rows for the record table from (entities × hours) records where ``keep`` is set."""
    rows_idx, cols_idx = np.nonzero(keep)
    if rows_idx.size == 0:
        return []
    schemes = _scheme_per_hour(hours)
    chosen = [schemes[j] for j in cols_idx]
    fields = {k: v[rows_idx, cols_idx] for k, v in recs.fields.items()}
    ix = index_records(fields, chosen, "hourly")
    columns: list[list[object]] = [
        [entities[i] for i in rows_idx], [hours[j] for j in cols_idx], ix.scheme.tolist(),
        *(_column(fields[k]) for k in HOURLY_FIELDS),
        *(recs.counts[k][rows_idx, cols_idx].tolist() for k in HOURLY_COUNTS),
        [dict(flags.get((int(i), int(j)), {})) if flags else {}
         for i, j in zip(rows_idx, cols_idx, strict=True)],
        *_result_columns(ix),
    ]
    if extra:
        columns.extend(extra)
    return list(zip(*columns, strict=True))


def _scheme_per_hour(hours: Sequence[datetime]) -> list[Scheme]:
    return [scheme_for_hour(h) for h in hours]


def local_day(hour_end: datetime) -> date:
    """The natural day (Asia/Shanghai) an hour-ending label belongs to (24:00 → that day)."""
    return (hour_end - HOUR).astimezone(SHANGHAI).date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """First and last hour-ending labels of a natural day, in UTC."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=SHANGHAI)
    return (start + HOUR).astimezone(UTC), (start + 24 * HOUR).astimezone(UTC)


async def derive(
    conn: asyncpg.Connection,
    changed: Mapping[str, set[datetime]],
    latest_hour: datetime,
    city_code: str,
    city_members: Sequence[str],
    reason: str,
    run_id: int | None = None,
    now: datetime | None = None,
) -> DeriveResult:
    """Recompute station and city records (hourly and daily) affected by ``changed``."""
    result = DeriveResult()
    if not changed:
        return result
    now = now or datetime.now(UTC)
    stations = sorted(changed)
    first_changed = min(min(h) for h in changed.values())
    last_changed = max(max(h) for h in changed.values())
    last_out = min(last_changed + AFFECTS_HOURS * HOUR, max(latest_hour, last_changed))
    first_in = first_changed - CONTEXT_HOURS * HOUR
    hours = _hours(first_in, last_out)
    rows = await observations.read_range(conn, stations, first_in, last_out)
    values, reported, flags = _matrices(rows, stations, hours)
    recs = station_hours(values, CONTEXT_HOURS)
    out_hours = hours[CONTEXT_HOURS:]
    # Records exist for hours a station reported; per station only from its first change on.
    keep = reported[:, CONTEXT_HOURS:].copy()
    for i, code in enumerate(stations):
        start = int((min(changed[code]) - out_hours[0]) / HOUR)
        keep[i, :start] = False
    shifted_flags = {(i, j - CONTEXT_HOURS): f for (i, j), f in flags.items()
                     if j >= CONTEXT_HOURS}
    hourly_rows = _hourly_rows(stations, out_hours, recs, keep, shifted_flags)
    result.written["station_hourly"] = await records.write(
        conn, records.STATION_HOURLY, hourly_rows, now, reason, run_id)

    members = list(city_members)
    if members and set(stations) & set(members):
        await _derive_city_hourly(conn, members, out_hours[0], out_hours[-1], city_code, now,
                                  reason, run_id, result)

    days = sorted({local_day(h) for hs in changed.values() for h in hs})
    complete = [d for d in days if day_bounds(d)[1] <= latest_hour]
    if complete:
        await derive_days(conn, stations, complete, city_code, members, now, reason, run_id,
                          result)
    return result


async def _derive_city_hourly(
    conn: asyncpg.Connection, members: Sequence[str], first: datetime, last: datetime,
    city_code: str, now: datetime, reason: str, run_id: int | None, result: DeriveResult,
) -> None:
    """City hourly records: per field the mean over the member stations' stored values.

    For a city record the ``*_hours`` counts are the numbers of stations behind each mean.
    """
    hours = _hours(first, last)
    query = SELECT_HOURLY_FOR_CITY.format(
        fields=", ".join(f"{f}::float8 AS {f}" for f in HOURLY_FIELDS))
    rows = await conn.fetch(query, list(members), first, last)
    recs, present = _area_records(rows, members, hours, HOURLY_FIELDS, "hour_end")
    city = area_mean(recs, np.arange(len(members)))
    counts = {c: city.counts[c.removesuffix("_hours")] for c in HOURLY_COUNTS}
    reporting = _members_reporting(rows, hours, "hour_end")
    rows_out = _hourly_rows(
        [city_code], hours, Records(city.fields, counts), present[None, :], None,
        extra=[[reporting[j] for j in np.nonzero(present)[0]]])
    result.written["city_hourly"] = await records.write(
        conn, records.CITY_HOURLY, rows_out, now, reason, run_id)


def _members_reporting(rows: Sequence[asyncpg.Record], periods: Sequence[object],
                       key: str) -> list[int]:
    index = {p: j for j, p in enumerate(periods)}
    counts = [0] * len(periods)
    for rec in rows:
        counts[index[rec[key]]] += 1
    return counts


def _area_records(
    rows: Sequence[asyncpg.Record], members: Sequence[str], periods: Sequence[object],
    fields: Sequence[str], key: str,
) -> tuple[Records, np.ndarray]:
    """(members × periods) matrices of stored station values, and which periods have any."""
    s_index = {s: i for i, s in enumerate(members)}
    p_index = {p: j for j, p in enumerate(periods)}
    shape = (len(members), len(periods))
    mats = {f: np.full(shape, np.nan) for f in fields}
    present = np.zeros(len(periods), dtype=bool)
    for rec in rows:
        i, j = s_index[rec["station_code"]], p_index[rec[key]]
        present[j] = True
        for f in fields:
            if rec[f] is not None:
                mats[f][i, j] = rec[f]
    return Records(mats, {}), present


async def derive_days(
    conn: asyncpg.Connection, stations: Sequence[str], days: Sequence[date], city_code: str,
    members: Sequence[str], now: datetime, reason: str, run_id: int | None,
    result: DeriveResult | None = None,
) -> DeriveResult:
    """Daily records of ``stations`` (and the city) for complete natural ``days``."""
    result = result or DeriveResult()
    if not days:
        return result
    first_day, last_day = min(days), max(days)
    all_days = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    first, _ = day_bounds(first_day)
    _, last = day_bounds(last_day)
    hours = _hours(first, last)
    rows = await observations.read_range(conn, stations, first, last)
    values, reported, _ = _matrices(rows, stations, hours)
    recs = station_days(values)
    has_data = reported.reshape(len(stations), len(all_days), 24).any(axis=2)
    wanted = np.array([d in set(days) for d in all_days])
    keep = has_data & wanted[None, :]
    rows_out = _daily_rows(stations, all_days, recs, keep)
    result.written["station_daily"] = await records.write(
        conn, records.STATION_DAILY, rows_out, now, reason, run_id)
    if members and set(stations) & set(members):
        query = SELECT_DAILY_FOR_CITY.format(
            fields=", ".join(f"{f}::float8 AS {f}" for f in DAILY_FIELDS))
        drows = await conn.fetch(query, list(members), first_day, last_day)
        arecs, present = _area_records(drows, members, all_days, DAILY_FIELDS, "day")
        city = area_mean(arecs, np.arange(len(members)))
        counts = {c: city.counts[f] for c, f in zip(DAILY_COUNTS, DAILY_FIELDS, strict=True)}
        n_members = _members_reporting(drows, all_days, "day")
        keep_city = (present & wanted)[None, :]
        city_rows = _daily_rows([city_code], all_days, Records(city.fields, counts), keep_city,
                                extra=[[n_members[j] for j in np.nonzero(keep_city[0])[0]]])
        result.written["city_daily"] = await records.write(
            conn, records.CITY_DAILY, city_rows, now, reason, run_id)
    return result


def _daily_rows(
    entities: Sequence[str], days: Sequence[date], recs: Records, keep: np.ndarray,
    extra: list[list[object]] | None = None,
) -> list[tuple[object, ...]]:
    rows_idx, cols_idx = np.nonzero(keep)
    if rows_idx.size == 0:
        return []
    chosen = [scheme_for_day(days[j]) for j in cols_idx]
    fields = {k: v[rows_idx, cols_idx] for k, v in recs.fields.items()}
    ix = index_records(fields, chosen, "daily")
    columns: list[list[object]] = [
        [entities[i] for i in rows_idx], [days[j] for j in cols_idx], ix.scheme.tolist(),
        *(_column(fields[k]) for k in DAILY_FIELDS),
        *(recs.counts[k][rows_idx, cols_idx].tolist() for k in DAILY_COUNTS),
        *_result_columns(ix),
    ]
    if extra:
        columns.extend(extra)
    return list(zip(*columns, strict=True))
