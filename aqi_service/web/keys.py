"""Every ``web.AppKey`` of the application, in one place."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import aiohttp
import asyncpg
from aiohttp import web

from aqi_service.config import Config

if TYPE_CHECKING:
    from aqi_service.collect.collector import Collector  # noqa: F401
    from aqi_service.collect.health import SingleProbe  # noqa: F401
    from aqi_service.collect.scheduler import Leader, Schedule  # noqa: F401
    from aqi_service.storage.supervisor import EmbeddedSupervisor  # noqa: F401
    from aqi_service.web.snapshot import SnapshotStore  # noqa: F401
    from aqi_service.web.widget import WidgetScript  # noqa: F401

CONFIG = web.AppKey("config", Config)
EXTRA_STATIONS = web.AppKey("extra_stations", list)
CLOCK = web.AppKey("clock", Callable[[], datetime])
POOL = web.AppKey("pool", asyncpg.Pool)
DSN = web.AppKey("dsn", str)
CLIENT = web.AppKey("client", aiohttp.ClientSession)
SIMULATOR_URL = web.AppKey("simulator_url", str)
COLLECTOR = web.AppKey("collector", "Collector")
LEADER = web.AppKey("leader", "Leader")
MIGRATION_PROBE = web.AppKey("migration_probe", "SingleProbe")
"""The readiness check's migration probe (one in flight at a time)."""
SCHEDULE = web.AppKey("schedule", "Schedule")
SNAPSHOT = web.AppKey("snapshot", "SnapshotStore")
MIGRATION_VERSION = web.AppKey("migration_version", int)
EMBEDDED = web.AppKey("embedded", "EmbeddedSupervisor")
"""The embedded PostgreSQL's supervisor (absent on an external database); ``.up`` is False
while its postmaster is down or restarting."""
WIDGET_SCRIPT = web.AppKey("widget_script", "WidgetScript")
METRICS = web.AppKey("metrics", "Metrics")
MONITORING = web.AppKey("monitoring", "MonitoringStats")
PAGE_CACHE = web.AppKey("page_cache", dict)
DOWNLOAD_SLOTS = web.AppKey("download_slots", "Slots")
"""Bound on concurrent streaming downloads (``downloads.Slots``)."""
MONTHLY_CACHE = web.AppKey("monthly_cache", "MonthlyCache")
"""Generated monthly files (``monthly.MonthlyCache``)."""
ATTACHMENTS = web.AppKey("attachments", "AttachmentStore")
"""Uploaded files on disk (``attachments.AttachmentStore``)."""
DISCLOSURE_CATALOG = web.AppKey("disclosure_catalog", "Catalog")
"""The disclosure catalogue loaded from its TOML file (``disclosure.catalog.Catalog``)."""
ADMIN_GUARD = web.AppKey("admin_guard", "AdminGuard")
"""Bearer-token checks and the failure rate limit of the admin API (``admin_auth``)."""
ADMIN_PRINCIPAL = web.RequestKey("admin_principal", "Principal")
"""The authenticated token of an admin request (``admin_auth.Principal``)."""
