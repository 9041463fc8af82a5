"""Writing disclosure data: validate against the database, write, audit — one transaction.

Used by the admin API, the CSV importer and the seed loader, so that every path writes the
same way and leaves the same audit trail. The documents (``*_document``) are the objects'
JSON as the admin API shows them.

Two levels: the writers (``save_*``, ``create_record``, ``correct_record``, …) run inside
the caller's transaction (an import or the seed is one transaction) and return what they
did (``created`` / ``updated`` / ``corrected`` / ``unchanged`` …) and the object's JSON
after the change. The admin API's operations (section "the admin API's operations" below)
take a request's JSON object, parse it and run the writers in one transaction they open
themselves: the web handlers open none.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from aqi_service.disclosure import models
from aqi_service.disclosure.fields import Invalid, Problem
from aqi_service.disclosure.models import (
    EiaProjectIn,
    EiaStageIn,
    EnterpriseIn,
    KeyListingIn,
    MonitoringIn,
    OutletIn,
    PenaltyIn,
    RecordIn,
    Vocabulary,
)
from aqi_service.disclosure.serialize import jsonable, row_json
from aqi_service.errors import InputError
from aqi_service.storage import admin as audit_store
from aqi_service.storage import disclosure as store

ATTACHMENT_URL = "/api/v1/attachments/{id}"


class NotFound(InputError):
    """The object named does not exist (404)."""


class Conflict(InputError):
    """The change contradicts the object's state (409), e.g. correcting a retracted record."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change, for the audit log."""

    name: str
    client_address: str = ""
    request_id: str = ""


async def _audit(conn: asyncpg.Connection, actor: Actor, action: str, entity: str,
                 entity_id: object, before: Mapping[str, Any] | None,
                 after: Mapping[str, Any] | None) -> None:
    await audit_store.audit(conn, actor.name, action, entity, entity_id,
                            None if before is None else jsonable(before),
                            None if after is None else jsonable(after),
                            client_address=actor.client_address, request_id=actor.request_id)


def attachment_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """An attachment's public metadata with its URL."""
    out = row_json(row, hide=("version", "position")) or {}
    out["url"] = ATTACHMENT_URL.format(id=row["id"])
    return out


# -- enterprises ---------------------------------------------------------------------------

async def enterprise_document(conn: asyncpg.Connection, credit_code: str
                              ) -> dict[str, Any] | None:
    """An enterprise with its outlets (and their limits) and key-list years."""
    row = await store.get_enterprise(conn, credit_code)
    if row is None:
        return None
    doc = row_json(row) or {}
    outlets = await store.outlets_of(conn, row["id"])
    limits = await store.limits_of(conn, [o["id"] for o in outlets])
    doc["outlets"] = []
    for outlet in outlets:
        item = row_json(outlet, hide=("enterprise_id",)) or {}
        item["limits"] = [row_json(lim, hide=("outlet_id",)) for lim in limits
                          if lim["outlet_id"] == outlet["id"]]
        doc["outlets"].append(item)
    doc["key_listings"] = [row_json(k) for k in await store.key_listings_of(conn, row["id"])]
    return doc


async def _require_enterprise(conn: asyncpg.Connection, credit_code: str) -> int:
    row = await store.get_enterprise(conn, credit_code)
    if row is None:
        raise NotFound(f"no enterprise with credit code {credit_code}")
    return row["id"]


async def save_enterprise(conn: asyncpg.Connection, ent: EnterpriseIn, actor: Actor, *,
                          must_exist: bool | None = None) -> tuple[str, dict[str, Any]]:
    """Create or update an enterprise by credit code (with the outlets and listings given).

    ``must_exist``: True for an update (404 if absent), False for a create (409 if present),
    None for an upsert (imports).
    """
    before = await enterprise_document(conn, ent.credit_code)
    if must_exist is True and before is None:
        raise NotFound(f"no enterprise with credit code {ent.credit_code}")
    if must_exist is False and before is not None:
        raise Conflict(f"enterprise {ent.credit_code} exists; update it with PATCH")
    if before is None:
        enterprise_id = await store.insert_enterprise(conn, ent)
    else:
        await store.update_enterprise(conn, ent)
        enterprise_id = before["id"]
    for outlet in ent.outlets:
        await store.upsert_outlet(conn, enterprise_id, outlet)
    for listing in ent.key_listings:
        await store.set_key_listing(conn, enterprise_id, listing)
    after = await enterprise_document(conn, ent.credit_code) or {}
    if before is not None and _same(before, after):
        return "unchanged", after
    action = "create" if before is None else "update"
    await _audit(conn, actor, action, "enterprise", ent.credit_code, before, after)
    return ("created" if before is None else "updated"), after


def _same(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    ignore = {"updated_at"}

    def strip(doc: Any) -> Any:
        if isinstance(doc, Mapping):
            return {k: strip(v) for k, v in doc.items() if k not in ignore}
        if isinstance(doc, list):
            return [strip(v) for v in doc]
        return doc
    return strip(jsonable(before)) == strip(jsonable(after))


def enterprise_input(doc: Mapping[str, Any]) -> dict[str, Any]:
    """An enterprise document as the input fields a PATCH is merged into."""
    keys = ("credit_code", "name_zh", "name_en", "industry_code", "industry", "address", "lat",
            "lon", "legal_representative", "permit_no", "control_level", "is_sample")
    out = {k: doc[k] for k in keys}
    out["county"] = doc["county_code"]
    for k in ("lat", "lon"):
        if out[k] is not None:
            out[k] = repr(out[k])
    return jsonable(out)


async def save_outlet(conn: asyncpg.Connection, credit_code: str, outlet: OutletIn,
                      actor: Actor) -> tuple[str, dict[str, Any]]:
    """Create or replace one outlet (and its limits) of an enterprise."""
    enterprise_id = await _require_enterprise(conn, credit_code)
    before_doc = await enterprise_document(conn, credit_code) or {}
    before = next((o for o in before_doc["outlets"]
                   if o["outlet_code"] == outlet.outlet_code), None)
    await store.upsert_outlet(conn, enterprise_id, outlet)
    after_doc = await enterprise_document(conn, credit_code) or {}
    after = next(o for o in after_doc["outlets"] if o["outlet_code"] == outlet.outlet_code)
    if before is not None and _same(before, after):
        return "unchanged", after
    await _audit(conn, actor, "create" if before is None else "update", "outlet",
                 f"{credit_code}/{outlet.outlet_code}", before, after)
    return ("created" if before is None else "updated"), after


async def set_key_listing(conn: asyncpg.Connection, credit_code: str, listing: KeyListingIn,
                          actor: Actor) -> tuple[str, dict[str, Any]]:
    """Put an enterprise on a year's key-polluter list (or change its categories)."""
    enterprise_id = await _require_enterprise(conn, credit_code)
    rows = {r["year"]: row_json(r) for r in await store.key_listings_of(conn, enterprise_id)}
    before = rows.get(listing.year)
    await store.set_key_listing(conn, enterprise_id, listing)
    after = {"year": listing.year, "categories": list(listing.categories),
             "note": listing.note}
    if before == after:
        return "unchanged", after
    await _audit(conn, actor, "create" if before is None else "update", "key_listing",
                 f"{credit_code}/{listing.year}", before, after)
    return ("created" if before is None else "updated"), after


async def delete_key_listing(conn: asyncpg.Connection, credit_code: str, year: int,
                             actor: Actor) -> dict[str, Any]:
    """Take an enterprise off a year's list (the list is drawn up again, not history)."""
    enterprise_id = await _require_enterprise(conn, credit_code)
    removed = await store.delete_key_listing(conn, enterprise_id, year)
    if removed is None:
        raise NotFound(f"{credit_code} is not on the {year} list")
    before = row_json(removed) or {}
    await _audit(conn, actor, "delete", "key_listing", f"{credit_code}/{year}", before, None)
    return before


# -- disclosure records --------------------------------------------------------------------

async def record_document(conn: asyncpg.Connection, record_id: int, *,
                          versions: bool = True) -> dict[str, Any] | None:
    """A record as shown: current content and attachments, status, and every version."""
    row = await store.get_record(conn, record_id)
    if row is None:
        return None
    doc = row_json(row) or {}
    attachments = await store.record_attachments(conn, record_id)
    doc["attachments"] = [attachment_json(a) for a in attachments
                          if a["version"] == row["version"]]
    if versions:
        doc["versions"] = []
        for v in await store.record_versions(conn, record_id):
            item = row_json(v) or {}
            item["attachments"] = [attachment_json(a) for a in attachments
                                   if a["version"] == v["version"]]
            doc["versions"].append(item)
    return doc


def record_input(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A record's current content as the input fields a correction is merged into."""
    return jsonable({"subitem": doc["subitem_code"], "enterprise": doc["credit_code"],
                     "title": doc["title"], "body": doc["body"],
                     "effective_on": doc["effective_on"],
                     "attachments": [a["id"] for a in doc["attachments"]]})


async def _resolve_record(conn: asyncpg.Connection, rec: RecordIn) -> int | None:
    problems = []
    enterprise_id = None
    if rec.enterprise_code is not None:
        enterprise_id = (await store.enterprise_ids(conn, [rec.enterprise_code])).get(
            rec.enterprise_code)
        if enterprise_id is None:
            problems.append(Problem("enterprise", f"no enterprise with credit code "
                                                  f"{rec.enterprise_code}"))
    missing = await store.unknown_attachments(conn, list(rec.attachments))
    if missing:
        problems.append(Problem("attachments", f"no attachment {missing[0]}"))
    if problems:
        raise Invalid(problems)
    return enterprise_id


async def create_record(conn: asyncpg.Connection, rec: RecordIn, actor: Actor,
                        now: datetime) -> dict[str, Any]:
    """Publish a new record (version 1)."""
    if rec.ref is not None and await store.get_record_by_ref(conn, rec.ref) is not None:
        raise Conflict(f"a record with ref {rec.ref!r} exists; correct it instead")
    enterprise_id = await _resolve_record(conn, rec)
    record_id = await store.insert_record(
        conn, ref=rec.ref, subitem_code=rec.subitem_code, enterprise_id=enterprise_id,
        title=rec.title, body=rec.body, effective_on=rec.effective_on,
        published_at=rec.published_at or now, publisher=rec.publisher,
        is_sample=rec.is_sample, attachments=rec.attachments, actor=actor.name)
    after = await record_document(conn, record_id, versions=False) or {}
    await _audit(conn, actor, "create", "record", record_id, None, after)
    return after


def _content(doc: Mapping[str, Any]) -> tuple[Any, ...]:
    return (doc["subitem"], doc["enterprise"], doc["title"], doc["body"],
            jsonable(doc["effective_on"]), [str(a) for a in doc["attachments"]])


async def correct_record(conn: asyncpg.Connection, record_id: int, rec: RecordIn, note: str,
                         actor: Actor, now: datetime) -> dict[str, Any]:
    """Publish a new version of a record that corrects the current one (note is public)."""
    locked = await store.lock_record(conn, record_id)
    if locked is None:
        raise NotFound(f"no record {record_id}")
    if locked["status"] == "retracted":
        raise Conflict(f"record {record_id} is retracted; publish a new record instead")
    before = await record_document(conn, record_id, versions=False) or {}
    new = {"subitem": rec.subitem_code, "enterprise": rec.enterprise_code, "title": rec.title,
           "body": rec.body, "effective_on": rec.effective_on,
           "attachments": list(rec.attachments)}
    if _content(record_input(before)) == _content(new):
        raise Invalid([Problem("body", "the correction changes nothing")])
    enterprise_id = await _resolve_record(conn, rec)
    await store.correct_record(
        conn, record_id, locked["version"] + 1, subitem_code=rec.subitem_code,
        enterprise_id=enterprise_id, title=rec.title, body=rec.body,
        effective_on=rec.effective_on, attachments=rec.attachments, note=note, at=now,
        actor=actor.name)
    after = await record_document(conn, record_id, versions=False) or {}
    await _audit(conn, actor, "correct", "record", record_id, before, after)
    return after


async def retract_record(conn: asyncpg.Connection, record_id: int, reason: str, actor: Actor,
                         now: datetime) -> dict[str, Any]:
    """Retract a record with a public reason; it stays visible as retracted."""
    locked = await store.lock_record(conn, record_id)
    if locked is None:
        raise NotFound(f"no record {record_id}")
    if locked["status"] == "retracted":
        raise Conflict(f"record {record_id} is already retracted")
    before = await record_document(conn, record_id, versions=False) or {}
    await store.retract_record(conn, record_id, locked["version"] + 1, reason=reason, at=now,
                               actor=actor.name)
    after = await record_document(conn, record_id, versions=False) or {}
    await _audit(conn, actor, "retract", "record", record_id, before, after)
    return after


async def import_record(conn: asyncpg.Connection, rec: RecordIn, note: str, actor: Actor,
                        now: datetime) -> tuple[str, dict[str, Any]]:
    """Idempotent on ``ref``: new → created; same content → unchanged; else a correction."""
    if rec.ref is None:
        raise Invalid([Problem("ref", "required for imports (the natural key)")])
    existing = await store.get_record_by_ref(conn, rec.ref)
    if existing is None:
        return "created", await create_record(conn, rec, actor, now)
    current = await record_document(conn, existing["id"], versions=False) or {}
    new = {"subitem": rec.subitem_code, "enterprise": rec.enterprise_code, "title": rec.title,
           "body": rec.body, "effective_on": rec.effective_on,
           "attachments": list(rec.attachments)}
    if _content(record_input(current)) == _content(new):
        return "unchanged", current
    return "corrected", await correct_record(conn, existing["id"], rec, note, actor, now)


# -- penalties -----------------------------------------------------------------------------

async def _linked_enterprise(conn: asyncpg.Connection, code: str | None) -> int | None:
    if code is None:
        return None
    return (await store.enterprise_ids(conn, [code])).get(code)


async def _check_attachment(conn: asyncpg.Connection, attachment_id: uuid.UUID | None,
                            field: str) -> None:
    if attachment_id is not None and await store.unknown_attachments(conn, [attachment_id]):
        raise Invalid([Problem(field, f"no attachment {attachment_id}")])


async def save_penalty(conn: asyncpg.Connection, pen: PenaltyIn, actor: Actor, *,
                       must_exist: bool | None = None) -> tuple[str, dict[str, Any]]:
    """Create or update a penalty by decision number (linked to the enterprise if known)."""
    before_row = await store.get_penalty_by_no(conn, pen.decision_no)
    if must_exist is True and before_row is None:
        raise NotFound(f"no penalty {pen.decision_no}")
    if must_exist is False and before_row is not None:
        raise Conflict(f"penalty {pen.decision_no} exists; update it with PATCH")
    await _check_attachment(conn, pen.attachment_id, "attachment")
    enterprise_id = await _linked_enterprise(conn, pen.credit_code)
    before = row_json(before_row)
    if before_row is None:
        await store.insert_penalty(conn, pen, enterprise_id)
    elif not await store.update_penalty(conn, pen, enterprise_id):
        return "unchanged", before or {}
    after = row_json(await store.get_penalty_by_no(conn, pen.decision_no)) or {}
    await _audit(conn, actor, "create" if before is None else "update", "penalty",
                 after["id"], before, after)
    return ("created" if before is None else "updated"), after


def penalty_input(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A penalty as the input fields a PATCH is merged into."""
    keys = ("decision_no", "party_name", "credit_code", "violation", "legal_basis", "penalty",
            "fine_amount", "decision_date", "enforcement_status", "published_at", "is_sample")
    out = {k: doc[k] for k in keys}
    out["attachment"] = doc["attachment_id"]
    return jsonable(out)


# -- EIA -----------------------------------------------------------------------------------

async def eia_document(conn: asyncpg.Connection, project_id: int) -> dict[str, Any] | None:
    """An EIA project with its stages and their documents."""
    row = await store.get_eia_project(conn, project_id)
    if row is None:
        return None
    doc = row_json(row) or {}
    doc["stages"] = []
    for s in await store.eia_stages_of(conn, [project_id]):
        item = row_json(s, hide=("project_id",)) or {}
        if s["attachment_id"] is not None:
            item["attachment_url"] = ATTACHMENT_URL.format(id=s["attachment_id"])
        doc["stages"].append(item)
    return doc


def eia_input(doc: Mapping[str, Any]) -> dict[str, Any]:
    """An EIA project as the input fields a PATCH is merged into (stages apart)."""
    keys = ("project_code", "name", "builder", "builder_credit_code", "location",
            "project_type", "document_kind", "eia_agency", "summary", "is_sample")
    out = {k: doc[k] for k in keys}
    out["county"] = doc["county_code"]
    for k in ("lat", "lon"):
        out[k] = repr(doc[k]) if doc[k] is not None else None
    return jsonable(out)


async def save_eia_project(conn: asyncpg.Connection, project: EiaProjectIn, actor: Actor, *,
                           must_exist: bool | None = None) -> tuple[str, dict[str, Any]]:
    """Create or update a project by project code, with the stages given."""
    existing = await store.get_eia_by_code(conn, project.project_code)
    if must_exist is True and existing is None:
        raise NotFound(f"no EIA project {project.project_code}")
    if must_exist is False and existing is not None:
        raise Conflict(f"EIA project {project.project_code} exists; update it with PATCH")
    for i, stage in enumerate(project.stages):
        await _check_attachment(conn, stage.attachment_id, f"stages[{i}].attachment")
    before = await eia_document(conn, existing["id"]) if existing else None
    enterprise_id = await _linked_enterprise(conn, project.builder_credit_code)
    project_id = await store.upsert_eia_project(conn, project, enterprise_id)
    for stage in project.stages:
        await store.upsert_eia_stage(conn, project_id, stage)
    after = await eia_document(conn, project_id) or {}
    if before is not None and _same(before, after):
        return "unchanged", after
    await _audit(conn, actor, "create" if before is None else "update", "eia_project",
                 project_id, before, after)
    return ("created" if before is None else "updated"), after


async def save_eia_stage(conn: asyncpg.Connection, project_id: int, stage: EiaStageIn,
                         actor: Actor) -> tuple[str, dict[str, Any]]:
    """Create or replace one stage of a project."""
    before_doc = await eia_document(conn, project_id)
    if before_doc is None:
        raise NotFound(f"no EIA project {project_id}")
    await _check_attachment(conn, stage.attachment_id, "attachment")
    before = next((s for s in before_doc["stages"] if s["stage"] == stage.stage), None)
    await store.upsert_eia_stage(conn, project_id, stage)
    after_doc = await eia_document(conn, project_id) or {}
    after = next(s for s in after_doc["stages"] if s["stage"] == stage.stage)
    if before is not None and _same(before, after):
        return "unchanged", after
    await _audit(conn, actor, "create" if before is None else "update", "eia_stage",
                 f"{project_id}/{stage.stage}", before, after)
    return ("created" if before is None else "updated"), after


# -- monitoring results --------------------------------------------------------------------

async def save_monitoring(conn: asyncpg.Connection, res: MonitoringIn, vocab: Vocabulary,
                          actor: Actor) -> tuple[str, dict[str, Any]]:
    """Store one result on its natural key (outlet, parameter, source, period, time)."""
    if res.parameter not in vocab.parameters:
        raise Invalid([Problem("parameter", f"unknown parameter {res.parameter!r}")])
    outlet = await store.get_outlet(conn, res.enterprise_code, res.outlet_code)
    if outlet is None:
        raise Invalid([Problem("outlet", f"{res.enterprise_code} has no outlet "
                                         f"{res.outlet_code}")])
    medium = vocab.parameters[res.parameter][0]
    if medium != outlet["kind"]:
        raise Invalid([Problem("parameter", f"{res.parameter} is measured in {medium}, not "
                                            f"at the {outlet['kind']} outlet "
                                            f"{res.outlet_code}")])
    before = row_json(await store.get_monitoring_by_key(conn, outlet["id"], res))
    written = await store.upsert_monitoring(conn, outlet["id"], res)
    if written is None:
        return "unchanged", before or {}
    result_id, inserted = written
    after = row_json(await store.get_monitoring(conn, result_id)) or {}
    await _audit(conn, actor, "create" if inserted else "update", "monitoring_result",
                 result_id, before, after)
    return ("created" if inserted else "updated"), after


# -- the admin API's operations: parse the request's object, one transaction each ---------

async def add_enterprise(conn: asyncpg.Connection, data: Mapping[str, Any],
                         actor: Actor) -> dict[str, Any]:
    """A new enterprise (with optional outlets and key listings)."""
    ent = models.parse_enterprise(data, await store.vocabulary(conn))
    async with conn.transaction():
        return (await save_enterprise(conn, ent, actor, must_exist=False))[1]


async def change_enterprise(conn: asyncpg.Connection, credit_code: str,
                            data: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
    """Some fields of an enterprise changed (merged into its current input)."""
    async with conn.transaction():
        current = await enterprise_document(conn, credit_code)
        if current is None:
            raise NotFound(f"no enterprise with credit code {credit_code}")
        merged = {**enterprise_input(current), **data}
        ent = models.parse_enterprise(merged, await store.vocabulary(conn))
        return (await save_enterprise(conn, ent, actor, must_exist=True))[1]


async def put_outlet(conn: asyncpg.Connection, credit_code: str, data: Mapping[str, Any],
                     actor: Actor) -> tuple[str, dict[str, Any]]:
    """Create or replace an outlet and its limits."""
    outlet = models.parse_outlet(data, await store.vocabulary(conn))
    async with conn.transaction():
        return await save_outlet(conn, credit_code, outlet, actor)


async def put_key_listing(conn: asyncpg.Connection, credit_code: str, year: int,
                          data: Mapping[str, Any], actor: Actor) -> tuple[str, dict[str, Any]]:
    """Put an enterprise on a year's key-polluter list."""
    listing = models.parse_key_listing(data, year)
    async with conn.transaction():
        return await set_key_listing(conn, credit_code, listing, actor)


async def remove_key_listing(conn: asyncpg.Connection, credit_code: str, year: int,
                             actor: Actor) -> dict[str, Any]:
    """Take an enterprise off a year's key-polluter list; the listing removed."""
    async with conn.transaction():
        return await delete_key_listing(conn, credit_code, year, actor)


CORRECTABLE = ("subitem", "enterprise", "title", "body", "effective_on", "attachments")
"""The fields a correction may change (with its public ``note``)."""


async def add_record(conn: asyncpg.Connection, data: Mapping[str, Any], actor: Actor,
                     now: datetime) -> dict[str, Any]:
    """Publish a new record (version 1)."""
    rec = models.parse_record(data, await store.vocabulary(conn))
    async with conn.transaction():
        return await create_record(conn, rec, actor, now)


async def correct_record_with(conn: asyncpg.Connection, record_id: int,
                              data: Mapping[str, Any], actor: Actor,
                              now: datetime) -> dict[str, Any]:
    """A new version correcting the record with the fields given; ``note`` (public) says
    what was corrected. The record with every version."""
    unknown = [k for k in data if k not in (*CORRECTABLE, "note")]
    if unknown:
        raise Invalid([Problem(k[:40], "unknown field (a correction changes "
                                       f"{', '.join(CORRECTABLE)})") for k in unknown])
    note = models.parse_note(data, "note")
    async with conn.transaction():
        current = await record_document(conn, record_id, versions=False)
        if current is None:
            raise NotFound(f"no record {record_id}")
        merged = {**record_input(current), **{k: v for k, v in data.items() if k != "note"}}
        rec = models.parse_record(merged, await store.vocabulary(conn))
        await correct_record(conn, record_id, rec, note, actor, now)
        return await record_document(conn, record_id) or {}


async def retract_record_with(conn: asyncpg.Connection, record_id: int,
                              data: Mapping[str, Any], actor: Actor,
                              now: datetime) -> dict[str, Any]:
    """Retract a record with the public ``reason`` given; the record with every version."""
    if set(data) - {"reason"}:
        raise Invalid([Problem("body", "a retraction takes only 'reason'")])
    reason = models.parse_note(data, "reason")
    async with conn.transaction():
        await retract_record(conn, record_id, reason, actor, now)
        return await record_document(conn, record_id) or {}


async def penalty_document(conn: asyncpg.Connection, penalty_id: int) -> dict[str, Any] | None:
    """One penalty."""
    return row_json(await store.get_penalty(conn, penalty_id))


async def add_penalty(conn: asyncpg.Connection, data: Mapping[str, Any],
                      actor: Actor) -> dict[str, Any]:
    """A new penalty decision."""
    pen = models.parse_penalty(data)
    async with conn.transaction():
        return (await save_penalty(conn, pen, actor, must_exist=False))[1]


async def change_penalty(conn: asyncpg.Connection, penalty_id: int, data: Mapping[str, Any],
                         actor: Actor) -> dict[str, Any]:
    """Some fields of a penalty changed (its decision number is its identity)."""
    async with conn.transaction():
        doc = await penalty_document(conn, penalty_id)
        if doc is None:
            raise NotFound(f"no penalty {penalty_id}")
        current = penalty_input(doc)
        if data.get("decision_no", current["decision_no"]) != current["decision_no"]:
            raise Invalid([Problem("decision_no", "cannot change")])
        pen = models.parse_penalty({**current, **data})
        return (await save_penalty(conn, pen, actor, must_exist=True))[1]


async def add_eia_project(conn: asyncpg.Connection, data: Mapping[str, Any],
                          actor: Actor) -> dict[str, Any]:
    """A new EIA project (with optional stages)."""
    project = models.parse_eia_project(data)
    async with conn.transaction():
        return (await save_eia_project(conn, project, actor, must_exist=False))[1]


async def change_eia_project(conn: asyncpg.Connection, project_id: int,
                             data: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
    """Some fields of a project changed (stages apart: :func:`put_eia_stage`)."""
    async with conn.transaction():
        current = await eia_document(conn, project_id)
        if current is None:
            raise NotFound(f"no EIA project {project_id}")
        base = eia_input(current)
        if data.get("project_code", base["project_code"]) != base["project_code"]:
            raise Invalid([Problem("project_code", "cannot change")])
        if "stages" in data:
            raise Invalid([Problem("stages", "set stages with PUT …/stages/{stage}")])
        project = models.parse_eia_project({**base, **data})
        return (await save_eia_project(conn, project, actor, must_exist=True))[1]


async def put_eia_stage(conn: asyncpg.Connection, project_id: int, stage: str,
                        data: Mapping[str, Any], actor: Actor) -> tuple[str, dict[str, Any]]:
    """Create or replace one stage of a project."""
    stage_in = models.parse_eia_stage(data, stage)
    async with conn.transaction():
        return await save_eia_stage(conn, project_id, stage_in, actor)


async def store_monitoring(conn: asyncpg.Connection, items: list[Any],
                           actor: Actor) -> dict[str, int]:
    """Store results, idempotent on their natural key: how many were created, updated and
    unchanged. Every problem of every item is reported (``results[i].field``); nothing is
    stored unless all are accepted."""
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
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    async with conn.transaction():
        for i, res in enumerate(parsed):
            try:
                action, _ = await save_monitoring(conn, res, vocab, actor)
            except Invalid as exc:
                raise Invalid([Problem(f"results[{i}].{p.field}", p.message)
                               for p in exc.problems]) from None
            counts[action] += 1
    return counts
