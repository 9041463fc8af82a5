"""The disclosure data model as validated inputs: one ``parse_*`` per kind of object.

Every parser takes a JSON object (admin API, TOML seed) or a CSV row (imports; ``csv=True``)
and returns a frozen dataclass, or raises :class:`~aqi_service.disclosure.fields.Invalid`
naming every bad field. Rules that need the database (which sub-items and parameters
exist) come in a :class:`Vocabulary`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from aqi_service.disclosure.fields import Invalid, Problem, Reader

COUNTIES: dict[str, tuple[str, str]] = {
    "guangyang": ("广阳区", "Guangyang District"),
    "anci": ("安次区", "Anci District"),
    "ldz": ("廊坊经济技术开发区", "Langfang Economic and Technological Development Area"),
    "sanhe": ("三河市", "Sanhe City"),
    "dachang": ("大厂回族自治县", "Dachang Hui Autonomous County"),
    "xianghe": ("香河县", "Xianghe County"),
    "guan": ("固安县", "Gu'an County"),
    "yongqing": ("永清县", "Yongqing County"),
    "bazhou": ("霸州市", "Bazhou City"),
    "wenan": ("文安县", "Wen'an County"),
    "dacheng": ("大城县", "Dacheng County"),
}
"""The county-level units (same rows as the ``counties`` table)."""
COUNTY_ALIASES = {**{c: c for c in COUNTIES}, **{zh: c for c, (zh, _) in COUNTIES.items()}}

CONTROL_LEVELS = {"national": "national", "provincial": "provincial", "city": "city",
                  "国控": "national", "省控": "provincial", "市控": "city"}
KEY_LIST_CATEGORIES = ("water", "groundwater", "air", "noise", "soil", "risk")
OUTLET_KINDS = {"gas": "gas", "water": "water", "废气": "gas", "废水": "water"}
OUTLET_CATEGORIES = {"main": "main", "general": "general", "主要排放口": "main",
                     "一般排放口": "general"}
RECORD_STATUSES = ("published", "corrected", "retracted")
PUBLISHERS = ("bureau", "enterprise")
ENFORCEMENT = ("pending", "in_progress", "completed", "court", "under_review", "revoked")
DOCUMENT_KINDS = {"report": "report", "table": "table", "报告书": "report", "报告表": "table"}
EIA_STAGES = ("acceptance", "pre_approval", "approval", "completion_acceptance")
OUTCOMES = ("approved", "rejected")
SOURCES = ("self", "supervisory", "online")
METHODS = ("automatic", "manual")
PERIODS = ("instant", "minute", "hour", "day")
FLAGS = ("N", "F", "M", "S", "D", "C", "T", "B", "P")

OUTLET_CODE = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,19}$")
MN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
REF = re.compile(r"^[^\x00-\x1f\x7f]{1,120}$")
MAX_BODY = 100_000
MAX_FINE = Decimal("999999999999.99")


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """What the database knows: active sub-items (code → enterprise rule) and parameters."""

    subitems: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    """code → (medium, unit)"""


@dataclass(frozen=True, slots=True)
class LimitIn:
    """A permitted limit of one parameter at an outlet."""

    parameter: str
    upper_limit: Decimal | None
    lower_limit: Decimal | None
    unit: str
    standard: str = ""
    reference_o2_pct: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OutletIn:
    """A discharge outlet with its limits (``limits`` replaces the stored ones)."""

    outlet_code: str
    kind: str
    name: str = ""
    category: str | None = None
    lat: float | None = None
    lon: float | None = None
    hj212_mn: str | None = None
    active: bool = True
    limits: tuple[LimitIn, ...] = ()


@dataclass(frozen=True, slots=True)
class KeyListingIn:
    """Membership of the key-polluter list in one year."""

    year: int
    categories: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True, slots=True)
class EnterpriseIn:
    """An enterprise (outlets and key listings are optional extras on create)."""

    credit_code: str
    name_zh: str
    county_code: str
    name_en: str = ""
    industry_code: str = ""
    industry: str = ""
    address: str = ""
    lat: float | None = None
    lon: float | None = None
    legal_representative: str = ""
    permit_no: str = ""
    control_level: str | None = None
    is_sample: bool = False
    outlets: tuple[OutletIn, ...] = ()
    key_listings: tuple[KeyListingIn, ...] = ()


@dataclass(frozen=True, slots=True)
class RecordIn:
    """The content of a disclosure record (a new record or a correction's new version)."""

    subitem_code: str
    title: str
    body: str = ""
    ref: str | None = None
    enterprise_code: str | None = None
    effective_on: date | None = None
    published_at: datetime | None = None
    attachments: tuple[uuid.UUID, ...] = ()
    publisher: str = "bureau"
    is_sample: bool = False


@dataclass(frozen=True, slots=True)
class PenaltyIn:
    """An administrative penalty decision."""

    decision_no: str
    party_name: str
    violation: str
    legal_basis: str
    penalty: str
    decision_date: date
    credit_code: str | None = None
    fine_amount: Decimal | None = None
    enforcement_status: str = "pending"
    attachment_id: uuid.UUID | None = None
    published_at: datetime | None = None
    is_sample: bool = False


@dataclass(frozen=True, slots=True)
class EiaStageIn:
    """One stage of an EIA project's approval."""

    stage: str
    published_on: date
    comment_from: date | None = None
    comment_until: date | None = None
    decision_no: str | None = None
    decision_date: date | None = None
    outcome: str | None = None
    attachment_id: uuid.UUID | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class EiaProjectIn:
    """A construction project under EIA (stages are optional extras on create)."""

    project_code: str
    name: str
    builder: str
    county_code: str
    location: str
    project_type: str
    document_kind: str
    builder_credit_code: str | None = None
    lat: float | None = None
    lon: float | None = None
    eia_agency: str = ""
    summary: str = ""
    is_sample: bool = False
    stages: tuple[EiaStageIn, ...] = ()


@dataclass(frozen=True, slots=True)
class MonitoringIn:
    """One monitoring result at an outlet (limits default to the outlet's)."""

    enterprise_code: str
    outlet_code: str
    parameter: str
    source: str
    method: str
    measured_at: datetime
    period: str = "instant"
    value: Decimal | None = None
    measured_value: Decimal | None = None
    min_value: Decimal | None = None
    max_value: Decimal | None = None
    amount: Decimal | None = None
    unit: str | None = None
    upper_limit: Decimal | None = None
    lower_limit: Decimal | None = None
    flag: str = "N"
    agency: str = ""
    report_no: str = ""
    is_sample: bool = False


# -- parsers -------------------------------------------------------------------------------

def _limit(r: Reader, vocab: Vocabulary | None, kind: str | None) -> LimitIn | None:
    parameter = r.text("parameter", required=True, max_len=20)
    if vocab is not None and parameter and parameter not in vocab.parameters:
        r.problem("parameter", f"unknown parameter {parameter!r} (HJ 212 code, e.g. a21026)")
    elif vocab is not None and parameter and kind and vocab.parameters[parameter][0] != kind:
        r.problem("parameter", f"{parameter} is measured in {vocab.parameters[parameter][0]},"
                               f" not at a {kind} outlet")
    upper = r.decimal("upper_limit")
    lower = r.decimal("lower_limit")
    if upper is None and lower is None:
        r.problem("upper_limit", "a limit needs upper_limit or lower_limit")
    elif upper is not None and lower is not None and lower > upper:
        r.problem("lower_limit", "above upper_limit")
    default_unit = vocab.parameters[parameter][1] if vocab and parameter in vocab.parameters \
        else ""
    unit = r.text("unit", max_len=20, default=default_unit) or default_unit
    if not unit:
        r.problem("unit", "required")
    limit = LimitIn(parameter, upper, lower, unit, r.text("standard", max_len=100),
                    r.decimal("reference_o2_pct", minimum=Decimal(0), maximum=Decimal(21)))
    r.check_unknown()
    return limit


def _outlet(r: Reader, vocab: Vocabulary | None) -> OutletIn:
    code = (r.text("outlet_code", required=True, max_len=20)).upper()
    if code and not OUTLET_CODE.match(code):
        r.problem("outlet_code", "letters, digits and '-' (the permit's number, e.g. DA001)")
    implied = {"DA": "gas", "DW": "water"}.get(code[:2])
    kind = r.choice("kind", OUTLET_KINDS, default=implied, required=implied is None)
    if implied and kind and kind != implied:
        r.problem("kind", f"{code} is a {implied} outlet (DA: gas, DW: water)")
    limits = []
    for i, raw in enumerate(r.objects("limits", limit=50)):
        lim = _limit(r.nested("limits", i, raw), vocab, kind)
        if lim is not None:
            limits.append(lim)
    params = [lim.parameter for lim in limits]
    if len(set(params)) != len(params):
        r.problem("limits", "a parameter is listed twice")
    lat = r.number("lat", low=-90, high=90)
    lon = r.number("lon", low=-180, high=180)
    if (lat is None) != (lon is None):
        r.problem("lat", "give both lat and lon, or neither")
    return OutletIn(
        outlet_code=code, kind=kind or "gas", name=r.text("name", max_len=100),
        category=r.choice("category", OUTLET_CATEGORIES), lat=lat, lon=lon,
        hj212_mn=r.optional_text("hj212_mn", max_len=64, pattern=MN,
                                 hint="the data logger's MN (letters, digits, _ and -)"),
        active=r.boolean("active", default=True), limits=tuple(limits))


def parse_outlet(data: Mapping[str, Any], vocab: Vocabulary | None = None) -> OutletIn:
    """A discharge outlet from JSON."""
    r = Reader(data)
    outlet = _outlet(r, vocab)
    r.finish()
    return outlet


def _key_listing(r: Reader, year: int | None = None) -> KeyListingIn:
    if year is None:
        year = r.integer("year", required=True, low=2000, high=2100)
    categories = r.str_list("categories", limit=6, choices=KEY_LIST_CATEGORIES)
    if not categories and not r.problems:
        r.problem("categories", f"at least one of {', '.join(KEY_LIST_CATEGORIES)}")
    return KeyListingIn(year or 0, tuple(dict.fromkeys(categories)), r.text("note"))


def parse_key_listing(data: Mapping[str, Any], year: int) -> KeyListingIn:
    """A key-polluter listing for ``year`` from JSON."""
    r = Reader(data)
    listing = _key_listing(r, year)
    r.finish()
    return listing


def _csv_key_lists(r: Reader) -> list[KeyListingIn]:
    """CSV column ``key_list``: ``2025:air+water;2024:air``."""
    raw = r.raw("key_list")
    if not isinstance(raw, str):
        return []
    out = []
    for part in (p.strip() for p in raw.split(";") if p.strip()):
        year_text, _, cats = part.partition(":")
        cat_list = [c.strip() for c in re.split(r"[+,]", cats) if c.strip()]
        if not year_text.strip().isdigit() or not 2000 <= int(year_text) <= 2100 \
                or not cat_list or any(c not in KEY_LIST_CATEGORIES for c in cat_list):
            r.problem("key_list", f"{part[:40]!r}: write YEAR:category+category "
                                  f"(categories: {', '.join(KEY_LIST_CATEGORIES)})")
            continue
        out.append(KeyListingIn(int(year_text), tuple(dict.fromkeys(cat_list))))
    if len({k.year for k in out}) != len(out):
        r.problem("key_list", "a year is listed twice")
    return out


def parse_enterprise(data: Mapping[str, Any], vocab: Vocabulary | None = None, *,
                     csv: bool = False, strict: bool = True) -> EnterpriseIn:
    """An enterprise from JSON (with optional ``outlets`` and ``key_listings``) or CSV."""
    r = Reader(data, csv=csv)
    lat = r.number("lat", low=-90, high=90)
    lon = r.number("lon", low=-180, high=180)
    if (lat is None) != (lon is None):
        r.problem("lat", "give both lat and lon, or neither")
    outlets: list[OutletIn] = []
    listings: list[KeyListingIn] = []
    if csv:
        listings = _csv_key_lists(r)
    else:
        for i, raw in enumerate(r.objects("outlets", limit=200)):
            nr = r.nested("outlets", i, raw)
            outlets.append(_outlet(nr, vocab))
            nr.check_unknown()
        for i, raw in enumerate(r.objects("key_listings", limit=50)):
            nr = r.nested("key_listings", i, raw)
            listings.append(_key_listing(nr))
            nr.check_unknown()
        codes = [o.outlet_code for o in outlets]
        if len(set(codes)) != len(codes):
            r.problem("outlets", "an outlet code is listed twice")
        if len({k.year for k in listings}) != len(listings):
            r.problem("key_listings", "a year is listed twice")
    name = r.text("name_zh", required=True, max_len=200)
    ent = EnterpriseIn(
        credit_code=r.credit_code("credit_code", required=True) or "",
        name_zh=name, name_en=r.text("name_en", max_len=200),
        county_code=r.choice("county", COUNTY_ALIASES, required=True) or "",
        industry_code=r.optional_text("industry_code", max_len=10,
                                      pattern=re.compile(r"^[A-T]\d{0,4}$"),
                                      hint="a GB/T 4754 code such as C3011") or "",
        industry=r.text("industry", max_len=100), address=r.text("address", max_len=300),
        lat=lat, lon=lon, legal_representative=r.text("legal_representative", max_len=50),
        permit_no=r.text("permit_no", max_len=40),
        control_level=r.choice("control_level", CONTROL_LEVELS),
        is_sample=r.boolean("is_sample"), outlets=tuple(outlets),
        key_listings=tuple(listings))
    r.finish(strict=strict)
    return ent


def _enterprise_rule(r: Reader, vocab: Vocabulary | None, subitem: str,
                     enterprise: str | None) -> None:
    if vocab is None or not subitem:
        return
    rule = vocab.subitems.get(subitem)
    if rule is None:
        r.problem("subitem", f"unknown or inactive sub-item {subitem!r}")
    elif rule == "required" and enterprise is None:
        r.problem("enterprise", f"records of {subitem} name an enterprise (credit code)")
    elif rule == "none" and enterprise is not None:
        r.problem("enterprise", f"records of {subitem} do not name an enterprise")


def parse_record(data: Mapping[str, Any], vocab: Vocabulary | None = None, *,
                 csv: bool = False, strict: bool = True,
                 extra: tuple[str, ...] = ()) -> RecordIn:
    """A disclosure record's content from JSON or CSV (``extra``: fields read elsewhere)."""
    r = Reader(data, csv=csv)
    r.used.update(extra)
    subitem = r.text("subitem", required=True, max_len=81)
    enterprise = r.credit_code("enterprise")
    _enterprise_rule(r, vocab, subitem, enterprise)
    rec = RecordIn(
        subitem_code=subitem, title=r.text("title", required=True, max_len=300),
        body=r.text("body", max_len=MAX_BODY, multiline=True),
        ref=r.optional_text("ref", max_len=120, pattern=REF), enterprise_code=enterprise,
        effective_on=r.date("effective_on"), published_at=r.datetime("published_at"),
        attachments=tuple(r.uuid_list("attachments")),
        publisher=r.choice("publisher", PUBLISHERS, default="bureau") or "bureau",
        is_sample=r.boolean("is_sample"))
    r.finish(strict=strict)
    return rec


def parse_note(data: Mapping[str, Any], name: str) -> str:
    """The public note of a correction or the reason of a retraction (required)."""
    r = Reader(data)
    note = r.text(name, required=True, max_len=1000, multiline=True)
    if r.problems:
        raise Invalid(r.problems)
    return note


def parse_penalty(data: Mapping[str, Any], *, csv: bool = False,
                  strict: bool = True) -> PenaltyIn:
    """An administrative penalty from JSON or CSV; the fine is exact (yuan, 2 places)."""
    r = Reader(data, csv=csv)
    pen = PenaltyIn(
        decision_no=r.text("decision_no", required=True, max_len=100),
        party_name=r.text("party_name", required=True, max_len=200),
        violation=r.text("violation", required=True, max_len=5000, multiline=True),
        legal_basis=r.text("legal_basis", required=True, max_len=5000, multiline=True),
        penalty=r.text("penalty", required=True, max_len=5000, multiline=True),
        decision_date=r.date("decision_date", required=True) or date.min,
        credit_code=r.credit_code("credit_code"),
        fine_amount=r.decimal("fine_amount", places=2, minimum=Decimal(0), maximum=MAX_FINE),
        enforcement_status=r.choice("enforcement_status", ENFORCEMENT,
                                    default="pending") or "pending",
        attachment_id=r.uuid("attachment"), published_at=r.datetime("published_at"),
        is_sample=r.boolean("is_sample"))
    r.finish(strict=strict)
    return pen


def _stage(r: Reader, stage: str | None) -> EiaStageIn:
    if stage is None:
        stage = r.choice("stage", EIA_STAGES, required=True) or "acceptance"
    stage_in = EiaStageIn(
        stage=stage, published_on=r.date("published_on", required=True) or date.min,
        comment_from=r.date("comment_from"), comment_until=r.date("comment_until"),
        decision_no=r.optional_text("decision_no", max_len=100),
        decision_date=r.date("decision_date"), outcome=r.choice("outcome", OUTCOMES),
        attachment_id=r.uuid("attachment"), note=r.text("note", max_len=5000, multiline=True))
    if (stage_in.comment_from is None) != (stage_in.comment_until is None):
        r.problem("comment_until", "give both comment_from and comment_until, or neither")
    elif stage_in.comment_from and stage_in.comment_until \
            and stage_in.comment_until < stage_in.comment_from:
        r.problem("comment_until", "before comment_from")
    if stage == "pre_approval" and stage_in.comment_from is None:
        r.problem("comment_from", "the pre-approval notice opens a public-comment period")
    if stage in ("approval", "completion_acceptance"):
        if stage_in.decision_no is None:
            r.problem("decision_no", "a decision carries its number")
        if stage_in.decision_date is None:
            r.problem("decision_date", "a decision carries its date")
    return stage_in


def parse_eia_stage(data: Mapping[str, Any], stage: str) -> EiaStageIn:
    """One stage from JSON (the stage comes from the URL)."""
    r = Reader(data)
    if stage not in EIA_STAGES:
        raise Invalid([Problem("stage", f"must be one of {', '.join(EIA_STAGES)}")])
    stage_in = _stage(r, stage)
    r.finish()
    return stage_in


def parse_eia_project(data: Mapping[str, Any]) -> EiaProjectIn:
    """An EIA project from JSON (with optional ``stages``)."""
    r = Reader(data)
    stages = []
    for i, raw in enumerate(r.objects("stages", limit=4)):
        nr = r.nested("stages", i, raw)
        stages.append(_stage(nr, None))
        nr.check_unknown()
    if len({s.stage for s in stages}) != len(stages):
        r.problem("stages", "a stage is listed twice")
    lat = r.number("lat", low=-90, high=90)
    lon = r.number("lon", low=-180, high=180)
    if (lat is None) != (lon is None):
        r.problem("lat", "give both lat and lon, or neither")
    project = EiaProjectIn(
        project_code=r.text("project_code", required=True, max_len=60),
        name=r.text("name", required=True, max_len=300),
        builder=r.text("builder", required=True, max_len=200),
        county_code=r.choice("county", COUNTY_ALIASES, required=True) or "",
        location=r.text("location", required=True, max_len=300),
        project_type=r.text("project_type", required=True, max_len=200),
        document_kind=r.choice("document_kind", DOCUMENT_KINDS, required=True) or "report",
        builder_credit_code=r.credit_code("builder_credit_code"), lat=lat, lon=lon,
        eia_agency=r.text("eia_agency", max_len=200),
        summary=r.text("summary", max_len=20_000, multiline=True),
        is_sample=r.boolean("is_sample"), stages=tuple(stages))
    r.finish()
    return project


def parse_monitoring(data: Mapping[str, Any], vocab: Vocabulary | None = None, *,
                     csv: bool = False, strict: bool = True) -> MonitoringIn:
    """A monitoring result from JSON or CSV."""
    r = Reader(data, csv=csv)
    parameter = r.text("parameter", required=True, max_len=20)
    if vocab is not None and parameter and parameter not in vocab.parameters:
        r.problem("parameter", f"unknown parameter {parameter!r} (HJ 212 code, e.g. a21026)")
    source = r.choice("source", SOURCES, required=True)
    method = r.choice("method", METHODS, required=True)
    if source == "online" and method == "manual":
        r.problem("method", "online data are automatic")
    upper = r.decimal("upper_limit")
    lower = r.decimal("lower_limit")
    if upper is not None and lower is not None and lower > upper:
        r.problem("lower_limit", "above upper_limit")
    result = MonitoringIn(
        enterprise_code=r.credit_code("enterprise", required=True) or "",
        outlet_code=r.text("outlet", required=True, max_len=20).upper(),
        parameter=parameter, source=source or "self", method=method or "manual",
        measured_at=r.datetime("measured_at", required=True) or datetime.min,
        period=r.choice("period", PERIODS, default="instant") or "instant",
        value=r.decimal("value"), measured_value=r.decimal("measured_value"),
        min_value=r.decimal("min_value"), max_value=r.decimal("max_value"),
        amount=r.decimal("amount"), unit=r.optional_text("unit", max_len=20),
        upper_limit=upper, lower_limit=lower,
        flag=r.choice("flag", FLAGS, default="N") or "N",
        agency=r.text("agency", max_len=200), report_no=r.text("report_no", max_len=100),
        is_sample=r.boolean("is_sample"))
    r.finish(strict=strict)
    return result
