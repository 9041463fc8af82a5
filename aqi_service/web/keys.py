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
    from aqi_service.collect.scheduler import Leader, Schedule  # noqa: F401
    from aqi_service.web.snapshot import SnapshotStore  # noqa: F401

CONFIG = web.AppKey("config", Config)
EXTRA_STATIONS = web.AppKey("extra_stations", list)
CLOCK = web.AppKey("clock", Callable[[], datetime])
POOL = web.AppKey("pool", asyncpg.Pool)
DSN = web.AppKey("dsn", str)
CLIENT = web.AppKey("client", aiohttp.ClientSession)
SIMULATOR_URL = web.AppKey("simulator_url", str)
COLLECTOR = web.AppKey("collector", "Collector")
LEADER = web.AppKey("leader", "Leader")
SCHEDULE = web.AppKey("schedule", "Schedule")
SNAPSHOT = web.AppKey("snapshot", "SnapshotStore")
MIGRATION_VERSION = web.AppKey("migration_version", int)
