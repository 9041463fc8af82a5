"""Real-browser test harness: the service on a loopback port, Debian's Chromium, screenshots.

Test modules import the fixtures they use (``from browser_support import browser, service``).
``service`` is the application after the 2-day back-fill from the simulator, served by an
``AppRunner`` on 127.0.0.1 (port chosen by the system) so that a browser can reach it.
``embedder`` serves pages from a second loopback port: a different origin, like a site
that embeds the widget. Browser tests are skipped only when ``/usr/bin/chromium`` is absent.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from aiohttp import web

from aqi_service.config import Config
from aqi_service.web import keys
from aqi_service.web.app import create_app, refresh_snapshot, startup_collection

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
MOBILE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(),
                                    reason="browser tests need Debian's /usr/bin/chromium")


def _port(runner: web.AppRunner) -> int:
    return runner.addresses[0][1]


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Start ``app`` on 127.0.0.1 with a free port; (runner, base URL)."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{_port(runner)}"


@dataclass
class Service:
    """The running service: its app, base URL and the fake clock it lives by."""

    app: web.Application
    url: str
    clock: Callable[[], datetime]

    async def advance(self, delta) -> None:
        """Move the service's clock by ``delta`` and rebuild the /now snapshot."""
        self.clock.now += delta  # type: ignore[attr-defined]
        await refresh_snapshot(self.app, self.clock)

    def now_json(self) -> dict:
        """The /api/v1/now document the service currently serves."""
        return self.app[keys.SNAPSHOT].current.data


@pytest.fixture
async def service(config: Config, clock) -> AsyncIterator[Service]:
    """The app on a real loopback port after a 2-day back-fill (no scheduler timers)."""
    cfg = config.replace(collection={"initial_backfill_days": 2})
    app = create_app(cfg, scheduler=False, clock=clock)
    runner, url = await serve(app)
    try:
        await startup_collection(app, clock)
        assert app[keys.SNAPSHOT].current.data["data_as_of"] is not None
        yield Service(app, url, clock)
    finally:
        await runner.cleanup()


@dataclass
class Embedder:
    """A second origin serving HTML pages set by the test (with their own headers)."""

    url: str
    pages: dict[str, tuple[str | bytes, dict[str, str]]] = field(default_factory=dict)

    def page(self, path: str, body: str | bytes, headers: dict[str, str] | None = None) -> str:
        """Serve ``body`` at ``path`` (HTML unless ``headers`` say otherwise); its URL."""
        self.pages[path] = (body, {"Content-Type": "text/html; charset=utf-8", **(headers or {})})
        return self.url + path


@pytest.fixture
async def embedder() -> AsyncIterator[Embedder]:
    """An aiohttp server on another loopback port: a site that embeds the widget."""
    app = web.Application()
    holder: list[Embedder] = []

    async def handle(request: web.Request) -> web.Response:
        if request.path == "/favicon.ico":
            return web.Response(status=204)
        found = holder[0].pages.get(request.path)
        if found is None:
            raise web.HTTPNotFound()
        body, headers = found
        return web.Response(body=body.encode() if isinstance(body, str) else body,
                            headers=headers)

    app.router.add_get("/{tail:.*}", handle)
    runner, url = await serve(app)
    holder.append(Embedder(url))
    try:
        yield holder[0]
    finally:
        await runner.cleanup()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[object]:
    """Headless Chromium (Debian's), one per test session."""
    if not CHROMIUM.exists():
        pytest.skip("browser tests need Debian's /usr/bin/chromium")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                            args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@dataclass
class PageErrors:
    """Console messages of type error and uncaught page errors seen by a page."""

    messages: list[str] = field(default_factory=list)

    def watch(self, page) -> None:
        """Collect from ``page`` (and its frames)."""
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.messages.append(f"pageerror: {e}"))

    def _console(self, message) -> None:
        url = message.location.get("url", "")
        # The browser itself asks for /favicon.ico; no page content refers to it.
        if message.type == "error" and not url.endswith("/favicon.ico"):
            self.messages.append(f"console: {message.text} ({url})")

    def assert_none(self) -> None:
        """Fail listing every error seen."""
        assert self.messages == [], "\n".join(self.messages)


async def open_page(browser, *, viewport: dict[str, int] = DESKTOP,
                    at: datetime | None = None, javascript: bool = True,
                    locale: str = "zh-CN") -> tuple[object, object, PageErrors]:
    """A page in a new, empty context; the browser's clock set to ``at`` when given.

    The service lives by a fake clock; a widget compares times with the browser's clock,
    so both must agree.
    """
    context = await browser.new_context(viewport=viewport, java_script_enabled=javascript,
                                        locale=locale)
    page = await context.new_page()
    if at is not None and javascript:
        await page.clock.install(time=at)
    errors = PageErrors()
    errors.watch(page)
    return context, page, errors


async def screenshot(page, test_name: str, suffix: str = "") -> Path:
    """Save a full-page screenshot to ``test-artifacts/screenshots/<test-name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name + (f"-{suffix}" if suffix else ""))
    path = SCREENSHOTS / f"{name.strip('_')}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def in_both_viewports(browser, test_name: str,
                            check: Callable[[object], Awaitable[None]], **kw) -> None:
    """Run ``check(page)`` on a mobile (375×812) and a desktop page; screenshot each."""
    for label, viewport in (("mobile", MOBILE), ("desktop", DESKTOP)):
        context, page, errors = await open_page(browser, viewport=viewport, **kw)
        try:
            await check(page)
            await screenshot(page, test_name, label)
            errors.assert_none()
        finally:
            await context.close()
