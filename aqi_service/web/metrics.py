"""``GET /metrics`` in the Prometheus text format, and the observer counting requests.

Each application has its own registry (``keys.METRICS``): tests build many apps in one
process. Requests are labelled by route template (``/api/v1/stations/{code}``) or
``unmatched``, never by the raw path.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from prometheus_client import generate_latest

from aqi_service.monitoring.metrics import HTTP_METHODS, UNMATCHED, Metrics
from aqi_service.monitoring.scrape import ScrapeInputs
from aqi_service.monitoring.stats import MonitoringStats
from aqi_service.storage import migrations
from aqi_service.web import keys
from aqi_service.web.snapshot import expected_hour

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The classic text format: every name here is a legacy-valid one, and any Prometheus
reads it."""


def route_of(info: web.UrlMappingMatchInfo) -> str:
    """The template of the route of a request's match ``info``, or ``unmatched``."""
    route = info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else UNMATCHED


_MATCHED = web.UrlMappingMatchInfo


class RequestObserver(AbstractAccessLogger):
    """Counts and times every answered request, by route template, method and status.

    aiohttp calls its access logger once per request, after the last byte of the answer
    (streamed bodies included) with the time taken, and after error answers are final —
    at no cost to the request path, unlike a middleware. The app factory installs it
    through ``handler_args(metrics)``, which binds it to the app's ``Metrics``, so every
    runner (``serve``, tests) uses it. With the ``aqi_service.access`` logger at DEBUG it
    also writes an access line.
    """

    metrics: Metrics
    """The app's instruments (set on the subclass ``handler_args`` makes for each app)."""

    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        super().__init__(logger, log_format)
        self._slots = self.metrics.request_slots
        # One observer per connection: the access line's level is read when it opens.
        self._lines = logger.isEnabledFor(logging.DEBUG)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        try:
            info = request.match_info  # type: ignore[attr-defined]
        except (AttributeError, AssertionError):   # not routed (a malformed request)
            return
        method = request.method
        if method not in HTTP_METHODS:
            method = "other"
        # Matched routes are few and long-lived; every unmatched request is one key.
        key = (info.route if type(info) is _MATCHED else None, method, response.status)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = self.metrics.request_slot(route_of(info), method, key[2])
        slot.record(time, info.get("fmt"))
        if self._lines:
            self.logger.debug("%s %s %d %.1f ms", request.method, request.path,
                              response.status, time * 1000)


ACCESS_LOG = logging.getLogger("aqi_service.access")


def handler_args(metrics: Metrics) -> dict[str, Any]:
    """``web.Application(handler_args=…)`` installing a request observer bound to
    ``metrics`` (aiohttp makes one observer per connection from the class it is given)."""
    observer = type("RequestObserver", (RequestObserver,), {"metrics": metrics})
    return {"access_log_class": observer, "access_log": ACCESS_LOG}


async def scrape_inputs(app: web.Application) -> ScrapeInputs:
    """Ping the database, refresh the cached statistics if stale, read the app's state."""
    metrics = app[keys.METRICS]
    stats = app[keys.MONITORING]
    pool = app.get(keys.POOL)
    store = app.get(keys.SNAPSHOT)
    snapshot = store.current if store is not None else None
    db_version = await stats.ping(pool) if pool is not None else None
    reading = stats.current
    if pool is not None and db_version is not None:
        reading = await stats.fresh(pool, snapshot)
    if metrics.code_version is None:
        metrics.code_version = migrations.latest_version()
    leader = app.get(keys.LEADER)
    schedule = app.get(keys.SCHEDULE)
    now = app[keys.CLOCK]()
    collector = app.get(keys.COLLECTOR)
    health = None
    if collector is not None:
        health = await collector.health.check(pool if db_version is not None else None)
    return ScrapeInputs(
        now=now, expected=expected_hour(now, app[keys.CONFIG]), snapshot=snapshot,
        reading=reading, db_version=db_version, code_version=metrics.code_version, pool=pool,
        leader=leader.is_leader if leader is not None else None,
        scheduler_running=schedule.scheduler.running if schedule is not None else None,
        last_success_event=metrics.last_success_event, health=health)


async def metrics_endpoint(request: web.Request) -> web.Response:
    """The metrics of this instance (Prometheus text exposition format 0.0.4)."""
    metrics = request.app[keys.METRICS]
    metrics.scrape.inputs = await scrape_inputs(request.app)
    body = generate_latest(metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE,
                                            "Cache-Control": "no-store"})


def setup_metrics(app: web.Application) -> None:
    """``/metrics`` and the monitoring statistics of the app's registry (``keys.METRICS``,
    made with the app; requests are counted by ``RequestObserver``)."""
    cfg = app[keys.CONFIG]
    metrics = app[keys.METRICS]
    app[keys.MONITORING] = MonitoringStats(cfg, metrics, app[keys.CLOCK])
    app.router.add_get("/metrics", metrics_endpoint)
