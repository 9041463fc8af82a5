"""JSON routes: health, readiness and the latest hour (``/api/v1/now``)."""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime

from aiohttp import web

from aqi_service.storage import migrations
from aqi_service.web import keys

STALE_WHILE_REVALIDATE = 300


async def healthz(request: web.Request) -> web.Response:
    """The process is alive."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Database reachable and migrated; 503 with reasons otherwise."""
    app = request.app
    reasons = []
    try:
        async with app[keys.POOL].acquire(timeout=5) as conn:
            version = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations",
                                          timeout=5)
        if version != migrations.latest_version():
            reasons.append(f"database at migration {version}, code expects "
                           f"{migrations.latest_version()}")
    except Exception as exc:  # any failure to reach the database means not ready
        reasons.append(f"database unreachable: {type(exc).__name__}")
    leader = app.get(keys.LEADER)
    body = {
        "status": "ready" if not reasons else "not_ready",
        "reasons": reasons,
        "leader": leader.is_leader if leader else None,
        "scheduler": ("running" if app.get(keys.SCHEDULE)
                      and app[keys.SCHEDULE].scheduler.running else "off"),
    }
    return web.json_response(body, status=200 if not reasons else 503)


def _cache_headers(resp: web.StreamResponse, etag: str, modified: datetime,
                   next_at: datetime) -> None:
    now = datetime.now(timezone.utc)
    max_age = max(int((next_at - now).total_seconds()), 0)
    resp.headers["ETag"] = etag
    resp.headers["Last-Modified"] = format_datetime(modified.astimezone(timezone.utc),
                                                    usegmt=True)
    resp.headers["Cache-Control"] = (
        f"public, max-age={max_age}, stale-while-revalidate={STALE_WHILE_REVALIDATE}")
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.headers["Vary"] = "Accept-Encoding"


async def now(request: web.Request) -> web.StreamResponse:
    """The latest hour for the city and every station, from the prepared snapshot."""
    snap = request.app[keys.SNAPSHOT].current
    assert snap is not None
    match = request.headers.get("If-None-Match", "")
    if snap.etag in [t.strip() for t in match.split(",")] or match.strip() == "*":
        resp = web.Response(status=304)
        _cache_headers(resp, snap.etag, snap.last_modified, snap.next_expected_at)
        return resp
    resp = web.Response(body=snap.body, content_type="application/json", charset="utf-8")
    _cache_headers(resp, snap.etag, snap.last_modified, snap.next_expected_at)
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        resp.enable_compression()
    return resp


def setup_routes(app: web.Application) -> None:
    """Register the routes."""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/api/v1/now", now)
