"""Acceptance: a year of the city's 11 stations streams in flat memory, exactly.

The service runs as its own process (``aqi-service serve``) on the test's database, so the
memory measured is the server's alone: its resident set is sampled every 10 ms while a
year of station-hours (96,360 rows, 578,160 station-pollutant values, loaded with one SQL
INSERT) streams as CSV and as Parquet. The client parses each as it arrives and compares
every cell with the stored record, read by its own query in the same order.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import aiohttp
import asyncpg
import psutil
import pyarrow.parquet as pq
import pytest
from downloads_support import CST, SELECT_STORED, assert_row, expected_value, load_hours
from process_support import free_port

pytestmark = [pytest.mark.db, pytest.mark.slow]
REPO = Path(__file__).resolve().parent.parent
CODES = [f"LF{i:02d}" for i in range(1, 12)]
FIRST = datetime(2025, 1, 1, 1, tzinfo=CST)   # hour ending 01:00 on 1 January 2025
LAST = datetime(2026, 1, 1, tzinfo=CST)       # … to 24:00 on 31 December 2025
ROWS = 8760 * 11
CSV_GROWTH_LIMIT_MB = 10
"""Well under the file's size (about 24 MB), so a server that held the file would fail."""
PARQUET_GROWTH_LIMIT_MB = 45
"""One row group in Arrow plus a month of records measures 22-28 MB here; a whole year as
one table would take hundreds of MB of Python objects first, and row groups built from
station-years of records (as before) reached 35-50 MB."""
MB = 1024 * 1024


@contextmanager
def _server(dsn: str, folder: Path) -> Iterator[tuple[str, psutil.Process]]:
    """``aqi-service serve --no-scheduler`` on the test database, in its own process."""
    port = free_port()
    env = {**os.environ, "AQI_DATABASE_URL": dsn, "AQI_HTTP_PORT": str(port),
           "AQI_HTTP_HOST": "127.0.0.1", "AQI_CONFIG_DIR": str(REPO / "config")}
    with open(folder / "server.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "aqi_service", "serve",
                                 "--no-scheduler"], cwd=folder, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}", psutil.Process(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class PeakRss:
    """The largest resident set of a process, sampled every 10 ms while active."""

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.peak = 0
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


async def _wait_ready(session: aiohttp.ClientSession, base: str, proc: psutil.Process) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE, "server died"
        try:
            async with session.get(f"{base}/readyz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError("the server did not become ready")


async def _csv_rows(resp: aiohttp.ClientResponse,
                    size: list[int]) -> AsyncIterator[list[str]]:
    """Rows parsed by the csv module as the body arrives (no row spans lines here)."""
    rest = b""
    async for chunk in resp.content.iter_chunked(1 << 16):
        size[0] += len(chunk)
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for row in csv.reader(line.decode() for line in lines):
            yield row
    assert rest == b""


async def _stored(conn: asyncpg.Connection) -> AsyncIterator[asyncpg.Record]:
    """The stored records of the year in the file's order, read by a cursor."""
    cursor = await conn.cursor(SELECT_STORED, CODES, FIRST, LAST)
    while recs := await cursor.fetch(2000):
        for rec in recs:
            yield rec


async def test_a_year_of_11_stations_streams_in_flat_memory_and_parses_back_exactly(
        db_dsn: str, tmp_path: Path) -> None:
    params = {"stations": ",".join(CODES), "from": FIRST.isoformat(), "to": LAST.isoformat()}
    with _server(db_dsn, tmp_path) as (base, proc):
        conn = await asyncpg.connect(db_dsn)
        await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads,
                                  schema="pg_catalog")
        try:
            assert await load_hours(conn, CODES, FIRST, LAST) == ROWS
            timeout = aiohttp.ClientTimeout(total=120)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                await _wait_ready(session, base, proc)
                # Warm up both paths (imports, pools, caches), then take the baseline.
                for fmt in ("csv", "parquet"):
                    async with session.get(f"{base}/api/v1/download/hourly.{fmt}", params={
                            "stations": "LF01", "from": "2025-03-01", "to": "2025-03-02"}
                            ) as resp:
                        assert resp.status == 200
                        await resp.read()
                baseline = proc.memory_info().rss

                with PeakRss(proc) as csv_peak:
                    async with session.get(f"{base}/api/v1/download/hourly.csv",
                                           params=params) as resp:
                        assert resp.status == 200
                        count, header, size = 0, None, [0]
                        async with conn.transaction():
                            stored = _stored(conn)
                            async for row in _csv_rows(resp, size):
                                if header is None:
                                    header = row
                                    continue
                                assert_row(row, await anext(stored), header)
                                count += 1
                            assert await anext(stored, None) is None
                assert count == ROWS

                with PeakRss(proc) as parquet_peak:
                    async with session.get(f"{base}/api/v1/download/hourly.parquet",
                                           params=params) as resp:
                        assert resp.status == 200
                        body = await resp.read()
                parquet = pq.ParquetFile(io.BytesIO(body))
                assert parquet.metadata.num_rows == ROWS
                assert parquet.metadata.num_row_groups == 11  # one station-year each
                async with conn.transaction():
                    stored = _stored(conn)
                    for i in range(parquet.metadata.num_row_groups):
                        group = parquet.read_row_group(i).to_pydict()
                        for j in range(len(group["station_code"])):
                            rec = await anext(stored)
                            for col, values in group.items():
                                assert values[j] == expected_value(rec, col), (col, j)
                    assert await anext(stored, None) is None
        finally:
            await conn.close()
    csv_growth = (csv_peak.peak - baseline) / MB
    parquet_growth = (parquet_peak.peak - baseline) / MB
    print(f"server RSS: baseline {baseline / MB:.1f} MB, peak while streaming CSV "
          f"({size[0] / MB:.1f} MB) +{csv_growth:.1f} MB, Parquet ({len(body) / MB:.1f} MB) "
          f"+{parquet_growth:.1f} MB")
    assert size[0] / MB > 2 * CSV_GROWTH_LIMIT_MB
    assert csv_growth < CSV_GROWTH_LIMIT_MB
    assert parquet_growth < PARQUET_GROWTH_LIMIT_MB
