"""JSON routes: health, readiness, the latest hour and the series of API v1."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp import web

from aqi_service.aqi.schemes import SHANGHAI, all_schemes
from aqi_service.storage import reads
from aqi_service.web import conditional, downloads, keys, openapi, params, status
from aqi_service.web import rankings as ranking
from aqi_service.web.errors import ApiError, json_route
from aqi_service.web.snapshot import SnapshotStore, daily_json, record_json

MAX_HOURLY_RANGE = timedelta(days=31)
"""Longest hourly series one request returns; longer ones come from the downloads."""
MAX_DAILY_RANGE = timedelta(days=366)
REVISIONS_PAGE = 1000


async def healthz(request: web.Request) -> web.Response:
    """The process is alive."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready to serve and collecting: 200, or 503 with the reasons and problem codes (see
    ``status.readiness``)."""
    body = await status.readiness(request.app)
    return web.json_response(body, status=200 if not body["problems"] else 503)


def now_handler(store: SnapshotStore) -> Callable[[web.Request], Awaitable[web.Response]]:
    """``GET /api/v1/now`` answering from ``store`` (the app's, bound once: the hot path)."""

    async def now(request: web.Request) -> web.Response:
        """The latest hour for the city and every station, from the prepared snapshot."""
        snap = store.current
        assert snap is not None, "the snapshot is prepared before the app serves"
        return snap.response.respond(request)

    return now


def _next_publication(request: web.Request) -> int:
    snap = request.app[keys.SNAPSHOT].current
    return conditional.seconds_until(snap.next_expected_at) if snap else 300


def _station_json(row: Any) -> dict[str, Any]:
    return {
        "station_code": row["code"], "position_name": row["name_zh"],
        "name_zh": row["name_zh"], "name_en": row["name_en"],
        "county_zh": row["county_zh"], "county_en": row["county_en"],
        "admin_code": row["admin_code"], "lat": row["lat"], "lon": row["lon"],
        "timezone": row["timezone"], "not_monitored": list(row["not_monitored"]),
    }


async def _known_station(request: web.Request, conn: Any) -> Any:
    code = request.match_info["code"]
    if not params.STATION_CODE.match(code):
        raise ApiError(404, "unknown_station", "no such station", {"station": code[:40]})
    row = await reads.station(conn, code)
    if row is None:
        raise ApiError(404, "unknown_station", f"no station {code!r}", {"station": code})
    return row


async def stations(request: web.Request) -> web.Response:
    """The city's monitoring stations."""
    async with request.app[keys.POOL].acquire() as conn:
        rows = await reads.stations(conn)
    items = [_station_json(r) for r in rows]
    return conditional.json_response(request, {"stations": items, "count": len(items)}, 3600)


async def station(request: web.Request) -> web.Response:
    """One station with its latest record and status."""
    async with request.app[keys.POOL].acquire() as conn:
        row = await _known_station(request, conn)
    item = _station_json(row)
    snap = request.app[keys.SNAPSHOT].current
    latest = next((s for s in snap.data["stations"] if s["station_code"] == row["code"]),
                  None) if snap else None
    if latest is not None:
        item["latest"] = {k: v for k, v in latest.items() if k not in item}
    return conditional.json_response(request, item, _next_publication(request))


def _series_head(code: str, station: Any) -> dict[str, Any]:
    """A series' subject: the city's code, or the station's with its monitoring plan (the
    records were derived with it)."""
    if station is None:
        return {"area_code": code}
    return {"station_code": code, "not_monitored": list(station["not_monitored"])}


async def _hourly(request: web.Request, code: str, station: Any = None) -> web.Response:
    now_ = request.app[keys.CLOCK]()
    last = params.time_param(request, "to", now_)
    first = params.time_param(request, "from", last - timedelta(hours=24))
    params.check_range("from", first, last, MAX_HOURLY_RANGE, "hourly records")
    async with request.app[keys.POOL].acquire() as conn:
        rows = await reads.hourly(conn, code, first, last, city=station is None)
    data = {
        **_series_head(code, station),
        "from": first.astimezone(SHANGHAI).isoformat(),
        "to": last.astimezone(SHANGHAI).isoformat(),
        "time_convention": "hour-ending; times in Asia/Shanghai (UTC+8)",
        "count": len(rows),
        "records": [record_json(r) for r in rows],
    }
    return conditional.json_response(request, data, _next_publication(request))


async def _daily(request: web.Request, code: str, station: Any = None) -> web.Response:
    today = request.app[keys.CLOCK]().astimezone(SHANGHAI).date()
    last = params.date_param(request, "to", today)
    first = params.date_param(request, "from", last - timedelta(days=30))
    params.check_range("from", first, last, MAX_DAILY_RANGE, "daily records")
    async with request.app[keys.POOL].acquire() as conn:
        rows = await reads.daily(conn, code, first, last, city=station is None)
    data = {
        **_series_head(code, station),
        "from": first.isoformat(), "to": last.isoformat(),
        "day_convention": "natural day in Asia/Shanghai (hours 01:00-24:00, hour-ending)",
        "count": len(rows),
        "records": [daily_json(r) for r in rows],
    }
    return conditional.json_response(request, data, _next_publication(request))


async def station_hourly(request: web.Request) -> web.Response:
    """A station's hourly records over ``from``…``to`` (default: the last 24 h)."""
    async with request.app[keys.POOL].acquire() as conn:
        row = await _known_station(request, conn)
    return await _hourly(request, row["code"], row)


async def station_daily(request: web.Request) -> web.Response:
    """A station's daily records over ``from``…``to`` (dates; default: the last 30 days)."""
    async with request.app[keys.POOL].acquire() as conn:
        row = await _known_station(request, conn)
    return await _daily(request, row["code"], row)


async def city_hourly(request: web.Request) -> web.Response:
    """The city's hourly records (pollutant means over its stations, AQI of the means)."""
    return await _hourly(request, request.app[keys.CONFIG].city.code)


async def city_daily(request: web.Request) -> web.Response:
    """The city's daily records."""
    return await _daily(request, request.app[keys.CONFIG].city.code)


async def schemes(request: web.Request) -> web.Response:
    """The AQI index schemes as data (breakpoints, rules, levels, texts)."""
    return conditional.json_response(
        request, {"schemes": [s.as_dict() for s in all_schemes()]}, 86400)


async def revisions(request: web.Request) -> web.Response:
    """Changes to stored or published values since ``since`` (oldest first, paged)."""
    since = params.time_param(request, "since",
                              request.app[keys.CLOCK]() - timedelta(hours=24))
    async with request.app[keys.POOL].acquire() as conn:
        rows = await reads.revisions(conn, since, REVISIONS_PAGE + 1)
    more = len(rows) > REVISIONS_PAGE
    rows = rows[:REVISIONS_PAGE]
    items = [{
        "id": r["id"], "kind": r["kind"], "subject": r["subject"], "field": r["field"],
        "period_end": r["period_end"].astimezone(SHANGHAI).isoformat(),
        "old_value": r["old_value"], "new_value": r["new_value"], "reason": r["reason"],
        "changed_at": r["changed_at"].astimezone(SHANGHAI).isoformat(),
    } for r in rows]
    data: dict[str, Any] = {"since": since.astimezone(SHANGHAI).isoformat(),
                            "count": len(items), "revisions": items}
    if more:
        data["next_since"] = rows[-1]["changed_at"].astimezone(SHANGHAI).isoformat()
    return conditional.json_response(request, data, 60)


async def rankings(request: web.Request) -> web.Response:
    """Counties ranked by composite index and by PM2.5 for a month or a year."""
    period = params.choice(request, "period", ("month", "year")) or "month"
    month = params.month_param(request, "month")   # both checked, whichever period is asked
    year = params.year_param(request, "year")
    today = request.app[keys.CLOCK]().astimezone(SHANGHAI).date()
    if period == "month":
        start = month or today.replace(day=1)
    else:
        start = year or today.replace(month=1, day=1)
    first, last = ranking.period_bounds(period, start)
    async with request.app[keys.POOL].acquire() as conn:
        rows = await reads.member_daily(conn, first, last)
        members = await reads.stations(conn)
    return conditional.json_response(request, ranking.rank(rows, members, period, first),
                                     _next_publication(request))


async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of API v1."""
    return conditional.json_response(request, openapi.for_app(request.app), 3600)


def setup_routes(app: web.Application) -> None:
    """Register the routes (those reading the database answer an outage with 503; /now
    answers from the snapshot and is not wrapped: the hot path)."""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/api/v1/now", now_handler(app[keys.SNAPSHOT]))
    for path, handler in (
            ("/api/v1/stations", stations),
            ("/api/v1/stations/{code}", station),
            ("/api/v1/stations/{code}/hourly", station_hourly),
            ("/api/v1/stations/{code}/daily", station_daily),
            ("/api/v1/city/hourly", city_hourly),
            ("/api/v1/city/daily", city_daily),
            ("/api/v1/schemes", schemes),
            ("/api/v1/revisions", revisions),
            ("/api/v1/rankings", rankings)):
        app.router.add_get(path, json_route(handler))
    downloads.setup_downloads(app)
    app.router.add_get("/api/v1/openapi.json", openapi_json)
