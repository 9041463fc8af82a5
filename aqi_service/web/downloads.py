"""Research downloads: long hourly series of many stations, streamed in constant memory.

``GET /api/v1/download/hourly.csv`` is written by PostgreSQL itself (``COPY … TO STDOUT``)
and forwarded chunk by chunk, with back-pressure from the client to the database;
``.jsonl`` and ``.parquet`` read the records through a server-side cursor (Parquet one row
group at a time). Any range costs the same memory. Values are written as stored:
observations exactly as the stations reported them, averages to 6 decimals. The monthly
files per station are in ``monthly.py``; the codebook in ``codebook.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from aqi_service.aqi.batch import names
from aqi_service.aqi.schemes import POLLUTANTS, SHANGHAI
from aqi_service.storage import reads
from aqi_service.web import conditional, keys, monthly, params, parquet_export
from aqi_service.web.codebook import (
    AVERAGES,
    columns,
    csvw_metadata,
    download_headers,
)
from aqi_service.web.errors import ApiError
from aqi_service.web.public_url import public_origin

log = logging.getLogger(__name__)

CHUNK_ROWS = 2000
"""Rows fetched from the cursor and written per chunk (JSON Lines)."""
WRITE_BYTES = 256 * 1024
"""COPY output is gathered into writes of this size (fewer, larger writes to the socket)."""
MAX_SPAN = timedelta(days=366 * 20)
STREAM_TIMEOUT_S = 3600.0
"""Longest a CSV download may take (slow clients hold a database connection)."""
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8",
                 "jsonl": "application/x-ndjson; charset=utf-8",
                 "parquet": "application/vnd.apache.parquet"}


def row_of(rec: Any, pollutants: list[str]) -> list[Any]:
    """One station-hour as values in ``columns`` order (None for empty)."""
    flags = rec["flags"] or {}
    hour = rec["hour_end"]
    out = [rec["station_code"], rec["name_zh"], hour.astimezone(SHANGHAI).isoformat(),
           hour.isoformat().replace("+00:00", "Z")]
    for p in pollutants:
        value = rec[p]
        out += [value, flags.get(p, "N" if value is not None else "")]
        for avg, hours in AVERAGES[p]:
            out += [rec[avg], rec[hours]]
        out.append(rec[f"iaqi_{p}"])
    return [*out, rec["aqi"], rec["level"], ";".join(names(rec["primary_mask"])),
            rec["scheme"], rec["revision"]]


async def _choose(request: web.Request) -> tuple[list[str], list[str]]:
    raw = request.query.get("stations", "")
    async with request.app[keys.POOL].acquire() as conn:
        if not raw:
            codes = [r["code"] for r in await conn.fetch(reads.SELECT_STATIONS)]
        else:
            if len(raw) > 4000:
                raise params.bad("stations", "too long")
            codes = [c.strip() for c in raw.split(",") if c.strip()]
            known = {r["code"] for r in await conn.fetch(reads.SELECT_KNOWN_CODES, codes)}
            unknown = [c for c in codes if c not in known]
            if unknown:
                raise params.bad("stations", f"unknown station(s) {unknown[:10]}")
    wanted = request.query.get("pollutants", "")
    pollutants = [p.strip() for p in wanted.split(",") if p.strip()] if wanted else list(
        POLLUTANTS)
    bad_names = [p for p in pollutants if p not in POLLUTANTS]
    if bad_names or not pollutants:
        raise params.bad("pollutants", f"expected some of {', '.join(POLLUTANTS)}",
                         unknown=bad_names[:10])
    return codes, [p for p in POLLUTANTS if p in pollutants]


class Coalesced:
    """An async sink that writes to the response in pieces of at least ``size`` bytes."""

    def __init__(self, resp: web.StreamResponse, size: int = WRITE_BYTES) -> None:
        self.resp = resp
        self.size = size
        self._parts: list[bytes] = []
        self._held = 0

    async def write(self, data: bytes) -> None:
        """Hold ``data``; write what is held once it reaches ``size``."""
        self._parts.append(data)
        self._held += len(data)
        if self._held >= self.size:
            await self.flush()

    async def flush(self) -> None:
        """Write whatever is held."""
        if self._parts:
            body = b"".join(self._parts)
            self._parts.clear()
            self._held = 0
            await self.resp.write(body)


class Slots:
    """At most ``size`` downloads stream at once (each holds a database connection)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.busy = 0

    def __enter__(self) -> Slots:
        if self.busy >= self.size:
            raise ApiError(503, "busy", f"{self.size} downloads are streaming; retry shortly",
                           {"retry_after_s": 10})
        self.busy += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self.busy -= 1


async def hourly(request: web.Request) -> web.StreamResponse:
    """Stream the hourly records of the chosen stations and pollutants (CSV, JSONL, Parquet)."""
    fmt = request.match_info["fmt"]
    if fmt not in CONTENT_TYPES:
        raise ApiError(404, "not_found", "formats: hourly.csv, hourly.jsonl, hourly.parquet")
    arrow = parquet_export.pyarrow() if fmt == "parquet" else None
    codes, pollutants = await _choose(request)
    now = request.app[keys.CLOCK]()
    last = params.time_param(request, "to", now)
    first = params.time_param(request, "from", last - timedelta(days=7))
    params.check_range("from", first, last, MAX_SPAN, "hourly records")
    span = f"{first.astimezone(SHANGHAI):%Y%m%d}-{last.astimezone(SHANGHAI):%Y%m%d}"
    resp = web.StreamResponse(headers=download_headers(f"langfang-hourly-{span}.{fmt}",
                                                       CONTENT_TYPES[fmt]))
    if fmt != "parquet" and conditional.accepts_gzip(request):
        resp.enable_compression(web.ContentCoding.gzip)
    with request.app[keys.DOWNLOAD_SLOTS]:
        await resp.prepare(request)
        try:
            if fmt == "csv":
                sink = Coalesced(resp)
                async with request.app[keys.POOL].acquire() as conn:
                    await reads.copy_download_csv(conn, tuple(columns(pollutants)), codes,
                                                  first, last, sink.write, STREAM_TIMEOUT_S)
                await sink.flush()
            elif fmt == "jsonl":
                await _jsonl(request, resp, codes, first, last, pollutants)
            else:
                await _parquet(request, resp, arrow, codes, first, last, pollutants)
        except (ConnectionResetError, asyncio.CancelledError) as exc:
            log.info("download %s ended early: the client went away", request.path)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return resp
    await resp.write_eof()
    return resp


@asynccontextmanager
async def _reading(request: web.Request) -> AsyncIterator[Any]:
    """A connection in a read-only transaction for a cursor.

    On failure (the client went away) a fetch may still be running, so the connection is
    closed (the pool opens a new one) rather than rolled back.
    """
    async with request.app[keys.POOL].acquire() as conn:
        await conn.execute("BEGIN READ ONLY")
        try:
            yield conn
        except BaseException:
            conn.terminate()
            raise
        await conn.execute("COMMIT")


async def _jsonl(request: web.Request, resp: web.StreamResponse, codes: list[str],
                 first: datetime, last: datetime, pollutants: list[str]) -> None:
    cols = columns(pollutants)
    async with _reading(request) as conn:
        cursor = await conn.cursor(reads.SELECT_DOWNLOAD, codes, first, last)
        while recs := await cursor.fetch(CHUNK_ROWS):
            lines = [json.dumps(dict(zip(cols, row_of(r, pollutants), strict=True)),
                                ensure_ascii=False) for r in recs]
            await resp.write(("\n".join(lines) + "\n").encode())


async def _parquet(request: web.Request, resp: web.StreamResponse, arrow: Any,
                   codes: list[str], first: datetime, last: datetime,
                   pollutants: list[str]) -> None:
    pa, pq = arrow
    arrow_schema = parquet_export.schema(pa, columns(pollutants))
    spool = parquet_export.Spool()
    writer = pq.ParquetWriter(spool, arrow_schema, compression="zstd")
    batches: list[Any] = []

    async def flush() -> None:
        # Encoding a row group takes a while: off the event loop.
        group = pa.Table.from_batches(batches, schema=arrow_schema)
        batches.clear()
        await asyncio.to_thread(writer.write_table, group, row_group_size=len(group))
        await resp.write(spool.take())

    try:
        async with _reading(request) as conn:
            cursor = await conn.cursor(reads.SELECT_DOWNLOAD, codes, first, last)
            while recs := await cursor.fetch(parquet_export.FETCH):
                batches.append(await asyncio.to_thread(parquet_export.batch, pa, arrow_schema,
                                                       recs, pollutants))
                del recs
                if sum(b.num_rows for b in batches) >= parquet_export.ROW_GROUP:
                    await flush()
            if batches:
                await flush()
    finally:
        writer.close()
    await resp.write(spool.take())


async def metadata(request: web.Request) -> web.Response:
    """The CSVW metadata and codebook of the hourly download."""
    base = public_origin(request)
    return conditional.json_response(request, csvw_metadata(base), 86400)


def setup_downloads(app: web.Application) -> None:
    """Routes of the downloads, the bound on concurrent streams and the monthly files' cache."""
    app[keys.DOWNLOAD_SLOTS] = Slots(max(app[keys.CONFIG].database.pool_max // 2, 1))
    app[keys.MONTHLY_CACHE] = monthly.MonthlyCache(monthly.CACHE_BYTES)
    app.router.add_get("/api/v1/download/hourly.csv-metadata.json", metadata)
    app.router.add_get("/api/v1/download/hourly.{fmt}", hourly)
    app.router.add_get("/api/v1/download/monthly/{code}/{month}.csv.gz", monthly.monthly_file)
