"""The Atom feed of disclosures: valid Atom 1.0 (RFC 4287), one entry per version (new,
corrected, retracted), tag: ids, escaped text."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

import pytest
from disclosure_support import ACTOR, NOW, Site

from aqi_service.disclosure import models
from aqi_service.disclosure import service as svc
from aqi_service.storage import disclosure as store
from aqi_service.web.atom import ENTRIES

pytestmark = pytest.mark.db

A = "{http://www.w3.org/2005/Atom}"
TAG_URI = re.compile(r"^tag:[A-Za-z0-9.-]+,\d{4}(-\d{2}(-\d{2})?)?:\S+$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def when(el: ET.Element | None) -> datetime:
    assert el is not None and el.text and RFC3339.match(el.text), el
    return datetime.fromisoformat(el.text)


async def fetch(site: Site, url: str = "/disclosures.atom") -> ET.Element:
    resp = await site.client.get(url)
    assert resp.status == 200
    assert resp.content_type == "application/atom+xml" and resp.charset == "utf-8"
    body = await resp.read()
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    return ET.fromstring(body)


def check_atom(feed: ET.Element) -> list[ET.Element]:
    """The elements RFC 4287 requires of a feed and of each entry; the entries."""
    assert feed.tag == f"{A}feed"
    for name in ("id", "title", "updated"):
        assert len(feed.findall(f"{A}{name}")) == 1, name
    assert TAG_URI.match(feed.findtext(f"{A}id") or "")
    when(feed.find(f"{A}updated"))
    assert feed.find(f"{A}author/{A}name").text
    self_link = [link for link in feed.findall(f"{A}link") if link.get("rel") == "self"]
    assert len(self_link) == 1 and self_link[0].get("href", "").endswith("/disclosures.atom")
    entries = feed.findall(f"{A}entry")
    ids = [e.findtext(f"{A}id") for e in entries]
    assert len(set(ids)) == len(ids)
    for entry in entries:
        for name in ("id", "title", "updated"):
            assert len(entry.findall(f"{A}{name}")) == 1, name
        assert TAG_URI.match(entry.findtext(f"{A}id") or "")
        when(entry.find(f"{A}updated"))
        when(entry.find(f"{A}published"))
        assert entry.find(f"{A}author/{A}name").text
        alternate = [link for link in entry.findall(f"{A}link")
                     if link.get("rel") == "alternate"]
        assert len(alternate) == 1 and re.search(r"/disclosures/\d+", alternate[0].get("href"))
        content = entry.find(f"{A}content")
        assert content is not None and content.get("type") == "text"
    updated = [when(e.find(f"{A}updated")) for e in entries]
    assert updated == sorted(updated, reverse=True)
    if entries:
        assert when(feed.find(f"{A}updated")) == updated[0]
    return entries


async def test_the_feed_is_valid_atom_with_an_entry_per_version(site: Site) -> None:
    async with site.pool.acquire() as conn:
        versions = await conn.fetchval("SELECT count(*) FROM disclosure_record_versions")
        changed = await conn.fetch("SELECT record_id, version, change FROM "
                                   "disclosure_record_versions WHERE change <> 'created'")
    entries = check_atom(await fetch(site))
    assert len(entries) == min(ENTRIES, versions)
    ids = {e.findtext(f"{A}id") for e in entries}
    for row in changed:
        assert any(i.endswith(f"/disclosures/{row['record_id']}/v{row['version']}")
                   for i in ids), row


async def test_new_corrected_and_retracted_versions_are_entries(site: Site) -> None:
    async with site.pool.acquire() as conn, conn.transaction():
        vocab = await store.vocabulary(conn)
        rec = models.parse_record({"subitem": "enforcement.inspections",
                                   "title": "十一月执法检查", "body": "检查 5 家。",
                                   "published_at": (NOW - timedelta(hours=3)).isoformat()},
                                  vocab)
        rid = (await svc.create_record(conn, rec, ACTOR, NOW))["id"]
        fixed = models.parse_record({"subitem": "enforcement.inspections",
                                     "title": "十一月执法检查", "body": "检查 6 家。"}, vocab)
        await svc.correct_record(conn, rid, fixed, "家数有误", ACTOR, NOW - timedelta(hours=2))
        await svc.retract_record(conn, rid, "重复发布", ACTOR, NOW - timedelta(hours=1))
    entries = check_atom(await fetch(site))
    mine = {e.findtext(f"{A}id").rsplit("/", 1)[-1]: e for e in entries
            if f"/disclosures/{rid}/" in e.findtext(f"{A}id")}
    assert sorted(mine) == ["v1", "v2", "v3"]
    assert [e.findtext(f"{A}id").rsplit("/", 1)[-1] for e in entries[:3]] == ["v3", "v2", "v1"]
    assert mine["v1"].findtext(f"{A}title") == "十一月执法检查"
    assert mine["v2"].findtext(f"{A}title") == "【更正】十一月执法检查"
    assert mine["v3"].findtext(f"{A}title") == "【已撤回】十一月执法检查"
    assert "更正说明：家数有误" in mine["v2"].findtext(f"{A}content")
    assert "检查 6 家。" in mine["v2"].findtext(f"{A}content")
    assert "撤回理由：重复发布" in mine["v3"].findtext(f"{A}content")
    assert when(mine["v3"].find(f"{A}updated")) == NOW - timedelta(hours=1)
    assert when(mine["v3"].find(f"{A}published")) == NOW - timedelta(hours=3)
    english = check_atom(await fetch(site, "/disclosures.atom?lang=en"))
    assert english[0].findtext(f"{A}title") == "[Retracted] 十一月执法检查"


async def test_markup_and_characters_xml_cannot_carry_are_safe(site: Site) -> None:
    title = '<script>alert("x")</script> & ]]> 标题\x0b\ufffe'
    body = "第一段 <b>粗</b> &amp; \x1b[31m\n\n第二段 \U0001F600"
    async with site.pool.acquire() as conn, conn.transaction():
        await store.insert_record(  # straight to storage: the API would refuse \x0b
            conn, ref=None, subitem_code="enforcement.inspections", enterprise_id=None,
            title=title, body=body, effective_on=None, published_at=NOW, publisher="bureau",
            is_sample=False, attachments=[], actor="test")
    resp = await site.client.get("/disclosures.atom")
    raw = await resp.read()
    assert b"<script>" not in raw and b"&lt;script&gt;" in raw
    entries = check_atom(ET.fromstring(raw))
    assert entries[0].findtext(f"{A}title") == '<script>alert("x")</script> & ]]> 标题'
    assert entries[0].findtext(f"{A}content").endswith(
        "第一段 <b>粗</b> &amp; [31m\n\n第二段 \U0001F600")


async def test_the_feed_answers_304_to_its_etag(site: Site) -> None:
    first = await site.client.get("/disclosures.atom")
    again = await site.client.get("/disclosures.atom",
                                  headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304
    page = await (await site.client.get("/disclosures")).text()
    assert 'type="application/atom+xml" href="/disclosures.atom"' in page
