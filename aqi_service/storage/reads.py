"""Read queries of the public feeds (named SQL; parameters only, never assembled text)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from functools import lru_cache

import asyncpg

from aqi_service.aqi.schemes import POLLUTANTS

SELECT_STATIONS = """
SELECT code, name_zh, name_en, county_zh, county_en, admin_code, lat, lon, timezone, source,
       not_monitored
FROM stations WHERE active AND city_member ORDER BY code
"""
SELECT_STATION = """
SELECT code, name_zh, name_en, county_zh, county_en, admin_code, lat, lon, timezone, source,
       not_monitored
FROM stations WHERE code = $1 AND active
"""
SELECT_STATION_HOURLY = """
SELECT * FROM station_hourly
WHERE station_code = $1 AND hour_end >= $2 AND hour_end <= $3
ORDER BY hour_end
"""
SELECT_CITY_HOURLY = """
SELECT * FROM city_hourly WHERE area_code = $1 AND hour_end >= $2 AND hour_end <= $3
ORDER BY hour_end
"""
SELECT_STATION_DAILY = """
SELECT * FROM station_daily WHERE station_code = $1 AND day >= $2 AND day <= $3 ORDER BY day
"""
SELECT_CITY_DAILY = """
SELECT * FROM city_daily WHERE area_code = $1 AND day >= $2 AND day <= $3 ORDER BY day
"""
SELECT_MEMBER_DAILY = """
SELECT d.station_code, d.day, d.so2_24h, d.no2_24h, d.co_24h, d.pm10_24h, d.pm2_5_24h,
       d.o3_8h_24h, d.aqi
FROM station_daily d JOIN stations s ON s.code = d.station_code
WHERE s.active AND s.city_member AND d.day >= $1 AND d.day <= $2
ORDER BY d.station_code, d.day
"""
# Research downloads: a station-ordered range of hourly records with the station's name.
_DOWNLOAD_FROM = """
FROM station_hourly h JOIN stations s ON s.code = h.station_code
WHERE h.station_code = ANY($1::text[]) AND h.hour_end >= $2 AND h.hour_end <= $3
ORDER BY h.station_code, h.hour_end
"""
SELECT_DOWNLOAD = "SELECT h.*, s.name_zh" + _DOWNLOAD_FROM
SELECT_KNOWN_CODES = "SELECT code FROM stations WHERE active AND code = ANY($1::text[])"
# The CSV is written by the server (COPY): times in ISO 8601 with the zone's offset at that
# time, doubles in their shortest exact text (extra_float_digits = 1).
BEGIN_CSV = ("BEGIN READ ONLY; SET LOCAL TIME ZONE 'Asia/Shanghai'; "
             "SET LOCAL extra_float_digits = 1")
_TIME_LOCAL = """to_char(h.hour_end, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM')"""
_TIME_UTC = """to_char(h.hour_end AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""
SELECT_MONTH_VERSION = """
SELECT count(*) AS hours, max(computed_at) AS computed_at,
       coalesce(sum(revision), 0) AS revisions
FROM station_hourly WHERE station_code = $1 AND hour_end >= $2 AND hour_end <= $3
"""
SELECT_REVISIONS = """
SELECT id, kind, subject, field, period_end, old_value, new_value, reason, changed_at
FROM revisions WHERE changed_at >= $1 ORDER BY changed_at, id LIMIT $2
"""


async def stations(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """The city's active stations."""
    return await conn.fetch(SELECT_STATIONS)


async def station(conn: asyncpg.Connection, code: str) -> asyncpg.Record | None:
    """One active station, or None."""
    return await conn.fetchrow(SELECT_STATION, code)


async def hourly(conn: asyncpg.Connection, code: str, first: datetime, last: datetime,
                 city: bool = False) -> list[asyncpg.Record]:
    """Hourly records of a station (or the city) with hour_end in [first, last]."""
    return await conn.fetch(SELECT_CITY_HOURLY if city else SELECT_STATION_HOURLY,
                            code, first, last)


async def daily(conn: asyncpg.Connection, code: str, first: date, last: date,
                city: bool = False) -> list[asyncpg.Record]:
    """Daily records of a station (or the city) for days in [first, last]."""
    return await conn.fetch(SELECT_CITY_DAILY if city else SELECT_STATION_DAILY,
                            code, first, last)


async def revisions(conn: asyncpg.Connection, since: datetime,
                    limit: int) -> list[asyncpg.Record]:
    """Changes to stored or published values since ``since``, oldest first."""
    return await conn.fetch(SELECT_REVISIONS, since, limit)


async def member_daily(conn: asyncpg.Connection, first: date,
                       last: date) -> list[asyncpg.Record]:
    """Daily records of the city's stations for days in [first, last]."""
    return await conn.fetch(SELECT_MEMBER_DAILY, first, last)


def _csv_expressions() -> dict[str, str]:
    """SQL of every column a CSV download may have (the only text a query is built from)."""
    exprs = {
        "station_code": "h.station_code",
        "position_name": "s.name_zh",
        "time_point": _TIME_LOCAL,
        "time_point_utc": _TIME_UTC,
        "aqi": "h.aqi", "level": "h.level", "scheme": "h.scheme", "revision": "h.revision",
    }
    names = sorted(POLLUTANTS)  # the sorted names of a bitmask, as pollutant_names() gives
    exprs["primary_pollutants"] = "nullif(concat_ws(';', {}), '')".format(", ".join(
        f"CASE WHEN h.primary_mask & {1 << POLLUTANTS.index(p)} <> 0 THEN '{p}' END"
        for p in names))
    for p in POLLUTANTS:
        exprs[f"{p}_flag"] = (f"coalesce(h.flags ->> '{p}', "
                              f"CASE WHEN h.{p} IS NOT NULL THEN 'N' END)")
        exprs[f"iaqi_{p}"] = f"h.iaqi_{p}"
        exprs[p] = f"h.{p}"
    for col in ("so2_24h", "no2_24h", "co_24h", "o3_8h", "o3_24h", "o3_8h_24h", "pm10_24h",
                "pm2_5_24h"):
        exprs[col] = f"h.{col}"
        exprs[f"{col}_hours"] = f"h.{col}_hours"
    return exprs


_CSV = _csv_expressions()


@lru_cache(maxsize=128)
def download_csv_query(cols: tuple[str, ...]) -> str:
    """The SELECT of a CSV download with these columns (names from the whitelist only)."""
    return "SELECT " + ", ".join(f'{_CSV[c]} AS "{c}"' for c in cols) + _DOWNLOAD_FROM


async def copy_download_csv(conn: asyncpg.Connection, cols: tuple[str, ...], codes: list[str],
                            first: datetime, last: datetime,
                            output: Callable[[bytes], Awaitable[object]],
                            timeout: float) -> int:
    """Stream the CSV (header first) of hour_end in [first, last] to ``output``; row count.

    If ``output`` fails (the client went away), the server is still sending when asyncpg
    has asked it to cancel, and the connection cannot roll back yet: it is closed instead
    (a pool opens a new one).
    """
    await conn.execute(BEGIN_CSV)
    try:
        status = await conn.copy_from_query(
            download_csv_query(cols), codes, first, last, output=output, format="csv",
            header=True, timeout=timeout)
    except BaseException:
        conn.terminate()
        raise
    await conn.execute("COMMIT")
    return int(status.split()[-1])


async def month_version(conn: asyncpg.Connection, code: str, first: datetime,
                        last: datetime) -> asyncpg.Record:
    """Hours, latest computation and revisions of a station's records in [first, last]."""
    return await conn.fetchrow(SELECT_MONTH_VERSION, code, first, last)
