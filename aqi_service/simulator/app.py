"""HTTP API of the simulated station data loggers (an aiohttp app on loopback).

``GET /stations``
    ``{"stations": [{"code", "name", "lat", "lon"}, ...]}``.

``GET /stations/{code}/hourly?since=<ISO 8601>[&until=<ISO 8601>]``
    ``{"station_code", "time_convention": "hour-ending", "timezone": "Asia/Shanghai",
    "units": {"so2": "µg/m³", ..., "co": "mg/m³", ...}, "records": [{"time":
    "2026-11-26T16:00:00+08:00", "so2": 12, "so2_flag": "M", ..., "pm2_5": 61}, ...]}``.
    A ``*_flag`` key is left out when the flag is N (normal), as in most records.
    Records are the hours strictly after ``since`` up to and
    including ``until`` (default and cap: the latest published hour), ascending, labelled
    hour-ending in +08:00 (16:00 is the mean of 15:00-16:00). µg/m³ values are integers,
    CO (mg/m³) has 3 decimals; flags are HJ 212 data flags (N normal, M maintenance,
    C calibration, D fault). Times without an offset are Asia/Shanghai. ``since`` is
    required; ``until - since`` (``until`` defaulting to the latest hour) is at most 31 days.

``GET /_faults``
    ``{"faults": [{"id", "station", "kind", "count", "until", "hours", "value",
    "created"}, ...], "rates": {kind: probability, ...}}``: the active on-demand faults
    and the non-zero rates.

``POST /_faults``
    Body ``{"station": "<code>" | "*", "kind": "<kind>", "count": N, "until": "<ISO>",
    "hours": ["<ISO hour>", ...], "value": ...}``; only ``kind`` is required (``station``
    defaults to ``"*"``, every field but ``kind`` is optional). Answers 201
    ``{"fault": {...}}``. ``count`` limits the fault to the next N hourly requests to a
    matching station, ``until`` ends it at that time of the simulator's clock, ``hours``
    limits a data fault to those hours (default: every hour). Kinds are listed in
    ``kinds``, their values in ``faultparams``.

``DELETE /_faults`` clears every fault (``{"cleared": n}``);
``DELETE /_faults/{id}`` removes one (404 if there is none).

Transport faults (``down`` 503, ``http_500`` 500, ``timeout``, ``malformed_json``,
``wrong_content``) apply to ``/stations/{code}/hourly`` only; ``/stations`` and
``/_faults`` never fail on purpose.

Errors: ``{"error": {"code": "...", "message": "..."}}`` with 400 (bad parameter or fault),
404 (unknown station or path), 405, 500 (no internals), 503 (``down``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

from aiohttp import web

from aqi_service.errors import InputError
from aqi_service.simulator.errors import BadParameter, UnknownStationError
from aqi_service.simulator.hours import TIMEZONE_NAME, parse_time
from aqi_service.simulator.keys import CLOSING, SIMULATOR
from aqi_service.simulator.kinds import FaultKind
from aqi_service.simulator.model import Simulator, TransportFault
from aqi_service.simulator.records import RECORD_KEYS, Row

log = logging.getLogger(__name__)

UNITS = {"so2": "µg/m³", "no2": "µg/m³", "co": "mg/m³", "o3": "µg/m³", "pm10": "µg/m³",
         "pm2_5": "µg/m³"}
_dumps = partial(json.dumps, ensure_ascii=False, separators=(",", ":"))
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
_WRONG_CONTENT = (
    "<!DOCTYPE html>\n<html><head><title>Login</title></head>"
    "<body><h1>Data logger</h1><form action=\"/login\" method=\"post\">"
    "<input name=\"user\"><input name=\"password\" type=\"password\"></form></body></html>\n"
)

# Times and flags are plain ASCII made here; numbers print as valid JSON with %s.
_ROW_TEMPLATE = "{" + ",".join(
    f'"{k}":"%s"' if k == "time" or k.endswith("_flag") else f'"{k}":%s' for k in RECORD_KEYS
) + "}"

# A record whose flags are all N (normal) leaves them out: half the bytes, the same meaning.
_NORMAL_TEMPLATE = "{" + ",".join(
    '"time":"%s"' if k == "time" else f'"{k}":%s'
    for k in RECORD_KEYS if not k.endswith("_flag")
) + "}"
_ALL_NORMAL = ("N",) * sum(1 for k in RECORD_KEYS if k.endswith("_flag"))

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def encode_rows(rows: list[Row]) -> str:
    """Records as a JSON array; a template for rows of plain numbers (most of them)."""
    parts = []
    for row in rows:
        if str in map(type, row[1::2]):  # a non-numeric fault value
            parts.append(_dumps(dict(zip(RECORD_KEYS, row, strict=True))))
        elif row[2::2] == _ALL_NORMAL:
            parts.append(_NORMAL_TEMPLATE % (row[0], *row[1::2]))
        else:
            parts.append(_ROW_TEMPLATE % row)
    return f"[{','.join(parts)}]"


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(text=_dumps(payload), status=status, content_type="application/json")


def _error(status: int, code: str, message: str) -> web.Response:
    return _json({"error": {"code": code, "message": message}}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error into the JSON error envelope; never leak internals."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, _HTTP_CODES.get(exc.status, "http_error"), exc.reason)
    except UnknownStationError as exc:
        return _error(404, "unknown_station", str(exc))
    except BadParameter as exc:
        return _error(400, exc.code, str(exc))
    except InputError as exc:
        return _error(400, "bad_request", str(exc))
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error(500, "internal_error", "internal error")


async def list_stations(request: web.Request) -> web.Response:
    """``GET /stations``."""
    sim = request.app[SIMULATOR]
    return _json({"stations": [{"code": s.code, "name": s.name, "lat": s.lat, "lon": s.lon}
                               for s in sim.stations]})


async def hourly(request: web.Request) -> web.Response:
    """``GET /stations/{code}/hourly``: the station's records, unless a fault intervenes."""
    sim = request.app[SIMULATOR]
    code = request.match_info["code"]
    sim.station(code)
    fault = sim.transport_fault(code)
    if fault is not None:
        failed = await _fail(request, fault)
        if failed is not None:
            return failed
    query = request.query
    if "since" not in query:
        raise BadParameter("missing_since", "'since' is required")
    since = parse_time(query["since"], "since")
    until = parse_time(query["until"], "until") if "until" in query else None
    rows = sim.hourly_rows(code, since, until)
    head = _dumps({"station_code": code, "time_convention": "hour-ending",
                   "timezone": TIMEZONE_NAME, "units": UNITS})
    body = f"{head[:-1]},\"records\":{encode_rows(rows)}}}"
    if fault is not None and fault.kind is FaultKind.MALFORMED_JSON:
        # A proper prefix of a JSON object is never valid JSON: the braces do not close.
        body = body[: len(body) // 2]
    return web.Response(text=body, content_type="application/json")


async def _fail(request: web.Request, fault: TransportFault) -> web.Response | None:
    """The failed answer of a transport fault, or None to answer (after a timeout's wait)."""
    if fault.kind is FaultKind.DOWN:
        return _error(503, "unavailable", "data logger unavailable")
    if fault.kind is FaultKind.HTTP_500:
        return _error(500, "internal_error", "internal error")
    if fault.kind is FaultKind.WRONG_CONTENT:
        return web.Response(text=_WRONG_CONTENT, content_type="text/html")
    if fault.kind is FaultKind.TIMEOUT:
        try:
            await asyncio.wait_for(request.app[CLOSING].wait(), timeout=fault.seconds)
        except TimeoutError:
            return None
        return _error(503, "unavailable", "shutting down")
    return None


async def list_faults(request: web.Request) -> web.Response:
    """``GET /_faults``."""
    sim = request.app[SIMULATOR]
    return _json({"faults": [f.to_json() for f in sim.faults.active()],
                  "rates": sim.rates.nonzero()})


async def add_fault(request: web.Request) -> web.Response:
    """``POST /_faults``."""
    try:
        payload = await request.json()
    except json.JSONDecodeError:
        raise BadParameter("bad_json", "the body is not JSON") from None
    fault = request.app[SIMULATOR].faults.add_json(payload)
    return _json({"fault": fault.to_json()}, status=201)


async def clear_faults(request: web.Request) -> web.Response:
    """``DELETE /_faults``."""
    return _json({"cleared": request.app[SIMULATOR].faults.clear()})


async def remove_fault(request: web.Request) -> web.Response:
    """``DELETE /_faults/{id}``."""
    try:
        fault_id = int(request.match_info["id"])
    except ValueError:
        raise BadParameter("bad_fault_id", "a fault id is an integer") from None
    if not request.app[SIMULATOR].faults.remove(fault_id):
        return _error(404, "unknown_fault", f"no fault {fault_id}")
    return _json({"removed": fault_id})


async def _closing_ctx(app: web.Application) -> AsyncIterator[None]:
    app[CLOSING] = asyncio.Event()
    yield
    app[CLOSING].set()


async def _wake_sleepers(app: web.Application) -> None:
    # Shutdown waits for running handlers before cleanup_ctx resumes; handlers sleeping
    # for a timeout fault must be woken first.
    app[CLOSING].set()


def create_simulator_app(sim: Simulator) -> web.Application:
    """The simulator's aiohttp app serving ``sim`` (no I/O until it is started)."""
    app = web.Application(middlewares=[error_middleware])
    app[SIMULATOR] = sim
    app.cleanup_ctx.append(_closing_ctx)
    app.on_shutdown.append(_wake_sleepers)
    app.router.add_get("/stations", list_stations)
    app.router.add_get("/stations/{code}/hourly", hourly)
    app.router.add_get("/_faults", list_faults)
    app.router.add_post("/_faults", add_fault)
    app.router.add_delete("/_faults", clear_faults)
    app.router.add_delete("/_faults/{id}", remove_fault)
    return app


async def run_simulator(sim: Simulator, host: str = "127.0.0.1",
                        port: int = 8081) -> web.AppRunner:
    """Start the simulator on ``host:port`` (0: any free port); the caller cleans it up."""
    runner = web.AppRunner(create_simulator_app(sim), shutdown_timeout=5.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    log.info("simulator: %d stations on %s", len(sim.stations), simulator_url(runner))
    return runner


def simulator_url(runner: web.AppRunner) -> str:
    """The base URL of a started simulator (useful with port 0)."""
    host, port = runner.addresses[0][:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def simulator_ctx(sim: Simulator, host: str = "127.0.0.1",
                  port: int = 8081) -> Callable[[web.Application], AsyncIterator[None]]:
    """A ``cleanup_ctx`` entry running the simulator for the lifetime of another app."""
    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        runner = await run_simulator(sim, host, port)
        try:
            yield
        finally:
            await runner.cleanup()
    return ctx
