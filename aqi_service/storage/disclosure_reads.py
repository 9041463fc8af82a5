"""Public reads of the disclosure data: the lists of API v1 and the pages, and their joins.

Each list has one stable order and a keyset cursor on it (never OFFSET): enterprises by
county, name (in code-point order, the same on every server) and id; records by first
publication (newest first) and id; penalties by decision date and id; EIA projects by id
(newest first). Filters are ``($n IS NULL OR …)`` and free text goes through the schema's
search support (character bigrams in a GIN index, confirmed by substring), so Chinese text
is found by any two characters in a word. Named SQL with ``$n`` parameters only.
Cursors are opaque and signed (:mod:`aqi_service.storage.cursors`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import asyncpg

from aqi_service.storage.cursors import CURSOR_MAX_CHARS as CURSOR_MAX_CHARS
from aqi_service.storage.cursors import MAX_PAGE as MAX_PAGE
from aqi_service.storage.cursors import after, clamp, page

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius (IUGG), for great-circle distances by the haversine formula."""

# -- enterprises ---------------------------------------------------------------------------

LIST_ENTERPRISES = """
SELECT e.id, e.credit_code, e.name_zh, e.name_en, e.county_code,
       co.name_zh AS county_name_zh, co.name_en AS county_name_en, co.position AS county_position,
       e.industry_code, e.industry, e.address, e.lat, e.lon, e.permit_no, e.control_level,
       e.is_sample,
       (SELECT max(k.year) FROM key_polluter_listings k WHERE k.enterprise_id = e.id)
           AS latest_key_list_year,
       (SELECT count(*) FROM disclosure_records r WHERE r.enterprise_id = e.id) AS records,
       (SELECT count(*) FROM penalties p WHERE p.enterprise_id = e.id) AS penalties
FROM enterprises e JOIN counties co ON co.code = e.county_code
WHERE ($1::text IS NULL OR e.county_code = $1)
  AND ($2::text IS NULL OR starts_with(e.industry_code, $2))
  AND ($3::text IS NULL OR e.control_level = $3)
  AND ($4::smallint IS NULL OR EXISTS (SELECT 1 FROM key_polluter_listings k
                                       WHERE k.enterprise_id = e.id AND k.year = $4))
  AND ($5::text IS NULL OR (e.search_tokens @> search_bigrams($5)
                            AND search_matches(e.search_text, $5)))
  AND ($6::smallint IS NULL
       OR (co.position, e.name_zh COLLATE "C", e.id) > ($6, $7::text COLLATE "C", $8::bigint))
ORDER BY co.position, e.name_zh COLLATE "C", e.id
LIMIT $9
"""
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


async def list_enterprises(
    conn: asyncpg.Connection, *, county: str | None = None, industry: str | None = None,
    control_level: str | None = None, key_list_year: int | None = None, q: str | None = None,
    cursor: str | None = None, limit: int = 50,
) -> tuple[list[asyncpg.Record], str | None]:
    """Enterprises by county, name and id; ``industry`` is a GB/T 4754 code prefix."""
    key = after("enterprises", cursor, (int, str, int))
    limit = clamp(limit)
    rows = await conn.fetch(LIST_ENTERPRISES, county, industry, control_level, key_list_year,
                            q, *key, limit + 1)
    return page(rows, limit, "enterprises", ("county_position", "name_zh", "id"))


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


# -- disclosure records --------------------------------------------------------------------

RECORD_LIST_COLUMNS = """
r.id, r.ref, r.subitem_code, s.category_code, s.name_zh AS subitem_name_zh,
s.name_en AS subitem_name_en, c.name_zh AS category_name_zh, c.name_en AS category_name_en,
e.credit_code, e.name_zh AS enterprise_name_zh, e.name_en AS enterprise_name_en,
e.county_code, r.title, left(r.body, 200) AS excerpt, char_length(r.body) > 200 AS truncated,
r.effective_on, r.published_at, r.updated_at, r.version, r.status, r.status_reason,
r.retracted_at, r.publisher, r.is_sample
"""
LIST_RECORDS = f"""
SELECT {RECORD_LIST_COLUMNS}
FROM disclosure_records r
JOIN disclosure_subitems s ON s.code = r.subitem_code
JOIN disclosure_categories c ON c.code = s.category_code
LEFT JOIN enterprises e ON e.id = r.enterprise_id
WHERE ($1::text IS NULL OR s.category_code = $1)
  AND ($2::text IS NULL OR r.subitem_code = $2)
  AND ($3::text IS NULL OR e.credit_code = $3)
  AND ($4::text[] IS NULL OR r.status = ANY($4::text[]))
  AND ($5::timestamptz IS NULL OR r.published_at >= $5)
  AND ($6::timestamptz IS NULL OR r.published_at < $6)
  AND ($7::text IS NULL OR (r.search_tokens @> search_bigrams($7)
                            AND search_matches(r.search_text, $7)))
  AND ($8::timestamptz IS NULL OR (r.published_at, r.id) < ($8, $9::bigint))
ORDER BY r.published_at DESC, r.id DESC
LIMIT $10
"""
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


async def list_records(
    conn: asyncpg.Connection, *, category: str | None = None, subitem: str | None = None,
    credit_code: str | None = None, statuses: Sequence[str] | None = None,
    published_from: datetime | None = None, published_before: datetime | None = None,
    q: str | None = None, cursor: str | None = None, limit: int = 20,
) -> tuple[list[asyncpg.Record], str | None]:
    """Records newest first (retracted ones too unless ``statuses`` leaves them out)."""
    before = after("records", cursor, (datetime, int))
    limit = clamp(limit)
    rows = await conn.fetch(LIST_RECORDS, category, subitem, credit_code,
                            list(statuses) if statuses else None, published_from,
                            published_before, q, *before, limit + 1)
    return page(rows, limit, "records", ("published_at", "id"))


async def catalog_codes(conn: asyncpg.Connection) -> tuple[set[str], set[str]]:
    """Every category and sub-item code ever in the catalogue (inactive ones too)."""
    cats = {r["code"] for r in await conn.fetch(SELECT_CATEGORY_CODES)}
    subs = {r["code"] for r in await conn.fetch(SELECT_SUBITEM_CODES)}
    return cats, subs


async def catalog_all(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """The whole catalogue with inactive entries (records may still refer to them)."""
    return await conn.fetch(SELECT_CATALOG_ALL)


# -- penalties and EIA projects ------------------------------------------------------------

PENALTY_COLUMNS = """
p.id, p.decision_no, e.credit_code AS enterprise_credit_code,
e.name_zh AS enterprise_name_zh, e.county_code, p.party_name,
p.credit_code, p.violation, p.legal_basis, p.penalty, p.fine_amount, p.decision_date,
p.enforcement_status, p.record_id, p.attachment_id, p.published_at, p.is_sample
"""
LIST_PENALTIES = f"""
SELECT {PENALTY_COLUMNS}
FROM penalties p LEFT JOIN enterprises e ON e.id = p.enterprise_id
WHERE ($1::text IS NULL OR p.credit_code = $1 OR e.credit_code = $1)
  AND ($2::text IS NULL OR e.county_code = $2)
  AND ($3::text IS NULL OR p.enforcement_status = $3)
  AND ($4::date IS NULL OR p.decision_date >= $4)
  AND ($5::date IS NULL OR p.decision_date <= $5)
  AND ($6::text IS NULL OR (p.search_tokens @> search_bigrams($6)
                            AND search_matches(p.search_text, $6)))
  AND ($7::date IS NULL OR (p.decision_date, p.id) < ($7, $8::bigint))
ORDER BY p.decision_date DESC, p.id DESC
LIMIT $9
"""
EIA_COLUMNS = """
p.id, p.project_code, p.name, p.builder, p.builder_credit_code, p.county_code,
co.name_zh AS county_name_zh, co.name_en AS county_name_en, p.location, p.lat, p.lon,
p.project_type, p.document_kind, p.eia_agency, p.summary, p.is_sample,
(SELECT s.stage FROM eia_stages s WHERE s.project_id = p.id
 ORDER BY array_position(ARRAY['acceptance', 'pre_approval', 'approval',
                               'completion_acceptance'], s.stage) DESC LIMIT 1)
    AS latest_stage,
(SELECT max(s.published_on) FROM eia_stages s WHERE s.project_id = p.id) AS latest_published_on
"""
LIST_EIA = f"""
SELECT {EIA_COLUMNS}
FROM eia_projects p JOIN counties co ON co.code = p.county_code
LEFT JOIN enterprises e ON e.id = p.enterprise_id
WHERE ($1::text IS NULL OR p.county_code = $1)
  AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM eia_stages s
                                   WHERE s.project_id = p.id AND s.stage = $2))
  AND ($3::text IS NULL OR p.builder_credit_code = $3 OR e.credit_code = $3)
  AND ($4::text IS NULL OR p.document_kind = $4)
  AND ($5::text IS NULL OR (p.search_tokens @> search_bigrams($5)
                            AND search_matches(p.search_text, $5)))
  AND ($6::bigint IS NULL OR p.id < $6)
ORDER BY p.id DESC
LIMIT $7
"""


async def list_penalties(
    conn: asyncpg.Connection, *, credit_code: str | None = None, county: str | None = None,
    enforcement_status: str | None = None, decided_from: date | None = None,
    decided_until: date | None = None, q: str | None = None, cursor: str | None = None,
    limit: int = 20,
) -> tuple[list[asyncpg.Record], str | None]:
    """Penalty decisions, latest first; ``credit_code`` the party's (or linked enterprise's)."""
    before = after("penalties", cursor, (date, int))
    limit = clamp(limit)
    rows = await conn.fetch(LIST_PENALTIES, credit_code, county, enforcement_status,
                            decided_from, decided_until, q, *before, limit + 1)
    return page(rows, limit, "penalties", ("decision_date", "id"))


async def list_eia(
    conn: asyncpg.Connection, *, county: str | None = None, stage: str | None = None,
    credit_code: str | None = None, document_kind: str | None = None, q: str | None = None,
    cursor: str | None = None, limit: int = 20,
) -> tuple[list[asyncpg.Record], str | None]:
    """EIA projects, newest first; ``stage``: those that reached it."""
    before = after("eia", cursor, (int,))
    limit = clamp(limit)
    rows = await conn.fetch(LIST_EIA, county, stage, credit_code, document_kind, q, *before,
                            limit + 1)
    return page(rows, limit, "eia", ("id",))


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
