"""The embeddable widget: ``/widget.js`` (script) and ``/widget/{code}`` (iframe, no script).

Both read the prepared ``/api/v1/now`` snapshot, never the database. The iframe page is
rendered on the server under a strict Content-Security-Policy (no script at all, styles
from a static file) and refreshes itself with ``<meta http-equiv="refresh">`` shortly
after the next hour is expected, with a random jitter so that embedding sites do not all
call at the same second.
"""

from __future__ import annotations

import gzip
import math
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from aqi_service.web import conditional, keys, templating
from aqi_service.web.params import STATION_CODE
from aqi_service.web.templating import LANGS, lang_for

SCRIPT_PATH = Path(__file__).parent / "static" / "widget.js"
SCRIPT_MAX_AGE = 3600
"""Seconds a cache may keep widget.js before revalidating (it changes only on deploy)."""
JITTER_S = (15, 120)
"""Random delay after ``next_expected_at`` before a widget refreshes (seconds)."""
RETRY_S = 300
"""Refresh delay when the expected hour is already overdue."""
STALE_GRACE = timedelta(minutes=10)
"""Past ``next_expected_at`` by more than this, the shown hour is marked as delayed."""
FRAME_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors *; "
             "base-uri 'none'; form-action 'none'")
POLLUTANT_LABELS = {"so2": "SO₂", "no2": "NO₂", "co": "CO", "o3": "O₃", "pm10": "PM10",
                    "pm2_5": "PM2.5"}
FRAME_PARAMS = {"lang": LANGS, "transparent": ("0", "1")}


class WidgetScript:
    """widget.js as served: the bytes, their gzip and a strong ETag (read on first use)."""

    def __init__(self, path: Path = SCRIPT_PATH) -> None:
        self.path = path
        self._loaded: tuple[bytes, bytes, str] | None = None

    def get(self) -> tuple[bytes, bytes, str]:
        """(plain bytes, gzipped bytes, ETag)."""
        if self._loaded is None:
            body = self.path.read_bytes()
            packed = gzip.compress(body, compresslevel=9, mtime=0)
            self._loaded = (body, packed, conditional.etag_of(body))
        return self._loaded


async def widget_js(request: web.Request) -> web.Response:
    """The embeddable script: cacheable, CORS-open, gzipped when the client accepts it."""
    body, packed, etag = request.app[keys.WIDGET_SCRIPT].get()
    if conditional.matches(request, etag):
        resp = web.Response(status=304)
    else:
        gz = conditional.accepts_gzip(request)
        resp = web.Response(body=packed if gz else body)
        resp.headers["Content-Type"] = "application/javascript; charset=utf-8"
        if gz:
            resp.headers["Content-Encoding"] = "gzip"
    conditional.cache_headers(resp, etag, SCRIPT_MAX_AGE)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return resp


def _frame_params(request: web.Request) -> tuple[str | None, bool] | str:
    """(lang or None, transparent), or the name of the first bad parameter."""
    values: dict[str, str] = {}
    for name, allowed in FRAME_PARAMS.items():
        given = [v.lower() for v in request.query.getall(name, [])]
        if len(given) > 1 or (given and given[0] not in allowed):
            return name
        if given:
            values[name] = given[0]
    return values.get("lang"), values.get("transparent") == "1"


def refresh_seconds(next_expected_at: datetime, now: datetime) -> int:
    """Seconds until ``next_expected_at`` plus a random jitter (a retry delay if overdue)."""
    until = (next_expected_at - now).total_seconds()
    return (math.ceil(until) if until > 0 else RETRY_S) + random.randint(*JITTER_S)


def _place(data: dict[str, Any], code: str | None) -> dict[str, Any] | None:
    if code is None:
        return data["city"]
    return next((s for s in data["stations"] if s["station_code"] == code), None)


def _stale(place: dict[str, Any], data: dict[str, Any], code: str | None,
           next_expected_at: datetime, now: datetime) -> bool:
    if now > next_expected_at + STALE_GRACE:
        return True
    if code is not None:
        return place.get("status") in ("late", "missing")
    shown = place.get("time_point")
    return shown is None or (datetime.fromisoformat(shown)
                             < datetime.fromisoformat(data["expected_hour"]))


def frame_view(data: dict[str, Any], code: str | None, lang: str, next_expected_at: datetime,
               now: datetime) -> dict[str, Any] | None:
    """What the iframe shows for a station (or the city when ``code`` is None)."""
    place = _place(data, code)
    if place is None:
        return None
    en = lang == "en"
    aqi = place.get("aqi")
    time_point = place.get("time_point")
    primary = place.get("primary_pollutants") or []
    return {
        "code": code,
        "name": place["name_en"] if en else place["name_zh"],
        "aqi": aqi,
        "level": place.get("level"),
        "category": (place.get("category_en") if en else place.get("category")) or None,
        "primary": ", ".join(POLLUTANT_LABELS[p] for p in primary),
        "time": datetime.fromisoformat(time_point) if time_point else None,
        "status": place.get("status"),
        "stale": _stale(place, data, code, next_expected_at, now),
    }


def _frame_headers(resp: web.Response, max_age: int) -> web.Response:
    resp.headers["Content-Security-Policy"] = FRAME_CSP
    resp.headers["Cache-Control"] = f"public, max-age={max(max_age, 0)}"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
    return resp


def _frame_error(request: web.Request, status: int, reason: str,
                 parameter: str | None = None) -> web.Response:
    resp = templating.render_template(
        "widget/error.html", request,
        {"reason": reason, "parameter": parameter, "transparent": False}, status=status)
    return _frame_headers(resp, 0)


async def _frame(request: web.Request, code: str | None) -> web.Response:
    parsed = _frame_params(request)
    if isinstance(parsed, str):
        return _frame_error(request, 400, "bad_parameter", parameter=parsed)
    _, transparent = parsed
    if code is not None and not STATION_CODE.match(code):
        return _frame_error(request, 404, "unknown_station")
    snap = request.app[keys.SNAPSHOT].current
    if snap is None:
        return _frame_error(request, 503, "unavailable")
    now = request.app[keys.CLOCK]()
    lang = parsed[0] or lang_for(request)
    view = frame_view(snap.data, code, lang, snap.next_expected_at, now)
    if view is None:
        return _frame_error(request, 404, "unknown_station")
    resp = templating.render_template("widget/frame.html", request, {
        "w": view, "transparent": transparent,
        "refresh": refresh_seconds(snap.next_expected_at, now),
        "page_url": f"/stations/{code}" if code else "/",
    })
    until = int((snap.next_expected_at - now).total_seconds())
    return _frame_headers(resp, min(until, 60))


async def station_frame(request: web.Request) -> web.Response:
    """The iframe widget of one station."""
    return await _frame(request, request.match_info["code"])


async def city_frame(request: web.Request) -> web.Response:
    """The iframe widget of the city."""
    return await _frame(request, None)


def setup_widget(app: web.Application) -> None:
    """Register the widget routes (after the templates are installed)."""
    app[keys.WIDGET_SCRIPT] = WidgetScript()
    app.router.add_get("/widget.js", widget_js)
    app.router.add_get("/widget/city", city_frame)
    app.router.add_get("/widget/{code}", station_frame)
