"""The admin API in the OpenAPI document: its schemas and paths, built from the route table.

Every route of :data:`aqi_service.web.admin.ROUTES` is described with the scopes its handler
needs, its path parameters, its list filters and its answers (the error envelope for each
refusal).
"""

from __future__ import annotations

import re
from typing import Any

from aqi_service.disclosure import models
from aqi_service.disclosure.uploads import ALLOWED as ALLOWED_TYPES
from aqi_service.storage import cursors
from aqi_service.web import params
from aqi_service.web.admin import (
    CONTROL_LEVELS,
    EIA,
    ENTERPRISES,
    ENTITIES,
    PENALTIES,
    RECORDS,
    ROUTES,
    STATUSES,
    entity_routes,
)
from aqi_service.web.attachments import upload

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
_ENTITY_SCHEMAS = {ENTERPRISES.path: "AdminEnterprise", RECORDS.path: "AdminRecord",
                   PENALTIES.path: "AdminPenalty", EIA.path: "AdminEiaProject"}
_RESPONSES: dict[tuple[str, str], dict[str, Any]] = {}
"""The answer's schema of each (method, path); absent: an object."""
for _e in ENTITIES:
    _item = _ref(_ENTITY_SCHEMAS[_e.path])
    for _method, _path, _, _ in entity_routes(_e):
        _RESPONSES[_method, _path] = (_page(_e.items, _ENTITY_SCHEMAS[_e.path])
                                      if _method == "GET" and _path == _e.path else _item)
_RESPONSES.update({
    ("PUT", "/api/v1/admin/enterprises/{code}/outlets/{outlet}"): _ref("AdminOutlet"),
    ("POST", "/api/v1/admin/disclosures/{id}/corrections"): _ref("AdminRecord"),
    ("POST", "/api/v1/admin/disclosures/{id}/retraction"): _ref("AdminRecord"),
    ("GET", "/api/v1/admin/monitoring-results"): _page("results", "AdminMonitoringResult"),
    ("POST", "/api/v1/admin/monitoring-results"): _obj(
        ["created", "updated", "unchanged"], created=_INT, updated=_INT, unchanged=_INT),
    ("POST", "/api/v1/admin/attachments"): _ref("AdminAttachment"),
    ("GET", "/api/v1/admin/audit"): _page("entries", "AuditEntry"),
    ("GET", "/api/v1/admin/tokens"): _obj(["tokens"], tokens={"type": "array",
                                                             "items": _ref("AdminToken")}),
})


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
                 f"rows per page, 1-{cursors.MAX_PAGE}")
assert cursors.MAX_PAGE == 200, "the limit's pattern above says 200"
_BOOL = _choices(("true", "false"))
_COMMON = [_filter("q", _TEXT, "words that must all occur"),
           _filter("cursor", _TEXT, "next_cursor of the previous page (opaque)"), _LIMIT]
_SAMPLE = _filter("sample", _BOOL, "only sample (true) or real (false) data")
_COUNTY_FILTER = _filter("county", _choices(models.COUNTIES))
_FILTERS: dict[str, list[dict[str, Any]]] = {}
"""Query parameters of the list routes, by path (an empty value counts as absent)."""


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
                           *(_FILTERS.get(path, ()) if method == "GET" else ())],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {
                    "schema": _RESPONSES.get((method, path), {"type": "object"})}}},
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
                                          "schema": _RESPONSES.get((method, path),
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
    ENTERPRISES.path: [_COUNTY_FILTER,
                       _filter("control_level", _choices(CONTROL_LEVELS)),
                       _filter("key_list_year", {"type": "string", "pattern": "^([0-9]{4})?$"}),
                       _SAMPLE, *_COMMON],
    RECORDS.path: [_filter("category", _TEXT, "a category code of the catalogue"),
                   _filter("subitem", _TEXT, "a sub-item code of the catalogue"),
                   _COUNTY_FILTER,
                   _filter("status", _choices(STATUSES)),
                   _filter("enterprise", _CREDIT_FILTER),
                   _filter("published_from", _TIME_FILTER),
                   _filter("published_before", _TIME_FILTER), _SAMPLE, *_COMMON],
    PENALTIES.path: [_filter("enforcement_status", _choices(models.ENFORCEMENT)),
                     _filter("credit_code", _CREDIT_FILTER), _COUNTY_FILTER, _SAMPLE,
                     *_COMMON],
    EIA.path: [_COUNTY_FILTER, _filter("stage", _choices(models.EIA_STAGES)), _SAMPLE,
               *_COMMON],
    "/api/v1/admin/monitoring-results": [
        _filter("enterprise", _CREDIT_FILTER), _filter("outlet", _TEXT),
        _filter("parameter", _TEXT), _filter("source", _choices(models.SOURCES)),
        _filter("compliant", _BOOL), _SAMPLE, *_COMMON[1:]],
    "/api/v1/admin/audit": [_filter("entity", _TEXT), _filter("entity_id", _TEXT),
                 _filter("actor", _TEXT), _filter("since", _TIME_FILTER),
                 _filter("cursor", _TEXT), _LIMIT],
})
OPENAPI_PATHS = _openapi_paths()
OPENAPI_SECURITY_SCHEMES = {"bearerAuth": {
    "type": "http", "scheme": "bearer",
    "description": "A token made with `aqi-service admin token create --name NAME --scope "
                   "SCOPE…`; scopes: admin, enterprises:write, disclosures:write, "
                   "penalties:write, eia:write, monitoring:write."}}
