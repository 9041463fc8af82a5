"""The public status page: ``GET /status`` (HTML, zh/en) and ``GET /api/v1/status`` (JSON).

Per station: the last hour reported, how late each recent hour was published, the hours
missing over the last 7 days and the collector's state. Built from the ``/now`` snapshot
and the cached monitoring figures (read again only when the snapshot changes), so a busy
status page costs the database nothing.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from aqi_service.aqi.schemes import SHANGHAI
from aqi_service.collect.health import Health, SingleProbe, migration_version
from aqi_service.monitoring.stats import RECENT_HOURS, Reading, StationStats
from aqi_service.storage import migrations
from aqi_service.web import conditional, keys, templating
from aqi_service.web.errors import ApiError

HOUR = timedelta(hours=1)
MAX_AGE = 60
"""Seconds a client may keep the status (the figures are read again about every minute)."""


def _iso(when: datetime | None) -> str | None:
    """Asia/Shanghai ISO 8601 to the second."""
    if when is None:
        return None
    return when.astimezone(SHANGHAI).replace(microsecond=0).isoformat()


def _hour_end(item: dict[str, Any]) -> datetime | None:
    raw = item.get("time_point_utc")
    return datetime.fromisoformat(raw.replace("Z", "+00:00")) if raw else None


def _publication(reading: Reading, st: StationStats | None) -> dict[str, Any]:
    hours = []
    latencies = []
    for i in range(RECENT_HOURS - 1, -1, -1):
        hour = reading.expected - i * HOUR
        published = st.published.get(hour) if st else None
        latency = int((published - hour).total_seconds()) if published else None
        if latency is not None:
            latencies.append(latency)
        hours.append({"time_point": _iso(hour), "published_at": _iso(published),
                      "latency_s": latency})
    return {
        "hours": hours,
        "median_latency_s": int(statistics.median(latencies)) if latencies else None,
        "max_latency_s": max(latencies) if latencies else None,
    }


def _collector_of(st: StationStats | None) -> dict[str, Any]:
    cur = st.cursor if st else None
    return {
        "last_outcome": cur["last_outcome"] if cur else None,
        "last_attempt_at": _iso(cur["last_attempt_at"]) if cur else None,
        "last_success_at": _iso(cur["last_success_at"]) if cur else None,
        "consecutive_failures": cur["consecutive_failures"] if cur else 0,
    }


def _run_json(run: dict[str, Any] | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "id": run["id"], "trigger": run["trigger"], "status": run["status"],
        "started_at": _iso(run["started_at"]), "finished_at": _iso(run["finished_at"]),
        "target_hour": _iso(run["target_hour"]),
        "stations_polled": run["stations_polled"], "stations_ok": run["stations_ok"],
        "stations_failed": run["stations_failed"], "observations": run["observations"],
        "rejected": run["rejected"], "hours_backfilled": run["hours_backfilled"],
        "revisions": run["revisions"], "error": run.get("error"),
    }


PROBLEM_TEXT = {
    "database_down": "the database does not answer",
    "migration_mismatch": "the database's migration is not the one the code expects",
    "snapshot_missing": "the /now snapshot is not prepared yet",
    "scheduler_stopped": "the scheduler is not running",
    "collection_stalled": "no successful collection within the expected interval",
    "derive_behind": "observations are waiting for their derived records",
    "collection_failing": "the last collection run failed",
}
"""Every readiness problem code and what it means."""


def _health_json(health: Health | None) -> dict[str, Any]:
    state = health.state if health is not None else None
    return {
        "problems": list(health.problems) if health is not None else [],
        "last_error": state.last_error if state is not None else None,
        "derive_pending_hours": state.pending_hours if state is not None else None,
    }


async def readiness(app: web.Application) -> dict[str, Any]:
    """The readiness document: database reachable and migrated, /now prepared, scheduler
    running (when this instance has one), collection neither stalled nor failing, derived
    records not behind. ``problems`` holds the codes (empty: ready), ``reasons`` the text."""
    problems: list[str] = []
    reasons: list[str] = []
    expected = migrations.latest_version()
    version = None
    pool = app[keys.POOL]
    try:
        version = await app[keys.MIGRATION_PROBE].run(lambda: migration_version(pool))
        if version != expected:
            problems.append("migration_mismatch")
            reasons.append(f"database at migration {version}, code expects {expected}")
    except Exception as exc:  # any failure to reach the database in time means not ready
        problems.append("database_down")
        reasons.append(f"database unreachable: {type(exc).__name__}")
    store = app.get(keys.SNAPSHOT)
    if store is None or store.current is None:
        problems.append("snapshot_missing")
        reasons.append(PROBLEM_TEXT["snapshot_missing"])
    leader = app.get(keys.LEADER)
    schedule = app.get(keys.SCHEDULE)
    scheduler = "off"
    if schedule is not None:
        scheduler = "running" if schedule.scheduler.running else "stopped"
        if not schedule.scheduler.running:
            problems.append("scheduler_stopped")
            reasons.append(PROBLEM_TEXT["scheduler_stopped"])
    collector = app.get(keys.COLLECTOR)
    if collector is not None:
        pool = app[keys.POOL] if "database_down" not in problems else None
        health = await collector.health.check(pool)
        for code in health.problems:
            if code in problems:
                continue
            problems.append(code)
            text = PROBLEM_TEXT[code]
            if code == "collection_failing" and health.state and health.state.last_error:
                text += f": {health.state.last_error}"
            reasons.append(text)
    return {
        "status": "ready" if not problems else "not_ready",
        "reasons": reasons,
        "problems": problems,
        "leader": leader.is_leader if leader else None,
        "scheduler": scheduler,
        "migration": {"database": version, "code": expected},
    }


def build_status(app: web.Application, reading: Reading) -> dict[str, Any]:
    """The status document from the snapshot and one reading of the monitoring figures."""
    snap = app[keys.SNAPSHOT].current
    items = snap.data["stations"] if snap is not None else []
    stations = []
    for item in items:
        st = reading.stations.get(item["station_code"])
        hour_end = _hour_end(item)
        stations.append({
            "station_code": item["station_code"], "name_zh": item["name_zh"],
            "name_en": item["name_en"], "status": item["status"],
            "last_report": _iso(hour_end), "aqi": item.get("aqi"),
            "data_age_s": (int((reading.checked_at - hour_end).total_seconds())
                           if hour_end else None),
            "missing_hours_24h": st.missing_24h if st else 24,
            "missing_hours_7d": st.missing_7d if st else 168,
            "publication": _publication(reading, st),
            "collector": _collector_of(st),
        })
    schedule = app.get(keys.SCHEDULE)
    leader = app.get(keys.LEADER)
    job = schedule.scheduler.get_job("collect") if schedule is not None else None
    run = reading.last_run
    collector = app.get(keys.COLLECTOR)
    health = collector.health.last_health if collector is not None else None
    return {
        "checked_at": _iso(reading.checked_at),
        "expected_hour": _iso(reading.expected),
        "time_convention": "hour-ending; times in Asia/Shanghai (UTC+8)",
        "summary": {s: sum(1 for x in stations if x["status"] == s)
                    for s in ("on_time", "late", "missing", "maintenance")},
        "collector": {
            "state": ("collecting" if run is not None and run["finished_at"] is None
                      else "idle"),
            **_health_json(health),
            "scheduler": ("off" if schedule is None
                          else "running" if schedule.scheduler.running else "stopped"),
            "leader": leader.is_leader if leader is not None else None,
            "last_run": _run_json(run),
            "last_success_at": _iso(reading.last_success_at),
            "next_collection_at": _iso(job.next_run_time) if job is not None else None,
        },
        "stations": stations,
    }


async def _reading(request: web.Request) -> Reading:
    app = request.app
    collector = app.get(keys.COLLECTOR)
    if collector is not None:
        await collector.health.check(app[keys.POOL], max_age_s=MAX_AGE)
    snap = app[keys.SNAPSHOT].current
    reading = await app[keys.MONITORING].fresh(app[keys.POOL], snap)
    if reading is None:
        raise ApiError(503, "status_unavailable",
                       "the monitoring figures cannot be read from the database now")
    return reading


async def status_json(request: web.Request) -> web.Response:
    """Per station: last report, publication latency, missing hours, collector state."""
    data = build_status(request.app, await _reading(request))
    return conditional.json_response(request, data, MAX_AGE)


async def status_page(request: web.Request) -> web.Response:
    """The same as a page."""
    data = build_status(request.app, await _reading(request))
    resp = templating.render_template("status.html", request, {"status": data})
    resp.headers["Cache-Control"] = f"public, max-age={MAX_AGE}"
    return resp


def setup_status(app: web.Application) -> None:
    """Register ``/status`` and ``/api/v1/status``."""
    app.router.add_get("/status", status_page)
    app[keys.MIGRATION_PROBE] = SingleProbe()
    app.router.add_get("/api/v1/status", status_json)


_TIME = {"type": ["string", "null"], "format": "date-time"}
_COUNT = {"type": "integer", "minimum": 0}
OPENAPI_SCHEMAS: dict[str, Any] = {
    "ServiceStatus": {
        "type": "object",
        "required": ["checked_at", "expected_hour", "summary", "collector", "stations"],
        "properties": {
            "checked_at": {"type": "string", "format": "date-time"},
            "expected_hour": {"type": "string", "format": "date-time",
                              "description": "Newest hour (hour-ending) due by then"},
            "time_convention": {"type": "string"},
            "summary": {"type": "object", "additionalProperties": _COUNT},
            "collector": {
                "type": "object",
                "required": ["state", "scheduler", "leader", "last_run", "last_success_at",
                             "next_collection_at"],
                "properties": {
                    "state": {"enum": ["idle", "collecting"]},
                    "scheduler": {"enum": ["running", "stopped", "off"]},
                    "leader": {"type": ["boolean", "null"]},
                    "last_run": {"oneOf": [{"type": "null"}, {
                        "type": "object",
                        "required": ["id", "trigger", "status", "started_at", "finished_at"],
                        "properties": {
                            "id": {"type": "integer"}, "trigger": {"type": "string"},
                            "status": {"enum": ["running", "ok", "partial", "failed",
                                                "abandoned"]},
                            "error": {"type": ["string", "null"],
                                      "description": "Why the run failed or was abandoned"},
                            "started_at": _TIME, "finished_at": _TIME, "target_hour": _TIME,
                            **{k: _COUNT for k in (
                                "stations_polled", "stations_ok", "stations_failed",
                                "observations", "rejected", "hours_backfilled", "revisions")},
                        }}]},
                    "last_success_at": _TIME, "next_collection_at": _TIME,
                    "problems": {"type": "array", "items": {"enum": sorted(PROBLEM_TEXT)},
                                 "description": "The readiness problems of collection "
                                                "(the codes of /readyz)"},
                    "last_error": {"type": ["string", "null"],
                                   "description": "Why the last failed run failed"},
                    "derive_pending_hours": {"type": ["integer", "null"],
                                             "description": "Station-hours whose derived "
                                                            "records are due"},
                },
            },
            "stations": {"type": "array", "items": {"$ref": "#/components/schemas/StationStatus"}},
        },
    },
    "StationStatus": {
        "type": "object",
        "required": ["station_code", "name_zh", "name_en", "status", "last_report", "aqi",
                     "data_age_s", "missing_hours_24h", "missing_hours_7d", "publication",
                     "collector"],
        "properties": {
            "station_code": {"type": "string"}, "name_zh": {"type": "string"},
            "name_en": {"type": "string"},
            "status": {"enum": ["on_time", "late", "missing", "maintenance"]},
            "last_report": {**_TIME, "description": "Latest hour reported (hour-ending)"},
            "aqi": {"type": ["integer", "null"]},
            "data_age_s": {"type": ["integer", "null"],
                           "description": "Seconds from the end of that hour to checked_at"},
            "missing_hours_24h": {**_COUNT, "maximum": 24},
            "missing_hours_7d": {**_COUNT, "maximum": 168},
            "publication": {
                "type": "object", "required": ["hours", "median_latency_s", "max_latency_s"],
                "properties": {
                    "hours": {"type": "array", "items": {
                        "type": "object", "required": ["time_point", "published_at",
                                                       "latency_s"],
                        "properties": {"time_point": {"type": "string", "format": "date-time"},
                                       "published_at": _TIME,
                                       "latency_s": {"type": ["integer", "null"]}}}},
                    "median_latency_s": {"type": ["integer", "null"]},
                    "max_latency_s": {"type": ["integer", "null"]},
                },
            },
            "collector": {
                "type": "object",
                "required": ["last_outcome", "last_attempt_at", "last_success_at",
                             "consecutive_failures"],
                "properties": {"last_outcome": {"type": ["string", "null"]},
                               "last_attempt_at": _TIME, "last_success_at": _TIME,
                               "consecutive_failures": _COUNT},
            },
        },
    },
}
OPENAPI_PATHS: dict[str, Any] = {
    "/api/v1/status": {"get": {
        "summary": "Service and station status: last reports, publication latency, gaps",
        "description": "Per station: the latest hour reported, the publication latency of "
                       f"the last {RECENT_HOURS} expected hours (time from the end of the hour "
                       "to its first publication), missing hours over the last 24 hours and "
                       "7 days, and the collector's state. Refreshed about every minute.",
        "responses": {
            "200": {"description": "The status",
                    "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/ServiceStatus"}}}},
            "304": {"description": "Not modified (If-None-Match matched the ETag)"},
            "503": {"description": "The figures cannot be read from the database",
                    "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Error"}}}},
        },
    }},
}
