"""Bulk import from CSV: every bad row reported (line, column, reason), all-or-nothing.

The file is checked row by row; then every row is written inside one transaction, each in
its own savepoint, so that problems only the database can see (an unknown enterprise, a
retracted record) are reported with their line too. The transaction is committed only when
no row failed — or, with ``skip_bad``, keeping the good rows — and never on a dry run.
Imports are idempotent on natural keys (credit code, decision number, record ``ref``,
a monitoring result's outlet/parameter/source/period/time) and audited as
``import:<file name>``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from aqi_service.disclosure import models
from aqi_service.disclosure import service as svc
from aqi_service.disclosure.fields import Invalid, Problem
from aqi_service.errors import InputError
from aqi_service.storage import disclosure as store

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_FIELD = 200_000


@dataclass(frozen=True, slots=True)
class RowError:
    """A problem of one row (line 1 is the header)."""

    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column or '-'}: {self.reason}"


@dataclass
class ImportReport:
    """What an import found and did."""

    kind: str
    file: str
    dry_run: bool
    rows: int = 0
    errors: list[RowError] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    imported: bool = False

    @property
    def bad_lines(self) -> list[int]:
        """Lines with at least one problem."""
        return sorted({e.line for e in self.errors})


Save = Callable[[asyncpg.Connection, Any, models.Vocabulary, svc.Actor, datetime, str],
                Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Kind:
    """One importable kind: its columns, parser, natural key and writer."""

    columns: tuple[str, ...]
    required: tuple[str, ...]
    parse: Callable[[dict[str, str], models.Vocabulary], Any]
    key: Callable[[Any], tuple[Any, ...]]
    save: Save


async def _save_enterprise(conn: asyncpg.Connection, ent: models.EnterpriseIn,
                           vocab: models.Vocabulary, actor: svc.Actor, now: datetime,
                           note: str) -> str:
    return (await svc.save_enterprise(conn, ent, actor))[0]


async def _save_penalty(conn: asyncpg.Connection, pen: models.PenaltyIn,
                        vocab: models.Vocabulary, actor: svc.Actor, now: datetime,
                        note: str) -> str:
    return (await svc.save_penalty(conn, pen, actor))[0]


async def _save_record(conn: asyncpg.Connection, rec: models.RecordIn,
                       vocab: models.Vocabulary, actor: svc.Actor, now: datetime,
                       note: str) -> str:
    return (await svc.import_record(conn, rec, note, actor, now))[0]


async def _save_monitoring(conn: asyncpg.Connection, res: models.MonitoringIn,
                           vocab: models.Vocabulary, actor: svc.Actor, now: datetime,
                           note: str) -> str:
    return (await svc.save_monitoring(conn, res, vocab, actor))[0]


def _parse_record(row: dict[str, str], vocab: models.Vocabulary) -> models.RecordIn:
    rec = models.parse_record(row, vocab, csv=True, strict=False, extra=("note",))
    if rec.ref is None:
        raise Invalid([Problem("ref", "required (the natural key of imports)")])
    return rec


KINDS: dict[str, Kind] = {
    "enterprises": Kind(
        columns=("credit_code", "name_zh", "name_en", "county", "industry_code", "industry",
                 "address", "lat", "lon", "legal_representative", "permit_no",
                 "control_level", "key_list", "is_sample"),
        required=("credit_code", "name_zh", "county"),
        parse=lambda row, vocab: models.parse_enterprise(row, vocab, csv=True, strict=False),
        key=lambda e: (e.credit_code,), save=_save_enterprise),
    "penalties": Kind(
        columns=("decision_no", "party_name", "credit_code", "violation", "legal_basis",
                 "penalty", "fine_amount", "decision_date", "enforcement_status",
                 "attachment", "published_at", "is_sample"),
        required=("decision_no", "party_name", "violation", "legal_basis", "penalty",
                  "decision_date"),
        parse=lambda row, vocab: models.parse_penalty(row, csv=True, strict=False),
        key=lambda p: (p.decision_no,), save=_save_penalty),
    "records": Kind(
        columns=("ref", "subitem", "enterprise", "title", "body", "effective_on",
                 "published_at", "attachments", "publisher", "is_sample", "note"),
        required=("ref", "subitem", "title"),
        parse=_parse_record, key=lambda r: (r.ref,), save=_save_record),
    "monitoring": Kind(
        columns=("enterprise", "outlet", "parameter", "source", "method", "period",
                 "measured_at", "value", "measured_value", "min_value", "max_value", "amount",
                 "unit", "upper_limit", "lower_limit", "flag", "agency", "report_no",
                 "is_sample"),
        required=("enterprise", "outlet", "parameter", "source", "method", "measured_at"),
        parse=lambda row, vocab: models.parse_monitoring(row, vocab, csv=True, strict=False),
        key=lambda m: (m.enterprise_code, m.outlet_code, m.parameter, m.source, m.period,
                       m.measured_at), save=_save_monitoring),
}


def decode(data: bytes, encoding: str) -> str:
    """The file's text; InputError naming the line of the first undecodable byte."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InputError(f"line {line}: not {encoding} text (a spreadsheet saved as GBK? "
                         "use --encoding gb18030)") from None
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}") from None


def read_rows(text: str, kind: Kind, report: ImportReport
              ) -> list[tuple[int, dict[str, str]]]:
    """The data rows with their first line numbers; header problems go to the report."""
    csv.field_size_limit(MAX_FIELD)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        report.errors.append(RowError(1, "", "the file is empty"))
        return []
    except csv.Error as exc:
        report.errors.append(RowError(1, "", f"not CSV: {exc}"))
        return []
    for name in header:
        if name not in kind.columns:
            report.errors.append(RowError(1, name[:40], f"unknown column (columns: "
                                                        f"{', '.join(kind.columns)})"))
    if len(set(header)) != len(header):
        report.errors.append(RowError(1, "", "a column is named twice"))
    for name in kind.required:
        if name not in header:
            report.errors.append(RowError(1, name, "required column is missing"))
    if report.errors:
        return []
    rows = []
    last_line = reader.line_num
    while True:
        start = last_line + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            report.errors.append(RowError(start, "", f"not CSV: {exc}"))
            break
        last_line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        report.rows += 1
        if len(row) != len(header):
            report.errors.append(RowError(start, "", f"{len(row)} fields, the header has "
                                                     f"{len(header)}"))
            continue
        rows.append((start, dict(zip(header, row, strict=True))))
    return rows


class _Rollback(Exception):
    """Leaves the import's transaction without committing."""


async def run_import(conn: asyncpg.Connection, kind_name: str, path: Path, *,
                     dry_run: bool = False, skip_bad: bool = False,
                     encoding: str = "utf-8-sig", now: datetime, note: str = "",
                     actor: str | None = None) -> ImportReport:
    """Import one CSV file; the report says what was (or would be) done."""
    kind = KINDS[kind_name]
    report = ImportReport(kind_name, path.name, dry_run)
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InputError(f"{path.name}: larger than {MAX_FILE_BYTES} bytes; split it")
    return await import_text(conn, kind_name, decode(path.read_bytes(), encoding), report,
                             dry_run=dry_run, skip_bad=skip_bad, now=now,
                             note=note or f"更正：批量导入 {path.name}",
                             actor=actor or f"import:{path.name}", _kind=kind)


async def import_text(conn: asyncpg.Connection, kind_name: str, text: str,
                      report: ImportReport, *, dry_run: bool, skip_bad: bool, now: datetime,
                      note: str, actor: str, _kind: Kind | None = None) -> ImportReport:
    """Import CSV text (the seed uses this directly)."""
    kind = _kind or KINDS[kind_name]
    vocab = await store.vocabulary(conn)
    parsed: list[tuple[int, Any]] = []
    seen: dict[tuple[Any, ...], int] = {}
    for line, row in read_rows(text, kind, report):
        try:
            item = kind.parse(row, vocab)
        except Invalid as exc:
            report.errors.extend(RowError(line, p.field, p.message) for p in exc.problems)
            continue
        key = kind.key(item)
        if key in seen:
            report.errors.append(RowError(line, "", f"same key as line {seen[key]}"))
            continue
        seen[key] = line
        parsed.append((line, item))
    who = svc.Actor(actor)
    counts: dict[str, int] = {}
    try:
        async with conn.transaction():
            for line, item in parsed:
                try:
                    async with conn.transaction():
                        action = await kind.save(conn, item, vocab, who, now, note)
                except Invalid as exc:
                    report.errors.extend(RowError(line, p.field, p.message)
                                         for p in exc.problems)
                    continue
                except (svc.Conflict, svc.NotFound, InputError) as exc:
                    report.errors.append(RowError(line, "", str(exc)))
                    continue
                except asyncpg.IntegrityConstraintViolationError as exc:
                    report.errors.append(RowError(
                        line, "", f"refused by the database ({exc.constraint_name})"))
                    continue
                counts[action] = counts.get(action, 0) + 1
            report.counts = counts
            if dry_run or (report.errors and not skip_bad):
                raise _Rollback
    except _Rollback:
        return report
    report.imported = True
    return report


def describe(report: ImportReport) -> list[str]:
    """The report as lines for a terminal."""
    lines = [str(e) for e in sorted(report.errors, key=lambda e: (e.line, e.column))]
    verb = "would be" if report.dry_run or not report.imported else "were"
    done = ", ".join(f"{n} {verb} {a}" for a, n in sorted(report.counts.items())) \
        or "nothing to do"
    if report.dry_run:
        state = "dry run: nothing imported"
    elif report.imported:
        state = "imported"
    else:
        state = "nothing imported (fix the rows, or use --skip-bad)"
    lines.append(f"{report.file}: {report.rows} rows, {len(report.bad_lines)} bad "
                 f"{'(skipped) ' if report.imported and report.errors else ''}— {done}; "
                 f"{state}")
    return lines
