"""Disclosure storage: enterprises, outlets, catalogue, records, penalties, EIA, monitoring.

Named SQL with ``$n`` parameters only; optional filters are ``($n IS NULL OR …)`` so that no
SQL is assembled from input. Writers take a connection inside the caller's transaction (the
audit entry goes in the same one). Readers of single objects used by the public side too:

* :func:`get_record` / :func:`record_versions` / :func:`record_attachments`,
  :func:`record_stats` (per category and sub-item) and :func:`record_stats_by_month`;
* :func:`catalog_rows`; :func:`get_enterprise`, :func:`outlets_of`, :func:`limits_of`,
  :func:`key_listings_of`;
* :func:`get_penalty`; :func:`get_eia_project`, :func:`eia_stages_of`;
  :func:`get_attachment`.

The lists (one query each, for both sides) are in :mod:`.disclosure_lists`; the column
lists of the admin API's objects (``*_COLUMNS``) are shared with them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import asyncpg

from aqi_service.disclosure.catalog import Catalog
from aqi_service.disclosure.models import (
    EiaProjectIn,
    EiaStageIn,
    EnterpriseIn,
    KeyListingIn,
    LimitIn,
    MonitoringIn,
    OutletIn,
    PenaltyIn,
    Vocabulary,
)

# -- catalogue -----------------------------------------------------------------------------

UPSERT_CATEGORY = """
INSERT INTO disclosure_categories (code, name_zh, name_en, description_zh, description_en,
                                   position, active)
VALUES ($1, $2, $3, $4, $5, $6, true)
ON CONFLICT (code) DO UPDATE SET
    name_zh = EXCLUDED.name_zh, name_en = EXCLUDED.name_en,
    description_zh = EXCLUDED.description_zh, description_en = EXCLUDED.description_en,
    position = EXCLUDED.position, active = true, updated_at = now()
WHERE (disclosure_categories.name_zh, disclosure_categories.name_en,
       disclosure_categories.description_zh, disclosure_categories.description_en,
       disclosure_categories.position, disclosure_categories.active)
    IS DISTINCT FROM (EXCLUDED.name_zh, EXCLUDED.name_en, EXCLUDED.description_zh,
                      EXCLUDED.description_en, EXCLUDED.position, true)
"""
UPSERT_SUBITEM = """
INSERT INTO disclosure_subitems (code, category_code, name_zh, name_en, description_zh,
                                 description_en, position, enterprise, basis, active)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, true)
ON CONFLICT (code) DO UPDATE SET
    category_code = EXCLUDED.category_code, name_zh = EXCLUDED.name_zh,
    name_en = EXCLUDED.name_en, description_zh = EXCLUDED.description_zh,
    description_en = EXCLUDED.description_en, position = EXCLUDED.position,
    enterprise = EXCLUDED.enterprise, basis = EXCLUDED.basis, active = true, updated_at = now()
WHERE (disclosure_subitems.category_code, disclosure_subitems.name_zh,
       disclosure_subitems.name_en, disclosure_subitems.description_zh,
       disclosure_subitems.description_en, disclosure_subitems.position,
       disclosure_subitems.enterprise, disclosure_subitems.basis, disclosure_subitems.active)
    IS DISTINCT FROM (EXCLUDED.category_code, EXCLUDED.name_zh, EXCLUDED.name_en,
                      EXCLUDED.description_zh, EXCLUDED.description_en, EXCLUDED.position,
                      EXCLUDED.enterprise, EXCLUDED.basis, true)
"""
DEACTIVATE_SUBITEMS = """
UPDATE disclosure_subitems SET active = false, updated_at = now()
WHERE active AND NOT (code = ANY($1::text[]))
"""
DEACTIVATE_CATEGORIES = """
UPDATE disclosure_categories SET active = false, updated_at = now()
WHERE active AND NOT (code = ANY($1::text[]))
"""
SELECT_CATALOG = """
SELECT c.code AS category_code, c.name_zh AS category_name_zh, c.name_en AS category_name_en,
       c.description_zh AS category_description_zh,
       c.description_en AS category_description_en, s.code AS subitem_code,
       s.name_zh AS subitem_name_zh, s.name_en AS subitem_name_en,
       s.description_zh AS subitem_description_zh, s.description_en AS subitem_description_en,
       s.enterprise, s.basis
FROM disclosure_categories c
JOIN disclosure_subitems s ON s.category_code = c.code AND s.active
WHERE c.active
ORDER BY c.position, s.position
"""
SELECT_VOCABULARY_SUBITEMS = "SELECT code, enterprise FROM disclosure_subitems WHERE active"
SELECT_PARAMETERS = """
SELECT code, medium, name_zh, name_en, unit FROM monitoring_parameters ORDER BY position, code
"""


async def sync_catalog(conn: asyncpg.Connection, catalog: Catalog) -> int:
    """Write the catalogue to its tables; deactivate what it no longer lists. Rows changed."""
    changed = 0
    async with conn.transaction():
        for cat in catalog.categories:
            status = await conn.execute(UPSERT_CATEGORY, cat.code, cat.name_zh, cat.name_en,
                                        cat.description_zh, cat.description_en, cat.position)
            changed += int(status.split()[-1])
        for sub in catalog.subitems:
            status = await conn.execute(
                UPSERT_SUBITEM, sub.code, sub.category_code, sub.name_zh, sub.name_en,
                sub.description_zh, sub.description_en, sub.position, sub.enterprise,
                list(sub.basis))
            changed += int(status.split()[-1])
        for sql, codes in ((DEACTIVATE_SUBITEMS, [s.code for s in catalog.subitems]),
                           (DEACTIVATE_CATEGORIES, [c.code for c in catalog.categories])):
            status = await conn.execute(sql, codes)
            changed += int(status.split()[-1])
    return changed


async def catalog_rows(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """The active catalogue: one row per sub-item with its category, in catalogue order."""
    return await conn.fetch(SELECT_CATALOG)


async def parameters(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """The monitored parameters (HJ 212 codes) with names and units."""
    return await conn.fetch(SELECT_PARAMETERS)


async def vocabulary(conn: asyncpg.Connection) -> Vocabulary:
    """Active sub-items and known parameters, for validation."""
    subs = await conn.fetch(SELECT_VOCABULARY_SUBITEMS)
    params = await conn.fetch(SELECT_PARAMETERS)
    return Vocabulary(subitems={r["code"]: r["enterprise"] for r in subs},
                      parameters={r["code"]: (r["medium"], r["unit"]) for r in params})


# -- enterprises, outlets, limits, key listings --------------------------------------------

ENTERPRISE_COLUMNS = """
e.id, e.credit_code, e.name_zh, e.name_en, e.county_code, co.name_zh AS county_name_zh,
co.name_en AS county_name_en, e.industry_code, e.industry, e.address, e.lat, e.lon,
e.legal_representative, e.permit_no, e.control_level, e.is_sample, e.created_at, e.updated_at
"""
SELECT_ENTERPRISE = f"""
SELECT {ENTERPRISE_COLUMNS}
FROM enterprises e JOIN counties co ON co.code = e.county_code
WHERE e.credit_code = $1
"""
SELECT_ENTERPRISE_IDS = """
SELECT credit_code, id FROM enterprises WHERE credit_code = ANY($1::text[])
"""
INSERT_ENTERPRISE = """
INSERT INTO enterprises (credit_code, name_zh, name_en, county_code, industry_code, industry,
                         address, lat, lon, legal_representative, permit_no, control_level,
                         is_sample)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
RETURNING id
"""
UPDATE_ENTERPRISE = """
UPDATE enterprises SET
    name_zh = $2, name_en = $3, county_code = $4, industry_code = $5, industry = $6,
    address = $7, lat = $8, lon = $9, legal_representative = $10, permit_no = $11,
    control_level = $12, is_sample = $13, updated_at = now()
WHERE credit_code = $1
  AND (name_zh, name_en, county_code, industry_code, industry, address, lat, lon,
       legal_representative, permit_no, control_level, is_sample)
      IS DISTINCT FROM ($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
RETURNING id
"""
SELECT_OUTLETS = """
SELECT id, enterprise_id, outlet_code, name, kind, category, lat, lon, hj212_mn, active,
       created_at, updated_at
FROM discharge_outlets WHERE enterprise_id = $1 ORDER BY outlet_code
"""
SELECT_OUTLET = """
SELECT o.id, o.enterprise_id, o.outlet_code, o.name, o.kind, o.category, o.lat, o.lon,
       o.hj212_mn, o.active, o.created_at, o.updated_at
FROM discharge_outlets o JOIN enterprises e ON e.id = o.enterprise_id
WHERE e.credit_code = $1 AND o.outlet_code = $2
"""
UPSERT_OUTLET = """
INSERT INTO discharge_outlets (enterprise_id, outlet_code, name, kind, category, lat, lon,
                               hj212_mn, active)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (enterprise_id, outlet_code) DO UPDATE SET
    name = EXCLUDED.name, kind = EXCLUDED.kind, category = EXCLUDED.category,
    lat = EXCLUDED.lat, lon = EXCLUDED.lon, hj212_mn = EXCLUDED.hj212_mn,
    active = EXCLUDED.active, updated_at = now()
RETURNING id
"""
SELECT_LIMITS = """
SELECT l.outlet_id, l.parameter, p.name_zh AS parameter_name_zh,
       p.name_en AS parameter_name_en, l.upper_limit, l.lower_limit, l.unit, l.standard,
       l.reference_o2_pct
FROM outlet_limits l JOIN monitoring_parameters p ON p.code = l.parameter
WHERE l.outlet_id = ANY($1::bigint[])
ORDER BY l.outlet_id, p.position, l.parameter
"""
DELETE_LIMITS = "DELETE FROM outlet_limits WHERE outlet_id = $1"
INSERT_LIMIT = """
INSERT INTO outlet_limits (outlet_id, parameter, upper_limit, lower_limit, unit, standard,
                           reference_o2_pct)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
SELECT_KEY_LISTINGS = """
SELECT year, categories, note FROM key_polluter_listings WHERE enterprise_id = $1
ORDER BY year DESC
"""
UPSERT_KEY_LISTING = """
INSERT INTO key_polluter_listings (enterprise_id, year, categories, note)
VALUES ($1, $2, $3, $4)
ON CONFLICT (enterprise_id, year) DO UPDATE SET categories = EXCLUDED.categories,
                                                note = EXCLUDED.note
"""
DELETE_KEY_LISTING = """
DELETE FROM key_polluter_listings WHERE enterprise_id = $1 AND year = $2
RETURNING year, categories, note
"""


def _enterprise_args(ent: EnterpriseIn) -> tuple[Any, ...]:
    return (ent.credit_code, ent.name_zh, ent.name_en, ent.county_code, ent.industry_code,
            ent.industry, ent.address, ent.lat, ent.lon, ent.legal_representative,
            ent.permit_no, ent.control_level, ent.is_sample)


async def get_enterprise(conn: asyncpg.Connection, credit_code: str) -> asyncpg.Record | None:
    """One enterprise (with its county's names) by credit code."""
    return await conn.fetchrow(SELECT_ENTERPRISE, credit_code)


async def enterprise_ids(conn: asyncpg.Connection, codes: Sequence[str]) -> dict[str, int]:
    """credit code → id for the known codes among ``codes``."""
    rows = await conn.fetch(SELECT_ENTERPRISE_IDS, list(codes))
    return {r["credit_code"]: r["id"] for r in rows}


async def insert_enterprise(conn: asyncpg.Connection, ent: EnterpriseIn) -> int:
    """A new enterprise; its id."""
    return await conn.fetchval(INSERT_ENTERPRISE, *_enterprise_args(ent))


async def update_enterprise(conn: asyncpg.Connection, ent: EnterpriseIn) -> bool:
    """Replace an enterprise's fields (by credit code); False when nothing changed."""
    return await conn.fetchval(UPDATE_ENTERPRISE, *_enterprise_args(ent)) is not None


async def outlets_of(conn: asyncpg.Connection, enterprise_id: int) -> list[asyncpg.Record]:
    """An enterprise's discharge outlets."""
    return await conn.fetch(SELECT_OUTLETS, enterprise_id)


async def get_outlet(conn: asyncpg.Connection, credit_code: str,
                     outlet_code: str) -> asyncpg.Record | None:
    """One outlet by enterprise credit code and permit outlet number."""
    return await conn.fetchrow(SELECT_OUTLET, credit_code, outlet_code)


async def limits_of(conn: asyncpg.Connection, outlet_ids: Sequence[int]) -> list[asyncpg.Record]:
    """The limits of some outlets (with parameter names)."""
    return await conn.fetch(SELECT_LIMITS, list(outlet_ids))


async def upsert_outlet(conn: asyncpg.Connection, enterprise_id: int, outlet: OutletIn,
                        *, replace_limits: bool = True) -> int:
    """Create or update an outlet; its limits are replaced by the given ones. Its id."""
    outlet_id = await conn.fetchval(
        UPSERT_OUTLET, enterprise_id, outlet.outlet_code, outlet.name, outlet.kind,
        outlet.category, outlet.lat, outlet.lon, outlet.hj212_mn, outlet.active)
    if replace_limits:
        await conn.execute(DELETE_LIMITS, outlet_id)
        await conn.executemany(INSERT_LIMIT, [_limit_args(outlet_id, lim)
                                              for lim in outlet.limits])
    return outlet_id


def _limit_args(outlet_id: int, lim: LimitIn) -> tuple[Any, ...]:
    return (outlet_id, lim.parameter, lim.upper_limit, lim.lower_limit, lim.unit, lim.standard,
            lim.reference_o2_pct)


async def key_listings_of(conn: asyncpg.Connection, enterprise_id: int) -> list[asyncpg.Record]:
    """The years an enterprise is on the key-polluter list, newest first."""
    return await conn.fetch(SELECT_KEY_LISTINGS, enterprise_id)


async def set_key_listing(conn: asyncpg.Connection, enterprise_id: int,
                          listing: KeyListingIn) -> None:
    """Put an enterprise on the list of a year (or change its categories)."""
    await conn.execute(UPSERT_KEY_LISTING, enterprise_id, listing.year,
                       list(listing.categories), listing.note)


async def delete_key_listing(conn: asyncpg.Connection, enterprise_id: int,
                             year: int) -> asyncpg.Record | None:
    """Take an enterprise off a year's list; the removed row (None if it was not on it)."""
    return await conn.fetchrow(DELETE_KEY_LISTING, enterprise_id, year)


# -- attachments ---------------------------------------------------------------------------

ATTACHMENT_COLUMNS = """
id, storage_name, filename, content_type, size_bytes, sha256, uploaded_at, uploaded_by,
is_sample
"""
INSERT_ATTACHMENT = f"""
INSERT INTO attachments (storage_name, filename, content_type, size_bytes, sha256,
                         uploaded_by, is_sample)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING {ATTACHMENT_COLUMNS}
"""
SELECT_ATTACHMENT = f"SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE id = $1"
SELECT_ATTACHMENT_BY_SHA = f"""
SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE sha256 = $1 AND filename = $2
ORDER BY uploaded_at LIMIT 1
"""
SELECT_KNOWN_ATTACHMENTS = "SELECT id FROM attachments WHERE id = ANY($1::uuid[])"
# an attachment is published with what links it: a record's version, a penalty decision,
# an EIA stage (all public once written); until then only the bureau sees it
ATTACHMENT_IS_LINKED = """
SELECT EXISTS (SELECT 1 FROM disclosure_record_attachments WHERE attachment_id = $1)
    OR EXISTS (SELECT 1 FROM penalties WHERE attachment_id = $1)
    OR EXISTS (SELECT 1 FROM eia_stages WHERE attachment_id = $1)
"""


async def insert_attachment(conn: asyncpg.Connection, storage_name: str, filename: str,
                            content_type: str, size: int, sha256: str, uploaded_by: str,
                            is_sample: bool = False) -> asyncpg.Record:
    """Record a stored file; the new row."""
    return await conn.fetchrow(INSERT_ATTACHMENT, storage_name, filename, content_type, size,
                               sha256, uploaded_by, is_sample)


async def get_attachment(conn: asyncpg.Connection, attachment_id: uuid.UUID
                         ) -> asyncpg.Record | None:
    """One attachment's metadata."""
    return await conn.fetchrow(SELECT_ATTACHMENT, attachment_id)


async def attachment_is_linked(conn: asyncpg.Connection, attachment_id: uuid.UUID) -> bool:
    """Whether a published record version, penalty or EIA stage links the attachment."""
    return await conn.fetchval(ATTACHMENT_IS_LINKED, attachment_id)


async def attachment_by_content(conn: asyncpg.Connection, sha256: str,
                                filename: str) -> asyncpg.Record | None:
    """An attachment with this content and name (seed loading is idempotent by it)."""
    return await conn.fetchrow(SELECT_ATTACHMENT_BY_SHA, sha256, filename)


async def unknown_attachments(conn: asyncpg.Connection,
                              ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """The ids among ``ids`` that are not stored."""
    if not ids:
        return []
    known = {r["id"] for r in await conn.fetch(SELECT_KNOWN_ATTACHMENTS, list(ids))}
    return [i for i in ids if i not in known]


# -- disclosure records --------------------------------------------------------------------

RECORD_COLUMNS = """
id, ref, subitem_code, category_code, subitem_name_zh, subitem_name_en, category_name_zh,
category_name_en, enterprise_id, credit_code, enterprise_name_zh, enterprise_name_en,
county_code, title, body, effective_on, published_at, updated_at, version, status,
status_reason, retracted_at, publisher, is_sample
"""
SELECT_RECORD = f"SELECT {RECORD_COLUMNS} FROM disclosure_record_list WHERE id = $1"
SELECT_RECORD_BY_REF = f"SELECT {RECORD_COLUMNS} FROM disclosure_record_list WHERE ref = $1"
LOCK_RECORD = "SELECT id, version, status FROM disclosure_records WHERE id = $1 FOR UPDATE"
INSERT_RECORD = """
INSERT INTO disclosure_records (ref, subitem_code, enterprise_id, title, body, effective_on,
                                published_at, updated_at, publisher, is_sample)
VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9)
RETURNING id
"""
INSERT_VERSION = """
INSERT INTO disclosure_record_versions (record_id, version, change, subitem_code,
                                        enterprise_id, title, body, effective_on,
                                        published_at, note, actor)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
"""
COPY_VERSION = """
INSERT INTO disclosure_record_versions (record_id, version, change, subitem_code,
                                        enterprise_id, title, body, effective_on,
                                        published_at, note, actor)
SELECT record_id, $2, $3, subitem_code, enterprise_id, title, body, effective_on, $4, $5, $6
FROM disclosure_record_versions WHERE record_id = $1 AND version = $2 - 1
"""
INSERT_VERSION_ATTACHMENTS = """
INSERT INTO disclosure_record_attachments (record_id, version, position, attachment_id)
SELECT $1, $2, a.position, a.attachment_id
FROM unnest($3::uuid[]) WITH ORDINALITY AS a(attachment_id, position)
"""
COPY_VERSION_ATTACHMENTS = """
INSERT INTO disclosure_record_attachments (record_id, version, position, attachment_id)
SELECT record_id, $2, position, attachment_id
FROM disclosure_record_attachments WHERE record_id = $1 AND version = $2 - 1
"""
UPDATE_RECORD_CORRECTED = """
UPDATE disclosure_records SET
    subitem_code = $2, enterprise_id = $3, title = $4, body = $5, effective_on = $6,
    version = $7, status = 'corrected', status_reason = $8, updated_at = $9
WHERE id = $1
"""
UPDATE_RECORD_RETRACTED = """
UPDATE disclosure_records SET
    version = $2, status = 'retracted', status_reason = $3, retracted_at = $4, updated_at = $4
WHERE id = $1
"""
SELECT_VERSIONS = """
SELECT v.version, v.change, v.subitem_code, v.enterprise_id, e.credit_code, v.title, v.body,
       v.effective_on, v.published_at, v.note, v.actor
FROM disclosure_record_versions v LEFT JOIN enterprises e ON e.id = v.enterprise_id
WHERE v.record_id = $1
ORDER BY v.version
"""
SELECT_RECORD_ATTACHMENTS = f"""
SELECT ra.version, ra.position, {", ".join("a." + c.strip() for c in
                                           ATTACHMENT_COLUMNS.split(","))}
FROM disclosure_record_attachments ra JOIN attachments a ON a.id = ra.attachment_id
WHERE ra.record_id = $1 AND ($2::integer IS NULL OR ra.version = $2)
ORDER BY ra.version, ra.position
"""
STATS_BY_SUBITEM = """
SELECT c.code AS category_code, c.name_zh AS category_name_zh, c.name_en AS category_name_en,
       s.code AS subitem_code, s.name_zh AS subitem_name_zh, s.name_en AS subitem_name_en,
       count(r.id) AS records,
       count(r.id) FILTER (WHERE r.status = 'published') AS published,
       count(r.id) FILTER (WHERE r.status = 'corrected') AS corrected,
       count(r.id) FILTER (WHERE r.status = 'retracted') AS retracted
FROM disclosure_subitems s
JOIN disclosure_categories c ON c.code = s.category_code
LEFT JOIN disclosure_records r
    ON r.subitem_code = s.code
   AND ($1::timestamptz IS NULL OR r.published_at >= $1)
   AND ($2::timestamptz IS NULL OR r.published_at < $2)
   AND ($3::boolean IS NULL OR r.is_sample = $3)
WHERE s.active OR r.id IS NOT NULL
GROUP BY c.code, c.position, s.code, s.position
ORDER BY c.position, s.position
"""
STATS_BY_MONTH = """
SELECT date_trunc('month', r.published_at AT TIME ZONE 'Asia/Shanghai')::date AS month,
       s.category_code, r.subitem_code, count(*) AS records,
       count(*) FILTER (WHERE r.status = 'retracted') AS retracted
FROM disclosure_records r JOIN disclosure_subitems s ON s.code = r.subitem_code
WHERE ($1::timestamptz IS NULL OR r.published_at >= $1)
  AND ($2::timestamptz IS NULL OR r.published_at < $2)
  AND ($3::boolean IS NULL OR r.is_sample = $3)
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
"""


async def get_record(conn: asyncpg.Connection, record_id: int) -> asyncpg.Record | None:
    """A record's current state with catalogue and enterprise names (retracted ones too)."""
    return await conn.fetchrow(SELECT_RECORD, record_id)


async def get_record_by_ref(conn: asyncpg.Connection, ref: str) -> asyncpg.Record | None:
    """A record by the bureau's reference."""
    return await conn.fetchrow(SELECT_RECORD_BY_REF, ref)


async def lock_record(conn: asyncpg.Connection, record_id: int) -> asyncpg.Record | None:
    """Lock a record's row for a correction or retraction (inside a transaction)."""
    return await conn.fetchrow(LOCK_RECORD, record_id)


async def record_versions(conn: asyncpg.Connection, record_id: int) -> list[asyncpg.Record]:
    """Every version of a record, oldest first."""
    return await conn.fetch(SELECT_VERSIONS, record_id)


async def record_attachments(conn: asyncpg.Connection, record_id: int,
                             version: int | None = None) -> list[asyncpg.Record]:
    """Attachments of a record's versions (or of one version), in order."""
    return await conn.fetch(SELECT_RECORD_ATTACHMENTS, record_id, version)


async def insert_record(conn: asyncpg.Connection, *, ref: str | None, subitem_code: str,
                        enterprise_id: int | None, title: str, body: str,
                        effective_on: date | None, published_at: datetime, publisher: str,
                        is_sample: bool, attachments: Sequence[uuid.UUID], actor: str) -> int:
    """A new record and its version 1; its id."""
    record_id = await conn.fetchval(INSERT_RECORD, ref, subitem_code, enterprise_id, title,
                                    body, effective_on, published_at, publisher, is_sample)
    await conn.execute(INSERT_VERSION, record_id, 1, "created", subitem_code, enterprise_id,
                       title, body, effective_on, published_at, "", actor)
    await conn.execute(INSERT_VERSION_ATTACHMENTS, record_id, 1, list(attachments))
    return record_id


async def correct_record(conn: asyncpg.Connection, record_id: int, version: int, *,
                         subitem_code: str, enterprise_id: int | None, title: str, body: str,
                         effective_on: date | None, attachments: Sequence[uuid.UUID],
                         note: str, at: datetime, actor: str) -> None:
    """Version ``version`` correcting the previous one (the caller locked the record)."""
    await conn.execute(INSERT_VERSION, record_id, version, "corrected", subitem_code,
                       enterprise_id, title, body, effective_on, at, note, actor)
    await conn.execute(INSERT_VERSION_ATTACHMENTS, record_id, version, list(attachments))
    await conn.execute(UPDATE_RECORD_CORRECTED, record_id, subitem_code, enterprise_id, title,
                       body, effective_on, version, note, at)


async def retract_record(conn: asyncpg.Connection, record_id: int, version: int, *,
                         reason: str, at: datetime, actor: str) -> None:
    """Version ``version``: the previous content, retracted with a public reason."""
    await conn.execute(COPY_VERSION, record_id, version, "retracted", at, reason, actor)
    await conn.execute(COPY_VERSION_ATTACHMENTS, record_id, version)
    await conn.execute(UPDATE_RECORD_RETRACTED, record_id, version, reason, at)


async def record_stats(conn: asyncpg.Connection, *, published_from: datetime | None = None,
                       published_before: datetime | None = None,
                       sample: bool | None = None) -> list[asyncpg.Record]:
    """Records per sub-item (with category), by status: the yearly report's figures."""
    return await conn.fetch(STATS_BY_SUBITEM, published_from, published_before, sample)


async def record_stats_by_month(conn: asyncpg.Connection, *,
                                published_from: datetime | None = None,
                                published_before: datetime | None = None,
                                sample: bool | None = None) -> list[asyncpg.Record]:
    """Records per month (Asia/Shanghai), category and sub-item."""
    return await conn.fetch(STATS_BY_MONTH, published_from, published_before, sample)


# -- administrative penalties ---------------------------------------------------------------

PENALTY_COLUMNS = """
p.id, p.decision_no, p.enterprise_id, e.name_zh AS enterprise_name_zh, e.county_code,
p.party_name, p.credit_code, p.violation, p.legal_basis, p.penalty, p.fine_amount,
p.decision_date, p.enforcement_status, p.record_id, p.attachment_id, p.published_at,
p.is_sample, p.created_at, p.updated_at
"""
SELECT_PENALTY = f"""
SELECT {PENALTY_COLUMNS} FROM penalties p LEFT JOIN enterprises e ON e.id = p.enterprise_id
WHERE p.id = $1
"""
SELECT_PENALTY_BY_NO = f"""
SELECT {PENALTY_COLUMNS} FROM penalties p LEFT JOIN enterprises e ON e.id = p.enterprise_id
WHERE p.decision_no = $1
"""
INSERT_PENALTY = """
INSERT INTO penalties (decision_no, enterprise_id, party_name, credit_code, violation,
                       legal_basis, penalty, fine_amount, decision_date, enforcement_status,
                       attachment_id, published_at, is_sample)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, coalesce($12, now()), $13)
RETURNING id
"""
UPDATE_PENALTY = """
UPDATE penalties SET
    enterprise_id = $2, party_name = $3, credit_code = $4, violation = $5, legal_basis = $6,
    penalty = $7, fine_amount = $8, decision_date = $9, enforcement_status = $10,
    attachment_id = $11, published_at = coalesce($12, published_at), is_sample = $13,
    updated_at = now()
WHERE decision_no = $1
  AND (enterprise_id, party_name, credit_code, violation, legal_basis, penalty, fine_amount,
       decision_date, enforcement_status, attachment_id, is_sample)
      IS DISTINCT FROM ($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $13)
RETURNING id
"""
def _penalty_args(pen: PenaltyIn, enterprise_id: int | None) -> tuple[Any, ...]:
    return (pen.decision_no, enterprise_id, pen.party_name, pen.credit_code, pen.violation,
            pen.legal_basis, pen.penalty, pen.fine_amount, pen.decision_date,
            pen.enforcement_status, pen.attachment_id, pen.published_at, pen.is_sample)


async def get_penalty(conn: asyncpg.Connection, penalty_id: int) -> asyncpg.Record | None:
    """One penalty by id."""
    return await conn.fetchrow(SELECT_PENALTY, penalty_id)


async def get_penalty_by_no(conn: asyncpg.Connection, decision_no: str) -> asyncpg.Record | None:
    """One penalty by decision number."""
    return await conn.fetchrow(SELECT_PENALTY_BY_NO, decision_no)


async def insert_penalty(conn: asyncpg.Connection, pen: PenaltyIn,
                         enterprise_id: int | None) -> int:
    """A new penalty; its id."""
    return await conn.fetchval(INSERT_PENALTY, *_penalty_args(pen, enterprise_id))


async def update_penalty(conn: asyncpg.Connection, pen: PenaltyIn,
                         enterprise_id: int | None) -> bool:
    """Replace a penalty's fields (by decision number); False when nothing changed."""
    return await conn.fetchval(UPDATE_PENALTY, *_penalty_args(pen, enterprise_id)) is not None


# -- EIA projects and stages ---------------------------------------------------------------

EIA_COLUMNS = """
p.id, p.project_code, p.name, p.builder, p.builder_credit_code, p.enterprise_id,
p.county_code, co.name_zh AS county_name_zh, co.name_en AS county_name_en, p.location, p.lat,
p.lon, p.project_type, p.document_kind, p.eia_agency, p.summary, p.is_sample, p.created_at,
p.updated_at,
(SELECT s.stage FROM eia_stages s WHERE s.project_id = p.id
 ORDER BY array_position(ARRAY['acceptance', 'pre_approval', 'approval',
                               'completion_acceptance'], s.stage) DESC LIMIT 1)
    AS latest_stage
"""
SELECT_EIA = f"""
SELECT {EIA_COLUMNS} FROM eia_projects p JOIN counties co ON co.code = p.county_code
WHERE p.id = $1
"""
SELECT_EIA_BY_CODE = f"""
SELECT {EIA_COLUMNS} FROM eia_projects p JOIN counties co ON co.code = p.county_code
WHERE p.project_code = $1
"""
UPSERT_EIA = """
INSERT INTO eia_projects (project_code, name, builder, builder_credit_code, enterprise_id,
                         county_code, location, lat, lon, project_type, document_kind,
                         eia_agency, summary, is_sample)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (project_code) DO UPDATE SET
    name = EXCLUDED.name, builder = EXCLUDED.builder,
    builder_credit_code = EXCLUDED.builder_credit_code, enterprise_id = EXCLUDED.enterprise_id,
    county_code = EXCLUDED.county_code, location = EXCLUDED.location, lat = EXCLUDED.lat,
    lon = EXCLUDED.lon, project_type = EXCLUDED.project_type,
    document_kind = EXCLUDED.document_kind, eia_agency = EXCLUDED.eia_agency,
    summary = EXCLUDED.summary, is_sample = EXCLUDED.is_sample, updated_at = now()
RETURNING id
"""
SELECT_STAGES = """
SELECT s.project_id, s.stage, s.published_on, s.comment_from, s.comment_until, s.decision_no,
       s.decision_date, s.outcome, s.attachment_id, a.filename AS attachment_filename,
       a.content_type AS attachment_content_type, a.size_bytes AS attachment_size_bytes,
       a.sha256 AS attachment_sha256, s.note, s.created_at, s.updated_at
FROM eia_stages s LEFT JOIN attachments a ON a.id = s.attachment_id
WHERE s.project_id = ANY($1::bigint[])
ORDER BY s.project_id,
         array_position(ARRAY['acceptance', 'pre_approval', 'approval',
                              'completion_acceptance'], s.stage)
"""
UPSERT_STAGE = """
INSERT INTO eia_stages (project_id, stage, published_on, comment_from, comment_until,
                        decision_no, decision_date, outcome, attachment_id, note)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (project_id, stage) DO UPDATE SET
    published_on = EXCLUDED.published_on, comment_from = EXCLUDED.comment_from,
    comment_until = EXCLUDED.comment_until, decision_no = EXCLUDED.decision_no,
    decision_date = EXCLUDED.decision_date, outcome = EXCLUDED.outcome,
    attachment_id = EXCLUDED.attachment_id, note = EXCLUDED.note, updated_at = now()
"""
async def get_eia_project(conn: asyncpg.Connection, project_id: int) -> asyncpg.Record | None:
    """One EIA project by id (with its latest stage)."""
    return await conn.fetchrow(SELECT_EIA, project_id)


async def get_eia_by_code(conn: asyncpg.Connection, code: str) -> asyncpg.Record | None:
    """One EIA project by project code."""
    return await conn.fetchrow(SELECT_EIA_BY_CODE, code)


async def upsert_eia_project(conn: asyncpg.Connection, project: EiaProjectIn,
                             enterprise_id: int | None) -> int:
    """Create or update a project by project code; its id."""
    return await conn.fetchval(
        UPSERT_EIA, project.project_code, project.name, project.builder,
        project.builder_credit_code, enterprise_id, project.county_code, project.location,
        project.lat, project.lon, project.project_type, project.document_kind,
        project.eia_agency, project.summary, project.is_sample)


async def eia_stages_of(conn: asyncpg.Connection,
                        project_ids: Sequence[int]) -> list[asyncpg.Record]:
    """Stages of some projects in procedural order, with their documents' metadata."""
    return await conn.fetch(SELECT_STAGES, list(project_ids))


async def upsert_eia_stage(conn: asyncpg.Connection, project_id: int,
                           stage: EiaStageIn) -> None:
    """Create or replace one stage of a project."""
    await conn.execute(UPSERT_STAGE, project_id, stage.stage, stage.published_on,
                       stage.comment_from, stage.comment_until, stage.decision_no,
                       stage.decision_date, stage.outcome, stage.attachment_id, stage.note)


# -- monitoring results --------------------------------------------------------------------

MONITORING_COLUMNS = """
m.id, e.credit_code, e.name_zh AS enterprise_name_zh, o.outlet_code, o.kind AS outlet_kind,
m.parameter, pa.name_zh AS parameter_name_zh, pa.name_en AS parameter_name_en, m.source,
m.method, m.period, m.measured_at, m.value, m.measured_value, m.min_value, m.max_value,
m.amount, m.unit, m.upper_limit, m.lower_limit, m.flag, m.compliant, m.exceedance_multiple,
m.agency, m.report_no, m.record_id, m.is_sample, m.created_at, m.updated_at
"""
UPSERT_MONITORING = """
INSERT INTO monitoring_results AS m (outlet_id, parameter, source, method, period,
                                     measured_at, value, measured_value, min_value,
                                     max_value, amount, unit, upper_limit, lower_limit, flag,
                                     agency, report_no, is_sample)
SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
       coalesce($12, l.unit, p.unit),
       CASE WHEN $13::numeric IS NULL AND $14::numeric IS NULL THEN l.upper_limit ELSE $13 END,
       CASE WHEN $13::numeric IS NULL AND $14::numeric IS NULL THEN l.lower_limit ELSE $14 END,
       $15, $16, $17, $18
FROM monitoring_parameters p
LEFT JOIN outlet_limits l ON l.outlet_id = $1 AND l.parameter = p.code
WHERE p.code = $2
ON CONFLICT (outlet_id, parameter, source, period, measured_at) DO UPDATE SET
    method = EXCLUDED.method, value = EXCLUDED.value,
    measured_value = EXCLUDED.measured_value, min_value = EXCLUDED.min_value,
    max_value = EXCLUDED.max_value, amount = EXCLUDED.amount, unit = EXCLUDED.unit,
    upper_limit = EXCLUDED.upper_limit, lower_limit = EXCLUDED.lower_limit,
    flag = EXCLUDED.flag, agency = EXCLUDED.agency, report_no = EXCLUDED.report_no,
    is_sample = EXCLUDED.is_sample, updated_at = now()
WHERE (m.method, m.value, m.measured_value, m.min_value, m.max_value, m.amount, m.unit,
       m.upper_limit, m.lower_limit, m.flag, m.agency, m.report_no, m.is_sample)
    IS DISTINCT FROM (EXCLUDED.method, EXCLUDED.value, EXCLUDED.measured_value,
                      EXCLUDED.min_value, EXCLUDED.max_value, EXCLUDED.amount, EXCLUDED.unit,
                      EXCLUDED.upper_limit, EXCLUDED.lower_limit, EXCLUDED.flag,
                      EXCLUDED.agency, EXCLUDED.report_no, EXCLUDED.is_sample)
RETURNING m.id, (m.xmax = 0) AS inserted
"""
SELECT_MONITORING = f"""
SELECT {MONITORING_COLUMNS}
FROM monitoring_results m
JOIN discharge_outlets o ON o.id = m.outlet_id
JOIN enterprises e ON e.id = o.enterprise_id
JOIN monitoring_parameters pa ON pa.code = m.parameter
WHERE m.id = $1
"""
SELECT_MONITORING_BY_KEY = f"""
SELECT {MONITORING_COLUMNS}
FROM monitoring_results m
JOIN discharge_outlets o ON o.id = m.outlet_id
JOIN enterprises e ON e.id = o.enterprise_id
JOIN monitoring_parameters pa ON pa.code = m.parameter
WHERE m.outlet_id = $1 AND m.parameter = $2 AND m.source = $3 AND m.period = $4
  AND m.measured_at = $5
"""
async def upsert_monitoring(conn: asyncpg.Connection, outlet_id: int,
                            res: MonitoringIn) -> tuple[int, bool] | None:
    """Store one result on its natural key; (id, inserted) or None when unchanged.

    Without limits in the input, the outlet's permitted limits are copied; without a unit,
    the limit's or the parameter's.
    """
    row = await conn.fetchrow(
        UPSERT_MONITORING, outlet_id, res.parameter, res.source, res.method, res.period,
        res.measured_at, res.value, res.measured_value, res.min_value, res.max_value,
        res.amount, res.unit, res.upper_limit, res.lower_limit, res.flag, res.agency,
        res.report_no, res.is_sample)
    return (row["id"], row["inserted"]) if row else None


async def get_monitoring(conn: asyncpg.Connection, result_id: int) -> asyncpg.Record | None:
    """One monitoring result with enterprise, outlet and parameter names."""
    return await conn.fetchrow(SELECT_MONITORING, result_id)


async def get_monitoring_by_key(conn: asyncpg.Connection, outlet_id: int,
                                res: MonitoringIn) -> asyncpg.Record | None:
    """The stored result with the natural key of ``res``."""
    return await conn.fetchrow(SELECT_MONITORING_BY_KEY, outlet_id, res.parameter, res.source,
                               res.period, res.measured_at)
