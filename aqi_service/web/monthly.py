"""Monthly bulk files: one station's hourly records of a calendar month, as gzip CSV.

``GET /api/v1/download/monthly/{code}/{YYYY-MM}.csv.gz``. A month holds the hours ending
01:00 on its 1st through 24:00 (00:00 of the next 1st) on its last day, Asia/Shanghai;
the columns are those of ``hourly.csv``. The bytes are deterministic (PostgreSQL writes
the CSV, gzip without a time stamp), so the strong ETag is a hash of them.

A month that ended longer ago than the collector's look-back can no longer be back-filled:
it is closed and may be cached for 30 days. Revisions remain possible (a manual
re-collection), so each request asks the month's version (hours, latest computation,
revision count: one indexed query of at most 744 rows) and regenerates when it changed.

Generated files are kept in memory, least recently used first out, within a byte bound:
a station-month is about 40 KB compressed and costs tens of milliseconds to make, so a
year of the city's 11 stations is about 5 MB. A disk cache would add invalidation,
clean-up and a data folder that an instance on an external database need not have, and
several instances would not share it anyway.
"""

from __future__ import annotations

import asyncio
import gzip
import re
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from aqi_service.aqi.schemes import POLLUTANTS, SHANGHAI
from aqi_service.storage import reads
from aqi_service.web import conditional, keys, params
from aqi_service.web.codebook import columns, download_headers
from aqi_service.web.errors import ApiError

MONTH = re.compile(r"^(\d{4})-(\d{2})$")
HOUR = timedelta(hours=1)
CLOSED_MAX_AGE = 30 * 86400
CACHE_BYTES = 32 * 1024 * 1024
COLUMNS = tuple(columns(list(POLLUTANTS)))
GENERATE_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class MonthlyFile:
    """A generated file and the data version it was made from."""

    version: tuple[Any, ...]
    body: bytes
    etag: str
    modified: datetime | None


class MonthlyCache:
    """Generated files by (station, month), least recently used evicted beyond ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._files: OrderedDict[tuple[str, str], MonthlyFile] = OrderedDict()

    def get(self, key: tuple[str, str], version: tuple[Any, ...]) -> MonthlyFile | None:
        """The file if it was made from this version of the data."""
        found = self._files.get(key)
        if found is None or found.version != version:
            return None
        self._files.move_to_end(key)
        return found

    def put(self, key: tuple[str, str], file: MonthlyFile) -> None:
        """Keep ``file``; evict the least recently used beyond the bound."""
        old = self._files.pop(key, None)
        if old is not None:
            self.size -= len(old.body)
        if len(file.body) > self.limit:
            return
        self._files[key] = file
        self.size += len(file.body)
        while self.size > self.limit:
            _, evicted = self._files.popitem(last=False)
            self.size -= len(evicted.body)


def month_start(raw: str) -> datetime:
    """Midnight starting the month ``YYYY-MM`` in Asia/Shanghai (400 if malformed)."""
    match = MONTH.match(raw)
    if not match or not 1 <= int(match[2]) <= 12 or int(match[1]) < 1:
        raise params.bad("month", f"{raw[:20]!r} is not a month (YYYY-MM, e.g. 2026-10)")
    return datetime(int(match[1]), int(match[2]), 1, tzinfo=SHANGHAI)


def _next_month(start: datetime) -> datetime:
    year, month = divmod(start.month, 12)
    return start.replace(year=start.year + year, month=month + 1)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "city"


async def _generate(conn: Any, code: str, first: datetime, last: datetime) -> bytes:
    parts: list[bytes] = []

    async def sink(data: bytes) -> None:
        parts.append(bytes(data))

    await reads.copy_download_csv(conn, COLUMNS, [code], first, last, sink,
                                  GENERATE_TIMEOUT_S)
    raw = b"".join(parts)
    return await asyncio.get_running_loop().run_in_executor(
        None, lambda: gzip.compress(raw, compresslevel=6, mtime=0))


async def monthly_file(request: web.Request) -> web.Response:
    """A station's hourly records of one month, gzip CSV, strong ETag, cached when closed."""
    app = request.app
    code, raw_month = request.match_info["code"], request.match_info["month"]
    start = month_start(raw_month)
    now = app[keys.CLOCK]()
    if not params.STATION_CODE.match(code):
        raise ApiError(404, "unknown_station", "no such station", {"station": code[:40]})
    if start.year < 1900 or start > now:
        raise ApiError(404, "no_data", f"no data for {raw_month}: the month has not begun"
                       if start > now else f"no data for {raw_month}",
                       {"station": code, "month": raw_month})
    end = _next_month(start).astimezone(timezone.utc)
    first = start.astimezone(timezone.utc) + HOUR
    key = (code, raw_month)
    async with app[keys.POOL].acquire() as conn:
        station = await reads.station(conn, code)
        if station is None:
            raise ApiError(404, "unknown_station", f"no station {code!r}", {"station": code})
        ver = await reads.month_version(conn, code, first, end)
        if not ver["hours"]:
            raise ApiError(404, "no_data", f"no hourly records of {code} in {raw_month}",
                           {"station": code, "month": raw_month})
        version = (ver["hours"], ver["computed_at"], ver["revisions"], station["name_zh"])
        cache = app[keys.MONTHLY_CACHE]
        file = cache.get(key, version)
        if file is None:
            body = await _generate(conn, code, first, end)
            file = MonthlyFile(version, body,
                               conditional.etag_of(body),
                               ver["computed_at"])
            cache.put(key, file)
    closed = end + timedelta(hours=app[keys.CONFIG].collection.lookback_hours) <= now
    if closed:
        max_age = CLOSED_MAX_AGE
    else:
        snap = app[keys.SNAPSHOT].current
        max_age = conditional.seconds_until(snap.next_expected_at) if snap else 300
    if conditional.matches(request, file.etag):
        resp = web.Response(status=304)
    else:
        name = f"{_slug(app[keys.CONFIG].city.name_en)}_{code}_{raw_month}_hourly.csv.gz"
        resp = web.Response(body=file.body, headers=download_headers(name, "application/gzip"))
    conditional.cache_headers(resp, file.etag, max_age, file.modified)
    return resp
