"""Shared pieces of the disclosure/admin tests: the app on a real database (with or without
the sample data), tokens, and a test enterprise with every kind of disclosure."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from aqi_service.aqi.schemes import SHANGHAI
from aqi_service.config import Config
from aqi_service.disclosure import credit_code as cc
from aqi_service.disclosure import models, tokens
from aqi_service.disclosure import service as svc
from aqi_service.storage import admin as token_store
from aqi_service.storage import disclosure as store
from aqi_service.web import keys
from aqi_service.web.app import create_app, startup_collection

VALID_CODE = "91350100M000100Y43"
"""The example code published with GB 32100 (valid; see test_credit_code.py)."""


def admin_config(config: Config, tmp_path: Path, **disclosure: Any) -> Config:
    """The test config with attachments in a temporary folder."""
    settings = {"attachment_dir": tmp_path / "attachments", "max_attachment_bytes": 64 * 1024,
                "auth_failures": 10_000, **disclosure}
    return config.replace(disclosure=settings,
                          database={"data_dir": tmp_path / "data"})


MintToken = Callable[..., Coroutine[Any, Any, str]]


def minter(client: TestClient) -> MintToken:
    """A function making a token with some scopes in the app's database."""
    async def mint(*scopes: str, name: str | None = None) -> str:
        new = tokens.make_token()
        async with client.app[keys.POOL].acquire() as conn:
            await token_store.insert_token(conn, new.key_id, name or f"t-{new.key_id}",
                                           new.token_hash, list(scopes), "test", None)
        return new.token
    return mint


def bearer(token: str) -> dict[str, str]:
    """The Authorization header."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def admin_client(config: Config, clock: Any, tmp_path: Path
                       ) -> AsyncIterator[TestClient]:
    """The app (no scheduler) with attachments under tmp_path."""
    app = create_app(admin_config(config, tmp_path), scheduler=False, clock=clock)
    async with TestClient(TestServer(app)) as c:
        yield c


ACTOR = svc.Actor("test")
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=SHANGHAI)


@dataclass
class Site:
    """The app with the sample data loaded and one day of air-quality data."""

    app: web.Application
    client: TestClient
    pool: asyncpg.Pool


def seeded(config: Config, **disclosure: Any) -> Config:
    """The test configuration with the sample data switched on (or as given)."""
    return config.replace(disclosure={"seed_sample_data": True, **disclosure},
                          collection={"initial_backfill_days": 1})


@pytest.fixture(name="site")
async def site_fixture(config: Config, clock) -> AsyncIterator[Site]:
    """The app (no scheduler) with the sample data and one day of air-quality data."""
    app = create_app(seeded(config), scheduler=False, clock=clock)
    async with TestClient(TestServer(app)) as client:
        await startup_collection(app, clock)
        yield Site(app, client, app[keys.POOL])


def credit(org: str, division: str = "131003") -> str:
    """A valid credit code (both check characters computed) for a test enterprise."""
    return cc.build("9", "1", division, org)


def shanghai_day(when: datetime) -> date:
    """The calendar day in Beijing time."""
    return when.astimezone(SHANGHAI).date()


# Text that breaks naive SQL, LIKE patterns, escapes and lengths.
HOSTILE = ["'", "';--", "%", "_", "\\", "\x00", "x" * 5000, "' OR '1'='1", "%' OR 1=1 --",
           "1; SELECT pg_sleep(5)", "\\x27", "１'", "$1", "a'b_c%d\\e"]


async def add_enterprise_with_everything(conn: asyncpg.Connection) -> str:
    """A test enterprise in Gu'an with an outlet, a listing, records, a penalty, an EIA
    project and monitoring results (one compliant, one over the limit, one flagged)."""
    code = credit("T0000001", "131022")
    vocab = await store.vocabulary(conn)
    ent = models.parse_enterprise({
        "credit_code": code, "name_zh": "固安县测试化工有限公司", "county": "guan",
        "industry_code": "C2614", "industry": "有机化学原料制造", "lat": "39.41",
        "lon": "116.33", "control_level": "city", "address": "固安县测试路1号",
        "outlets": [{"outlet_code": "DA001", "name": "RTO 排气筒", "category": "main",
                     "hj212_mn": "TESTMN0001",
                     "limits": [{"parameter": "a24088", "upper_limit": "50", "unit": "mg/m³",
                                 "standard": "DB13/2322-2016"}]}],
        "key_listings": [{"year": 2026, "categories": ["air", "risk"]}]}, vocab)
    await svc.save_enterprise(conn, ent, ACTOR)
    for title, day in (("测试化工排污许可证信息", "2026-02-01"),
                       ("测试化工自行监测方案", "2026-03-01")):
        rec = models.parse_record({"subitem": "basic_info.profile", "enterprise": code,
                                   "title": title, "published_at": f"{day}T09:00:00+08:00"},
                                  vocab)
        await svc.create_record(conn, rec, ACTOR, NOW)
    await svc.save_penalty(conn, models.parse_penalty({
        "decision_no": "（测试）固环罚〔2026〕1号", "party_name": "固安县测试化工有限公司",
        "credit_code": code, "violation": "挥发性有机物超标排放", "legal_basis": "大气法第九十九条",
        "penalty": "罚款", "fine_amount": "200000.00", "decision_date": "2026-06-01"}), ACTOR)
    await svc.save_eia_project(conn, models.parse_eia_project({
        "project_code": "TEST-2026-0001", "name": "测试化工技改项目",
        "builder": "固安县测试化工有限公司",
        "builder_credit_code": code, "county": "guan", "location": "固安县测试路1号",
        "project_type": "有机化学原料制造", "document_kind": "report",
        "stages": [{"stage": "acceptance", "published_on": "2026-04-01"}]}), ACTOR)
    for hour, value, flag in ((9, "42.0", "N"), (10, "65.0", "N"), (11, "80.0", "M")):
        res = models.parse_monitoring({
            "enterprise": code, "outlet": "DA001", "parameter": "a24088", "source": "online",
            "method": "automatic", "period": "hour", "value": value, "flag": flag,
            "measured_at": f"2026-11-19T{hour:02d}:00:00+08:00"}, vocab)
        await svc.save_monitoring(conn, res, vocab, ACTOR)
    return code


# An enterprise as the admin API takes it (one outlet with one limit, one listing).
ENTERPRISE = {
    "credit_code": VALID_CODE, "name_zh": "测试化工有限公司", "county": "安次区",
    "industry_code": "C2614", "industry": "有机化学原料制造", "address": "安次区测试路1号",
    "lat": 39.5, "lon": 116.7, "control_level": "provincial",
    "outlets": [{"outlet_code": "DA001", "name": "锅炉烟囱", "limits": [
        {"parameter": "a21026", "upper_limit": "35", "unit": "mg/m³",
         "standard": "DB13/2209-2015"}]}],
    "key_listings": [{"year": 2025, "categories": ["air"]}],
}
