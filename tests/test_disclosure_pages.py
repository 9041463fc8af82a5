"""Disclosure HTML pages: zh/en, filters, errors as HTML, escaping, retractions, the
enterprise page's joins, the yearly statistics and paging by links."""

from __future__ import annotations

import html
import re
from collections import Counter
from html.parser import HTMLParser
from urllib.parse import quote

import asyncpg
import pytest
from disclosure_support import (
    ACTOR,
    HOSTILE,
    NOW,
    Site,
    add_enterprise_with_everything,
    shanghai_day,
)
from markupsafe import escape

from aqi_service.disclosure import models
from aqi_service.disclosure import service as svc
from aqi_service.storage import disclosure as store

pytestmark = pytest.mark.db

PAGES = ("/enterprises", "/disclosures", "/disclosures/stats", "/eia", "/penalties")
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'


class Links(HTMLParser):
    """The hrefs of a page and its <h1>/<h2> texts."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.rel_next: str | None = None
        self.headings: list[str] = []
        self._in_heading = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"] or "")
            if a.get("rel") == "next":
                self.rel_next = a["href"]
        if tag in ("h1", "h2"):
            self._in_heading = True
            self.headings.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h1", "h2"):
            self._in_heading = False

    def handle_data(self, data: str) -> None:
        if self._in_heading:
            self.headings[-1] += data


def parse(text: str) -> Links:
    links = Links()
    links.feed(text)
    return links


async def get_html(site: Site, url: str, status: int = 200, **headers: str) -> str:
    resp = await site.client.get(url, headers=headers)
    text = await resp.text()
    assert resp.status == status, (url, resp.status, text[:300])
    assert resp.content_type == "text/html"
    return text


async def test_every_page_in_chinese_by_default_and_in_english_on_request(site: Site) -> None:
    async with site.pool.acquire() as conn:
        code = await conn.fetchval("SELECT credit_code FROM enterprises ORDER BY id LIMIT 1")
        record = await conn.fetchval("SELECT min(id) FROM disclosure_records")
        project = await conn.fetchval("SELECT min(id) FROM eia_projects")
    pages = [*PAGES, f"/enterprises/{code}", f"/disclosures/{record}", f"/eia/{project}"]
    for url in pages:
        zh = await get_html(site, url)
        assert '<html lang="zh-CN">' in zh and 'href="/static/disclosure.css' in zh, url
        en = await get_html(site, url + "?lang=en")
        assert '<html lang="en">' in en, url
        by_header = await get_html(site, url, **{"Accept-Language": "en-GB,en;q=0.9"})
        assert '<html lang="en">' in by_header, url
        assert re.search(r"[\u4e00-\u9fff]", parse(zh).headings[0] + "".join(
            parse(zh).headings)), url
    titles = {"/enterprises": ("企业名录", "Enterprises"),
              "/disclosures": ("公开信息", "Disclosures"),
              "/disclosures/stats": ("信息公开年度统计", "Yearly disclosure statistics"),
              "/eia": ("建设项目环评审批", "EIA of construction projects"),
              "/penalties": ("环境行政处罚决定", "Environmental administrative penalty decisions")}
    for url, (zh_title, en_title) in titles.items():
        assert parse(await get_html(site, url)).headings[0].startswith(zh_title), url
        assert parse(await get_html(site, url + "?lang=en")).headings[0].startswith(en_title)
    nav = await get_html(site, "/")
    for path in ("/enterprises", "/disclosures", "/eia", "/penalties"):
        assert f'href="{path}"' in nav
    for url in pages:   # no script may run on these pages, whatever a record holds
        resp = await site.client.get(url)
        assert "script-src 'none'" in resp.headers["Content-Security-Policy"], url
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Content-Language"] == "zh-CN"


async def test_filters_select_on_the_pages_too(site: Site) -> None:
    async with site.pool.acquire() as conn:
        rows = await conn.fetch("SELECT credit_code, county_code FROM enterprises")
    county = rows[0]["county_code"]
    text = await get_html(site, f"/enterprises?county={county}&limit=200")
    shown = {h.rsplit("/", 1)[-1] for h in parse(text).hrefs if h.startswith("/enterprises/")}
    assert shown == {r["credit_code"] for r in rows if r["county_code"] == county}
    assert f'<option value="{county}" selected>' in text


async def test_bad_filters_and_unknown_objects_are_html_error_pages(site: Site) -> None:
    for url, status, words in (
            ("/enterprises?county=atlantis", 400, "county"),
            ("/disclosures?from=2026-13-01", 400, "from"),
            ("/disclosures?cursor=forged", 400, "cursor"),
            ("/penalties?status=paid", 400, "status"),
            ("/eia?stage=x&lang=en", 400, "stage"),
            ("/disclosures/stats?year=1900", 400, "year"),
            ("/enterprises/91131003MA0LF0016X", 404, "信用代码"),
            ("/disclosures/0", 404, "没有这条公开信息"),
            ("/disclosures/abc?lang=en", 404, "No such disclosure record"),
            ("/eia/99999999999999999999999", 404, "没有这个环评项目")):
        text = await get_html(site, url, status)
        assert words in text, url
        assert "<main" in text and "error-message" in text


async def test_hostile_values_in_every_page_filter_never_fail(site: Site) -> None:
    filters = {"/enterprises": ("county", "industry", "control_level", "key_list_year", "q",
                                "cursor", "limit"),
               "/disclosures": ("category", "subitem", "enterprise", "q", "from", "to",
                                "status", "cursor"),
               "/penalties": ("enterprise", "county", "status", "from", "to", "q"),
               "/eia": ("county", "stage", "enterprise", "document_kind", "q"),
               "/disclosures/stats": ("year",)}
    for url, names in filters.items():
        for name in names:
            for payload in HOSTILE:
                resp = await site.client.get(f"{url}?{name}={quote(payload)}")
                assert resp.status in (200, 400), (url, name, payload, resp.status)
                assert resp.content_type == "text/html"


async def _payload_everywhere(conn: asyncpg.Connection) -> tuple[int, str, int]:
    vocab = await store.vocabulary(conn)
    code = await add_enterprise_with_everything(conn)
    rec = models.parse_record({"subitem": "basic_info.profile", "enterprise": code,
                               "title": f"通报 {SCRIPT}", "body": f"正文 {IMG} 结束",
                               "published_at": "2026-11-19T09:00:00+08:00"}, vocab)
    record_id = (await svc.create_record(conn, rec, ACTOR, NOW))["id"]
    await svc.save_penalty(conn, models.parse_penalty({
        "decision_no": f"罚〔2026〕{SCRIPT}", "party_name": f"当事人{IMG}", "credit_code": code,
        "violation": f"违法 {SCRIPT}", "legal_basis": IMG, "penalty": "罚款",
        "decision_date": "2026-11-01"}), ACTOR)
    await svc.save_eia_project(conn, models.parse_eia_project({
        "project_code": "TEST-XSS-1", "name": f"项目{SCRIPT}", "builder": f"建设{IMG}",
        "county": "guan", "location": IMG, "project_type": SCRIPT, "document_kind": "table",
        "summary": f"概述{SCRIPT}"}), ACTOR)
    project_id = await conn.fetchval("SELECT id FROM eia_projects WHERE project_code = $1",
                                     "TEST-XSS-1")
    return record_id, code, project_id


async def test_script_payloads_are_rendered_escaped(site: Site) -> None:
    async with site.pool.acquire() as conn, conn.transaction():
        record_id, code, project_id = await _payload_everywhere(conn)
    urls = ["/disclosures", f"/disclosures/{record_id}", f"/enterprises/{code}", "/penalties",
            "/eia", f"/eia/{project_id}", f"/disclosures?q={quote(SCRIPT)}",
            f"/enterprises?q={quote(IMG)}", f"/penalties?q={quote(SCRIPT)}&lang=en"]
    for url in urls:
        text = await get_html(site, url)
        assert SCRIPT not in text and "<img src=x" not in text, url
        assert "<script" not in text.lower(), url
        assert "onerror=alert(1)>" not in text, url
    detail = await get_html(site, f"/disclosures/{record_id}")
    assert html.escape(SCRIPT, quote=False) in detail
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in detail
    searched = await get_html(site, f"/disclosures?q={quote(SCRIPT)}")
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in searched


async def test_retracted_and_corrected_records_on_the_pages(site: Site) -> None:
    async with site.pool.acquire() as conn, conn.transaction():
        vocab = await store.vocabulary(conn)
        rec = models.parse_record({"subitem": "enforcement.inspections",
                                   "title": "十月执法检查通报", "body": "检查 20 家。",
                                   "published_at": "2026-11-01T09:00:00+08:00"}, vocab)
        rid = (await svc.create_record(conn, rec, ACTOR, NOW))["id"]
        fixed = models.parse_record({"subitem": "enforcement.inspections",
                                     "title": "十月执法检查通报", "body": "检查 21 家。"}, vocab)
        await svc.correct_record(conn, rid, fixed, "家数更正", ACTOR, NOW)
        await svc.retract_record(conn, rid, "通报有误，另行发布", ACTOR, NOW)
    listing = await get_html(site, "/disclosures")
    assert "<del>十月执法检查通报</del>" in listing
    assert "撤回理由：</strong>通报有误，另行发布" in listing
    detail = await get_html(site, f"/disclosures/{rid}")
    assert "此信息已撤回" in detail and "通报有误，另行发布" in detail
    assert detail.count("<li>") >= 3 and "检查 20 家。" in detail and "检查 21 家。" in detail
    for words in ("第 1 版", "第 2 版", "第 3 版", "家数更正"):
        assert words in detail
    english = await get_html(site, f"/disclosures/{rid}?lang=en")
    assert "This record was retracted" in english and "Version history" in english
    async with site.pool.acquire() as conn:
        corrected = await conn.fetchval(
            "SELECT id FROM disclosure_records WHERE status = 'corrected' LIMIT 1")
    page = await get_html(site, f"/disclosures/{corrected}")
    assert "此信息已更正" in page and 'href="#versions"' in page


async def test_the_enterprise_page_shows_every_join(site: Site) -> None:
    async with site.pool.acquire() as conn, conn.transaction():
        code = await add_enterprise_with_everything(conn)
    doc = await (await site.client.get(f"/api/v1/enterprises/{code}")).json()
    near = doc["nearest_station"]
    text = await get_html(site, f"/enterprises/{code}")
    for words in ("固安县测试化工有限公司", "测试化工自行监测方案", "测试化工排污许可证信息",
                  "（测试）固环罚〔2026〕1号", "200,000.00", "测试化工技改项目", "DA001",
                  "DB13/2322-2016", near["name_zh"], f'data-aqi="{near["aqi"]}"',
                  'data-exceedance="0.3"', ">0.30<", "超标",
                  "2026：大气环境、环境风险重点管控单位"):
        assert words in text, words
    assert "TESTMN0001" not in text
    english = await get_html(site, f"/enterprises/{code}?lang=en")
    assert "Nearest air-quality station" in english and str(escape(near["name_en"])) in english


async def test_the_statistics_page_shows_the_stored_counts(site: Site) -> None:
    async with site.pool.acquire() as conn:
        rows = await conn.fetch("SELECT published_at, subitem_code FROM disclosure_records")
    year = 2025
    mine = [r for r in rows if shanghai_day(r["published_at"]).year == year]
    text = await get_html(site, f"/disclosures/stats?year={year}")
    assert f'data-total="records">{len(mine)}</dd>' in text
    for sub, n in Counter(r["subitem_code"] for r in mine).items():
        row = re.search(rf'<tr data-subitem="{re.escape(sub)}">(.*?)</tr>', text, re.S)
        assert row and re.search(rf'<td class="num">{n}</td>', row.group(1)), sub
    months = Counter(shanghai_day(r["published_at"]).month for r in mine)
    for m in range(1, 13):
        row = re.search(rf'<tr data-month="{year}-{m:02d}">(.*?)</tr>', text, re.S)
        cells = re.findall(r'<td class="num">(\d+)</td>', row.group(1))
        assert int(cells[-3]) == months.get(m, 0), m


async def test_next_links_walk_every_record_once(site: Site) -> None:
    async with site.pool.acquire() as conn:
        expected = [r["id"] for r in await conn.fetch(
            "SELECT id FROM disclosure_records ORDER BY published_at DESC, id DESC")]
    url: str | None = "/disclosures?limit=4&lang=en"
    seen: list[int] = []
    while url:
        links = parse(await get_html(site, html.unescape(url)))
        seen += [int(h.split("/")[2].split("?")[0]) for h in links.hrefs
                 if re.match(r"^/disclosures/\d+", h)]
        url = links.rel_next
        assert url is None or "lang=en" in url
    assert seen == expected


async def test_pages_answer_304_to_their_etag(site: Site) -> None:
    first = await site.client.get("/enterprises")
    again = await site.client.get("/enterprises",
                                  headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304
    assert first.headers["Content-Language"] == "zh-CN"
