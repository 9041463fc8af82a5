"""Stations: synced from the configuration, read by the collectors and the web."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from aqi_service.config import StationConfig

UPSERT_STATION = """
INSERT INTO stations (code, name_zh, name_en, county_zh, county_en, admin_code, lat, lon,
                      timezone, source, active, city_member)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, true, $11)
ON CONFLICT (code) DO UPDATE SET
    name_zh = EXCLUDED.name_zh, name_en = EXCLUDED.name_en, county_zh = EXCLUDED.county_zh,
    county_en = EXCLUDED.county_en, admin_code = EXCLUDED.admin_code, lat = EXCLUDED.lat,
    lon = EXCLUDED.lon, timezone = EXCLUDED.timezone, source = EXCLUDED.source,
    active = true, city_member = EXCLUDED.city_member, updated_at = now()
WHERE (stations.name_zh, stations.name_en, stations.county_zh, stations.county_en,
       stations.admin_code, stations.lat, stations.lon, stations.timezone, stations.source,
       stations.active, stations.city_member)
    IS DISTINCT FROM
      (EXCLUDED.name_zh, EXCLUDED.name_en, EXCLUDED.county_zh, EXCLUDED.county_en,
       EXCLUDED.admin_code, EXCLUDED.lat, EXCLUDED.lon, EXCLUDED.timezone, EXCLUDED.source,
       true, EXCLUDED.city_member)
"""
DEACTIVATE_OTHERS = """
UPDATE stations SET active = false, updated_at = now()
WHERE active AND source <> 'import' AND NOT (code = ANY($1::text[]))
"""
ADD_IMPORTED = """
INSERT INTO stations (code, name_zh, name_en, lat, lon, timezone, source, active, city_member)
SELECT code, name, name, lat, lon, 'Asia/Shanghai', 'import', true, false
FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[]) AS u(code, name, lat, lon)
ON CONFLICT (code) DO NOTHING
"""
SELECT_STATIONS = """
SELECT code, name_zh, name_en, county_zh, county_en, admin_code, lat, lon, timezone, source,
       active, city_member
FROM stations WHERE active ORDER BY code
"""


async def sync_stations(
    conn: asyncpg.Connection, stations: Sequence[StationConfig],
    extra: Sequence[StationConfig] = (),
) -> None:
    """Make the stations table match the configuration (others are kept, inactive; stations
    added by a history import stay active)."""
    rows = [
        (s.code, s.name_zh, s.name_en, s.county_zh, s.county_en, s.admin_code, s.lat, s.lon,
         s.timezone, s.source, True)
        for s in stations
    ] + [
        (s.code, s.name_zh, s.name_en, s.county_zh, s.county_en, s.admin_code, s.lat, s.lon,
         s.timezone, s.source, False)
        for s in extra
    ]
    async with conn.transaction():
        await conn.executemany(UPSERT_STATION, rows)
        await conn.execute(DEACTIVATE_OTHERS, [r[0] for r in rows])


async def list_stations(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Active stations, by code."""
    return [dict(r) for r in await conn.fetch(SELECT_STATIONS)]


async def add_imported(conn: asyncpg.Connection,
                       stations: Sequence[tuple[str, str, float, float]]) -> None:
    """Add stations found in a history file, (code, name, lat, lon): served, their records
    derived, not members of the city aggregate (a configured code is left as it is)."""
    if stations:
        codes, names, lats, lons = zip(*stations, strict=True)
        await conn.execute(ADD_IMPORTED, list(codes), list(names), list(lats), list(lons))
