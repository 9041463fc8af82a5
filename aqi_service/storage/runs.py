"""Collection runs, station polls and station cursors."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

START_RUN = """
INSERT INTO collection_runs (trigger, target_hour, instance) VALUES ($1, $2, $3) RETURNING id
"""
FINISH_RUN = """
UPDATE collection_runs SET finished_at = now(), stations_polled = $2, stations_ok = $3,
    stations_failed = $4, observations = $5, rejected = $6, hours_backfilled = $7,
    revisions = $8, status = $9, error = $10
WHERE id = $1
"""
# Runs left 'running' by a process that is gone. The caller proves that no other process
# runs a collection (it holds the leader lock), or names the instance whose runs are its own.
ABANDON_RUNS = """
UPDATE collection_runs SET status = 'abandoned', finished_at = now(), error = $1
WHERE status = 'running' AND id <> ALL($2::bigint[]) AND ($3::text IS NULL OR instance = $3)
RETURNING id, trigger
"""
# Stations that never answered are asked back to the start of the initial back-fill until
# they have answered through a recent hour once (see UPDATE_CURSORS).
PLAN_BACKFILL = """
INSERT INTO station_cursors AS c (station_code, backfill_from)
SELECT code, $2 FROM unnest($1::text[]) AS u(code)
ON CONFLICT (station_code) DO UPDATE SET backfill_from = EXCLUDED.backfill_from
WHERE c.answered_through IS NULL AND c.backfill_from IS NULL
RETURNING station_code
"""
INSERT_POLLS = """
INSERT INTO station_polls (run_id, station_code, outcome, attempts, duration_s, hours, rejected,
                           error)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::smallint[],
                     $5::float8[], $6::int[], $7::int[], $8::text[])
ON CONFLICT (run_id, station_code) DO NOTHING
"""
# Written in the transaction that stores the station's rows. ``through`` is the hour
# through which the station answered without a gap (a poll that failed partway gives the
# end of its last good chunk, a poll that failed at once NULL: the cursor stays, so the
# next poll back-fills). A successful poll ends the station's initial back-fill.
UPDATE_CURSORS = """
INSERT INTO station_cursors AS c (station_code, answered_through, newest_hour, last_success_at,
                                  last_attempt_at, last_outcome, consecutive_failures)
SELECT code, through, newest, CASE WHEN ok THEN now() END, now(), outcome,
       CASE WHEN ok THEN 0 ELSE 1 END
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::bool[], $5::text[])
     AS u(code, through, newest, ok, outcome)
ON CONFLICT (station_code) DO UPDATE SET
    answered_through = greatest(c.answered_through, EXCLUDED.answered_through),
    backfill_from = CASE WHEN EXCLUDED.last_success_at IS NOT NULL THEN NULL
        ELSE c.backfill_from END,
    newest_hour = greatest(c.newest_hour, EXCLUDED.newest_hour),
    last_success_at = coalesce(EXCLUDED.last_success_at, c.last_success_at),
    last_attempt_at = EXCLUDED.last_attempt_at,
    last_outcome = EXCLUDED.last_outcome,
    consecutive_failures = CASE WHEN EXCLUDED.last_success_at IS NOT NULL THEN 0
        ELSE c.consecutive_failures + 1 END
"""
INSERT_REJECTED = """
INSERT INTO rejected_values (station_code, pollutant, hour_end, raw_value, raw_flag, reason,
                             run_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[],
                     $6::text[], $7::bigint[])
"""


async def start_run(conn: asyncpg.Connection, trigger: str, target_hour: datetime | None,
                    instance: str) -> int:
    """Open a collection run; return its id."""
    return int(await conn.fetchval(START_RUN, trigger, target_hour, instance))


async def finish_run(conn: asyncpg.Connection, run_id: int, **counts: Any) -> None:
    """Close a run with its counts and status."""
    await conn.execute(
        FINISH_RUN, run_id, counts["polled"], counts["ok"], counts["failed"],
        counts["observations"], counts["rejected"], counts["backfilled"], counts["revisions"],
        counts["status"], counts.get("error"))


async def abandon_runs(conn: asyncpg.Connection, reason: str, keep: Sequence[int] = (),
                       instance: str | None = None) -> list[tuple[int, str]]:
    """Close runs still 'running' (of ``instance``, or of any when the caller leads) as
    abandoned, except ``keep``; return their ids and triggers."""
    rows = await conn.fetch(ABANDON_RUNS, reason, list(keep), instance)
    return [(r["id"], r["trigger"]) for r in rows]


async def plan_backfill(conn: asyncpg.Connection, codes: Sequence[str],
                        start: datetime) -> list[str]:
    """Stations that never answered get an initial back-fill from ``start``; return them."""
    if not codes:
        return []
    return [r["station_code"] for r in await conn.fetch(PLAN_BACKFILL, list(codes), start)]


async def record_polls(
    conn: asyncpg.Connection, run_id: int,
    polls: Sequence[tuple[str, str, int, float, int, int, str | None]],
) -> None:
    """Store a run's polls: (code, outcome, attempts, duration, hours, rejected, error)."""
    if not polls:
        return
    cols = list(zip(*polls, strict=True))
    await conn.execute(INSERT_POLLS, [run_id] * len(polls), *cols)


async def update_cursors(
    conn: asyncpg.Connection,
    updates: Sequence[tuple[str, datetime | None, datetime | None, bool, str]],
) -> None:
    """Advance cursors: (code, answered_through, newest hour received, ok, outcome)."""
    if not updates:
        return
    cols = list(zip(*updates, strict=True))
    await conn.execute(UPDATE_CURSORS, *cols)


async def record_rejected(
    conn: asyncpg.Connection, run_id: int | None,
    rejected: Sequence[tuple[str, str | None, datetime | None, str | None, str | None, str]],
) -> None:
    """Keep rejected values for audit: (code, pollutant, hour, raw value, raw flag, reason)."""
    if not rejected:
        return
    cols = list(zip(*rejected, strict=True))
    await conn.execute(INSERT_REJECTED, *cols, [run_id] * len(rejected))
