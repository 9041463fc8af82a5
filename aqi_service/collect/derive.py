"""Recompute everything derived from changed hours: station and city, hourly and daily.

A changed hour h moves the station's record at h and the moving averages of the next 30
hours (24 h means; O3's largest 8 h mean of the last 24 h), the daily record of its
natural day, and the city's records of the same hours and day. Stations are processed in
chunks, so memory stays bounded however many stations and hours a back-fill brings.

Every function takes ``variant``: the reading of a period with two (HJ 633-2012 hourly:
``practice``, the national platform's, or ``text``), from ``[aqi] hourly_2012``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import repeat

import asyncpg
import numpy as np

from aqi_service.aqi.schemes import (
    DEFAULT_VARIANT,
    POLLUTANTS,
    SHANGHAI,
    Scheme,
    scheme_for_day,
    scheme_for_hour,
)
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
from aqi_service.storage import stations as station_store

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
AFFECTS_HOURS = CONTEXT_HOURS - 1
"""A changed hour moves the records of this many following hours."""
PLACES = 6
"""Decimal places of stored averages (micro-units: no double rounding at publication)."""
CHUNK_RECORDS = 20_000
"""About this many hourly records are derived together: bounds memory on long back-fills."""

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
    """Counts of one derivation, per record table."""

    written: dict[str, records.WriteResult] = field(default_factory=dict)

    def add(self, table: str, res: records.WriteResult) -> None:
        """Accumulate one write."""
        total = self.written.setdefault(table, records.WriteResult())
        total.inserted += res.inserted
        total.updated += res.updated
        total.revisions += res.revisions

    @property
    def revisions(self) -> int:
        """Revisions logged across all record tables."""
        return sum(w.revisions for w in self.written.values())


def _hours(first: datetime, last: datetime) -> list[datetime]:
    count = int((last - first) / HOUR) + 1
    return [first + i * HOUR for i in range(count)]


def local_day(hour_end: datetime) -> date:
    """The natural day (Asia/Shanghai) an hour-ending label belongs to (24:00 → that day)."""
    return (hour_end - HOUR).astimezone(SHANGHAI).date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """First and last hour-ending labels of a natural day, in UTC."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=SHANGHAI)
    return (start + HOUR).astimezone(UTC), (start + 24 * HOUR).astimezone(UTC)


@dataclass(slots=True)
class Matrices:
    """Observations of stations × consecutive hours."""

    first: datetime
    values: dict[str, np.ndarray]
    """Pollutant → (stations, hours), NaN unless a valid value."""
    reported: np.ndarray
    """(stations, hours): the station reported anything for the hour."""
    flags: dict[tuple[int, int], dict[str, str]]
    """(station, hour) → pollutant → flag of each invalid value."""


async def read_matrices(conn: asyncpg.Connection, stations: Sequence[str], first: datetime,
                        last: datetime) -> Matrices:
    """Load the observations of ``stations`` in [first, last] into matrices."""
    grouped, flagged = await observations.read_range(conn, stations, first, last)
    s_index = {s: i for i, s in enumerate(stations)}
    shape = (len(stations), int((last - first) / HOUR) + 1)
    values = {p: np.full(shape, np.nan) for p in POLLUTANTS}
    reported = np.zeros(shape, dtype=bool)
    for rec in grouped:
        i = s_index[rec["station_code"]]
        cols = np.asarray(rec["offsets"], dtype=np.int64)
        values[rec["pollutant"]][i, cols] = np.asarray(rec["values"], dtype=np.float64)
        reported[i, cols] = True
    flags: dict[tuple[int, int], dict[str, str]] = {}
    for rec in flagged:
        key = (s_index[rec["station_code"]], int((rec["hour_end"] - first) / HOUR))
        flags.setdefault(key, {})[rec["pollutant"]] = rec["flag"]
    return Matrices(first, values, reported, flags)


def matrices_from_rows(by_station: Mapping[str, Sequence[observations.Column]],
                       stations: Sequence[str], first: datetime, last: datetime) -> Matrices:
    """Matrices straight from the columns just written (for stations with nothing stored
    before). Columns sharing an ``hours`` list share its offsets."""
    width = int((last - first) / HOUR) + 1
    shape = (len(stations), width)
    values = {p: np.full(shape, np.nan) for p in POLLUTANTS}
    reported = np.zeros(shape, dtype=bool)
    flags: dict[tuple[int, int], dict[str, str]] = {}
    offset = {first + k * HOUR: k for k in range(width)}
    placed: dict[int, tuple[list[datetime], np.ndarray, np.ndarray]] = {}
    for i, station in enumerate(stations):
        for c in by_station.get(station) or ():
            n = len(c.hours)
            got = placed.get(id(c.hours))
            if got is None or got[0] is not c.hours:
                cols = np.fromiter(map(offset.get, c.hours, repeat(-1)), dtype=np.int64,
                                   count=n)
                got = placed[id(c.hours)] = (c.hours, cols, cols >= 0)
            _, cols, inside = got
            numbers = np.fromiter(map(float, c.values), dtype=np.float64, count=n)
            reported[i, cols[inside]] = True
            if c.valid is None:
                values[c.pollutant][i, cols[inside]] = numbers[inside]
                continue
            valid = np.fromiter(c.valid, dtype=bool, count=n) & inside
            values[c.pollutant][i, cols[valid]] = numbers[valid]
            assert c.flags is not None
            for k in np.flatnonzero(~valid & inside):
                flags.setdefault((i, int(cols[k])), {})[c.pollutant] = c.flags[k]
    return Matrices(first, values, reported, flags)


def _column(values: np.ndarray, places: int = PLACES) -> list[float | None]:
    rounded = np.round(values, places).astype(object)
    rounded[np.isnan(values)] = None
    return rounded.tolist()


def _ints(values: np.ndarray, missing: int = -1) -> list[int | None]:
    out = values.astype(object)
    out[values == missing] = None
    return out.tolist()


def _result_columns(ix: Indexed) -> list[list[object]]:
    exceeding = ix.exceeding.astype(object)
    exceeding[~ix.has_exceeding] = None
    level = ix.level.astype(object)
    level[ix.level == 0] = None
    return [
        *(_ints(ix.iaqi[p]) for p in POLLUTANTS),
        _ints(ix.aqi), _ints(ix.computed_aqi), level.tolist(), ix.primary.tolist(),
        exceeding.tolist(), ix.missing.tolist(), ix.beyond_index.tolist(),
    ]


def _plans_of(rows_idx: np.ndarray,
              not_monitored: Sequence[frozenset[str]] | None) -> list[frozenset[str]] | None:
    """Per record, the not-monitored pollutants of its entity (None: all measured)."""
    if not_monitored is None or not any(not_monitored):
        return None
    return [not_monitored[i] for i in rows_idx.tolist()]


async def _apply_plans(conn: asyncpg.Connection, stations: Sequence[str],
                       m: Matrices) -> list[frozenset[str]]:
    """The stations' monitoring plans; values of a pollutant a station's plan does not
    measure are dropped from its matrices (no record, and so no city mean, counts them)."""
    plans = await station_store.plans(conn, stations)
    out = [plans[s] for s in stations]
    for i, plan in enumerate(out):
        for pol in plan:
            m.values[pol][i, :] = np.nan
    return out


def _hourly_rows(
    entities: Sequence[str], hours: Sequence[datetime], recs: Records,
    keep: np.ndarray, flags: Mapping[tuple[int, int], Mapping[str, str]] | None,
    extra: list[list[object]] | None = None, variant: str = DEFAULT_VARIANT,
    not_monitored: Sequence[frozenset[str]] | None = None,
) -> list[tuple[object, ...]]:
    """Rows for a record table from (entities × hours) records where ``keep`` is set;
    ``not_monitored[i]``: the pollutants entity ``i``'s plan does not measure."""
    rows_idx, cols_idx = np.nonzero(keep)
    if rows_idx.size == 0:
        return []
    schemes = [scheme_for_hour(h, variant) for h in hours]
    chosen: list[Scheme] = [schemes[j] for j in cols_idx.tolist()]
    fields = {k: v[rows_idx, cols_idx] for k, v in recs.fields.items()}
    ix = index_records(fields, chosen, "hourly", _plans_of(rows_idx, not_monitored))
    columns: list[list[object]] = [
        [entities[i] for i in rows_idx.tolist()], [hours[j] for j in cols_idx.tolist()],
        ix.scheme.tolist(),
        *(_column(fields[k]) for k in HOURLY_FIELDS),
        *(recs.counts[k][rows_idx, cols_idx].tolist() for k in HOURLY_COUNTS),
        [flags.get((i, j)) or None if flags else None
         for i, j in zip(rows_idx.tolist(), cols_idx.tolist(), strict=True)],
        *_result_columns(ix),
    ]
    if extra:
        columns.extend(extra)
    return list(zip(*columns, strict=True))


def _daily_rows(
    entities: Sequence[str], days: Sequence[date], recs: Records, keep: np.ndarray,
    extra: list[list[object]] | None = None, variant: str = DEFAULT_VARIANT,
    not_monitored: Sequence[frozenset[str]] | None = None,
) -> list[tuple[object, ...]]:
    rows_idx, cols_idx = np.nonzero(keep)
    if rows_idx.size == 0:
        return []
    chosen = [scheme_for_day(days[j], variant=variant) for j in cols_idx.tolist()]
    fields = {k: v[rows_idx, cols_idx] for k, v in recs.fields.items()}
    ix = index_records(fields, chosen, "daily", _plans_of(rows_idx, not_monitored))
    columns: list[list[object]] = [
        [entities[i] for i in rows_idx.tolist()], [days[j] for j in cols_idx.tolist()],
        ix.scheme.tolist(),
        *(_column(fields[k]) for k in DAILY_FIELDS),
        *(recs.counts[k][rows_idx, cols_idx].tolist() for k in DAILY_COUNTS),
        *_result_columns(ix),
    ]
    if extra:
        columns.extend(extra)
    return list(zip(*columns, strict=True))


def _day_records(m: Matrices, days: Sequence[date]) -> tuple[Records, np.ndarray] | None:
    """Daily records of ``days`` from the matrices, if they hold those whole days."""
    starts = [int((day_bounds(d)[0] - m.first) / HOUR) for d in days]
    width = m.reported.shape[1]
    if any(s < 0 or s + 24 > width for s in starts):
        return None
    values = {p: np.concatenate([v[:, s:s + 24] for s in starts], axis=1)
              for p, v in m.values.items()}
    has_data = np.stack([m.reported[:, s:s + 24].any(axis=1) for s in starts], axis=1)
    return station_days(values), has_data


async def derive_stations(
    conn: asyncpg.Connection,
    changed: Mapping[str, set[datetime]],
    latest_hour: datetime,
    reason: str,
    run_id: int | None = None,
    now: datetime | None = None,
    result: DeriveResult | None = None,
    new_rows: Mapping[str, Sequence[observations.Column]] | None = None,
    variant: str = DEFAULT_VARIANT,
) -> DeriveResult:
    """Recompute the stations' hourly and daily records affected by ``changed``.

    ``new_rows`` may give, for stations that had nothing stored before this batch, the
    columns just written: their records are then derived without reading them back.
    """
    result = result or DeriveResult()
    now = now or datetime.now(UTC)
    new_rows = new_rows or {}
    fresh = sorted(s for s in changed if s in new_rows)
    stored = sorted(s for s in changed if s not in new_rows)
    span = max(len(hs) for hs in changed.values()) if changed else 1
    per_chunk = max(1, CHUNK_RECORDS // (span + AFFECTS_HOURS))
    for group, in_memory in ((fresh, True), (stored, False)):
        for k in range(0, len(group), per_chunk):
            chunk = group[k:k + per_chunk]
            rows = {s: new_rows[s] for s in chunk} if in_memory else None
            await _derive_stations(conn, chunk, {s: changed[s] for s in chunk}, latest_hour,
                                   now, reason, run_id, result, rows, variant)
    return result


async def derive_city(
    conn: asyncpg.Connection,
    changed: Mapping[str, set[datetime]],
    latest_hour: datetime,
    city_code: str,
    city_members: Sequence[str],
    reason: str,
    run_id: int | None = None,
    now: datetime | None = None,
    result: DeriveResult | None = None, variant: str = DEFAULT_VARIANT,
) -> DeriveResult:
    """Recompute the city's records for the hours and days its stations' changes touch."""
    result = result or DeriveResult()
    now = now or datetime.now(UTC)
    ours = {s: hs for s, hs in changed.items() if s in set(city_members) and hs}
    if not ours:
        return result
    members = list(city_members)
    first_changed = min(min(hs) for hs in ours.values())
    last_changed = max(max(hs) for hs in ours.values())
    last_out = min(last_changed + AFFECTS_HOURS * HOUR, max(latest_hour, last_changed))
    await _derive_city_hourly(conn, members, first_changed, last_out, city_code, now, reason,
                              run_id, result, variant)
    days = _complete_days(ours, latest_hour)
    if days:
        await _derive_city_daily(conn, members, days, city_code, now, reason, run_id, result,
                                 variant)
    return result


def _complete_days(changed: Mapping[str, set[datetime]], latest_hour: datetime) -> list[date]:
    days = sorted({local_day(h) for h in set().union(*changed.values())})
    return [d for d in days if day_bounds(d)[1] <= latest_hour]


async def _derive_stations(
    conn: asyncpg.Connection, stations: Sequence[str], changed: Mapping[str, set[datetime]],
    latest_hour: datetime, now: datetime, reason: str, run_id: int | None,
    result: DeriveResult,
    rows: Mapping[str, Sequence[observations.Column]] | None = None,
    variant: str = DEFAULT_VARIANT,
) -> None:
    first_changed = min(min(h) for h in changed.values())
    last_changed = max(max(h) for h in changed.values())
    last_out = min(last_changed + AFFECTS_HOURS * HOUR, max(latest_hour, last_changed))
    first_in = first_changed - CONTEXT_HOURS * HOUR
    if rows is None:
        m = await read_matrices(conn, stations, first_in, last_out)
    else:
        m = matrices_from_rows(rows, stations, first_in, last_out)
    plans = await _apply_plans(conn, stations, m)
    recs = station_hours(m.values, CONTEXT_HOURS)
    out_hours = _hours(first_in, last_out)[CONTEXT_HOURS:]
    # Records exist for hours a station reported; per station only from its first change on.
    keep = m.reported[:, CONTEXT_HOURS:].copy()
    for i, code in enumerate(stations):
        keep[i, :int((min(changed[code]) - out_hours[0]) / HOUR)] = False
    flags = {(i, j - CONTEXT_HOURS): f for (i, j), f in m.flags.items() if j >= CONTEXT_HOURS}
    rows = _hourly_rows(stations, out_hours, recs, keep, flags, variant=variant,
                        not_monitored=plans)
    result.add("station_hourly", await records.write(
        conn, records.STATION_HOURLY, rows, now, reason, run_id))
    days = _complete_days(changed, latest_hour)
    if not days:
        return
    made = _day_records(m, days)
    if made is None:  # the matrices do not hold those days whole: read them
        await derive_days(conn, stations, days, "", [], now, reason, run_id, result, variant)
        return
    day_recs, has_data = made
    rows = _daily_rows(stations, days, day_recs, has_data, variant=variant,
                       not_monitored=plans)
    result.add("station_daily", await records.write(
        conn, records.STATION_DAILY, rows, now, reason, run_id))


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


async def _derive_city_hourly(
    conn: asyncpg.Connection, members: Sequence[str], first: datetime, last: datetime,
    city_code: str, now: datetime, reason: str, run_id: int | None, result: DeriveResult,
    variant: str = DEFAULT_VARIANT,
) -> None:
    """City hourly records: per field the mean over the member stations' stored values.

    For a city record the ``*_hours`` counts are the numbers of stations behind each mean.
    """
    hours = _hours(first, last)
    rows = await conn.fetch(SELECT_HOURLY_FOR_CITY.format(fields=", ".join(HOURLY_FIELDS)),
                            list(members), first, last)
    recs, present = _area_records(rows, members, hours, HOURLY_FIELDS, "hour_end")
    city = area_mean(recs, np.arange(len(members)))
    counts = {c: city.counts[c.removesuffix("_hours")] for c in HOURLY_COUNTS}
    reporting = _members_reporting(rows, hours, "hour_end")
    rows_out = _hourly_rows(
        [city_code], hours, Records(city.fields, counts), present[None, :], None,
        extra=[[reporting[j] for j in np.nonzero(present)[0]]], variant=variant)
    result.add("city_hourly", await records.write(
        conn, records.CITY_HOURLY, rows_out, now, reason, run_id))


async def _derive_city_daily(
    conn: asyncpg.Connection, members: Sequence[str], days: Sequence[date], city_code: str,
    now: datetime, reason: str, run_id: int | None, result: DeriveResult,
    variant: str = DEFAULT_VARIANT,
) -> None:
    """City daily records from the member stations' daily records."""
    first_day, last_day = min(days), max(days)
    all_days = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    rows = await conn.fetch(SELECT_DAILY_FOR_CITY.format(fields=", ".join(DAILY_FIELDS)),
                            list(members), first_day, last_day)
    recs, present = _area_records(rows, members, all_days, DAILY_FIELDS, "day")
    city = area_mean(recs, np.arange(len(members)))
    counts = {c: city.counts[f] for c, f in zip(DAILY_COUNTS, DAILY_FIELDS, strict=True)}
    wanted = np.array([d in set(days) for d in all_days])
    keep = (present & wanted)[None, :]
    reporting = _members_reporting(rows, all_days, "day")
    rows_out = _daily_rows([city_code], all_days, Records(city.fields, counts), keep,
                           extra=[[reporting[j] for j in np.nonzero(keep[0])[0]]],
                           variant=variant)
    result.add("city_daily", await records.write(
        conn, records.CITY_DAILY, rows_out, now, reason, run_id))


async def derive_days(
    conn: asyncpg.Connection, stations: Sequence[str], days: Sequence[date], city_code: str,
    members: Sequence[str], now: datetime, reason: str, run_id: int | None,
    result: DeriveResult | None = None, variant: str = DEFAULT_VARIANT,
) -> DeriveResult:
    """Daily records of ``stations`` (and the city, if ``members``) for natural ``days``."""
    result = result or DeriveResult()
    if not days:
        return result
    days = sorted(days)
    per_chunk = max(1, CHUNK_RECORDS // (24 * len(days)))
    for k in range(0, len(stations), per_chunk):
        chunk = list(stations[k:k + per_chunk])
        first, _ = day_bounds(days[0])
        _, last = day_bounds(days[-1])
        m = await read_matrices(conn, chunk, first, last)
        plans = await _apply_plans(conn, chunk, m)
        made = _day_records(m, days)
        assert made is not None
        day_recs, has_data = made
        rows = _daily_rows(chunk, days, day_recs, has_data, variant=variant,
                           not_monitored=plans)
        result.add("station_daily", await records.write(
            conn, records.STATION_DAILY, rows, now, reason, run_id))
    if members and set(stations) & set(members):
        await _derive_city_daily(conn, members, days, city_code, now, reason, run_id, result,
                                 variant)
    return result


MARKS_PER_TRANSACTION = 500
"""Station marks derived per transaction when catching up (bounds its size)."""


async def derive_marked_stations(
    conn: asyncpg.Connection, latest_hour: datetime, reason: str, run_id: int | None = None,
    now: datetime | None = None, result: DeriveResult | None = None,
    timeout_s: float | None = None, variant: str = DEFAULT_VARIANT,
) -> DeriveResult:
    """Derive the station records of every 'station' mark left pending (by a run that
    failed or a process that died between its observations and their records).

    Each group of marks is derived and moved on to the city stage in one transaction
    (within ``timeout_s``), so a crash here leaves the marks to the next attempt, never
    records without their mark.
    """
    result = result or DeriveResult()
    while True:
        async with asyncio.timeout(timeout_s), conn.transaction():
            marks = await observations.pending_marks(conn, "station", MARKS_PER_TRANSACTION,
                                                     lock=True)
            if not marks.ids:
                return result
            changed = marks.changed()
            last = max(max(hs) for hs in changed.values())
            await derive_stations(conn, changed, max(latest_hour, last), reason, run_id, now,
                                  result, variant=variant)
            await observations.promote_marks(conn, marks.ids)
            log.info("derived the pending records of %d stations (%d marks)", len(changed),
                     len(marks.ids))


async def derive_marked_city(
    conn: asyncpg.Connection, latest_hour: datetime, city_code: str,
    city_members: Sequence[str], reason: str, run_id: int | None = None,
    now: datetime | None = None, result: DeriveResult | None = None,
    variant: str = DEFAULT_VARIANT,
) -> DeriveResult:
    """The city's records for every 'city' mark, written in the transaction that clears
    the marks (marks of stations outside the city are cleared with nothing to derive)."""
    result = result or DeriveResult()
    async with conn.transaction():
        marks = await observations.pending_marks(conn, "city", lock=True)
        if not marks.ids:
            return result
        changed = marks.changed(only=city_members)
        if changed:
            last = max(max(hs) for hs in changed.values())
            await derive_city(conn, changed, max(latest_hour, last), city_code, city_members,
                              reason, run_id, now, result, variant)
        await observations.clear_marks(conn, marks.ids)
    return result
