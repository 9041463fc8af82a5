"""The public HTML pages: overview, station, daily report, rankings, methodology, downloads.

Server-rendered with Jinja2 and no JavaScript; charts and the map are inline SVG built by
``charts.py``. Each answer has a strong ETag (304 when it matches) and ``Cache-Control``
until the next expected publication. Bad input gets an HTML 400/404 page, never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any

from aiohttp import web

from aqi_service.aqi.schemes import (
    DEFAULT_VARIANT,
    POLLUTANTS,
    SHANGHAI,
    UNITS,
    Scheme,
    all_schemes,
    scheme_for_hour,
)
from aqi_service.storage import page_reads, reads
from aqi_service.web import charts, errors, keys, params, templating
from aqi_service.web import rankings as ranking
from aqi_service.web.params import STATION_CODE
from aqi_service.web.public_url import public_origin
from aqi_service.web.snapshot import daily_json, expected_hour, present, record_json
from aqi_service.web.templating import lang_for

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

NAMES = {"so2": "SO2", "no2": "NO2", "co": "CO", "o3": "O3", "pm10": "PM10", "pm2_5": "PM2.5"}
AVERAGES: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    p: ((f"{p}_24h", f"{p}_24h_hours", "24 小时滑动平均", "24 h moving mean"),)
    for p in ("so2", "no2", "co", "pm10", "pm2_5")
}
AVERAGES["o3"] = (
    ("o3_8h", "o3_8h_hours", "8 小时滑动平均", "8 h moving mean"),
    ("o3_24h", "o3_24h_hours", "24 小时内最大 1 小时值", "max 1 h value of the last 24 h"),
    ("o3_8h_24h", "o3_8h_24h_hours", "24 小时内最大 8 小时平均", "max 8 h mean of the last 24 h"),
)
"""Averages shown with each pollutant: field, valid-hour count, label (zh, en)."""
FLAGS = {
    "N": ("正常", "normal"), "F": ("停运", "instrument stopped"), "M": ("维护", "maintenance"),
    "S": ("手工输入", "manual value"), "D": ("故障", "fault"), "C": ("校准", "calibration"),
    "T": ("超测定上限", "above instrument range"), "B": ("通讯异常", "communication fault"),
    "P": ("电源故障", "power fault"),
}
RANGES = (("24h", 24, 6, "%H:%M", "过去 24 小时", "last 24 h"),
          ("7d", 24 * 7, 24, "%m-%d", "过去 7 天", "last 7 days"),
          ("30d", 24 * 30, 24 * 7, "%m-%d", "过去 30 天", "last 30 days"))
"""Chart ranges: id, hours, tick step (hours), tick format, label (zh, en)."""
DAILY_SHOWN = (("so2_24h", "so2"), ("no2_24h", "no2"), ("co_24h", "co"), ("o3_8h_24h", "o3"),
               ("pm10_24h", "pm10"), ("pm2_5_24h", "pm2_5"))
"""Daily fields in the tables: the daily report's value of each pollutant."""
MAIN_FRAME = charts.Frame(width=640, height=240, left=48, bottom=30)
SMALL_FRAME = charts.Frame(width=480, height=200)
REVISIONS_SHOWN = 20
PAGE_CACHE_SIZE = 64
"""Rendered pages kept for the current snapshot (overview and station pages, both languages)."""
EARLIEST = date(2000, 1, 1)
"""Dates and months before this are refused (no data can exist)."""
MAX_PARAM = 40
MONTH = re.compile(r"^[0-9]{4}-[0-9]{2}$")
STATIC_MAX_AGE = 3600


class PageError(Exception):
    """A request the pages answer with an HTML error page (400 or 404)."""

    def __init__(self, status: int, message_zh: str, message_en: str) -> None:
        super().__init__(message_en)
        self.status = status
        self.message_zh = message_zh
        self.message_en = message_en


def _t(lang: str, zh: str, en: str) -> str:
    return en if lang == "en" else zh


def _now(request: web.Request) -> datetime:
    return request.app[keys.CLOCK]()


def _until_publication(request: web.Request) -> int:
    snap = request.app[keys.SNAPSHOT].current
    if snap is None:
        return 300
    return max(int((snap.next_expected_at - _now(request)).total_seconds()), 0)


def _send(request: web.Request, body: str, max_age: int, status: int = 200) -> web.Response:
    return templating.html_response(request, body, max_age, status)


def _render(request: web.Request, template: str, context: dict[str, Any], max_age: int,
            status: int = 200) -> web.Response:
    return _send(request, templating.render_string(template, request, context), max_age,
                 status)


def _cache_key(request: web.Request, *parts: str) -> tuple[str, ...] | None:
    """Key of a page every request with the same language shares (None: not shared).

    Pages depend on the data only through the snapshot (its ETag changes with each
    published hour and status), so its ETag keys them.
    """
    if not set(request.query) <= {"lang"}:
        return None  # other parameters show up in the language link
    snap = request.app[keys.SNAPSHOT].current
    return (snap.etag if snap else "", lang_for(request), str("lang" in request.query), *parts)


def _remember(request: web.Request, key: tuple[str, ...] | None, body: str) -> None:
    """Keep a rendered page for its key; older snapshots' pages are dropped."""
    if key is None:
        return
    cache = request.app[keys.PAGE_CACHE]
    if len(cache) >= PAGE_CACHE_SIZE or any(k[0] != key[0] for k in cache):
        cache.clear()
    cache[key] = body


def page(handler: Handler) -> Handler:
    """The wrapper of every page: a ``PageError`` from ``handler`` or a bad parameter
    (``params.BadParameter``) is answered with the HTML error page, a database outage with
    the HTML 503 page."""
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except PageError as exc:
            return errors.html_error(request, exc.status, exc.message_zh, exc.message_en)
        except params.BadParameter as exc:
            return errors.html_error(request, 400, f"参数 {exc.name}：{exc.message_zh}。",
                                     f"{exc.name}: {exc.message_en}.")
        except errors.DATABASE_ERRORS as exc:
            outage = errors.outage_page(request, exc)
            if outage is None:
                raise
            return outage
    wrapped.__doc__ = handler.__doc__
    return wrapped


def _query(request: web.Request, name: str) -> str | None:
    return params.single(request.query, name, MAX_PARAM)


def _href(request: web.Request, path: str) -> str:
    lang = request.query.get("lang", "").lower()
    return f"{path}?lang={lang}" if lang in ("zh", "en") else path


def _time(iso: str | None) -> datetime | None:
    return datetime.fromisoformat(iso) if iso else None


def level_view(rec: dict[str, Any]) -> dict[str, Any]:
    """A record's AQI and level texts with the text colour for its level colour."""
    color = rec.get("color")
    return {
        "aqi": rec.get("aqi"), "level": rec.get("level"), "level_zh": rec.get("level_zh"),
        "category": rec.get("category"), "category_en": rec.get("category_en"),
        "color": color, "ink": charts.text_on(color) if color else None,
        "health_effect": rec.get("health_effect"), "health_effect_en": rec.get("health_effect_en"),
        "advice": rec.get("advice"), "advice_en": rec.get("advice_en"),
        "primary": [NAMES[p] for p in rec.get("primary_pollutants") or []],
        "missing": [NAMES[p] for p in rec.get("missing_pollutants") or []],
        "exceeding": (None if rec.get("exceeding_pollutants") is None
                      else [NAMES[p] for p in rec["exceeding_pollutants"]]),
        "scheme": rec.get("scheme"), "beyond_index": rec.get("beyond_index", False),
    }


# --- overview -------------------------------------------------------------------------

def _station_map(request: web.Request, stations: list[dict[str, Any]], lang: str) -> Any:
    points = []
    for s in stations:
        name = _t(lang, s["name_zh"], s["name_en"])
        lv = s["view"]
        category = _t(lang, lv["category"] or "", lv["category_en"] or "")
        shown = "NA" if lv["aqi"] is None else f"AQI {lv['aqi']} {category}"
        points.append(charts.MapStation(
            code=s["station_code"], label=name, lat=s["lat"], lon=s["lon"], aqi=lv["aqi"],
            color=lv["color"], tooltip=f"{name} ({s['station_code']}): {shown}",
            href=_href(request, f"/stations/{s['station_code']}")))
    listed = "; ".join(p.tooltip for p in points)
    return charts.station_map(
        points, chart_id="station-map",
        title=_t(lang, "监测站点分布图（按空气质量级别着色）",
                 "Map of the monitoring stations (coloured by AQI level)"),
        desc=_t(lang, "各站点位置与当前 AQI：", "Stations and their current AQI: ") + listed,
        na="NA", north=_t(lang, "北", "N"))


async def overview(request: web.Request) -> web.StreamResponse:
    """The city's AQI, every station's latest hour, the station map."""
    key = _cache_key(request, "overview")
    body = request.app[keys.PAGE_CACHE].get(key) if key else None
    if body is None:
        snap = request.app[keys.SNAPSHOT].current
        data = snap.data if snap else {"city": {}, "stations": []}
        stations = [{**s, "view": level_view(s), "time": _time(s.get("time_point"))}
                    for s in data["stations"]]
        city = data["city"]
        body = templating.render_string("overview.html", request, {
            "city": city, "city_view": level_view(city), "city_time": _time(city.get("time_point")),
            "stations": stations,
            "data_as_of": _time(data.get("data_as_of")),
            "next_expected_at": _time(data.get("next_expected_at")),
            "last_collection_at": _time(data.get("last_collection_at")),
            "map": _station_map(request, stations, lang_for(request)),
        })
        _remember(request, key, body)
    return _send(request, body, _until_publication(request))


# --- station page ---------------------------------------------------------------------

def level_bands(scheme: Scheme, lang: str) -> list[charts.Band]:
    """AQI level bands of a scheme (0–50, 51–100 …)."""
    out, low = [], 0.0
    for lv in scheme.levels:
        out.append(charts.Band(low, float(lv.aqi_max), lv.color,
                               _t(lang, lv.category_zh, lv.category_en)))
        low = float(lv.aqi_max)
    return out


def concentration_bands(scheme: Scheme, pollutant: str, lang: str) -> list[charts.Band]:
    """Concentration ranges of each level on the column the hourly report reads for it."""
    indicators = [i for i in scheme.report("hourly") if i.pollutant == pollutant]
    if not indicators:
        return []
    column = next((i for i in indicators if i.input == pollutant), indicators[0]).column
    out: list[charts.Band] = []
    for k in range(1, len(column.breakpoints)):
        lv = scheme.level_for(column.iaqi[k])
        low, high = float(column.breakpoints[k - 1]), float(column.breakpoints[k])
        if out and out[-1].color == lv.color:
            out[-1] = charts.Band(out[-1].low, high, lv.color, out[-1].label)
        else:
            out.append(charts.Band(low, high, lv.color, _t(lang, lv.category_zh,
                                                          lv.category_en)))
    return out


def _describe(summary: charts.Summary, unit: str, range_label: str, lang: str) -> str:
    if not summary.present:
        return _t(lang, f"{range_label}：无数据。", f"{range_label}: no data.")

    def num(v: float | None) -> str:
        return "—" if v is None else f"{v:.1f}".removesuffix(".0")
    low, high, mean, last = (num(v) + (f" {unit}" if unit else "") for v in (
        summary.low, summary.high, summary.mean, summary.last))
    return _t(
        lang,
        f"{range_label}：{summary.present}/{summary.slots} 小时有数据（缺失小时为折线中断）；"
        f"最低 {low}，最高 {high}，平均 {mean}，最新 {last}。",
        f"{range_label}: data for {summary.present} of {summary.slots} hours (missing hours "
        f"are gaps in the line); min {low}, max {high}, mean {mean}, latest {last}.")


def station_charts(rows: list[Any], end: datetime, lang: str) -> list[dict[str, Any]]:
    """The AQI and each pollutant over the last 24 h, 7 d and 30 d, as SVG with summaries."""
    by_hour = {r["hour_end"]: r for r in rows}
    scheme = scheme_for_hour(end)
    sections = []
    for range_id, hours, step, fmt, label_zh, label_en in RANGES:
        slots = charts.hour_slots(end, hours)
        ticks = charts.time_ticks(slots, step, fmt)
        range_label = _t(lang, label_zh, label_en)
        figures = []
        for field in ("aqi", *POLLUTANTS):
            values = [None if by_hour.get(t) is None else by_hour[t][field] for t in slots]
            unit = "" if field == "aqi" else UNITS[field]
            name = "AQI" if field == "aqi" else NAMES[field]
            title = (f"{name} — {range_label}" if field == "aqi" else
                     f"{name} {_t(lang, '1 小时浓度', '1 h concentration')} ({unit}) — "
                     f"{range_label}")
            summary = charts.summarize(values)
            desc = _describe(summary, unit, range_label, lang)
            bands = (level_bands(scheme, lang) if field == "aqi"
                     else concentration_bands(scheme, field, lang))
            svg = charts.line_chart(
                values, ticks, chart_id=f"chart-{range_id}-{field}", title=title, desc=desc,
                bands=bands, min_top=100.0 if field == "aqi" else 0.0,
                no_data=_t(lang, "无数据", "no data"),
                frame=MAIN_FRAME if field == "aqi" else SMALL_FRAME)
            figures.append({"field": field, "title": title, "desc": desc, "svg": svg})
        sections.append({"id": range_id, "label": range_label, "hours": hours,
                         "first": slots[0], "last": slots[-1], "figures": figures})
    return sections


def _pollutant_rows(rec: dict[str, Any]) -> list[dict[str, Any]]:
    flags = rec.get("flags") or {}
    valid = rec.get("valid_hours") or {}
    out = []
    for p in POLLUTANTS:
        flag = flags.get(p, "N" if rec.get(p) is not None else None)
        out.append({
            "pollutant": p, "name": NAMES[p], "unit": UNITS[p], "value": rec.get(p),
            "iaqi": (rec.get("iaqi") or {}).get(p),
            "averages": [{"label_zh": zh, "label_en": en, "value": rec.get(field),
                          "hours": valid.get(count)}
                         for field, count, zh, en in AVERAGES[p]],
            "flag": flag, "flag_text": FLAGS.get(flag or "", ("", "")),
        })
    return out


async def station(request: web.Request) -> web.StreamResponse:
    """A station: its current record, charts of 24 h / 7 d / 30 d, recent revisions."""
    code = request.match_info["code"]
    if not STATION_CODE.match(code):
        raise PageError(404, "没有这个站点。", "No such station.")
    key = _cache_key(request, "station", code)
    cached = request.app[keys.PAGE_CACHE].get(key) if key else None
    if cached is not None:
        return _send(request, cached, _until_publication(request))
    lang = lang_for(request)
    now = _now(request)
    end = expected_hour(now, request.app[keys.CONFIG])
    today = now.astimezone(SHANGHAI).date()
    async with request.app[keys.POOL].acquire() as conn:
        row = await reads.station(conn, code)
        if row is None:
            raise PageError(404, f"没有站点 {code}。", f"No station {code}.")
        hours = await page_reads.chart_hours(conn, code, end - timedelta(days=30), end)
        days = await reads.daily(conn, code, today - timedelta(days=30), today)
        revisions = await page_reads.station_revisions(conn, code, REVISIONS_SHOWN)
        snap = request.app[keys.SNAPSHOT].current
        latest = next((s for s in snap.data["stations"] if s["station_code"] == code),
                      None) if snap else None
        if latest is None:
            newest = await page_reads.latest_hour(conn, code)
            latest = ({**record_json(newest), "flags": newest["flags"] or {}}
                      if newest else {})
    daily = [daily_json(d) for d in days]
    body = templating.render_string("station.html", request, {
        "station": row, "latest": latest, "view": level_view(latest),
        "time": _time(latest.get("time_point")), "status": latest.get("status"),
        "pollutants": _pollutant_rows(latest),
        "sections": station_charts(list(hours), end, lang),
        "table_hours": [r for r in hours if r["hour_end"] > end - timedelta(hours=24)],
        "daily": [{**d, "view": level_view(d)} for d in daily],
        "revisions": revisions, "pollutant_keys": POLLUTANTS, "daily_fields": DAILY_SHOWN,
        "present": present,
    })
    _remember(request, key, body)
    return _send(request, body, _until_publication(request))


# --- daily report ---------------------------------------------------------------------

def _date_query(request: web.Request, today: date) -> date:
    raw = _query(request, "date")
    if raw is None:
        return today - timedelta(days=1)
    try:
        day = date.fromisoformat(raw) if len(raw) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise PageError(400, f"参数 date：{raw!r} 不是日期（应为 YYYY-MM-DD）。",
                        f"date: {raw!r} is not a date (YYYY-MM-DD).")
    if not EARLIEST <= day <= today:
        raise PageError(400, f"参数 date：{raw} 超出范围（{EARLIEST} 至 {today}）。",
                        f"date: {raw} is out of range ({EARLIEST} to {today}).")
    return day


async def daily(request: web.Request) -> web.StreamResponse:
    """The daily report of a natural day: the city and each station."""
    today = _now(request).astimezone(SHANGHAI).date()
    day = _date_query(request, today)
    city_code = request.app[keys.CONFIG].city.code
    async with request.app[keys.POOL].acquire() as conn:
        city_rows = await reads.daily(conn, city_code, day, day, city=True)
        rows = await page_reads.day_of_stations(conn, day)
    city = ({**daily_json(city_rows[0]), "stations": city_rows[0]["stations"],
             "area_code": city_code} if city_rows else None)
    stations = []
    for r in rows:
        rec = daily_json(r) if r["day"] is not None else {}
        stations.append({"code": r["code"], "name_zh": r["name_zh"], "name_en": r["name_en"],
                         "county_zh": r["county_zh"], "county_en": r["county_en"],
                         "record": rec, "view": level_view(rec)})
    recent = day >= today - timedelta(days=2)
    return _render(request, "daily.html", {
        "day": day, "city": city, "city_view": level_view(city or {}), "stations": stations,
        "previous": day - timedelta(days=1) if day > EARLIEST else None,
        "next": day + timedelta(days=1) if day < today else None,
        "names": NAMES, "units": UNITS,
    }, _until_publication(request) if recent else STATIC_MAX_AGE)


# --- rankings -------------------------------------------------------------------------

def _month_query(request: web.Request, today: date) -> date:
    raw = _query(request, "month")
    this_month = today.replace(day=1)
    if raw is None:
        return this_month
    try:
        first = datetime.strptime(raw, "%Y-%m").date() if MONTH.match(raw) else None
    except ValueError:
        first = None
    if first is None:
        raise PageError(400, f"参数 month：{raw!r} 不是月份（应为 YYYY-MM）。",
                        f"month: {raw!r} is not a month (YYYY-MM).")
    if not EARLIEST <= first <= this_month:
        span = f"{EARLIEST:%Y-%m} – {this_month:%Y-%m}"
        raise PageError(400, f"参数 month：{raw} 超出范围（{span}）。",
                        f"month: {raw} is out of range ({span}).")
    return first


async def rankings(request: web.Request) -> web.StreamResponse:
    """County rankings of a month by composite index and PM2.5, with their inputs."""
    today = _now(request).astimezone(SHANGHAI).date()
    start = _month_query(request, today)
    first, last = ranking.period_bounds("month", start)
    async with request.app[keys.POOL].acquire() as conn:
        rows = await reads.member_daily(conn, first, last)
        members = await reads.stations(conn)
    result = ranking.rank(rows, members, "month", first)
    for county in result["counties"]:
        county["parts"] = {p["pollutant"]: p for p in county["composite_parts"]}
    previous = (first - timedelta(days=1)).replace(day=1)
    return _render(request, "rankings.html", {
        "month": first, "result": result, "names": NAMES, "units": UNITS,
        "by_pm": sorted(result["counties"], key=lambda c: (c["rank_pm2_5"] is None,
                                                           c["rank_pm2_5"] or 0)),
        "previous": previous if previous >= EARLIEST else None,
        "next": last + timedelta(days=1) if last < today else None,
    }, _until_publication(request) if last >= today - timedelta(days=1) else STATIC_MAX_AGE)


# --- methodology and downloads --------------------------------------------------------

AVERAGING = {"1h": ("1 小时平均", "1 h mean"), "8h": ("8 小时滑动平均", "8 h moving mean"),
             "24h": ("24 小时平均", "24 h mean")}


def _rule_text(ind: Any) -> tuple[str, str]:
    """What happens above the top of an indicator's column, in both languages."""
    if ind.above_top == "fixed":
        return (f"超过上限时该污染物分指数按 {ind.fixed_iaqi} 计",
                f"above the top: the pollutant's IAQI counts as {ind.fixed_iaqi}")
    if ind.above_top == "fallback":
        return (f"超过上限时改用 {ind.fallback_input} 按 {ind.fallback_column.name} 计算",
                f"above the top: indexed by {ind.fallback_input} on {ind.fallback_column.name}")
    if ind.above_top == "drop":
        return "超过上限时不计算该项", "above the top: not indexed"
    return "超过上限时分指数记为 500（爆表）", "above the top: IAQI 500, beyond the index"


def scheme_view(scheme: Scheme, variant: str = DEFAULT_VARIANT) -> dict[str, Any]:
    """A scheme's breakpoint table, report composition and levels, ready for a template;
    ``in_use`` tells whether the service publishes with it (``variant``: the configured
    reading of HJ 633-2012)."""
    columns = []
    for name, col in scheme.columns.items():
        pollutant, _, averaging = name.rpartition("_")
        columns.append({"name": name, "pollutant": pollutant, "unit": UNITS[pollutant],
                        "averaging": AVERAGING.get(averaging, (averaging, averaging)),
                        "breakpoints": col.breakpoints})
    rows = [{"iaqi": iaqi,
             "values": [c["breakpoints"][k] if k < len(c["breakpoints"]) else None
                        for c in columns]}
            for k, iaqi in enumerate(scheme.iaqi_scale)]
    reports = {name: [{"pollutant": i.pollutant, "input": i.input, "column": i.column.name,
                       "rule": _rule_text(i)} for i in scheme.report(name)]
               for name in scheme.reports}
    return {"scheme": scheme, "columns": columns, "rows": rows, "reports": reports,
            "in_use": variant in scheme.variants,
            "levels": [{"level": lv, "ink": charts.text_on(lv.color)} for lv in scheme.levels]}


async def methodology(request: web.Request) -> web.StreamResponse:
    """How the AQI is computed; both schemes' breakpoints and levels from the scheme data."""
    return _render(request, "methodology.html", {
        "schemes": [scheme_view(s, request.app[keys.CONFIG].aqi.hourly_2012)
                    for s in all_schemes()], "units": UNITS,
    }, STATIC_MAX_AGE)


def _months_back(today: date, count: int) -> list[str]:
    out, first = [], today.replace(day=1)
    for _ in range(count):
        first = (first - timedelta(days=1)).replace(day=1)
        out.append(f"{first:%Y-%m}")
    return out


async def downloads(request: web.Request) -> web.StreamResponse:
    """Research downloads, the API document and the widget's embed snippets."""
    today = _now(request).astimezone(SHANGHAI).date()
    cfg = request.app[keys.CONFIG]
    return _render(request, "downloads.html", {
        "origin": public_origin(request),
        "stations": cfg.stations, "pollutant_keys": POLLUTANTS, "names": NAMES,
        "months": _months_back(today, 3),
        "default_from": today - timedelta(days=7), "default_to": today,
    }, STATIC_MAX_AGE)


def setup_pages(app: web.Application) -> None:
    """Register the pages."""
    app[keys.PAGE_CACHE] = {}
    app.router.add_get("/", page(overview))
    app.router.add_get("/stations/{code:.+}", page(station))
    app.router.add_get("/daily", page(daily))
    app.router.add_get("/rankings", page(rankings))
    app.router.add_get("/methodology", page(methodology))
    app.router.add_get("/downloads", page(downloads))
