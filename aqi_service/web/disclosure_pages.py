"""The public HTML pages of pollution-source and EIA disclosure (no JavaScript).

``/enterprises`` and ``/enterprises/{credit_code}``, ``/disclosures`` (with the yearly
statistics at ``/disclosures/stats``) and ``/disclosures/{id}``, ``/eia`` and
``/eia/{id}``, ``/penalties``. The same filters and documents as the JSON routes
(:mod:`aqi_service.web.disclosure_api`); a bad filter is an HTML 400 page, an unknown
object an HTML 404 page. Each answer has a strong ETag (304 when it matches).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from aqi_service.disclosure import models
from aqi_service.storage import disclosure_reads as reads
from aqi_service.web import charts, keys, templating
from aqi_service.web import disclosure_api as api
from aqi_service.web.pages import PageError, page
from aqi_service.web.templating import lang_for

MAX_AGE = api.MAX_AGE

LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "control_level": {"national": ("国控", "national"), "provincial": ("省控", "provincial"),
                      "city": ("市控", "city")},
    "status": {"published": ("已发布", "published"), "corrected": ("已更正", "corrected"),
               "retracted": ("已撤回", "retracted")},
    "change": {"created": ("首次发布", "first published"), "corrected": ("更正", "correction"),
               "retracted": ("撤回", "retraction")},
    "enforcement": {"pending": ("待执行", "pending"), "in_progress": ("执行中", "in progress"),
                    "completed": ("执行完毕", "completed"),
                    "court": ("申请法院强制执行", "referred to court for enforcement"),
                    "under_review": ("行政复议或诉讼中", "under review or litigation"),
                    "revoked": ("已撤销", "revoked")},
    "stage": {"acceptance": ("受理公示", "acceptance notice"),
              "pre_approval": ("拟批准公示", "pre-approval notice"),
              "approval": ("审批决定", "approval decision"),
              "completion_acceptance": ("竣工环境保护验收", "completion acceptance")},
    "outcome": {"approved": ("批准", "approved"), "rejected": ("不予批准", "rejected")},
    "document_kind": {"report": ("环境影响报告书", "EIA report"),
                      "table": ("环境影响报告表", "EIA form")},
    "key_list": {"water": ("水环境", "water"), "groundwater": ("地下水", "groundwater"),
                 "air": ("大气环境", "air"), "noise": ("声环境", "noise"),
                 "soil": ("土壤污染重点监管单位", "soil (key supervised)"),
                 "risk": ("环境风险重点管控单位", "environmental risk (key controlled)")},
    "outlet_kind": {"gas": ("废气", "flue gas"), "water": ("废水", "wastewater")},
    "outlet_category": {"main": ("主要排放口", "main outlet"),
                        "general": ("一般排放口", "general outlet")},
    "source": {"self": ("企业自行监测", "self-monitoring"),
               "supervisory": ("监督性监测", "supervisory monitoring"),
               "online": ("在线监测", "online monitoring")},
    "period": {"instant": ("瞬时", "instant"), "minute": ("分钟", "minute"),
               "hour": ("小时均值", "hourly mean"), "day": ("日均值", "daily mean")},
    "flag": {"N": ("正常", "normal"), "F": ("停运", "stopped"), "M": ("维护", "maintenance"),
             "S": ("手工输入", "manual value"), "D": ("故障", "fault"),
             "C": ("校准", "calibration"), "T": ("超测定上限", "above range"),
             "B": ("通讯异常", "communication fault"), "P": ("电源故障", "power fault")},
    "publisher": {"bureau": ("生态环境局", "the bureau"), "enterprise": ("企业", "the enterprise")},
    "station_status": {"on_time": ("正常", "on time"), "late": ("迟报", "late"),
                       "missing": ("缺报", "missing"), "maintenance": ("维护中", "maintenance")},
}


def _labeller(lang: str) -> Callable[[str, Any], str]:
    def label(kind: str, code: Any) -> str:
        if code is None:
            return "—"
        zh, en = LABELS.get(kind, {}).get(str(code), (str(code), str(code)))
        return en if lang == "en" else zh
    return label


def _send(request: web.Request, body: str, status: int = 200) -> web.Response:
    return templating.html_response(request, body, MAX_AGE, status)


def _render(request: web.Request, template: str, context: dict[str, Any],
            status: int = 200) -> web.Response:
    lang = lang_for(request)
    context = {"label": _labeller(lang), "options": LABELS, **context}
    return _send(request, templating.render_string(template, request, context), status)


def _next_href(request: web.Request, cursor: str | None) -> str | None:
    return str(request.rel_url.update_query(cursor=cursor)) if cursor else None


def _form(request: web.Request, names: tuple[str, ...]) -> dict[str, str]:
    """The values to show back in a filter form (as given, single values only)."""
    return {n: request.query.get(n, "") for n in names}


def _coded(lang: str, kind: str, codes: Any) -> list[tuple[str, str]]:
    label = _labeller(lang)
    return [(c, label(kind, c)) for c in codes]


def _counties(lang: str, rows: Any) -> list[tuple[str, str]]:
    return [(r["code"], r["name_en"] if lang == "en" else r["name_zh"]) for r in rows]


async def enterprises(request: web.Request) -> web.StreamResponse:
    """The enterprises, filtered."""
    async with request.app[keys.POOL].acquire() as conn:
        page_ = await api.enterprise_page(conn, api.Query(request.query))
        counties = await reads.counties(conn)
        industries = await reads.industries(conn)
        years = await reads.key_list_years(conn)
    lang = lang_for(request)
    return _render(request, "disclosure/enterprises.html", {
        "page": page_, "next_href": _next_href(request, page_.next_cursor),
        "form": _form(request, ("county", "industry", "control_level", "key_list_year", "q")),
        "choices": {
            "county": _counties(lang, counties),
            "industry": [(r["industry_code"], f"{r['industry_code']} {r['industry']}")
                         for r in industries],
            "control_level": _coded(lang, "control_level", ("national", "provincial", "city")),
            "key_list_year": [(str(y), str(y)) for y in years],
        },
    })


def _station_view(nearest: dict[str, Any] | None) -> dict[str, Any] | None:
    if nearest is None:
        return None
    now = nearest["now"] or {}
    color = now.get("color")
    return {**nearest, "aqi": now.get("aqi"), "category": now.get("category"),
            "category_en": now.get("category_en"), "color": color,
            "ink": charts.text_on(color) if color else None,
            "time_point": now.get("time_point"), "status": now.get("status")}


async def enterprise(request: web.Request) -> web.StreamResponse:
    """One enterprise with everything published about it."""
    code = request.match_info["credit_code"].upper()
    f = None
    if api.CREDIT_CODE.match(code):
        async with request.app[keys.POOL].acquire() as conn:
            f = await api.enterprise_file(conn, request.app, code)
    if f is None:
        raise PageError(404, "没有这个统一社会信用代码的企业。",
                        "No enterprise with this unified social credit code.")
    return _render(request, "disclosure/enterprise.html", {
        "f": f, "e": f.enterprise, "station": _station_view(f.nearest),
    })


async def disclosures(request: web.Request) -> web.StreamResponse:
    """The disclosure records, filtered."""
    async with request.app[keys.POOL].acquire() as conn:
        page_ = await api.record_page(conn, api.Query(request.query))
        catalog = await reads.catalog_all(conn)
    lang = lang_for(request)
    name = "name_en" if lang == "en" else "name_zh"
    categories = list({r["category_code"]: r[f"category_{name}"] for r in catalog}.items())
    return _render(request, "disclosure/disclosures.html", {
        "page": page_, "next_href": _next_href(request, page_.next_cursor),
        "form": _form(request, ("category", "subitem", "enterprise", "q", "from", "to",
                                "status")),
        "choices": {
            "category": categories,
            "subitem": [(r["subitem_code"], r[f"subitem_{name}"]) for r in catalog],
            "status": _coded(lang, "status", models.RECORD_STATUSES),
        },
    })


async def record(request: web.Request) -> web.StreamResponse:
    """One record with its status and version history."""
    doc = await api.by_id(request, api.record_file)
    if doc is None:
        raise PageError(404, "没有这条公开信息。", "No such disclosure record.")
    return _render(request, "disclosure/record.html", {"r": doc})


async def stats(request: web.Request) -> web.StreamResponse:
    """The yearly statistics of disclosure (for the annual report)."""
    year = api.stats_year(request)
    async with request.app[keys.POOL].acquire() as conn:
        s = await api.year_stats(conn, year)
    this_year = request.app[keys.CLOCK]().astimezone(api.SHANGHAI).year
    return _render(request, "disclosure/stats.html", {
        "s": s, "previous": year - 1 if year > api.EARLIEST_YEAR else None,
        "next": year + 1 if year < this_year else None,
    })


async def eia_projects(request: web.Request) -> web.StreamResponse:
    """EIA projects, filtered."""
    async with request.app[keys.POOL].acquire() as conn:
        page_ = await api.eia_page(conn, api.Query(request.query))
        counties = await reads.counties(conn)
    lang = lang_for(request)
    return _render(request, "disclosure/eia_list.html", {
        "page": page_, "next_href": _next_href(request, page_.next_cursor),
        "form": _form(request, ("county", "stage", "enterprise", "document_kind", "q")),
        "choices": {
            "county": _counties(lang, counties),
            "stage": _coded(lang, "stage", models.EIA_STAGES),
            "document_kind": _coded(lang, "document_kind", ("report", "table")),
        },
    })


async def eia_project(request: web.Request) -> web.StreamResponse:
    """One EIA project and its stages."""
    doc = await api.by_id(request, api.eia_file)
    if doc is None:
        raise PageError(404, "没有这个环评项目。", "No such EIA project.")
    return _render(request, "disclosure/eia.html", {"p": doc})


async def penalties(request: web.Request) -> web.StreamResponse:
    """Administrative penalty decisions, filtered."""
    async with request.app[keys.POOL].acquire() as conn:
        page_ = await api.penalty_page(conn, api.Query(request.query))
        counties = await reads.counties(conn)
    lang = lang_for(request)
    return _render(request, "disclosure/penalties.html", {
        "page": page_, "next_href": _next_href(request, page_.next_cursor),
        "form": _form(request, ("enterprise", "county", "status", "from", "to", "q")),
        "choices": {
            "county": _counties(lang, counties),
            "status": _coded(lang, "enforcement", models.ENFORCEMENT),
        },
    })


def setup_pages(app: web.Application) -> None:
    """Register the pages."""
    app.router.add_get("/enterprises", page(enterprises))
    app.router.add_get("/enterprises/{credit_code}", page(enterprise))
    app.router.add_get("/disclosures", page(disclosures))
    app.router.add_get("/disclosures/stats", page(stats))
    app.router.add_get("/disclosures/{id}", page(record))
    app.router.add_get("/eia", page(eia_projects))
    app.router.add_get("/eia/{id}", page(eia_project))
    app.router.add_get("/penalties", page(penalties))
