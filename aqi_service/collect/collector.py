"""One collection run: poll stations, validate, ingest in batches, recompute, record the run.

Each station is asked for the hours the service lacks: from the hour through which it last
answered, less a short overlap that catches late revisions, back to at most the look-back
window. A station that was down keeps its cursor, so its next successful poll back-fills
every hour it missed; a normal hourly cycle moves only the new hour and the overlap.
Polls run concurrently (bounded); their rows are written by one writer in batches while
other polls are still in flight.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg

from aqi_service.collect import derive
from aqi_service.collect.client import StationError, fetch_json
from aqi_service.collect.validate import FieldMap, Parsed, PayloadError, parse_hourly
from aqi_service.config import Config, HttpSource, StationConfig
from aqi_service.storage import observations, runs
from aqi_service.storage.observations import ObservationRow

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


class CollectorEvents(Protocol):
    """What a collector reports as it goes (the metrics of the monitoring issue listen)."""

    def poll_finished(self, station: str, outcome: str, duration_s: float) -> None: ...
    def values_rejected(self, station: str, reason: str, count: int) -> None: ...
    def run_finished(self, summary: RunSummary) -> None: ...


class _NoEvents:
    def poll_finished(self, station: str, outcome: str, duration_s: float) -> None:
        """Ignore."""

    def values_rejected(self, station: str, reason: str, count: int) -> None:
        """Ignore."""

    def run_finished(self, summary: RunSummary) -> None:
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

    def __post_init__(self) -> None:
        if self.parsed is not None:
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

    @property
    def status(self) -> str:
        """ok, partial or failed."""
        if self.polled == 0 or self.failed == 0:
            return "ok"
        return "failed" if self.ok == 0 else "partial"


@dataclass(slots=True)
class _DeriveJob:
    """Stations whose records to recompute, and rows for those that had nothing stored."""

    changed: dict[str, set[datetime]]
    new_rows: dict[str, list[ObservationRow]]


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
        self._lock = asyncio.Lock()

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
        parsed = Parsed()
        try:
            url, mapping, headers = self._endpoint(st)
            tz = ZoneInfo(st.timezone)
            chunk_start = since
            while chunk_start < until:
                chunk_end = min(chunk_start + MAX_REQUEST_HOURS * HOUR, until)
                fetched = await fetch_json(self.session, self.cfg.collection, url,
                                           {"since": _iso(chunk_start), "until": _iso(chunk_end)},
                                           headers)
                attempts += fetched.attempts
                part = parse_hourly(fetched.body, st.code, mapping, chunk_start, self.clock(),
                                    tz, st.source)
                part.rows = [r for r in part.rows if r[2] <= chunk_end]
                parsed.rows.extend(part.rows)
                parsed.rejected.extend(part.rejected)
                parsed.hours |= {h for h in part.hours if h <= chunk_end}
                parsed.duplicates += part.duplicates
                parsed.flagged += part.flagged
                chunk_start = chunk_end
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
        log.warning("station %s: poll failed (%s): %s", st.code, outcome, error)
        return PollResult(st.code, outcome, max(attempts, 1), duration, parsed, error)

    async def run(
        self,
        trigger: str = "scheduled",
        only_missing: bool = False,
        lookback_hours: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> RunSummary:
        """Run one collection; serialised within this process."""
        async with self._lock:
            return await self._run(trigger, only_missing, lookback_hours, progress)

    async def _run(self, trigger: str, only_missing: bool, lookback_hours: int | None,
                   progress: Callable[[int, int], None] | None) -> RunSummary:
        col = self.cfg.collection
        started = time.perf_counter()
        target = hour_floor(self.clock())
        lookback = (lookback_hours or col.lookback_hours) * HOUR
        async with self.pool.acquire() as conn:
            run_id = await runs.start_run(conn, trigger, target, self.instance)
            where = await observations.cursors(conn)
        summary = RunSummary(run_id, trigger, target)
        plan: list[tuple[StationConfig, datetime]] = []
        for st in self.stations:
            answered, newest = where.get(st.code, (None, None))
            if only_missing and newest is not None and newest >= target:
                continue
            since = target - lookback
            if answered is not None:
                since = max(since, answered - col.overlap_hours * HOUR)
            if since >= target:
                continue
            plan.append((st, since))
        newest_stored = {code: pair[1] for code, pair in where.items()}

        # Poll results wait for the writer in a queue holding about one batch of rows, so
        # memory stays bounded whatever the number of stations or the look-back.
        per_station = max(int(lookback / HOUR), 1) * 6
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

        changed: dict[str, set[datetime]] = {}
        # Three stages overlap: polls → writer (ingest) → deriver (records of the stations
        # just written), so this process computes while PostgreSQL writes and vice versa.
        to_derive: asyncio.Queue[_DeriveJob | None] = asyncio.Queue(maxsize=2)
        deriver = asyncio.create_task(self._deriver(to_derive, target, summary, run_id))
        writer = asyncio.create_task(
            self._writer(queue, to_derive, newest_stored, run_id, target, summary, changed,
                         results, len(plan), progress))
        try:
            await asyncio.gather(*(poll_one(st, since) for st, since in plan))
        finally:
            await queue.put(None)
            try:
                await writer
            finally:
                await to_derive.put(None)
                await deriver
        derive_started = time.perf_counter()
        async with self.pool.acquire() as conn:
            if changed:
                derived = await derive.derive_city(
                    conn, changed, target, self.cfg.city.code,
                    [s.code for s in self.cfg.stations], self._reason(trigger), run_id)
                summary.revisions += derived.revisions
            summary.derive_s += time.perf_counter() - derive_started
            await runs.record_polls(conn, run_id, [
                (r.station, r.outcome, r.attempts, r.duration_s, r.hours, r.rejected, r.error)
                for r in results])
            await runs.update_cursors(conn, [
                (r.station, r.answered_through, r.newest, r.answered_through is not None,
                 r.outcome)
                for r in results])
            summary.duration_s = time.perf_counter() - started
            await runs.finish_run(conn, run_id, polled=summary.polled, ok=summary.ok,
                                  failed=summary.failed, observations=summary.observations,
                                  rejected=summary.rejected, backfilled=summary.backfilled,
                                  revisions=summary.revisions, status=summary.status)
        log.info("collection %s #%d for %s: %d stations polled (%d ok, %d failed), %d values "
                 "stored, %d rejected, %d hours back-filled, %d revisions, %.2f s "
                 "(%.2f s deriving records)",
                 trigger, run_id, target.isoformat(), summary.polled, summary.ok,
                 summary.failed, summary.observations, summary.rejected, summary.backfilled,
                 summary.revisions, summary.duration_s, summary.derive_s)
        self.events.run_finished(summary)
        return summary

    @staticmethod
    def _reason(trigger: str) -> str:
        return f"{trigger} collection: new or revised observations"

    async def _deriver(self, queue: asyncio.Queue[_DeriveJob | None],
                       target: datetime, summary: RunSummary, run_id: int) -> None:
        """Derive the records of each ingested batch (a connection per job: no pool size
        can deadlock the writers and the deriver)."""
        while (job := await queue.get()) is not None:
            started = time.perf_counter()
            async with self.pool.acquire() as conn:
                derived = await derive.derive_stations(
                    conn, job.changed, target, self._reason(summary.trigger), run_id,
                    new_rows=job.new_rows)
                summary.revisions += derived.revisions
                summary.derive_s += time.perf_counter() - started

    async def _writer(
        self, queue: asyncio.Queue[PollResult | None],
        to_derive: asyncio.Queue[_DeriveJob | None],
        newest: dict[str, datetime | None],
        run_id: int, target: datetime, summary: RunSummary,
        changed: dict[str, set[datetime]], results: list[PollResult], total: int,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        """Consume poll results; write their rows in batches, two batches at a time."""
        pending: list[PollResult] = []
        pending_rows = 0
        done = 0
        slots = asyncio.Semaphore(WRITERS)
        flushing: set[asyncio.Task[None]] = set()

        async def flush(batch: list[PollResult]) -> None:
            try:
                async with self.pool.acquire() as conn:
                    job = await self._flush(conn, batch, newest, run_id, target, summary,
                                            changed)
                if job.changed:
                    await to_derive.put(job)
            finally:
                slots.release()

        try:
            while True:
                res = await queue.get()
                if res is not None:
                    results.append(res)
                    summary.polled += 1
                    summary.outcomes[res.station] = res.outcome
                    if res.answered_through is not None:
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
                        pending_rows += len(res.parsed.rows)
                    done += 1
                    if progress:
                        progress(done, total)
                if pending and (res is None or pending_rows >= BATCH_ROWS):
                    await slots.acquire()
                    task = asyncio.create_task(flush(pending))
                    flushing.add(task)
                    task.add_done_callback(flushing.discard)
                    pending, pending_rows = [], 0
                if res is None:
                    break
        finally:
            if flushing:
                await asyncio.gather(*flushing)

    async def _flush(self, conn: asyncpg.Connection, batch: list[PollResult],
                     newest: dict[str, datetime | None], run_id: int, target: datetime,
                     summary: RunSummary, changed: dict[str, set[datetime]],
                     ) -> _DeriveJob:
        by_station = {res.station: res.parsed.rows for res in batch if res.parsed}
        rejected = [rej for res in batch if res.parsed for rej in res.parsed.rejected]
        # Stations with nothing stored before: what is written now is all there is, so
        # their records can be derived from these rows without reading them back.
        new_rows = {s: rows for s, rows in by_station.items()
                    if rows and newest.get(s) is None}
        result = await observations.ingest(
            conn, by_station, newest, run_id,
            hours={res.station: res.parsed.hours for res in batch if res.parsed})
        await runs.record_rejected(conn, run_id, rejected)
        for res in batch:
            res.parsed = None  # written: keep only the counts (bounded memory on back-fills)
        summary.observations += result.inserted + result.updated
        summary.rejected += len(rejected)
        for station, hours in result.changed.items():
            changed.setdefault(station, set()).update(hours)
            previously = newest.get(station)
            summary.backfilled += sum(
                1 for h in hours if h < target and (previously is None or h > previously))
            newest[station] = max(hours | ({previously} if previously else set()))
        hour_counts = {res.station: res.hours for res in batch}
        fresh = {s: r for s, r in new_rows.items()
                 if len(result.changed.get(s, ())) == hour_counts[s]}
        return _DeriveJob(result.changed, fresh)
