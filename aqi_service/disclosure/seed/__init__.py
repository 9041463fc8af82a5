"""The sample data set (【示例】, ``is_sample = true``): fictional enterprises of Langfang.

``load_seed(conn)`` loads it idempotently: 20 enterprises with outlets, limits and key-list
years (``enterprises.toml``), disclosure records in every category (``records.csv``), a
correction and a retraction (``changes.toml``), penalties (``penalties.csv``), monitoring
results including an exceedance and online hourly values (``monitoring.csv``) and EIA
projects with every stage (``eia.toml``) whose full texts are generated sample PDFs (stored
only when an attachment store is given). Everything is audited as ``seed``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from typing import Any

import asyncpg

from aqi_service.config import DEFAULT_CONFIG_DIR
from aqi_service.disclosure import models
from aqi_service.disclosure import service as svc
from aqi_service.disclosure.catalog import Catalog, load_catalog
from aqi_service.disclosure.fields import Reader
from aqi_service.disclosure.files import AttachmentStore, store_bytes
from aqi_service.disclosure.importer import KINDS, ImportReport, import_text, read_rows
from aqi_service.errors import InputError
from aqi_service.storage import disclosure as store

ACTOR = svc.Actor("seed")
SAMPLE_PREFIX = "【示例】"


@dataclass
class SeedReport:
    """What a seed load did, per kind: action → count."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, kind: str, action: str) -> None:
        """Count one action."""
        bucket = self.counts.setdefault(kind, {})
        bucket[action] = bucket.get(action, 0) + 1


def _text(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _toml(name: str) -> dict[str, Any]:
    return tomllib.loads(_text(name), parse_float=Decimal)


def sample_pdf(lines: list[str]) -> bytes:
    """A small valid one-page PDF showing ``lines`` (ASCII) — the sample documents."""
    def esc(s: str) -> str:
        return s.encode("ascii", "replace").decode().replace("\\", "\\\\") \
            .replace("(", "\\(").replace(")", "\\)")
    text = "BT /F1 12 Tf 60 780 Td " + " ".join(
        f"({esc(line)}) Tj 0 -18 Td" for line in lines) + " ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(text) + text.encode() + b"\nendstream",
    ]
    return pdf_file(objects)


def pdf_file(objects: list[bytes], head: bytes = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n",
             trailer_extra: bytes = b"") -> bytes:
    """A PDF of ``objects`` numbered from 1, object 1 the catalogue (ISO 32000-1 §7.5:
    header, objects, cross-reference table, trailer)."""
    out = bytearray(head)
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, trailer_extra, xref)
    return bytes(out)


async def _ensure_catalog(conn: asyncpg.Connection, catalog: Catalog | None) -> None:
    if catalog is not None:
        await store.sync_catalog(conn, catalog)
    elif not await conn.fetchval("SELECT count(*) FROM disclosure_subitems WHERE active"):
        await store.sync_catalog(conn, load_catalog(DEFAULT_CONFIG_DIR /
                                                    "disclosure_catalog.toml"))


async def _enterprises(conn: asyncpg.Connection, vocab: models.Vocabulary,
                       report: SeedReport) -> None:
    for raw in _toml("enterprises.toml")["enterprises"]:
        ent = models.parse_enterprise(raw, vocab)
        action, _ = await svc.save_enterprise(conn, ent, ACTOR)
        report.add("enterprises", action)


async def _csv(conn: asyncpg.Connection, kind: str, name: str, now: datetime,
               report: SeedReport) -> None:
    result = await import_text(conn, kind, _text(name), ImportReport(kind, name, False),
                               dry_run=False, skip_bad=False, now=now, note="", actor="seed")
    if result.errors or not result.imported:
        raise InputError(f"seed {name}: " + "; ".join(str(e) for e in result.errors[:5]))
    for action, n in result.counts.items():
        for _ in range(n):
            report.add(kind, action)


async def _records(conn: asyncpg.Connection, vocab: models.Vocabulary, now: datetime,
                   report: SeedReport) -> None:
    """Create-only (a record changed later by changes.toml must not be reverted)."""
    probe = ImportReport("records", "records.csv", False)
    for _line, row in read_rows(_text("records.csv"), KINDS["records"], probe):
        rec = models.parse_record(row, vocab, csv=True, strict=False)
        if await store.get_record_by_ref(conn, rec.ref or "") is not None:
            report.add("records", "unchanged")
            continue
        await svc.create_record(conn, rec, ACTOR, now)
        report.add("records", "created")
    if probe.errors:
        raise InputError("seed records.csv: " + "; ".join(str(e) for e in probe.errors[:5]))


async def _changes(conn: asyncpg.Connection, vocab: models.Vocabulary,
                   report: SeedReport) -> None:
    doc = _toml("changes.toml")
    for change in doc.get("corrections", []):
        row = await store.get_record_by_ref(conn, change["ref"])
        if row is None or row["version"] > 1:
            report.add("corrections", "unchanged")
            continue
        current = await svc.record_document(conn, row["id"], versions=False) or {}
        merged = {**svc.record_input(current), "body": change["body"]}
        rec = models.parse_record(merged, vocab)
        at = Reader(change).datetime("at", required=True) or datetime.now(UTC)
        await svc.correct_record(conn, row["id"], rec, change["note"], ACTOR, at)
        report.add("corrections", "corrected")
    for change in doc.get("retractions", []):
        row = await store.get_record_by_ref(conn, change["ref"])
        if row is None or row["status"] == "retracted":
            report.add("retractions", "unchanged")
            continue
        at = Reader(change).datetime("at", required=True) or datetime.now(UTC)
        await svc.retract_record(conn, row["id"], change["reason"], ACTOR, at)
        report.add("retractions", "retracted")


async def _eia(conn: asyncpg.Connection, files: AttachmentStore | None,
               report: SeedReport) -> None:
    for raw in _toml("eia.toml")["projects"]:
        raw = dict(raw)
        stages = []
        for stage in raw.pop("stages", []):
            stage = dict(stage)
            document = stage.pop("document", None)
            if document and files is not None:
                pdf = sample_pdf([
                    "SAMPLE DOCUMENT - fictional data for the aqi-service demo",
                    f"Project code: {raw['project_code']}",
                    f"Stage: {stage['stage']}",
                    f"Published on: {stage['published_on']}",
                    "The Chinese title of this document is its file name."])
                attachment = await store_bytes(conn, files, pdf, document, "application/pdf",
                                               ACTOR, is_sample=True)
                stage["attachment"] = attachment["id"]
            stages.append(stage)
        project = models.parse_eia_project({**raw, "stages": stages})
        action, _ = await svc.save_eia_project(conn, project, ACTOR)
        report.add("eia_projects", action)


async def load_seed(conn: asyncpg.Connection, files: AttachmentStore | None = None, *,
                    catalog: Catalog | None = None, now: datetime | None = None) -> SeedReport:
    """Load the sample data set (idempotent: a second load changes nothing)."""
    now = now or datetime.now(UTC)
    report = SeedReport()
    async with conn.transaction():
        await _ensure_catalog(conn, catalog)
        vocab = await store.vocabulary(conn)
        await _enterprises(conn, vocab, report)
        await _records(conn, vocab, now, report)
        await _changes(conn, vocab, report)
        await _csv(conn, "penalties", "penalties.csv", now, report)
        await _csv(conn, "monitoring", "monitoring.csv", now, report)
        await _eia(conn, files, report)
    return report
