"""The service's instruments on one ``CollectorRegistry`` per application.

Names follow Prometheus conventions: base units (seconds), ``_total`` on counters, labels
with bounded values only — station codes from the configuration, route templates, outcome
and reason codes from the code — never a raw path, a client or a free text.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.gc_collector import GCCollector

from aqi_service import __version__
from aqi_service.collect.collector import RunSummary
from aqi_service.config import Config
from aqi_service.monitoring.http import HttpStats, RequestSlot
from aqi_service.monitoring.scrape import ServiceCollector

POLL_OUTCOMES = ("ok", "rejected", "bad_payload", "timeout", "connection", "http_5xx",
                 "http_4xx", "malformed_json", "too_large")
"""Poll outcomes created at zero for every city station, so that the first failure of a
kind is an increase Prometheus can see (a series born at 1 has no increase)."""
SUCCESSFUL_RUNS = ("ok", "partial")
RUN_STATUSES = ("ok", "partial", "failed", "abandoned")
RUN_TRIGGERS = ("scheduled", "catch-up", "startup", "initial", "retry")
"""Triggers whose runs are counted from zero by status (a first failure is an increase)."""
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
DOWNLOAD_FORMATS = frozenset({"csv", "jsonl", "parquet"})
DOWNLOAD_ROUTE = "/api/v1/download/hourly.{fmt}"
MONTHLY_PREFIX = "/api/v1/download/monthly/"
STATEMENT_KINDS = frozenset({"select", "insert", "update", "delete", "copy", "with"})
UNMATCHED = "unmatched"
"""The route label of a request that matched no route (any path: one series)."""

_POLL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_RUN_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)
_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """Every instrument of one application, and the hooks that move them.

    Implements the collector's ``CollectorEvents`` and the schedule's ``on_event``.
    """

    def __init__(self, cfg: Config) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        ProcessCollector(registry=reg)
        PlatformCollector(registry=reg)
        GCCollector(registry=reg)
        self.scrape = ServiceCollector()
        """The scrape-time gauges (stations, city, freshness, pool, leader)."""
        reg.register(self.scrape)
        self.code_version: int | None = None
        """Latest migration the code ships (read once, at the first scrape)."""
        Gauge("aqi_build_info", "Version of the running service (value 1)",
              ["version", "python"], registry=reg).labels(
                  __version__, platform.python_version()).set(1)

        self.polls = Counter(
            "aqi_collector_polls", "Station polls by outcome (ok, timeout, http_5xx, …)",
            ["station", "outcome"], registry=reg)
        self.poll_duration = Histogram(
            "aqi_collector_poll_duration_seconds",
            "Time to poll one station (retries and chunks included)",
            buckets=_POLL_BUCKETS, registry=reg)
        self.observations = Counter(
            "aqi_collector_observations_ingested",
            "Observed values stored or changed by collections", registry=reg)
        self.rejected = Counter(
            "aqi_collector_rejected_values", "Values refused by validation, by reason",
            ["station", "reason"], registry=reg)
        self.backfilled = Counter(
            "aqi_collector_backfilled_hours",
            "Station-hours filled in after they were due (outages caught up)", registry=reg)
        self.revisions = Counter(
            "aqi_collector_revisions",
            "Changes to published records made by later collections (see /api/v1/revisions)",
            registry=reg)
        self.runs = Counter(
            "aqi_collector_runs",
            "Collection runs by trigger and status (ok/partial/failed/abandoned)",
            ["trigger", "status"], registry=reg)
        self.run_duration = Histogram(
            "aqi_collector_run_duration_seconds", "Duration of a whole collection run",
            buckets=_RUN_BUCKETS, registry=reg)
        self.last_success_event = 0.0
        """Wall-clock time of this process's last ok/partial run (0: none yet)."""

        self.jobs = Counter(
            "aqi_scheduler_job_runs", "Scheduled job runs by outcome (ok, skipped, error, missed)",
            ["job", "outcome"], registry=reg)
        self.misfires = Counter(
            "aqi_scheduler_misfires", "Job runs missed (not started within the grace time)",
            ["job"], registry=reg)

        self.http = HttpStats(_HTTP_BUCKETS)
        """Requests and their latency (counted without locks; exposed at scrape time)."""
        reg.register(self.http)
        self.request_slots: dict[Any, RequestSlot] = {}
        """The request observer's ``request_slot`` per kind of request, under its own keys."""
        self.widget = Counter(
            "aqi_widget_requests", "Widget loads answered (script, or the iframe page)",
            ["kind"], registry=reg)
        self.downloads = Counter(
            "aqi_downloads", "Research downloads answered, by data set and format",
            ["dataset", "format"], registry=reg)

        self.db_query = Histogram(
            "aqi_db_query_duration_seconds",
            "Latency of database statements: every one on the pool by kind (select, insert, "
            "update, delete, copy, with, other) and the monitoring's own (ping, statistics)",
            ["query"], buckets=_DB_BUCKETS, registry=reg)

        self.db_errors = Counter(
            "aqi_db_query_errors", "Database statements that failed, by exception class",
            ["error"], registry=reg)
        self.db_embedded_restarts = Counter(
            "aqi_db_embedded_restarts", "Restarts of the embedded PostgreSQL after its "
            "postmaster died", registry=reg)
        self.db_embedded_up = Gauge(
            "aqi_db_embedded_up", "1 while the embedded PostgreSQL runs, 0 while it is down "
            "or restarting", registry=reg) if cfg.database.embedded else None

        self.fast_path_disabled = Gauge(
            "aqi_http_fast_path_disabled", "1 when /api/v1/now is answered through aiohttp's "
            "ordinary path because this aiohttp lacks what the prepared answers need",
            registry=reg)

        for st in cfg.stations:
            for outcome in POLL_OUTCOMES:
                self.polls.labels(st.code, outcome)
        for trigger in RUN_TRIGGERS:
            for status in RUN_STATUSES:
                self.runs.labels(trigger, status)
        for kind in ("script", "frame"):
            self.widget.labels(kind)
        for fmt in sorted(DOWNLOAD_FORMATS):
            self.downloads.labels("hourly", fmt)
        self.downloads.labels("monthly", "csv.gz")

    # CollectorEvents
    def poll_finished(self, station: str, outcome: str, duration_s: float) -> None:
        """One station polled."""
        self.polls.labels(station, outcome).inc()
        self.poll_duration.observe(duration_s)

    def values_rejected(self, station: str, reason: str, count: int) -> None:
        """Values of one station refused for one reason."""
        self.rejected.labels(station, reason).inc(count)

    def run_finished(self, summary: RunSummary) -> None:
        """A collection run ended."""
        self.runs.labels(summary.trigger, summary.status).inc()
        self.run_duration.observe(summary.duration_s)
        self.observations.inc(summary.observations)
        self.backfilled.inc(summary.backfilled)
        self.revisions.inc(summary.revisions)
        if summary.status in SUCCESSFUL_RUNS:
            self.last_success_event = time.time()

    def runs_abandoned(self, triggers: Sequence[str]) -> None:
        """Runs left 'running' by a process that is gone were closed."""
        for trigger in triggers:
            self.runs.labels(trigger, "abandoned").inc()

    # Schedule.on_event
    def job_event(self, job: str, outcome: str) -> None:
        """A scheduled job ran, was skipped (not the leader), failed or was missed."""
        self.jobs.labels(job, outcome).inc()
        if outcome == "missed":
            self.misfires.labels(job).inc()

    # Database (asyncpg's query logger on every pool connection)
    def query_logged(self, record: Any) -> None:
        """One statement finished on a pool connection (``asyncpg.connection.LoggedQuery``)."""
        words = record.query.lstrip().split(None, 1)
        kind = words[0].lower() if words else ""
        self.db_query.labels(kind if kind in STATEMENT_KINDS else "other").observe(
            record.elapsed)
        if record.exception is not None:
            self.db_errors.labels(type(record.exception).__name__
                                  if isinstance(record.exception, Exception) else "other").inc()

    # HTTP
    def request_slot(self, route: str, method: str, status: int) -> RequestSlot:
        """What one kind of request (route template, method, status) moves; the request
        observer keeps it, so that counting a request is a look-up and two additions."""
        method = method if method in HTTP_METHODS else "other"
        counts: Callable[[str | None], None] | None = None
        if status < 400:
            if route == "/widget.js":
                counts = _inc(self.widget.labels("script"))
            elif route.startswith("/widget/"):
                counts = _inc(self.widget.labels("frame"))
            elif method == "GET" and route == DOWNLOAD_ROUTE:
                by_format = {fmt: self.downloads.labels("hourly", fmt)
                             for fmt in (*DOWNLOAD_FORMATS, "other")}

                def counts(fmt: str | None) -> None:
                    by_format[fmt if fmt in DOWNLOAD_FORMATS else "other"].inc()
            elif method == "GET" and route.startswith(MONTHLY_PREFIX):
                counts = _inc(self.downloads.labels("monthly", "csv.gz"))
        return self.http.slot(route, method, status, counts)


def _inc(counter: Any) -> Callable[[str | None], None]:
    return lambda _fmt: counter.inc()
