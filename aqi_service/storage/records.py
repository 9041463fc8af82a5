"""Published records (station/city × hourly/daily): write what changed, log revisions.

A record that does not exist yet is inserted (straight COPY when none of the batch
exists); one that exists is updated only where a value differs, and each changed field of
an already published record goes to the revision log with its old and new value.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from aqi_service.aqi.batch import names
from aqi_service.aqi.series import DAILY_COUNTS, DAILY_FIELDS, HOURLY_COUNTS, HOURLY_FIELDS

RESULT_COLUMNS = (
    "iaqi_so2", "iaqi_no2", "iaqi_co", "iaqi_o3", "iaqi_pm10", "iaqi_pm2_5",
    "aqi", "computed_aqi", "level", "primary_mask", "exceeding_mask", "missing_mask",
    "beyond_index",
)


@dataclass(frozen=True, slots=True)
class RecordTable:
    """A published-record table: its key and data columns."""

    name: str
    kind: str
    entity: str
    period: str
    data: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column written, in COPY order (times and revision are the server's)."""
        return (self.entity, self.period, *self.data)


STATION_HOURLY = RecordTable(
    "station_hourly", "station_hourly", "station_code", "hour_end",
    ("scheme", *HOURLY_FIELDS, *HOURLY_COUNTS, "flags", *RESULT_COLUMNS))
CITY_HOURLY = RecordTable(
    "city_hourly", "city_hourly", "area_code", "hour_end",
    ("scheme", *HOURLY_FIELDS, *HOURLY_COUNTS, "flags", *RESULT_COLUMNS, "stations"))
STATION_DAILY = RecordTable(
    "station_daily", "station_daily", "station_code", "day",
    ("scheme", *DAILY_FIELDS, *DAILY_COUNTS, *RESULT_COLUMNS))
CITY_DAILY = RecordTable(
    "city_daily", "city_daily", "area_code", "day",
    ("scheme", *DAILY_FIELDS, *DAILY_COUNTS, *RESULT_COLUMNS, "stations"))


@dataclass(slots=True)
class WriteResult:
    """Counts of one write."""

    inserted: int = 0
    updated: int = 0
    revisions: int = 0


def _norm(value: Any) -> Any:
    """A comparable form of a stored or computed value."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, str) and value.startswith("{"):
        return json.loads(value)
    return value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return ",".join(value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


async def write(
    conn: asyncpg.Connection,
    table: RecordTable,
    rows: Sequence[tuple[Any, ...]],
    now: datetime,
    reason: str,
    run_id: int | None = None,
) -> WriteResult:
    """Write records (tuples of ``(entity, period, *table.data)``); return what changed."""
    result = WriteResult()
    if not rows:
        return result
    entities = sorted({r[0] for r in rows})
    periods = [r[1] for r in rows]
    cols = ", ".join(table.data)
    existing = {
        (rec[0], rec[1]): rec
        for rec in await conn.fetch(
            f"SELECT {table.entity}, {table.period}, {cols}, first_published_at, revision "
            f"FROM {table.name} WHERE {table.entity} = ANY($1::text[]) "
            f"AND {table.period} >= $2 AND {table.period} <= $3",
            entities, min(periods), max(periods))
    }
    inserts: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    revisions: list[tuple[Any, ...]] = []
    for row in rows:
        old = existing.get((row[0], row[1]))
        if old is None:
            inserts.append(row)
            continue
        changed = [
            (name, old[2 + i], value)
            for i, (name, value) in enumerate(zip(table.data, row[2:], strict=True))
            if _norm(old[2 + i]) != _norm(value)
        ]
        if not changed:
            continue
        updates.append(row)
        period = row[1]
        period_end = period if isinstance(period, datetime) else datetime.combine(
            period, datetime.min.time()).replace(tzinfo=now.tzinfo)
        for name, before, after in changed:
            if name.endswith("_mask"):  # logged as the pollutant names users see
                name = name.removesuffix("_mask") + "_pollutants"
                before = None if before is None else names(before)
                after = None if after is None else names(after)
            revisions.append((table.kind, row[0], name, period_end, _text(_norm(before)),
                              _text(after), reason, run_id))
    if inserts and not existing:
        try:
            # A savepoint when the caller holds a transaction: the conflict must not
            # abort the caller's other writes.
            async with conn.transaction():
                await conn.copy_records_to_table(table.name, records=inserts,
                                                 columns=table.columns)
        except asyncpg.UniqueViolationError:
            pass  # another writer got there first: take the upsert path below
        else:
            result.inserted = len(inserts)
            inserts = []
    pending = inserts + updates
    if pending:
        stage = f"{table.name}_stage"
        async with conn.transaction():
            await conn.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
                f"(LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
            await conn.copy_records_to_table(stage, records=pending, columns=table.columns)
            assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in table.data)
            await conn.execute(
                f"INSERT INTO {table.name} ({', '.join(table.columns)}) "
                f"SELECT {', '.join(table.columns)} FROM {stage} "
                f"ON CONFLICT ({table.entity}, {table.period}) DO UPDATE SET {assignments}, "
                f"computed_at = now(), revision = {table.name}.revision + 1")
            if revisions:
                await conn.copy_records_to_table(
                    "revisions", records=revisions,
                    columns=("kind", "subject", "field", "period_end", "old_value",
                             "new_value", "reason", "run_id"))
        result.inserted += len(inserts)
        result.updated = len(updates)
        result.revisions = len(revisions)
    return result
