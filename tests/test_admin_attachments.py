"""Attachments over real HTTP: allowed types by their bytes, refused names, sizes and labels,
and downloads that cannot be rendered by a browser."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from attachments_support import UPLOAD, cfb, form, jpeg, ooxml, png, stored_files, writer_headers

from aqi_service.disclosure.seed import sample_pdf

pytestmark = pytest.mark.db


DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ALLOWED = [
    ("报告.pdf", "application/pdf", sample_pdf(["report"])),
    ("map.png", "image/png", png()),
    ("photo.jpg", "image/jpeg", jpeg()),
    ("photo.JPEG", "image/jpg", jpeg()),
    ("意见.docx", DOCX, ooxml({"word/document.xml": "<w:document/>"})),
    ("表.xlsx", XLSX, ooxml({"xl/workbook.xml": "<workbook/>"})),
    ("旧文件.doc", "application/msword", cfb("WordDocument")),
    ("旧表格.xls", "application/vnd.ms-excel", cfb("Workbook")),
]


BOUNDARY = "aqiboundary7MA4YWxkTrZu0gW"


def browser_form(name: str, content_type: str, data: bytes) -> tuple[bytes, dict[str, str]]:
    """What a browser sends (HTML5): the file name as raw UTF-8 in ``filename``."""
    head = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{name}"\r\nContent-Type: {content_type}\r\n\r\n')
    body = head.encode("utf-8") + data + f"\r\n--{BOUNDARY}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


@pytest.mark.parametrize(("name", "content_type", "data"), ALLOWED,
                         ids=[a[0] for a in ALLOWED])
async def test_allowed_types_round_trip(admin_client: TestClient, name: str,
                                        content_type: str, data: bytes) -> None:
    h = await writer_headers(admin_client)
    body, headers = browser_form(name, content_type, data)
    resp = await admin_client.post(UPLOAD, data=body, headers={**h, **headers})
    doc = await resp.json()
    assert resp.status == 201, doc
    sha = hashlib.sha256(data).hexdigest()
    canonical = "image/jpeg" if content_type == "image/jpg" else content_type
    assert (doc["filename"], doc["content_type"], doc["size_bytes"], doc["sha256"]) == \
        (name, canonical, len(data), sha)
    assert resp.headers["Location"] == doc["url"] == f"/api/v1/attachments/{doc['id']}"
    # stored under a generated name, never the uploaded one
    stored = stored_files(admin_client)
    assert len(stored) == 1 and len(stored[0].name) == 32 and stored[0].read_bytes() == data

    # not linked to anything published yet: only the bureau's tokens see it
    assert (await admin_client.get(doc["url"])).status == 404
    got = await admin_client.get(doc["url"], headers=h)
    assert got.status == 200
    assert await got.read() == data
    assert got.headers["Content-Type"].startswith(canonical)
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert got.headers["X-Content-SHA256"] == sha
    assert got.headers["Content-Disposition"].startswith("attachment; ")


async def test_chinese_names_follow_rfc_6266_and_5987(admin_client: TestClient
                                                      ) -> None:
    h = await writer_headers(admin_client)
    body, headers = browser_form("决定书 (2025).pdf", "application/pdf", sample_pdf(["x"]))
    doc = await (await admin_client.post(UPLOAD, headers={**h, **headers}, data=body)).json()
    # the same name percent-encoded by a client library arrives decoded
    other = await (await admin_client.post(UPLOAD, headers=h, data=form(
        "决定书 (2025).pdf", "application/pdf", sample_pdf(["y"])))).json()
    assert doc["filename"] == other["filename"] == "决定书 (2025).pdf"
    got = await admin_client.get(doc["url"], headers=h)
    # 决 = E5 86 B3, 定 = E5 AE 9A, 书 = E4 B9 A6 in UTF-8; space %20, parentheses %28 %29
    assert got.headers["Content-Disposition"] == (
        'attachment; filename="___ (2025).pdf"; '
        "filename*=UTF-8''%E5%86%B3%E5%AE%9A%E4%B9%A6%20%282025%29.pdf")


@pytest.mark.parametrize("name", ["../../etc/passwd.pdf", "..\\..\\boot.pdf", "/etc/x.pdf",
                                  "a/b.pdf", ".htaccess.pdf", "..", "x..pdf",
                                  "bad\x07name.pdf", "con<1>.pdf", "",
                                  "%2E%2E%2Fsecret.pdf", "..%2Fx.pdf"])
async def test_path_like_names_are_refused(admin_client: TestClient,
                                           name: str) -> None:
    h = await writer_headers(admin_client)
    raw, headers = browser_form(name, "application/pdf", sample_pdf(["x"]))
    attempts = [await admin_client.post(UPLOAD, data=raw, headers={**h, **headers})]
    if name.isprintable():
        attempts.append(await admin_client.post(UPLOAD, data=form(
            name, "application/pdf", sample_pdf(["x"])), headers=h))
    for resp in attempts:
        body = await resp.json()
        assert resp.status == 400, body
        assert body["error"]["code"] in ("bad_filename", "bad_multipart")
    assert stored_files(admin_client) == []
    from aqi_service.web import keys
    async with admin_client.app[keys.POOL].acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM attachments") == 0


@pytest.mark.parametrize(("name", "declared", "data", "code"), [
    ("a.pdf", "image/png", sample_pdf(["x"]), "mislabelled"),
    ("a.png", "application/pdf", sample_pdf(["x"]), "mislabelled"),
    ("a.pdf", "application/octet-stream", sample_pdf(["x"]), "mislabelled"),
    ("a.docx", XLSX, ooxml({"xl/workbook.xml": "<workbook/>"}), "mislabelled"),
    ("a.doc", "application/vnd.ms-excel", cfb("WordDocument"), "mislabelled"),
    ("a.pdf", "application/pdf", b"<html><script>alert(1)</script></html>",
     "unsupported_type"),
    ("a.zip", "application/zip", ooxml({"other.txt": "x"}), "unsupported_type"),
    ("a.doc", "application/msword", cfb("Contents"), "unsupported_type"),
    ("a.exe", "application/pdf", b"MZ\x90\x00" + b"\x00" * 60, "unsupported_type"),
    ("a.svg", "image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'/>",
     "unsupported_type"),
])
async def test_mislabelled_and_unknown_types_are_refused(
        admin_client: TestClient, name: str, declared: str, data: bytes,
        code: str) -> None:
    h = await writer_headers(admin_client)
    resp = await admin_client.post(UPLOAD, data=form(name, declared, data), headers=h)
    body = await resp.json()
    assert resp.status == 415, body
    assert body["error"]["code"] == code
    assert stored_files(admin_client) == []


async def test_oversized_uploads_are_refused(admin_client: TestClient
                                             ) -> None:
    h = await writer_headers(admin_client)
    limit = 64 * 1024  # admin_config's max_attachment_bytes
    big = sample_pdf(["x"]) + b"%" * (limit * 3)
    resp = await admin_client.post(UPLOAD, data=form("big.pdf", "application/pdf", big),
                                   headers=h)
    assert resp.status == 413
    assert (await resp.json())["error"]["details"]["limit_bytes"] == limit

    boundary = BOUNDARY

    async def chunked() -> AsyncIterator[bytes]:
        # no Content-Length: the limit is enforced while streaming
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
               f"filename=\"big.pdf\"\r\nContent-Type: application/pdf\r\n\r\n").encode()
        for _ in range(40):
            yield b"%" * 8192
        yield f"\r\n--{boundary}--\r\n".encode()
    resp = await admin_client.post(UPLOAD, data=chunked(), headers={
        **h, "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert resp.status == 413
    assert stored_files(admin_client) == []  # the partial file was removed
    # exactly at the limit is accepted
    exact = sample_pdf(["x"])
    exact += b"%" * (limit - len(exact))
    resp = await admin_client.post(UPLOAD, data=form("exact.pdf", "application/pdf", exact),
                                   headers=h)
    assert resp.status == 201, await resp.text()


async def test_malformed_uploads(admin_client: TestClient) -> None:
    h = await writer_headers(admin_client)
    resp = await admin_client.post(UPLOAD, json={"file": "x"}, headers=h)
    assert resp.status == 415
    f = FormData()
    f.add_field("document", sample_pdf(["x"]), filename="a.pdf",
                content_type="application/pdf")
    resp = await admin_client.post(UPLOAD, data=f, headers=h)
    assert (await resp.json())["error"]["code"] == "bad_multipart"
    resp = await admin_client.post(UPLOAD, data=form("e.pdf", "application/pdf", b""),
                                   headers=h)
    assert resp.status in (400, 415)
    for bad in ("not-a-uuid", "00000000-0000-0000-0000-000000000000", "..%2F..%2Fetc"):
        assert (await admin_client.get(f"/api/v1/attachments/{bad}")).status == 404
