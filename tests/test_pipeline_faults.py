"""The collection pipeline's failure paths, one test per finding of the fault review.

Real PostgreSQL, the real simulator over loopback, real processes: a session terminated
while it writes (``pg_terminate_backend``), a database that refuses connections
(``ALTER DATABASE … ALLOW_CONNECTIONS false``), ``kill -9`` of ``serve`` between the
observations and their records, a station timing out on one chunk of the initial
back-fill, a leader that loses its lock and takes it back. Every wait is on a condition
with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from clock_support import FakeClock
from service_support import wait_for

from aqi_service.collect import derive
from aqi_service.collect.client import create_session
from aqi_service.collect.collector import MAX_REQUEST_HOURS, Collector, hour_floor
from aqi_service.collect.scheduler import Leader, Schedule
from aqi_service.config import Config, HttpSource
from aqi_service.simulator import SimStation, Simulator, run_simulator, simulator_url
from aqi_service.storage import runs, stations
from aqi_service.web import keys
from aqi_service.web.app import create_app, startup_collection

pytestmark = pytest.mark.db

REPO = Path(__file__).resolve().parent.parent
HOUR = timedelta(hours=1)
DAYS = 30
CODES = [f"LF{i:02d}" for i in range(1, 12)]


async def fetchval(dsn: str, sql: str, *args: object) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def blocked_backends(admin: asyncpg.Connection) -> list[int]:
    """Sessions of the test database waiting for a lock the admin session holds."""
    rows = await admin.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
    return [r["pid"] for r in rows]


async def assert_complete(pool: asyncpg.Pool, target: datetime, hours: int) -> None:
    """Every station-hour of the window stored exactly once, with its station and city
    records, and those records equal to a fresh recomputation from the observations."""
    first = target - (hours - 1) * HOUR
    async with pool.acquire() as conn:
        obs = await conn.fetch(
            "SELECT station_code, count(*) AS n, count(DISTINCT hour_end) AS h FROM observations "
            "WHERE hour_end BETWEEN $1 AND $2 GROUP BY 1 ORDER BY 1", first, target)
        assert [(r["station_code"], r["n"], r["h"]) for r in obs] == [
            (c, hours * 6, hours) for c in CODES]
        recs = await conn.fetch(
            "SELECT station_code, count(*) AS n FROM station_hourly "
            "WHERE hour_end BETWEEN $1 AND $2 GROUP BY 1 ORDER BY 1", first, target)
        assert [(r["station_code"], r["n"]) for r in recs] == [(c, hours) for c in CODES]
        assert await conn.fetchval("SELECT count(*) FROM city_hourly WHERE hour_end BETWEEN "
                                   "$1 AND $2", first, target) == hours
        assert await conn.fetchval("SELECT count(*) FROM derive_pending") == 0
        assert await conn.fetchval(
            "SELECT count(*) FROM collection_runs WHERE status = 'running'") == 0
        # A fresh recomputation of everything changes nothing (rolled back either way).
        tx = conn.transaction()
        await tx.start()
        try:
            changed = {c: {first + k * HOUR for k in range(hours)} for c in CODES}
            again = await derive.derive_stations(conn, changed, target, "recheck")
            await derive.derive_city(conn, changed, target, "131000", CODES, "recheck",
                                     result=again)
        finally:
            await tx.rollback()
    for table, counts in again.written.items():
        assert (table, counts.inserted, counts.updated) == (table, 0, 0)


@dataclass
class Rig:
    sim: Simulator
    collector: Collector
    pool: asyncpg.Pool
    clock: FakeClock
    config: Config
    dsn: str


@pytest.fixture
async def rig(config: Config, pool: asyncpg.Pool, clock: FakeClock, db_dsn: str,
              ) -> AsyncIterator[Rig]:
    sim = Simulator([SimStation(s.code, s.lat, s.lon, s.name_zh) for s in config.stations],
                    seed=2014, clock=clock)
    runner = await run_simulator(sim, "127.0.0.1", 0)
    async with pool.acquire() as conn:
        await stations.sync_stations(conn, config.stations)
    session = create_session(config.collection)
    # A COPY cut while the client's writes are paused (the server stopped reading) is only
    # ended by the step's time limit: kept short here.
    cfg = config.replace(collection={"db_acquire_timeout_s": 5.0, "db_step_timeout_s": 15.0})
    collector = Collector(pool, session, cfg, simulator_url(runner), clock=clock)
    try:
        yield Rig(sim, collector, pool, clock, cfg, db_dsn)
    finally:
        await session.close()
        await runner.cleanup()


async def plan_initial(rig: Rig) -> datetime:
    target = hour_floor(rig.clock())
    async with rig.pool.acquire() as conn:
        assert len(await runs.plan_backfill(conn, CODES, target - DAYS * 24 * HOUR)) == 11
    return target


@pytest.mark.parametrize("table", ["observations", "station_hourly"])
async def test_a_session_terminated_mid_backfill_fails_the_run_and_the_next_repairs(
        rig: Rig, table: str) -> None:
    """Finding 1: the writer's (observations) or the deriver's (station_hourly) session is
    terminated while it writes the initial back-fill. The run ends failed with the reason,
    holding no lock; the next run completes every hour exactly once."""
    target = await plan_initial(rig)
    admin = await asyncpg.connect(rig.dsn)
    try:
        # The months exist beforehand, so the lock is met where the rows are written.
        await admin.execute("SELECT ensure_partitions($1, $2)", target - DAYS * 24 * HOUR,
                            target)
        tx = admin.transaction()
        await tx.start()
        await admin.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        run = asyncio.create_task(rig.collector.run("initial"))

        async def blocked() -> bool:
            return bool(await blocked_backends(admin))
        await wait_for(blocked, 30, f"the run never reached {table}")
        for pid in await blocked_backends(admin):
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
        await tx.rollback()
        summary = await asyncio.wait_for(run, 30)
    finally:
        await admin.close()
    assert summary.status == "failed"
    assert "terminat" in (summary.error or "").lower() or "connection" in (
        summary.error or "").lower(), summary.error
    async with rig.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT status, error, finished_at FROM collection_runs "
                                  "WHERE id = $1", summary.run_id)
    assert row["status"] == "failed" and row["error"] and row["finished_at"] is not None
    assert not rig.collector._lock.locked()

    again = await asyncio.wait_for(rig.collector.run("retry"), 60)
    assert again.status == "ok", again.error
    await assert_complete(rig.pool, target, DAYS * 24)


async def test_a_chunk_timeout_in_the_initial_backfill_is_resumed_by_later_runs(
        rig: Rig) -> None:
    """Finding 4: LF02 fails on its third 7-day chunk of the 30-day back-fill. The chunks
    answered before it are kept, its cursor stands at their end, and the next hourly run
    asks it back from there (not just the 72 h look-back): all hours end up stored."""
    target = await plan_initial(rig)
    since = target - DAYS * 24 * HOUR
    failing = since + 2 * MAX_REQUEST_HOURS * HOUR
    simulator = rig.collector.simulator_url
    requests: list[datetime] = []

    async def logger(request: web.Request) -> web.StreamResponse:
        """LF02's data logger: the simulator's answers, but a 503 for the third chunk."""
        asked = datetime.fromisoformat(request.query["since"])
        requests.append(asked)
        if asked == failing and fail["on"]:
            return web.json_response({"error": "busy"}, status=503)
        async with aiohttp.ClientSession() as s, s.get(
                f"{simulator}{request.path}", params=request.query) as resp:
            return web.Response(body=await resp.read(), status=resp.status,
                                content_type="application/json")

    fail = {"on": True}
    app = web.Application()
    app.router.add_get("/stations/{code}/hourly", logger)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        http = HttpSource(url=f"http://127.0.0.1:{port}/stations/{{code}}/hourly")
        cfg = replace(rig.config, stations=tuple(
            replace(s, source="http", http=http) if s.code == "LF02" else s
            for s in rig.config.stations))
        collector = Collector(rig.pool, rig.collector.session, cfg, simulator, clock=rig.clock)
        first = await collector.run("initial")
        assert first.outcomes["LF02"] == "http_5xx" and first.status == "partial"
        async with rig.pool.acquire() as conn:
            kept = await conn.fetchval("SELECT count(DISTINCT hour_end) FROM observations "
                                       "WHERE station_code = 'LF02'")
            cursor = await conn.fetchrow("SELECT answered_through, backfill_from FROM "
                                         "station_cursors WHERE station_code = 'LF02'")
        assert kept == 2 * MAX_REQUEST_HOURS   # the two chunks answered before the failure
        assert cursor["answered_through"] == failing
        assert cursor["backfill_from"] == since

        fail["on"] = False
        rig.clock.now += HOUR
        asked_before = len(requests)
        later = await collector.run("scheduled")
        assert later.status == "ok"
        # Resumed from its own progress (less the overlap), far beyond the 72 h look-back.
        assert requests[asked_before] == failing - cfg.collection.overlap_hours * HOUR
    finally:
        await runner.cleanup()
    await assert_complete(rig.pool, target + HOUR, DAYS * 24 + 1)
    async with rig.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM station_cursors "
                                   "WHERE backfill_from IS NOT NULL") == 0


@pytest.fixture
async def service(config: Config, clock: FakeClock) -> AsyncIterator[TestClient]:
    """The app (no scheduler timers) after a 2-day initial back-fill."""
    cfg = config.replace(collection={"initial_backfill_days": 2, "db_acquire_timeout_s": 3.0,
                                     "db_step_timeout_s": 20.0})
    app = create_app(cfg, scheduler=False, clock=clock)
    async with TestClient(TestServer(app)) as client:
        summary = await startup_collection(app, clock)
        assert summary.status == "ok"
        yield client


async def readyz(client: TestClient) -> tuple[int, dict]:
    resp = await client.get("/readyz")
    return resp.status, await resp.json()


async def failed_runs(client: TestClient) -> float:
    text = await (await client.get("/metrics")).text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("aqi_collector_runs_total{") and 'status="failed"' in line)


async def test_refused_connections_fail_the_run_readiness_tells_then_recovers(
        service: TestClient, pg_server: str, clock: FakeClock) -> None:
    """Finding 1: the database refuses connections (and its sessions are cut). The run
    fails at once instead of hanging; /readyz answers 503 with database_down and, the last
    success being over an hour old, collection_stalled; once connections are allowed
    again the next run succeeds and readiness comes back."""
    app = service.app
    pool = app[keys.POOL]
    name = urlsplit(app[keys.DSN]).path.lstrip("/")
    assert (await readyz(service))[0] == 200
    # The last success an hour and a half ago (as if the :05 run and its catch-ups were
    # missed): stalled, by the database's clock.
    async with pool.acquire() as conn:
        await conn.execute("UPDATE collection_runs SET finished_at = now() - interval "
                           "'90 minutes', started_at = now() - interval '91 minutes'")
    status, body = await readyz(service)
    assert status == 503 and body["problems"] == ["collection_stalled"]
    failed_before = await failed_runs(service)

    admin = await asyncpg.connect(pg_server)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = $1", name)
        clock.now += HOUR
        summary = await asyncio.wait_for(app[keys.COLLECTOR].run("scheduled"), 30)
        assert summary.status == "failed" and summary.error
        status, body = await readyz(service)
        assert status == 503
        assert {"database_down", "collection_stalled"} <= set(body["problems"]), body
        assert await failed_runs(service) == failed_before + 1
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
    again = await asyncio.wait_for(app[keys.COLLECTOR].run("retry"), 30)
    assert again.status == "ok", again.error
    status, body = await readyz(service)
    assert status == 200 and body["problems"] == [], body
    status_doc = await (await service.get("/api/v1/status")).json()
    assert status_doc["collector"]["problems"] == []
    assert status_doc["collector"]["last_run"]["status"] == "ok"


async def test_a_failed_last_run_and_stale_marks_make_readiness_fail(
        service: TestClient) -> None:
    """/readyz names collection_failing (with the reason) and derive_behind (observations
    waiting for their records longer than the grace); the next run clears both."""
    app = service.app
    async with app[keys.POOL].acquire() as conn:
        hour = await conn.fetchval("SELECT max(hour_end) FROM observations")
        await conn.execute(
            "INSERT INTO collection_runs (trigger, status, finished_at, error) "
            "VALUES ('scheduled', 'failed', now(), 'AdminShutdown: terminated')")
        await conn.execute(
            "INSERT INTO derive_pending (station_code, first_hour, last_hour, created_at) "
            "VALUES ('LF03', $1, $1, now() - interval '11 minutes')", hour)
        await conn.execute("DELETE FROM station_hourly WHERE station_code = 'LF03' "
                           "AND hour_end = $1", hour)
    status, body = await readyz(service)
    assert status == 503
    assert body["problems"] == ["collection_failing", "derive_behind"], body
    assert any("AdminShutdown" in r for r in body["reasons"])
    metrics = await (await service.get("/metrics")).text()
    assert "aqi_derive_pending 1.0" in metrics and "aqi_collection_stalled 0.0" in metrics
    summary = await app[keys.COLLECTOR].run("catch-up", only_missing=True)
    assert summary.status == "ok"
    status, body = await readyz(service)
    assert status == 200, body
    async with app[keys.POOL].acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM station_hourly WHERE "
                                   "station_code = 'LF03' AND hour_end = $1", hour) == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(dsn: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AQI_")}
    env.update(AQI_CONFIG_DIR=str(REPO / "config"), AQI_DATABASE_URL=dsn,
               PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, "-m", "aqi_service", "serve", "--port", str(port)],
        cwd=REPO, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def test_kill_9_between_observations_and_records_is_derived_at_restart(
        config: Config, db_dsn: str, tmp_path: Path) -> None:
    """Finding 2: ``serve`` is killed (SIGKILL) after the 30-day back-fill's observations
    are committed and while its records are being written. The next start closes the dead
    run as abandoned and derives every station and city hour."""
    now = datetime.now(UTC)
    blocker = hour_floor(now) - 100 * HOUR
    admin = await asyncpg.connect(db_dsn)
    log = tmp_path / "serve.log"
    proc = None
    try:
        # An uncommitted record of LF01 makes the deriver's first write wait (the unique
        # key), after the observations' transaction has committed.
        tx = admin.transaction()
        await tx.start()
        await admin.execute("INSERT INTO station_hourly (station_code, hour_end, scheme) "
                            "VALUES ('LF01', $1, 'HJ633-2026')", blocker)
        proc = _serve(db_dsn, free_port(), log)

        async def written_and_waiting() -> bool:
            assert proc.poll() is None, log.read_text()[-3000:]
            rows = await admin.fetchval("SELECT count(*) FROM observations")
            return rows >= 11 * DAYS * 24 * 6 and bool(await blocked_backends(admin))
        await wait_for(written_and_waiting, 90, "serve never stored the back-fill")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        await tx.rollback()
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        await admin.close()

    pool = await asyncpg.create_pool(db_dsn, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            dead = await conn.fetchrow("SELECT id, target_hour FROM collection_runs "
                                       "WHERE status = 'running'")
            assert dead is not None
            assert await conn.fetchval("SELECT count(*) FROM city_hourly") == 0
        cfg = config.replace(collection={"db_step_timeout_s": 60.0})
        app = create_app(cfg, scheduler=False)
        async with TestClient(TestServer(app)):
            await startup_collection(app, lambda: datetime.now(UTC))
        async with pool.acquire() as conn:
            row = await conn.fetchrow("SELECT status, error FROM collection_runs "
                                      "WHERE id = $1", dead["id"])
        assert row["status"] == "abandoned" and row["error"]
        target = dead["target_hour"]
        await assert_complete(pool, target, DAYS * 24)
    finally:
        await pool.close()


async def test_a_leader_that_loses_and_regains_the_lock_runs_a_catch_up(
        config: Config, db_dsn: str) -> None:
    """Finding 6: the instance that led from the start loses its lock (its session is
    terminated, as in a database outage) and takes it back: the take-over collection runs
    again, not just at the first start."""
    started: list[str] = []
    ran = asyncio.Event()

    async def startup() -> None:
        started.append("startup")
        ran.set()

    async def nothing() -> None:
        return None

    leader = Leader(db_dsn, "test-instance")
    schedule = Schedule(config, leader)
    schedule.add_jobs(nothing, nothing, nothing, nothing, startup)
    await schedule.start()
    try:
        await asyncio.wait_for(ran.wait(), 10)
        assert leader.is_leader and started == ["startup"]
        ran.clear()
        pid = leader._conn.get_server_pid()
        await fetchval(db_dsn, "SELECT pg_terminate_backend($1)", pid)

        async def gone() -> bool:
            return not await fetchval(db_dsn, "SELECT count(*) FROM pg_stat_activity "
                                      "WHERE pid = $1", pid)
        await wait_for(gone, 10, "the leader's session outlived its termination")

        # The session is gone, and the lock with it: a new session takes the lock back.
        assert await leader.check()
        await asyncio.wait_for(ran.wait(), 10)
        assert started == ["startup", "startup"]
    finally:
        await schedule.stop()


async def test_a_failed_run_is_retried_with_back_off_a_bounded_number_of_times(
        config: Config, db_dsn: str) -> None:
    cfg = config.replace(collection={"retry_after_s": 0.05, "retry_attempts": 2})
    leader = Leader(db_dsn, "test-instance")
    schedule = Schedule(cfg, leader)
    calls = asyncio.Queue[float]()
    loop = asyncio.get_running_loop()

    async def retry() -> None:
        calls.put_nowait(loop.time())

    async def nothing() -> None:
        return None

    schedule.add_jobs(nothing, nothing, nothing, nothing, nothing)
    await schedule.start()
    try:
        assert leader.is_leader
        asked = loop.time()
        assert schedule.retry_later(retry, 1)
        assert await asyncio.wait_for(calls.get(), 10) - asked >= 0.05
        asked = loop.time()
        assert schedule.retry_later(retry, 2)
        assert await asyncio.wait_for(calls.get(), 10) - asked >= 0.1
        assert not schedule.retry_later(retry, 3)
    finally:
        await schedule.stop()


async def test_a_run_waiting_for_the_lock_is_pending_before_the_database_shows_it(
        config: Config, pool: asyncpg.Pool, clock: FakeClock) -> None:
    """A run asked for while another holds the collector's lock is in no database row yet:
    whoever waits for collection to be idle (the fault suite's end-state check) must see it
    as pending, or it reads a run 'running' that finishes a moment later."""
    cfg = replace(config, stations=())
    session = create_session(cfg.collection)
    collector = Collector(pool, session, cfg, None, clock=clock)
    try:
        async with collector._lock:  # another run in progress
            queued = asyncio.ensure_future(collector.run("catch-up", only_missing=True))

            async def waits_for_the_lock() -> bool:  # counted, then blocked on the lock
                return collector.pending == 1
            await wait_for(waits_for_the_lock, 5, "the queued run reaches the lock")
            async with pool.acquire() as conn:
                rows = await conn.fetchval("SELECT count(*) FROM collection_runs")
            assert rows == 0, "the queued run is not in the database yet"
            assert collector.pending == 1
        summary = await asyncio.wait_for(queued, 10)
        assert collector.pending == 0
        async with pool.acquire() as conn:
            status = await conn.fetchval("SELECT status FROM collection_runs WHERE id = $1",
                                         summary.run_id)
        assert status == "ok"
    finally:
        await session.close()


async def test_a_stall_is_judged_by_the_schedule_s_clock(
        service: TestClient, clock: FakeClock) -> None:
    """The hourly schedule runs by the app's clock: when that clock moves past the expected
    interval (the hour plus the configured grace) with no successful run, collection is
    stalled, however few seconds the database's clock counted."""
    grace = service.app[keys.CONFIG].collection.stall_grace_minutes
    assert (await readyz(service))[0] == 200
    clock.now += timedelta(minutes=60 + grace - 1)
    status, body = await readyz(service)
    assert status == 200 and body["problems"] == [], body
    clock.now += timedelta(minutes=2)
    status, body = await readyz(service)
    assert status == 503 and body["problems"] == ["collection_stalled"], body
    metrics = await (await service.get("/metrics")).text()
    assert "aqi_collection_stalled 1.0" in metrics
    summary = await asyncio.wait_for(service.app[keys.COLLECTOR].run("scheduled"), 30)
    assert summary.status == "ok", summary.error
    status, body = await readyz(service)
    assert status == 200 and body["problems"] == [], body
