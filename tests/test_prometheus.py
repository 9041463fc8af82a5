"""A real Prometheus scrapes the running service and evaluates the shipped alert rules.

Prometheus (Debian's ``/usr/bin/prometheus``) runs on a free loopback port with a
temporary configuration and storage, scraping every second. The alert rules are those of
``deploy/prometheus/alerts.yml`` with every ``for:`` shortened to one second; their
thresholds are unchanged, and the service's clock is moved on three hours while one
station stays silent, so the silent-station alert must fire for that station alone.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from process_support import free_port
from service_support import small, wait_for

from aqi_service.config import Config
from aqi_service.web import keys
from aqi_service.web.app import create_app, refresh_snapshot

PROMETHEUS = shutil.which("prometheus")
REPO = Path(__file__).resolve().parent.parent
HOUR_S = 3600
BUDGET_S = 60

pytestmark = [
    pytest.mark.db, pytest.mark.slow,
    pytest.mark.skipif(PROMETHEUS is None,
                       reason="prometheus not installed (Debian package 'prometheus'; "
                              "scripts/test installs it when run as root)"),
]


def shortened_rules(tmp_path: Path) -> Path:
    """alerts.yml with every ``for:`` at 1 s (thresholds unchanged)."""
    doc = yaml.safe_load((REPO / "deploy" / "prometheus" / "alerts.yml").read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "1s"
    path = tmp_path / "alerts.yml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path



class Prometheus:
    """A Prometheus process scraping one target."""

    def __init__(self, tmp_path: Path, target: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = tmp_path
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                       "evaluation_interval": "1s"},
            "rule_files": [str(shortened_rules(tmp_path))],
            "scrape_configs": [{"job_name": "aqi-service",
                                "static_configs": [{"targets": [target]}]}],
        }
        self.config = tmp_path / "prometheus.yml"
        self.config.write_text(json.dumps(config))  # JSON is YAML
        self.log = tmp_path / "prometheus.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        assert PROMETHEUS is not None
        self.proc = await asyncio.create_subprocess_exec(
            PROMETHEUS, f"--config.file={self.config}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn",
            stdout=asyncio.subprocess.DEVNULL, stderr=self.log.open("wb"))

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    async def api(self, session: aiohttp.ClientSession, path: str,
                  **params: str) -> Any:
        """``data`` of an HTTP API answer (None while Prometheus is not up yet)."""
        try:
            async with session.get(self.url + path, params=params) as resp:
                if resp.status != 200:
                    return None
                body = await resp.json()
        except aiohttp.ClientError:
            return None
        assert body["status"] == "success", body
        return body["data"]


@pytest.fixture
async def service(config: Config, clock) -> AsyncIterator[tuple[web.AppRunner, str]]:
    """The service on a real loopback port, after its start-up back-fill."""
    runner = web.AppRunner(create_app(small(config), clock=clock))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    app = runner.app

    async def ready() -> bool:
        snap = app[keys.SNAPSHOT].current
        return snap is not None and snap.data["data_as_of"] is not None
    try:
        await wait_for(ready)
        yield runner, f"{host}:{port}"
    finally:
        await runner.cleanup()


async def test_prometheus_scrapes_the_stations_and_alerts_on_a_silent_one(
        service: tuple[web.AppRunner, str], clock, tmp_path: Path,
        http_session: aiohttp.ClientSession) -> None:
    started = time.monotonic()
    runner, target = service
    app = runner.app
    prom = Prometheus(tmp_path, target)
    await prom.start()
    try:
        now = await (await http_session.get(f"http://{target}/api/v1/now")).json()
        shown = {s["station_code"]: s["aqi"] for s in now["stations"]}
        assert len(shown) == 11

        async def station_series() -> bool:
            data = await prom.api(http_session, "/api/v1/query", query="aqi_station_aqi")
            return bool(data) and len(data["result"]) == 11
        await wait_for(station_series, timeout=30)
        data = await prom.api(http_session, "/api/v1/query", query="aqi_station_aqi")
        got = {r["metric"]["station"]: int(float(r["value"][1])) for r in data["result"]}
        assert got == shown
        assert {r["metric"]["job"] for r in data["result"]} == {"aqi-service"}
        up = await prom.api(http_session, "/api/v1/query", query='up{job="aqi-service"}')
        assert [r["value"][1] for r in up["result"]] == ["1"]
        alerts = await prom.api(http_session, "/api/v1/alerts")
        assert not [a for a in alerts["alerts"] if a["labels"]["alertname"] == "AqiStationSilent"]

        # LF05 falls silent; three hours later every other station has reported them.
        async with http_session.post(f"{app[keys.SIMULATOR_URL]}/_faults",
                                     json={"station": "LF05", "kind": "silent"}) as resp:
            assert resp.status in (200, 201)
        clock.now += timedelta(hours=3)
        await app[keys.COLLECTOR].run("test")
        await refresh_snapshot(app, clock)

        async def silent_alert_fires() -> bool:
            data = await prom.api(http_session, "/api/v1/alerts")
            return any(a["labels"]["alertname"] == "AqiStationSilent"
                       and a["state"] == "firing" for a in (data or {}).get("alerts", []))
        await wait_for(silent_alert_fires, timeout=30)
        alerts = (await prom.api(http_session, "/api/v1/alerts"))["alerts"]
        silent = [a for a in alerts if a["labels"]["alertname"] == "AqiStationSilent"]
        assert [a["labels"]["station"] for a in silent] == ["LF05"]
        assert silent[0]["labels"]["severity"] == "warning"
        assert silent[0]["annotations"]["summary"] == "Station LF05 silent for over 2 hours"
        assert float(silent[0]["value"]) > 2 * HOUR_S
        age = await prom.api(http_session, "/api/v1/query",
                             query='aqi_station_data_age_seconds{station="LF05"}')
        assert float(age["result"][0]["value"][1]) == 3 * HOUR_S + 20 * 60
    finally:
        await prom.stop()
    assert time.monotonic() - started < BUDGET_S
