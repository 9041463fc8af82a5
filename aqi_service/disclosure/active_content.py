"""What an uploaded file could do besides being read: refused by its bytes, with the reason.

Attachments are published to anyone, so a file is refused when it can act rather than
be read, or when it is also another kind of file than the one it claims to be:

* **PDF actions** (ISO 32000-1 §12.6): ``/JavaScript`` and ``/JS`` (scripts, whether run
  by ``/OpenAction``, ``/AA`` or a link), ``/Launch`` (starts a program), ``/GoToR`` and
  ``/GoToE`` (open another file: a UNC path leaks the reader's Windows credentials),
  ``/SubmitForm`` and ``/ImportData`` (send or read data), ``/AA`` (actions run without a
  click on open, close, page or field events: resolving what each one does would need a
  full object resolver, and a disclosure document needs none), ``/EmbeddedFile(s)`` (files
  inside, executables among them), ``/RichMedia`` (Flash, video players) and ``/XFA``
  (scripted forms). ``/OpenAction`` itself (often just the initial view) and ``/URI``
  links (a reader asks before it opens them) are allowed.
* **PDF obfuscation**: names are compared after their ``#xx`` escapes are decoded
  (``/J#61vaScript`` is ``/JavaScript``). Objects inside compressed object streams
  (``/Type /ObjStm``, PDF 1.5) are invisible in the file's bytes: those streams are
  inflated (bounded, :data:`MAX_INFLATED`) and read too. An object stream with any other
  filter (LZW, ASCII85, predictors, …), one that does not inflate, and an encrypted PDF
  (``/Encrypt``: strings and object streams are ciphertext) cannot be checked and are
  refused (``unverifiable``) rather than trusted. Other streams (page contents, images,
  fonts) hold no actions and are not inflated; their raw bytes are skipped by the name
  scan (compressed bytes would match three-letter names by chance) except where an
  ``N G obj`` header inside them shows an object a repairing reader could find there.
* **Polyglots**: HTML or script markers (``<html``, ``<script``, ``<svg``, …) in the
  first :data:`HEAD_BYTES` bytes, where browsers and old content sniffers look; the long
  ones (``<script``, ``<html``, ``<iframe``, ``javascript:``) anywhere; a PDF header in
  the first bytes of a non-PDF (Acrobat reads a header anywhere in the first 1024 bytes);
  a ZIP archive appended to a non-ZIP file (ZIP readers start from the end).
* **Office**: macros (``vbaProject.bin``, ``_VBA_PROJECT``), ActiveX controls, OLE
  packages and embedded objects (``oleObject*.bin``, ``Ole10Native``: carriers of
  executables), entries that are scripts, programs or web pages, and relationships that
  fetch external templates, frames or objects when the document opens.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from pathlib import Path

from aqi_service.disclosure.uploads import DOC, DOCX, XLS, XLSX, UploadError

HEAD_BYTES = 1024
MAX_INFLATED = 64 * 1024 * 1024
"""Bytes inflated from object streams at most (a bomb is refused, not followed)."""
MAX_RELS_BYTES = 1024 * 1024

PDF_REFUSED = {
    b"JavaScript": "runs JavaScript",
    b"JS": "runs JavaScript",
    b"Launch": "launches a program or opens a file",
    b"GoToR": "opens another file",
    b"GoToE": "opens an embedded file",
    b"SubmitForm": "sends form data",
    b"ImportData": "imports data from a file",
    b"AA": "runs actions without a click",
    b"EmbeddedFile": "carries an embedded file",
    b"EmbeddedFiles": "carries embedded files",
    b"RichMedia": "embeds rich media (Flash, players)",
    b"XFA": "holds a scripted XFA form",
}
_NAME = re.compile(rb"/([^\x00\t\n\x0c\r ()<>\[\]{}/%]*)")
_HEX = re.compile(rb"#([0-9A-Fa-f]{2})")
_OBJ = re.compile(rb"\b\d{1,10}\s+\d{1,5}\s+obj\b")
_ENDOBJ = re.compile(rb"\bendobj\b")
_MARKUP = rb"<(?:!doctype\s+html|html|head|body|script|svg|iframe|frame|object|embed|" \
          rb"meta|link|style|img|form|base|math|xml-stylesheet|\?xml-stylesheet)[\s>/]"
_HEAD_MARKERS = re.compile(_MARKUP, re.IGNORECASE)
_ANYWHERE = (b"<script", b"<html", b"<iframe", b"<!doctype", b"javascript:")
"""Markers looked for in the whole file (long enough not to occur by chance in binary)."""
_ANYWHERE_MARKERS = re.compile(rb"<(?:script|html|iframe)[\s>/]|<!doctype\s+html|javascript:")
_OBJ_BEFORE = re.compile(rb"(?:^|[^0-9])\d{1,10}\s+\d{1,5}\s+$")
OFFICE_ENTRY = re.compile(
    r"(?i)(vbaProject\.bin|vbaData\.xml|/activeX/|oleObject[^/]*\.bin$|"
    r"\.(exe|dll|scr|com|bat|cmd|ps1|vbs|vbe|js|jse|wsf|hta|jar|lnk|msi|html?|svg|xhtml)$)")
_EXTERNAL_REL = re.compile(
    rb'Type="[^"]*/(attachedTemplate|oleObject|frame|subDocument|aFChunk)"[^>]*'
    rb'TargetMode="External"|TargetMode="External"[^>]*'
    rb'Type="[^"]*/(attachedTemplate|oleObject|frame|subDocument|aFChunk)"')
OLE_REFUSED = {"_VBA_PROJECT": "holds macros", "\x01Ole10Native": "carries an OLE package",
               "dir": "holds macros"}


def refuse(code: str, message: str, found: str) -> UploadError:
    """The 415 a refused content gets (its reason in the message and details)."""
    return UploadError(415, code, message, {"found": found})


def inspect(path: Path, content_type: str, ole_names: set[str] | None = None) -> None:
    """Raise UploadError (415) when the file of ``content_type`` is active or a polyglot."""
    data = path.read_bytes()
    check_polyglot(data, content_type, path)
    if content_type == "application/pdf":
        check_pdf(data)
    elif content_type in (DOCX, XLSX):
        check_ooxml(path)
    elif content_type in (DOC, XLS) and ole_names is not None:
        check_ole(ole_names)


def check_polyglot(data: bytes, content_type: str, path: Path) -> None:
    """Markup where browsers look, PDF headers in non-PDFs, ZIPs appended to non-ZIPs."""
    head = data[:HEAD_BYTES]
    in_head = _HEAD_MARKERS.search(head)
    span = in_head.span() if in_head else _anywhere(data)
    if span:
        marker = data[span[0]:span[1]][:20].decode("latin-1")
        raise refuse("polyglot", f"the file also reads as a web page or script ({marker!r} "
                                 f"at byte {span[0]})", marker)
    if content_type != "application/pdf" and b"%PDF-" in head:
        raise refuse("polyglot", "the file also reads as a PDF (a PDF header in its first "
                                 f"{HEAD_BYTES} bytes)", "%PDF-")
    if content_type not in (DOCX, XLSX) and zipfile.is_zipfile(path):
        raise refuse("polyglot", "a ZIP archive is appended to the file", "ZIP")


def _anywhere(data: bytes) -> tuple[int, int] | None:
    """Where the first long marker in ``data`` is, case-insensitive (``find`` is fast)."""
    lowered = data.lower()
    first: tuple[int, int] | None = None
    for literal in _ANYWHERE:
        at = lowered.find(literal)
        while at >= 0 and (first is None or at < first[0]):
            match = _ANYWHERE_MARKERS.match(lowered, at)
            if match:
                first = match.span()
                break
            at = lowered.find(literal, at + 1)
    return first


def _objects_in(body: bytes) -> list[int]:
    """Where ``N G obj`` headers end inside a stream's raw bytes."""
    out, at = [], body.find(b"obj")
    while at >= 0:
        after = body[at + 3:at + 4]
        if (not after or not after.isalnum()) and _OBJ_BEFORE.search(body[max(0, at - 20):at]):
            out.append(at + 3)
        at = body.find(b"obj", at + 3)
    return out


def _stream_starts(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each ``stream`` keyword with its end of line (not ``endstream``)."""
    out, at = [], data.find(b"stream")
    while at >= 0:
        end = at + 6
        if (at == 0 or not data[at - 1:at].isalnum()) and data[end:end + 1] in (b"\r", b"\n"):
            end += 2 if data[end:end + 2] == b"\r\n" else 1
            out.append((at, end))
        at = data.find(b"stream", end)
    return out


def decode_name(raw: bytes) -> bytes:
    """A PDF name with its ``#xx`` escapes decoded (ISO 32000-1 §7.3.5)."""
    return _HEX.sub(lambda m: bytes([int(m[1], 16)]), raw) if b"#" in raw else raw


def _names(text: bytes) -> set[bytes]:
    return {decode_name(m[1]) for m in _NAME.finditer(text)}


def _refused_in(names: set[bytes]) -> None:
    for refused, reason in PDF_REFUSED.items():
        if refused in names:
            name = refused.decode()
            raise refuse("active_content", f"the PDF {reason} (/{name}); attachments must "
                                           "not act, only be read", f"/{name}")


def check_pdf(data: bytes) -> None:
    """Refuse actions, embedded files and what cannot be checked (see the module doc)."""
    plain, streams = _split_streams(data)
    names = _names(b" ".join(plain))
    if b"Encrypt" in names:
        raise refuse("unverifiable", "an encrypted PDF cannot be checked for scripts; "
                                     "upload an unencrypted copy", "/Encrypt")
    _refused_in(names)
    budget = MAX_INFLATED
    for dictionary, body in streams:
        # an object a repairing reader could find inside the raw bytes of a stream
        for start in _objects_in(body):
            end = _ENDOBJ.search(body, start)
            _refused_in(_names(body[start:end.start() if end else len(body)]))
        keys = _names(dictionary)
        if b"ObjStm" not in keys and not {b"N", b"First"} <= keys:
            continue
        inflated = _inflate_object_stream(dictionary, keys, body, budget)
        budget -= len(inflated)
        _refused_in(_names(inflated))


def _split_streams(data: bytes) -> tuple[list[bytes], list[tuple[bytes, bytes]]]:
    """The bytes outside streams, and each stream as (its dictionary, its raw body)."""
    plain: list[bytes] = []
    streams: list[tuple[bytes, bytes]] = []
    pos = 0
    for start, body_start in _stream_starts(data):
        if start < pos:
            continue
        end = data.find(b"endstream", body_start)
        end = len(data) if end < 0 else end
        before = data[pos:start]
        plain.append(before)
        tail = before[-4096:]
        headers = list(_OBJ.finditer(tail))
        streams.append((tail[headers[-1].end():] if headers else tail, data[body_start:end]))
        pos = end
    plain.append(data[pos:])
    return plain, streams


def _filters(dictionary: bytes) -> list[bytes] | None:
    """The filter names after ``/Filter`` in a stream dictionary (None: no filter)."""
    tokens = [decode_name(m[1]) for m in _NAME.finditer(dictionary)]
    if b"Filter" not in tokens:
        return None
    out = []
    for name in tokens[tokens.index(b"Filter") + 1:]:
        if not name.endswith(b"Decode") and name not in (b"Fl", b"AHx", b"A85", b"LZW",
                                                         b"RL", b"CCF", b"DCT", b"Crypt"):
            break
        out.append(name)
    return out


def _inflate_object_stream(dictionary: bytes, keys: set[bytes], body: bytes,
                           budget: int) -> bytes:
    filters = _filters(dictionary)
    if filters is None:
        return body
    if filters != [b"FlateDecode"] or b"DecodeParms" in keys or b"DP" in keys:
        raise refuse("unverifiable", "an object stream uses a filter that is not checked "
                                     f"({', '.join(f.decode() for f in filters) or '?'}); "
                                     "save the PDF without it", "/ObjStm")
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(body, budget + 1)
    except zlib.error:
        raise refuse("unverifiable", "an object stream does not inflate; the PDF cannot "
                                     "be checked", "/ObjStm") from None
    if len(out) > budget:
        raise refuse("unverifiable", f"the object streams inflate to more than "
                                     f"{MAX_INFLATED} bytes", "/ObjStm")
    return out


def check_ooxml(path: Path) -> None:
    """Macros, ActiveX, OLE objects, executables inside, external templates and frames."""
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if OFFICE_ENTRY.search(info.filename):
                raise refuse("active_content", f"the document holds {info.filename!r} "
                                               "(macros, controls, embedded programs or web "
                                               "pages are not accepted)", info.filename)
            if info.filename.endswith(".rels") and info.file_size <= MAX_RELS_BYTES \
                    and _EXTERNAL_REL.search(z.read(info)):
                raise refuse("active_content", "the document loads an external template, "
                                               "frame or object when opened", info.filename)


def check_ole(names: set[str]) -> None:
    """Macros and OLE packages in a legacy Word/Excel file."""
    for name, reason in OLE_REFUSED.items():
        if name in names:
            shown = name.lstrip("\x01")   # OLE's reserved names begin with a control char
            raise refuse("active_content", f"the document {reason} ({shown!r})", shown)
