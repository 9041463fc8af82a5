"""No 500 from input: hostile parameters, ids and bodies get a 400/404 naming what is wrong,
and a real database outage gets a 503 with ``Retry-After`` (JSON) or an HTML error page.

Every case here answered 500 before (OverflowError on year-0001 dates, a NUL byte reaching
PostgreSQL, ``int()`` of a digit that is not ASCII, a body that is not UTF-8, a refused
database connection).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from disclosure_support import bearer, minter

pytestmark = pytest.mark.db

YEAR_ONE = {"from": "0001-01-01", "to": "0001-01-02"}


@pytest.mark.parametrize("path", [
    "/api/v1/stations/LF07/daily", "/api/v1/stations/LF07/hourly", "/api/v1/city/daily",
    "/api/v1/city/hourly", "/api/v1/download/hourly.csv", "/api/v1/download/hourly.jsonl",
])
async def test_year_one_dates_are_a_400_naming_the_parameter(
        client: TestClient, path: str) -> None:
    resp = await client.get(path, params=YEAR_ONE)
    assert resp.status == 400
    body = await resp.json()
    assert body["error"]["code"] == "bad_parameter"
    assert body["error"]["details"]["parameter"] in ("from", "to")


@pytest.mark.parametrize(("path", "query", "parameter"), [
    ("/api/v1/stations/LF01/hourly", {"to": "9999-12-31T23:59"}, "to"),
    ("/api/v1/stations/LF01/daily", {"to": "1999-12-31"}, "to"),
    ("/api/v1/stations/LF01/daily", {"to": "2300-01-01"}, "to"),
    ("/api/v1/city/hourly", {"to": ""}, "to"),
    ("/api/v1/city/daily", {"from": ""}, "from"),
    ("/api/v1/revisions", {"since": "0001-01-01T00:00Z"}, "since"),
    ("/api/v1/download/hourly.csv", {"stations": "LF01\x00"}, "stations"),
    ("/api/v1/download/hourly.csv", {"pollutants": "pm2_5\x1b"}, "pollutants"),
    ("/api/v1/stations/LF01/hourly", {"from": "2026-11-20T05:00\x00"}, "from"),
    ("/api/v1/rankings", {"period": "month", "month": "0001-01"}, "month"),
    ("/api/v1/rankings", {"period": "year", "year": "9999"}, "year"),
])
async def test_out_of_range_and_control_bytes_are_a_400(
        client: TestClient, path: str, query: dict, parameter: str) -> None:
    resp = await client.get(path, params=query)
    assert resp.status == 400, await resp.text()
    body = await resp.json()
    assert body["error"]["details"]["parameter"] == parameter


@pytest.mark.parametrize("raw_id", ["%C2%B9", "%D9%A3", "%EF%BC%91", "1%00", "-1", "+1",
                                    "9" * 19])
async def test_admin_ids_that_are_not_ascii_digits_are_a_404(
        admin_client: TestClient, raw_id: str) -> None:
    token = await minter(admin_client)("admin")
    for path in (f"/api/v1/admin/disclosures/{raw_id}", f"/api/v1/admin/penalties/{raw_id}",
                 f"/api/v1/admin/eia/projects/{raw_id}"):
        resp = await admin_client.get(path, headers=bearer(token))
        assert resp.status == 404, (path, await resp.text())
        assert (await resp.json())["error"]["code"] == "not_found"


@pytest.mark.parametrize(("body", "content_type", "status", "code"), [
    (b'{"name_zh": "\xff\xfe"}', "application/json", 400, "bad_encoding"),
    (b"\xc3\x28", "application/json; charset=utf-8", 400, "bad_encoding"),
    ('{"a": 1}'.encode("utf-16"), "application/json; charset=utf-16", 415, "unsupported_type"),
    (b'{"a": 1}', "application/json; charset=nonsense", 415, "unsupported_type"),
    (b'{"a": ', "application/json", 400, "bad_json"),
    (b"[1, 2]", "application/json", 400, "bad_json"),
    (b"a=1", "application/x-www-form-urlencoded", 415, "unsupported_type"),
])
async def test_admin_bodies_that_cannot_be_read_are_refused(
        admin_client: TestClient, body: bytes, content_type: str,
        status: int, code: str) -> None:
    token = await minter(admin_client)("admin")
    resp = await admin_client.post("/api/v1/admin/enterprises", data=body,
                                   headers={**bearer(token), "Content-Type": content_type})
    assert resp.status == status, await resp.text()
    assert (await resp.json())["error"]["code"] == code


# -- a real database outage ----------------------------------------------------------------

@pytest.fixture
async def outage(client: TestClient, db_dsn: str, pg_server: str
                 ) -> AsyncIterator[TestClient]:
    """The app's database refusing connections, its sessions terminated (then restored)."""
    name = urlsplit(db_dsn).path.lstrip("/")
    admin = await asyncpg.connect(pg_server)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = $1 AND pid <> pg_backend_pid()", name)
        yield client
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()


@pytest.mark.parametrize("path", [
    "/api/v1/stations", "/api/v1/stations/LF01/hourly", "/api/v1/city/daily",
    "/api/v1/enterprises", "/api/v1/disclosures", "/api/v1/download/hourly.csv",
    "/api/v1/rankings",
])
async def test_json_routes_answer_503_during_a_database_outage(
        outage: TestClient, path: str) -> None:
    for _ in range(2):   # the first request meets a terminated connection, the next a refusal
        resp = await outage.get(path)
        assert resp.status == 503, await resp.text()
        assert resp.content_type == "application/json"
        assert int(resp.headers["Retry-After"]) > 0
        body = await resp.json()
        assert body["error"]["code"] == "database_unavailable"
    # the snapshot keeps serving /now
    assert (await outage.get("/api/v1/now")).status == 200


@pytest.mark.parametrize("path", ["/daily", "/rankings", "/stations/LF01?range=x",
                                  "/enterprises", "/disclosures"])
async def test_uncached_pages_answer_an_html_503_during_a_database_outage(
        outage: TestClient, path: str) -> None:
    for lang, heading in (("en", "unavailable"), ("zh", "暂时无法")):
        resp = await outage.get(path, headers={"Accept-Language": lang})
        assert resp.status == 503
        assert resp.content_type == "text/html"
        assert int(resp.headers["Retry-After"]) > 0
        text = await resp.text()
        assert heading in text
        assert 'href="/"' in text   # a way back


async def test_admin_api_answers_503_during_a_database_outage(outage: TestClient) -> None:
    resp = await outage.get("/api/v1/admin/enterprises",
                            headers=bearer("aqi_000000000000_" + "A" * 43))
    assert resp.status == 503
    assert (await resp.json())["error"]["code"] == "database_unavailable"


async def test_service_recovers_after_the_outage(client: TestClient, db_dsn: str,
                                                 pg_server: str) -> None:
    name = urlsplit(db_dsn).path.lstrip("/")
    admin = await asyncpg.connect(pg_server)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = $1 AND pid <> pg_backend_pid()", name)
        assert (await client.get("/api/v1/stations")).status == 503
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
    resp = await client.get("/api/v1/stations")
    assert resp.status == 200


# -- HTML error pages for HTML routes --------------------------------------------------------

@pytest.mark.parametrize("path", ["/nope", "/stations", "/daily/extra", "/stations/"])
async def test_unknown_pages_get_the_html_404(client: TestClient, path: str) -> None:
    resp = await client.get(path, headers={"Accept-Language": "en"})
    assert resp.status == 404
    assert resp.content_type == "text/html"
    text = await resp.text()
    assert "Not found" in text and 'href="/"' in text
    zh = await client.get(path)
    assert "未找到" in await zh.text()


async def test_unknown_api_paths_keep_the_json_404(client: TestClient) -> None:
    for path in ("/api/v1/nope", "/api/nope"):
        resp = await client.get(path)
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "not_found"


async def test_wrong_method_on_a_page_is_an_html_405(client: TestClient) -> None:
    resp = await client.post("/daily")
    assert resp.status == 405
    assert resp.content_type == "text/html"
    assert "GET" in resp.headers["Allow"]


async def test_requests_without_credentials_are_not_counted_as_guesses(
        config, clock, tmp_path) -> None:
    from aiohttp.test_utils import TestServer
    from disclosure_support import admin_config

    from aqi_service.web.app import create_app

    app = create_app(admin_config(config, tmp_path, auth_failures=3), scheduler=False,
                     clock=clock)
    async with TestClient(TestServer(app)) as c:
        for _ in range(10):
            resp = await c.get("/api/v1/admin/enterprises")
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = bearer("aqi_000000000000_" + "A" * 43)
        for _ in range(3):
            assert (await c.get("/api/v1/admin/enterprises", headers=wrong)).status == 401
        assert (await c.get("/api/v1/admin/enterprises", headers=wrong)).status == 429
