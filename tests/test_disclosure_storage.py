"""Disclosure storage on a real PostgreSQL: schema rules, search of Chinese text, versions,
seed data, statistics and paging. Expectations come from the stored rows read independently
(plain SQL or Python over them), or are worked out by hand."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from aqi_service.aqi.schemes import SHANGHAI
from aqi_service.disclosure import models
from aqi_service.disclosure import service as svc
from aqi_service.disclosure.fields import Invalid
from aqi_service.disclosure.files import AttachmentStore
from aqi_service.disclosure.seed import load_seed
from aqi_service.errors import InputError
from aqi_service.storage import disclosure as store
from aqi_service.storage import disclosure_lists as lists
from aqi_service.storage import migrations
from aqi_service.storage.db import _init_connection

pytestmark = pytest.mark.db
NOW = datetime(2026, 11, 20, 2, 20, tzinfo=UTC)
ACTOR = svc.Actor("test")


@pytest.fixture
async def seeded(pool: asyncpg.Pool, tmp_path: Path) -> asyncpg.Pool:
    """The test database with the sample data set."""
    async with pool.acquire() as conn:
        await load_seed(conn, AttachmentStore(tmp_path / "att", 10 * 1024 * 1024), now=NOW)
    return pool


async def test_reference_tables_match_the_code(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT code, name_zh, name_en FROM counties")
    assert {r["code"]: (r["name_zh"], r["name_en"]) for r in rows} == models.COUNTIES


async def test_the_seed_is_sample_data_and_loads_idempotently(seeded: asyncpg.Pool,
                                                               tmp_path: Path) -> None:
    async with seeded.acquire() as conn:
        ents = await conn.fetch("SELECT credit_code, name_zh, county_code, is_sample, "
                                "credit_code_valid(credit_code) AS ok FROM enterprises")
        assert len(ents) == 20
        assert all(e["ok"] and e["is_sample"] and e["name_zh"].startswith("【示例】")
                   for e in ents)
        # enterprises in at least 10 of the 11 county-level units
        assert len({e["county_code"] for e in ents}) >= 10
        subitems = await conn.fetchval(
            "SELECT count(DISTINCT subitem_code) FROM disclosure_records WHERE is_sample")
        assert subitems >= 20
        audit_before = await conn.fetchval("SELECT count(*) FROM audit_log")
        report = await load_seed(conn, AttachmentStore(tmp_path / "att", 10 * 1024 * 1024),
                                 now=NOW)
        assert all(set(c) == {"unchanged"} for c in report.counts.values()), report.counts
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == audit_before
        # every EIA stage with a document has a stored PDF
        docs = await conn.fetch("SELECT a.content_type, a.filename FROM eia_stages s "
                                "JOIN attachments a ON a.id = s.attachment_id")
        assert len(docs) >= 12
        assert all(d["content_type"] == "application/pdf" and d["filename"].endswith(".pdf")
                   for d in docs)


async def test_compliance_and_exceedance_are_derived_exactly(seeded: asyncpg.Pool) -> None:
    async with seeded.acquire() as conn:
        rows = await conn.fetch(
            "SELECT m.parameter, m.value, m.flag, m.compliant, m.exceedance_multiple, "
            "m.upper_limit, m.lower_limit FROM monitoring_results m "
            "JOIN discharge_outlets o ON o.id = m.outlet_id "
            "JOIN enterprises e ON e.id = o.enterprise_id "
            "WHERE e.credit_code = $1 OR (e.credit_code = $2 AND m.parameter = 'w01001') "
            "OR (m.flag <> 'N')", "91131081MA0LF0139W", "91131022MA0LF00916")
    by = {(r["parameter"], r["flag"]): r for r in rows}
    # NOx 168 mg/m³ against the permit's 150 (copied from the outlet's limits):
    # (168 - 150) / 150 = 0.12 exactly
    nox = by[("a21002", "N")]
    assert nox["upper_limit"] == Decimal(150)
    assert nox["compliant"] is False and nox["exceedance_multiple"] == Decimal("0.12")
    assert by[("a21026", "N")]["compliant"] is True  # SO2 21 ≤ 50
    ph = by[("w01001", "N")]  # pH 5.4 below the range 6-9: not compliant, no multiple
    assert (ph["lower_limit"], ph["upper_limit"]) == (Decimal(6), Decimal(9))
    assert ph["compliant"] is False and ph["exceedance_multiple"] is None
    calibrating = by[("a34013", "C")]  # a calibration hour is not judged
    assert calibrating["compliant"] is None and calibrating["value"] is None


async def _new_db(pg_server: str, name: str, ctype: str) -> str:
    admin = await asyncpg.connect(pg_server)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
                            f"LC_COLLATE '{ctype}' LC_CTYPE '{ctype}'")
    finally:
        await admin.close()
    return urlunsplit(urlsplit(pg_server)._replace(path=f"/{name}"))


async def test_chinese_search_works_in_a_c_locale_database(pg_server: str,
                                                           tmp_path: Path) -> None:
    """pg_trgm drops CJK when LC_CTYPE is C; the bigram index must not."""
    name = f"aqi_c_locale_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    dsn = await _new_db(pg_server, name, "C")
    conn = await asyncpg.connect(dsn)
    try:
        await _init_connection(conn)
        await migrations.migrate(conn)
        await load_seed(conn, None, now=NOW)
        if await conn.fetchval("SELECT count(*) FROM pg_available_extensions "
                               "WHERE name = 'pg_trgm'"):
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            # the reason for bigrams: no trigrams at all for Chinese text in this locale
            assert await conn.fetchval("SELECT show_trgm('行政处罚决定书')") == []
        await _search_matches_substrings(conn)
    finally:
        await conn.close()
        admin = await asyncpg.connect(pg_server)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_chinese_search_in_the_test_database(seeded: asyncpg.Pool) -> None:
    async with seeded.acquire() as conn:
        await _search_matches_substrings(conn)


async def _search_matches_substrings(conn: asyncpg.Connection) -> None:
    rows = await conn.fetch(
        "SELECT r.id, r.title, r.body, e.name_zh FROM disclosure_records r "
        "LEFT JOIN enterprises e ON e.id = r.enterprise_id")
    assert len(rows) >= 30

    def expected(*terms: str) -> set[int]:
        return {r["id"] for r in rows
                if all(t in f"{r['title']}\n{r['body']}\n{r['name_zh'] or ''}".lower()
                       for t in terms)}
    for query, terms in [("超标", ("超标",)), ("行政处罚", ("行政处罚",)),
                         ("金盛 超标", ("金盛", "超标")), ("危险废物", ("危险废物",)),
                         ("罚", ("罚",)), ("重污染天气", ("重污染天气",)),
                         ("mg/m³", ("mg", "m³")), ("2024年", ("2024年",)),
                         ("ＣＯＤ", ("cod",)), ("不存在的词语", ("不存在的词语",))]:
        found = await conn.fetch("SELECT id FROM search_disclosures($1, p_limit => 500)",
                                 query)
        assert {r["id"] for r in found} == expected(*terms), query
    assert expected("超标") and expected("罚")
    # the index is what answers (not a scan of every text)
    plan = "\n".join(r[0] for r in await conn.fetch(
        "EXPLAIN SELECT * FROM disclosure_records "
        "WHERE search_tokens @> search_bigrams('超标')"))
    assert "disclosure_records_search_idx" in plan or "Seq Scan" in plan


async def test_records_are_versioned_and_never_deleted(seeded: asyncpg.Pool) -> None:
    async with seeded.acquire() as conn:
        vocab = await store.vocabulary(conn)
        rec = models.parse_record({"subitem": "enforcement.inspections",
                                   "title": "检查情况", "body": "第一版"}, vocab)
        async with conn.transaction():
            first = await svc.create_record(conn, rec, ACTOR, NOW)
        record_id = first["id"]
        fixed = models.parse_record({"subitem": "enforcement.inspections",
                                     "title": "检查情况", "body": "第二版"}, vocab)
        async with conn.transaction():
            await svc.correct_record(conn, record_id, fixed, "更正数字", ACTOR, NOW)
        async with conn.transaction():
            await svc.retract_record(conn, record_id, "重复发布", ACTOR, NOW)
        with pytest.raises(svc.Conflict):
            async with conn.transaction():
                await svc.correct_record(conn, record_id, rec, "再改", ACTOR, NOW)
        versions = await store.record_versions(conn, record_id)
        assert [(v["version"], v["change"], v["body"], v["note"]) for v in versions] == [
            (1, "created", "第一版", ""), (2, "corrected", "第二版", "更正数字"),
            (3, "retracted", "第二版", "重复发布")]
        current = await store.get_record(conn, record_id)
        assert (current["status"], current["version"], current["status_reason"]) == \
            ("retracted", 3, "重复发布")
        # retracted records stay listed (unless the caller leaves them out)
        listed, _ = await lists.list_records(conn, subitem="enforcement.inspections",
                                             limit=200)
        assert record_id in {r["id"] for r in listed}
        kept, _ = await lists.list_records(conn, subitem="enforcement.inspections",
                                           statuses=["published", "corrected"], limit=200)
        assert record_id not in {r["id"] for r in kept}
        for sql in ("DELETE FROM disclosure_records WHERE id = $1",
                    "DELETE FROM disclosure_record_versions WHERE record_id = $1",
                    "UPDATE disclosure_record_versions SET body = 'x' WHERE record_id = $1"):
            with pytest.raises(asyncpg.RestrictViolationError):
                await conn.execute(sql, record_id)
        with pytest.raises(asyncpg.RestrictViolationError):
            await conn.execute("DELETE FROM audit_log")
        with pytest.raises(asyncpg.RestrictViolationError):
            await conn.execute("TRUNCATE disclosure_records CASCADE")


async def test_a_retraction_needs_a_public_reason(seeded: asyncpg.Pool) -> None:
    async with seeded.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE disclosure_records SET status = 'retracted', "
                               "retracted_at = now(), status_reason = ' ' WHERE id = 1")


async def test_required_enterprise_rule_of_the_catalogue(seeded: asyncpg.Pool) -> None:
    async with seeded.acquire() as conn:
        vocab = await store.vocabulary(conn)
    with pytest.raises(Invalid, match=r"enterprise: records of basic_info\.profile name"):
        models.parse_record({"subitem": "basic_info.profile", "title": "x"}, vocab)
    with pytest.raises(Invalid, match="do not name an enterprise"):
        models.parse_record({"subitem": "key_enterprises.key_polluter_list", "title": "x",
                             "enterprise": "91131003MA0LF0016W"}, vocab)


async def test_stats_count_what_is_stored(seeded: asyncpg.Pool) -> None:
    async with seeded.acquire() as conn:
        raw = await conn.fetch("SELECT subitem_code, status, published_at "
                               "FROM disclosure_records")
        stats = await store.record_stats(conn)
        months = await store.record_stats_by_month(conn)
        year_2025 = await store.record_stats(
            conn, published_from=datetime(2024, 12, 31, 16, tzinfo=UTC),
            published_before=datetime(2025, 12, 31, 16, tzinfo=UTC))
    by_subitem = {s["subitem_code"]: s for s in stats}
    assert len(by_subitem) == 30
    for code, row in by_subitem.items():
        mine = [r for r in raw if r["subitem_code"] == code]
        assert row["records"] == len(mine)
        assert row["retracted"] == sum(r["status"] == "retracted" for r in mine)
        assert row["corrected"] == sum(r["status"] == "corrected" for r in mine)
    assert sum(s["retracted"] for s in stats) == 1 and sum(s["corrected"] for s in stats) == 1
    assert sum(m["records"] for m in months) == len(raw)
    # a month in Asia/Shanghai: 2025-11-01 00:00+08 is 2025-10-31 16:00 UTC
    nov = sum(m["records"] for m in months if m["month"].isoformat() == "2025-11-01")
    assert nov == sum(1 for r in raw if datetime(2025, 10, 31, 16, tzinfo=UTC)
                      <= r["published_at"] < datetime(2025, 11, 30, 16, tzinfo=UTC))
    assert sum(s["records"] for s in year_2025) == sum(
        1 for r in raw if r["published_at"].astimezone(SHANGHAI).year == 2025)


async def test_cursor_paging_walks_every_record_once(seeded: asyncpg.Pool) -> None:
    async with seeded.acquire() as conn:
        everything = await conn.fetch("SELECT id FROM disclosure_records "
                                      "ORDER BY published_at DESC, id DESC")
        seen, cursor = [], None
        while True:
            rows, cursor = await lists.list_records(conn, cursor=cursor, limit=7)
            seen.extend(r["id"] for r in rows)
            if cursor is None:
                break
        assert seen == [r["id"] for r in everything]
        with pytest.raises(InputError):
            await lists.list_records(conn, cursor="not-a-cursor")


HOSTILE = ["'; DROP TABLE disclosure_records; --", "%", "_", "\\", "' OR '1'='1",
           "$qq", "abc'||'", "enforcement.penalties' --", "penalties); SELECT pg_sleep(5)"]


@pytest.mark.parametrize("value", HOSTILE)
async def test_sql_metacharacters_in_storage_filters_are_plain_text(seeded: asyncpg.Pool,
                                                                    value: str) -> None:
    async with seeded.acquire() as conn:
        total = await conn.fetchval("SELECT count(*) FROM disclosure_records")
        assert (await lists.list_records(conn, category=value))[0] == []
        assert (await lists.list_records(conn, subitem=value))[0] == []
        assert (await lists.list_enterprises(conn, q=value))[0] == []
        assert (await lists.list_penalties(conn, q=value))[0] == []
        assert (await lists.list_eia(conn, q=value))[0] == []
        assert (await lists.list_records(conn, view=lists.ADMIN, q=value))[0] == []
        assert await conn.fetchval("SELECT count(*) FROM disclosure_records") == total
