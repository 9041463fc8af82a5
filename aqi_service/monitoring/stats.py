"""Monitoring figures read from the database: gaps, publication latency, collector state.

They are read again only when the ``/now`` snapshot has been rebuilt (after a collection,
and every minute while the scheduler runs) or when the last reading is older than
``MAX_AGE_S``: never at every scrape or status request.

Windows are counted in expected hours: the ``n`` hour-ending labels up to the newest hour
that should be published by now (``snapshot.expected_hour``). A station-hour is missing
when the station reported nothing for it (no hourly record).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

from aqi_service.config import Config
from aqi_service.storage import migrations
from aqi_service.web.snapshot import Snapshot, expected_hour

if TYPE_CHECKING:
    from aqi_service.monitoring.metrics import Metrics

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
RECENT_HOURS = 12
"""Hours whose publication latency the status page lists."""
MAX_AGE_S = 60.0
"""Read again after this long even if the snapshot did not change (the clock moves on)."""
QUERY_TIMEOUT_S = 5.0

COUNT_HOURS = """
SELECT s.code,
       count(h.hour_end) FILTER (WHERE h.hour_end > $2) AS hours_24h,
       count(h.hour_end) AS hours_7d
FROM stations s
LEFT JOIN station_hourly h
       ON h.station_code = s.code AND h.hour_end > $1 AND h.hour_end <= $3
WHERE s.active AND s.city_member
GROUP BY s.code
ORDER BY s.code
"""
SELECT_RECENT_PUBLICATION = """
SELECT h.station_code, h.hour_end, h.first_published_at
FROM station_hourly h
JOIN stations s ON s.code = h.station_code
WHERE s.active AND s.city_member AND h.hour_end > $1 AND h.hour_end <= $2
ORDER BY h.station_code, h.hour_end
"""
SELECT_CURSORS = """
SELECT station_code, answered_through, newest_hour, last_success_at, last_attempt_at,
       last_outcome, consecutive_failures
FROM station_cursors
"""
SELECT_LAST_RUN = """
SELECT id, trigger, status, started_at, finished_at, target_hour, stations_polled,
       stations_ok, stations_failed, observations, rejected, hours_backfilled, revisions,
       error
FROM collection_runs
ORDER BY id DESC
LIMIT 1
"""
SELECT_LAST_SUCCESS = """
SELECT max(finished_at) FROM collection_runs WHERE status IN ('ok', 'partial')
"""
DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
"""What a database that is down, slow or gone raises."""


@dataclass(frozen=True, slots=True)
class StationStats:
    """One station's figures."""

    missing_24h: int
    missing_7d: int
    published: dict[datetime, datetime]
    """Hour-ending label → when its record was first published (last RECENT_HOURS)."""
    cursor: dict[str, Any] | None
    """The collector's cursor: last outcome, success, attempt, consecutive failures."""


@dataclass(frozen=True, slots=True)
class Reading:
    """One reading of the monitoring figures."""

    checked_at: datetime
    """The service's time when they were read."""
    expected: datetime
    stations: dict[str, StationStats]
    last_run: dict[str, Any] | None
    last_success_at: datetime | None
    read_at: float = field(default_factory=time.monotonic)


class MonitoringStats:
    """The latest ``Reading``, read again when the snapshot changes or it grows old."""

    def __init__(self, cfg: Config, metrics: Metrics, clock: Callable[[], datetime]) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.clock = clock
        self.current: Reading | None = None
        self._source: Snapshot | None = None
        self._lock = asyncio.Lock()

    def stale(self, snapshot: Snapshot | None) -> bool:
        """Whether the figures predate ``snapshot`` or are older than ``MAX_AGE_S``."""
        return (self.current is None or snapshot is not self._source
                or time.monotonic() - self.current.read_at > MAX_AGE_S)

    async def fresh(self, pool: asyncpg.Pool, snapshot: Snapshot | None) -> Reading | None:
        """The current reading, read again first if stale; the old one if that fails."""
        if self.stale(snapshot):
            async with self._lock:
                if self.stale(snapshot):
                    try:
                        self.current = await self.read(pool)
                        self._source = snapshot
                    except DB_ERRORS as exc:
                        log.warning("monitoring statistics not read: %s", exc)
        return self.current

    async def _timed(self, name: str, call: Any) -> Any:
        started = time.perf_counter()
        try:
            return await call
        finally:
            self.metrics.db_query.labels(name).observe(time.perf_counter() - started)

    async def read(self, pool: asyncpg.Pool) -> Reading:
        """Read every figure from the database."""
        now = self.clock()
        expected = expected_hour(now, self.cfg)
        t = QUERY_TIMEOUT_S
        async with pool.acquire(timeout=t) as conn:
            counts = await self._timed("count_hours", conn.fetch(
                COUNT_HOURS, expected - 168 * HOUR, expected - 24 * HOUR, expected, timeout=t))
            recent = await self._timed("recent_publication", conn.fetch(
                SELECT_RECENT_PUBLICATION, expected - RECENT_HOURS * HOUR, expected,
                timeout=t))
            cursors = await self._timed("cursors", conn.fetch(SELECT_CURSORS, timeout=t))
            last_run = await self._timed("last_run", conn.fetchrow(SELECT_LAST_RUN, timeout=t))
            last_ok = await self._timed("last_success", conn.fetchval(SELECT_LAST_SUCCESS,
                                                                      timeout=t))
        published: dict[str, dict[datetime, datetime]] = {}
        for r in recent:
            published.setdefault(r["station_code"], {})[r["hour_end"]] = r["first_published_at"]
        by_code = {r["station_code"]: dict(r) for r in cursors}
        stations = {
            r["code"]: StationStats(24 - r["hours_24h"], 168 - r["hours_7d"],
                                    published.get(r["code"], {}), by_code.get(r["code"]))
            for r in counts
        }
        return Reading(now, expected, stations, dict(last_run) if last_run else None, last_ok)

    async def ping(self, pool: asyncpg.Pool) -> int | None:
        """The database's migration version, or None if it cannot be reached in time."""
        started = time.perf_counter()
        try:
            async with pool.acquire(timeout=2) as conn:
                return await migrations.applied_version(conn, timeout=2)
        except DB_ERRORS as exc:
            log.warning("database ping failed: %s", type(exc).__name__)
            return None
        finally:
            self.metrics.db_query.labels("ping").observe(time.perf_counter() - started)
