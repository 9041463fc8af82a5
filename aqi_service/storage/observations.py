"""Hourly observations: idempotent batch ingest and reads for the derived records."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import repeat

import asyncpg

ObservationRow = tuple[str, str, datetime, int | str, str, bool, str, datetime]
"""(station_code, pollutant, hour_end UTC, value as an int or its exact decimal text, flag,
valid, source, received_at): one observation as a row (see ``Column`` for the form the
ingest takes)."""

COLUMNS = ("station_code", "pollutant", "hour_end", "value", "flag", "valid", "source")
"""Columns written by COPY; received_at and updated_at are the transaction's time."""


@dataclass(slots=True)
class Column:
    """One station's values of one pollutant, aligned with their hours (columnar rows).

    Values are ints or their exact decimal text; codes, flags and sources are validated
    names (no CSV quoting needed). Columns of one response share their ``hours`` list.
    """

    pollutant: str
    hours: list[datetime]
    values: list[int | str]
    source: str
    flags: list[str] | None = None
    """Each value's flag; None: every value is N (normal)."""
    valid: list[bool] | None = None
    """Whether each value is valid; None: every value is."""

    def take(self, keep: Sequence[int]) -> Column:
        """The values at the positions ``keep``."""
        return Column(self.pollutant, [self.hours[i] for i in keep],
                      [self.values[i] for i in keep], self.source,
                      None if self.flags is None else [self.flags[i] for i in keep],
                      None if self.valid is None else [self.valid[i] for i in keep])

    def rows(self, station: str, received: datetime) -> list[ObservationRow]:
        """The column as rows."""
        n = len(self.values)
        return list(zip(repeat(station, n), repeat(self.pollutant), self.hours, self.values,
                        self.flags or repeat("N"), self.valid or repeat(True),
                        repeat(self.source), repeat(received), strict=False))


def hours_of(columns: Sequence[Column]) -> set[datetime]:
    """Every hour the columns hold a value for."""
    return set().union(*(c.hours for c in columns))


def split_at(columns: Sequence[Column], limit: datetime
             ) -> tuple[list[Column], list[Column]]:
    """(values after ``limit``, values at or before it), column by column."""
    after: list[Column] = []
    upto: list[Column] = []
    for c in columns:
        later = [i for i, h in enumerate(c.hours) if h > limit]
        if len(later) == len(c.hours):
            after.append(c)
            continue
        if not later:
            upto.append(c)
            continue
        after.append(c.take(later))
        later_set = set(later)
        upto.append(c.take([i for i in range(len(c.hours)) if i not in later_set]))
    return after, upto


ENSURE_PARTITIONS = "SELECT ensure_partitions($1::timestamptz, $2::timestamptz)"

CREATE_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS observations_stage (
    station_code text COLLATE "C", pollutant text COLLATE "C", hour_end timestamptz,
    value numeric, flag text, valid boolean, source text
) ON COMMIT DELETE ROWS
"""

# One set-based upsert from the stage: new keys are inserted, changed values updated (with
# the revision counter raised), identical values left untouched; every change to a stored
# value is written to the revision log with its old and new value.
UPSERT_FROM_STAGE = """
WITH s AS (
    SELECT * FROM observations_stage
), old AS (
    SELECT o.station_code, o.pollutant, o.hour_end, o.value, o.flag
    FROM observations o JOIN s USING (station_code, pollutant, hour_end)
), up AS (
    INSERT INTO observations AS o
        (station_code, pollutant, hour_end, value, flag, valid, source)
    SELECT station_code, pollutant, hour_end, value, flag, valid, source
    FROM s
    ON CONFLICT (station_code, pollutant, hour_end) DO UPDATE SET
        value = EXCLUDED.value, flag = EXCLUDED.flag, valid = EXCLUDED.valid,
        source = EXCLUDED.source, received_at = now(), updated_at = now(),
        revision = o.revision + 1
    WHERE (o.value, o.flag) IS DISTINCT FROM (EXCLUDED.value, EXCLUDED.flag)
    RETURNING o.station_code, o.pollutant, o.hour_end, o.value, o.flag, o.revision
), rev AS (
    INSERT INTO revisions (kind, subject, field, period_end, old_value, new_value, reason, run_id)
    SELECT 'observation', up.station_code, up.pollutant, up.hour_end,
           coalesce(old.value::text, '') || ' ' || old.flag,
           coalesce(up.value::text, '') || ' ' || up.flag, $1, $2
    FROM up JOIN old USING (station_code, pollutant, hour_end)
    RETURNING 1
)
SELECT station_code, hour_end, revision > 0 AS revised FROM up
"""

# Kept in the same transaction as the rows, so "no newest hour" means "nothing stored".
ADVANCE_NEWEST = """
INSERT INTO station_cursors AS c (station_code, newest_hour)
SELECT * FROM unnest($1::text[], $2::timestamptz[])
ON CONFLICT (station_code) DO UPDATE SET
    newest_hour = greatest(c.newest_hour, EXCLUDED.newest_hour)
"""

# The durable "to derive" mark: one row per station of the batch, in its transaction.
MARK_PENDING = """
INSERT INTO derive_pending (station_code, first_hour, last_hour, run_id)
SELECT code, first, last, $4 FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[])
    AS u(code, first, last)
RETURNING id
"""

SELECT_CURSORS = """
SELECT s.code, c.answered_through, c.newest_hour, c.backfill_from
FROM stations s LEFT JOIN station_cursors c ON c.station_code = s.code
WHERE s.active
"""

# One row per station and pollutant with its hours as offsets from $2 and its values (NaN
# where invalid): far fewer objects to decode than a row per observation.
SELECT_RANGE = """
SELECT station_code, pollutant,
       array_agg((extract(epoch FROM hour_end - $2::timestamptz) / 3600)::int) AS offsets,
       array_agg(CASE WHEN valid THEN value::float8 ELSE 'NaN'::float8 END) AS values
FROM observations
WHERE station_code = ANY($1::text[]) AND hour_end >= $2 AND hour_end <= $3
GROUP BY station_code, pollutant
"""
SELECT_FLAGGED = """
SELECT station_code, pollutant, hour_end, flag
FROM observations
WHERE station_code = ANY($1::text[]) AND hour_end >= $2 AND hour_end <= $3 AND NOT valid
"""


@dataclass(slots=True)
class IngestResult:
    """What an ingest changed: (station, hour) keys touched, counts."""

    changed: dict[str, set[datetime]] = field(default_factory=dict)
    inserted: int = 0
    updated: int = 0
    marks: list[int] = field(default_factory=list)
    """Ids of the "to derive" marks written with the rows (see ``derive_pending``)."""

    def add(self, station: str, hour: datetime) -> None:
        """Record a changed station hour."""
        self.changed.setdefault(station, set()).add(hour)


async def _advance_newest(conn: asyncpg.Connection, hours: Mapping[str, set[datetime]]) -> None:
    codes = [s for s, hs in hours.items() if hs]
    await conn.execute(ADVANCE_NEWEST, codes, [max(hours[s]) for s in codes])


async def ensure_partitions(conn: asyncpg.Connection, first: datetime, last: datetime) -> None:
    """Monthly partitions covering [first, last] exist."""
    await conn.execute(ENSURE_PARTITIONS, first, last)


def _csv(groups: Iterable[tuple[str, Sequence[Column]]]) -> memoryview:
    """Stations' columns as CSV for COPY: the server parses the values, this process only
    joins text. Columns sharing an ``hours`` list share a line template in which only the
    station, pollutant and source (once per column) and the values are filled in. One
    buffer, not a file: asyncpg would read a file through its thread pool (and would take
    ``bytes`` for a path)."""
    texts: dict[datetime, str] = {}
    shared: dict[int, tuple[list[datetime], list[str], str]] = {}
    parts: list[str] = []
    add = parts.append
    for station, columns in groups:
        for c in columns:
            kept = shared.get(id(c.hours))
            if kept is None or kept[0] is not c.hours:
                hs = []
                for hour in c.hours:
                    h = texts.get(hour)
                    if h is None:
                        h = texts[hour] = f",{hour.isoformat()},"
                    hs.append(h)
                # \x00 and \x01 stand for a line's head and tail (names never hold them).
                kept = shared[id(c.hours)] = (c.hours, hs, "".join(f"\x00{h}%s\x01" for h in hs))
            head = f"{station},{c.pollutant}"
            if c.flags is None and c.valid is None:
                add(kept[2].replace("\x00", head).replace("\x01", f",N,t,{c.source}\n")
                    % tuple(c.values))
                continue
            for h, value, flag, valid in zip(kept[1], c.values, c.flags or repeat("N"),
                                             c.valid or repeat(True), strict=False):
                add(f"{head}{h}{value},{flag},{'t' if valid else 'f'},{c.source}\n")
    return memoryview("".join(parts).encode())


async def ingest(
    conn: asyncpg.Connection,
    by_station: Mapping[str, Sequence[Column]],
    newest: Mapping[str, datetime | None],
    run_id: int | None = None,
    reason: str = "station revised the value",
    hours: Mapping[str, set[datetime]] | None = None,
) -> IngestResult:
    """Store observations (columns, grouped by station) idempotently; return what changed.

    ``hours`` may give each station's set of hours in ``by_station`` (saves a pass).

    Values newer than the station's newest stored hour (``newest``) cannot conflict and are
    copied straight into the table; the rest go through the stage and the set-based
    upsert. If a concurrent writer got there first, everything takes the upsert path.
    """
    result = IngestResult()
    fresh: dict[str, Sequence[Column]] = {}
    known: dict[str, Sequence[Column]] = {}
    given = hours or {}
    hours = {}
    for station, columns in by_station.items():
        station_hours = given.get(station) or hours_of(columns)
        if not station_hours:
            continue
        hours[station] = station_hours
        limit = newest.get(station)
        if limit is None or min(station_hours) > limit:
            fresh[station] = columns
        else:
            new, old = split_at(columns, limit)
            if new:
                fresh[station] = new
            known[station] = old
    if not hours:
        return result
    await ensure_partitions(conn, min(min(h) for h in hours.values()),
                            max(max(h) for h in hours.values()))
    # One transaction: the rows, the newest hours and the "to derive" marks are durable
    # together or not at all (a caller's transaction makes it a savepoint of the caller's).
    async with conn.transaction():
        if fresh:
            try:
                async with conn.transaction():
                    await conn.copy_to_table("observations", source=_csv(fresh.items()),
                                             columns=COLUMNS, format="csv")
            except asyncpg.UniqueViolationError:
                for station, columns in fresh.items():
                    known[station] = [*known.get(station, ()), *columns]
                fresh = {}
            else:
                for station, columns in fresh.items():
                    stored = (hours[station] if columns is by_station[station]
                              else hours_of(columns))
                    result.changed.setdefault(station, set()).update(stored)
                    result.inserted += sum(len(c.values) for c in columns)
        if known:
            await conn.execute(CREATE_STAGE)
            await conn.copy_to_table("observations_stage", source=_csv(known.items()),
                                     columns=COLUMNS, format="csv")
            changed = await conn.fetch(UPSERT_FROM_STAGE, reason, run_id)
            for rec in changed:
                result.add(rec["station_code"], rec["hour_end"])
                if rec["revised"]:
                    result.updated += 1
                else:
                    result.inserted += 1
        await _advance_newest(conn, hours)
        result.marks = await mark_pending(conn, result.changed, run_id)
    return result


async def mark_pending(conn: asyncpg.Connection, changed: Mapping[str, set[datetime]],
                       run_id: int | None) -> list[int]:
    """Mark the stations' changed hours as due for derivation; return the marks' ids."""
    codes = [s for s, hs in changed.items() if hs]
    if not codes:
        return []
    rows = await conn.fetch(MARK_PENDING, codes, [min(changed[s]) for s in codes],
                            [max(changed[s]) for s in codes], run_id)
    return [r["id"] for r in rows]


Cursor = tuple[datetime | None, datetime | None, datetime | None]
"""(answered_through, newest stored hour, initial back-fill still due from)."""


async def cursors(conn: asyncpg.Connection) -> dict[str, Cursor]:
    """Per active station: (answered_through, newest stored hour, back-fill due from)."""
    return {r["code"]: (r["answered_through"], r["newest_hour"], r["backfill_from"])
            for r in await conn.fetch(SELECT_CURSORS)}


async def read_range(
    conn: asyncpg.Connection, stations: Sequence[str], first: datetime, last: datetime,
) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
    """Observations of ``stations`` in [first, last]: per (station, pollutant) the hour
    offsets from ``first`` and values (NaN if invalid); and the flags of invalid values."""
    grouped = await conn.fetch(SELECT_RANGE, list(stations), first, last)
    flagged = await conn.fetch(SELECT_FLAGGED, list(stations), first, last)
    return grouped, flagged


SELECT_MARKS = """
SELECT id, station_code, first_hour, last_hour FROM derive_pending
WHERE stage = $1 ORDER BY id LIMIT $2
"""
PROMOTE_MARKS = "UPDATE derive_pending SET stage = 'city' WHERE id = ANY($1::bigint[])"
CLEAR_MARKS = "DELETE FROM derive_pending WHERE id = ANY($1::bigint[])"
SELECT_PENDING = """
SELECT coalesce(sum(span), 0)::bigint AS hours,
       extract(epoch FROM now() - min(oldest))::float8 AS age_s FROM (
    SELECT extract(epoch FROM max(last_hour) - min(first_hour))::bigint / 3600 + 1 AS span,
           min(created_at) AS oldest
    FROM derive_pending GROUP BY station_code) p
"""


@dataclass(frozen=True, slots=True)
class Marks:
    """"To derive" marks read back: their ids and the hours they span per station."""

    ids: list[int]
    hours: dict[str, tuple[datetime, datetime]]

    def changed(self, only: Iterable[str] | None = None) -> dict[str, set[datetime]]:
        """Every hour of each station's span (the derivation's ``changed``), for the
        stations ``only`` names if given."""
        step = timedelta(hours=1)
        wanted = self.hours.keys() if only is None else set(only) & self.hours.keys()
        return {s: {self.hours[s][0] + k * step
                    for k in range(int((self.hours[s][1] - self.hours[s][0]) / step) + 1)}
                for s in wanted}


async def pending_marks(conn: asyncpg.Connection, stage: str, limit: int = 1_000_000,
                        lock: bool = False) -> Marks:
    """Up to ``limit`` marks of ``stage`` ('station' or 'city'), merged per station."""
    sql = SELECT_MARKS + (" FOR UPDATE" if lock else "")
    hours: dict[str, tuple[datetime, datetime]] = {}
    ids = []
    for r in await conn.fetch(sql, stage, limit):
        ids.append(r["id"])
        code = r["station_code"]
        first, last = hours.get(code, (r["first_hour"], r["last_hour"]))
        hours[code] = (min(first, r["first_hour"]), max(last, r["last_hour"]))
    return Marks(ids, hours)


async def promote_marks(conn: asyncpg.Connection, ids: Sequence[int]) -> None:
    """The stations' records of these marks are written: the city's are due next."""
    if ids:
        await conn.execute(PROMOTE_MARKS, list(ids))


async def clear_marks(conn: asyncpg.Connection, ids: Sequence[int]) -> None:
    """Everything derived from these marks is written."""
    if ids:
        await conn.execute(CLEAR_MARKS, list(ids))


async def pending_summary(conn: asyncpg.Connection,
                          timeout: float | None = None) -> tuple[int, float | None]:
    """Station-hours spanned by the marks still pending, and the seconds since the oldest
    was written (None: nothing pending)."""
    row = await conn.fetchrow(SELECT_PENDING, timeout=timeout)
    return int(row["hours"]), row["age_s"]
