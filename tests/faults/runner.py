"""The service as a real process on an accelerated clock (run by path, not imported).

Real time is too slow for hourly cycles, so this process builds the application with
``create_app(cfg, clock=...)`` where the clock runs ``--speed`` times faster than the wall
clock: ``sim = sim_epoch + (time.time() - real_epoch) * speed``. The clock is a function
of the wall clock alone, so a restarted process (after ``kill -9``) continues the same
simulated time, and the station simulator in the test process shares it.

The application runs with its real scheduler, leader election and start-up job; only the
cron-timed jobs (hourly collection, catch-ups, daily records, maintenance) cannot follow an
accelerated clock, so their triggers are pushed a year away and this process fires them
itself whenever simulated time crosses their minute (APScheduler then runs them exactly as
it would: leader guard, one instance at a time, job events and metrics). The leader check
runs every second instead of every 15 s, the same share of the scaled hour as 15 s is of
a real one is not observable.

SIGUSR1 stops firing the cron jobs (the service stays up): the suite reads the end state
between runs. Stations are polled over HTTP at ``--sim-url`` (the simulator lives in the
test process, so that it outlives the service and knows every value it falsified).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from aiohttp import web  # noqa: E402
from apscheduler.triggers.interval import IntervalTrigger  # noqa: E402

from aqi_service.aqi.schemes import SHANGHAI  # noqa: E402
from aqi_service.config import HttpSource, Secret, load_config  # noqa: E402
from aqi_service.web import keys  # noqa: E402
from aqi_service.web.app import create_app  # noqa: E402

log = logging.getLogger("faults.runner")
CRON_JOBS = ("collect", "catch_up", "daily", "maintenance")


class AcceleratedClock:
    """Simulated UTC time running ``speed`` times faster than the wall clock."""

    def __init__(self, sim_epoch: datetime, real_epoch: float, speed: float) -> None:
        self.sim_epoch = sim_epoch
        self.real_epoch = real_epoch
        self.speed = speed

    def __call__(self) -> datetime:
        return self.sim_epoch + timedelta(seconds=(time.time() - self.real_epoch) * self.speed)


def build_config(args: argparse.Namespace):
    """The shipped configuration, stations on the simulator, timeouts scaled down."""
    cfg = load_config(REPO / "config", env={})
    stations = tuple(
        replace(s, source="http",
                http=HttpSource(url=f"{args.sim_url}/stations/{{code}}/hourly"))
        for s in cfg.stations)
    database = {"pool_min": 1, "pool_max": 6, "connect_timeout_s": 2.0,
                "command_timeout_s": 10.0}
    if args.database_url:
        database["url"] = Secret(args.database_url)
    else:
        database["url"] = None
        database["data_dir"] = Path(args.data_dir)
    return cfg.replace(
        stations=stations,
        database=database,
        collection={"timeout_s": 1.5, "connect_timeout_s": 0.5, "retries": 1,
                    "backoff_s": 0.05, "initial_backfill_days": args.backfill_days},
        http={"port": args.port},
    )


def due_jobs(cfg, previous: datetime, now: datetime) -> list[str]:
    """Cron jobs whose local minute lies in (previous, now] of simulated time."""
    col = cfg.collection
    daily_h, daily_m = (int(x) for x in col.daily_at.split(":"))
    due: list[str] = []
    minute = previous.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while minute <= now:
        local = minute.astimezone(SHANGHAI)
        if local.minute == col.minute:
            due.append("collect")
        if local.minute in col.catch_up_minutes:
            due.append("catch_up")
        if (local.hour, local.minute) == (daily_h, daily_m):
            due.append("daily")
        if (local.hour, local.minute) == (3, 17):
            due.append("maintenance")
        minute += timedelta(minutes=1)
    return due


IDLE_CHECKS = 6
"""Consecutive idle readings (0.05 s apart) before the paused runner says it is idle."""


def _idle(app: web.Application) -> bool:
    """No collection asked for or running in this process, and no job due to start one
    (a job fired just before the pause may not have called the collector yet)."""
    collector = app.get(keys.COLLECTOR)
    if collector is not None and collector.pending:
        return False
    soon = datetime.now(UTC) + timedelta(seconds=1)
    return not any(job.next_run_time is not None and job.next_run_time <= soon
                   and job.id != "leader" for job in app[keys.SCHEDULE].scheduler.get_jobs())


async def drive(app: web.Application, clock: AcceleratedClock, stop: asyncio.Event,
                paused: asyncio.Event) -> None:
    """Fire the cron jobs at simulated time (not once ``paused``, so that the end state can
    be read between runs; once paused and idle, print ``{"idle": true}``); speed up the
    leader check."""
    cfg = app[keys.CONFIG]
    scheduler = app[keys.SCHEDULE].scheduler
    for job_id in CRON_JOBS:
        if scheduler.get_job(job_id) is not None:
            scheduler.reschedule_job(job_id, trigger=IntervalTrigger(days=365))
    scheduler.reschedule_job("leader", trigger=IntervalTrigger(seconds=1))
    previous = clock()
    quiet = 0
    while not stop.is_set():
        await asyncio.sleep(0.05)
        if paused.is_set() and quiet < IDLE_CHECKS:
            quiet = quiet + 1 if _idle(app) else 0
            if quiet == IDLE_CHECKS:
                print(json.dumps({"idle": True}), flush=True)
        now = clock()
        for job_id in [] if paused.is_set() else due_jobs(cfg, previous, now):
            job = scheduler.get_job(job_id)
            if job is not None:
                log.info("simulated %s: firing %s", now.isoformat(), job_id)
                job.modify(next_run_time=datetime.now(UTC))
        previous = now


async def main(args: argparse.Namespace) -> None:
    clock = AcceleratedClock(datetime.fromisoformat(args.sim_epoch), args.real_epoch,
                             args.speed)
    cfg = build_config(args)
    app = create_app(cfg, clock=clock)
    runner = web.AppRunner(app, access_log=None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    paused = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, paused.set)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", args.port).start()
        print(json.dumps({"listening": args.port}), flush=True)
        await drive(app, clock, stop, paused)
    finally:
        await runner.cleanup()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database-url", help="PostgreSQL URL (else the embedded server)")
    p.add_argument("--data-dir", help="data folder of the embedded server")
    p.add_argument("--sim-url", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sim-epoch", required=True, help="simulated time at --real-epoch")
    p.add_argument("--real-epoch", type=float, required=True, help="a time.time() value")
    p.add_argument("--speed", type=float, required=True, help="simulated s per real s")
    p.add_argument("--backfill-days", type=int, default=5)
    return p.parse_args(argv)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(main(parse_args()))
