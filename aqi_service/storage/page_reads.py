"""Read queries of the HTML pages that the JSON feeds do not already have (named SQL)."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg

SELECT_CHART_HOURS = """
SELECT hour_end, aqi, so2, no2, co, o3, pm10, pm2_5
FROM station_hourly
WHERE station_code = $1 AND hour_end > $2 AND hour_end <= $3
ORDER BY hour_end
"""
SELECT_LATEST_HOUR = """
SELECT * FROM station_hourly WHERE station_code = $1 ORDER BY hour_end DESC LIMIT 1
"""
SELECT_STATION_REVISIONS = """
SELECT id, kind, subject, field, period_end, old_value, new_value, reason, changed_at
FROM revisions WHERE subject = $1
ORDER BY changed_at DESC, id DESC LIMIT $2
"""
# Every member station, with its daily record of the day when there is one.
SELECT_DAY_OF_STATIONS = """
SELECT s.code, s.name_zh, s.name_en, s.county_zh, s.county_en, d.*
FROM stations s
LEFT JOIN station_daily d ON d.station_code = s.code AND d.day = $1
WHERE s.active AND s.city_member
ORDER BY s.code
"""


async def chart_hours(conn: asyncpg.Connection, code: str, after: datetime,
                      through: datetime) -> list[asyncpg.Record]:
    """A station's AQI and 1 h concentrations for hours ending in (after, through]."""
    return await conn.fetch(SELECT_CHART_HOURS, code, after, through)


async def latest_hour(conn: asyncpg.Connection, code: str) -> asyncpg.Record | None:
    """A station's newest hourly record, or None."""
    return await conn.fetchrow(SELECT_LATEST_HOUR, code)


async def station_revisions(conn: asyncpg.Connection, code: str,
                            limit: int) -> list[asyncpg.Record]:
    """The newest changes to a station's stored or published values."""
    return await conn.fetch(SELECT_STATION_REVISIONS, code, limit)


async def day_of_stations(conn: asyncpg.Connection, day: date) -> list[asyncpg.Record]:
    """Each member station with its daily record of ``day`` (record columns NULL if none)."""
    return await conn.fetch(SELECT_DAY_OF_STATIONS, day)
