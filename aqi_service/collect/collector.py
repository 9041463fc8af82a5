"""One collection run: poll stations, validate, ingest in batches, recompute, record the run.

Each station is asked for the hours the service lacks: from the hour through which it last
answered, less a short overlap that catches late revisions, back to at most the look-back
window. A station that was down keeps its cursor, so its next successful poll back-fills
every hour it missed; a normal hourly cycle moves only the new hour and the overlap.
Polls run concurrently (bounded); their rows are written by one writer in batches while
other polls are still in flight.

Failure paths: the stages (polls, batch writes, derivations) belong to one task group, so
the first that fails cancels the others and the run ends ``failed`` with its reason. A
batch's rows, its stations' cursors and its "to derive" marks (``derive_pending``) are
committed together, so a cursor never passes rows that were not written and rows never
wait for their records unknown; every run derives what is still marked first. A station
still owed its initial back-fill (``station_cursors.backfill_from``) is asked back to its
own oldest missing hour, whatever the look-back.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg

from aqi_service.collect import derive
from aqi_service.collect.client import StationError, fetch_json
from aqi_service.collect.health import HealthCheck
from aqi_service.collect.validate import FieldMap, Parsed, PayloadError, parse_hourly
from aqi_service.config import Config, HttpSource, StationConfig
from aqi_service.storage import observations, runs
from aqi_service.storage.observations import Column

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
SIMULATOR_FORMAT = HttpSource(url="simulator")
"""The simulator speaks the default record format (records/time/<pollutant>/<pollutant>_flag)."""
MAX_REQUEST_HOURS = 7 * 24
"""A longer back-fill is asked for in chunks of this many hours."""
BATCH_ROWS = 50_000
"""Rows gathered before the writer flushes them to the database."""
WRITERS = 3
"""Batches written at once, each on its own connection (a batch holds whole stations)."""
DERIVERS = 2
"""Batches whose records are derived at once (disjoint stations, a connection each)."""
RUN_GC_THRESHOLD = 20_000
"""Allocations between two young-generation garbage collections while a run is going."""

_running = 0
"""Runs in progress in this process (any collector): the GC threshold is theirs."""
_saved_threshold: tuple[int, ...] = ()


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector less often during a run.

    A back-fill makes hundreds of thousands of short-lived containers (decoded records,
    columns, record tuples) that reference counting frees; at the default threshold
    (700) the collector would scan the young objects over again every few hundred of them
    (measured: about 0.4 CPU-seconds of a 2,000-station back-fill). The threshold is
    restored when the last run ends.
    """
    global _running, _saved_threshold
    if _running == 0:
        _saved_threshold = gc.get_threshold()
        gc.set_threshold(max(RUN_GC_THRESHOLD, _saved_threshold[0]), *_saved_threshold[1:])
    _running += 1
    try:
        yield
    finally:
        _running -= 1
        if _running == 0:
            gc.set_threshold(*_saved_threshold)


class CollectorEvents(Protocol):
    """What a collector reports as it goes (the metrics of the monitoring issue listen)."""

    def poll_finished(self, station: str, outcome: str, duration_s: float) -> None: ...
    def values_rejected(self, station: str, reason: str, count: int) -> None: ...
    def run_finished(self, summary: RunSummary) -> None: ...
    def runs_abandoned(self, triggers: Sequence[str]) -> None: ...


class _NoEvents:
    def poll_finished(self, station: str, outcome: str, duration_s: float) -> None:
        """Ignore."""

    def values_rejected(self, station: str, reason: str, count: int) -> None:
        """Ignore."""

    def run_finished(self, summary: RunSummary) -> None:
        """Ignore."""

    def runs_abandoned(self, triggers: Sequence[str]) -> None:
        """Ignore."""


@dataclass(slots=True)
class PollResult:
    """The outcome of polling one station."""

    station: str
    outcome: str
    attempts: int
    duration_s: float
    parsed: Parsed | None = None
    error: str | None = None
    answered_through: datetime | None = None
    hours: int = 0
    rejected: int = 0
    newest: datetime | None = None
    rows: int = 0

    def __post_init__(self) -> None:
        if self.parsed is not None:
            self.rows = self.parsed.count
            self.hours = len(self.parsed.hours)
            self.rejected = len(self.parsed.rejected)
            self.newest = max(self.parsed.hours) if self.parsed.hours else None


@dataclass(slots=True)
class RunSummary:
    """What a run did."""

    run_id: int
    trigger: str
    target_hour: datetime
    polled: int = 0
    ok: int = 0
    failed: int = 0
    observations: int = 0
    rejected: int = 0
    backfilled: int = 0
    revisions: int = 0
    duration_s: float = 0.0
    derive_s: float = 0.0
    outcomes: dict[str, str] = field(default_factory=dict)
    written: int = 0
    """Stations whose poll results (rows and cursor) are durably written."""
    error: str | None = None
    """Why the run failed (a write, derive or the database), if it did."""

    @property
    def status(self) -> str:
        """ok, partial or failed (every poll failed, or the run itself did)."""
        if self.error is not None:
            return "failed"
        if self.polled == 0 or self.failed == 0:
            return "ok"
        return "failed" if self.ok == 0 else "partial"


@dataclass(slots=True)
class _DeriveJob:
    """Stations whose records to recompute, and rows for those that had nothing stored."""

    changed: dict[str, set[datetime]]
    new_rows: dict[str, list[Column]]
    marks: list[int]
    """The batch's "to derive" marks, moved on with its records."""


def hour_floor(now: datetime) -> datetime:
    """The latest whole hour at or before ``now`` (the newest complete hour-ending label)."""
    return now.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat()


class Collector:
    """Polls the configured stations and keeps the database current."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        session: aiohttp.ClientSession,
        cfg: Config,
        simulator_url: str | None = None,
        extra_stations: Sequence[StationConfig] = (),
        clock: Callable[[], datetime] | None = None,
        events: CollectorEvents | None = None,
        instance: str = "",
    ) -> None:
        self.pool = pool
        self.session = session
        self.cfg = cfg
        self.simulator_url = simulator_url
        self.stations = tuple(cfg.stations) + tuple(extra_stations)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.events = events or _NoEvents()
        self.instance = instance
        self.current_run: int | None = None
        """Id of the run in progress in this process (None between runs)."""
        self._unrecorded: dict[int, RunSummary] = {}
        """Failed runs whose end could not be written (database down): written next run."""
        self.health = HealthCheck(cfg.collection, self.clock)
        """Collection's health as the database shows it (readiness, status, metrics)."""
        self._lock = asyncio.Lock()
        self.pending = 0
        """Runs asked for and not finished: waiting for the lock (not yet in the database)
        or running. Zero means idle, which the database alone cannot tell."""

    def _endpoint(self, st: StationConfig) -> tuple[str, FieldMap, dict[str, str]]:
        """URL, JSON mapping and request headers of a station's logger."""
        if st.source == "http" and st.http is not None:
            h = st.http
            return (h.url.replace("{code}", st.code), h,
                    {k: v.reveal() for k, v in h.headers.items()})
        if st.source == "simulator" and self.simulator_url:
            return f"{self.simulator_url}/stations/{st.code}/hourly", SIMULATOR_FORMAT, {}
        raise StationError("not_configured", f"station {st.code}: source {st.source!r} "
                           "cannot be polled")

    async def poll(self, st: StationConfig, since: datetime, until: datetime) -> PollResult:
        """Ask one station for the hours in (since, until]; never raises."""
        started = time.perf_counter()
        attempts = 0
        parsed = Parsed(st.code)
        answered = since
        try:
            url, mapping, headers = self._endpoint(st)
            tz = ZoneInfo(st.timezone)
            while answered < until:
                chunk_end = min(answered + MAX_REQUEST_HOURS * HOUR, until)
                fetched = await fetch_json(self.session, self.cfg.collection, url,
                                           {"since": _iso(answered), "until": _iso(chunk_end)},
                                           headers)
                attempts += fetched.attempts
                part = parse_hourly(fetched.body, st.code, mapping, answered, self.clock(),
                                    tz, st.source)
                part.clip(chunk_end)
                parsed.extend(part)
                answered = chunk_end
        except StationError as exc:
            attempts += exc.attempts
            outcome, error = exc.outcome, str(exc)
        except PayloadError as exc:
            attempts = max(attempts, 1)
            outcome, error = "bad_payload", str(exc)
        else:
            outcome, error = ("ok" if parsed.hours or not parsed.rejected else "rejected"), None
            duration = time.perf_counter() - started
            return PollResult(st.code, outcome, attempts, duration, parsed, None, until)
        duration = time.perf_counter() - started
        # The chunks answered before the failure are kept: the station answered through
        # the end of the last of them, and the next poll resumes from there.
        through = answered if answered > since else None
        log.warning("station %s: poll failed (%s)%s: %s", st.code, outcome,
                    f" after answering through {_iso(through)}" if through else "", error)
        return PollResult(st.code, outcome, max(attempts, 1), duration, parsed, error, through)

    async def run(
        self,
        trigger: str = "scheduled",
        only_missing: bool = False,
        lookback_hours: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> RunSummary:
        """Run one collection; serialised within this process.

        Never hangs and never raises for a failure of its own stages: a poll, write or
        derive that fails cancels the others, and the run ends ``failed`` with the reason
        (logged, counted, recorded). Cursors move only with rows durably written, and
        "to derive" marks keep what was written but not derived, so the next run repairs
        the gap. A cancelled run is recorded as failed, then the cancellation goes on.
        """
        self.pending += 1
        try:
            async with self._lock:
                with _fewer_collections():
                    return await self._run(trigger, only_missing, lookback_hours, progress)
        finally:
            self.pending -= 1

    def _acquire(self) -> Any:
        return self.pool.acquire(timeout=self.cfg.collection.db_acquire_timeout_s)

    def _step(self) -> Any:
        """The time limit of one database step (a batch written, a job derived)."""
        return asyncio.timeout(self.cfg.collection.db_step_timeout_s)

    async def _run(self, trigger: str, only_missing: bool, lookback_hours: int | None,
                   progress: Callable[[int, int], None] | None) -> RunSummary:
        started = time.perf_counter()
        target = hour_floor(self.clock())
        summary = RunSummary(0, trigger, target)
        try:
            async with self._step(), self._acquire() as conn:
                await self._close_unrecorded(conn)
                summary.run_id = await runs.start_run(conn, trigger, target, self.instance)
                where = await observations.cursors(conn)
            self.current_run = summary.run_id
            await self._collect(summary, where, only_missing, lookback_hours, progress)
        except asyncio.CancelledError:
            summary.error = "cancelled (the service is stopping)"
            summary.duration_s = time.perf_counter() - started
            await asyncio.shield(self._record_failure(summary))
            raise
        except Exception as exc:  # every failure of a stage ends here, with its reason
            summary.error = _reason_of(exc)
            summary.duration_s = time.perf_counter() - started
            await self._record_failure(summary)
        else:
            summary.duration_s = time.perf_counter() - started
            log.info("collection %s #%d for %s: %d stations polled (%d ok, %d failed), "
                     "%d values stored, %d rejected, %d hours back-filled, %d revisions, "
                     "%.2f s (%.2f s deriving records)",
                     trigger, summary.run_id, target.isoformat(), summary.polled, summary.ok,
                     summary.failed, summary.observations, summary.rejected,
                     summary.backfilled, summary.revisions, summary.duration_s,
                     summary.derive_s)
            self.events.run_finished(summary)
        finally:
            self.current_run = None
        return summary

    async def _close_unrecorded(self, conn: asyncpg.Connection) -> None:
        """Record the failures this process could not write at the time (database down),
        and close any other run of this instance left 'running' (runs are serialised
        here, so none of them is alive)."""
        for run_id, summary in list(self._unrecorded.items()):
            await self._finish(conn, summary)
            del self._unrecorded[run_id]
        closed = await runs.abandon_runs(
            conn, "the run ended without recording its end (its process lost the database)",
            instance=self.instance)
        self.closed_abandoned(closed)

    def closed_abandoned(self, closed: Sequence[tuple[int, str]]) -> None:
        """Log and count runs just closed as abandoned."""
        if closed:
            log.warning("closed collection runs %s as abandoned (their process is gone)",
                        [run_id for run_id, _ in closed])
            self.events.runs_abandoned([trigger for _, trigger in closed])

    async def _finish(self, conn: asyncpg.Connection, summary: RunSummary) -> None:
        await runs.finish_run(conn, summary.run_id, polled=summary.polled, ok=summary.ok,
                              failed=summary.failed, observations=summary.observations,
                              rejected=summary.rejected, backfilled=summary.backfilled,
                              revisions=summary.revisions, status=summary.status,
                              error=summary.error)

    async def _record_failure(self, summary: RunSummary) -> None:
        log.error("collection %s #%d for %s failed after %.2f s: %s (%d of %d stations "
                  "written; the next run repairs the rest)", summary.trigger, summary.run_id,
                  summary.target_hour.isoformat(), summary.duration_s, summary.error,
                  summary.written, summary.polled)
        self.events.run_finished(summary)
        if not summary.run_id:
            return
        try:
            async with asyncio.timeout(self.cfg.collection.db_acquire_timeout_s), \
                    self._acquire() as conn:
                await self._finish(conn, summary)
        except Exception as exc:  # the database is still down: written by the next run
            log.warning("collection run #%d: its failure cannot be recorded now (%s)",
                        summary.run_id, _reason_of(exc))
            self._unrecorded[summary.run_id] = summary

    def _plan(self, where: Mapping[str, observations.Cursor], target: datetime,
              only_missing: bool, lookback: timedelta) -> list[tuple[StationConfig, datetime]]:
        """Each station's ``since``: from where it last answered, less the overlap, within
        the look-back — or, while its initial back-fill is due, from its own oldest missing
        hour within the back-fill window."""
        col = self.cfg.collection
        window = target - col.initial_backfill_days * 24 * HOUR
        plan = []
        for st in self.stations:
            answered, newest, backfill_from = where.get(st.code, (None, None, None))
            if (only_missing and newest is not None and newest >= target
                    and backfill_from is None):
                continue
            floor = target - lookback
            if backfill_from is not None and col.initial_backfill_days > 0:
                floor = max(backfill_from, window)
            since = floor
            if answered is not None:
                since = max(floor, answered - col.overlap_hours * HOUR)
            if since >= target:
                continue
            plan.append((st, since))
        return plan

    async def _collect(self, summary: RunSummary, where: Mapping[str, observations.Cursor],
                       only_missing: bool, lookback_hours: int | None,
                       progress: Callable[[int, int], None] | None) -> None:
        col = self.cfg.collection
        target, run_id = summary.target_hour, summary.run_id
        lookback = (lookback_hours or col.lookback_hours) * HOUR
        reason = self._reason(summary.trigger)
        # What earlier runs wrote but did not derive comes first.
        derive_started = time.perf_counter()
        async with self._acquire() as conn:
            leftover = await derive.derive_marked_stations(
                conn, target, reason, run_id, timeout_s=col.db_step_timeout_s,
                variant=self.cfg.aqi.hourly_2012)
        summary.revisions += leftover.revisions
        summary.derive_s += time.perf_counter() - derive_started

        plan = self._plan(where, target, only_missing, lookback)
        newest_stored = {code: pair[1] for code, pair in where.items()}
        # Poll results wait for the writer in a queue holding about one batch of rows, so
        # memory stays bounded whatever the number of stations or the look-back.
        span = max((int((target - since) / HOUR) for _, since in plan), default=1)
        per_station = max(span, 1) * 6
        queue: asyncio.Queue[PollResult | None] = asyncio.Queue(
            maxsize=min(max(BATCH_ROWS // per_station, 4), col.concurrency * 8))
        semaphore = asyncio.Semaphore(col.concurrency)
        results: list[PollResult] = []

        async def poll_one(st: StationConfig, since: datetime) -> None:
            # The slot is held until the result is queued: results waiting for the writer
            # count against the concurrency, so memory stays bounded.
            async with semaphore:
                res = await self.poll(st, since, target)
                await queue.put(res)

        async def poll_all() -> None:
            async with asyncio.TaskGroup() as polls:
                for st, since in plan:
                    polls.create_task(poll_one(st, since))
            await queue.put(None)

        # Three stages overlap: polls → writer (ingest) → derivers (records of the stations
        # just written, ``DERIVERS`` batches at once), so this process computes while
        # PostgreSQL writes and vice versa.
        # One task group owns them all: the first that fails cancels the others (no stage
        # is left blocked on a queue nobody reads) and its exception ends the run.
        to_derive: asyncio.Queue[_DeriveJob | None] = asyncio.Queue(maxsize=DERIVERS)
        try:
            async with asyncio.TaskGroup() as stages:
                for _ in range(DERIVERS):
                    stages.create_task(self._deriver(to_derive, target, summary, run_id))
                stages.create_task(self._writer(queue, to_derive, newest_stored, summary,
                                                results, len(plan), progress))
                stages.create_task(poll_all())
        except BaseExceptionGroup as group:
            raise _first(group) from None
        derive_started = time.perf_counter()
        async with self._step(), self._acquire() as conn:
            derived = await derive.derive_marked_city(
                conn, target, self.cfg.city.code, [s.code for s in self.cfg.stations],
                reason, run_id, variant=self.cfg.aqi.hourly_2012)
            summary.revisions += derived.revisions
            summary.derive_s += time.perf_counter() - derive_started
            await runs.record_polls(conn, run_id, [
                (r.station, r.outcome, r.attempts, r.duration_s, r.hours, r.rejected, r.error)
                for r in results])
            await self._finish(conn, summary)

    @staticmethod
    def _reason(trigger: str) -> str:
        return f"{trigger} collection: new or revised observations"

    async def _deriver(self, queue: asyncio.Queue[_DeriveJob | None],
                       target: datetime, summary: RunSummary, run_id: int) -> None:
        """Derive the records of each ingested batch (a connection per job: no pool size
        can deadlock the writers and the derivers); the batch's marks move on to the city
        stage in the transaction that writes the records. Batches hold disjoint stations,
        so derivers running side by side never write the same record."""
        while (job := await queue.get()) is not None:
            started = time.perf_counter()
            async with self._step(), self._acquire() as conn, conn.transaction():
                derived = await derive.derive_stations(
                    conn, job.changed, target, self._reason(summary.trigger), run_id,
                    new_rows=job.new_rows, variant=self.cfg.aqi.hourly_2012)
                await observations.promote_marks(conn, job.marks)
            summary.revisions += derived.revisions
            summary.derive_s += time.perf_counter() - started

    async def _writer(
        self, queue: asyncio.Queue[PollResult | None],
        to_derive: asyncio.Queue[_DeriveJob | None],
        newest: dict[str, datetime | None], summary: RunSummary,
        results: list[PollResult], total: int,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        """Consume poll results; write their rows in batches, ``WRITERS`` at a time."""
        pending: list[PollResult] = []
        pending_rows = 0
        done = 0
        slots = asyncio.Semaphore(WRITERS)

        async def flush(batch: list[PollResult]) -> None:
            try:
                async with self._step(), self._acquire() as conn:
                    job = await self._flush(conn, batch, newest, summary)
                if job.changed:
                    await to_derive.put(job)
            finally:
                slots.release()

        # The batches being written belong to this task group: a failed write cancels
        # the loop, the other writes, and (through the caller's group) the whole run.
        async with asyncio.TaskGroup() as writes:
            while True:
                res = await queue.get()
                if res is not None:
                    results.append(res)
                    summary.polled += 1
                    summary.outcomes[res.station] = res.outcome
                    if res.error is None:
                        summary.ok += 1
                    else:
                        summary.failed += 1
                    self.events.poll_finished(res.station, res.outcome, res.duration_s)
                    if res.parsed:
                        for reason, count in res.parsed.reject_reasons().items():
                            self.events.values_rejected(res.station, reason, count)
                            log.warning("station %s: %d values rejected (%s)", res.station,
                                        count, reason)
                    pending.append(res)
                    pending_rows += res.rows
                    done += 1
                    if progress:
                        progress(done, total)
                if pending and (res is None or pending_rows >= BATCH_ROWS):
                    await slots.acquire()
                    writes.create_task(flush(pending))
                    pending, pending_rows = [], 0
                if res is None:
                    break
        for _ in range(DERIVERS):
            await to_derive.put(None)

    async def _flush(self, conn: asyncpg.Connection, batch: list[PollResult],
                     newest: dict[str, datetime | None], summary: RunSummary,
                     ) -> _DeriveJob:
        """Write a batch of stations in one transaction: rows, "to derive" marks,
        rejected values and the stations' cursors are durable together or not at all."""
        run_id, target = summary.run_id, summary.target_hour
        by_station = {res.station: res.parsed.columns for res in batch if res.parsed}
        rejected = [rej for res in batch if res.parsed for rej in res.parsed.rejected]
        # Stations with nothing stored before: what is written now is all there is, so
        # their records can be derived from these rows without reading them back.
        new_rows = {s: columns for s, columns in by_station.items()
                    if columns and newest.get(s) is None}
        async with conn.transaction():
            result = await observations.ingest(
                conn, by_station, newest, run_id,
                hours={res.station: res.parsed.hours for res in batch if res.parsed})
            await runs.record_rejected(conn, run_id, rejected)
            await runs.update_cursors(conn, [
                (r.station, r.answered_through, r.newest, r.error is None, r.outcome)
                for r in batch])
        for res in batch:
            res.parsed = None  # written: keep only the counts (bounded memory on back-fills)
        summary.written += len(batch)
        summary.observations += result.inserted + result.updated
        summary.rejected += len(rejected)
        for station, hours in result.changed.items():
            previously = newest.get(station)
            summary.backfilled += sum(
                1 for h in hours if h < target and (previously is None or h > previously))
            newest[station] = max(hours | ({previously} if previously else set()))
        hour_counts = {res.station: res.hours for res in batch}
        fresh = {s: r for s, r in new_rows.items()
                 if len(result.changed.get(s, ())) == hour_counts[s]}
        return _DeriveJob(result.changed, fresh, result.marks)


def _first(group: BaseExceptionGroup) -> BaseException:
    """The exception that failed a task group (the first leaf that is not a cancellation)."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    for exc in leaves:
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return leaves[0] if leaves else group


def _reason_of(exc: BaseException) -> str:
    """A one-line reason for a run's record: the exception's class and message."""
    if isinstance(exc, TimeoutError):
        return "TimeoutError: a database step or connection took too long"
    text = " ".join(str(exc).split())[:500]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
