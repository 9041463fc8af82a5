"""Real Chromium against the running service: the overview, the widget script embedded on
another origin under a strict CSP, the script-free iframe, delayed data; screenshots of each.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from browser_support import (
    DESKTOP,
    Embedder,
    Service,
    in_both_viewports,
    needs_chromium,
    open_page,
    screenshot,
)
from playwright.async_api import expect

from aqi_service.web import keys
from aqi_service.web.app import refresh_snapshot

pytestmark = [pytest.mark.db, needs_chromium]

CODES = [f"LF{i:02d}" for i in range(1, 12)]
LEVEL_RGB = {1: "rgb(0, 228, 0)", 2: "rgb(255, 255, 0)", 3: "rgb(255, 126, 0)",
             4: "rgb(255, 0, 0)", 5: "rgb(153, 0, 76)", 6: "rgb(126, 0, 35)"}
HOSTILE_CSS = ("body { font-size: 40px; color: #f0f; }\n"
               "p, span, a, time { display: none !important; color: #f0f !important; }\n"
               ".aqiw, .aqiw-aqi, .aqiw-badge { display: none !important; }\n")


def strict_csp(origin: str, *, script: bool) -> dict[str, str]:
    """The embedding site's policy: only the service's origin, nothing inline."""
    rules = ["default-src 'none'", "style-src 'self'", "img-src 'self'",
             f"frame-src {origin}"]
    if script:
        rules += [f"script-src {origin}", f"connect-src {origin}"]
    return {"Content-Security-Policy": "; ".join(rules)}


def host_page(site: Embedder, svc: Service, body: str, *, script: bool,
              lang: str = "zh-CN") -> str:
    """An HTML page on the embedding site's origin with hostile CSS around ``body``."""
    site.page("/host.css", HOSTILE_CSS, {"Content-Type": "text/css"})
    html = (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            '<title>Embedding site</title><link rel="stylesheet" href="/host.css"></head>'
            f"<body><h1>Embedding site</h1>{body}</body></html>")
    return site.page("/embed.html", html, strict_csp(svc.url, script=script))


async def test_overview_lists_the_eleven_stations(
        browser, service: Service, request) -> None:
    async def check(page) -> None:
        resp = await page.goto(service.url + "/")
        assert resp.status == 200
        rows = page.locator("tr[data-station]")
        await expect(rows).to_have_count(11)
        assert sorted([await r.get_attribute("data-station") for r in await rows.all()]) == CODES

    await in_both_viewports(browser, request.node.name, check, at=service.clock())


async def test_script_widget_on_another_origin_shows_the_published_aqi(
        browser, service: Service, embedder: Embedder, request) -> None:
    now = service.now_json()
    lf01 = next(s for s in now["stations"] if s["station_code"] == "LF01")
    lf02 = next(s for s in now["stations"] if s["station_code"] == "LF02")
    city = now["city"]
    url = host_page(embedder, service, (
        '<div data-aqi-station="LF01"></div><div data-aqi-city></div>'
        '<div data-aqi-station="LF02" data-lang="en"></div>'
        f'<script src="{service.url}/widget.js" async></script>'), script=True)
    assert embedder.url.split(":")[-1] != service.url.split(":")[-1]

    async def check(page) -> None:
        await page.goto(url)
        station = page.locator('[data-aqi-station="LF01"]')
        await expect(station.locator(".aqiw-aqi")).to_have_text(str(lf01["aqi"]))
        await expect(station.locator(".aqiw-cat")).to_have_text(lf01["category"])
        await expect(station.locator(".aqiw-aqi")).to_be_visible()
        await expect(station.locator(".aqiw-badge")).to_have_css(
            "background-color", LEVEL_RGB[lf01["level"]])
        await expect(station.locator(".aqiw-place a")).to_have_text("广阳区")
        await expect(station.locator(".aqiw-place a")).to_have_attribute(
            "href", service.url + "/stations/LF01")
        hour = lf01["time_point"]
        await expect(station.locator(".aqiw-time time")).to_have_text(
            f"北京时间 {hour[5:10]} {hour[11:16]} 止的小时值")
        await expect(station.locator('[role="region"]')).to_have_attribute(
            "aria-label", "空气质量：广阳区")
        await expect(station.locator('[aria-live="polite"]')).to_have_count(1)
        await expect(station.locator(".aqiw-note")).to_be_hidden()
        await expect(station).to_have_attribute("data-aqi-state", "ok")
        town = page.locator("[data-aqi-city]")
        await expect(town.locator(".aqiw-aqi")).to_have_text(str(city["aqi"]))
        await expect(town.locator(".aqiw-cat")).to_have_text(city["category"])
        await expect(town.locator(".aqiw-place a")).to_have_text("廊坊市")
        english = page.locator('[data-aqi-station="LF02"]')
        await expect(english.locator(".aqiw-aqi")).to_have_text(str(lf02["aqi"]))
        await expect(english.locator(".aqiw-cat")).to_have_text(lf02["category_en"])
        await expect(english.locator(".aqiw-place a")).to_have_text("Anci District")
        # The host page's CSS reached neither the text colour nor the visibility.
        assert await station.locator(".aqiw-aqi").evaluate(
            "e => getComputedStyle(e).color") != "rgb(255, 0, 255)"

    await in_both_viewports(browser, request.node.name, check, at=service.clock())


async def test_script_widget_refreshes_when_the_next_hour_is_expected(
        browser, service: Service, embedder: Embedder, request) -> None:
    url = host_page(embedder, service, (
        f'<div data-aqi-station="LF05"></div><script src="{service.url}/widget.js"></script>'),
        script=True)
    context, page, errors = await open_page(browser, viewport=DESKTOP, at=service.clock())
    try:
        calls: list[str] = []
        page.on("request", lambda r: "/api/v1/now" in r.url and calls.append(r.url))
        await page.goto(url)
        widget = page.locator('[data-aqi-station="LF05"]')
        before = service.now_json()["stations"][4]
        await expect(widget.locator(".aqiw-aqi")).to_have_text(str(before["aqi"]))
        assert len(calls) == 1
        # Not a blind timer: nothing is asked before the next hour is expected (11:15).
        await page.clock.fast_forward("54:00")
        await page.wait_for_timeout(300)
        assert len(calls) == 1
        # The service collects 11:00 at 11:20; the widget asks after 11:15 plus its jitter.
        service.clock.now = datetime(2026, 11, 20, 3, 20, tzinfo=UTC)
        await service.app[keys.COLLECTOR].run("scheduled")
        await refresh_snapshot(service.app, service.clock)
        after = service.now_json()["stations"][4]
        assert after["time_point"] == "2026-11-20T11:00:00+08:00"
        await page.clock.fast_forward("03:10")
        await expect(widget.locator(".aqiw-time time")).to_have_text(
            "北京时间 11-20 11:00 止的小时值")
        await expect(widget.locator(".aqiw-aqi")).to_have_text(str(after["aqi"]))
        assert len(calls) == 2
        await screenshot(page, request.node.name)
        errors.assert_none()
    finally:
        await context.close()


async def test_iframe_widget_works_without_javascript(
        browser, service: Service, embedder: Embedder, request) -> None:
    now = service.now_json()
    lf01 = next(s for s in now["stations"] if s["station_code"] == "LF01")
    url = host_page(embedder, service, (
        f'<iframe id="station" src="{service.url}/widget/LF01" title="广阳区空气质量" '
        'width="260" height="230"></iframe>'
        f'<iframe id="city" src="{service.url}/widget/city?lang=en&amp;transparent=1" '
        'title="Langfang air quality" width="260" height="230"></iframe>'), script=False)

    async def check(page) -> None:
        await page.goto(url)
        frame = page.frame_locator("#station")
        await expect(frame.locator(".aqiw-aqi")).to_have_text(str(lf01["aqi"]))
        await expect(frame.locator(".aqiw-cat")).to_have_text(lf01["category"])
        await expect(frame.locator(".aqiw-badge")).to_have_css(
            "background-color", LEVEL_RGB[lf01["level"]])
        await expect(frame.locator("body")).to_have_css("background-color", "rgb(255, 255, 255)")
        city = page.frame_locator("#city")
        await expect(city.locator(".aqiw-aqi")).to_have_text(str(now["city"]["aqi"]))
        await expect(city.locator(".aqiw-cat")).to_have_text(now["city"]["category_en"])
        await expect(city.locator("body")).to_have_css("background-color", "rgba(0, 0, 0, 0)")

    await in_both_viewports(browser, request.node.name, check, javascript=False)


async def test_delayed_data_are_marked(
        browser, service: Service, embedder: Embedder, request) -> None:
    url = host_page(embedder, service, (
        '<div data-aqi-station="LF04"></div><div data-aqi-city data-lang="en"></div>'
        f'<iframe id="frame" src="{service.url}/widget/LF04" title="永清县空气质量" '
        'width="260" height="230"></iframe>'
        f'<script src="{service.url}/widget.js" async></script>'), script=True)
    # The browser alone notices: past 11:15 + 10 min with no newer hour published.
    context, page, errors = await open_page(browser, at=service.clock())
    try:
        await page.goto(url)
        widget = page.locator('[data-aqi-station="LF04"]')
        await expect(widget).to_have_attribute("data-aqi-state", "ok")
        await page.clock.fast_forward("01:06:00")
        await expect(widget).to_have_attribute("data-aqi-state", "stale")
        await expect(widget.locator(".aqiw-note")).to_have_text("数据延迟")
        errors.assert_none()
    finally:
        await context.close()

    # The service rebuilt at 12:20 with no collection since 10:20: stations and city late.
    await service.advance(timedelta(hours=2))

    async def check(page) -> None:
        await page.goto(url)
        widget = page.locator('[data-aqi-station="LF04"]')
        await expect(widget.locator(".aqiw-note")).to_have_text("数据延迟")
        await expect(widget.locator(".aqiw-note")).to_be_visible()
        await expect(widget).to_have_attribute("data-aqi-state", "stale")
        city = page.locator("[data-aqi-city]")
        await expect(city.locator(".aqiw-note")).to_have_text("Data delayed")
        await expect(page.frame_locator("#frame").locator(".aqiw-note")).to_have_text("数据延迟")

    await in_both_viewports(browser, request.node.name, check, at=service.clock())


async def test_script_widget_backs_off_when_the_service_fails(
        browser, service: Service, embedder: Embedder, request) -> None:
    # The script served from the embedding site's origin looks for the API there: 404.
    async with aiohttp.ClientSession() as http:
        script = await (await http.get(service.url + "/widget.js")).read()
    embedder.page("/aqi/widget.js", script, {"Content-Type": "application/javascript"})
    url = host_page(embedder, service, (
        '<div data-aqi-station="LF01"></div><script src="/aqi/widget.js"></script>'),
        script=True)
    embedder.pages["/embed.html"] = (embedder.pages["/embed.html"][0], {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": "default-src 'self'"})
    context, page, errors = await open_page(browser, at=service.clock())
    try:
        calls: list[str] = []
        page.on("request", lambda r: "/api/v1/now" in r.url and calls.append(r.url))
        await page.goto(url)
        widget = page.locator('[data-aqi-station="LF01"]')
        await expect(widget).to_have_attribute("data-aqi-state", "error")
        await expect(widget.locator(".aqiw-cat")).to_have_text("数据暂不可用")
        assert calls == [embedder.url + "/aqi/api/v1/now"]
        # Retries after 30 s (+ 15-120 s jitter), then after 60 s (+ jitter): not at once.
        await page.clock.fast_forward("00:44")
        await page.wait_for_timeout(200)
        assert len(calls) == 1
        # The next back-off is set when the failed answer has been handled: wait for it
        # before moving the clock on, or the delay would count from the later time.
        async with page.expect_event("requestfinished",
                                     lambda r: r.url.endswith("/api/v1/now")):
            await page.clock.fast_forward("01:47")
        await page.wait_for_timeout(200)
        await page.clock.fast_forward("01:14")
        await page.wait_for_timeout(200)
        assert len(calls) == 2
        async with page.expect_request("**/api/v1/now"):
            await page.clock.fast_forward("01:47")
        assert len(calls) == 3
        await screenshot(page, request.node.name)
        assert errors.messages and all("404" in m and "/aqi/api/v1/now" in m
                                       for m in errors.messages), errors.messages
    finally:
        await context.close()


async def test_script_widget_follows_the_page_language(
        browser, service: Service, embedder: Embedder) -> None:
    lf06 = service.now_json()["stations"][5]
    url = host_page(embedder, service, (
        '<div data-aqi-station="LF06"></div><div data-aqi-station="LF06" data-lang="zh"></div>'
        f'<script src="{service.url}/widget.js" async></script>'), script=True, lang="en-GB")
    context, page, errors = await open_page(browser, at=service.clock(), locale="en-GB")
    try:
        await page.goto(url)
        english = page.locator("[data-aqi-station]").first
        chinese = page.locator("[data-aqi-station]").last
        await expect(english.locator(".aqiw-cat")).to_have_text(lf06["category_en"])
        await expect(english.locator(".aqiw-place a")).to_have_text(lf06["name_en"])
        await expect(english.locator(".aqiw-place a")).to_have_attribute(
            "href", service.url + "/stations/LF06?lang=en")
        await expect(chinese.locator(".aqiw-cat")).to_have_text(lf06["category"])
        await expect(chinese.locator(".aqiw-place a")).to_have_text(lf06["name_zh"])
        errors.assert_none()
    finally:
        await context.close()
