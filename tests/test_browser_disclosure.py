"""Real Chromium against the disclosure pages with the sample data: the enterprise list and
an enterprise's page render without console errors, fit a phone's width, label every form
control; screenshots of each (mobile and desktop)."""

from __future__ import annotations

import pytest
from browser_support import Service, in_both_viewports, needs_chromium
from playwright.async_api import expect

from aqi_service.config import Config
from aqi_service.web import keys

pytestmark = [pytest.mark.db, needs_chromium]

FITS_AND_LABELLED = """() => {
  const unlabelled = [...document.querySelectorAll('input:not([type=hidden]), select')]
    .filter(el => !el.labels || el.labels.length === 0).map(el => el.name);
  return {overflow: document.documentElement.scrollWidth - window.innerWidth, unlabelled};
}"""


@pytest.fixture
def config(config: Config) -> Config:
    """The shipped configuration with the sample data loaded at start."""
    return config.replace(disclosure={"seed_sample_data": True})


async def test_the_enterprise_list_renders(browser, service: Service, request) -> None:
    async with service.app[keys.POOL].acquire() as conn:
        count = await conn.fetchval("SELECT count(*) FROM enterprises")

    async def check(page) -> None:
        resp = await page.goto(service.url + "/enterprises?limit=200")
        assert resp.status == 200
        await expect(page.locator("h1")).to_have_text("企业名录")
        await expect(page.locator("table.listing tbody tr")).to_have_count(count)
        await expect(page.locator(".sample-notice")).to_be_visible()
        layout = await page.evaluate(FITS_AND_LABELLED)
        assert layout == {"overflow": 0, "unlabelled": []}

    await in_both_viewports(browser, request.node.name, check)


async def test_an_enterprise_page_renders_its_joins(browser, service: Service,
                                                    request) -> None:
    async with service.app[keys.POOL].acquire() as conn:
        code = await conn.fetchval("""
            SELECT e.credit_code FROM enterprises e
            WHERE EXISTS (SELECT 1 FROM penalties p WHERE p.enterprise_id = e.id)
              AND EXISTS (SELECT 1 FROM eia_projects p WHERE p.enterprise_id = e.id)
              AND EXISTS (SELECT 1 FROM monitoring_results m JOIN discharge_outlets o
                          ON o.id = m.outlet_id WHERE o.enterprise_id = e.id)
            ORDER BY e.id LIMIT 1""")
    assert code, "the sample data has an enterprise with penalties, EIA and monitoring"
    station = service.now_json()["stations"]

    async def check(page) -> None:
        resp = await page.goto(f"{service.url}/enterprises/{code}?lang=en")
        assert resp.status == 200
        await expect(page.locator("#air-h")).to_have_text("Nearest air-quality station")
        aqi = await page.locator("[data-aqi]").get_attribute("data-aqi")
        assert int(aqi) in {s["aqi"] for s in station}
        for section in ("#records li", "#penalties li", "#eia li", "table.monitoring tbody tr"):
            assert await page.locator(section).count() >= 1, section
        layout = await page.evaluate(FITS_AND_LABELLED)
        assert layout["overflow"] == 0

    await in_both_viewports(browser, request.node.name, check)
