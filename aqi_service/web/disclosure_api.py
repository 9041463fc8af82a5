"""Pollution-source and EIA disclosure, public side: JSON routes of API v1 and the set-up.

``/api/v1/enterprises``, ``/enterprises/{credit_code}``, ``/disclosures``,
``/disclosures/stats``, ``/disclosures/{id}``, ``/eia``, ``/eia/{id}``, ``/penalties``.
Lists page by an opaque keyset cursor (``next_cursor``); filters are parsed strictly (a bad
one is a 400 naming it, for the pages too: ``params.BadParameter``). :func:`setup_disclosure`
registers the JSON routes and the loading of the sample data (``[disclosure]
seed_sample_data``; unset: only with the embedded database, i.e. the demo).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import asyncpg
from aiohttp import web

from aqi_service.aqi.schemes import SHANGHAI
from aqi_service.disclosure import models
from aqi_service.disclosure import service as svc
from aqi_service.disclosure.serialize import row_json
from aqi_service.errors import InputError
from aqi_service.storage import cursors
from aqi_service.storage import disclosure as store
from aqi_service.storage import disclosure_lists as lists
from aqi_service.storage import disclosure_reads as reads
from aqi_service.web import conditional, keys, params
from aqi_service.web.errors import ApiError, json_route

log = logging.getLogger(__name__)

MAX_AGE = 60
"""Seconds a public disclosure answer may be cached (records change rarely, but do)."""
MAX_Q = 100
MAX_CURSOR = cursors.CURSOR_MAX_CHARS
ENTERPRISE_PAGE = 50
LIST_PAGE = 20
JOINED = 50
"""Rows of each kind on an enterprise's page (records, penalties, EIA, monitoring)."""
EARLIEST_YEAR, LATEST_YEAR = 2000, 2100
CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
SUBITEM_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}\.[a-z][a-z0-9_]{0,39}$")
CREDIT_CODE = params.CREDIT_CODE
INDUSTRY = re.compile(r"^[A-T]([0-9]{1,4})?$")
HIDDEN_OUTLET = ("id", "enterprise_id", "hj212_mn")
"""Not published: internal ids, and the data logger's HJ 212 MN (it addresses the device)."""


# -- strict filters ------------------------------------------------------------------------

class Query(params.Query):
    """:class:`params.Query` with the disclosure lists' search text, cursor and page size."""

    def search(self) -> str | None:
        """Free text ``q`` (every word must occur; Chinese by any two characters)."""
        return self.text("q", MAX_Q)

    def cursor(self) -> str | None:
        """The opaque cursor of the previous page."""
        return self.text("cursor", MAX_CURSOR)

    def limit(self, default: int) -> int:
        """Rows per page."""
        return self.integer("limit", 1, cursors.MAX_PAGE, default) or default


def shanghai_start(day: date) -> datetime:
    """Midnight at the start of ``day`` in Asia/Shanghai."""
    return datetime.combine(day, time(), tzinfo=SHANGHAI)


def _known(name: str, value: str | None, known: set[str]) -> None:
    if value is not None and value not in known:
        raise params.BadParameter(name, f"unknown code {value!r}", f"没有编码 {value!r}")


@dataclass
class Page:
    """One page of a list with the cursor of the next."""

    rows: list[asyncpg.Record]
    next_cursor: str | None
    filters: dict[str, Any] = field(default_factory=dict)


async def enterprise_page(conn: asyncpg.Connection, q: Query) -> Page:
    """Enterprises filtered by county, industry, control level, key-list year and text."""
    filters = {
        "county": q.choice("county", models.COUNTIES),
        "industry": q.pattern("industry", INDUSTRY, "an industry code (GB/T 4754, e.g. C30)",
                              "行业代码（GB/T 4754，如 C30）", upper=True),
        "control_level": q.choice("control_level", ("national", "provincial", "city")),
        "key_list_year": q.integer("key_list_year", EARLIEST_YEAR, LATEST_YEAR),
        "q": q.search(),
    }
    rows, nxt = await _paged(lists.list_enterprises(conn, **filters, cursor=q.cursor(),
                                                    limit=q.limit(ENTERPRISE_PAGE)))
    return Page(rows, nxt, filters)


async def record_page(conn: asyncpg.Connection, q: Query) -> Page:
    """Records filtered by catalogue, enterprise, text, publication days and status."""
    statuses = q.text("status", 40)
    status_list = None
    if statuses is not None:
        given = [s.strip() for s in statuses.split(",") if s.strip()]
        status_list = sorted(set(given))
        bad = [s for s in status_list if s not in models.RECORD_STATUSES]
        if bad or not status_list or len(given) != len(status_list):
            raise params.BadParameter("status", f"{statuses!r}: give one or more of "
                            f"{', '.join(models.RECORD_STATUSES)} (comma-separated)",
                            f"{statuses!r}：应为 {'、'.join(models.RECORD_STATUSES)} 之一或多个"
                            "（逗号分隔）")
    first, last = q.days()
    filters: dict[str, Any] = {
        "category": q.pattern("category", CODE, "a category code", "类别编码"),
        "subitem": q.pattern("subitem", SUBITEM_CODE, "a sub-item code (category.name)",
                             "子项编码（类别.名称）"),
        "enterprise": q.credit_code("enterprise"),
        "q": q.search(), "from": first, "to": last, "status": status_list,
    }
    cats, subs = await reads.catalog_codes(conn)
    _known("category", filters["category"], cats)
    _known("subitem", filters["subitem"], subs)
    rows, nxt = await _paged(lists.list_records(
        conn, category=filters["category"], subitem=filters["subitem"],
        credit_code=filters["enterprise"], statuses=status_list,
        published_from=shanghai_start(first) if first else None,
        published_before=shanghai_start(last + timedelta(days=1)) if last else None,
        q=filters["q"], cursor=q.cursor(), limit=q.limit(LIST_PAGE)))
    return Page(rows, nxt, filters)


async def penalty_page(conn: asyncpg.Connection, q: Query) -> Page:
    """Penalty decisions filtered by party, county, enforcement, decision days and text."""
    first, last = q.days()
    filters = {
        "enterprise": q.credit_code("enterprise"),
        "county": q.choice("county", models.COUNTIES),
        "status": q.choice("status", models.ENFORCEMENT),
        "from": first, "to": last, "q": q.search(),
    }
    rows, nxt = await _paged(lists.list_penalties(
        conn, credit_code=filters["enterprise"], county=filters["county"],
        enforcement_status=filters["status"], decided_from=first, decided_until=last,
        q=filters["q"], cursor=q.cursor(), limit=q.limit(LIST_PAGE)))
    return Page(rows, nxt, filters)


async def eia_page(conn: asyncpg.Connection, q: Query) -> Page:
    """EIA projects filtered by county, stage reached, builder, document kind and text."""
    filters = {
        "county": q.choice("county", models.COUNTIES),
        "stage": q.choice("stage", models.EIA_STAGES),
        "enterprise": q.credit_code("enterprise"),
        "document_kind": q.choice("document_kind", ("report", "table")),
        "q": q.search(),
    }
    rows, nxt = await _paged(lists.list_eia(
        conn, county=filters["county"], stage=filters["stage"],
        credit_code=filters["enterprise"], document_kind=filters["document_kind"],
        q=filters["q"], cursor=q.cursor(), limit=q.limit(LIST_PAGE)))
    return Page(rows, nxt, filters)


async def _paged(call: Any) -> tuple[list[asyncpg.Record], str | None]:
    try:
        return await call
    except InputError as exc:
        raise params.BadParameter("cursor", str(exc), "不是本列表的翻页标记") from None


# -- documents -----------------------------------------------------------------------------

@dataclass
class EnterpriseFile:
    """Everything published about one enterprise."""

    enterprise: asyncpg.Record
    outlets: list[dict[str, Any]]
    key_listings: list[asyncpg.Record]
    records: Page
    penalties: Page
    eia: Page
    monitoring: list[asyncpg.Record]
    exceedances: list[asyncpg.Record]
    nearest: dict[str, Any] | None


def station_now(app: web.Application, code: str) -> dict[str, Any] | None:
    """A station's entry of the current ``/api/v1/now`` snapshot."""
    snap = app[keys.SNAPSHOT].current
    if snap is None:
        return None
    return next((s for s in snap.data["stations"] if s["station_code"] == code), None)


async def enterprise_file(conn: asyncpg.Connection, app: web.Application,
                          credit_code: str) -> EnterpriseFile | None:
    """An enterprise with its outlets, listings, records, penalties, EIA projects,
    monitoring results and the nearest air-quality station with its current AQI."""
    ent = await store.get_enterprise(conn, credit_code)
    if ent is None:
        return None
    outlets = await store.outlets_of(conn, ent["id"])
    limits = await store.limits_of(conn, [o["id"] for o in outlets])
    outlet_docs = [{**dict(o), "limits": [lim for lim in limits if lim["outlet_id"] == o["id"]]}
                   for o in outlets]
    records = Page(*await lists.list_records(conn, credit_code=credit_code, limit=JOINED))
    penalties = Page(*await lists.list_penalties(conn, credit_code=credit_code, limit=JOINED))
    eia = Page(*await lists.list_eia(conn, credit_code=credit_code, limit=JOINED))
    monitoring, _ = await lists.list_monitoring_results(conn, credit_code=credit_code,
                                                        limit=JOINED)
    exceedances, _ = await lists.list_monitoring_results(conn, credit_code=credit_code,
                                                         compliant=False, limit=JOINED)
    nearest = None
    if ent["lat"] is not None and ent["lon"] is not None:
        station = await reads.nearest_station(conn, ent["lat"], ent["lon"])
        if station is not None:
            nearest = {**dict(station), "now": station_now(app, station["code"])}
    return EnterpriseFile(ent, outlet_docs, list(await store.key_listings_of(conn, ent["id"])),
                          records, penalties, eia, list(monitoring), list(exceedances), nearest)


def record_id_of(raw: str) -> int | None:
    """A record or project id from a path (None when it cannot be one)."""
    return params.object_id(raw)


async def record_file(conn: asyncpg.Connection, record_id: int) -> dict[str, Any] | None:
    """A record as published: current content, attachments, status and every version."""
    doc = await svc.record_document(conn, record_id)
    if doc is None:
        return None
    # who in the bureau made a change or uploaded a file is not published
    doc.pop("enterprise_id", None)
    for version in doc["versions"]:
        for key in ("actor", "enterprise_id"):
            version.pop(key, None)
    for item in [*doc["attachments"], *(a for v in doc["versions"] for a in v["attachments"])]:
        item.pop("uploaded_by", None)
    return doc


async def eia_file(conn: asyncpg.Connection, project_id: int) -> dict[str, Any] | None:
    """An EIA project with its stages and documents."""
    doc = await svc.eia_document(conn, project_id)
    if doc is not None:
        doc.pop("enterprise_id", None)
    return doc


@dataclass
class YearStats:
    """The figures of a year's disclosure report."""

    year: int
    start: datetime
    end: datetime
    categories: list[dict[str, Any]]
    months: list[dict[str, Any]]
    totals: dict[str, int]
    changes: dict[str, int]


async def year_stats(conn: asyncpg.Connection, year: int) -> YearStats:
    """Records first published in ``year`` (Asia/Shanghai) per category and sub-item, by
    current status and per month; corrections and retractions made in the year."""
    start = shanghai_start(date(year, 1, 1))
    end = shanghai_start(date(year + 1, 1, 1))
    counts = ("records", "published", "corrected", "retracted")
    categories: dict[str, dict[str, Any]] = {}
    for r in await store.record_stats(conn, published_from=start, published_before=end):
        cat = categories.setdefault(r["category_code"], {
            "code": r["category_code"], "name_zh": r["category_name_zh"],
            "name_en": r["category_name_en"], **dict.fromkeys(counts, 0), "subitems": []})
        sub = {"code": r["subitem_code"], "name_zh": r["subitem_name_zh"],
               "name_en": r["subitem_name_en"], **{k: int(r[k]) for k in counts}}
        cat["subitems"].append(sub)
        for k in counts:
            cat[k] += sub[k]
    months = [{"month": f"{year}-{m:02d}", "records": 0, "retracted": 0, "corrections": 0,
               "retractions": 0, "categories": {}, "subitems": {}} for m in range(1, 13)]
    for r in await store.record_stats_by_month(conn, published_from=start,
                                               published_before=end):
        month = months[r["month"].month - 1]
        month["records"] += r["records"]
        month["retracted"] += r["retracted"]
        month["categories"][r["category_code"]] = (
            month["categories"].get(r["category_code"], 0) + r["records"])
        month["subitems"][r["subitem_code"]] = r["records"]
    for r in await reads.changes_by_month(conn, start, end):
        key = "corrections" if r["change"] == "corrected" else "retractions"
        months[r["month"].month - 1][key] += r["changes"]
    cats = list(categories.values())
    totals = {k: sum(c[k] for c in cats) for k in counts}
    changes = {k: sum(m[k] for m in months) for k in ("corrections", "retractions")}
    return YearStats(year, start, end, cats, months, totals, changes)


# -- JSON ----------------------------------------------------------------------------------

def _json_rows(rows: list[asyncpg.Record], hide: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [row_json(r, hide=hide) or {} for r in rows]


def _filters_json(filters: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in filters.items()
            if v is not None}


def _list_json(request: web.Request, name: str, page: Page,
               hide: tuple[str, ...] = ()) -> web.Response:
    items = _json_rows(page.rows, hide)
    body = {name: items, "count": len(items), "next_cursor": page.next_cursor,
            "next": (str(request.rel_url.update_query(cursor=page.next_cursor))
                     if page.next_cursor else None),
            "filters": _filters_json(page.filters)}
    return conditional.json_response(request, body, MAX_AGE)


def _not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def _list_handler(name: str, pager: Callable[[Any, Query], Awaitable[Page]],
                  hide: tuple[str, ...] = ()) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A list endpoint: strict filters, one page from ``pager``, the list JSON."""
    async def handler(request: web.Request) -> web.Response:
        try:
            async with request.app[keys.POOL].acquire() as conn:
                page = await pager(conn, Query(request.query, forms=False))
        except params.BadParameter as exc:
            raise exc.api_error() from None
        return _list_json(request, name, page, hide=hide)
    return handler


async def by_id(request: web.Request,
                load: Callable[[Any, int], Awaitable[dict[str, Any] | None]]
                ) -> dict[str, Any] | None:
    """The document of the ``{id}`` in the path (None: malformed or unknown)."""
    object_id = record_id_of(request.match_info["id"])
    if object_id is None:
        return None
    async with request.app[keys.POOL].acquire() as conn:
        return await load(conn, object_id)


api_enterprises = _list_handler("enterprises", enterprise_page,
                                hide=("id", "county_position"))
"""``GET /api/v1/enterprises``."""


def enterprise_json(f: EnterpriseFile) -> dict[str, Any]:
    """The JSON of an enterprise's page."""
    doc = row_json(f.enterprise, hide=("id",)) or {}
    doc["outlets"] = []
    for o in f.outlets:
        item = row_json({k: v for k, v in o.items() if k != "limits"},
                        hide=HIDDEN_OUTLET) or {}
        item["limits"] = _json_rows(o["limits"], hide=("outlet_id",))
        doc["outlets"].append(item)
    doc["key_listings"] = _json_rows(f.key_listings)
    doc["records"] = _json_rows(f.records.rows)
    doc["records_next_cursor"] = f.records.next_cursor
    doc["penalties"] = _json_rows(f.penalties.rows)
    doc["eia_projects"] = _json_rows(f.eia.rows)
    doc["monitoring_results"] = _json_rows(f.monitoring)
    doc["exceedances"] = _json_rows(f.exceedances)
    near = None
    if f.nearest is not None:
        now = f.nearest["now"] or {}
        near = {"station_code": f.nearest["code"], "name_zh": f.nearest["name_zh"],
                "name_en": f.nearest["name_en"], "county_zh": f.nearest["county_zh"],
                "county_en": f.nearest["county_en"], "lat": f.nearest["lat"],
                "lon": f.nearest["lon"], "distance_km": round(f.nearest["distance_km"], 3),
                **{k: now.get(k) for k in ("aqi", "level", "category", "category_en",
                                           "color", "primary_pollutants", "time_point",
                                           "status")}}
    doc["nearest_station"] = near
    return doc


async def api_enterprise(request: web.Request) -> web.Response:
    """``GET /api/v1/enterprises/{credit_code}``."""
    code = request.match_info["credit_code"].upper()
    if not CREDIT_CODE.match(code):
        raise _not_found(f"no enterprise with credit code {code[:40]!r}")
    async with request.app[keys.POOL].acquire() as conn:
        f = await enterprise_file(conn, request.app, code)
    if f is None:
        raise _not_found(f"no enterprise with credit code {code}")
    return conditional.json_response(request, enterprise_json(f), MAX_AGE)


api_disclosures = _list_handler("disclosures", record_page)
"""``GET /api/v1/disclosures``."""


async def api_disclosure(request: web.Request) -> web.Response:
    """``GET /api/v1/disclosures/{id}``."""
    doc = await by_id(request, record_file)
    if doc is None:
        raise _not_found(f"no disclosure record {request.match_info['id'][:40]!r}")
    return conditional.json_response(request, doc, MAX_AGE)


def stats_year(request: web.Request) -> int:
    """``year`` (default: the current year in Asia/Shanghai)."""
    this_year = request.app[keys.CLOCK]().astimezone(SHANGHAI).year
    return Query(request.query, forms=False).integer("year", EARLIEST_YEAR,
                                                     LATEST_YEAR) or this_year


def stats_json(s: YearStats) -> dict[str, Any]:
    """The JSON of a year's statistics."""
    return {"year": s.year, "from": s.start.isoformat(), "to": s.end.isoformat(),
            "time_zone": "Asia/Shanghai",
            "counted": "records first published in the year, by their current status; "
                       "corrections and retractions made in the year",
            "totals": s.totals, "changes": s.changes, "categories": s.categories,
            "months": s.months}


async def api_stats(request: web.Request) -> web.Response:
    """``GET /api/v1/disclosures/stats``."""
    try:
        year = stats_year(request)
    except params.BadParameter as exc:
        raise exc.api_error() from None
    async with request.app[keys.POOL].acquire() as conn:
        stats = await year_stats(conn, year)
    return conditional.json_response(request, stats_json(stats), MAX_AGE)


api_eia_list = _list_handler("projects", eia_page)
"""``GET /api/v1/eia``."""


async def api_eia(request: web.Request) -> web.Response:
    """``GET /api/v1/eia/{id}``."""
    doc = await by_id(request, eia_file)
    if doc is None:
        raise _not_found(f"no EIA project {request.match_info['id'][:40]!r}")
    return conditional.json_response(request, doc, MAX_AGE)


api_penalties = _list_handler("penalties", penalty_page)
"""``GET /api/v1/penalties``."""


# -- set-up --------------------------------------------------------------------------------

def seed_wanted(app: web.Application) -> bool:
    """Whether this start loads the sample data (unset: only on the embedded database)."""
    cfg = app[keys.CONFIG]
    flag = cfg.disclosure.seed_sample_data
    return cfg.database.embedded if flag is None else flag


async def seed_ctx(app: web.Application) -> AsyncIterator[None]:
    """Load the sample data set once at start when configured (idempotent).

    The sample data only fill the demo's pages: a failure to load them is logged and the
    service starts without them (the load is one transaction, so nothing half-done stays).
    """
    if seed_wanted(app):
        from aqi_service.disclosure.seed import load_seed

        try:
            async with app[keys.POOL].acquire() as conn:
                report = await load_seed(conn, app.get(keys.ATTACHMENTS),
                                         catalog=app.get(keys.DISCLOSURE_CATALOG),
                                         now=app[keys.CLOCK]())
        except (InputError, asyncpg.PostgresError):
            log.exception("disclosure sample data not loaded")
        else:
            log.info("disclosure sample data (marked as sample) loaded: %s", report.counts)
    else:
        log.info("disclosure sample data not loaded (disclosure.seed_sample_data)")
    yield


def setup_disclosure(app: web.Application) -> None:
    """Register the public disclosure API and the sample-data loading."""
    for path, handler in (("/api/v1/enterprises", api_enterprises),
                          ("/api/v1/enterprises/{credit_code}", api_enterprise),
                          ("/api/v1/disclosures", api_disclosures),
                          ("/api/v1/disclosures/stats", api_stats),
                          ("/api/v1/disclosures/{id}", api_disclosure),
                          ("/api/v1/eia", api_eia_list),
                          ("/api/v1/eia/{id}", api_eia),
                          ("/api/v1/penalties", api_penalties)):
        app.router.add_get(path, json_route(handler))
    app.cleanup_ctx.append(seed_ctx)


# -- OpenAPI -------------------------------------------------------------------------------

def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_S = {"type": "string"}
_S0 = {"type": ["string", "null"]}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}
_NUM0 = {"type": ["number", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_TIME0 = {"type": ["string", "null"], "format": "date-time"}
_DAY = {"type": "string", "format": "date"}
_DAY_PARAM = {"type": "string", "pattern": params.DATE_PATTERN}
_DAY0 = {"type": ["string", "null"], "format": "date"}
_DEC0 = {"type": ["string", "null"], "pattern": "^-?[0-9]+(\\.[0-9]+)?$",
         "description": "exact decimal as text"}
_CREDIT = {"type": "string", "pattern": CREDIT_CODE.pattern}
_CREDIT0 = {"type": ["string", "null"], "pattern": CREDIT_CODE.pattern}
_COUNTY = {"enum": list(models.COUNTIES)}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "required": list(props) if required is None else required,
            "properties": props}


def _list_of(name: str, item: str) -> dict[str, Any]:
    return _obj({name: {"type": "array", "items": _ref(item)}, "count": _INT,
                 "next_cursor": {**_S0, "description": "opaque; pass as ?cursor= for the "
                                 "next page (null on the last page)"},
                 "next": {**_S0, "description": "the next page's URL"},
                 "filters": {"type": "object", "description": "the filters applied"}})


_RECORD_BASE = {
    "id": _INT, "ref": _S0, "subitem_code": _S, "category_code": _S, "subitem_name_zh": _S,
    "subitem_name_en": _S, "category_name_zh": _S, "category_name_en": _S,
    "credit_code": _CREDIT0, "enterprise_name_zh": _S0, "enterprise_name_en": _S0,
    "county_code": {"oneOf": [_COUNTY, {"type": "null"}]}, "title": _S,
    "effective_on": _DAY0, "published_at": _TIME, "updated_at": _TIME,
    "version": {"type": "integer", "minimum": 1},
    "status": {"enum": list(models.RECORD_STATUSES)},
    "status_reason": {**_S, "description": "public note of the latest correction, or the "
                      "public reason of the retraction"},
    "retracted_at": _TIME0, "publisher": {"enum": list(models.PUBLISHERS)},
    "is_sample": {**_BOOL, "description": "fictional sample data"},
}
_ATTACHMENT = _obj({"id": {"type": "string", "format": "uuid"}, "filename": _S,
                    "content_type": _S, "size_bytes": _INT, "sha256": _S,
                    "uploaded_at": _TIME, "url": _S},
                   ["id", "filename", "content_type", "size_bytes", "sha256", "url"])
_MONITORING = _obj({
    "id": _INT, "credit_code": _CREDIT, "outlet_code": _S, "outlet_kind": {"enum": ["gas",
                                                                                   "water"]},
    "parameter": _S, "parameter_name_zh": _S, "parameter_name_en": _S,
    "source": {"enum": list(models.SOURCES)}, "method": {"enum": list(models.METHODS)},
    "period": {"enum": list(models.PERIODS)},
    "measured_at": {**_TIME, "description": "sampling time, or the end of the period"},
    "value": _DEC0, "measured_value": _DEC0, "unit": _S, "upper_limit": _DEC0,
    "lower_limit": _DEC0, "flag": {"enum": list(models.FLAGS)},
    "compliant": {"type": ["boolean", "null"]},
    "exceedance_multiple": {**_DEC0, "description": "(value - limit) / limit, exact"},
}, ["id", "credit_code", "outlet_code", "parameter", "source", "period", "measured_at",
    "value", "unit", "upper_limit", "lower_limit", "flag", "compliant",
    "exceedance_multiple"])
_COUNTS = {"records": _INT, "published": _INT, "corrected": _INT, "retracted": _INT}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "Enterprise": _obj({
        "credit_code": _CREDIT, "name_zh": _S, "name_en": _S, "county_code": _COUNTY,
        "county_name_zh": _S, "county_name_en": _S, "industry_code": _S, "industry": _S,
        "address": _S, "lat": _NUM0, "lon": _NUM0, "permit_no": _S,
        "control_level": {"enum": ["national", "provincial", "city", None]},
        "is_sample": _BOOL, "latest_key_list_year": {"type": ["integer", "null"]},
        "records": _INT, "penalties": _INT}),
    "EnterpriseList": _list_of("enterprises", "Enterprise"),
    "EnterpriseFile": {"allOf": [
        {"type": "object", "required": ["credit_code", "name_zh", "county_code"],
         "properties": {k: v for k, v in _obj({
             "credit_code": _CREDIT, "name_zh": _S, "name_en": _S, "county_code": _COUNTY,
             "legal_representative": _S, "lat": _NUM0, "lon": _NUM0,
             "control_level": {"enum": ["national", "provincial", "city", None]},
             "is_sample": _BOOL})["properties"].items()}},
        _obj({
            "outlets": {"type": "array", "items": _obj({
                "outlet_code": _S, "name": _S, "kind": {"enum": ["gas", "water"]},
                "category": {"enum": ["main", "general", None]}, "active": _BOOL,
                "limits": {"type": "array", "items": _obj({
                    "parameter": _S, "upper_limit": _DEC0, "lower_limit": _DEC0,
                    "unit": _S, "standard": _S, "reference_o2_pct": _DEC0})}})},
            "key_listings": {"type": "array", "items": _obj({
                "year": _INT, "categories": {"type": "array", "items": {
                    "enum": list(models.KEY_LIST_CATEGORIES)}}, "note": _S})},
            "records": {"type": "array", "items": _ref("DisclosureSummary"),
                        "description": f"the newest {JOINED}"},
            "records_next_cursor": {**_S0, "description": "cursor of /api/v1/disclosures?"
                                    "enterprise= for older ones"},
            "penalties": {"type": "array", "items": _ref("Penalty")},
            "eia_projects": {"type": "array", "items": _ref("EiaProject")},
            "monitoring_results": {"type": "array", "items": _ref("MonitoringResult"),
                                   "description": f"the newest {JOINED}"},
            "exceedances": {"type": "array", "items": _ref("MonitoringResult"),
                            "description": f"the newest {JOINED} results over a limit"},
            "nearest_station": {"oneOf": [{"type": "null"}, _obj({
                "station_code": _S, "name_zh": _S, "name_en": _S, "lat": {"type": "number"},
                "lon": {"type": "number"},
                "distance_km": {"type": "number", "description": "great-circle (haversine)"},
                "aqi": {"type": ["integer", "null"], "description": "the station's current "
                        "AQI (as in /api/v1/now)"},
                "category": _S0, "category_en": _S0, "color": _S0, "time_point": _TIME0,
                "status": {"enum": ["on_time", "late", "missing", "maintenance", None]}},
                ["station_code", "name_zh", "name_en", "distance_km", "aqi", "time_point"])]},
        })]},
    "DisclosureSummary": _obj({
        **_RECORD_BASE, "excerpt": {**_S, "description": "the first 200 characters"},
        "truncated": _BOOL}),
    "DisclosureList": _list_of("disclosures", "DisclosureSummary"),
    "Disclosure": _obj({
        **_RECORD_BASE, "body": _S,
        "attachments": {"type": "array", "items": _ATTACHMENT},
        "versions": {"type": "array", "description": "every version, oldest first",
                     "items": _obj({
                         "version": _INT, "change": {"enum": ["created", "corrected",
                                                              "retracted"]},
                         "subitem_code": _S, "credit_code": _CREDIT0, "title": _S,
                         "body": _S, "effective_on": _DAY0, "published_at": _TIME,
                         "note": _S, "attachments": {"type": "array",
                                                     "items": _ATTACHMENT}})}}),
    "DisclosureStats": _obj({
        "year": _INT, "from": _TIME, "to": _TIME, "time_zone": {"const": "Asia/Shanghai"},
        "counted": _S, "totals": _obj(_COUNTS),
        "changes": _obj({"corrections": _INT, "retractions": _INT}),
        "categories": {"type": "array", "items": _obj({
            "code": _S, "name_zh": _S, "name_en": _S, **_COUNTS,
            "subitems": {"type": "array", "items": _obj({
                "code": _S, "name_zh": _S, "name_en": _S, **_COUNTS})}})},
        "months": {"type": "array", "minItems": 12, "maxItems": 12, "items": _obj({
            "month": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}, "records": _INT,
            "retracted": _INT, "corrections": _INT, "retractions": _INT,
            "categories": {"type": "object", "additionalProperties": _INT},
            "subitems": {"type": "object", "additionalProperties": _INT}})}}),
    "EiaProject": _obj({
        "id": _INT, "project_code": _S, "name": _S, "builder": _S,
        "builder_credit_code": _CREDIT0, "county_code": _COUNTY, "county_name_zh": _S,
        "county_name_en": _S, "location": _S, "lat": _NUM0, "lon": _NUM0,
        "project_type": _S, "document_kind": {"enum": ["report", "table"]},
        "eia_agency": _S, "summary": _S, "is_sample": _BOOL,
        "latest_stage": {"enum": [*models.EIA_STAGES, None]},
        "latest_published_on": _DAY0},
        ["id", "project_code", "name", "builder", "county_code", "document_kind",
         "latest_stage", "is_sample"]),
    "EiaProjectList": _list_of("projects", "EiaProject"),
    "EiaProjectFile": {"allOf": [_ref("EiaProject"), _obj({
        "stages": {"type": "array", "items": _obj({
            "stage": {"enum": list(models.EIA_STAGES)}, "published_on": _DAY,
            "comment_from": _DAY0, "comment_until": _DAY0, "decision_no": _S0,
            "decision_date": _DAY0, "outcome": {"enum": [*models.OUTCOMES, None]},
            "attachment_id": {"type": ["string", "null"], "format": "uuid"},
            "attachment_url": {**_S, "description": "present when a document is attached"},
            "note": _S}, ["stage", "published_on", "comment_from", "comment_until",
                          "decision_no", "decision_date", "outcome", "note"])}})]},
    "Penalty": _obj({
        "id": _INT, "decision_no": _S, "enterprise_credit_code": _CREDIT0,
        "enterprise_name_zh": _S0, "county_code": {"oneOf": [_COUNTY, {"type": "null"}]},
        "party_name": _S, "credit_code": _CREDIT0, "violation": _S, "legal_basis": _S,
        "penalty": _S, "fine_amount": {**_DEC0, "description": "yuan, exact"},
        "decision_date": _DAY, "enforcement_status": {"enum": list(models.ENFORCEMENT)},
        "attachment_id": {"type": ["string", "null"], "format": "uuid"},
        "published_at": _TIME, "is_sample": _BOOL}),
    "PenaltyList": _list_of("penalties", "Penalty"),
    "MonitoringResult": _MONITORING,
}


def _q(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string", "minLength": 1, "maxLength": 40}}


_PAGING = [_q("cursor", "next_cursor of the previous page (opaque; an altered one is a 400)",
              {"type": "string", "minLength": 1, "maxLength": MAX_CURSOR}),
           _q("limit", "rows per page", {"type": "integer", "minimum": 1,
                                         "maximum": cursors.MAX_PAGE})]
_SEARCH = _q("q", "words that must all occur (Chinese: any two characters of a word "
             "match); at most 100 characters",
             {"type": "string", "minLength": 1, "maxLength": MAX_Q})
_DAYS = [_q("from", "first day, inclusive (YYYY-MM-DD, Asia/Shanghai, 2000-2099; not "
            "after to)", _DAY_PARAM),
         _q("to", "last day, inclusive (YYYY-MM-DD, Asia/Shanghai, 2000-2099)", _DAY_PARAM)]
_ERR = {"content": {"application/json": {"schema": _ref("Error")}}}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string",
                                                                "pattern": params.ID_PATTERN}}


def _get(summary: str, schema: str, params: list[dict[str, Any]], description: str = "",
         not_found: str | None = None) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": "OK", "content": {"application/json": {"schema": _ref(schema)}}},
        "304": {"description": "Not modified (If-None-Match matched the ETag)"},
        "400": {"description": "Bad parameter (details.parameter names it)", **_ERR}}
    if not_found:
        responses["404"] = {"description": not_found, **_ERR}
    op = {"summary": summary, "parameters": params, "responses": responses}
    if description:
        op["description"] = description
    return {"get": op}


OPENAPI_PATHS: dict[str, Any] = {
    "/api/v1/enterprises": _get(
        "Enterprises (pollution sources), by county, name and id", "EnterpriseList",
        [_q("county", "county code", _COUNTY),
         _q("industry", "GB/T 4754 industry code or its prefix (e.g. C30)",
            {"type": "string", "pattern": "^[A-Ta-t]([0-9]{1,4})?$"}),
         _q("control_level", "key-enterprise level",
            {"enum": ["national", "provincial", "city"]}),
         _q("key_list_year", "on the key-polluter list of this year",
            {"type": "integer", "minimum": EARLIEST_YEAR, "maximum": LATEST_YEAR}),
         _SEARCH, *_PAGING]),
    "/api/v1/enterprises/{credit_code}": _get(
        "An enterprise and everything published about it", "EnterpriseFile",
        [{"name": "credit_code", "in": "path", "required": True, "schema": _CREDIT}],
        "Outlets and permitted limits, key-polluter listings, disclosure records, penalties, "
        "EIA projects, monitoring results with exceedance multiples, and the nearest "
        "air-quality station with its current AQI.", "Unknown enterprise"),
    "/api/v1/disclosures": _get(
        "Disclosure records, newest first (retracted ones included, marked)",
        "DisclosureList",
        [_q("category", "category code"), _q("subitem", "sub-item code (category.name)"),
         _q("enterprise", "the enterprise's credit code", _CREDIT), _SEARCH, *_DAYS,
         {**_q("status", "published, corrected, retracted (comma-separated)",
               {"type": "array", "minItems": 1, "uniqueItems": True,
                "items": {"enum": list(models.RECORD_STATUSES)}}),
          "style": "form", "explode": False}, *_PAGING]),
    "/api/v1/disclosures/stats": _get(
        "Yearly disclosure statistics for the annual report", "DisclosureStats",
        [_q("year", "default: the current year", {"type": "integer", "minimum": EARLIEST_YEAR,
                                                  "maximum": LATEST_YEAR})],
        "Records first published in the year (Asia/Shanghai) per category and sub-item by "
        "current status, per month; corrections and retractions made in each month."),
    "/api/v1/disclosures/{id}": _get(
        "A disclosure record with its version history", "Disclosure", [_ID],
        not_found="Unknown record"),
    "/api/v1/eia": _get(
        "EIA projects, newest first", "EiaProjectList",
        [_q("county", "county code", _COUNTY),
         _q("stage", "projects that reached this stage", {"enum": list(models.EIA_STAGES)}),
         _q("enterprise", "the builder's credit code", _CREDIT),
         _q("document_kind", "report (报告书) or table (报告表)", {"enum": ["report", "table"]}),
         _SEARCH, *_PAGING]),
    "/api/v1/eia/{id}": _get("An EIA project with its stages and documents",
                             "EiaProjectFile", [_ID], not_found="Unknown project"),
    "/api/v1/penalties": _get(
        "Administrative penalty decisions, latest first", "PenaltyList",
        [_q("enterprise", "the party's credit code", _CREDIT),
         _q("county", "county code", _COUNTY),
         _q("status", "enforcement status", {"enum": list(models.ENFORCEMENT)}),
         *_DAYS, _SEARCH, *_PAGING]),
}
