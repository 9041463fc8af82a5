"""Stations: synced from the configuration, read by the collectors and the web.

Each station has a monitoring plan: ``not_monitored``, the pollutants it does not measure.
The derivation reads it (:func:`plans`); when it changes, the station's stored hours are
marked to be derived again (the durable derive marks), so its records follow the new plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from aqi_service.aqi.schemes import POLLUTANTS
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
RETURNING code
"""
SELECT_STATIONS = """
SELECT code, name_zh, name_en, county_zh, county_en, admin_code, lat, lon, timezone, source,
       active, city_member, not_monitored
FROM stations WHERE active ORDER BY code
"""
SET_PLANS = """
UPDATE stations s SET not_monitored = p.plan, updated_at = now()
FROM (SELECT code, coalesce(string_to_array(nullif(plan, ''), ','), '{}') AS plan
      FROM unnest($1::text[], $2::text[]) AS u(code, plan)) p
WHERE s.code = p.code AND s.not_monitored IS DISTINCT FROM p.plan
RETURNING s.code
"""
MARK_STORED_HOURS = """
INSERT INTO derive_pending (station_code, first_hour, last_hour)
SELECT station_code, min(hour_end), max(hour_end) FROM observations
WHERE station_code = ANY($1::text[]) GROUP BY station_code
"""
SELECT_PLANS = "SELECT code, not_monitored FROM stations WHERE code = ANY($1::text[])"


async def sync_stations(
    conn: asyncpg.Connection, stations: Sequence[StationConfig],
    extra: Sequence[StationConfig] = (),
) -> None:
    """Make the stations table match the configuration (others are kept, inactive; stations
    added by a history import stay active), monitoring plans included."""
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
        await set_plans(conn, {s.code: s.not_monitored for s in (*stations, *extra)})


async def list_stations(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Active stations, by code."""
    return [dict(r) for r in await conn.fetch(SELECT_STATIONS)]


async def add_imported(conn: asyncpg.Connection,
                       stations: Sequence[tuple[str, str, float, float]],
                       not_monitored: Mapping[str, Sequence[str]] | None = None) -> None:
    """Add stations found in a history file, (code, name, lat, lon): served, their records
    derived, not members of the city aggregate (a configured code is left as it is), with
    the monitoring plans ``not_monitored`` gives (code → pollutants not measured)."""
    if stations:
        codes, names, lats, lons = zip(*stations, strict=True)
        added = await conn.fetch(ADD_IMPORTED, list(codes), list(names), list(lats),
                                 list(lons))
        given = not_monitored or {}
        await set_plans(conn, {r["code"]: given[r["code"]] for r in added
                               if r["code"] in given})


async def set_plans(conn: asyncpg.Connection,
                    not_monitored: Mapping[str, Sequence[str]]) -> list[str]:
    """Store the stations' monitoring plans (code → pollutants not measured); mark the
    stored hours of each station whose plan changed to be derived again. The codes
    changed."""
    if not not_monitored:
        return []
    codes = list(not_monitored)
    changed = [r["code"] for r in await conn.fetch(
        SET_PLANS, codes, [",".join(p for p in POLLUTANTS if p in not_monitored[c])
                           for c in codes])]
    if changed:
        await conn.execute(MARK_STORED_HOURS, changed)
    return sorted(changed)


async def plans(conn: asyncpg.Connection, codes: Sequence[str]) -> dict[str, frozenset[str]]:
    """The monitoring plans of ``codes``: code → pollutants not measured (a station not
    stored measures everything)."""
    rows = await conn.fetch(SELECT_PLANS, list(codes))
    found = {r["code"]: frozenset(r["not_monitored"]) for r in rows}
    return {c: found.get(c, frozenset()) for c in codes}
