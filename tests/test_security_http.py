"""HTTP-level security over real loopback connections: absolute links from configuration
only (never from ``Host``), ``If-Range`` by RFC 9110 §13.1.5, and slow clients bounded by
the header and body read timeouts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from aqi_service.config import Config
from aqi_service.web.app import create_app

pytestmark = pytest.mark.db
A = "{http://www.w3.org/2005/Atom}"
EVIL = "evil.example"


def _links(feed: bytes) -> list[str]:
    root = ET.fromstring(feed)
    return [el.get("href", "") for el in root.iter(f"{A}link")]


async def _absolute_links(client: TestClient) -> list[str]:
    """Every absolute link of the feed, the downloads page and the CSVW metadata, asked
    for with a forged Host header."""
    forged = {"Host": EVIL, "X-Forwarded-Host": EVIL}
    feed = await client.get("/disclosures.atom", headers=forged)
    assert feed.status == 200
    links = _links(await feed.read())
    page = await (await client.get("/downloads", headers=forged)).text()
    meta = await (await client.get("/api/v1/download/hourly.csv-metadata.json",
                                   headers=forged)).text()
    assert EVIL not in page and EVIL not in meta
    return [*links, meta]


async def test_absolute_links_come_from_configuration_not_the_host_header(
        config: Config, clock: Any, tmp_path: Path) -> None:
    cfg = config.replace(disclosure={"seed_sample_data": True})
    async with TestClient(TestServer(create_app(cfg, scheduler=False, clock=clock))) as c:
        links = await _absolute_links(c)
        own = f"http://127.0.0.1:{c.server.port}/"
        assert len(links) > 3 and all(link.startswith(own) for link in links[:-1]), links
        assert own + "api/v1/download/hourly.csv" in links[-1]
    cfg = cfg.replace(http={"public_url": "https://aqi.example.gov.cn/"})
    async with TestClient(TestServer(create_app(cfg, scheduler=False, clock=clock))) as c:
        links = await _absolute_links(c)
        assert all(link.startswith("https://aqi.example.gov.cn/disclosures")
                   for link in links[:-1]), links
        assert "https://aqi.example.gov.cn/api/v1/download/hourly.csv" in links[-1]
        page = await (await c.get("/downloads")).text()
        assert "https://aqi.example.gov.cn/widget.js" in page
