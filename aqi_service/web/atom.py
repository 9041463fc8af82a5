"""``GET /disclosures.atom``: an Atom 1.0 feed (RFC 4287) of new, corrected and retracted records.

Each version of a record is one entry, so that a correction or a retraction reaches
subscribers as news rather than as a silent edit: its id is a tag: URI (RFC 4151) naming
the record and the version, ``updated`` is when that version was published, ``published``
when the record first was. Text goes out as ``type="text"`` content escaped by the XML
serialiser; characters XML 1.0 cannot carry are dropped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any

import asyncpg
from aiohttp import web

from aqi_service.aqi.schemes import SHANGHAI
from aqi_service.storage import disclosure_reads as reads
from aqi_service.web import conditional, keys
from aqi_service.web.public_url import public_origin
from aqi_service.web.templating import lang_for

ATOM_NS = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
TAG = "tag:aqi-service,2026:langfang/"
"""Prefix of every id in the feed (RFC 4151: authority, date, specific part)."""
ENTRIES = 50
MAX_AGE = 60
CONTENT_TYPE = "application/atom+xml"
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

_WORDS = {
    "title": ("廊坊市污染源与环评信息公开：新发布、更正和撤回",
              "Langfang pollution-source and EIA disclosures: new, corrected, retracted"),
    "subtitle": ("生态环境信息公开记录的每个版本；更正与撤回均作为新条目发布。",
                 "Every version of the environmental disclosure records; corrections and "
                 "retractions are published as new entries."),
    "author": ("廊坊市生态环境信息公开服务", "Langfang environmental disclosure service"),
    "bureau": ("廊坊市生态环境局", "Langfang Ecology and Environment Bureau"),
    "corrected": ("【更正】", "[Corrected] "),
    "retracted": ("【已撤回】", "[Retracted] "),
    "note_corrected": ("更正说明：", "Correction note: "),
    "note_retracted": ("撤回理由：", "Reason for retraction: "),
    "sample": ("【示例数据，虚构】", "[Sample data, fictional] "),
    "enterprise": ("企业：", "Enterprise: "),
}


def _w(lang: str, key: str) -> str:
    zh, en = _WORDS[key]
    return en if lang == "en" else zh


def xml_text(value: Any) -> str:
    """Text that XML 1.0 can carry (the serialiser escapes markup)."""
    return _NOT_XML.sub("", "" if value is None else str(value))


def _stamp(when: datetime) -> str:
    return when.astimezone(SHANGHAI).isoformat(timespec="seconds")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: xml_text(v) for k, v in attrs.items()})
    if text is not None:
        el.text = xml_text(text)
    return el


def _entry(feed: ET.Element, row: asyncpg.Record, origin: str, lang: str) -> None:
    entry = _sub(feed, "entry")
    _sub(entry, "id", f"{TAG}disclosures/{row['record_id']}/v{row['version']}")
    prefix = _w(lang, row["change"]) if row["change"] in ("corrected", "retracted") else ""
    _sub(entry, "title", prefix + row["title"], type="text")
    _sub(entry, "updated", _stamp(row["published_at"]))
    _sub(entry, "published", _stamp(row["first_published_at"]))
    author = _sub(entry, "author")
    if row["publisher"] == "enterprise" and row["enterprise_name_zh"]:
        _sub(author, "name", row["enterprise_name_zh"])
    else:
        _sub(author, "name", _w(lang, "bureau"))
    _sub(entry, "link", rel="alternate", type="text/html",
         href=f"{origin}/disclosures/{row['record_id']}" + ("?lang=en" if lang == "en" else ""))
    _sub(entry, "category", term=row["category_code"],
         label=row["category_name_en"] if lang == "en" else row["category_name_zh"])
    _sub(entry, "category", term=row["subitem_code"],
         label=row["subitem_name_en"] if lang == "en" else row["subitem_name_zh"])
    lines = []
    if row["is_sample"]:
        lines.append(_w(lang, "sample"))
    if row["change"] in ("corrected", "retracted"):
        lines.append(_w(lang, f"note_{row['change']}") + row["note"])
    if row["enterprise_name_zh"]:
        lines.append(f"{_w(lang, 'enterprise')}{row['enterprise_name_zh']} "
                     f"({row['credit_code']})")
    lines.append(row["body"])
    _sub(entry, "content", "\n\n".join(lines), type="text")


def render_feed(rows: list[asyncpg.Record], origin: str, lang: str,
                empty_updated: datetime) -> bytes:
    """The feed document of ``rows`` (newest first) as UTF-8 XML."""
    feed = ET.Element("feed", {"xmlns": ATOM_NS, XML_LANG: "en" if lang == "en" else "zh-CN"})
    _sub(feed, "id", f"{TAG}disclosures")
    _sub(feed, "title", _w(lang, "title"), type="text")
    _sub(feed, "subtitle", _w(lang, "subtitle"), type="text")
    _sub(feed, "updated", _stamp(max((r["published_at"] for r in rows),
                                     default=empty_updated)))
    _sub(feed, "link", rel="self", type=CONTENT_TYPE, href=f"{origin}/disclosures.atom")
    _sub(feed, "link", rel="alternate", type="text/html", href=f"{origin}/disclosures")
    _sub(_sub(feed, "author"), "name", _w(lang, "author"))
    for row in rows:
        _entry(feed, row, origin, lang)
    return (b'<?xml version="1.0" encoding="utf-8"?>\n'
            + ET.tostring(feed, encoding="utf-8", xml_declaration=False))


async def disclosures_feed(request: web.Request) -> web.StreamResponse:
    """``GET /disclosures.atom`` (``?lang=en`` for English labels)."""
    async with request.app[keys.POOL].acquire() as conn:
        rows = await reads.feed_versions(conn, ENTRIES)
    now = request.app[keys.CLOCK]()
    body = render_feed(list(rows), public_origin(request), lang_for(request),
                       now.replace(minute=0, second=0, microsecond=0))
    etag = conditional.etag_of(body)
    if conditional.matches(request, etag):
        resp = web.Response(status=304)
    else:
        resp = web.Response(body=body, content_type=CONTENT_TYPE, charset="utf-8")
        if conditional.accepts_gzip(request):
            resp.enable_compression(web.ContentCoding.gzip)
    conditional.cache_headers(resp, etag, MAX_AGE)
    resp.headers["Vary"] = "Accept-Encoding, Accept-Language"
    return resp


def setup_feed(app: web.Application) -> None:
    """Register the feed."""
    app.router.add_get("/disclosures.atom", disclosures_feed)
