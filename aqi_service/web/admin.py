"""The bureau's admin API under ``/api/v1/admin/``: bearer tokens, scopes, audit on every change.

Enterprises (+ outlets, key-list years), disclosure records (create; correct = new version;
retract with a public reason; never delete), penalties, EIA projects and stages, monitoring
results, attachments, and the audit log. Each entity is declared once (:class:`Entity`: its
path, scope, list filters, and the service operations that read and write it); its list,
create, get and update handlers are made from that declaration, and every route is in
:data:`ROUTES` with the scopes it needs (the OpenAPI paths are built from the same table,
:mod:`aqi_service.web.admin_openapi`). Handlers parse the request and answer; every change
runs in one transaction opened by :mod:`aqi_service.disclosure.service`.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
from aiohttp import web

from aqi_service.disclosure import credit_code as cc
from aqi_service.disclosure import models
from aqi_service.disclosure import service as svc
from aqi_service.disclosure.catalog import load_catalog
from aqi_service.disclosure.fields import Invalid
from aqi_service.disclosure.files import AttachmentStore
from aqi_service.disclosure.serialize import row_json
from aqi_service.disclosure.service import Actor, Conflict, NotFound
from aqi_service.errors import InputError
from aqi_service.storage import admin as admin_store
from aqi_service.storage import cursors
from aqi_service.storage import disclosure as store
from aqi_service.storage import disclosure_lists as lists
from aqi_service.storage.disclosure_lists import ADMIN
from aqi_service.storage.retry import retry_on_outage
from aqi_service.web import keys, params
from aqi_service.web.admin_auth import AdminGuard, actor_of, requires
from aqi_service.web.attachments import download, upload
from aqi_service.web.errors import ApiError, Handler, json_route

MAX_BATCH = 1000
"""Monitoring results per request."""
YEAR = re.compile(r"^[0-9]{4}$")
CONTROL_LEVELS = ("national", "provincial", "city")
STATUSES = ("published", "corrected", "retracted")
Rows = tuple[list[asyncpg.Record], str | None]


# -- request helpers -----------------------------------------------------------------------

async def _body(request: web.Request) -> dict[str, Any]:
    """The JSON object of the body (UTF-8, RFC 8259 §8.1); numbers kept exact (Decimal).

    415 for another type or charset, 400 for bytes that are not UTF-8 or not JSON.
    """
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_type", "send application/json")
    if (request.charset or "utf-8").lower() not in ("utf-8", "utf8"):
        raise ApiError(415, "unsupported_type", "send application/json in UTF-8")
    raw = await request.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "bad_encoding", "the body is not UTF-8",
                       {"position": exc.start}) from None
    try:
        data = json.loads(text, parse_float=Decimal)
    except (json.JSONDecodeError, RecursionError):
        raise ApiError(400, "bad_json", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "the body must be a JSON object")
    return data


def _query(request: web.Request, name: str, *, pattern: re.Pattern[str] | None = None,
           choices: tuple[str, ...] | None = None) -> str | None:
    """One query value (empty counts as absent), of ``choices`` or matching ``pattern``."""
    if choices is not None:
        return params.choice(request, name, choices, empty_is_absent=True)
    if pattern is not None:
        return params.matching(request, name, pattern, "valid", empty_is_absent=True)
    return params.text(request, name, empty_is_absent=True)


def _limit(request: web.Request, default: int) -> int:
    raw = _query(request, "limit", pattern=re.compile(r"^[0-9]{1,4}$"))
    if raw is None:
        return default
    if not 1 <= int(raw) <= cursors.MAX_PAGE:
        raise params.bad("limit", f"must be 1-{cursors.MAX_PAGE}")
    return int(raw)


def _bool(request: web.Request, name: str) -> bool | None:
    raw = _query(request, name, choices=("true", "false"))
    return None if raw is None else raw == "true"


def _credit_code_query(request: web.Request, name: str) -> str | None:
    raw = _query(request, name)
    if raw is None:
        return None
    try:
        return cc.parse(raw).code
    except cc.CreditCodeError as exc:
        raise params.bad(name, str(exc)) from None


def _credit_code_path(request: web.Request) -> str:
    try:
        return cc.parse(request.match_info["code"]).code
    except cc.CreditCodeError:
        raise ApiError(404, "not_found", "no enterprise with this credit code") from None


def _id_path(request: web.Request, name: str = "id") -> int:
    raw = request.match_info[name]
    object_id = params.object_id(raw)
    if object_id is None:
        raise ApiError(404, "not_found", f"no object {raw[:40]!r}")
    return object_id


def _year_path(request: web.Request) -> int:
    raw = request.match_info["year"]
    if not YEAR.match(raw) or not 2000 <= int(raw) <= 2100:
        raise ApiError(404, "not_found", "the year must be 2000-2100")
    return int(raw)


@contextmanager
def _translated() -> Iterator[None]:
    """Domain and database errors → the JSON envelope (400/404/409)."""
    try:
        yield
    except Invalid as exc:
        raise ApiError(400, "invalid", str(exc), {"problems": [
            {"field": p.field, "message": p.message} for p in exc.problems]}) from None
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except Conflict as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    except asyncpg.UniqueViolationError as exc:
        raise ApiError(409, "conflict", "another object already has this value",
                       {"constraint": exc.constraint_name}) from None
    except (asyncpg.CheckViolationError, asyncpg.ForeignKeyViolationError,
            asyncpg.NotNullViolationError) as exc:
        raise ApiError(400, "invalid", "the database refused the values",
                       {"constraint": exc.constraint_name}) from None
    except InputError as exc:
        raise ApiError(400, "invalid", str(exc)) from None


def _now(request: web.Request) -> datetime:
    return request.app[keys.CLOCK]()


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status,
                             dumps=lambda o: json.dumps(o, ensure_ascii=False),
                             headers={"Cache-Control": "no-store"})


async def _run(request: web.Request, op: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
    """``op`` on a pooled connection, its refusals as the envelope."""
    async with request.app[keys.POOL].acquire() as conn:
        with _translated():
            return await op(conn)


def _put_answer(action: str, doc: dict[str, Any]) -> web.Response:
    return _json(doc, 201 if action == "created" else 200)


# -- the lists' filters (parsed in this order: the first bad one is named) -------------------

def _enterprise_filters(request: web.Request) -> dict[str, Any]:
    filters: dict[str, Any] = {
        "county": _query(request, "county", choices=tuple(models.COUNTIES)),
        "control_level": _query(request, "control_level", choices=CONTROL_LEVELS),
        "key_list_year": _query(request, "key_list_year", pattern=YEAR)}
    if filters["key_list_year"] is not None:
        filters["key_list_year"] = int(filters["key_list_year"])
    return {**filters, "q": _query(request, "q"), "sample": _bool(request, "sample"),
            "cursor": _query(request, "cursor"), "limit": _limit(request, 50)}


def _record_filters(request: web.Request) -> dict[str, Any]:
    catalog = request.app[keys.DISCLOSURE_CATALOG]
    filters = {
        "category": _query(request, "category",
                           choices=tuple(c.code for c in catalog.categories)),
        "subitem": _query(request, "subitem", choices=tuple(s.code for s in catalog.subitems)),
        "county": _query(request, "county", choices=tuple(models.COUNTIES)),
        "status": _query(request, "status", choices=STATUSES),
        "enterprise": _credit_code_query(request, "enterprise"),
        "published_from": params.optional_time(request, "published_from",
                                               empty_is_absent=True),
        "published_before": params.optional_time(request, "published_before",
                                                 empty_is_absent=True),
        "q": _query(request, "q"), "limit": _limit(request, 20),
        "cursor": _query(request, "cursor")}
    if filters["q"] is None:   # the text search has no sample filter
        filters["sample"] = _bool(request, "sample")
    return filters


async def _list_records(conn: asyncpg.Connection, f: Mapping[str, Any]) -> Rows:
    """Records, retracted ones included; ``q`` searches their text (and then, as it always
    has, applies only the catalogue, enterprise, county and status filters, the status
    after the page is read)."""
    if f["q"] is None:
        return await lists.list_records(
            conn, view=ADMIN, category=f["category"], subitem=f["subitem"],
            credit_code=f["enterprise"], county=f["county"],
            statuses=[f["status"]] if f["status"] else None,
            published_from=f["published_from"], published_before=f["published_before"],
            sample=f["sample"], cursor=f["cursor"], limit=f["limit"])
    rows, next_cursor = await lists.list_records(
        conn, view=ADMIN, q=f["q"], category=f["category"], subitem=f["subitem"],
        credit_code=f["enterprise"], county=f["county"],
        statuses=None if f["status"] != "published" else ("corrected", "published"),
        cursor=f["cursor"], limit=f["limit"])
    if f["status"] is not None:
        rows = [r for r in rows if r["status"] == f["status"]]
    return rows, next_cursor


def _penalty_filters(request: web.Request) -> dict[str, Any]:
    return {"enforcement_status": _query(request, "enforcement_status",
                                         choices=models.ENFORCEMENT),
            "credit_code": _credit_code_query(request, "credit_code"),
            "county": _query(request, "county", choices=tuple(models.COUNTIES)),
            "q": _query(request, "q"), "sample": _bool(request, "sample"),
            "cursor": _query(request, "cursor"), "limit": _limit(request, 20)}


def _eia_filters(request: web.Request) -> dict[str, Any]:
    return {"county": _query(request, "county", choices=tuple(models.COUNTIES)),
            "stage": _query(request, "stage", choices=models.EIA_STAGES),
            "q": _query(request, "q"), "sample": _bool(request, "sample"),
            "cursor": _query(request, "cursor"), "limit": _limit(request, 20)}


def _monitoring_filters(request: web.Request) -> dict[str, Any]:
    return {"credit_code": _credit_code_query(request, "enterprise"),
            "outlet": _query(request, "outlet"), "parameter": _query(request, "parameter"),
            "source": _query(request, "source", choices=models.SOURCES),
            "compliant": _bool(request, "compliant"), "sample": _bool(request, "sample"),
            "cursor": _query(request, "cursor"), "limit": _limit(request, 50)}


def _audit_filters(request: web.Request) -> dict[str, Any]:
    since = params.optional_time(request, "since", empty_is_absent=True)
    return {"entity": _query(request, "entity"), "entity_id": _query(request, "entity_id"),
            "actor": _query(request, "actor"), "since": since,
            "cursor": _query(request, "cursor"), "limit": _limit(request, 100)}


def _admin_list(fetch: Callable[..., Awaitable[Rows]]
                ) -> Callable[[asyncpg.Connection, Mapping[str, Any]], Awaitable[Rows]]:
    """A list of the admin view with the filters parsed."""
    async def call(conn: asyncpg.Connection, filters: Mapping[str, Any]) -> Rows:
        return await fetch(conn, view=ADMIN, **filters)
    return call


# -- entities: declared once, their handlers made from the declaration ----------------------

Create = Callable[[asyncpg.Connection, dict[str, Any], Actor, datetime], Awaitable[Any]]
Change = Callable[[asyncpg.Connection, Any, dict[str, Any], Actor], Awaitable[Any]]


@dataclass(frozen=True)
class Entity:
    """An object kind of the admin API: ``GET``/``POST`` on ``path`` (list, create),
    ``GET``/``PATCH`` on ``path/{key}`` (one, update)."""

    path: str
    key: str
    """The path parameter naming one object (``id`` or ``code``)."""
    scope: str
    items: str
    """The list's JSON key."""
    titles: tuple[str, str, str, str]
    """The OpenAPI summaries of list, create, one, update."""
    filters: Callable[[web.Request], dict[str, Any]]
    fetch: Callable[[asyncpg.Connection, Mapping[str, Any]], Awaitable[Rows]]
    key_of: Callable[[web.Request], Any]
    load: Callable[[asyncpg.Connection, Any], Awaitable[dict[str, Any] | None]]
    missing: str
    """The 404 message of an unknown key (``{key}`` is replaced)."""
    create: Create
    change: Change | None = None
    check: Callable[[Any, dict[str, Any]], None] | None = None
    """A check of an update's body against the key, before anything is read."""


def _list_handler(e: Entity) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        filters = e.filters(request)
        rows, cursor = await _run(request, lambda conn: e.fetch(conn, filters))
        return _json({e.items: [row_json(r) for r in rows], "next_cursor": cursor})
    handler.__doc__ = e.titles[0]
    return requires(e.scope)(handler)


def _create_handler(e: Entity) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        data = await _body(request)
        doc = await _run(request, lambda conn: e.create(conn, data, actor_of(request),
                                                        _now(request)))
        return _json(doc, 201)
    handler.__doc__ = e.titles[1]
    return requires(e.scope)(handler)


def _get_handler(e: Entity) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        key = e.key_of(request)
        async with request.app[keys.POOL].acquire() as conn:
            doc = await e.load(conn, key)
        if doc is None:
            raise ApiError(404, "not_found", e.missing.format(key=key))
        return _json(doc)
    handler.__doc__ = e.titles[2]
    return requires(e.scope)(handler)


def _change_handler(e: Entity, change: Change) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        key = e.key_of(request)
        data = await _body(request)
        if e.check is not None:
            e.check(key, data)
        return _json(await _run(request, lambda conn: change(conn, key, data,
                                                             actor_of(request))))
    handler.__doc__ = e.titles[3]
    return requires(e.scope)(handler)


def _same_credit_code(code: str, data: dict[str, Any]) -> None:
    if "credit_code" in data and data["credit_code"] != code:
        raise ApiError(400, "invalid", "credit_code cannot change")


ENTERPRISES = Entity(
    "/api/v1/admin/enterprises", "code", "enterprises:write", "enterprises",
    ("List enterprises", "Create an enterprise", "One enterprise", "Update an enterprise"),
    _enterprise_filters, _admin_list(lists.list_enterprises), _credit_code_path,
    svc.enterprise_document, "no enterprise with credit code {key}",
    lambda conn, data, actor, now: svc.add_enterprise(conn, data, actor),
    svc.change_enterprise, _same_credit_code)
RECORDS = Entity(
    "/api/v1/admin/disclosures", "id", "disclosures:write", "records",
    ("List records (retracted included)", "Publish a record", "A record with every version",
     ""),
    _record_filters, _list_records, _id_path, svc.record_document, "no record {key}",
    svc.add_record)
PENALTIES = Entity(
    "/api/v1/admin/penalties", "id", "penalties:write", "penalties",
    ("List penalties", "Create a penalty", "One penalty", "Update a penalty"),
    _penalty_filters, _admin_list(lists.list_penalties), _id_path, svc.penalty_document,
    "no penalty {key}", lambda conn, data, actor, now: svc.add_penalty(conn, data, actor),
    svc.change_penalty)
EIA = Entity(
    "/api/v1/admin/eia/projects", "id", "eia:write", "projects",
    ("List EIA projects", "Create an EIA project", "One EIA project", "Update an EIA project"),
    _eia_filters, _admin_list(lists.list_eia), _id_path, svc.eia_document,
    "no EIA project {key}",
    lambda conn, data, actor, now: svc.add_eia_project(conn, data, actor),
    svc.change_eia_project)
ENTITIES = (ENTERPRISES, RECORDS, PENALTIES, EIA)

Route = tuple[str, str, Handler, str]


def entity_routes(e: Entity) -> tuple[Route, ...]:
    """The list, create, one and update routes of an entity."""
    one = f"{e.path}/{{{e.key}}}"
    routes: list[Route] = [("GET", e.path, _list_handler(e), e.titles[0]),
                           ("POST", e.path, _create_handler(e), e.titles[1]),
                           ("GET", one, _get_handler(e), e.titles[2])]
    if e.change is not None:
        routes.append(("PATCH", one, _change_handler(e, e.change), e.titles[3]))
    return tuple(routes)


# -- the other routes: parts of an entity, record changes, batches, audit, tokens ----------

@requires("enterprises:write")
async def put_outlet(request: web.Request) -> web.Response:
    """Create or replace an outlet and its limits."""
    code = _credit_code_path(request)
    data = await _body(request)
    outlet_code = request.match_info["outlet"].upper()
    if data.setdefault("outlet_code", outlet_code) != outlet_code:
        raise ApiError(400, "invalid", "outlet_code differs from the URL")
    return _put_answer(*await _run(request, lambda conn: svc.put_outlet(
        conn, code, data, actor_of(request))))


@requires("enterprises:write")
async def put_key_listing(request: web.Request) -> web.Response:
    """Put an enterprise on a year's key-polluter list."""
    code = _credit_code_path(request)
    year = _year_path(request)
    data = await _body(request)
    return _put_answer(*await _run(request, lambda conn: svc.put_key_listing(
        conn, code, year, data, actor_of(request))))


@requires("enterprises:write")
async def delete_key_listing(request: web.Request) -> web.Response:
    """Take an enterprise off a year's key-polluter list."""
    code = _credit_code_path(request)
    year = _year_path(request)
    removed = await _run(request, lambda conn: svc.remove_key_listing(
        conn, code, year, actor_of(request)))
    return _json({"removed": removed})


@requires("disclosures:write")
async def correct_record(request: web.Request) -> web.Response:
    """A new version correcting the record; ``note`` (public) says what was corrected."""
    record_id = _id_path(request)
    data = await _body(request)
    return _json(await _run(request, lambda conn: svc.correct_record_with(
        conn, record_id, data, actor_of(request), _now(request))), 201)


@requires("disclosures:write")
async def retract_record(request: web.Request) -> web.Response:
    """Retract a record with a public ``reason``; it stays listed as retracted."""
    record_id = _id_path(request)
    data = await _body(request)
    return _json(await _run(request, lambda conn: svc.retract_record_with(
        conn, record_id, data, actor_of(request), _now(request))))


@requires("eia:write")
async def put_eia_stage(request: web.Request) -> web.Response:
    """Create or replace one stage (acceptance, pre_approval, approval, completion_acceptance)."""
    project_id = _id_path(request)
    stage = request.match_info["stage"]
    if stage not in models.EIA_STAGES:
        raise ApiError(404, "not_found", f"stages are {', '.join(models.EIA_STAGES)}")
    data = await _body(request)
    return _put_answer(*await _run(request, lambda conn: svc.put_eia_stage(
        conn, project_id, stage, data, actor_of(request))))


@requires("monitoring:write")
async def list_monitoring(request: web.Request) -> web.Response:
    """Monitoring results, newest first (``compliant=false``: exceedances)."""
    filters = _monitoring_filters(request)
    rows, cursor = await _run(request, lambda conn: lists.list_monitoring_results(
        conn, **filters))
    return _json({"results": [row_json(r) for r in rows], "next_cursor": cursor})


@requires("monitoring:write")
async def post_monitoring(request: web.Request) -> web.Response:
    """Store results (``{"results": [...]}``), idempotent on their natural key."""
    data = await _body(request)
    items = data.get("results")
    if set(data) != {"results"} or not isinstance(items, list) \
            or not 1 <= len(items) <= MAX_BATCH:
        raise ApiError(400, "invalid", f"send {{\"results\": [1-{MAX_BATCH} objects]}}")
    counts = await _run(request, lambda conn: svc.store_monitoring(conn, items,
                                                                   actor_of(request)))
    return _json(counts, 201 if counts["created"] else 200)


@requires("admin")
async def list_audit(request: web.Request) -> web.Response:
    """The audit log, newest first (filters: entity, entity_id, actor, since)."""
    filters = _audit_filters(request)
    rows, cursor = await _run(request, lambda conn: admin_store.list_audit(conn, **filters))
    return _json({"entries": [row_json(r) for r in rows], "next_cursor": cursor})


@requires("admin")
async def list_tokens(request: web.Request) -> web.Response:
    """Tokens (never their secrets)."""
    async with request.app[keys.POOL].acquire() as conn:
        rows = await admin_store.list_tokens(conn, include_revoked=True)
    return _json({"tokens": [row_json(r) for r in rows]})


# -- the route table -----------------------------------------------------------------------

ROUTES: tuple[Route, ...] = (
    *entity_routes(ENTERPRISES),
    ("PUT", "/api/v1/admin/enterprises/{code}/outlets/{outlet}", put_outlet,
     "Create or replace an outlet and its limits"),
    ("PUT", "/api/v1/admin/enterprises/{code}/key-list/{year}", put_key_listing,
     "Put an enterprise on a year's key-polluter list"),
    ("DELETE", "/api/v1/admin/enterprises/{code}/key-list/{year}", delete_key_listing,
     "Take an enterprise off a year's key-polluter list"),
    *entity_routes(RECORDS),
    ("POST", "/api/v1/admin/disclosures/{id}/corrections", correct_record,
     "Correct a record (a new version with a public note)"),
    ("POST", "/api/v1/admin/disclosures/{id}/retraction", retract_record,
     "Retract a record with a public reason"),
    *entity_routes(PENALTIES),
    *entity_routes(EIA),
    ("PUT", "/api/v1/admin/eia/projects/{id}/stages/{stage}", put_eia_stage,
     "Create or replace an EIA stage"),
    ("GET", "/api/v1/admin/monitoring-results", list_monitoring, "List monitoring results"),
    ("POST", "/api/v1/admin/monitoring-results", post_monitoring, "Store monitoring results"),
    ("POST", "/api/v1/admin/attachments", upload,
     "Upload an attachment (multipart, part 'file')"),
    ("GET", "/api/v1/admin/audit", list_audit, "The audit log"),
    ("GET", "/api/v1/admin/tokens", list_tokens, "The bearer tokens (no secrets)"),
)


def setup_admin(app: web.Application) -> None:
    """Register the admin API, the attachment download and their resources."""
    for method, path, handler, _ in ROUTES:
        app.router.add_route(method, path, json_route(handler))
    app.router.add_get("/api/v1/attachments/{id}", json_route(download))
    app.cleanup_ctx.append(_admin_ctx)


async def _admin_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[keys.CONFIG]
    catalog = load_catalog(cfg.disclosure.catalog_path(cfg.config_dir))

    async def sync() -> None:
        async with app[keys.POOL].acquire() as conn:
            await store.sync_catalog(conn, catalog)

    await retry_on_outage("disclosure catalogue sync", sync)
    files = AttachmentStore(cfg.disclosure.attachments_path(cfg.database.data_dir),
                            cfg.disclosure.max_attachment_bytes)
    app[keys.DISCLOSURE_CATALOG] = catalog
    app[keys.ATTACHMENTS] = files
    app[keys.ADMIN_GUARD] = AdminGuard(cfg.disclosure, cfg.http)
    yield
