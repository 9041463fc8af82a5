"""Public disclosure API: every filter, cursor paging, hostile input, the enterprise join,
yearly statistics, retractions, Chinese search, the sample data set and the OpenAPI document.

Expectations come from the stored rows read with plain SQL and filtered in Python here,
never from the code under test.
"""

from __future__ import annotations

import base64
import json
import math
import re
import unicodedata
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from disclosure_support import (
    ACTOR,
    HOSTILE,
    NOW,
    Site,
    add_enterprise_with_everything,
    credit,
    seeded,
    shanghai_day,
)
from openapi_support import response_validator
from yarl import URL

from aqi_service.config import Config
from aqi_service.disclosure import models
from aqi_service.disclosure import service as svc
from aqi_service.storage import disclosure as store
from aqi_service.web import keys
from aqi_service.web.app import create_app
from aqi_service.web.disclosure_api import seed_wanted
from aqi_service.web.openapi import for_app

pytestmark = pytest.mark.db


async def walk(client: TestClient, url: str, key: str, limit: int = 5) -> list[dict]:
    """Every item of a list, following next_cursor; each page within the limit."""
    sep = "&" if "?" in url else "?"
    next_url: str | None = f"{url}{sep}limit={limit}"
    items: list[dict] = []
    pages = 0
    while next_url:
        resp = await client.get(next_url)
        assert resp.status == 200, (next_url, await resp.text())
        doc = await resp.json()
        assert len(doc[key]) <= limit and doc["count"] == len(doc[key])
        assert (doc["next"] is None) == (doc["next_cursor"] is None)
        items += doc[key]
        next_url = doc["next"]
        pages += 1
        assert pages <= 200, "paging does not end"
    return items


def middle_pair(text: str) -> str:
    """Two CJK characters from the middle of ``text`` (not its first or last word)."""
    cjk = [i for i in range(1, len(text) - 2)
           if all("\u4e00" <= c <= "\u9fff" for c in text[i - 1:i + 3])]
    assert cjk, text
    i = cjk[len(cjk) // 2]
    return text[i:i + 2]


def terms(q: str) -> list[str]:
    """Search terms as documented: runs between white space and punctuation, NFKC, lower."""
    norm = unicodedata.normalize("NFKC", q).lower()
    return [t for t in re.split(r"[\W_]+", norm) if t]


def normalized(*parts: Any) -> str:
    return unicodedata.normalize("NFKC", "\n".join(str(p) for p in parts if p)).lower()


# -- independent reads of the stored rows --------------------------------------------------

async def enterprises_rows(conn: asyncpg.Connection) -> list[dict]:
    rows = await conn.fetch("SELECT e.*, c.position FROM enterprises e "
                            "JOIN counties c ON c.code = e.county_code")
    years: dict[int, set[int]] = {}
    for r in await conn.fetch("SELECT enterprise_id, year FROM key_polluter_listings"):
        years.setdefault(r["enterprise_id"], set()).add(r["year"])
    return [{**dict(r), "years": years.get(r["id"], set()),
             "text": normalized(r["name_zh"], r["name_en"], r["credit_code"], r["industry"],
                                r["address"])} for r in rows]


async def record_rows(conn: asyncpg.Connection) -> list[dict]:
    rows = await conn.fetch("""
        SELECT r.*, s.category_code, e.credit_code, e.name_zh AS enterprise_name
        FROM disclosure_records r JOIN disclosure_subitems s ON s.code = r.subitem_code
        LEFT JOIN enterprises e ON e.id = r.enterprise_id""")
    return [{**dict(r), "text": normalized(r["title"], r["body"], r["ref"],
                                           r["enterprise_name"], r["credit_code"])}
            for r in rows]


async def penalty_rows(conn: asyncpg.Connection) -> list[dict]:
    rows = await conn.fetch("SELECT p.*, e.county_code, e.credit_code AS linked_code "
                            "FROM penalties p LEFT JOIN enterprises e ON e.id = p.enterprise_id")
    return [{**dict(r), "text": normalized(r["decision_no"], r["party_name"], r["credit_code"],
                                           r["violation"], r["legal_basis"], r["penalty"])}
            for r in rows]


async def eia_rows(conn: asyncpg.Connection) -> list[dict]:
    rows = await conn.fetch("SELECT p.*, e.credit_code AS linked_code FROM eia_projects p "
                            "LEFT JOIN enterprises e ON e.id = p.enterprise_id")
    stages: dict[int, set[str]] = {}
    for r in await conn.fetch("SELECT project_id, stage FROM eia_stages"):
        stages.setdefault(r["project_id"], set()).add(r["stage"])
    return [{**dict(r), "stages": stages.get(r["id"], set()),
             "text": normalized(r["project_code"], r["name"], r["builder"], r["location"],
                                r["project_type"], r["eia_agency"], r["summary"])}
            for r in rows]


def enterprise_order(rows: list[dict]) -> list[str]:
    return [r["credit_code"] for r in sorted(rows, key=lambda r: (r["position"], r["name_zh"],
                                                                  r["id"]))]


def record_order(rows: list[dict]) -> list[int]:
    return [r["id"] for r in sorted(rows, key=lambda r: (r["published_at"], r["id"]),
                                    reverse=True)]


def penalty_order(rows: list[dict]) -> list[int]:
    return [r["id"] for r in sorted(rows, key=lambda r: (r["decision_date"], r["id"]),
                                    reverse=True)]


def eia_order(rows: list[dict]) -> list[int]:
    return [r["id"] for r in sorted(rows, key=lambda r: r["id"], reverse=True)]


# -- filters -------------------------------------------------------------------------------

async def test_enterprise_list_with_each_filter(site: Site) -> None:
    async with site.pool.acquire() as conn:
        rows = await enterprises_rows(conn)
    assert len(rows) >= 10, "the sample data set is loaded"
    some = rows[len(rows) // 2]
    listed = next(r for r in rows if r["years"])
    year = min(listed["years"])
    word = middle_pair(some["name_zh"])
    industry = next(r["industry_code"] for r in rows if r["industry_code"])[:3]
    cases = {
        f"county={some['county_code']}": lambda r: r["county_code"] == some["county_code"],
        f"industry={industry}": lambda r: r["industry_code"].startswith(industry),
        f"industry={industry.lower()}": lambda r: r["industry_code"].startswith(industry),
        "control_level=national": lambda r: r["control_level"] == "national",
        "control_level=city": lambda r: r["control_level"] == "city",
        f"key_list_year={year}": lambda r: year in r["years"],
        f"q={quote(word)}": lambda r: word in r["text"],
        f"county={some['county_code']}&q={quote(word)}":
            lambda r: r["county_code"] == some["county_code"] and word in r["text"],
    }
    for query, keep in cases.items():
        got = [e["credit_code"] for e in await walk(site.client, f"/api/v1/enterprises?{query}",
                                                    "enterprises")]
        assert got == enterprise_order([r for r in rows if keep(r)]), query
        assert got, f"{query} selects nothing: the test would prove nothing"
    # An empty value: the JSON API refuses it like the rest of API v1; the page's form
    # sends empty fields, which count as absent there.
    resp = await site.client.get("/api/v1/enterprises?county=")
    assert resp.status == 400
    assert (await resp.json())["error"]["details"]["parameter"] == "county"
    assert (await site.client.get("/enterprises?county=")).status == 200


async def test_disclosure_list_with_each_filter(site: Site) -> None:
    async with site.pool.acquire() as conn:
        rows = await record_rows(conn)
    assert len(rows) >= 20
    with_ent = next(r for r in rows if r["credit_code"])
    some = sorted(rows, key=lambda r: r["id"])[len(rows) // 2]
    word = middle_pair(some["title"])
    days = sorted(shanghai_day(r["published_at"]) for r in rows)
    first, last = days[len(days) // 4], days[3 * len(days) // 4]
    cases = {
        f"category={some['category_code']}":
            lambda r: r["category_code"] == some["category_code"],
        f"subitem={some['subitem_code']}": lambda r: r["subitem_code"] == some["subitem_code"],
        f"enterprise={with_ent['credit_code']}":
            lambda r: r["credit_code"] == with_ent["credit_code"],
        f"enterprise={with_ent['credit_code'].lower()}":
            lambda r: r["credit_code"] == with_ent["credit_code"],
        f"q={quote(word)}": lambda r: word in r["text"],
        f"from={first}": lambda r: shanghai_day(r["published_at"]) >= first,
        f"to={last}": lambda r: shanghai_day(r["published_at"]) <= last,
        f"from={first}&to={last}": lambda r: first <= shanghai_day(r["published_at"]) <= last,
        "status=retracted": lambda r: r["status"] == "retracted",
        "status=corrected": lambda r: r["status"] == "corrected",
        "status=published,corrected": lambda r: r["status"] != "retracted",
    }
    for query, keep in cases.items():
        got = [d["id"] for d in await walk(site.client, f"/api/v1/disclosures?{query}",
                                           "disclosures")]
        assert got == record_order([r for r in rows if keep(r)]), query
        assert got, f"{query} selects nothing"


async def test_penalty_list_with_each_filter(site: Site) -> None:
    async with site.pool.acquire() as conn:
        rows = await penalty_rows(conn)
    assert len(rows) >= 3
    linked = next(r for r in rows if r["linked_code"])
    some = rows[len(rows) // 2]
    word = middle_pair(some["violation"])
    days = sorted(r["decision_date"] for r in rows)
    first, last = days[1], days[-2]
    cases = {
        f"enterprise={linked['linked_code']}":
            lambda r: linked["linked_code"] in (r["credit_code"], r["linked_code"]),
        f"county={linked['county_code']}": lambda r: r["county_code"] == linked["county_code"],
        f"status={some['enforcement_status']}":
            lambda r: r["enforcement_status"] == some["enforcement_status"],
        f"from={first}": lambda r: r["decision_date"] >= first,
        f"to={last}": lambda r: r["decision_date"] <= last,
        f"q={quote(word)}": lambda r: word in r["text"],
    }
    for query, keep in cases.items():
        got = [p["id"] for p in await walk(site.client, f"/api/v1/penalties?{query}",
                                           "penalties", limit=2)]
        assert got == penalty_order([r for r in rows if keep(r)]), query
        assert got, f"{query} selects nothing"


async def test_eia_list_with_each_filter(site: Site) -> None:
    async with site.pool.acquire() as conn:
        rows = await eia_rows(conn)
    assert len(rows) >= 3
    some = rows[0]
    built = next(r for r in rows if r["builder_credit_code"])
    word = middle_pair(some["name"])
    cases = {
        f"county={some['county_code']}": lambda r: r["county_code"] == some["county_code"],
        "stage=approval": lambda r: "approval" in r["stages"],
        "stage=completion_acceptance": lambda r: "completion_acceptance" in r["stages"],
        f"enterprise={built['builder_credit_code']}":
            lambda r: built["builder_credit_code"] in (r["builder_credit_code"],
                                                       r["linked_code"]),
        f"document_kind={some['document_kind']}":
            lambda r: r["document_kind"] == some["document_kind"],
        f"q={quote(word)}": lambda r: word in r["text"],
    }
    for query, keep in cases.items():
        got = [p["id"] for p in await walk(site.client, f"/api/v1/eia?{query}", "projects",
                                           limit=2)]
        assert got == eia_order([r for r in rows if keep(r)]), query
        assert got, f"{query} selects nothing"


# -- paging --------------------------------------------------------------------------------

LISTS = (("/api/v1/enterprises", "enterprises", "credit_code"),
         ("/api/v1/disclosures", "disclosures", "id"),
         ("/api/v1/penalties", "penalties", "id"),
         ("/api/v1/eia", "projects", "id"))


async def test_cursor_paging_walks_every_row_once_in_a_stable_order(site: Site) -> None:
    async with site.pool.acquire() as conn:
        expected = {
            "enterprises": enterprise_order(await enterprises_rows(conn)),
            "disclosures": record_order(await record_rows(conn)),
            "penalties": penalty_order(await penalty_rows(conn)),
            "projects": eia_order(await eia_rows(conn)),
        }
    for url, key, ident in LISTS:
        whole = [i[ident] for i in await walk(site.client, url, key, limit=200)]
        assert whole == expected[key]
        for size in (1, 2, 3, 7):
            paged = [i[ident] for i in await walk(site.client, url, key, limit=size)]
            assert paged == whole, (url, size)
            assert len(set(paged)) == len(paged)


async def test_keyset_pages_do_not_shift_when_rows_are_added(site: Site) -> None:
    first = await (await site.client.get("/api/v1/disclosures?limit=4")).json()
    rest = f"/api/v1/disclosures?cursor={first['next_cursor']}"
    rest_before = await walk(site.client, rest, "disclosures", limit=200)
    async with site.pool.acquire() as conn, conn.transaction():
        vocab = await store.vocabulary(conn)
        rec = models.parse_record({"subitem": "enforcement.inspections",
                                   "title": "新发布的检查情况", "published_at": NOW.isoformat()},
                                  vocab)
        await svc.create_record(conn, rec, ACTOR, NOW)
    rest_after = await walk(site.client, rest, "disclosures", limit=200)
    assert [r["id"] for r in rest_after] == [r["id"] for r in rest_before]
    newest = await (await site.client.get("/api/v1/disclosures?limit=1")).json()
    assert newest["disclosures"][0]["title"] == "新发布的检查情况"


async def test_a_tampered_cursor_is_refused(site: Site) -> None:
    page = await (await site.client.get("/api/v1/disclosures?limit=2")).json()
    cursor = page["next_cursor"]
    body, check = cursor.split(".")
    key = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps([key[0], key[1] + 1]).encode()).decode()
    other = (await (await site.client.get("/api/v1/eia?limit=1")).json())["next_cursor"]
    bad = [cursor[:-1] + ("0" if cursor[-1] != "0" else "1"), body[:-2] + "." + check,
           forged.rstrip("=") + "." + check, body, "garbage", "a.b.c", other, "x" * 700,
           "%00", "'; DROP TABLE disclosure_records;--"]
    for value in bad:
        resp = await site.client.get(f"/api/v1/disclosures?cursor={quote(value)}")
        assert resp.status == 400, value
        err = (await resp.json())["error"]
        assert err["code"] == "bad_parameter" and err["details"]["parameter"] == "cursor"
    good = await site.client.get(f"/api/v1/disclosures?limit=2&cursor={cursor}")
    assert good.status == 200


# -- hostile input -------------------------------------------------------------------------

FILTERS = {
    "/api/v1/enterprises": ("county", "industry", "control_level", "key_list_year", "q",
                            "cursor", "limit"),
    "/api/v1/disclosures": ("category", "subitem", "enterprise", "q", "from", "to", "status",
                            "cursor", "limit"),
    "/api/v1/penalties": ("enterprise", "county", "status", "from", "to", "q", "cursor",
                          "limit"),
    "/api/v1/eia": ("county", "stage", "enterprise", "document_kind", "q", "cursor", "limit"),
    "/api/v1/disclosures/stats": ("year",),
}
TEXT_OF = {
    "/api/v1/enterprises": ("enterprises", lambda e: normalized(
        e["name_zh"], e["name_en"], e["credit_code"], e["industry"], e["address"])),
    "/api/v1/disclosures": ("disclosures", None),
    "/api/v1/penalties": ("penalties", lambda p: normalized(
        p["decision_no"], p["party_name"], p["credit_code"], p["violation"], p["legal_basis"],
        p["penalty"])),
    "/api/v1/eia": ("projects", lambda p: normalized(
        p["project_code"], p["name"], p["builder"], p["location"], p["project_type"],
        p["eia_agency"], p["summary"])),
}


async def test_sql_metacharacters_in_every_filter_are_harmless(site: Site) -> None:
    async with site.pool.acquire() as conn:
        records = {r["id"]: r["text"] for r in await record_rows(conn)}
        before = await conn.fetchval("SELECT count(*) FROM disclosure_records")
    for url, names in FILTERS.items():
        for name in names:
            for payload in HOSTILE:
                resp = await site.client.get(f"{url}?{name}={quote(payload)}")
                assert resp.status in (200, 400), (url, name, payload, resp.status)
                doc = await resp.json()
                if resp.status == 400:
                    assert doc["error"]["details"]["parameter"] == name
                    continue
                assert name == "q", (url, name, payload)
                key, text_of = TEXT_OF[url]
                wanted = terms(payload)
                for item in doc[key]:
                    text = records[item["id"]] if text_of is None else text_of(item)
                    assert wanted and all(t in text for t in wanted), (url, payload, item)
    for raw in ("%FF", "%ED%A0%80", "%C0%AF", "%00", "%E5%BA", "+%2B%25%5F"):
        for url in FILTERS:
            for name in ("q", "county", "cursor"):
                resp = await site.client.get(URL(f"{url}?{name}={raw}", encoded=True))
                assert resp.status in (200, 400), (url, name, raw, resp.status)
    for payload in ("'", "\x00", "%", "x" * 500):
        for path in ("/api/v1/enterprises/", "/api/v1/disclosures/", "/api/v1/eia/"):
            resp = await site.client.get(path + quote(payload, safe=""))
            assert resp.status == 404, (path, payload)
    async with site.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM disclosure_records") == before


async def test_the_same_parameter_twice_and_bad_values_name_the_parameter(site: Site) -> None:
    cases = {
        "/api/v1/enterprises?county=anci&county=sanhe": "county",
        "/api/v1/enterprises?county=nowhere": "county",
        "/api/v1/enterprises?key_list_year=1999": "key_list_year",
        "/api/v1/enterprises?industry=C3011X": "industry",
        "/api/v1/disclosures?category=nope": "category",
        "/api/v1/disclosures?subitem=basic_info.nope": "subitem",
        "/api/v1/disclosures?enterprise=91131003MA0LF0016": "enterprise",
        "/api/v1/disclosures?from=2026-02-30": "from",
        "/api/v1/disclosures?from=2026-03-01&to=2026-02-01": "from",
        "/api/v1/disclosures?from=20260101": "from",
        "/api/v1/disclosures?status=published,deleted": "status",
        "/api/v1/disclosures?limit=0": "limit",
        "/api/v1/disclosures?limit=201": "limit",
        "/api/v1/penalties?status=paid": "status",
        "/api/v1/eia?stage=built": "stage",
        "/api/v1/disclosures/stats?year=20x5": "year",
    }
    for url, name in cases.items():
        resp = await site.client.get(url)
        assert resp.status == 400, url
        assert (await resp.json())["error"]["details"]["parameter"] == name, url


# -- records: retractions, corrections, Chinese search -------------------------------------

async def _record(conn: asyncpg.Connection, **fields: Any) -> int:
    vocab = await store.vocabulary(conn)
    rec = models.parse_record({"subitem": "enforcement.inspections", **fields}, vocab)
    return (await svc.create_record(conn, rec, ACTOR, NOW))["id"]


async def test_retracted_records_stay_visible_with_the_reason(site: Site) -> None:
    async with site.pool.acquire() as conn, conn.transaction():
        rid = await _record(conn, title="2026年第三季度执法检查情况", body="检查企业 12 家。",
                            published_at="2026-10-08T10:00:00+08:00")
        vocab = await store.vocabulary(conn)
        fixed = models.parse_record({"subitem": "enforcement.inspections",
                                     "title": "2026年第三季度执法检查情况",
                                     "body": "检查企业 13 家。"}, vocab)
        await svc.correct_record(conn, rid, fixed, "家数有误，更正为 13 家。", ACTOR,
                                 NOW - timedelta(days=30))
        await svc.retract_record(conn, rid, "与第四季度通报重复，撤回。", ACTOR,
                                 NOW - timedelta(days=1))
    listed = await walk(site.client, "/api/v1/disclosures", "disclosures", limit=50)
    mine = next(r for r in listed if r["id"] == rid)
    assert mine["status"] == "retracted"
    assert mine["status_reason"] == "与第四季度通报重复，撤回。"
    assert mine["retracted_at"] == (NOW - timedelta(days=1)).isoformat()
    published = await walk(site.client, "/api/v1/disclosures?status=published,corrected",
                           "disclosures", limit=50)
    assert rid not in {r["id"] for r in published}
    doc = await (await site.client.get(f"/api/v1/disclosures/{rid}")).json()
    assert doc["status"] == "retracted" and doc["version"] == 3
    assert [(v["version"], v["change"], v["note"]) for v in doc["versions"]] == [
        (1, "created", ""), (2, "corrected", "家数有误，更正为 13 家。"),
        (3, "retracted", "与第四季度通报重复，撤回。")]
    assert [v["body"] for v in doc["versions"]] == ["检查企业 12 家。", "检查企业 13 家。",
                                                   "检查企业 13 家。"]
    assert all("actor" not in v for v in doc["versions"])


async def test_a_record_lists_its_attachments_without_who_uploaded_them(site: Site) -> None:
    async with site.pool.acquire() as conn, conn.transaction():
        att = await store.insert_attachment(conn, "0" * 32, "检查通报.pdf", "application/pdf",
                                            1234, "a" * 64, "token:alice-laptop")
        rid = await _record(conn, title="附件测试", attachments=[str(att["id"])])
    resp = await site.client.get(f"/api/v1/disclosures/{rid}")
    doc = await resp.json()
    assert [(a["filename"], a["size_bytes"], a["url"]) for a in doc["attachments"]] == [
        ("检查通报.pdf", 1234, f"/api/v1/attachments/{att['id']}")]
    assert doc["versions"][0]["attachments"] == doc["attachments"]
    assert "alice" not in await resp.text() and "storage_name" not in await resp.text()
    page = await (await site.client.get(f"/disclosures/{rid}")).text()
    assert f'href="/api/v1/attachments/{att["id"]}">检查通报.pdf</a>' in page


async def test_chinese_search_finds_a_two_character_word_in_the_middle(site: Site) -> None:
    async with site.pool.acquire() as conn, conn.transaction():
        in_title = await _record(conn, title="关于某化工企业违规排放挥发性有机物的调查通报",
                                 body="已责令整改。")
        in_body = await _record(conn, title="执法检查情况",
                                body="现场发现废气收集设施破损，活性炭吸附装置长期未更换。")
        rows = await record_rows(conn)
    for word, wanted in (("发性", in_title), ("吸附", in_body), ("机物", in_title),
                         ("炭吸", in_body)):
        got = [r["id"] for r in await walk(site.client, f"/api/v1/disclosures?q={quote(word)}",
                                           "disclosures", limit=50)]
        assert wanted in got, word
        assert got == record_order([r for r in rows if word in r["text"]]), word
    both = await walk(site.client, f"/api/v1/disclosures?q={quote('废气 活性炭')}",
                      "disclosures", limit=50)
    assert [r["id"] for r in both] == [in_body]
    full_width = await walk(site.client, f"/api/v1/disclosures?q={quote('挥发性　有机物')}",
                            "disclosures", limit=50)
    assert [r["id"] for r in full_width] == [in_title]
    assert await walk(site.client, f"/api/v1/disclosures?q={quote('吸发')}",
                      "disclosures") == []


# -- the enterprise page -------------------------------------------------------------------

def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


async def test_the_enterprise_page_joins_everything_about_it(site: Site) -> None:
    async with site.pool.acquire() as conn, conn.transaction():
        code = await add_enterprise_with_everything(conn)
    resp = await site.client.get(f"/api/v1/enterprises/{code}")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["name_zh"] == "固安县测试化工有限公司" and doc["county_name_zh"] == "固安县"
    assert [o["outlet_code"] for o in doc["outlets"]] == ["DA001"]
    assert "hj212_mn" not in doc["outlets"][0]
    assert doc["outlets"][0]["limits"][0]["upper_limit"] == "50"
    assert doc["key_listings"] == [{"year": 2026, "categories": ["air", "risk"], "note": ""}]
    assert [r["title"] for r in doc["records"]] == ["测试化工自行监测方案",
                                                    "测试化工排污许可证信息"]
    assert [p["decision_no"] for p in doc["penalties"]] == ["（测试）固环罚〔2026〕1号"]
    assert doc["penalties"][0]["fine_amount"] == "200000.00"
    assert [p["name"] for p in doc["eia_projects"]] == ["测试化工技改项目"]
    results = {r["measured_at"]: r for r in doc["monitoring_results"]}
    assert list(results) == ["2026-11-19T11:00:00+08:00", "2026-11-19T10:00:00+08:00",
                             "2026-11-19T09:00:00+08:00"]
    over = results["2026-11-19T10:00:00+08:00"]
    assert over["compliant"] is False
    assert Decimal(over["exceedance_multiple"]) == (Decimal("65.0") - 50) / 50
    assert results["2026-11-19T09:00:00+08:00"]["compliant"] is True
    assert results["2026-11-19T09:00:00+08:00"]["exceedance_multiple"] is None
    assert results["2026-11-19T11:00:00+08:00"]["compliant"] is None  # flag M: not judged
    assert [r["measured_at"] for r in doc["exceedances"]] == ["2026-11-19T10:00:00+08:00"]
    cfg = site.app[keys.CONFIG]
    distances = sorted((haversine_km(39.41, 116.33, s.lat, s.lon), s.code) for s in cfg.stations)
    near = doc["nearest_station"]
    assert near["station_code"] == distances[0][1]
    assert near["distance_km"] == pytest.approx(distances[0][0], abs=0.001)
    now = await (await site.client.get("/api/v1/now")).json()
    station = next(s for s in now["stations"] if s["station_code"] == near["station_code"])
    assert isinstance(station["aqi"], int)
    assert (near["aqi"], near["category"], near["time_point"]) == (
        station["aqi"], station["category"], station["time_point"])


async def test_unknown_objects_answer_404(site: Site) -> None:
    for url in ("/api/v1/enterprises/" + credit("Y0000009"), "/api/v1/enterprises/123",
                "/api/v1/disclosures/999999", "/api/v1/disclosures/99999999999999999999",
                "/api/v1/disclosures/-1", "/api/v1/disclosures/abc", "/api/v1/eia/999999",
                "/api/v1/eia/1.5"):
        resp = await site.client.get(url)
        assert resp.status == 404, url
        assert (await resp.json())["error"]["code"] == "not_found"


# -- yearly statistics ---------------------------------------------------------------------

async def test_yearly_statistics_equal_counts_of_the_stored_rows(site: Site) -> None:
    async with site.pool.acquire() as conn:
        records = await conn.fetch(
            "SELECT r.published_at, r.subitem_code, s.category_code, r.status "
            "FROM disclosure_records r JOIN disclosure_subitems s ON s.code = r.subitem_code")
        versions = await conn.fetch("SELECT change, published_at FROM disclosure_record_versions")
    years = Counter(shanghai_day(r["published_at"]).year for r in records)
    assert len(years) >= 2
    for year in sorted(years):
        doc = await (await site.client.get(f"/api/v1/disclosures/stats?year={year}")).json()
        mine = [r for r in records if shanghai_day(r["published_at"]).year == year]
        assert doc["totals"]["records"] == len(mine) == years[year]
        for status in ("published", "corrected", "retracted"):
            assert doc["totals"][status] == sum(r["status"] == status for r in mine)
        by_sub = Counter(r["subitem_code"] for r in mine)
        by_cat = Counter(r["category_code"] for r in mine)
        assert {s["code"]: s["records"] for c in doc["categories"] for s in c["subitems"]
                if s["records"]} == dict(by_sub)
        assert {c["code"]: c["records"] for c in doc["categories"] if c["records"]} == \
            dict(by_cat)
        assert [m["month"] for m in doc["months"]] == [f"{year}-{m:02d}" for m in range(1, 13)]
        for m, month in enumerate(doc["months"], start=1):
            in_month = [r for r in mine if shanghai_day(r["published_at"]).month == m]
            assert month["records"] == len(in_month)
            assert month["categories"] == dict(Counter(r["category_code"] for r in in_month))
            assert month["subitems"] == dict(Counter(r["subitem_code"] for r in in_month))
            for change, key in (("corrected", "corrections"), ("retracted", "retractions")):
                assert month[key] == sum(
                    1 for v in versions if v["change"] == change
                    and shanghai_day(v["published_at"]).year == year
                    and shanghai_day(v["published_at"]).month == m)
    empty = await (await site.client.get("/api/v1/disclosures/stats?year=2003")).json()
    assert empty["totals"] == {"records": 0, "published": 0, "corrected": 0, "retracted": 0}
    default = await (await site.client.get("/api/v1/disclosures/stats")).json()
    assert default["year"] == 2026  # the clock's year in Asia/Shanghai


# -- the sample data set -------------------------------------------------------------------

async def _counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in (
        "enterprises", "disclosure_records", "disclosure_record_versions", "penalties",
        "eia_projects", "monitoring_results", "audit_log")}


async def test_the_sample_data_loads_once_and_is_marked(config: Config, clock) -> None:
    app = create_app(seeded(config), scheduler=False, clock=clock)
    async with TestClient(TestServer(app)), app[keys.POOL].acquire() as conn:
        first = await _counts(conn)
        unmarked = await conn.fetchval(
            "SELECT (SELECT count(*) FROM enterprises WHERE NOT is_sample)"
            " + (SELECT count(*) FROM disclosure_records WHERE NOT is_sample)"
            " + (SELECT count(*) FROM penalties WHERE NOT is_sample)")
    assert first["enterprises"] >= 10 and first["disclosure_records"] >= 20
    assert unmarked == 0
    again = create_app(seeded(config), scheduler=False, clock=clock)
    async with TestClient(TestServer(again)), again[keys.POOL].acquire() as conn:
        assert await _counts(conn) == first


async def test_the_sample_data_stays_out_of_an_external_database_by_default(
        config: Config, clock) -> None:
    app = create_app(config, scheduler=False, clock=clock)
    assert config.disclosure.seed_sample_data is None and not config.database.embedded
    async with TestClient(TestServer(app)) as client:
        doc = await (await client.get("/api/v1/enterprises")).json()
        assert doc["enterprises"] == [] and doc["next_cursor"] is None
        assert (await client.get("/enterprises")).status == 200
    embedded = create_app(config.replace(database={"url": None}), scheduler=False)
    assert seed_wanted(embedded)
    off = create_app(config.replace(database={"url": None},
                                    disclosure={"seed_sample_data": False}), scheduler=False)
    assert not seed_wanted(off)


# -- OpenAPI -------------------------------------------------------------------------------

async def test_real_responses_conform_to_the_openapi_document(site: Site) -> None:
    async with site.pool.acquire() as conn, conn.transaction():
        code = await add_enterprise_with_everything(conn)
        retracted = await conn.fetchval(
            "SELECT id FROM disclosure_records WHERE status = 'retracted' LIMIT 1")
        corrected = await conn.fetchval(
            "SELECT id FROM disclosure_records WHERE status = 'corrected' LIMIT 1")
        project = await conn.fetchval("SELECT max(id) FROM eia_projects")
    served = await (await site.client.get("/api/v1/openapi.json")).json()
    assert served == for_app(site.client.app)
    cases = [
        ("/api/v1/enterprises?limit=3", "/api/v1/enterprises", "200"),
        ("/api/v1/enterprises?county=x", "/api/v1/enterprises", "400"),
        (f"/api/v1/enterprises/{code}", "/api/v1/enterprises/{credit_code}", "200"),
        ("/api/v1/enterprises/91131003MA0LF0016W", "/api/v1/enterprises/{credit_code}", "200"),
        ("/api/v1/enterprises/" + credit("Y0000009"), "/api/v1/enterprises/{credit_code}",
         "404"),
        ("/api/v1/disclosures", "/api/v1/disclosures", "200"),
        ("/api/v1/disclosures?cursor=x", "/api/v1/disclosures", "400"),
        (f"/api/v1/disclosures/{retracted}", "/api/v1/disclosures/{id}", "200"),
        (f"/api/v1/disclosures/{corrected}", "/api/v1/disclosures/{id}", "200"),
        ("/api/v1/disclosures/0", "/api/v1/disclosures/{id}", "404"),
        ("/api/v1/disclosures/stats?year=2025", "/api/v1/disclosures/stats", "200"),
        ("/api/v1/disclosures/stats?year=1", "/api/v1/disclosures/stats", "400"),
        ("/api/v1/eia", "/api/v1/eia", "200"),
        ("/api/v1/eia?stage=x", "/api/v1/eia", "400"),
        (f"/api/v1/eia/{project}", "/api/v1/eia/{id}", "200"),
        ("/api/v1/eia/0", "/api/v1/eia/{id}", "404"),
        ("/api/v1/penalties", "/api/v1/penalties", "200"),
        ("/api/v1/penalties?from=x", "/api/v1/penalties", "400"),
    ]
    for url, path, status in cases:
        resp = await site.client.get(url)
        assert str(resp.status) == status, url
        errors = sorted(response_validator(served, path, status).iter_errors(await resp.json()),
                        key=str)
        assert not errors, url + "\n" + "\n".join(e.message for e in errors[:5])


async def test_answers_are_cacheable_with_an_etag(site: Site) -> None:
    first = await site.client.get("/api/v1/disclosures?limit=3")
    etag = first.headers["ETag"]
    assert first.headers["Access-Control-Allow-Origin"] == "*"
    again = await site.client.get("/api/v1/disclosures?limit=3",
                                  headers={"If-None-Match": etag})
    assert again.status == 304
