"""HTTP-level security over real loopback connections: absolute links from configuration
only (never from ``Host``), ``If-Range`` by RFC 9110 §13.1.5, and slow clients bounded by
the header and body read timeouts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime
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


async def _if_range_cases(client: TestClient, url: str, headers: dict[str, str]) -> None:
    """RFC 9110 §13.1.5 against a file answer: the range only for a matching validator."""
    whole = await client.get(url, headers=headers)
    assert whole.status == 200
    body = await whole.read()
    etag, modified = whole.headers["ETag"], whole.headers["Last-Modified"]
    assert etag.startswith('"') and len(body) > 20
    stamp = parsedate_to_datetime(modified)
    cases = [
        (None, 206),                                 # no condition: the range
        (etag, 206),                                 # strong match
        (modified, 206),                             # the exact Last-Modified date
        ('"0-0"', 200),                              # another entity tag
        ("W/" + etag, 200),                          # weak: never matches
        (format_datetime(stamp - timedelta(seconds=1), usegmt=True), 200),
        (format_datetime(stamp + timedelta(days=1), usegmt=True), 200),  # not equal
        ("yesterday", 200),                          # neither a tag nor a date
    ]
    for if_range, expected in cases:
        extra = {"Range": "bytes=0-9", **({"If-Range": if_range} if if_range else {})}
        resp = await client.get(url, headers={**headers, **extra})
        got = await resp.read()
        assert resp.status == expected, (if_range, resp.status)
        if expected == 206:
            assert got == body[:10]
            assert resp.headers["Content-Range"] == f"bytes 0-9/{len(body)}"
        else:
            assert got == body and "Content-Range" not in resp.headers
    # If-Range without Range changes nothing
    resp = await client.get(url, headers={**headers, "If-Range": '"0-0"'})
    assert resp.status == 200 and await resp.read() == body


async def test_if_range_follows_rfc_9110_on_attachments_and_static_files(
        config: Config, clock: Any, tmp_path: Path) -> None:
    from attachments_support import UPLOAD, form
    from disclosure_support import admin_config, bearer, minter

    from aqi_service.disclosure.seed import sample_pdf

    app = create_app(admin_config(config, tmp_path), scheduler=False, clock=clock)
    async with TestClient(TestServer(app)) as client:
        h = bearer(await minter(client)("disclosures:write"))
        resp = await client.post(UPLOAD, headers=h, data=form(
            "a.pdf", "application/pdf", sample_pdf(["If-Range"])))
        assert resp.status == 201, await resp.text()
        await _if_range_cases(client, (await resp.json())["url"], h)
        await _if_range_cases(client, "/static/widget.js", {})
