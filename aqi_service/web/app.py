"""The application factory and every resource's lifetime (one ``cleanup_ctx`` each).

Order: database (embedded server or URL, pool, migrations, stations; the embedded server's
supervisor) → simulator (when a station uses it) → HTTP client → collector → snapshot →
scheduler. Teardown runs in reverse, only for what started.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, timedelta, timezone

from aiohttp import web

from aqi_service.collect import derive, recompute
from aqi_service.collect.client import create_session
from aqi_service.collect.collector import HOUR, Collector, RunSummary, hour_floor
from aqi_service.collect.scheduler import Leader, Schedule
from aqi_service.config import Config, StationConfig
from aqi_service.monitoring.metrics import Metrics
from aqi_service.storage import db, migrations, runs, stations
from aqi_service.storage.observations import ensure_partitions
from aqi_service.storage.retry import retry_on_outage
from aqi_service.storage.supervisor import supervise
from aqi_service.web import conditional, disclosure_pages, keys
from aqi_service.web.admin import setup_admin
from aqi_service.web.api import setup_routes
from aqi_service.web.atom import setup_feed
from aqi_service.web.disclosure_api import setup_disclosure
from aqi_service.web.errors import envelope_errors
from aqi_service.web.metrics import handler_args, setup_metrics
from aqi_service.web.pages import setup_pages
from aqi_service.web.snapshot import SnapshotStore
from aqi_service.web.status import setup_status
from aqi_service.web.templating import setup_templates
from aqi_service.web.widget import setup_widget

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def extra_station_configs(cfg: Config) -> list[StationConfig]:
    """Synthetic simulator stations (benchmarks): collected, but not part of the city."""
    from aqi_service.simulator import Simulator

    if cfg.simulator.extra_stations <= 0:
        return []
    sim = Simulator(_sim_stations(cfg), seed=cfg.simulator.seed,
                    extra_stations=cfg.simulator.extra_stations)
    own = {s.code for s in cfg.stations}
    return [StationConfig(code=s.code, name_zh=s.name or s.code, name_en=s.name or s.code,
                          lat=s.lat, lon=s.lon, source="simulator")
            for s in sim.stations if s.code not in own]


def _sim_stations(cfg: Config) -> list:
    from aqi_service.simulator import SimStation

    return [SimStation(code=s.code, lat=s.lat, lon=s.lon, name=s.name_zh)
            for s in cfg.stations if s.source == "simulator"]


class ProgressBar:
    """A console progress bar on stderr (a line per 10 % when stderr is not a terminal)."""

    def __init__(self, label: str, unit: str = "stations") -> None:
        self.label = label
        self.unit = unit
        self.tty = sys.stderr.isatty()
        self._last = -1

    def __call__(self, done: int, total: int) -> None:
        total = max(total, 1)
        share = done / total
        if self.tty:
            bar = "#" * int(share * 30)
            sys.stderr.write(f"\r{self.label} [{bar:<30}] {done}/{total} {self.unit}")
            if done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()
        elif int(share * 10) != self._last:
            self._last = int(share * 10)
            print(f"{self.label}: {done}/{total} {self.unit}", file=sys.stderr, flush=True)


def create_app(
    cfg: Config,
    *,
    scheduler: bool = True,
    clock: Clock | None = None,
    database_target: db.Target | None = None,
) -> web.Application:
    """Build the application; no I/O happens until it starts."""
    clock = clock or _now
    # No middleware on the request path: errors get the envelope as their answers are
    # prepared, and requests are counted by the access-log hook (see web/metrics.py).
    metrics = Metrics(cfg)   # this app's registry; the request observer is bound to it
    app = web.Application(client_max_size=1024 * 1024, handler_args=handler_args(metrics))
    app[keys.METRICS] = metrics
    metrics.fast_path_disabled.set(0 if conditional.check_fast_path() else 1)
    app.on_response_prepare.append(envelope_errors)
    app[keys.CONFIG] = cfg
    app[keys.CLOCK] = clock
    app[keys.EXTRA_STATIONS] = extra_station_configs(cfg)
    app[keys.SNAPSHOT] = SnapshotStore(cfg)   # empty until start-up prepares it
    app.cleanup_ctx.append(_database_ctx(database_target))
    if any(s.source == "simulator" for s in cfg.stations):
        app.cleanup_ctx.append(_simulator_ctx(clock))
    app.cleanup_ctx.append(_client_ctx)
    app.cleanup_ctx.append(_collector_ctx(clock))
    app.cleanup_ctx.append(_snapshot_ctx(clock))
    if scheduler:
        app.cleanup_ctx.append(_scheduler_ctx(clock))
    setup_routes(app)
    setup_templates(app)
    # Feature modules register their routes (and any middleware or cleanup) below.
    setup_admin(app)
    setup_metrics(app)
    setup_status(app)
    setup_pages(app)
    setup_widget(app)
    setup_disclosure(app)
    setup_feed(app)
    disclosure_pages.setup_pages(app)
    return app


def _database_ctx(given: db.Target | None) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        cfg = app[keys.CONFIG]
        if given is not None:
            async for _ in _with_pool(app, cfg, given):
                yield
            return
        async with db.database_target(cfg) as target:
            async for _ in _with_pool(app, cfg, target):
                yield
    return ctx


async def _with_pool(app: web.Application, cfg: Config, target: db.Target) -> AsyncIterator[None]:
    metrics = app.get(keys.METRICS)
    pool = await db.create_pool(target, cfg, metrics.query_logged if metrics else None)
    supervision: asyncio.Task[None] | None = None
    try:
        async def prepare() -> None:
            async with pool.acquire() as conn:
                applied = await migrations.migrate(conn)
                app[keys.MIGRATION_VERSION] = await migrations.current_version(conn)
                log.info("database at migration %d (%d applied now)",
                         app[keys.MIGRATION_VERSION], len(applied))
                await stations.sync_stations(conn, cfg.stations, app[keys.EXTRA_STATIONS])

        await retry_on_outage("migrations and station sync", prepare)
        app[keys.POOL] = pool
        app[keys.DSN] = target.dsn
        if target.embedded is not None:
            up = metrics.db_embedded_up if metrics else None
            app[keys.EMBEDDED], supervision = supervise(
                target.embedded, pool, cfg.database,
                on_restart=metrics.db_embedded_restarts.inc if metrics else None,
                on_state=up.set if up is not None else None)
        yield
    finally:
        if supervision is not None:
            supervision.cancel()
            await asyncio.wait([supervision])   # a crash of it was logged when it ended
        await pool.close()


def _simulator_ctx(clock: Clock) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        from aqi_service.simulator import Simulator, run_simulator, simulator_url

        cfg = app[keys.CONFIG]
        sim = Simulator(_sim_stations(cfg), seed=cfg.simulator.seed,
                        extra_stations=cfg.simulator.extra_stations, clock=clock,
                        publish_delay_s=cfg.simulator.publish_delay_s)
        runner = await run_simulator(sim, cfg.simulator.host, cfg.simulator.port)
        app[keys.SIMULATOR_URL] = simulator_url(runner)
        log.info("station simulator for %d stations at %s", len(sim.stations),
                 app[keys.SIMULATOR_URL])
        try:
            yield
        finally:
            await runner.cleanup()
    return ctx


async def _client_ctx(app: web.Application) -> AsyncIterator[None]:
    session = create_session(app[keys.CONFIG].collection)
    app[keys.CLIENT] = session
    try:
        yield
    finally:
        await session.close()


def _instance_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _collector_ctx(clock: Clock) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        cfg = app[keys.CONFIG]
        app[keys.COLLECTOR] = Collector(
            app[keys.POOL], app[keys.CLIENT], cfg, app.get(keys.SIMULATOR_URL),
            extra_stations=app[keys.EXTRA_STATIONS], clock=clock, instance=_instance_name(),
            events=app.get(keys.METRICS))
        yield
    return ctx


def _snapshot_ctx(clock: Clock) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await retry_on_outage("the first /now snapshot", lambda: refresh_snapshot(app, clock))
        yield
    return ctx


async def refresh_snapshot(app: web.Application, clock: Clock) -> None:
    """Rebuild the /now snapshot."""
    async with app[keys.POOL].acquire() as conn:
        await app[keys.SNAPSHOT].refresh(conn, clock())


def _scheduler_ctx(clock: Clock) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        cfg = app[keys.CONFIG]
        collector = app[keys.COLLECTOR]
        leader = Leader(app[keys.DSN], collector.instance)
        metrics = app.get(keys.METRICS)
        schedule = Schedule(cfg, leader, on_event=metrics.job_event if metrics else None)
        app[keys.LEADER] = leader
        app[keys.SCHEDULE] = schedule

        retries = {"attempt": 0}

        async def collected(summary: RunSummary, refresh: bool = True) -> None:
            """After a run: a failed one is retried with back-off; /now is refreshed."""
            if summary.status == "failed":
                retries["attempt"] += 1
                schedule.retry_later(retry, retries["attempt"])
            else:
                retries["attempt"] = 0
            if refresh:
                await refresh_snapshot(app, clock)

        async def collect() -> None:
            await collected(await collector.run("scheduled"))

        async def catch_up() -> None:
            await collected(await collector.run("catch-up", only_missing=True))

        async def retry() -> None:
            await collected(await collector.run("retry"))

        async def daily() -> None:
            yesterday = (clock().astimezone(derive.SHANGHAI) - timedelta(days=1)).date()
            await run_daily(app, yesterday, clock)

        async def maintenance() -> None:
            async with app[keys.POOL].acquire() as conn:
                now = clock()
                await ensure_partitions(conn, now, now + timedelta(days=95))

        async def startup() -> None:
            try:
                summary = await startup_collection(app, clock)
            except Exception:  # the database is down: the start-up work is retried
                retries["attempt"] += 1
                schedule.retry_later(startup, retries["attempt"])
                raise
            await collected(summary, refresh=False)

        schedule.add_jobs(collect, catch_up, daily, maintenance, startup)
        schedule.scheduler.add_job(refresh_snapshot, "interval", minutes=1, args=(app, clock),
                                   id="snapshot")
        await schedule.start()
        try:
            yield
        finally:
            await schedule.stop()
    return ctx


async def run_daily(app: web.Application, day: date, clock: Clock) -> None:
    """Daily records of every station and the city for ``day`` (even if incomplete)."""
    cfg = app[keys.CONFIG]
    codes = [s.code for s in cfg.stations] + [s.code for s in app[keys.EXTRA_STATIONS]]
    async with app[keys.POOL].acquire() as conn:
        await derive.derive_days(conn, codes, [day], cfg.city.code,
                                 [s.code for s in cfg.stations], clock(),
                                 "daily report", None, variant=cfg.aqi.hourly_2012)


async def startup_collection(app: web.Application, clock: Clock) -> RunSummary:
    """On taking the lead (at start, after an outage, on take-over): close the runs left
    'running' by processes that are gone, give stations that never answered their initial
    back-fill, collect (pending records are derived first), then refresh /now."""
    cfg = app[keys.CONFIG]
    collector = app[keys.COLLECTOR]
    col = cfg.collection
    target = hour_floor(clock())
    async with app[keys.POOL].acquire(timeout=col.db_acquire_timeout_s) as conn:
        # Records stored under another methodology are corrected first, as revisions.
        await recompute.on_start(conn, cfg.city.code, [s.code for s in cfg.stations],
                                 cfg.aqi.hourly_2012)
    async with app[keys.POOL].acquire(timeout=col.db_acquire_timeout_s) as conn:
        # This instance holds the leader lock: no other process runs a collection.
        keep = [collector.current_run] if collector.current_run else []
        closed = await runs.abandon_runs(
            conn, "its process ended or lost the lead before the run finished", keep)
        collector.closed_abandoned(closed)
        due: list[str] = []
        if col.initial_backfill_days > 0:
            due = await runs.plan_backfill(conn, [s.code for s in collector.stations],
                                           target - col.initial_backfill_days * 24 * HOUR)
    if due:
        days = col.initial_backfill_days
        log.info("initial back-fill of the last %d days for %d stations", days, len(due))
        summary = await collector.run("initial",
                                      progress=ProgressBar(f"back-filling {days} days"))
    else:
        summary = await collector.run("startup")
    await refresh_snapshot(app, clock)
    return summary
