"""Public reads of the disclosure data besides the lists: the filters' choices (counties,
industries, key-list years, the catalogue), the nearest air-quality station, the Atom
feed's versions and the yearly changes. The lists are in :mod:`.disclosure_lists`. Named
SQL with ``$n`` parameters only.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius (IUGG), for great-circle distances by the haversine formula."""

# -- the filters' choices and the nearest station ------------------------------------------

SELECT_COUNTIES = "SELECT code, name_zh, name_en FROM counties ORDER BY position"
SELECT_INDUSTRIES = """
SELECT industry_code, min(industry) AS industry, count(*) AS enterprises
FROM enterprises WHERE industry_code <> ''
GROUP BY industry_code ORDER BY industry_code
"""
SELECT_KEY_LIST_YEARS = "SELECT DISTINCT year FROM key_polluter_listings ORDER BY year DESC"
NEAREST_STATION = f"""
SELECT code, name_zh, name_en, county_zh, county_en, lat, lon,
       2 * {EARTH_RADIUS_KM} * asin(least(1, sqrt(
           power(sin(radians(lat - $1) / 2), 2)
           + cos(radians($1)) * cos(radians(lat)) * power(sin(radians(lon - $2) / 2), 2))))
           AS distance_km
FROM stations
WHERE active AND city_member
ORDER BY distance_km, code
LIMIT 1
"""


async def counties(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """The county-level units in their usual order."""
    return await conn.fetch(SELECT_COUNTIES)


async def industries(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """The industry classes enterprises are registered under (for the filter)."""
    return await conn.fetch(SELECT_INDUSTRIES)


async def key_list_years(conn: asyncpg.Connection) -> list[int]:
    """The years with a key-polluter list, newest first."""
    return [r["year"] for r in await conn.fetch(SELECT_KEY_LIST_YEARS)]


async def nearest_station(conn: asyncpg.Connection, lat: float,
                          lon: float) -> asyncpg.Record | None:
    """The city's air-quality station nearest to a point (great-circle distance in km)."""
    return await conn.fetchrow(NEAREST_STATION, lat, lon)


# -- the catalogue -----------------------------------------------------------------------

SELECT_CATEGORY_CODES = "SELECT code FROM disclosure_categories"
SELECT_SUBITEM_CODES = "SELECT code FROM disclosure_subitems"
SELECT_CATALOG_ALL = """
SELECT c.code AS category_code, c.name_zh AS category_name_zh, c.name_en AS category_name_en,
       c.active AS category_active, s.code AS subitem_code, s.name_zh AS subitem_name_zh,
       s.name_en AS subitem_name_en, s.active AS subitem_active
FROM disclosure_categories c
JOIN disclosure_subitems s ON s.category_code = c.code
ORDER BY c.position, s.position
"""


async def catalog_codes(conn: asyncpg.Connection) -> tuple[set[str], set[str]]:
    """Every category and sub-item code ever in the catalogue (inactive ones too)."""
    cats = {r["code"] for r in await conn.fetch(SELECT_CATEGORY_CODES)}
    subs = {r["code"] for r in await conn.fetch(SELECT_SUBITEM_CODES)}
    return cats, subs


async def catalog_all(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """The whole catalogue with inactive entries (records may still refer to them)."""
    return await conn.fetch(SELECT_CATALOG_ALL)


# -- the Atom feed and the yearly statistics -----------------------------------------------

FEED_VERSIONS = """
SELECT v.record_id, v.version, v.change, v.title, v.body, v.published_at, v.note,
       v.effective_on, r.status, r.published_at AS first_published_at, r.publisher, r.is_sample,
       v.subitem_code, s.name_zh AS subitem_name_zh, s.name_en AS subitem_name_en,
       s.category_code, c.name_zh AS category_name_zh, c.name_en AS category_name_en,
       e.credit_code, e.name_zh AS enterprise_name_zh
FROM disclosure_record_versions v
JOIN disclosure_records r ON r.id = v.record_id
JOIN disclosure_subitems s ON s.code = v.subitem_code
JOIN disclosure_categories c ON c.code = s.category_code
LEFT JOIN enterprises e ON e.id = v.enterprise_id
ORDER BY v.published_at DESC, v.record_id DESC, v.version DESC
LIMIT $1
"""
CHANGES_BY_MONTH = """
SELECT date_trunc('month', v.published_at AT TIME ZONE 'Asia/Shanghai')::date AS month,
       v.change, count(*) AS changes
FROM disclosure_record_versions v
WHERE v.change IN ('corrected', 'retracted')
  AND v.published_at >= $1 AND v.published_at < $2
GROUP BY 1, 2
ORDER BY 1, 2
"""


async def feed_versions(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """The latest versions of records (new, corrected, retracted), newest first."""
    return await conn.fetch(FEED_VERSIONS, limit)


async def changes_by_month(conn: asyncpg.Connection, start: datetime,
                           end: datetime) -> list[asyncpg.Record]:
    """Corrections and retractions made in ``[start, end)``, per month (Asia/Shanghai)."""
    return await conn.fetch(CHANGES_BY_MONTH, start, end)
