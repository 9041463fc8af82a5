"""The schedule (APScheduler 3.x) and leader election across service instances.

Every instance runs the scheduler, but only the leader — the instance holding a
PostgreSQL session-level advisory lock on a dedicated connection — runs the jobs. If the
leader dies its session ends, the lock is released, and another instance takes over at
its next check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from aqi_service.aqi.schemes import SHANGHAI
from aqi_service.config import Config

log = logging.getLogger(__name__)

LEADER_LOCK = 0x61716902
"""Advisory lock key that makes an instance the leader."""


class Leader:
    """Holds (or tries to take) the leader lock on its own connection."""

    def __init__(self, dsn: str, instance: str) -> None:
        self.dsn = dsn
        self.instance = instance
        self._conn: asyncpg.Connection | None = None
        self.is_leader = False
        self.on_change: Callable[[bool], None] | None = None

    async def check(self) -> bool:
        """Take the lock if free, confirm it if held; return whether this instance leads.

        A session that closed (the database restarted, the session was terminated) took
        the lock with it: taking the lock again on a new session is a new acquisition,
        reported as a loss and a gain even when both happen within one check.
        """
        was = self.is_leader
        try:
            if self._conn is None or self._conn.is_closed():
                if self._conn is not None and self.is_leader:
                    self._changed(False)
                self._conn = await asyncpg.connect(self.dsn, timeout=10)
                self.is_leader = False
                was = False
            if self.is_leader:
                await self._conn.fetchval("SELECT 1", timeout=10)
            else:
                self.is_leader = bool(await self._conn.fetchval(
                    "SELECT pg_try_advisory_lock($1)", LEADER_LOCK, timeout=10))
        except Exception as exc:  # whatever broke the lock's session
            # (asyncpg raises client-side errors, not only PostgresError, on a session the
            # server terminated): the lock may be gone with it, so this instance does not
            # lead until it takes the lock again on a new session.
            log.warning("leader check failed: %s: %s", type(exc).__name__, exc)
            self.is_leader = False
            await self._drop()
        if was != self.is_leader:
            self._changed(self.is_leader)
        return self.is_leader

    def _changed(self, leading: bool) -> None:
        self.is_leader = leading
        log.info("instance %s is %s the leader", self.instance,
                 "now" if leading else "no longer")
        if self.on_change:
            self.on_change(leading)

    async def _drop(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.close(timeout=5)
            except Exception:  # a broken session cannot be closed politely
                self._conn.terminate()
            self._conn = None

    async def release(self) -> None:
        """Give up leadership (on shutdown)."""
        self.is_leader = False
        await self._drop()


JobFunc = Callable[[], Awaitable[Any]]


class Schedule:
    """The service's jobs on an AsyncIOScheduler, run only while this instance leads."""

    def __init__(self, cfg: Config, leader: Leader,
                 on_event: Callable[[str, str], None] | None = None) -> None:
        self.cfg = cfg
        self.leader = leader
        self.scheduler = AsyncIOScheduler(
            timezone=timezone.utc,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 600},
        )
        self.on_event = on_event or (lambda job, outcome: None)
        self._led = False
        self.scheduler.add_listener(self._listen,
                                    EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)

    def _listen(self, event: JobEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            outcome = "missed"
            log.warning("job %s missed its run time", event.job_id)
        elif event.code == EVENT_JOB_ERROR:
            outcome = "error"
        else:
            outcome = "skipped" if getattr(event, "retval", None) == "skipped" else "ok"
        self.on_event(event.job_id, outcome)

    def _guarded(self, name: str, func: JobFunc) -> Callable[[], Awaitable[Any]]:
        async def job() -> Any:
            if not self.leader.is_leader:
                return "skipped"
            try:
                return await func()
            except Exception:
                log.exception("job %s failed", name)
                raise
        job.__name__ = name
        return job

    def add_jobs(self, collect: JobFunc, catch_up: JobFunc, daily: JobFunc,
                 maintenance: JobFunc, startup: JobFunc) -> None:
        """Register the hourly, catch-up, daily, maintenance and start-up jobs."""
        col = self.cfg.collection
        hour, minute = (int(x) for x in col.daily_at.split(":"))
        add = self.scheduler.add_job
        add(self._guarded("collect", collect), CronTrigger(minute=col.minute, timezone=SHANGHAI),
            id="collect")
        if col.catch_up_minutes:
            add(self._guarded("catch_up", catch_up),
                CronTrigger(minute=",".join(str(m) for m in col.catch_up_minutes),
                            timezone=SHANGHAI), id="catch_up")
        add(self._guarded("daily", daily),
            CronTrigger(hour=hour, minute=minute, timezone=SHANGHAI), id="daily")
        add(self._guarded("maintenance", maintenance), CronTrigger(hour=3, minute=17,
                                                                   timezone=SHANGHAI),
            id="maintenance")
        add(self.leader.check, IntervalTrigger(seconds=15), id="leader",
            next_run_time=datetime.now(timezone.utc) + timedelta(seconds=15))
        self._startup = startup

    async def start(self) -> None:
        """Take part in the election and start the scheduler.

        Every acquisition of the lead — at start, after losing it (an outage) and taking
        it back, or on taking over from another instance — runs the start-up job (abandoned
        runs closed, pending records derived, missed hours caught up).
        """
        self.leader.on_change = self._on_leader_change
        await self.leader.check()
        self.scheduler.start()

    def _on_leader_change(self, leading: bool) -> None:
        if leading:
            name = "takeover" if self._led else "startup"
            self._led = True
            self.scheduler.add_job(self._guarded(name, self._startup), id=name,
                                   next_run_time=datetime.now(timezone.utc),
                                   replace_existing=True)

    def retry_later(self, func: JobFunc, attempt: int) -> bool:
        """Run ``func`` again after a failed collection: ``retry_after_s`` doubled for each
        earlier attempt; at most ``retry_attempts`` times (then the schedule takes over).
        Returns whether a retry was scheduled."""
        col = self.cfg.collection
        if attempt > col.retry_attempts or not self.scheduler.running:
            return False
        delay = col.retry_after_s * 2 ** (attempt - 1)
        log.warning("collection failed: retry %d of %d in %.0f s", attempt,
                    col.retry_attempts, delay)
        self.scheduler.add_job(self._guarded("retry", func), id="retry",
                               next_run_time=datetime.now(timezone.utc)
                               + timedelta(seconds=delay),
                               replace_existing=True)
        return True

    async def stop(self) -> None:
        """Stop the scheduler (waiting for no job) and release leadership."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        await asyncio.sleep(0)
        await self.leader.release()
