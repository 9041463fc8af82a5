"""The bureau's admin API under ``/api/v1/admin/``: bearer tokens, scopes, audit on every change.

Enterprises (+ outlets, key-list years), disclosure records (create; correct = new version;
retract with a public reason; never delete), penalties, EIA projects and stages, monitoring
results, attachments, and the audit log. Every route is declared once in :data:`ROUTES`
with the scopes it needs; the OpenAPI paths are built from the same table.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import asyncpg
from aiohttp import web

from aqi_service.disclosure import credit_code as cc
from aqi_service.disclosure import models
from aqi_service.disclosure import service as svc
from aqi_service.disclosure.catalog import load_catalog
from aqi_service.disclosure.fields import Invalid, Problem
from aqi_service.disclosure.files import AttachmentStore
from aqi_service.disclosure.serialize import row_json
from aqi_service.disclosure.service import Conflict, NotFound
from aqi_service.disclosure.uploads import ALLOWED as ALLOWED_TYPES
from aqi_service.errors import InputError
from aqi_service.storage import admin as admin_store
from aqi_service.storage import disclosure as store
from aqi_service.storage.retry import retry_on_outage
from aqi_service.web import keys, params
from aqi_service.web.admin_auth import AdminGuard, actor_of, requires
from aqi_service.web.attachments import download, upload
from aqi_service.web.errors import ApiError, json_route

MAX_BATCH = 1000
"""Monitoring results per request."""
YEAR = re.compile(r"^[0-9]{4}$")


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


def _limit(request: web.Request, default: int = 50) -> int:
    raw = _query(request, "limit", pattern=re.compile(r"^[0-9]{1,4}$"))
    if raw is None:
        return default
    if not 1 <= int(raw) <= store.MAX_PAGE:
        raise params.bad("limit", f"must be 1-{store.MAX_PAGE}")
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


def _now(request: web.Request) -> Any:
    return request.app[keys.CLOCK]()


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status,
                             dumps=lambda o: json.dumps(o, ensure_ascii=False),
                             headers={"Cache-Control": "no-store"})


# -- enterprises ---------------------------------------------------------------------------

@requires("enterprises:write")
async def list_enterprises(request: web.Request) -> web.Response:
    """Enterprises (filters: county, control_level, key_list_year, q, sample)."""
    county = _query(request, "county", choices=tuple(models.COUNTIES))
    level = _query(request, "control_level", choices=("national", "provincial", "city"))
    year = _query(request, "key_list_year", pattern=YEAR)
    with _translated():
        async with request.app[keys.POOL].acquire() as conn:
            rows, cursor = await store.list_enterprises(
                conn, county=county, control_level=level,
                key_list_year=int(year) if year else None, q=_query(request, "q"),
                sample=_bool(request, "sample"), cursor=_query(request, "cursor"),
                limit=_limit(request))
    return _json({"enterprises": [row_json(r) for r in rows], "next_cursor": cursor})


@requires("enterprises:write")
async def create_enterprise(request: web.Request) -> web.Response:
    """A new enterprise (with optional outlets and key listings)."""
    data = await _body(request)
    async with request.app[keys.POOL].acquire() as conn:
        with _translated():
            ent = models.parse_enterprise(data, await store.vocabulary(conn))
            async with conn.transaction():
                _, doc = await svc.save_enterprise(conn, ent, actor_of(request),
                                                   must_exist=False)
    return _json(doc, 201)


@requires("enterprises:write")
async def get_enterprise(request: web.Request) -> web.Response:
    """One enterprise with outlets, limits and key listings."""
    code = _credit_code_path(request)
    async with request.app[keys.POOL].acquire() as conn:
        doc = await svc.enterprise_document(conn, code)
    if doc is None:
        raise ApiError(404, "not_found", f"no enterprise with credit code {code}")
    return _json(doc)


@requires("enterprises:write")
async def patch_enterprise(request: web.Request) -> web.Response:
    """Change some fields of an enterprise (the credit code is its identity)."""
    code = _credit_code_path(request)
    data = await _body(request)
    if "credit_code" in data and data["credit_code"] != code:
        raise ApiError(400, "invalid", "credit_code cannot change")
    async with request.app[keys.POOL].acquire() as conn:
        with _translated():
            async with conn.transaction():
                current = await svc.enterprise_document(conn, code)
                if current is None:
                    raise NotFound(f"no enterprise with credit code {code}")
                merged = {**svc.enterprise_input(current), **data}
                ent = models.parse_enterprise(merged, await store.vocabulary(conn))
                _, doc = await svc.save_enterprise(conn, ent, actor_of(request),
                                                   must_exist=True)
    return _json(doc)


@requires("enterprises:write")
async def put_outlet(request: web.Request) -> web.Response:
    """Create or replace an outlet and its limits."""
    code = _credit_code_path(request)
    data = await _body(request)
    outlet_code = request.match_info["outlet"].upper()
    if data.setdefault("outlet_code", outlet_code) != outlet_code:
        raise ApiError(400, "invalid", "outlet_code differs from the URL")
    async with request.app[keys.POOL].acquire() as conn:
        with _translated():
            outlet = models.parse_outlet(data, await store.vocabulary(conn))
            async with conn.transaction():
                action, doc = await svc.save_outlet(conn, code, outlet, actor_of(request))
    return _json(doc, 201 if action == "created" else 200)


def _year_path(request: web.Request) -> int:
    raw = request.match_info["year"]
    if not YEAR.match(raw) or not 2000 <= int(raw) <= 2100:
        raise ApiError(404, "not_found", "the year must be 2000-2100")
    return int(raw)


@requires("enterprises:write")
async def put_key_listing(request: web.Request) -> web.Response:
    """Put an enterprise on a year's key-polluter list."""
    code = _credit_code_path(request)
    year = _year_path(request)
    data = await _body(request)
    async with request.app[keys.POOL].acquire() as conn:
        with _translated():
            listing = models.parse_key_listing(data, year)
            async with conn.transaction():
                action, doc = await svc.set_key_listing(conn, code, listing,
                                                        actor_of(request))
    return _json(doc, 201 if action == "created" else 200)


@requires("enterprises:write")
async def delete_key_listing(request: web.Request) -> web.Response:
    """Take an enterprise off a year's key-polluter list."""
    code = _credit_code_path(request)
    year = _year_path(request)
    async with request.app[keys.POOL].acquire() as conn:
        with _translated():
            async with conn.transaction():
                removed = await svc.delete_key_listing(conn, code, year, actor_of(request))
    return _json({"removed": removed})


# -- disclosure records --------------------------------------------------------------------

_STATUSES = ("published", "corrected", "retracted")


@requires("disclosures:write")
async def list_records(request: web.Request) -> web.Response:
    """Records, retracted ones included (filters, ``q`` search, keyset cursor)."""
    catalog = request.app[keys.DISCLOSURE_CATALOG]
    category = _query(request, "category", choices=tuple(c.code for c in catalog.categories))
    subitem = _query(request, "subitem", choices=tuple(s.code for s in catalog.subitems))
    county = _query(request, "county", choices=tuple(models.COUNTIES))
    status = _query(request, "status", choices=_STATUSES)
    enterprise = _credit_code_query(request, "enterprise")
    published_from = params.optional_time(request, "published_from", empty_is_absent=True)
    published_before = params.optional_time(request, "published_before", empty_is_absent=True)
    q = _query(request, "q")
    limit = _limit(request, 20)
    cursor = _query(request, "cursor")
    with _translated():
        async with request.app[keys.POOL].acquire() as conn:
            if q is not None:
                enterprise_id = None
                if enterprise is not None:
                    enterprise_id = (await store.enterprise_ids(conn, [enterprise])).get(
                        enterprise, -1)
                rows, next_cursor = await store.search_records(
                    conn, q, category=category, subitem=subitem, enterprise_id=enterprise_id,
                    county=county, include_retracted=status != "published",
                    cursor=cursor, limit=limit)
                if status is not None:
                    rows = [r for r in rows if r["status"] == status]
            else:
                rows, next_cursor = await store.list_records(
                    conn, category=category, subitem=subitem, credit_code=enterprise,
                    county=county, statuses=[status] if status else None,
                    published_from=published_from, published_before=published_before,
                    sample=_bool(request, "sample"), cursor=cursor, limit=limit)
    return _json({"records": [row_json(r) for r in rows], "next_cursor": next_cursor})


@requires("disclosures:write")
async def create_record(request: web.Request) -> web.Response:
    """Publish a new record (version 1)."""
    data = await _body(request)
    async with request.app[keys.POOL].acquire() as conn:
        with _translated():
            rec = models.parse_record(data, await store.vocabulary(conn))
            async with conn.transaction():
                doc = await svc.create_record(conn, rec, actor_of(request), _now(request))
    return _json(doc, 201)


@requires("disclosures:write")
async def get_record(request: web.Request) -> web.Response:
    """A record with every version (retracted records included, marked as such)."""
    record_id = _id_path(request)
    async with request.app[keys.POOL].acquire() as conn:
        doc = await svc.record_document(conn, record_id)
    if doc is None:
        raise ApiError(404, "not_found", f"no record {record_id}")
    return _json(doc)


_CORRECTABLE = ("subitem", "enterprise", "title", "body", "effective_on", "attachments")


@requires("disclosures:write")
async def correct_record(request: web.Request) -> web.Response:
    """A new version correcting the record; ``note`` (public) says what was corrected."""
    record_id = _id_path(request)
    data = await _body(request)
    unknown = [k for k in data if k not in (*_CORRECTABLE, "note")]
    problems = [Problem(k[:40], "unknown field (a correction changes "
                               f"{', '.join(_CORRECTABLE)})") for k in unknown]
    async with request.app[keys.POOL].acquire() as conn:
        with _translated():
            if problems:
                raise Invalid(problems)
            note = models.parse_note(data, "note")
            async with conn.transaction():
                current = await svc.record_document(conn, record_id, versions=False)
                if current is None:
                    raise NotFound(f"no record {record_id}")
                merged = {**svc.record_input(current),
                          **{k: v for k, v in data.items() if k != "note"}}
                rec = models.parse_record(merged, await store.vocabulary(conn))
                await svc.correct_record(conn, record_id, rec, note, actor_of(request),
                                         _now(request))
                doc = await svc.record_document(conn, record_id)
    return _json(doc, 201)


@requires("disclosures:write")
async def retract_record(request: web.Request) -> web.Response:
    """Retract a record with a public ``reason``; it stays listed as retracted."""
    record_id = _id_path(request)
    data = await _body(request)
    async with request.app[keys.POOL].acquire() as conn:
        with _translated():
            if set(data) - {"reason"}:
                raise Invalid([Problem("body", "a retraction takes only 'reason'")])
            reason = models.parse_note(data, "reason")
            async with conn.transaction():
                await svc.retract_record(conn, record_id, reason, actor_of(request),
                                         _now(request))
                doc = await svc.record_document(conn, record_id)
    return _json(doc)


# -- penalties -----------------------------------------------------------------------------

@requires("penalties:write")
async def list_penalties(request: web.Request) -> web.Response:
    """Penalties, latest decision first."""
    status = _query(request, "enforcement_status", choices=models.ENFORCEMENT)
    with _translated():
        async with request.app[keys.POOL].acquire() as conn:
            rows, cursor = await store.list_penalties(
                conn, credit_code=_credit_code_query(request, "credit_code"),
                county=_query(request, "county", choices=tuple(models.COUNTIES)),
                enforcement_status=status, q=_query(request, "q"),
                sample=_bool(request, "sample"), cursor=_query(request, "cursor"),
                limit=_limit(request, 20))
    return _json({"penalties": [row_json(r) for r in rows], "next_cursor": cursor})


@requires("penalties:write")
async def create_penalty(request: web.Request) -> web.Response:
    """A new penalty decision."""
    data = await _body(request)
    async with request.app[keys.POOL].acquire() as conn:
        with _translated():
            pen = models.parse_penalty(data)
            async with conn.transaction():
                _, doc = await svc.save_penalty(conn, pen, actor_of(request),
                                                must_exist=False)
    return _json(doc, 201)


@requires("penalties:write")
async def get_penalty(request: web.Request) -> web.Response:
    """One penalty."""
    penalty_id = _id_path(request)
    async with request.app[keys.POOL].acquire() as conn:
        row = await store.get_penalty(conn, penalty_id)
    if row is None:
        raise ApiError(404, "not_found", f"no penalty {penalty_id}")
    return _json(row_json(row))


@requires("penalties:write")
async def patch_penalty(request: web.Request) -> web.Response:
    """Change some fields of a penalty (e.g. its enforcement status)."""
    penalty_id = _id_path(request)
    data = await _body(request)
    async with request.app[keys.POOL].acquire() as conn:
        with _translated():
            async with conn.transaction():
                row = await store.get_penalty(conn, penalty_id)
                if row is None:
                    raise NotFound(f"no penalty {penalty_id}")
                current = svc.penalty_input(row_json(row) or {})
                if data.get("decision_no", current["decision_no"]) != current["decision_no"]:
                    raise Invalid([Problem("decision_no", "cannot change")])
                pen = models.parse_penalty({**current, **data})
                _, doc = await svc.save_penalty(conn, pen, actor_of(request), must_exist=True)
    return _json(doc)


# -- EIA -----------------------------------------------------------------------------------

@requires("eia:write")
async def list_eia(request: web.Request) -> web.Response:
    """EIA projects, newest first."""
    with _translated():
        async with request.app[keys.POOL].acquire() as conn:
            rows, cursor = await store.list_eia_projects(
                conn, county=_query(request, "county", choices=tuple(models.COUNTIES)),
                stage=_query(request, "stage", choices=models.EIA_STAGES),
                q=_query(request, "q"), sample=_bool(request, "sample"),
                cursor=_query(request, "cursor"), limit=_limit(request, 20))
    return _json({"projects": [row_json(r) for r in rows], "next_cursor": cursor})


@requires("eia:write")
async def create_eia(request: web.Request) -> web.Response:
    """A new EIA project (with optional stages)."""
    data = await _body(request)
    async with request.app[keys.POOL].acquire() as conn:
        with _translated():
            project = models.parse_eia_project(data)
            async with conn.transaction():
                _, doc = await svc.save_eia_project(conn, project, actor_of(request),
                                                    must_exist=False)
    return _json(doc, 201)


@requires("eia:write")
async def get_eia(request: web.Request) -> web.Response:
    """One EIA project with its stages."""
    project_id = _id_path(request)
    async with request.app[keys.POOL].acquire() as conn:
        doc = await svc.eia_document(conn, project_id)
    if doc is None:
        raise ApiError(404, "not_found", f"no EIA project {project_id}")
    return _json(doc)


@requires("eia:write")
async def patch_eia(request: web.Request) -> web.Response:
    """Change some fields of a project (stages: PUT …/stages/{stage})."""
    project_id = _id_path(request)
    data = await _body(request)
    async with request.app[keys.POOL].acquire() as conn:
        with _translated():
            async with conn.transaction():
                current = await svc.eia_document(conn, project_id)
                if current is None:
                    raise NotFound(f"no EIA project {project_id}")
                base = svc.eia_input(current)
                if data.get("project_code", base["project_code"]) != base["project_code"]:
                    raise Invalid([Problem("project_code", "cannot change")])
                if "stages" in data:
                    raise Invalid([Problem("stages", "set stages with PUT …/stages/{stage}")])
                project = models.parse_eia_project({**base, **data})
                _, doc = await svc.save_eia_project(conn, project, actor_of(request),
                                                    must_exist=True)
    return _json(doc)


@requires("eia:write")
async def put_eia_stage(request: web.Request) -> web.Response:
    """Create or replace one stage (acceptance, pre_approval, approval, completion_acceptance)."""
    project_id = _id_path(request)
    stage = request.match_info["stage"]
    if stage not in models.EIA_STAGES:
        raise ApiError(404, "not_found", f"stages are {', '.join(models.EIA_STAGES)}")
    data = await _body(request)
    async with request.app[keys.POOL].acquire() as conn:
        with _translated():
            stage_in = models.parse_eia_stage(data, stage)
            async with conn.transaction():
                action, doc = await svc.save_eia_stage(conn, project_id, stage_in,
                                                       actor_of(request))
    return _json(doc, 201 if action == "created" else 200)


# -- monitoring results --------------------------------------------------------------------

@requires("monitoring:write")
async def list_monitoring(request: web.Request) -> web.Response:
    """Monitoring results, newest first (``compliant=false``: exceedances)."""
    with _translated():
        async with request.app[keys.POOL].acquire() as conn:
            rows, cursor = await store.list_monitoring_results(
                conn, credit_code=_credit_code_query(request, "enterprise"),
                outlet=_query(request, "outlet"), parameter=_query(request, "parameter"),
                source=_query(request, "source", choices=models.SOURCES),
                compliant=_bool(request, "compliant"), sample=_bool(request, "sample"),
                cursor=_query(request, "cursor"), limit=_limit(request))
    return _json({"results": [row_json(r) for r in rows], "next_cursor": cursor})


@requires("monitoring:write")
async def post_monitoring(request: web.Request) -> web.Response:
    """Store results (``{"results": [...]}``), idempotent on their natural key."""
    data = await _body(request)
    items = data.get("results")
    if set(data) != {"results"} or not isinstance(items, list) \
            or not 1 <= len(items) <= MAX_BATCH:
        raise ApiError(400, "invalid", f"send {{\"results\": [1-{MAX_BATCH} objects]}}")
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    async with request.app[keys.POOL].acquire() as conn:
        with _translated():
            vocab = await store.vocabulary(conn)
            parsed, problems = [], []
            for i, item in enumerate(items):
                try:
                    parsed.append(models.parse_monitoring(item, vocab))
                except Invalid as exc:
                    problems.extend(Problem(f"results[{i}].{p.field}", p.message)
                                    for p in exc.problems)
            if problems:
                raise Invalid(problems)
            async with conn.transaction():
                for i, res in enumerate(parsed):
                    try:
                        action, _ = await svc.save_monitoring(conn, res, vocab,
                                                              actor_of(request))
                    except Invalid as exc:
                        raise Invalid([Problem(f"results[{i}].{p.field}", p.message)
                                       for p in exc.problems]) from None
                    counts[action] += 1
    return _json(counts, 201 if counts["created"] else 200)


# -- audit and tokens ----------------------------------------------------------------------

@requires("admin")
async def list_audit(request: web.Request) -> web.Response:
    """The audit log, newest first (filters: entity, entity_id, actor, since)."""
    since = params.optional_time(request, "since", empty_is_absent=True)
    with _translated():
        async with request.app[keys.POOL].acquire() as conn:
            rows, cursor = await admin_store.list_audit(
                conn, entity=_query(request, "entity"), entity_id=_query(request, "entity_id"),
                actor=_query(request, "actor"), since=since, cursor=_query(request, "cursor"),
                limit=_limit(request, 100))
    return _json({"entries": [row_json(r) for r in rows], "next_cursor": cursor})


@requires("admin")
async def list_tokens(request: web.Request) -> web.Response:
    """Tokens (never their secrets)."""
    async with request.app[keys.POOL].acquire() as conn:
        rows = await admin_store.list_tokens(conn, include_revoked=True)
    return _json({"tokens": [row_json(r) for r in rows]})


# -- the route table -----------------------------------------------------------------------

Route = tuple[str, str, Callable[..., Any], str]
ROUTES: tuple[Route, ...] = (
    ("GET", "/api/v1/admin/enterprises", list_enterprises, "List enterprises"),
    ("POST", "/api/v1/admin/enterprises", create_enterprise, "Create an enterprise"),
    ("GET", "/api/v1/admin/enterprises/{code}", get_enterprise, "One enterprise"),
    ("PATCH", "/api/v1/admin/enterprises/{code}", patch_enterprise, "Update an enterprise"),
    ("PUT", "/api/v1/admin/enterprises/{code}/outlets/{outlet}", put_outlet,
     "Create or replace an outlet and its limits"),
    ("PUT", "/api/v1/admin/enterprises/{code}/key-list/{year}", put_key_listing,
     "Put an enterprise on a year's key-polluter list"),
    ("DELETE", "/api/v1/admin/enterprises/{code}/key-list/{year}", delete_key_listing,
     "Take an enterprise off a year's key-polluter list"),
    ("GET", "/api/v1/admin/disclosures", list_records, "List records (retracted included)"),
    ("POST", "/api/v1/admin/disclosures", create_record, "Publish a record"),
    ("GET", "/api/v1/admin/disclosures/{id}", get_record, "A record with every version"),
    ("POST", "/api/v1/admin/disclosures/{id}/corrections", correct_record,
     "Correct a record (a new version with a public note)"),
    ("POST", "/api/v1/admin/disclosures/{id}/retraction", retract_record,
     "Retract a record with a public reason"),
    ("GET", "/api/v1/admin/penalties", list_penalties, "List penalties"),
    ("POST", "/api/v1/admin/penalties", create_penalty, "Create a penalty"),
    ("GET", "/api/v1/admin/penalties/{id}", get_penalty, "One penalty"),
    ("PATCH", "/api/v1/admin/penalties/{id}", patch_penalty, "Update a penalty"),
    ("GET", "/api/v1/admin/eia/projects", list_eia, "List EIA projects"),
    ("POST", "/api/v1/admin/eia/projects", create_eia, "Create an EIA project"),
    ("GET", "/api/v1/admin/eia/projects/{id}", get_eia, "One EIA project"),
    ("PATCH", "/api/v1/admin/eia/projects/{id}", patch_eia, "Update an EIA project"),
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


# -- OpenAPI -------------------------------------------------------------------------------

_S = {"type": "string"}
_SN = {"type": ["string", "null"]}
_T = {"type": "string", "format": "date-time"}
_TN = {"type": ["string", "null"], "format": "date-time"}
_DN = {"type": ["string", "null"], "format": "date"}
_DEC = {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$",
        "description": "exact decimal, as text"}
_DECN = {"type": ["string", "null"], "pattern": "^-?[0-9]+(\\.[0-9]+)?$"}
_NUMN = {"type": ["number", "null"]}
_INT = {"type": "integer"}
_INTN = {"type": ["integer", "null"]}
_CODE = {"type": "string", "pattern": "^[0-9A-HJ-NPQRTUWXY]{18}$",
         "description": "unified social credit code (GB 32100)"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


def _page(key: str, item: str) -> dict[str, Any]:
    return _obj([key, "next_cursor"], **{key: {"type": "array", "items": _ref(item)},
                                         "next_cursor": _SN})


OPENAPI_SCHEMAS: dict[str, Any] = {
    "AdminAttachment": _obj(
        ["id", "filename", "content_type", "size_bytes", "sha256", "url"],
        id={"type": "string", "format": "uuid"}, filename=_S, content_type=_S,
        size_bytes=_INT, sha256={"type": "string", "pattern": "^[0-9a-f]{64}$"},
        uploaded_at=_T, uploaded_by=_S, is_sample={"type": "boolean"}, url=_S),
    "AdminLimit": _obj(["parameter", "upper_limit", "lower_limit", "unit"],
                       parameter=_S, parameter_name_zh=_S, parameter_name_en=_S,
                       upper_limit=_DECN, lower_limit=_DECN, unit=_S, standard=_S,
                       reference_o2_pct=_DECN),
    "AdminOutlet": _obj(["id", "outlet_code", "kind", "limits"],
                        id=_INT, outlet_code=_S, name=_S, kind={"enum": ["gas", "water"]},
                        category={"enum": ["main", "general", None]}, lat=_NUMN, lon=_NUMN,
                        hj212_mn=_SN, active={"type": "boolean"},
                        limits={"type": "array", "items": _ref("AdminLimit")}),
    "AdminEnterprise": _obj(
        ["id", "credit_code", "name_zh", "county_code", "control_level", "is_sample"],
        id=_INT, credit_code=_CODE, name_zh=_S, name_en=_S, county_code=_S,
        county_name_zh=_S, county_name_en=_S, industry_code=_S, industry=_S, address=_S,
        lat=_NUMN, lon=_NUMN, legal_representative=_S, permit_no=_S,
        control_level={"enum": ["national", "provincial", "city", None]},
        is_sample={"type": "boolean"}, created_at=_T, updated_at=_T,
        outlets={"type": "array", "items": _ref("AdminOutlet")},
        key_listings={"type": "array", "items": _obj(
            ["year", "categories"], year=_INT, categories={"type": "array", "items": _S},
            note=_S)}),
    "AdminRecord": _obj(
        ["id", "subitem_code", "category_code", "title", "body", "published_at", "version",
         "status", "status_reason"],
        id=_INT, ref=_SN, subitem_code=_S, category_code=_S, subitem_name_zh=_S,
        subitem_name_en=_S, category_name_zh=_S, category_name_en=_S, enterprise_id=_INTN,
        credit_code=_SN, enterprise_name_zh=_SN, enterprise_name_en=_SN, county_code=_SN,
        title=_S, body=_S, effective_on=_DN, published_at=_T, updated_at=_T,
        version={"type": "integer", "minimum": 1},
        status={"enum": ["published", "corrected", "retracted"]}, status_reason=_S,
        retracted_at=_TN, publisher={"enum": ["bureau", "enterprise"]},
        is_sample={"type": "boolean"},
        attachments={"type": "array", "items": _ref("AdminAttachment")},
        versions={"type": "array", "items": _obj(
            ["version", "change", "title", "body", "published_at", "note", "actor"],
            version=_INT, change={"enum": ["created", "corrected", "retracted"]},
            subitem_code=_S, credit_code=_SN, title=_S, body=_S, effective_on=_DN,
            published_at=_T, note=_S, actor=_S,
            attachments={"type": "array", "items": _ref("AdminAttachment")})}),
    "AdminPenalty": _obj(
        ["id", "decision_no", "party_name", "fine_amount", "decision_date",
         "enforcement_status"],
        id=_INT, decision_no=_S, enterprise_id=_INTN, enterprise_name_zh=_SN,
        county_code=_SN, party_name=_S, credit_code=_SN, violation=_S, legal_basis=_S,
        penalty=_S, fine_amount=_DECN, decision_date={"type": "string", "format": "date"},
        enforcement_status={"enum": list(models.ENFORCEMENT)}, record_id=_INTN,
        attachment_id=_SN, published_at=_T, is_sample={"type": "boolean"}),
    "AdminEiaProject": _obj(
        ["id", "project_code", "name", "builder", "county_code", "document_kind"],
        id=_INT, project_code=_S, name=_S, builder=_S, builder_credit_code=_SN,
        enterprise_id=_INTN, county_code=_S, location=_S, lat=_NUMN, lon=_NUMN,
        project_type=_S, document_kind={"enum": ["report", "table"]}, eia_agency=_S,
        summary=_S, latest_stage={"enum": [*models.EIA_STAGES, None]},
        stages={"type": "array", "items": _obj(
            ["stage", "published_on"], stage={"enum": list(models.EIA_STAGES)},
            published_on={"type": "string", "format": "date"}, comment_from=_DN,
            comment_until=_DN, decision_no=_SN, decision_date=_DN,
            outcome={"enum": ["approved", "rejected", None]}, attachment_id=_SN,
            attachment_url=_S, note=_S)}),
    "AdminMonitoringResult": _obj(
        ["id", "credit_code", "outlet_code", "parameter", "source", "method", "period",
         "measured_at", "value", "unit", "compliant"],
        id=_INT, credit_code=_CODE, outlet_code=_S, parameter=_S, source={
            "enum": list(models.SOURCES)}, method={"enum": list(models.METHODS)},
        period={"enum": list(models.PERIODS)}, measured_at=_T, value=_DECN, unit=_S,
        upper_limit=_DECN, lower_limit=_DECN, flag={"enum": list(models.FLAGS)},
        compliant={"type": ["boolean", "null"]}, exceedance_multiple=_DECN),
    "AuditEntry": _obj(["id", "at", "actor", "action", "entity", "entity_id"],
                       id=_INT, at=_T, actor=_S, action=_S, entity=_S, entity_id=_S,
                       before={"type": ["object", "null"]},
                       after={"type": ["object", "null"]}, client_address=_S,
                       request_id=_S),
    "AdminToken": _obj(["id", "key_id", "name", "scopes"], id=_INT, key_id=_S, name=_S,
                       scopes={"type": "array", "items": _S}, created_at=_T, created_by=_S,
                       expires_at=_TN, last_used_at=_TN, revoked_at=_TN),
}
_RESPONSES: dict[Callable[..., Any], dict[str, Any]] = {
    list_enterprises: _page("enterprises", "AdminEnterprise"),
    create_enterprise: _ref("AdminEnterprise"), get_enterprise: _ref("AdminEnterprise"),
    patch_enterprise: _ref("AdminEnterprise"), put_outlet: _ref("AdminOutlet"),
    list_records: _page("records", "AdminRecord"), create_record: _ref("AdminRecord"),
    get_record: _ref("AdminRecord"), correct_record: _ref("AdminRecord"),
    retract_record: _ref("AdminRecord"), list_penalties: _page("penalties", "AdminPenalty"),
    create_penalty: _ref("AdminPenalty"), get_penalty: _ref("AdminPenalty"),
    patch_penalty: _ref("AdminPenalty"), list_eia: _page("projects", "AdminEiaProject"),
    create_eia: _ref("AdminEiaProject"), get_eia: _ref("AdminEiaProject"),
    patch_eia: _ref("AdminEiaProject"),
    list_monitoring: _page("results", "AdminMonitoringResult"),
    post_monitoring: _obj(["created", "updated", "unchanged"], created=_INT, updated=_INT,
                          unchanged=_INT),
    upload: _ref("AdminAttachment"), list_audit: _page("entries", "AuditEntry"),
    list_tokens: _obj(["tokens"], tokens={"type": "array", "items": _ref("AdminToken")}),
}

def _filter(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}


_TEXT = {"type": "string", "maxLength": params.MAX_PARAM,
         "pattern": params.NO_CONTROL_PATTERN}
_CREDIT_FILTER = {"type": "string", "pattern": "^([0-9A-HJ-NPQRTUWXY]{18})?$",
                  "description": "unified social credit code (GB 32100, check characters "
                                 "verified); empty: no filter"}
_TIME_FILTER = {"type": "string", "pattern": f"^$|{params.TIME_PATTERN}"}


def _choices(values: Any) -> dict[str, Any]:
    return {"enum": ["", *values]}


_LIMIT = _filter("limit", {"type": "string", "pattern": "^(|[1-9][0-9]?|1[0-9]{2}|200)$"},
                 f"rows per page, 1-{store.MAX_PAGE}")
assert store.MAX_PAGE == 200, "the limit's pattern above says 200"
_BOOL = _choices(("true", "false"))
_COMMON = [_filter("q", _TEXT, "words that must all occur"),
           _filter("cursor", _TEXT, "next_cursor of the previous page (opaque)"), _LIMIT]
_SAMPLE = _filter("sample", _BOOL, "only sample (true) or real (false) data")
_COUNTY_FILTER = _filter("county", _choices(models.COUNTIES))
_FILTERS: dict[Callable[..., Any], list[dict[str, Any]]] = {}
"""Query parameters of the list routes (an empty value counts as absent)."""


def _openapi_paths() -> dict[str, Any]:
    err = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    paths: dict[str, Any] = {}
    for method, path, handler, summary in ROUTES:
        scopes = list(getattr(handler, "admin_scopes", ()))
        op: dict[str, Any] = {
            "summary": summary,
            "description": f"Needs a bearer token with the scope {' or '.join(scopes)} "
                           "(or admin).",
            "security": [{"bearerAuth": scopes}],
            "parameters": [*({"name": n, "in": "path", "required": True,
                              "schema": {"type": "string"}}
                             for n in re.findall(r"{(\w+)}", path)),
                           *_FILTERS.get(handler, ())],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {
                    "schema": _RESPONSES.get(handler, {"type": "object"})}}},
                "400": {"description": "Bad input (every problem named)", **err},
                "401": {"description": "Missing or invalid token (WWW-Authenticate: Bearer)",
                        **err},
                "403": {"description": "The token lacks the scope", **err},
                "404": {"description": "Not found", **err},
                "429": {"description": "Too many failed authentications (Retry-After)",
                        **err},
            },
        }
        if method in ("POST", "PUT"):
            op["responses"]["201"] = {"description": "Created",
                                      "content": {"application/json": {
                                          "schema": _RESPONSES.get(handler,
                                                                   {"type": "object"})}}}
        if method in ("POST", "PUT", "PATCH"):
            op["responses"]["409"] = {"description": "Conflicts with the stored state", **err}
            op["responses"]["415"] = {"description": "Not application/json in UTF-8" if
                                      handler is not upload else "Not multipart/form-data",
                                      **err}
            media = "multipart/form-data" if handler is upload else "application/json"
            op["requestBody"] = {"required": True,
                                 "content": {media: {"schema": {"type": "object"}}}}
        if handler is upload:
            op["responses"]["413"] = {"description": "Larger than the limit", **err}
            op["responses"]["415"] = {"description": "Type not allowed, or the declared "
                                      "type / extension disagrees with the content", **err}
        paths.setdefault(path, {})[method.lower()] = op
    paths["/api/v1/attachments/{id}"] = {"get": {
        "summary": "Download an attachment (Content-Disposition: attachment, nosniff, "
                   "CSP sandbox; X-Content-SHA256 is its SHA-256)",
        "parameters": [{"name": "id", "in": "path", "required": True,
                        "schema": {"type": "string", "format": "uuid"}}],
        "responses": {"200": {"description": "The file, in its stored type",
                              "content": {media: {"schema": {"type": "string"}}
                                          for media in ALLOWED_TYPES}},
                      "404": {"description": "Unknown attachment", **err}}}}
    return paths


_FILTERS.update({
    list_enterprises: [_COUNTY_FILTER,
                       _filter("control_level", _choices(("national", "provincial", "city"))),
                       _filter("key_list_year", {"type": "string", "pattern": "^([0-9]{4})?$"}),
                       _SAMPLE, *_COMMON],
    list_records: [_filter("category", _TEXT, "a category code of the catalogue"),
                   _filter("subitem", _TEXT, "a sub-item code of the catalogue"),
                   _COUNTY_FILTER,
                   _filter("status", _choices(_STATUSES)),
                   _filter("enterprise", _CREDIT_FILTER),
                   _filter("published_from", _TIME_FILTER),
                   _filter("published_before", _TIME_FILTER), _SAMPLE, *_COMMON],
    list_penalties: [_filter("enforcement_status", _choices(models.ENFORCEMENT)),
                     _filter("credit_code", _CREDIT_FILTER), _COUNTY_FILTER, _SAMPLE,
                     *_COMMON],
    list_eia: [_COUNTY_FILTER, _filter("stage", _choices(models.EIA_STAGES)), _SAMPLE,
               *_COMMON],
    list_monitoring: [_filter("enterprise", _CREDIT_FILTER), _filter("outlet", _TEXT),
                      _filter("parameter", _TEXT), _filter("source", _choices(models.SOURCES)),
                      _filter("compliant", _BOOL), _SAMPLE, *_COMMON[1:]],
    list_audit: [_filter("entity", _TEXT), _filter("entity_id", _TEXT),
                 _filter("actor", _TEXT), _filter("since", _TIME_FILTER),
                 _filter("cursor", _TEXT), _LIMIT],
})
OPENAPI_PATHS = _openapi_paths()
OPENAPI_SECURITY_SCHEMES = {"bearerAuth": {
    "type": "http", "scheme": "bearer",
    "description": "A token made with `aqi-service admin token create --name NAME --scope "
                   "SCOPE…`; scopes: admin, enterprises:write, disclosures:write, "
                   "penalties:write, eia:write, monitoring:write."}}
