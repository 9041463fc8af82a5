"""Hourly observations: idempotent batch ingest and reads for the derived records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import asyncpg

ObservationRow = tuple[str, str, datetime, Decimal | float | int | None, str, bool, str, datetime]
"""(station_code, pollutant, hour_end UTC, value, flag, valid, source, received_at)."""

COLUMNS = ("station_code", "pollutant", "hour_end", "value", "flag", "valid", "source",
           "received_at")

ENSURE_PARTITIONS = "SELECT ensure_partitions($1::timestamptz, $2::timestamptz)"

CREATE_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS observations_stage (
    station_code text, pollutant text, hour_end timestamptz, value numeric, flag text,
    valid boolean, source text, received_at timestamptz
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
        (station_code, pollutant, hour_end, value, flag, valid, source, received_at, updated_at)
    SELECT station_code, pollutant, hour_end, value, flag, valid, source, received_at, received_at
    FROM s
    ON CONFLICT (station_code, pollutant, hour_end) DO UPDATE SET
        value = EXCLUDED.value, flag = EXCLUDED.flag, valid = EXCLUDED.valid,
        source = EXCLUDED.source, received_at = EXCLUDED.received_at,
        updated_at = EXCLUDED.updated_at, revision = o.revision + 1
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

SELECT_CURSORS = """
SELECT s.code, c.answered_through, c.newest_hour
FROM stations s LEFT JOIN station_cursors c ON c.station_code = s.code
WHERE s.active
"""

SELECT_RANGE = """
SELECT station_code, pollutant, hour_end, value::float8 AS value, flag, valid
FROM observations
WHERE station_code = ANY($1::text[]) AND hour_end >= $2 AND hour_end <= $3
"""


@dataclass(slots=True)
class IngestResult:
    """What an ingest changed: (station, hour) keys touched, counts."""

    changed: dict[str, set[datetime]] = field(default_factory=dict)
    inserted: int = 0
    updated: int = 0

    def add(self, station: str, hour: datetime) -> None:
        """Record a changed station hour."""
        self.changed.setdefault(station, set()).add(hour)


async def ensure_partitions(conn: asyncpg.Connection, first: datetime, last: datetime) -> None:
    """Monthly partitions covering [first, last] exist."""
    await conn.execute(ENSURE_PARTITIONS, first, last)


async def ingest(
    conn: asyncpg.Connection,
    rows: Sequence[ObservationRow],
    newest: dict[str, datetime | None],
    run_id: int | None = None,
    reason: str = "station revised the value",
) -> IngestResult:
    """Store observations idempotently; return what changed.

    Rows newer than the station's newest stored hour (``newest``) cannot conflict and are
    copied straight into the table; the rest go through the stage and the set-based
    upsert. If a concurrent writer got there first, everything takes the upsert path.
    """
    result = IngestResult()
    if not rows:
        return result
    hours = [r[2] for r in rows]
    fresh: list[ObservationRow] = []
    known: list[ObservationRow] = []
    for row in rows:
        limit = newest.get(row[0])
        (fresh if limit is None or row[2] > limit else known).append(row)
    await ensure_partitions(conn, min(hours), max(hours))
    if fresh:
        try:
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "observations", records=[(*r, r[7]) for r in fresh],
                    columns=(*COLUMNS, "updated_at"))
        except asyncpg.UniqueViolationError:
            known.extend(fresh)
            fresh = []
        else:
            for row in fresh:
                result.add(row[0], row[2])
            result.inserted += len(fresh)
    if known:
        async with conn.transaction():
            await conn.execute(CREATE_STAGE)
            await conn.copy_records_to_table("observations_stage", records=known,
                                             columns=COLUMNS)
            changed = await conn.fetch(UPSERT_FROM_STAGE, reason, run_id)
        for rec in changed:
            result.add(rec["station_code"], rec["hour_end"])
            if rec["revised"]:
                result.updated += 1
            else:
                result.inserted += 1
    return result


async def cursors(conn: asyncpg.Connection) -> dict[str, tuple[datetime | None, datetime | None]]:
    """Per active station: (answered_through, newest stored hour)."""
    return {r["code"]: (r["answered_through"], r["newest_hour"])
            for r in await conn.fetch(SELECT_CURSORS)}


async def read_range(
    conn: asyncpg.Connection, stations: Sequence[str], first: datetime, last: datetime,
) -> list[asyncpg.Record]:
    """Every observation of ``stations`` with hour_end in [first, last]."""
    return await conn.fetch(SELECT_RANGE, list(stations), first, last)
