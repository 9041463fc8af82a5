"""Uploaded files: what a file really is (by its bytes), safe display names, download headers.

Allowed: PDF, PNG, JPEG, Office Open XML documents and workbooks (.docx/.xlsx, ZIP
packages told apart by their parts) and legacy Word/Excel files (.doc/.xls, OLE compound
files told apart by their directory's stream names). The declared content type and the
file name's extension must agree with what the bytes are. What a file of an allowed type
may not contain (scripts, actions, macros, a second identity) is checked by
``active_content``.
"""

from __future__ import annotations

import re
import struct
import unicodedata
import zipfile
from pathlib import Path
from urllib.parse import quote, unquote

from aqi_service.errors import InputError

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOC = "application/msword"
XLS = "application/vnd.ms-excel"
ALLOWED: dict[str, tuple[str, ...]] = {
    "application/pdf": (".pdf",),
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    DOCX: (".docx",),
    XLSX: (".xlsx",),
    DOC: (".doc",),
    XLS: (".xls",),
}
"""Content type → the file-name extensions it may carry."""
ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg",
           "application/x-pdf": "application/pdf", "application/vnd.msword": DOC,
           "application/x-msexcel": XLS, "application/excel": XLS}

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
MAX_NAME = 120
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f<>:\"|?*]")
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")


class UploadError(InputError):
    """A refused upload; ``code`` is the error code, ``status`` the HTTP status."""

    def __init__(self, status: int, code: str, message: str,
                 details: dict[str, str] | None = None) -> None:
        self.status = status
        self.code = code
        self.details = details or {}
        super().__init__(message)


def canonical_type(declared: str | None) -> str:
    """A declared Content-Type without parameters, lower case, aliases resolved."""
    base = (declared or "").split(";")[0].strip().lower()
    return ALIASES.get(base, base)


def display_name(raw: str | None) -> str:
    """The uploaded name made safe for display; names that try to be paths are refused."""
    if raw is None or not raw.strip():
        raise UploadError(400, "bad_filename", "the file part needs a file name")
    for _ in range(3):
        # some clients percent-encode the name (browsers send UTF-8 as is): decode first,
        # so that an encoded path — even encoded twice — is refused like a plain one
        if not _PERCENT.search(raw):
            break
        try:
            raw = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            break
    name = unicodedata.normalize("NFC", raw).strip()
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith(".") \
            or ".." in name:
        raise UploadError(400, "bad_filename",
                          "the file name must be a plain name, not a path")
    if _FORBIDDEN.search(name):
        raise UploadError(400, "bad_filename", "the file name contains forbidden characters")
    name = re.sub(r"\s+", " ", name)
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:MAX_NAME - len(ext) - 1] + dot + ext) if dot and len(ext) <= 8 \
            else name[:MAX_NAME]
    return name


def sniff(path: Path) -> str | None:
    """The content type the file's bytes show, among the allowed ones (None: not allowed)."""
    with path.open("rb") as f:
        head = f.read(16)
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(ZIP_MAGIC):
        return _office_open_xml(path)
    if head.startswith(OLE_MAGIC):
        return _ole(path)
    return None


def _office_open_xml(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    if "word/document.xml" in names:
        return DOCX
    if "xl/workbook.xml" in names:
        return XLSX
    return None


def _ole(path: Path) -> str | None:
    """Word or Excel by the stream names in a compound file's directory (MS-CFB)."""
    try:
        names = ole_stream_names(path)
    except (struct.error, ValueError, OSError):
        return None
    if "WordDocument" in names:
        return DOC
    if "Workbook" in names or "Book" in names:
        return XLS
    return None


_END = 0xFFFFFFFE
_FREE = 0xFFFFFFFF


def ole_stream_names(path: Path) -> set[str]:
    """The names of the streams in a compound file's directory (MS-CFB)."""
    data_size = path.stat().st_size
    with path.open("rb") as f:
        header = f.read(512)
        if len(header) < 512 or header[0x1C:0x1E] != b"\xfe\xff":
            raise ValueError("not a compound file")
        shift = struct.unpack_from("<H", header, 0x1E)[0]
        if shift not in (9, 12):
            raise ValueError("bad sector size")
        size = 1 << shift
        n_sectors = max(0, data_size - size) // size + 1
        n_fat, first_dir = struct.unpack_from("<II", header, 0x2C)
        first_difat, n_difat = struct.unpack_from("<II", header, 0x44)

        def sector(n: int) -> bytes:
            if n >= n_sectors:
                raise ValueError("sector out of range")
            f.seek((n + 1) * size)
            block = f.read(size)
            if len(block) < size:
                block += b"\0" * (size - len(block))
            return block

        fat_sectors = [s for s in struct.unpack_from("<109I", header, 0x4C) if s != _FREE]
        nxt, hops = first_difat, 0
        while nxt not in (_END, _FREE) and hops < n_difat and hops < n_sectors:
            block = sector(nxt)
            entries = struct.unpack_from(f"<{size // 4}I", block)
            fat_sectors.extend(e for e in entries[:-1] if e != _FREE)
            nxt, hops = entries[-1], hops + 1
        fat_sectors = fat_sectors[:n_fat]
        fat: list[int] = []
        for s in fat_sectors:
            fat.extend(struct.unpack_from(f"<{size // 4}I", sector(s)))
        names: set[str] = set()
        current, seen = first_dir, set()
        while current not in (_END, _FREE):
            if current in seen or current >= len(fat):
                raise ValueError("broken directory chain")
            seen.add(current)
            block = sector(current)
            for off in range(0, size, 128):
                length = struct.unpack_from("<H", block, off + 0x40)[0]
                kind = block[off + 0x42]
                if kind == 2 and 2 <= length <= 64:
                    names.add(block[off:off + length - 2].decode("utf-16-le", "replace"))
            current = fat[current]
    return names


def check_type(declared: str | None, sniffed: str | None, filename: str) -> str:
    """The accepted content type, or an UploadError (415) saying what disagrees."""
    if sniffed is None:
        raise UploadError(415, "unsupported_type",
                          "only PDF, PNG, JPEG, Word and Excel files are accepted "
                          "(the content is none of them)")
    declared_type = canonical_type(declared)
    if declared_type != sniffed:
        raise UploadError(415, "mislabelled",
                          f"declared as {declared_type or 'nothing'}, but the content is "
                          f"{sniffed}")
    ext = Path(filename).suffix.lower()
    if ext not in ALLOWED[sniffed]:
        raise UploadError(415, "mislabelled",
                          f"a {sniffed} file is named {', '.join(ALLOWED[sniffed])}, "
                          f"not {ext or 'without an extension'}")
    return sniffed


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the UTF-8 name (RFC 6266 / RFC 5987)."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\%;' else "_"
                       for c in filename) or "attachment"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
