"""CSV imports: every bad row reported by line and column, all-or-nothing, --skip-bad,
idempotent on natural keys, audited; also through the real ``aqi-service import`` command."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from aqi_service.disclosure.catalog import load_catalog
from aqi_service.disclosure.importer import run_import
from aqi_service.errors import InputError
from aqi_service.storage import disclosure as store

pytestmark = pytest.mark.db
REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 20, 2, 20, tzinfo=UTC)

# Valid codes (worked out in test_credit_code.py): the GB 32100 example and two more.
CODE_A = "91350100M000100Y43"
CODE_B = "91110000123456788M"
CODE_C = "9111000000000006XE"

ENTERPRISES = f"""credit_code,name_zh,county,industry_code,lat,lon,control_level,key_list
{CODE_A},甲化工有限公司,安次区,C2614,39.5,116.7,省控,2025:air+water
{CODE_B},"乙热力有限公司（供热分公司）",guangyang,D4430,39.52,116.71,national,"2024:air;
2025:air"
91350100M000100Y44,丙公司,anci,,,,,
{CODE_C},丁公司,北京,X99,39.5,,city,2025:sky
{CODE_A},甲化工重复,anci,,,,,
"""


async def _prepare(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await store.sync_catalog(conn, load_catalog(REPO / "config" /
                                                    "disclosure_catalog.toml"))


async def _counts(conn: asyncpg.Connection) -> tuple[int, ...]:
    return tuple([await conn.fetchval(f"SELECT count(*) FROM {t}") for t in (
        "enterprises", "key_polluter_listings", "disclosure_records", "penalties",
        "audit_log")])


async def test_dry_run_reports_every_bad_row_and_imports_nothing(pool: asyncpg.Pool,
                                                                 tmp_path: Path) -> None:
    await _prepare(pool)
    path = tmp_path / "ents.csv"
    path.write_text(ENTERPRISES, encoding="utf-8")
    async with pool.acquire() as conn:
        before = await _counts(conn)
        report = await run_import(conn, "enterprises", path, dry_run=True, now=NOW)
        assert await _counts(conn) == before
    got = {(e.line, e.column) for e in report.errors}
    # lines 3-4 are one record (a quoted new line): the bad rows are on lines 5, 6 and 7
    assert (5, "credit_code") in got
    assert {(6, "county"), (6, "industry_code"), (6, "lat"), (6, "key_list")} <= got
    assert (7, "") in got and "same key as line 2" in str(
        next(e for e in report.errors if e.line == 7))
    assert report.bad_lines == [5, 6, 7]
    assert report.rows == 5
    assert report.counts == {"created": 2}  # what the good rows would do
    assert not report.imported


async def test_an_import_with_bad_rows_imports_nothing_unless_skip_bad(
        pool: asyncpg.Pool, tmp_path: Path) -> None:
    await _prepare(pool)
    path = tmp_path / "ents.csv"
    path.write_text(ENTERPRISES, encoding="utf-8")
    async with pool.acquire() as conn:
        before = await _counts(conn)
        report = await run_import(conn, "enterprises", path, now=NOW)
        assert not report.imported and report.bad_lines == [5, 6, 7]
        assert await _counts(conn) == before
        report = await run_import(conn, "enterprises", path, skip_bad=True, now=NOW)
        assert report.imported and report.counts == {"created": 2}
        rows = await conn.fetch("SELECT credit_code, name_zh, county_code, control_level "
                                "FROM enterprises ORDER BY credit_code")
        assert [tuple(r) for r in rows] == [
            (CODE_B, "乙热力有限公司（供热分公司）", "guangyang", "national"),
            (CODE_A, "甲化工有限公司", "anci", "provincial")]
        listings = await conn.fetch(
            "SELECT e.credit_code, k.year, k.categories FROM key_polluter_listings k "
            "JOIN enterprises e ON e.id = k.enterprise_id ORDER BY 1, 2")
        assert [tuple(r) for r in listings] == [
            (CODE_B, 2024, ["air"]), (CODE_B, 2025, ["air"]), (CODE_A, 2025, ["air", "water"])]
        audit = await conn.fetch("SELECT actor, action, entity FROM audit_log")
        assert [tuple(r) for r in audit] == [("import:ents.csv", "create", "enterprise")] * 2
        # idempotent: the same file again changes nothing and audits nothing
        again = await run_import(conn, "enterprises", path, skip_bad=True, now=NOW)
        assert again.counts == {"unchanged": 2}
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == 2


async def test_records_are_keyed_by_ref_and_corrected_when_changed(pool: asyncpg.Pool,
                                                                   tmp_path: Path) -> None:
    await _prepare(pool)
    ents = tmp_path / "e.csv"
    ents.write_text(f"credit_code,name_zh,county\n{CODE_A},甲化工有限公司,anci\n",
                    encoding="utf-8")
    path = tmp_path / "records.csv"
    header = "ref,subitem,enterprise,title,body,published_at\n"
    path.write_text(header + (
        f"R-1,monitoring.supervisory,{CODE_A},监测结果,达标,2026-10-01T10:00\n"
        f"R-2,key_enterprises.key_polluter_list,,名录,2026年名录,20/03/2026\n"
        f"R-3,basic_info.profile,{CODE_B},基本信息,未登记的企业,2026-01-01T00:00+08:00\n"
        f"R-4,no.such_item,,标题,,\n"), encoding="utf-8")
    async with pool.acquire() as conn:
        assert (await run_import(conn, "enterprises", ents, now=NOW)).imported
        report = await run_import(conn, "records", path, dry_run=True, now=NOW)
        assert {(e.line, e.column) for e in report.errors} == {
            (3, "published_at"), (4, "enterprise"), (5, "subitem")}
        path.write_text(header + (
            f"R-1,monitoring.supervisory,{CODE_A},监测结果,达标,2026-10-01T10:00\n"
            f"R-2,key_enterprises.key_polluter_list,,名录,2026年名录,2026-03-20T09:00\n"),
            encoding="utf-8")
        report = await run_import(conn, "records", path, now=NOW)
        assert report.imported and report.counts == {"created": 2}
        published = await conn.fetchval("SELECT published_at FROM disclosure_records "
                                        "WHERE ref = 'R-1'")
        assert published == datetime(2026, 10, 1, 2, 0, tzinfo=UTC)  # 10:00 Asia/Shanghai
        path.write_text(header + (
            f"R-1,monitoring.supervisory,{CODE_A},监测结果,达标（二氧化硫 21 mg/m³）,"
            "2026-10-01T10:00\n"
            f"R-2,key_enterprises.key_polluter_list,,名录,2026年名录,2026-03-20T09:00\n"),
            encoding="utf-8")
        report = await run_import(conn, "records", path, now=NOW, note="补充数值")
        assert report.counts == {"corrected": 1, "unchanged": 1}
        versions = await conn.fetch(
            "SELECT v.version, v.change, v.body, v.note, v.actor "
            "FROM disclosure_record_versions v JOIN disclosure_records r ON r.id = v.record_id "
            "WHERE r.ref = 'R-1' ORDER BY v.version")
        assert [tuple(v) for v in versions] == [
            (1, "created", "达标", "", "import:records.csv"),
            (2, "corrected", "达标（二氧化硫 21 mg/m³）", "补充数值", "import:records.csv")]


async def test_penalties_keep_exact_fines(pool: asyncpg.Pool, tmp_path: Path) -> None:
    await _prepare(pool)
    path = tmp_path / "p.csv"
    path.write_text(
        "decision_no,party_name,credit_code,violation,legal_basis,penalty,fine_amount,"
        "decision_date,enforcement_status\n"
        f"罚1,甲公司,{CODE_A},超标,大气法,罚款,\"1,234,567.89\",2026-11-01,completed\n"
        "罚2,张某,,焚烧,大气法,罚款,0.1,2026-11-02,\n"
        "罚3,乙公司,,超标,水法,罚款,12.345,2026-11-03,paid\n"
        "罚4,丙公司,,超标,水法,罚款,-5,2026/11/04,pending\n", encoding="utf-8")
    async with pool.acquire() as conn:
        report = await run_import(conn, "penalties", path, skip_bad=True, now=NOW)
        assert {(e.line, e.column) for e in report.errors} == {
            (4, "fine_amount"), (4, "enforcement_status"), (5, "fine_amount"),
            (5, "decision_date")}
        rows = await conn.fetch("SELECT decision_no, fine_amount::text, enforcement_status "
                                "FROM penalties ORDER BY decision_no")
    assert [tuple(r) for r in rows] == [("罚1", "1234567.89", "completed"),
                                        ("罚2", "0.10", "pending")]


async def test_header_and_encoding_problems(pool: asyncpg.Pool, tmp_path: Path) -> None:
    await _prepare(pool)
    path = tmp_path / "x.csv"
    path.write_text("credit_code,name,county,colour\n", encoding="utf-8")
    async with pool.acquire() as conn:
        report = await run_import(conn, "enterprises", path, dry_run=True, now=NOW)
        got = {(e.line, e.column, e.reason.split(" (")[0]) for e in report.errors}
        assert got == {(1, "name", "unknown column"), (1, "colour", "unknown column"),
                       (1, "name_zh", "required column is missing")}
        path.write_bytes(f"credit_code,name_zh,county\n{CODE_A},甲公司,anci\n"
                         .encode("gb18030"))
        with pytest.raises(InputError, match="line 2: not utf-8-sig text"):
            await run_import(conn, "enterprises", path, now=NOW)
        report = await run_import(conn, "enterprises", path, encoding="gb18030", now=NOW)
        assert report.imported
        path.write_text(f"credit_code,name_zh,county\n{CODE_B},乙,anci,extra\n",
                        encoding="utf-8")
        report = await run_import(conn, "enterprises", path, now=NOW)
        assert [str(e) for e in report.errors] == [
            "line 2, column -: 4 fields, the header has 3"]


def _cli(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AQI_DATABASE_URL": dsn, "AQI_CONFIG_DIR": str(REPO / "config")}
    return subprocess.run([sys.executable, "-m", "aqi_service", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


async def test_the_import_command(db_dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "ents.csv"
    path.write_text(ENTERPRISES, encoding="utf-8")
    dry = _cli(db_dsn, "import", "enterprises", str(path), "--dry-run")
    assert dry.returncode == 1, dry.stderr
    lines = dry.stdout.splitlines()
    assert any(line.startswith("line 5, column credit_code: not a valid unified social "
                               "credit code") for line in lines)
    assert lines[-1] == ("ents.csv: 5 rows, 3 bad — 2 would be created; "
                         "dry run: nothing imported")
    failed = _cli(db_dsn, "import", "enterprises", str(path))
    assert failed.returncode == 1 and "nothing imported" in failed.stdout
    done = _cli(db_dsn, "import", "enterprises", str(path), "--skip-bad")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == (
        "ents.csv: 5 rows, 3 bad (skipped) — 2 were created; imported")
    conn = await asyncpg.connect(db_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM enterprises") == 2
        assert await conn.fetchval("SELECT count(DISTINCT actor) FROM audit_log") == 1
        assert await conn.fetchval("SELECT min(actor) FROM audit_log") == "import:ents.csv"
    finally:
        await conn.close()
