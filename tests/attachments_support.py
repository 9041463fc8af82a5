"""Files for the attachment tests, built byte by byte from their formats' specifications
(PNG, JFIF, Office Open XML, MS-CFB), the upload form, a writer's token and the stored files."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

from aiohttp import FormData
from aiohttp.test_utils import TestClient
from disclosure_support import bearer, minter

from aqi_service.web import keys

UPLOAD = "/api/v1/admin/attachments"


def png() -> bytes:
    """A valid 1×1 grey PNG (signature, IHDR, IDAT, IEND with their CRCs)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b""))


def jpeg() -> bytes:
    """SOI, a JFIF APP0 segment, EOI."""
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return b"\xff\xd8\xff\xe0" + struct.pack(">H", len(app0) + 2) + app0 + b"\xff\xd9"


def ooxml(parts: dict[str, str]) -> bytes:
    """An Office Open XML package (a ZIP with [Content_Types].xml and the given parts)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.'
                   'openxmlformats.org/package/2006/content-types"/>')
        for name, text in parts.items():
            z.writestr(name, text)
    return buf.getvalue()


def cfb(stream: str) -> bytes:
    """A compound file (MS-CFB v3, 512-byte sectors): header, FAT in sector 0, directory in
    sector 1 with the root entry and one stream named ``stream``."""
    end, free, fatsect = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD
    header = bytearray(512)
    header[0:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<HHHHH", header, 0x18, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<IIIIIIII", header, 0x2C, 1, 1, 0, 0x1000, end, 0, end, 0)
    struct.pack_into("<109I", header, 0x4C, 0, *([free] * 108))
    fat = struct.pack("<128I", fatsect, end, *([free] * 126))

    def entry(name: str, kind: int) -> bytes:
        raw = (name + "\0").encode("utf-16-le")
        e = bytearray(128)
        e[:len(raw)] = raw
        struct.pack_into("<HBB", e, 0x40, len(raw), kind, 1)
        struct.pack_into("<III", e, 0x44, free, free, 1 if kind == 5 else free)
        struct.pack_into("<I", e, 0x74, end)
        return bytes(e)
    directory = entry("Root Entry", 5) + entry(stream, 2) + bytes(256)
    return bytes(header) + fat + directory


def form(name: str, content_type: str, data: bytes) -> FormData:
    """What aiohttp's client sends: the file name percent-encoded."""
    f = FormData()
    f.add_field("file", data, filename=name, content_type=content_type)
    return f


async def writer_headers(client: TestClient) -> dict[str, str]:
    """The Authorization header of a new token allowed to write disclosures."""
    return bearer(await minter(client)("disclosures:write"))


def stored_files(client: TestClient) -> list[Path]:
    """The files in the app's attachment folder."""
    folder = client.app[keys.ATTACHMENTS].directory
    return sorted(folder.iterdir()) if folder.exists() else []
