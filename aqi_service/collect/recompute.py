"""Recompute stored records from stored observations, as visible revisions.

A methodology change (the reading of HJ 633-2012 hourly, ``[aqi] hourly_2012``) changes
published values that are already stored. ``recompute`` derives every station and city
record of a range again with the derive code the collectors use; a record whose values
change is rewritten and each changed field goes to the revision log with the public
reason (``/api/v1/revisions``, the station page, the downloads' revision marker). A record
that comes out the same is not touched, so running it twice changes nothing.

The work goes by windows of days and chunks of stations, each in its own transaction:
memory and transaction size stay bounded however long the range. ``dry_run`` does the same
work inside transactions that are rolled back, and reports what would have changed.

``methodology`` keeps the version the stored records follow (table ``methodology``,
migration 006); ``on_start`` compares it with the code's and recomputes the hours it
affects (those before 2026-03-01, the HJ 633-2012 period).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import asyncpg

from aqi_service.collect import derive
from aqi_service.collect.derive import HOUR, DeriveResult, day_bounds, local_day

log = logging.getLogger(__name__)

FIRST_2026_HOUR = datetime(2026, 2, 28, 17, tzinfo=UTC)
"""The first HJ 633-2026 hour ends 2026-03-01 01:00 Beijing time; earlier hours are 2012."""
WINDOW_DAYS = 7
"""Days recomputed per window (one transaction per window and station chunk)."""
STATIONS_PER_CHUNK = 16
SAMPLE_CHANGES = 10
"""Changes listed by a dry run (the counts cover all of them)."""


READINGS = {
    # .2: no hourly AQI when neither PM value is there, as the platform published.
    "practice": ("hourly_2012=practice.2",
                 "methodology: HJ 633-2012 hourly as published by the national platform"),
    "text": ("hourly_2012=text",
             "methodology: HJ 633-2012 hourly by the 2012 text's reading"),
}
"""Per reading of HJ 633-2012 hourly: the version string the stored records are marked with
(a new one for every change of what that reading computes) and the public reason."""


def methodology_version(variant: str) -> str:
    """The version string of the code's methodology under the configured reading."""
    return READINGS[variant][0]


def reason_for(variant: str) -> str:
    """The public reason of a recompute's revisions."""
    return READINGS[variant][1]


@dataclass(slots=True)
class RecomputeReport:
    """What a recompute changed (or, in a dry run, would change)."""

    first: datetime
    last: datetime
    stations: int = 0
    dry_run: bool = False
    result: DeriveResult = field(default_factory=DeriveResult)
    sample: list[dict[str, str | None]] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report for the console."""
        verb = "would change" if self.dry_run else "changed"
        out = [f"recompute {self.first.isoformat()} … {self.last.isoformat()}: "
               f"{self.stations} stations"]
        for table, res in sorted(self.result.written.items()):
            out.append(f"  {table}: {res.updated} records {verb}, {res.inserted} new, "
                       f"{res.revisions} field revisions")
        if not self.result.written or not self.result.revisions:
            out.append("  nothing to change")
        for s in self.sample:
            out.append(f"  {s['kind']} {s['subject']} {s['period_end']} {s['field']}: "
                       f"{s['old_value']} → {s['new_value']}")
        return out


class _Rollback(Exception):
    """Ends a dry run's transaction without committing anything."""


SELECT_STATIONS_WITH_DATA = """
SELECT DISTINCT station_code FROM observations
WHERE hour_end >= $1 AND hour_end <= $2 ORDER BY station_code
"""
SELECT_SAMPLE = """
SELECT kind, subject, field, period_end::text, old_value, new_value FROM revisions
WHERE reason = $1 AND changed_at = now() ORDER BY id LIMIT $2
"""
SELECT_OBSERVED_RANGE = "SELECT min(hour_end), max(hour_end) FROM observations"


def _windows(first: datetime, last: datetime) -> list[tuple[datetime, datetime]]:
    """[first, last] cut at natural-day boundaries into windows of WINDOW_DAYS days."""
    out = []
    start = first
    while start <= last:
        day = local_day(start) + timedelta(days=WINDOW_DAYS - 1)
        end = min(day_bounds(day)[1], last)
        out.append((start, end))
        start = end + HOUR
    return out


async def recompute(
    conn: asyncpg.Connection, first: datetime, last: datetime, city_code: str,
    city_members: Sequence[str], variant: str, stations: Sequence[str] | None = None,
    dry_run: bool = False, reason: str | None = None, now: datetime | None = None,
) -> RecomputeReport:
    """Recompute the records of hours [first, last] (hour-ending, UTC) from observations."""
    reason = reason or reason_for(variant)
    now = now or datetime.now(UTC)
    report = RecomputeReport(first, last, dry_run=dry_run)
    with_data = [r[0] for r in await conn.fetch(SELECT_STATIONS_WITH_DATA, first, last)]
    codes = [c for c in with_data if stations is None or c in set(stations)]
    report.stations = len(codes)
    if not codes:
        return report
    members = [c for c in city_members if c in set(with_data)]
    newest = (await conn.fetchrow(SELECT_OBSERVED_RANGE))[1]
    for start, end in _windows(first, last):
        hours = set(_hour_range(start, end))
        # A day not over yet (no later hour stored) has no daily record to correct.
        latest = min(end, newest)
        for k in range(0, len(codes), STATIONS_PER_CHUNK):
            chunk = codes[k:k + STATIONS_PER_CHUNK]
            await _step(conn, report, reason, dry_run, derive.derive_stations(
                conn, {c: hours for c in chunk}, latest, reason, None, now,
                variant=variant))
        ours = {c: hours for c in codes if c in set(members)}
        if ours:
            await _step(conn, report, reason, dry_run, derive.derive_city(
                conn, ours, latest, city_code, city_members, reason, None, now,
                variant=variant))
    return report


def _hour_range(first: datetime, last: datetime) -> list[datetime]:
    return [first + i * HOUR for i in range(int((last - first) / HOUR) + 1)]


async def _step(conn: asyncpg.Connection, report: RecomputeReport, reason: str, dry_run: bool,
                work: object) -> None:
    """Run one derivation in its transaction (rolled back in a dry run) and count it."""
    try:
        async with conn.transaction():
            res: DeriveResult = await work  # type: ignore[misc]
            for table, w in res.written.items():
                report.result.add(table, w)
            room = SAMPLE_CHANGES - len(report.sample)
            if room > 0 and res.revisions:
                report.sample.extend(dict(r) for r in await conn.fetch(SELECT_SAMPLE, reason,
                                                                       room))
            if dry_run:
                raise _Rollback
    except _Rollback:
        pass


async def stored_version(conn: asyncpg.Connection) -> str | None:
    """The methodology version the stored records follow (None before migration 006)."""
    return await conn.fetchval("SELECT version FROM methodology")


async def set_version(conn: asyncpg.Connection, version: str) -> None:
    """Record that the stored records follow ``version``."""
    await conn.execute("UPDATE methodology SET version = $1, updated_at = now()", version)


async def on_start(conn: asyncpg.Connection, city_code: str, city_members: Sequence[str],
                   variant: str) -> RecomputeReport | None:
    """If the stored records follow another methodology than the code's, recompute the
    stored HJ 633-2012 hours as revisions and record the code's version; say so on the
    console. None when nothing was due."""
    wanted = methodology_version(variant)
    have = await stored_version(conn)
    if have == wanted:
        return None
    first, newest = await conn.fetchrow(SELECT_OBSERVED_RANGE)
    if first is None or first >= FIRST_2026_HOUR:
        await set_version(conn, wanted)
        return None
    last = min(newest, FIRST_2026_HOUR - HOUR)
    # Whole natural days: the daily records of the last 2012 day are recomputed too.
    first = day_bounds(local_day(first))[0]
    log.warning("stored records follow methodology %r, this version %r: recomputing the "
                "hours %s … %s as revisions (%s)", have, wanted, first.isoformat(),
                last.isoformat(), reason_for(variant))
    report = await recompute(conn, first, last, city_code, city_members, variant)
    await set_version(conn, wanted)
    log.warning("methodology recompute done: %d stations, %d records revised, %d field "
                "revisions", report.stations,
                sum(w.updated for w in report.result.written.values()),
                report.result.revisions)
    return report


def parse_bound(text: str, end: bool) -> datetime:
    """A --from/--to value: a date (Beijing natural day: its first or last hour) or an
    ISO time (hour-ending; Beijing time unless it names its offset)."""
    from aqi_service.aqi.schemes import SHANGHAI

    text = text.strip()
    if len(text) == 10:
        d = date.fromisoformat(text)
        return day_bounds(d)[1 if end else 0]
    when = datetime.fromisoformat(text)
    when = when if when.tzinfo else when.replace(tzinfo=SHANGHAI)
    if when.minute or when.second or when.microsecond:
        raise ValueError(f"{text!r} is not on the hour")
    return when.astimezone(UTC)
