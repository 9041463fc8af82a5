"""CNEMC's published hours for the history-import tests: the archive files, their rows, the
import of one file, and the web (no collection) that serves what was imported."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from aqi_service.aqi.schemes import SHANGHAI
from aqi_service.collect.history import run_history_import
from aqi_service.config import Config
from aqi_service.storage import stations
from aqi_service.web.app import create_app

DATA = Path(__file__).resolve().parent / "data" / "cnemc"
LAST_2012 = DATA / "2026-03-01T00.csv"
"""Every station's last HJ 633-2012 hour (2026-03-01 00:00)."""
FIRST_2026 = DATA / "2026-03-01T01.csv"
"""Every station's first HJ 633-2026 hour (2026-03-01 01:00)."""
NOW = datetime(2026, 11, 20, 2, 20, tzinfo=UTC)
"""The time of the imports (the clock fixture's time)."""


def published(path: Path) -> list[dict[str, str]]:
    """The rows of a CNEMC archive file, as published (text)."""
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _hour(tp: str) -> datetime:
    """A published ``timepoint`` (Beijing time, hour ending) as an aware datetime."""
    return datetime.fromisoformat(tp).replace(tzinfo=SHANGHAI)


async def _import(conn: asyncpg.Connection, cfg: Config, path: Path, **kw: Any):
    """Import one archive file as the ``import`` command would, at ``NOW``."""
    known = {s.code for s in cfg.stations} | {s["code"] for s in await stations.list_stations(conn)}
    return await run_history_import(conn, path, known, cfg.city.code,
                                    [s.code for s in cfg.stations],
                                    kw.pop("variant", cfg.aqi.hourly_2012), now=NOW, **kw)


@pytest.fixture
async def served(config: Config, clock) -> AsyncIterator[TestClient]:
    """The web (no collection) on the test database."""
    app = create_app(config, scheduler=False, clock=clock)
    async with TestClient(TestServer(app)) as c:
        yield c


async def _hourly(client: TestClient, code: str, first: str, last: str) -> dict[str, dict]:
    """``/api/v1/stations/{code}/hourly`` from ``first`` to ``last``, by time point."""
    resp = await client.get(f"/api/v1/stations/{code}/hourly",
                            params={"from": first, "to": last})
    assert resp.status == 200, await resp.text()
    return {r["time_point"]: r for r in (await resp.json())["records"]}
