"""The embeddable widget over real HTTP: widget.js (size, caching) and the script-free iframe."""

from __future__ import annotations

import gzip
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from browser_support import Service

from aqi_service.web import keys

pytestmark = pytest.mark.db

SCRIPT = Path(__file__).resolve().parent.parent / "aqi_service" / "web" / "static" / "widget.js"
# HJ 633 Table 2: AQI ranges, categories (zh, en) and level classes.
LEVELS = [(50, "优", "Excellent"), (100, "良", "Good"), (150, "轻度污染", "Lightly polluted"),
          (200, "中度污染", "Moderately polluted"), (300, "重度污染", "Heavily polluted"),
          (500, "严重污染", "Severely polluted")]
# Collection at HH:05, published 10 minutes later: at 10:20 (Asia/Shanghai) the next hour
# is expected at 11:15.
NEXT_EXPECTED = datetime(2026, 11, 20, 3, 15, tzinfo=UTC)
JITTER = (15, 120)


def level_of(aqi: int) -> tuple[int, str, str]:
    for number, (top, zh, en) in enumerate(LEVELS, start=1):
        if aqi <= top:
            return number, zh, en
    raise AssertionError(aqi)


async def latest(service: Service, code: str | None) -> asyncpg.Record:
    """The newest stored hourly record of a station (or the city), read independently."""
    conn = await asyncpg.connect(service.app[keys.DSN])
    try:
        if code is None:
            return await conn.fetchrow("SELECT hour_end, aqi FROM city_hourly "
                                       "ORDER BY hour_end DESC LIMIT 1")
        return await conn.fetchrow("SELECT hour_end, aqi FROM station_hourly "
                                   "WHERE station_code = $1 ORDER BY hour_end DESC LIMIT 1", code)
    finally:
        await conn.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
        yield s


async def test_widget_js_is_small_cached_cors_and_gzipped(
        service: Service, http: aiohttp.ClientSession) -> None:
    resp = await http.get(service.url + "/widget.js", headers={"Accept-Encoding": "gzip"})
    assert resp.status == 200
    served = await resp.read()
    assert served == SCRIPT.read_bytes()
    assert len(gzip.compress(served, compresslevel=9)) < 8 * 1024
    assert resp.headers["Content-Encoding"] == "gzip"
    assert resp.headers["Content-Type"] == "application/javascript; charset=utf-8"
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "max-age=3600" in resp.headers["Cache-Control"]
    assert "Accept-Encoding" in resp.headers["Vary"]
    etag = resp.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    again = await http.get(service.url + "/widget.js", headers={"If-None-Match": etag})
    assert again.status == 304
    assert again.headers["ETag"] == etag
    assert await again.read() == b""
    plain = await http.get(service.url + "/widget.js", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert await plain.read() == served


async def test_widget_js_gzipped_bytes_on_the_wire(service: Service) -> None:
    async with aiohttp.ClientSession(auto_decompress=False) as raw:
        resp = await raw.get(service.url + "/widget.js", headers={"Accept-Encoding": "gzip"})
        wire = await resp.read()
    assert len(wire) < 8 * 1024
    assert gzip.decompress(wire) == SCRIPT.read_bytes()
    assert int(resp.headers["Content-Length"]) == len(wire)
    async with aiohttp.ClientSession(auto_decompress=False) as raw:   # gzip refused: q=0
        resp = await raw.get(service.url + "/widget.js",
                             headers={"Accept-Encoding": "gzip;q=0, deflate"})
        assert "Content-Encoding" not in resp.headers
        assert await resp.read() == SCRIPT.read_bytes()


def test_widget_js_has_no_eval_inline_handlers_or_html_injection() -> None:
    source = SCRIPT.read_text()
    for banned in ("eval(", "new Function", "innerHTML", "outerHTML", "document.write",
                   'setAttribute("on', "setAttribute('on", "setTimeout(\"", "setTimeout('"):
        assert banned not in source, banned
    assert "attachShadow" in source
    assert "next_expected_at" in source


def _meta_refresh(html: str) -> int:
    found = re.findall(r'<meta http-equiv="refresh" content="(\d+)">', html)
    assert len(found) == 1, html
    return int(found[0])


async def test_iframe_page_of_a_station(service: Service, http: aiohttp.ClientSession) -> None:
    stored = await latest(service, "LF01")
    level, zh, _ = level_of(stored["aqi"])
    resp = await http.get(service.url + "/widget/LF01")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "style-src 'self'" in csp
    assert "frame-ancestors *" in csp and "script-src" not in csp
    assert "X-Frame-Options" not in resp.headers
    html = await resp.text()
    assert "<script" not in html.lower()
    assert " style=" not in html.lower() and "<style" not in html.lower()
    assert '<html lang="zh-CN">' in html
    assert f'data-aqi="{stored["aqi"]}">{stored["aqi"]}</span>' in html
    assert f'<span class="aqiw-cat">{zh}</span>' in html
    assert f'class="aqiw lvl-{level}"' in html
    assert "广阳区" in html and 'href="/stations/LF01"' in html
    local = stored["hour_end"].astimezone(timezone(timedelta(hours=8)))
    assert f'datetime="{local.isoformat()}">{local:%m-%d %H:%M}</time>' in html
    assert "北京时间" in html and "数据延迟" not in html
    assert 'role="region"' in html
    # The meta refresh comes shortly after the next expected hour (a random jitter).
    until = (NEXT_EXPECTED - service.clock()).total_seconds()
    assert until == 55 * 60
    assert until + JITTER[0] <= _meta_refresh(html) <= until + JITTER[1]
    assert service.now_json()["next_expected_at"] == "2026-11-20T11:15:00+08:00"
    assert re.fullmatch(r"public, max-age=(\d+)", resp.headers["Cache-Control"])
    assert int(resp.headers["Cache-Control"].split("=")[1]) <= 60


async def test_iframe_page_of_the_city_in_english(
        service: Service, http: aiohttp.ClientSession) -> None:
    stored = await latest(service, None)
    level, _, en = level_of(stored["aqi"])
    html = await (await http.get(service.url + "/widget/city?lang=en")).text()
    assert '<html lang="en">' in html
    assert f'data-aqi="{stored["aqi"]}">{stored["aqi"]}</span>' in html
    assert f'<span class="aqiw-cat">{en}</span>' in html
    assert f'class="aqiw lvl-{level}"' in html
    assert "Langfang" in html and "Primary pollutant: " in html and "Hour ending" in html
    assert 'href="/?lang=en"' in html
    by_header = await http.get(service.url + "/widget/city",
                               headers={"Accept-Language": "en-US,en;q=0.9"})
    assert by_header.headers["Content-Language"] == "en"
    assert "Accept-Language" in by_header.headers["Vary"]
    zh = await (await http.get(service.url + "/widget/city?lang=zh")).text()
    assert "廊坊市" in zh and "首要污染物：" in zh


async def test_transparent_option_and_its_stylesheet(
        service: Service, http: aiohttp.ClientSession) -> None:
    opaque = await (await http.get(service.url + "/widget/LF02")).text()
    clear = await (await http.get(service.url + "/widget/LF02?transparent=1")).text()
    assert '<body class="aqiw-frame">' in opaque
    assert '<body class="aqiw-frame aqiw-transparent">' in clear
    href = re.search(r'<link rel="stylesheet" href="([^"]+)">', clear).group(1)
    assert href.startswith("/static/widget-frame.css")
    css = await http.get(service.url + href)
    assert css.status == 200 and css.content_type == "text/css"
    text = await css.text()
    assert re.search(r"body\.aqiw-transparent \{ background: transparent; \}", text)
    for level in range(1, 7):
        assert f".lvl-{level} .aqiw-badge" in text


@pytest.mark.parametrize("path", [
    "/widget/NOPE", "/widget/LF99", "/widget/%27%3B%20DROP%20TABLE%20stations%3B--",
    "/widget/" + "x" * 300, "/widget/%3Cscript%3E",
])
async def test_unknown_station_is_a_404_page(
        service: Service, http: aiohttp.ClientSession, path: str) -> None:
    resp = await http.get(service.url + path)
    assert resp.status == 404
    assert resp.content_type == "text/html"
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    html = await resp.text()
    assert "未知站点" in html and "<script" not in html.lower()


@pytest.mark.parametrize(("query", "parameter"), [
    ("lang=fr", "lang"), ("lang=en&lang=zh", "lang"), ("transparent=yes", "transparent"),
    ("transparent=1&transparent=1", "transparent"), ("lang=%3Cscript%3E", "lang"),
    ("transparent=" + "1" * 500, "transparent"),
])
async def test_bad_parameters_are_a_400_page(
        service: Service, http: aiohttp.ClientSession, query: str, parameter: str) -> None:
    resp = await http.get(service.url + "/widget/LF01?" + query)
    assert resp.status == 400
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    html = await resp.text()
    assert f"<code>{parameter}</code>" in html
    assert "<script" not in html.lower()


async def test_late_data_are_marked_as_delayed(
        service: Service, http: aiohttp.ClientSession) -> None:
    fresh = await (await http.get(service.url + "/widget/LF03")).text()
    assert "数据延迟" not in fresh and "aqiw-stale" not in fresh
    # The clock passes the expected hour by more than the grace period, the snapshot not
    # yet rebuilt: the page itself notices.
    service.clock.now = NEXT_EXPECTED + timedelta(minutes=11)
    late = await (await http.get(service.url + "/widget/LF03")).text()
    assert "数据延迟" in late and "aqiw-stale" in late
    assert _meta_refresh(late) in range(300 + JITTER[0], 300 + JITTER[1] + 1)
    # Rebuilt at 12:20 with no collection since 10:20: the stations are late (the newest
    # hour, 10:00, is two hours behind the expected 12:00), and so is the city.
    service.clock.now = datetime(2026, 11, 20, 4, 20, tzinfo=UTC)
    await service.advance(timedelta(0))
    assert service.now_json()["stations"][2]["status"] == "late"
    late = await (await http.get(service.url + "/widget/LF03")).text()
    assert "数据延迟" in late and "站点未报送" not in late
    city = await (await http.get(service.url + "/widget/city")).text()
    assert "数据延迟" in city and "aqiw-stale" in city
    # At 13:20 three hours are missing: the station is not reporting.
    await service.advance(timedelta(hours=1))
    assert service.now_json()["stations"][2]["status"] == "missing"
    station = await (await http.get(service.url + "/widget/LF03?lang=en")).text()
    assert "Data delayed · station not reporting" in station
