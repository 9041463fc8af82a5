"""Is collection healthy? One reading of the database's collection state, and the problems
it shows: the readiness check, the status document and the metrics all say the same.

- ``collection_stalled``: no successful (ok or partial) run finished within the expected
  interval — the hourly schedule plus ``stall_grace_minutes`` — counted from the last
  success, or from this process's start when there was none, by the app's clock (the one
  the schedule runs by; a success's age is read once from the database, then moves on with
  that clock);
- ``collection_failing``: the last run that ended failed or was abandoned;
- ``derive_behind``: "to derive" marks older than ``derive_grace_minutes`` (observations
  whose derived records are missing or stale);
- ``database_down``: the database did not answer within ``PROBE_BUDGET_S`` (the last
  reading is kept, so a stall is still seen during the outage).

A readiness probe must answer within a probe timeout whatever the network does: one probe
of the database at a time runs as its own task (its statements bounded by
``QUERY_TIMEOUT_S``), and a caller waits for it at most ``PROBE_BUDGET_S``; under a hung
network callers get the last reading and ``database_down`` instead of piling up probes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from aqi_service.config import CollectionConfig
from aqi_service.storage import observations

log = logging.getLogger(__name__)

SCHEDULE_INTERVAL = timedelta(hours=1)
QUERY_TIMEOUT_S = 5.0
PROBE_BUDGET_S = 1.0
"""How long a caller waits for the database's answer (acquire and statements together)."""
# Ages by the database's clock (the one that wrote the times).
SELECT_RUNS = """
SELECT s.at AS last_success_at, extract(epoch FROM now() - s.at)::float8 AS success_age_s,
       last.status AS last_status, last.error AS last_error
FROM (SELECT max(finished_at) AS at FROM collection_runs
      WHERE status IN ('ok', 'partial')) s
LEFT JOIN LATERAL (SELECT status, error FROM collection_runs WHERE status <> 'running'
                   ORDER BY id DESC LIMIT 1) last ON true
"""
DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


@dataclass(frozen=True, slots=True)
class CollectionState:
    """What the database says about collection."""

    last_success_at: datetime | None
    success_age_s: float | None
    """Seconds since the last successful run finished, when read."""
    last_status: str | None
    last_error: str | None
    pending_hours: int
    """Station-hours spanned by the "to derive" marks."""
    pending_age_s: float | None
    """Seconds since the oldest pending mark was written, when read."""
    read_at: float
    """``time.monotonic()`` of the reading."""

    def aged(self, seconds: float | None) -> float | None:
        """An age of the reading, as it is now."""
        return None if seconds is None else seconds + time.monotonic() - self.read_at


@dataclass(frozen=True, slots=True)
class Health:
    """One check: the state read (or the last one known) and the problems found."""

    checked_at: datetime
    database_up: bool
    state: CollectionState | None
    problems: tuple[str, ...]

    @property
    def stalled(self) -> bool:
        """No successful run within the expected interval."""
        return "collection_stalled" in self.problems


async def read_state(conn: asyncpg.Connection) -> CollectionState:
    """The runs' and the marks' state, in two short statements."""
    row = await conn.fetchrow(SELECT_RUNS, timeout=QUERY_TIMEOUT_S)
    hours, pending_age = await observations.pending_summary(conn, timeout=QUERY_TIMEOUT_S)
    return CollectionState(row["last_success_at"], row["success_age_s"], row["last_status"],
                           row["last_error"], hours, pending_age, time.monotonic())


def _retrieve(task: asyncio.Task[object]) -> None:
    """A probe nobody waited for to the end: its failure is logged, not left unretrieved."""
    if not task.cancelled() and task.exception() is not None:
        log.debug("database probe failed late: %r", task.exception())


class SingleProbe:
    """One probe task at a time; every caller waits for the one in flight at most
    ``budget_s`` (the task itself is bounded by its statements' timeouts)."""

    def __init__(self, budget_s: float = PROBE_BUDGET_S) -> None:
        self.budget_s = budget_s
        self.task: asyncio.Task[object] | None = None

    async def run(self, probe: Callable[[], Awaitable[object]]) -> object:
        """The probe's result; TimeoutError past the budget."""
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(probe())
            self.task.add_done_callback(_retrieve)
        async with asyncio.timeout(self.budget_s):
            return await asyncio.shield(self.task)


async def migration_version(pool: asyncpg.Pool) -> int:
    """The database's migration, bounded by ``QUERY_TIMEOUT_S`` per step."""
    async with pool.acquire(timeout=QUERY_TIMEOUT_S) as conn:
        return await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations",
                                   timeout=QUERY_TIMEOUT_S)


class HealthCheck:
    """Reads the state when asked and keeps the last reading for database outages."""

    def __init__(self, cfg: CollectionConfig, clock: Callable[[], datetime]) -> None:
        self.cfg = cfg
        self.clock = clock
        self.started_at = clock()
        """No success yet: a stall is counted from this process's start."""
        self._success_seen: datetime | None = None
        """The database's time of the last success, as last read."""
        self._success_at: datetime | None = None
        """The same moment by the app's clock (its age when read, taken from the clock)."""
        self.last: CollectionState | None = None
        self.last_health: Health | None = None
        self.probe = SingleProbe()

    async def _read(self, pool: asyncpg.Pool) -> CollectionState:
        async with pool.acquire(timeout=QUERY_TIMEOUT_S) as conn:
            return await read_state(conn)

    @property
    def interval_s(self) -> float:
        """The longest time between successful runs that is not a stall."""
        return (SCHEDULE_INTERVAL + timedelta(minutes=self.cfg.stall_grace_minutes)
                ).total_seconds()

    async def check(self, pool: asyncpg.Pool | None, max_age_s: float = 0.0) -> Health:
        """Read the state (unless read within ``max_age_s``) and judge it."""
        up = pool is not None
        if pool is not None and (self.last is None
                                 or time.monotonic() - self.last.read_at >= max_age_s):
            try:
                state = await self.probe.run(lambda: self._read(pool))
                assert isinstance(state, CollectionState)
                self.last = state
                self._note_success(state)
            except DB_ERRORS as exc:
                log.warning("collection health: the database does not answer (%s)",
                            type(exc).__name__)
                up = False
        health = Health(self.clock(), up, self.last, self.judge(up, self.last))
        self.last_health = health
        return health

    def _note_success(self, state: CollectionState) -> None:
        """A success not seen before: place it on the app's clock (now less its age by the
        database's clock), so that its age then moves with the clock that runs the
        schedule, whatever the offset between the two clocks."""
        if state.last_success_at is None or state.last_success_at == self._success_seen:
            return
        self._success_seen = state.last_success_at
        self._success_at = self.clock() - timedelta(seconds=max(state.success_age_s or 0, 0))

    def success_age_s(self) -> float:
        """Seconds by the app's clock since the last success (or this process's start)."""
        since = self._success_at if self._success_at is not None else self.started_at
        return (self.clock() - since).total_seconds()

    def judge(self, up: bool, state: CollectionState | None) -> tuple[str, ...]:
        """The problem codes of ``state`` as it is now (its ages moved on since read)."""
        problems = []
        if not up:
            problems.append("database_down")
        if self.success_age_s() > self.interval_s:
            problems.append("collection_stalled")
        if state is not None:
            if state.last_status in ("failed", "abandoned"):
                problems.append("collection_failing")
            pending = state.aged(state.pending_age_s)
            if pending is not None and pending > self.cfg.derive_grace_minutes * 60:
                problems.append("derive_behind")
        return tuple(problems)
