"""The disclosure lists: one query per list, for the public side and the admin API.

Enterprises, records, penalties, EIA projects and monitoring results. Each list is one SQL
text with every filter as a switch (``($n IS NULL OR …)``: a filter left out is None), in
two views of the same rows: ``PUBLIC`` (what API v1 and the pages publish) and ``ADMIN``
(the admin API's columns: internal ids and change times). Only enterprises are ordered
differently by view (the public list by county, name and id; the admin list by id). Free
text goes through the schema's search support (character bigrams in a GIN index,
confirmed by substring), so Chinese text is found by any two characters in a word. Each
list pages by a signed keyset cursor on its order (:mod:`aqi_service.storage.cursors`),
never OFFSET. Named SQL with ``$n`` parameters only; the SQL texts are made once, here,
from constants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

import asyncpg

from aqi_service.storage.cursors import after, clamp, page
from aqi_service.storage.disclosure import (
    EIA_COLUMNS,
    ENTERPRISE_COLUMNS,
    MONITORING_COLUMNS,
    PENALTY_COLUMNS,
)

View = Literal["public", "admin"]
PUBLIC: View = "public"
ADMIN: View = "admin"
Rows = tuple[list[asyncpg.Record], str | None]


@dataclass(frozen=True)
class _Order:
    """A list's order and its keyset: cursor kind, sort-key columns, their types."""

    kind: str
    key: tuple[str, ...]
    types: tuple[type, ...]


async def _fetch(conn: asyncpg.Connection, sql: str, order: _Order, filters: Sequence[object],
                 cursor: str | None, limit: int) -> Rows:
    limit = clamp(limit)
    rows = await conn.fetch(sql, *filters, *after(order.kind, cursor, order.types), limit + 1)
    return page(rows, limit, order.kind, order.key)


def _search(alias: str, n: int) -> str:
    return (f"(${n}::text IS NULL OR ({alias}.search_tokens @> search_bigrams(${n})\n"
            f"                          AND search_matches({alias}.search_text, ${n})))")


# -- enterprises ---------------------------------------------------------------------------

_ENTERPRISE_COLUMNS: dict[View, str] = {
    PUBLIC: """
e.id, e.credit_code, e.name_zh, e.name_en, e.county_code,
co.name_zh AS county_name_zh, co.name_en AS county_name_en, co.position AS county_position,
e.industry_code, e.industry, e.address, e.lat, e.lon, e.permit_no, e.control_level,
e.is_sample,
(SELECT max(k.year) FROM key_polluter_listings k WHERE k.enterprise_id = e.id)
    AS latest_key_list_year,
(SELECT count(*) FROM disclosure_records r WHERE r.enterprise_id = e.id) AS records,
(SELECT count(*) FROM penalties p WHERE p.enterprise_id = e.id) AS penalties""",
    ADMIN: f"""{ENTERPRISE_COLUMNS},
(SELECT max(k.year) FROM key_polluter_listings k WHERE k.enterprise_id = e.id)
    AS latest_key_list_year""",
}
_ENTERPRISE_ORDERS: dict[View, tuple[_Order, str, str]] = {
    PUBLIC: (_Order("enterprises", ("county_position", "name_zh", "id"), (int, str, int)),
             '($7::smallint IS NULL OR (co.position, e.name_zh COLLATE "C", e.id)\n'
             '       > ($7, $8::text COLLATE "C", $9::bigint))',
             'co.position, e.name_zh COLLATE "C", e.id\nLIMIT $10'),
    ADMIN: (_Order("admin enterprises", ("id",), (int,)),
            "($7::bigint IS NULL OR e.id > $7)", "e.id\nLIMIT $8"),
}
LIST_ENTERPRISES: dict[View, str] = {view: f"""
SELECT {_ENTERPRISE_COLUMNS[view]}
FROM enterprises e JOIN counties co ON co.code = e.county_code
WHERE ($1::text IS NULL OR e.county_code = $1)
  AND ($2::text IS NULL OR starts_with(e.industry_code, $2))
  AND ($3::text IS NULL OR e.control_level = $3)
  AND ($4::smallint IS NULL OR EXISTS (SELECT 1 FROM key_polluter_listings k
                                       WHERE k.enterprise_id = e.id AND k.year = $4))
  AND {_search("e", 5)}
  AND ($6::boolean IS NULL OR e.is_sample = $6)
  AND {keyset}
ORDER BY {order}
""" for view, (_, keyset, order) in _ENTERPRISE_ORDERS.items()}


async def list_enterprises(
    conn: asyncpg.Connection, *, view: View = PUBLIC, county: str | None = None,
    industry: str | None = None, control_level: str | None = None,
    key_list_year: int | None = None, q: str | None = None, sample: bool | None = None,
    cursor: str | None = None, limit: int = 50,
) -> Rows:
    """Enterprises; ``industry`` is a GB/T 4754 code prefix, ``q`` searches names, codes,
    industry and address."""
    return await _fetch(conn, LIST_ENTERPRISES[view], _ENTERPRISE_ORDERS[view][0],
                        (county, industry, control_level, key_list_year, q or None, sample),
                        cursor, limit)


# -- disclosure records --------------------------------------------------------------------

_RECORD_COLUMNS: dict[View, str] = {
    PUBLIC: """
r.id, r.ref, r.subitem_code, s.category_code, s.name_zh AS subitem_name_zh,
s.name_en AS subitem_name_en, c.name_zh AS category_name_zh, c.name_en AS category_name_en,
e.credit_code, e.name_zh AS enterprise_name_zh, e.name_en AS enterprise_name_en,
e.county_code, r.title, left(r.body, 200) AS excerpt, char_length(r.body) > 200 AS truncated,
r.effective_on, r.published_at, r.updated_at, r.version, r.status, r.status_reason,
r.retracted_at, r.publisher, r.is_sample""",
    ADMIN: """
r.id, r.ref, r.subitem_code, s.category_code, s.name_zh AS subitem_name_zh,
s.name_en AS subitem_name_en, c.name_zh AS category_name_zh, c.name_en AS category_name_en,
r.enterprise_id, e.credit_code, e.name_zh AS enterprise_name_zh,
e.name_en AS enterprise_name_en, e.county_code, r.title, r.body, r.effective_on,
r.published_at, r.updated_at, r.version, r.status, r.status_reason, r.retracted_at,
r.publisher, r.is_sample""",
}
_RECORD_ORDER = _Order("records", ("published_at", "id"), (datetime, int))
LIST_RECORDS: dict[View, str] = {view: f"""
SELECT {columns}
FROM disclosure_records r
JOIN disclosure_subitems s ON s.code = r.subitem_code
JOIN disclosure_categories c ON c.code = s.category_code
LEFT JOIN enterprises e ON e.id = r.enterprise_id
WHERE ($1::text IS NULL OR s.category_code = $1)
  AND ($2::text IS NULL OR r.subitem_code = $2)
  AND ($3::text IS NULL OR e.credit_code = $3)
  AND ($4::text IS NULL OR e.county_code = $4)
  AND ($5::text[] IS NULL OR r.status = ANY($5::text[]))
  AND ($6::timestamptz IS NULL OR r.published_at >= $6)
  AND ($7::timestamptz IS NULL OR r.published_at < $7)
  AND {_search("r", 8)}
  AND ($9::boolean IS NULL OR r.is_sample = $9)
  AND ($10::timestamptz IS NULL OR (r.published_at, r.id) < ($10, $11::bigint))
ORDER BY r.published_at DESC, r.id DESC
LIMIT $12
""" for view, columns in _RECORD_COLUMNS.items()}


async def list_records(
    conn: asyncpg.Connection, *, view: View = PUBLIC, category: str | None = None,
    subitem: str | None = None, credit_code: str | None = None, county: str | None = None,
    statuses: Sequence[str] | None = None, published_from: datetime | None = None,
    published_before: datetime | None = None, q: str | None = None,
    sample: bool | None = None, cursor: str | None = None, limit: int = 20,
) -> Rows:
    """Records newest first (retracted ones too unless ``statuses`` leaves them out)."""
    return await _fetch(conn, LIST_RECORDS[view], _RECORD_ORDER,
                        (category, subitem, credit_code, county,
                         list(statuses) if statuses else None, published_from,
                         published_before, q or None, sample), cursor, limit)


# -- penalties -----------------------------------------------------------------------------

_PENALTY_COLUMNS: dict[View, str] = {
    PUBLIC: """
p.id, p.decision_no, e.credit_code AS enterprise_credit_code,
e.name_zh AS enterprise_name_zh, e.county_code, p.party_name,
p.credit_code, p.violation, p.legal_basis, p.penalty, p.fine_amount, p.decision_date,
p.enforcement_status, p.record_id, p.attachment_id, p.published_at, p.is_sample""",
    ADMIN: PENALTY_COLUMNS,
}
_PENALTY_ORDER = _Order("penalties", ("decision_date", "id"), (date, int))
LIST_PENALTIES: dict[View, str] = {view: f"""
SELECT {columns}
FROM penalties p LEFT JOIN enterprises e ON e.id = p.enterprise_id
WHERE ($1::text IS NULL OR p.credit_code = $1 OR e.credit_code = $1)
  AND ($2::text IS NULL OR e.county_code = $2)
  AND ($3::text IS NULL OR p.enforcement_status = $3)
  AND ($4::date IS NULL OR p.decision_date >= $4)
  AND ($5::date IS NULL OR p.decision_date <= $5)
  AND {_search("p", 6)}
  AND ($7::boolean IS NULL OR p.is_sample = $7)
  AND ($8::date IS NULL OR (p.decision_date, p.id) < ($8, $9::bigint))
ORDER BY p.decision_date DESC, p.id DESC
LIMIT $10
""" for view, columns in _PENALTY_COLUMNS.items()}


async def list_penalties(
    conn: asyncpg.Connection, *, view: View = PUBLIC, credit_code: str | None = None,
    county: str | None = None, enforcement_status: str | None = None,
    decided_from: date | None = None, decided_until: date | None = None,
    q: str | None = None, sample: bool | None = None, cursor: str | None = None,
    limit: int = 20,
) -> Rows:
    """Penalty decisions, latest first; ``credit_code`` the party's (or linked enterprise's)."""
    return await _fetch(conn, LIST_PENALTIES[view], _PENALTY_ORDER,
                        (credit_code, county, enforcement_status, decided_from,
                         decided_until, q or None, sample), cursor, limit)


# -- EIA projects --------------------------------------------------------------------------

_LATEST_STAGE = """
(SELECT s.stage FROM eia_stages s WHERE s.project_id = p.id
 ORDER BY array_position(ARRAY['acceptance', 'pre_approval', 'approval',
                               'completion_acceptance'], s.stage) DESC LIMIT 1)
    AS latest_stage"""
_EIA_COLUMNS: dict[View, str] = {
    PUBLIC: f"""
p.id, p.project_code, p.name, p.builder, p.builder_credit_code, p.county_code,
co.name_zh AS county_name_zh, co.name_en AS county_name_en, p.location, p.lat, p.lon,
p.project_type, p.document_kind, p.eia_agency, p.summary, p.is_sample,{_LATEST_STAGE},
(SELECT max(s.published_on) FROM eia_stages s WHERE s.project_id = p.id)
    AS latest_published_on""",
    ADMIN: EIA_COLUMNS,
}
_EIA_ORDER = _Order("eia", ("id",), (int,))
LIST_EIA: dict[View, str] = {view: f"""
SELECT {columns}
FROM eia_projects p JOIN counties co ON co.code = p.county_code
LEFT JOIN enterprises e ON e.id = p.enterprise_id
WHERE ($1::text IS NULL OR p.county_code = $1)
  AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM eia_stages s
                                   WHERE s.project_id = p.id AND s.stage = $2))
  AND ($3::text IS NULL OR p.builder_credit_code = $3 OR e.credit_code = $3)
  AND ($4::text IS NULL OR p.document_kind = $4)
  AND {_search("p", 5)}
  AND ($6::boolean IS NULL OR p.is_sample = $6)
  AND ($7::bigint IS NULL OR p.id < $7)
ORDER BY p.id DESC
LIMIT $8
""" for view, columns in _EIA_COLUMNS.items()}


async def list_eia(
    conn: asyncpg.Connection, *, view: View = PUBLIC, county: str | None = None,
    stage: str | None = None, credit_code: str | None = None,
    document_kind: str | None = None, q: str | None = None, sample: bool | None = None,
    cursor: str | None = None, limit: int = 20,
) -> Rows:
    """EIA projects, newest first; ``stage``: those that reached it."""
    return await _fetch(conn, LIST_EIA[view], _EIA_ORDER,
                        (county, stage, credit_code, document_kind, q or None, sample),
                        cursor, limit)


# -- monitoring results (one view: the public side shows them as the admin API does) -------

_MONITORING_ORDER = _Order("monitoring", ("measured_at", "id"), (datetime, int))
LIST_MONITORING = f"""
SELECT {MONITORING_COLUMNS}
FROM monitoring_results m
JOIN discharge_outlets o ON o.id = m.outlet_id
JOIN enterprises e ON e.id = o.enterprise_id
JOIN monitoring_parameters pa ON pa.code = m.parameter
WHERE ($1::text IS NULL OR e.credit_code = $1)
  AND ($2::text IS NULL OR o.outlet_code = $2)
  AND ($3::text IS NULL OR m.parameter = $3)
  AND ($4::text IS NULL OR m.source = $4)
  AND ($5::boolean IS NULL OR m.compliant = $5)
  AND ($6::timestamptz IS NULL OR m.measured_at >= $6)
  AND ($7::timestamptz IS NULL OR m.measured_at < $7)
  AND ($8::boolean IS NULL OR m.is_sample = $8)
  AND ($9::timestamptz IS NULL OR (m.measured_at, m.id) < ($9, $10::bigint))
ORDER BY m.measured_at DESC, m.id DESC
LIMIT $11
"""


async def list_monitoring_results(
    conn: asyncpg.Connection, *, credit_code: str | None = None, outlet: str | None = None,
    parameter: str | None = None, source: str | None = None, compliant: bool | None = None,
    measured_from: datetime | None = None, measured_before: datetime | None = None,
    sample: bool | None = None, cursor: str | None = None, limit: int = 50,
) -> Rows:
    """Monitoring results, newest first; ``compliant=False`` lists exceedances."""
    return await _fetch(conn, LIST_MONITORING, _MONITORING_ORDER,
                        (credit_code, outlet, parameter, source, compliant, measured_from,
                         measured_before, sample), cursor, limit)
