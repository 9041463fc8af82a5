"""Feeds: ``/api/v1/now`` against an aiohttp hello world, the CSV export against psql COPY.

What it measures
    (a) ``GET /api/v1/now`` of the running service with Debian's ``wrk`` (requests/s and the
        99th percentile of latency), and the 304 path: the same request with
        ``If-None-Match`` set to the current ETag by a wrk Lua script.
        Baseline (same run): an aiohttp hello world (``text/plain`` "Hello, World!", no
        middleware, no access log) in its own process, under the same wrk load.
        ``now_ratio`` = /now requests/s ÷ hello-world requests/s.
    (b) ``GET /api/v1/download/hourly.csv`` of every station over the whole stored range
        (by default two years of synthetic station-hours plus the back-filled month, about
        200,000 rows), fetched by ``curl`` without compression; curl's output is read
        through a pipe by this process, which counts the lines; rows/s = data rows ÷
        seconds from starting curl to the end of its output. The server's resident set is
        sampled every 10 ms during the export (``export_peak_rss_mb``).
        Baseline (same run): ``psql -c "COPY (SELECT h.*, s.name_zh FROM station_hourly h
        JOIN stations s … same stations, same range, same order) TO STDOUT WITH (FORMAT
        csv, HEADER)"``, its output read through a pipe the same way. Both must give the
        number of rows ``count(*)`` finds.
        ``export_ratio`` = export rows/s ÷ psql rows/s.

Set-up
    The database is an embedded PostgreSQL in a temporary directory under /tmp (removed at
    the end), or ``--database-url`` (a role with CREATEDB) where a scratch database
    ``aqif_<pid>`` is created and dropped afterwards. The service runs as its own process,
    ``python -m aqi_service serve`` on 127.0.0.1 with its scheduler and the built-in station
    simulator: on the empty database it back-fills ``--backfill-days`` (default 30) days of
    the 11 stations, which is what ``/now`` then serves. The export's extra years are
    written with one SQL ``INSERT … SELECT FROM generate_series`` (deterministic decimals,
    some missing and flagged values), ending before the back-filled days; then
    ``VACUUM (ANALYZE)`` and ``CHECKPOINT``. Every wrk run is ``-t1 -c<connections>`` for
    ``--seconds`` (default 4) after a 1 s warm-up; hello world and /now alternate
    ``--repeat`` times (default 3) and the best of each counts; exports and COPYs
    alternate ``--repeat`` + 1 times, best of each. On a machine with two or more CPUs the
    two HTTP servers are pinned to the last CPU and wrk to the others (``--no-pin``: not),
    so that neither side shares its CPU with the load generator.

Output
    A table, then as the last line a JSON object ``{"now_rps", "hello_rps", "now_ratio",
    "now_p99_ms", "now_304_rps", "export_rows_per_s", "copy_rows_per_s", "export_ratio",
    "export_peak_rss_mb"}``. Targets: now_ratio ≥ 0.8, now_p99_ms < 20, export_ratio ≥ 0.5.

Run from the repository root::

    .venv/bin/python bench/feeds.py [--database-url postgresql://…] [--backfill-days 30]
                                    [--export-years 2] [--seconds 4] [--connections 100]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
import asyncpg
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aqi_service.aqi.schemes import SHANGHAI  # noqa: E402

WRK = "/usr/bin/wrk"
PSQL = "/usr/bin/psql"
CURL = "/usr/bin/curl"
CODES = [f"LF{i:02d}" for i in range(1, 12)]
TARGET_NOW_RATIO = 0.8
TARGET_P99_MS = 20.0
TARGET_EXPORT_RATIO = 0.5
MB = 1024 * 1024

HELLO = """
import sys
from aiohttp import web

async def hello(request):
    return web.Response(text="Hello, World!")

app = web.Application()
app.router.add_get("/", hello)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""

# n: hour number, k: station number; decimals (numeric) stored as float8, like the records.
LOAD = """
INSERT INTO station_hourly (
    station_code, hour_end, scheme, flags, so2, no2, co, o3, pm10, pm2_5,
    so2_24h, no2_24h, co_24h, o3_8h, o3_24h, o3_8h_24h, pm10_24h, pm2_5_24h,
    so2_24h_hours, no2_24h_hours, co_24h_hours, o3_8h_hours, o3_24h_hours,
    o3_8h_24h_hours, pm10_24h_hours, pm2_5_24h_hours,
    iaqi_so2, iaqi_no2, iaqi_co, iaqi_o3, iaqi_pm10, iaqi_pm2_5,
    aqi, computed_aqi, level, primary_mask, missing_mask)
SELECT s.code, g.t,
    CASE WHEN g.t <= '2026-03-01 00:00+08' THEN 'HJ633-2012' ELSE 'HJ633-2026' END,
    CASE WHEN g.n % 101 = 0 THEN '{"so2": "M"}'::jsonb END,
    CASE WHEN g.n % 101 <> 0 THEN ((g.n * 7 + s.k * 13) % 2000)::numeric / 10 END,
    ((g.n * 11 + s.k) % 3000)::numeric / 10, ((g.n * 17 + s.k * 3) % 9000)::numeric / 1000,
    ((g.n * 19 + s.k) % 4000)::numeric / 10, ((g.n * 23 + s.k) % 6000)::numeric / 10,
    CASE WHEN g.n % 53 <> 0 THEN ((g.n * 29 + s.k * 7) % 5000)::numeric / 10 END,
    ((g.n * 7919 + s.k * 104729) % 300000000)::numeric / 1000000,
    ((g.n * 6007 + s.k * 7) % 200000000)::numeric / 1000000,
    ((g.n * 3001 + s.k) % 9000000)::numeric / 1000000,
    ((g.n * 9001 + s.k) % 400000000)::numeric / 1000000,
    ((g.n * 4001 + s.k) % 500000000)::numeric / 1000000,
    ((g.n * 5003 + s.k) % 400000000)::numeric / 1000000,
    ((g.n * 2003 + s.k) % 600000000)::numeric / 1000000,
    ((g.n * 1009 + s.k) % 500000000)::numeric / 1000000,
    20, 21, 22, 6, 24, 17, 23, 24,
    (g.n * 3 % 501)::smallint, (g.n * 5 % 501)::smallint, (g.n * 7 % 501)::smallint,
    (g.n * 11 % 501)::smallint, (g.n * 13 % 501)::smallint, (g.n * 17 % 501)::smallint,
    ((g.n + s.k) % 501)::smallint, ((g.n + s.k) % 501)::smallint,
    (1 + (g.n + s.k) % 6)::smallint, ((g.n * 7 + s.k) % 64)::smallint, 0
FROM unnest($1::text[]) WITH ORDINALITY AS s(code, k),
     generate_series($2::timestamptz, $3::timestamptz, interval '1 hour')
         WITH ORDINALITY AS g(t, n)
"""
BASELINE_COPY = """COPY (SELECT h.*, s.name_zh
FROM station_hourly h JOIN stations s ON s.code = h.station_code
WHERE h.station_code = ANY('{{{codes}}}'::text[])
  AND h.hour_end >= '{first}' AND h.hour_end <= '{last}'
ORDER BY h.station_code, h.hour_end) TO STDOUT WITH (FORMAT csv, HEADER)"""


def _say(line: str = "") -> None:
    print(line, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dsn_for(base: str, database: str) -> str:
    return urlunsplit(urlsplit(base)._replace(path="/" + database))


# --- processes ---------------------------------------------------------------------------


class Process:
    """A child process (its output in a log file), stopped politely at the end."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.popen = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                          env=env, cwd=cwd)
        self.ps = psutil.Process(self.popen.pid)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.popen.terminate()
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


class PeakRss:
    """Largest resident set of a process, sampled every 10 ms while in the block."""

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.peak = process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.01)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def _wait_http(session: aiohttp.ClientSession, url: str, proc: Process,
                     ready: object = None, timeout: float = 300) -> None:
    """Wait until ``url`` answers 200 (and, for JSON, ``ready(body)`` holds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise SystemExit(f"process exited; see {proc.log}")
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(url) as resp:
                if resp.status == 200 and (ready is None or ready(await resp.json())):
                    return
        await asyncio.sleep(0.5)
    raise SystemExit(f"{url} not ready after {timeout:.0f} s; see {proc.log}")


# --- wrk ---------------------------------------------------------------------------------


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    bad: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * _UNITS[unit]


CLIENT_CPUS: set[int] | None = None
"""CPUs wrk runs on (``pin_cpus``); None: wherever the scheduler puts it."""


def pin_cpus(servers: list[Process]) -> str:
    """Give the HTTP servers the last CPU and wrk the others, the same for both sides.

    A single-threaded server and its load generator then never share a CPU, nor does the
    server migrate between CPUs mid-run: the two sides are measured under the same
    conditions, and runs repeat far more closely on a busy machine.
    """
    global CLIENT_CPUS
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return "not pinned (one CPU)"
    for server in servers:
        for thread in server.ps.threads():   # the threads alive now; later ones inherit
            os.sched_setaffinity(thread.id, {cpus[-1]})
    CLIENT_CPUS = set(cpus[:-1])
    return f"servers on CPU {cpus[-1]}, wrk on CPU {','.join(map(str, cpus[:-1]))}"


def wrk(url: str, seconds: float, connections: int, script: Path | None = None,
        header: str | None = None) -> WrkResult:
    """One wrk run (one thread) with the latency distribution."""
    args = [WRK, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if header:
        args += ["-H", header]
    if script:
        args += ["-s", str(script)]
    pin = CLIENT_CPUS
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True,
                         preexec_fn=(lambda: os.sched_setaffinity(0, pin)) if pin else None
                         ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M)[1])
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M)[1])
    requests = int(re.search(r"(\d+) requests in", out)[1])
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    return WrkResult(rps, p50, p99, requests,
                     (int(bad[1]) if bad else 0) + (sum(map(int, errors.groups()))
                                                    if errors else 0))


def best(results: list[WrkResult]) -> WrkResult:
    return max(results, key=lambda r: r.rps)


# --- data --------------------------------------------------------------------------------


async def load_years(dsn: str, years: int, before: datetime) -> tuple[datetime, int]:
    """Station-hours of ``years`` years ending before ``before``; (first hour, rows)."""
    last = before.astimezone(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
    first = last - timedelta(days=365 * years) + timedelta(hours=1)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT ensure_partitions($1, $2)", first, last)
        status = await conn.execute(LOAD, CODES, first, last)
        await conn.execute("VACUUM (ANALYZE) station_hourly")
        with contextlib.suppress(asyncpg.PostgresError):
            await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    return first, int(status.split()[-1])


async def count_rows(dsn: str, first: datetime, last: datetime) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(
            "SELECT count(*) FROM station_hourly WHERE station_code = ANY($1::text[]) "
            "AND hour_end >= $2 AND hour_end <= $3", CODES, first, last))
    finally:
        await conn.close()


# --- export ------------------------------------------------------------------------------


def _piped(args: list[str]) -> tuple[int, float, int]:
    """(data rows, seconds, bytes) of a command's CSV output, read here as it arrives."""
    lines = size = 0
    started = time.perf_counter()
    with subprocess.Popen(args, stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        while chunk := proc.stdout.read1(1 << 16):
            lines += chunk.count(b"\n")
            size += len(chunk)
    elapsed = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"{args[0]} failed with status {proc.returncode}")
    return lines - 1, elapsed, size


def export_http(url: str) -> tuple[int, float, int]:
    """The CSV download by curl (no compression asked, as psql's output is plain)."""
    return _piped([CURL, "-sS", "--fail", "-H", "Accept-Encoding: identity", url])


def export_psql(dsn: str, first: datetime, last: datetime) -> tuple[int, float, int]:
    """The same rows by psql's COPY."""
    sql = BASELINE_COPY.format(codes=",".join(CODES), first=first.isoformat(),
                               last=last.isoformat())
    return _piped([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", sql])


# --- main --------------------------------------------------------------------------------


@contextlib.contextmanager
def database(url: str | None) -> Iterator[str]:
    """A maintenance DSN: the given server, or an embedded one in a temporary folder."""
    if url:
        yield url
        return
    from aqi_service.storage.embedded import EmbeddedPostgres

    folder = Path(tempfile.mkdtemp(prefix="aqif-", dir="/tmp"))
    server = EmbeddedPostgres(folder)
    params = server.start()
    try:
        yield f"postgresql://{params.user}@/postgres?host={params.host}&port={params.port}"
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


async def bench(args: argparse.Namespace, base: str, work: Path) -> dict[str, float]:
    name = f"aqif_{os.getpid()}"
    admin = await asyncpg.connect(base)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = _dsn_for(base, name)
    port, hello_port = _free_port(), _free_port()
    env = {**os.environ, "AQI_DATABASE_URL": dsn, "AQI_HTTP_PORT": str(port),
           "AQI_HTTP_HOST": "127.0.0.1", "AQI_CONFIG_DIR": str(ROOT / "config"),
           "AQI_COLLECTION_INITIAL_BACKFILL_DAYS": str(args.backfill_days)}
    started = time.perf_counter()
    service = Process([sys.executable, "-m", "aqi_service", "serve"], work / "service.log",
                      env=env, cwd=work)
    hello = Process([sys.executable, "-c", HELLO, str(hello_port)], work / "hello.log")
    now_url = f"http://127.0.0.1:{port}/api/v1/now"
    hello_url = f"http://127.0.0.1:{hello_port}/"
    try:
        timeout = aiohttp.ClientTimeout(total=600)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await _wait_http(session, now_url, service,
                             lambda body: body.get("data_as_of") is not None)
            await _wait_http(session, hello_url.rstrip("/") + "/", hello, None, 60)
            _say(f"service up with {args.backfill_days} days back-filled from the simulator "
                 f"in {time.perf_counter() - started:.1f} s (database {name})")
            first, loaded = await load_years(dsn, args.export_years,
                                             datetime.now(timezone.utc)
                                             - timedelta(days=args.backfill_days + 1))
            last = datetime.now(timezone.utc)
            rows = await count_rows(dsn, first, last)
            _say(f"loaded {loaded:,} synthetic station-hours by SQL; the export covers "
                 f"{rows:,} rows ({first.isoformat()} … now)")

            async with session.get(now_url) as resp:
                etag, now_size = resp.headers["ETag"], len(await resp.read())
            async with session.get(now_url, headers={"If-None-Match": etag}) as resp:
                if resp.status != 304:
                    raise SystemExit(f"/now answered {resp.status} to its own ETag")
            script = work / "not-modified.lua"
            script.write_text(f"wrk.headers[\"If-None-Match\"] = '{etag}'\n")

            pinning = pin_cpus([service, hello]) if args.pin else "not pinned (--no-pin)"
            wrk(hello_url, 1, args.connections)
            wrk(now_url, 1, args.connections)
            hellos, nows, not_modified, gzipped = [], [], [], []
            for _ in range(args.repeat):
                hellos.append(wrk(hello_url, args.seconds, args.connections))
                nows.append(wrk(now_url, args.seconds, args.connections))
                not_modified.append(wrk(now_url, args.seconds, args.connections, script))
                gzipped.append(wrk(now_url, args.seconds, args.connections,
                                   header="Accept-Encoding: gzip"))
            async with session.get(now_url) as resp:
                if resp.headers["ETag"] != etag:
                    _say("note: /now changed during the 304 runs (a new snapshot)")
            h, n, nm, gz = best(hellos), best(nows), best(not_modified), best(gzipped)
            if any(r.bad for r in (*hellos, *nows, *not_modified, *gzipped)):
                raise SystemExit("wrk saw errors or non-2xx/3xx responses")

            export_url = f"http://127.0.0.1:{port}/api/v1/download/hourly.csv?" + urlencode(
                {"stations": ",".join(CODES), "from": first.isoformat(),
                 "to": last.isoformat()})
            rss_before = service.ps.memory_info().rss
            exports, copies, peak = [], [], rss_before
            for _ in range(args.repeat + 1):
                with PeakRss(service.ps) as sampler:
                    exports.append(await asyncio.to_thread(export_http, export_url))
                peak = max(peak, sampler.peak)
                copies.append(await asyncio.to_thread(export_psql, dsn, first, last))
            for got, _, _ in (*exports, *copies):
                if got != rows:
                    raise SystemExit(f"an export gave {got} rows, expected {rows}")
            ex, cp = min(exports, key=lambda e: e[1]), min(copies, key=lambda e: e[1])
    finally:
        service.stop()
        hello.stop()
        admin = await asyncpg.connect(base)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    export_rps, copy_rps = rows / ex[1], rows / cp[1]
    out = {
        "now_rps": n.rps, "hello_rps": h.rps, "now_ratio": n.rps / h.rps,
        "now_p99_ms": n.p99_ms, "now_304_rps": nm.rps, "now_gzip_rps": gz.rps,
        "export_rows_per_s": export_rps, "copy_rows_per_s": copy_rps,
        "export_ratio": export_rps / copy_rps, "export_peak_rss_mb": peak / MB,
    }
    _say()
    _say(f"wrk -t1 -c{args.connections} -d{args.seconds}s, best of {args.repeat}; "
         f"/now body {now_size:,} bytes; {pinning}")
    _say(f"{'what':<34}{'req/s':>12}{'p50 ms':>10}{'p99 ms':>10}")
    for label, r in (("aiohttp hello world (baseline)", h), ("/api/v1/now", n),
                     ("/api/v1/now, If-None-Match → 304", nm),
                     ("/api/v1/now, Accept-Encoding: gzip", gz)):
        _say(f"{label:<34}{r.rps:>12,.0f}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}")
    _say(f"CSV export, {rows:,} rows, best of {args.repeat + 1}")
    _say(f"{'what':<34}{'rows/s':>12}{'seconds':>10}{'MB':>10}")
    _say(f"{'hourly.csv over HTTP':<34}{export_rps:>12,.0f}{ex[1]:>10.2f}{ex[2] / MB:>10.1f}")
    _say(f"{'psql COPY (baseline)':<34}{copy_rps:>12,.0f}{cp[1]:>10.2f}{cp[2] / MB:>10.1f}")
    _say(f"server RSS {rss_before / MB:.1f} MB before the exports, peak {peak / MB:.1f} MB "
         "during them")
    _say("targets: " + ", ".join([
        f"now_ratio {out['now_ratio']:.2f} ≥ {TARGET_NOW_RATIO} "
        f"{'met' if out['now_ratio'] >= TARGET_NOW_RATIO else 'MISSED'}",
        f"p99 {n.p99_ms:.2f} ms < {TARGET_P99_MS:.0f} "
        f"{'met' if n.p99_ms < TARGET_P99_MS else 'MISSED'}",
        f"export_ratio {out['export_ratio']:.2f} ≥ {TARGET_EXPORT_RATIO} "
        f"{'met' if out['export_ratio'] >= TARGET_EXPORT_RATIO else 'MISSED'}"]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server (role with CREATEDB) instead of an embedded "
                             "one; a scratch database is created there and dropped afterwards")
    parser.add_argument("--backfill-days", type=int, default=30,
                        help="days the service back-fills from the simulator (default 30)")
    parser.add_argument("--export-years", type=int, default=2,
                        help="years of 11 stations loaded by SQL for the export (default 2)")
    parser.add_argument("--seconds", type=float, default=4, help="each wrk run (default 4)")
    parser.add_argument("--connections", type=int, default=100,
                        help="wrk connections (default 100, as the issue asks)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="wrk runs per side, best counts; exports get one more (default 3)")
    parser.add_argument("--no-pin", dest="pin", action="store_false",
                        help="leave the servers and wrk unpinned (default: servers on the "
                             "last CPU, wrk on the others)")
    args = parser.parse_args(argv)
    for tool in (WRK, PSQL, CURL):
        if not Path(tool).exists():
            raise SystemExit(f"{tool} is needed (Debian packages wrk, postgresql-client, "
                             "curl)")
    work = Path(tempfile.mkdtemp(prefix="aqif-run-", dir="/tmp"))
    with database(args.database_url) as base:
        result = asyncio.run(bench(args, base, work))
    shutil.rmtree(work, ignore_errors=True)  # kept (with the logs) when the run failed
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
