"""The world a fault scenario runs in: simulator, proxy, the service process, a watcher.

- ``World``: a fresh database, the fault proxy in front of its server, the station
  simulator (in this process, on the accelerated clock the service shares), and the
  service started as a real process (``runner.py``) that can be killed with SIGKILL and
  started again.
- ``Watcher``: polls ``/readyz`` all along and keeps every answer, so a scenario can say
  when a fault was first reported and when the service was ready again.
- Database faults: ``terminate_sessions`` (``pg_terminate_backend``),
  ``allow_connections`` (``ALTER DATABASE … ALLOW_CONNECTIONS``), ``kill_when`` (SIGKILL
  at a moment read from the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

import aiohttp
import asyncpg
from process_support import free_port, postgres_of

from aqi_service.config import Config, load_config
from aqi_service.simulator import FaultRates, SimStation, Simulator, run_simulator, simulator_url
from aqi_service.storage import migrations
from aqi_service.storage.embedded import DATABASE as EMBEDDED_DATABASE

from .checker import Verdict, check_end_state
from .proxy import FaultProxy

REPO = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("runner.py")
SPEED = 900.0
"""Simulated seconds per real second: one simulated hour lasts 4 s."""
HOUR_S = 3600.0 / SPEED
HOUR = timedelta(hours=1)
GRACE_MINUTES = 20
"""The hour is expected by the first catch-up (HH:20), as the snapshot expects it."""
EXPECTED_INTERVAL_S = (60 + GRACE_MINUTES) * 60 / SPEED
"""One expected interval in real seconds: the hourly schedule plus its grace."""
PROBE_TIMEOUT_S = 10.0
"""How long the watcher waits for /readyz (a fault is detected when the answer comes)."""


def postmaster_info(data_dir: Path) -> tuple[int, str] | None:
    """(pid, maintenance DSN) of the embedded server of ``data_dir``, from postmaster.pid."""
    try:
        lines = (data_dir / "pg" / "postmaster.pid").read_text().splitlines()
        pid, port, sockets = int(lines[0]), int(lines[3]), lines[4]
    except (OSError, IndexError, ValueError):
        return None
    return pid, f"postgresql://postgres@/postgres?host={sockets}&port={port}"


def with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


def upstream_of(dsn: str) -> tuple[str | None, int, str | None]:
    """(host, port, unix socket path) of a server DSN (``?host=/dir`` means a socket)."""
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "127.0.0.1"])[0]
    port = int(query.get("port", [parts.port or 5432])[0])
    if host.startswith("/"):
        return None, port, f"{host}/.s.PGSQL.{port}"
    return host, port, None


class Clock:
    """The accelerated clock (the runner's, see runner.AcceleratedClock)."""

    def __init__(self, sim_epoch: datetime, real_epoch: float, speed: float = SPEED) -> None:
        self.sim_epoch = sim_epoch
        self.real_epoch = real_epoch
        self.speed = speed

    def __call__(self) -> datetime:
        return self.sim_epoch + timedelta(seconds=(time.time() - self.real_epoch) * self.speed)

    def args(self) -> list[str]:
        return ["--sim-epoch", self.sim_epoch.isoformat(), "--real-epoch", repr(self.real_epoch),
                "--speed", repr(self.speed)]

    def real_at(self, sim: datetime) -> float:
        """The wall-clock time at which simulated time reaches ``sim``."""
        return self.real_epoch + (sim - self.sim_epoch).total_seconds() / self.speed


@dataclass
class Sample:
    """One answer of /readyz (``status`` None: no answer)."""

    t: float
    status: int | None
    problems: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    done: float = 0.0
    """When the answer came (``t`` is when it was asked)."""


class Watcher:
    """Polls /readyz every 0.2 s while running and keeps the answers."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.samples: list[Sample] = []
        self.stalled: list[tuple[float, float | None]] = []
        """(time, aqi_collection_stalled) read from /metrics about once a second."""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                t = time.time()
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/readyz") as resp:
                        body = await resp.json(content_type=None)
                        self.samples.append(Sample(
                            t, resp.status, tuple(body.get("problems") or ()),
                            tuple(body.get("reasons") or ()), time.time()))
                except (aiohttp.ClientError, TimeoutError, ValueError):
                    self.samples.append(Sample(t, None, done=time.time()))
                if len(self.samples) % 5 == 0:
                    self.stalled.append((t, await self._stalled_gauge(http)))
                await asyncio.sleep(0.2)

    async def _stalled_gauge(self, http: aiohttp.ClientSession) -> float | None:
        try:
            async with http.get(f"http://127.0.0.1:{self.port}/metrics") as resp:
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError):
            return None
        for line in text.splitlines():
            if line.startswith("aqi_collection_stalled "):
                return float(line.split()[1])
        return None

    def first(self, since: float, pred: Callable[[Sample], bool]) -> Sample | None:
        return next((s for s in self.samples if s.t >= since and pred(s)), None)


@dataclass
class Service:
    """One runner process."""

    proc: subprocess.Popen
    log: Path


@dataclass
class World:
    """Everything one scenario needs; ``async with World.create(...)`` cleans it up."""

    admin_dsn: str
    db_name: str
    cfg: Config
    clock: Clock
    proxy: FaultProxy
    sim: Simulator
    sim_runner: object
    rates: FaultRates
    seed: int
    backfill_days: int
    port: int
    log_dir: Path
    embedded_dir: Path | None = None
    service: Service | None = None
    starts: int = 0
    watcher: Watcher | None = None
    notes: list[str] = field(default_factory=list)
    truth: Simulator | None = None
    """The same loggers without on-demand faults (what they publish, for the checks)."""
    exits: list[str] = field(default_factory=list)
    """The service's exits on its own (each followed by a restart)."""
    paused_at: datetime | None = None
    _expect_down: bool = False
    _procs: list[subprocess.Popen] = field(default_factory=list)
    _supervisor: asyncio.Task[None] | None = None

    @property
    def db_dsn(self) -> str:
        """Direct connection to the scenario's database (not through the proxy)."""
        return with_database(self.admin_dsn, self.db_name)

    @property
    def proxied_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.proxy.port}/{self.db_name}"

    @classmethod
    @contextlib.asynccontextmanager
    async def create(cls, admin_dsn: str, log_dir: Path, *, seed: int = 2014,
                     rates: FaultRates | None = None, backfill_days: int = 5,
                     embedded: bool = False):
        """A fresh world. ``embedded``: the service runs its own embedded PostgreSQL in a
        new data folder (``admin_dsn`` is then only where the proxy points, unused)."""
        cfg = load_config(REPO / "config", env={})
        name = f"aqi_faults_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        data_dir = None
        if embedded:
            data_dir = Path(tempfile.mkdtemp(prefix="aqif-", dir="/tmp"))
            name = EMBEDDED_DATABASE
        else:
            admin = await asyncpg.connect(admin_dsn)
            try:
                await admin.execute(f'CREATE DATABASE "{name}"')
            finally:
                await admin.close()
            conn = await asyncpg.connect(with_database(admin_dsn, name))
            try:
                await migrations.migrate(conn)
            finally:
                await conn.close()
        host, port, unix = upstream_of(admin_dsn)
        proxy = await FaultProxy(host or "127.0.0.1", port, unix_path=unix).start()
        # Simulated time starts just after a collection minute, in real time's hour (the
        # partitions made by the migrations cover it).
        now = datetime.now(UTC)
        clock = Clock(now.replace(minute=cfg.collection.minute + 1, second=0, microsecond=0),
                      time.time())
        rates = rates or FaultRates()
        sim = Simulator([SimStation(s.code, s.lat, s.lon, s.name_zh) for s in cfg.stations],
                        seed=seed, clock=clock, rates=rates)
        runner = await run_simulator(sim, "127.0.0.1", 0)
        log_dir.mkdir(parents=True, exist_ok=True)
        world = cls(admin_dsn, name, cfg, clock, proxy, sim, runner, rates, seed, backfill_days,
                    free_port(), log_dir)
        world.truth = Simulator(list(sim.stations), seed=seed, clock=clock, rates=rates)
        world.embedded_dir = data_dir
        try:
            yield world
        finally:
            await world.shutdown()
            await runner.cleanup()
            await proxy.close()
            if data_dir is not None:
                for proc in postgres_of(data_dir):
                    proc.kill()
                shutil.rmtree(data_dir, ignore_errors=True)
            else:
                admin = await asyncpg.connect(admin_dsn)
                try:
                    await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
                    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                finally:
                    await admin.close()

    # -- the service process --------------------------------------------------------------

    async def start_service(self, timeout: float = 60.0, wait: bool = True) -> None:
        """Start the runner and (``wait``) wait until its HTTP port answers; the first
        back-fill may be well under way by then."""
        self.starts += 1
        log = self.log_dir / f"service-{self.starts}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AQI_")}
        env["PYTHONPATH"] = str(REPO)
        db_args = (["--data-dir", str(self.embedded_dir)] if self.embedded_dir
                   else ["--database-url", self.proxied_dsn])
        args = [sys.executable, str(RUNNER), *db_args, "--sim-url", simulator_url(self.sim_runner),
                "--port", str(self.port), "--backfill-days", str(self.backfill_days),
                *self.clock.args()]
        if self.service is not None and self.service.proc.poll() is None:
            raise AssertionError("start_service: the previous service process still runs")
        with log.open("ab") as out:
            proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=out,
                                    stderr=subprocess.STDOUT)
        self._procs.append(proc)
        self.service = Service(proc, log)
        self._expect_down = False
        if self._supervisor is None:
            self._supervisor = asyncio.ensure_future(self._supervise())
        if self.embedded_dir is not None:
            await self._find_embedded(timeout)
        if self.watcher is None:
            self.watcher = Watcher(self.port)
            self.watcher.start()
        if not wait:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"service exited ({proc.returncode}): {self.log_tail()}")
            if self.watcher.samples and self.watcher.samples[-1].status is not None \
                    and self.watcher.samples[-1].t > time.time() - 1:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"service not listening in {timeout} s: {self.log_tail()}")

    async def _find_embedded(self, timeout: float) -> None:
        """Point ``admin_dsn`` at the embedded server once the service has started it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = postmaster_info(self.embedded_dir)
            if info is not None:
                try:
                    conn = await asyncpg.connect(with_database(info[1], self.db_name),
                                                 timeout=2)
                except (OSError, asyncpg.PostgresError, TimeoutError):
                    pass
                else:
                    await conn.close()
                    self.admin_dsn = info[1]
                    return
            if self.service.proc.poll() is not None:
                raise AssertionError(f"service exited: {self.log_tail()}")
            await asyncio.sleep(0.2)
        raise AssertionError(f"embedded server not up in {timeout} s: {self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        if self.service is None:
            return ""
        return self.service.log.read_text(errors="replace")[-chars:]

    def kill9(self) -> None:
        """SIGKILL the service (for real: no clean-up runs)."""
        self._expect_down = True
        if self.service is not None and self.service.proc.poll() is None:
            self.service.proc.send_signal(signal.SIGKILL)
            self.service.proc.wait(10)

    async def stop_service(self) -> int | None:
        """SIGTERM, then wait (SIGKILL after 20 s)."""
        self._expect_down = True
        if self.service is None or self.service.proc.poll() is not None:
            return None
        self.service.proc.send_signal(signal.SIGTERM)
        for _ in range(200):
            if self.service.proc.poll() is not None:
                return self.service.proc.returncode
            await asyncio.sleep(0.1)
        self.kill9()
        return None

    async def shutdown(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self.watcher is not None:
            await self.watcher.stop()
        await self.stop_service()
        for proc in self._procs:  # never leave a service process behind
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)

    async def _supervise(self) -> None:
        """Start the service again when it exits on its own, as the deployment's restart
        policy does (docker-compose: ``restart: unless-stopped``); each exit is noted."""
        while True:
            await asyncio.sleep(0.2)
            svc = self.service
            if svc is None or self._expect_down or svc.proc.poll() is None:
                continue
            tail = svc.log.read_text(errors="replace").strip().splitlines()[-1:]
            self.exits.append(f"exit {svc.proc.returncode} after start {self.starts}: "
                              f"{tail[0][:300] if tail else ''}")
            await asyncio.sleep(1.0)
            with contextlib.suppress(AssertionError):
                await self.start_service()

    # -- simulated time -------------------------------------------------------------------

    async def sleep_hours(self, hours: float) -> None:
        await asyncio.sleep(hours * HOUR_S)

    async def until_sim(self, when: datetime) -> None:
        await asyncio.sleep(max(0.0, self.clock.real_at(when) - time.time()))

    def next_collection(self, after: datetime | None = None) -> datetime:
        """The next HH:05 of simulated time."""
        now = after or self.clock()
        mark = now.replace(minute=self.cfg.collection.minute, second=0, microsecond=0)
        return mark if mark > now else mark + HOUR

    # -- database faults ------------------------------------------------------------------

    async def admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.admin_dsn)

    async def terminate_sessions(self) -> int:
        """pg_terminate_backend of every session on the scenario's database."""
        conn = await self.admin()
        try:
            return int(await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()", self.db_name))
        finally:
            await conn.close()

    async def allow_connections(self, allowed: bool) -> None:
        conn = await self.admin()
        try:
            await conn.execute(
                f'ALTER DATABASE "{self.db_name}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        finally:
            await conn.close()

    async def kill_when(self, condition: str, timeout: float) -> bool:
        """SIGKILL the service as soon as ``condition`` (SQL, boolean) holds; False if it
        did not within ``timeout`` s. Polled without pause on a direct connection."""
        conn = await asyncpg.connect(self.db_dsn)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if await conn.fetchval(condition, self.db_name):
                    self.kill9()
                    return True
            return False
        finally:
            await conn.close()

    def pause_schedule(self) -> None:
        """No more scheduled runs (SIGUSR1 to the runner); the service stays up."""
        self.paused_at = self.clock()
        if self.service is not None and self.service.proc.poll() is None:
            self.service.proc.send_signal(signal.SIGUSR1)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until the paused service says no run is asked for or running (the database
        cannot tell a run queued in the process, not yet inserted), then until no run is
        ``running`` in the database."""
        deadline = time.monotonic() + timeout
        svc = self.service
        while svc is not None and svc.proc.poll() is None and time.monotonic() < deadline:
            if b'{"idle": true}' in svc.log.read_bytes():
                break
            await asyncio.sleep(0.1)
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                conn = await asyncpg.connect(self.db_dsn)
                try:
                    running = await conn.fetchval(
                        "SELECT count(*) FROM collection_runs WHERE status = 'running'")
                finally:
                    await conn.close()
                if running == 0:
                    return True
            await asyncio.sleep(0.1)
        return False

    async def metrics(self) -> dict[str, float]:
        """The service's /metrics as {sample name with labels: value}."""
        out: dict[str, float] = {}
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http, \
                    http.get(f"http://127.0.0.1:{self.port}/metrics") as resp:
                text = await resp.text()
            for line in text.splitlines():
                if line and not line.startswith("#"):
                    name, _, value = line.rpartition(" ")
                    with contextlib.suppress(ValueError):
                        out[name] = float(value)
        return out

    async def check(self) -> Verdict:
        """The end state (see checker) up to the hour that should have been collected when
        the schedule was paused (or now)."""
        at = self.paused_at or self.clock()
        last = (at - timedelta(minutes=GRACE_MINUTES)).replace(minute=0, second=0,
                                                               microsecond=0)
        return await check_end_state(self.db_dsn, self.admin_dsn, self.cfg, seed=self.seed,
                                     rates=self.rates, backfill_days=self.backfill_days,
                                     last_hour=last, at=at)


async def retry(func: Callable[[], Awaitable[object]], attempts: int = 3) -> object:
    for k in range(attempts):
        try:
            return await func()
        except (OSError, asyncpg.PostgresError):
            if k == attempts - 1:
                raise
            await asyncio.sleep(0.2)
    return None


def dump(obj: object) -> str:
    return json.dumps(obj, default=str)
