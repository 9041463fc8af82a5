"""The service as a whole: the app on a real database, leader election, /api/v1/now."""

from __future__ import annotations

from dataclasses import replace

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from service_support import small, wait_for

from aqi_service.config import Config
from aqi_service.web import keys
from aqi_service.web.app import create_app

pytestmark = pytest.mark.db


async def test_now_lists_every_station_with_its_record(client: TestClient) -> None:
    resp = await client.get("/api/v1/now")
    assert resp.status == 200
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert resp.headers["ETag"].startswith('"')
    assert "max-age=" in resp.headers["Cache-Control"]
    data = await resp.json()
    stations = data["stations"]
    assert [s["station_code"] for s in stations] == [f"LF{i:02d}" for i in range(1, 12)]
    for s in stations:
        assert isinstance(s["aqi"], int) and 0 <= s["aqi"] <= 500
        assert s["time_point"].endswith("+08:00")
        assert s["status"] == "on_time"
        assert s["scheme"] == "HJ633-2026"
        for key in ("pm2_5", "pm2_5_24h", "o3_8h", "so2", "co", "primary_pollutants",
                    "category", "color", "level"):
            assert key in s
    assert isinstance(data["city"]["aqi"], int)
    assert data["next_expected_at"] > data["data_as_of"]


async def test_now_answers_304_to_its_etag(client: TestClient) -> None:
    first = await client.get("/api/v1/now", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in first.headers
    etag = first.headers["ETag"]
    second = await client.get("/api/v1/now", headers={"If-None-Match": etag,
                                                       "Accept-Encoding": "identity"})
    assert second.status == 304
    assert second.headers["ETag"] == etag
    gz = await client.get("/api/v1/now", headers={"Accept-Encoding": "gzip"})
    assert gz.headers.get("Content-Encoding") == "gzip"
    # Another representation, another strong validator; the same JSON once decoded.
    assert gz.headers["ETag"] == etag[:-1] + '-gzip"'
    assert await gz.read() == await first.read()
    again = await client.get("/api/v1/now", headers={"Accept-Encoding": "gzip",
                                                      "If-None-Match": gz.headers["ETag"]})
    assert again.status == 304 and again.headers["ETag"] == gz.headers["ETag"]
    # A cache holding the identity copy that now accepts gzip needs nothing new either:
    # 304, naming the representation it would have been sent.
    cross = await client.get("/api/v1/now", headers={"Accept-Encoding": "gzip, br",
                                                      "If-None-Match": f'"x", {etag}'})
    assert cross.status == 304 and cross.headers["ETag"] == gz.headers["ETag"]
    assert cross.headers["Vary"] == "Accept-Encoding"
    assert cross.headers["Access-Control-Allow-Origin"] == "*"
    stale = await client.get("/api/v1/now", headers={"If-None-Match": '"other"'})
    assert stale.status == 200


async def test_now_answers_alike_on_either_path(client: TestClient) -> None:
    # Kept-alive HTTP/1.1 gets the serialised answer, Connection: close aiohttp's own: the
    # service's app must not add to one what the other lacks.
    for headers in ({}, {"Accept-Encoding": "gzip"}):
        fast = await client.get("/api/v1/now", headers=headers)
        slow = await client.get("/api/v1/now", headers={**headers, "Connection": "close"})
        assert fast.status == slow.status == 200
        assert await fast.read() == await slow.read()
        names = {h.lower() for h in fast.headers} | {"connection"}
        assert names == {h.lower() for h in slow.headers}
        for name in names - {"date", "connection", "cache-control"}:
            assert fast.headers[name] == slow.headers[name], name


async def test_health_and_readiness(client: TestClient) -> None:
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    body = await ready.json()
    assert ready.status == 200 and body["status"] == "ready" and body["leader"] is True
    missing = await client.get("/api/v1/nothing-here")
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "not_found"


async def test_two_instances_one_collects_and_the_other_takes_over(
    config: Config, clock, db_dsn: str,
) -> None:
    cfg = small(config)
    first = web.AppRunner(create_app(cfg, clock=clock))
    second = web.AppRunner(create_app(cfg, clock=clock))
    await first.setup()
    await second.setup()
    try:
        a, b = first.app, second.app
        assert a[keys.LEADER].is_leader is True
        assert b[keys.LEADER].is_leader is False
        conn = await asyncpg.connect(db_dsn)
        try:
            async def one_run() -> bool:
                return bool(await conn.fetchval(
                    "SELECT count(*) FROM collection_runs WHERE finished_at IS NOT NULL"))
            await wait_for(one_run)
            instances = await conn.fetch("SELECT DISTINCT instance FROM collection_runs")
            assert [r["instance"] for r in instances] == [a[keys.COLLECTOR].instance]
            # The follower's jobs do nothing while the leader lives.
            job = b[keys.SCHEDULE].scheduler.get_job("collect")
            assert await job.func() == "skipped"
            await first.cleanup()  # the leader goes away; its lock with it
            assert await b[keys.LEADER].check() is True

            async def taken_over() -> bool:
                return bool(await conn.fetchval(
                    "SELECT count(*) FROM collection_runs WHERE instance = $1 "
                    "AND finished_at IS NOT NULL", b[keys.COLLECTOR].instance))
            await wait_for(taken_over)
        finally:
            await conn.close()
    finally:
        await first.cleanup()
        await second.cleanup()


def test_config_masks_secrets_everywhere(config: Config) -> None:
    url = "postgresql://aqi:very-secret@db.example/aqi"
    from aqi_service.config import Secret

    cfg = replace(config, database=replace(config.database, url=Secret(url)))
    assert "very-secret" not in repr(cfg)
    assert "very-secret" not in str(cfg.masked())
    assert cfg.masked()["database"]["url"] == "postgresql://aqi:***@db.example/aqi"
