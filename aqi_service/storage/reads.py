"""Read queries of the public feeds (named SQL; parameters only, never assembled text)."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg

SELECT_STATIONS = """
SELECT code, name_zh, name_en, county_zh, county_en, admin_code, lat, lon, timezone, source
FROM stations WHERE active AND city_member ORDER BY code
"""
SELECT_STATION = """
SELECT code, name_zh, name_en, county_zh, county_en, admin_code, lat, lon, timezone, source
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
