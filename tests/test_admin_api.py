"""The admin API over real HTTP on a real database: tokens and scopes on every route, the
audit log of every change, records' versions and retraction, hostile filters."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from disclosure_support import ENTERPRISE, VALID_CODE, admin_config, bearer, minter
from openapi_support import response_validator

from aqi_service.config import Config
from aqi_service.disclosure.tokens import SCOPES
from aqi_service.web.app import create_app

pytestmark = pytest.mark.db

PATH_VALUES = {"code": VALID_CODE, "id": "1", "outlet": "DA001", "year": "2025",
               "stage": "approval"}


def _admin_routes(client: TestClient) -> list[tuple[str, str, Any]]:
    out = []
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if path.startswith("/api/v1/admin/") and route.method != "HEAD":
            out.append((route.method, path, route.handler))
    return out


def _url(path: str) -> str:
    return re.sub(r"{(\w+)}", lambda m: PATH_VALUES[m[1]], path)


async def test_every_admin_route_needs_a_token_and_its_scope(
        admin_client: TestClient) -> None:
    routes = _admin_routes(admin_client)
    assert len(routes) >= 25
    mint = minter(admin_client)
    for method, path, handler in routes:
        needed = getattr(handler, "admin_scopes", None)
        assert needed, f"{method} {path} declares no scopes (wrap it with requires())"
        url = _url(path)
        resp = await admin_client.request(method, url, json={})
        assert resp.status == 401, (method, path)
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await resp.json())["error"]["code"] == "unauthorized"
        for header in ("Bearer aqi_000000000000_" + "A" * 43, "Bearer nonsense",
                       "Basic dXNlcjpwYXNz", "Bearer "):
            resp = await admin_client.request(method, url, json={},
                                              headers={"Authorization": header})
            assert resp.status == 401, (method, path, header)
        others = [s for s in SCOPES if s not in needed and s != "admin"]
        token = await mint(*others)
        resp = await admin_client.request(method, url, json={}, headers=bearer(token))
        assert resp.status == 403, (method, path, others)
        body = await resp.json()
        assert body["error"]["code"] == "forbidden"
        assert body["error"]["details"]["required_scopes"] == list(needed)
        # the right scope, or admin, passes the guard (whatever the handler then says)
        for scopes in ([needed[0]], ["admin"]):
            resp = await admin_client.request(method, url, json={},
                                              headers=bearer(await mint(*scopes)))
            assert resp.status not in (401, 403), (method, path, scopes)


async def test_revoked_and_expired_tokens_are_refused(admin_client: TestClient
                                                      ) -> None:
    token = await minter(admin_client)("admin", name="soon-gone")
    assert (await admin_client.get("/api/v1/admin/audit", headers=bearer(token))).status == 200
    async with admin_client.app[_pool_key()].acquire() as conn:
        await conn.execute("UPDATE admin_tokens SET revoked_at = now() WHERE name = 'soon-gone'")
    assert (await admin_client.get("/api/v1/admin/audit", headers=bearer(token))).status == 401
    token = await minter(admin_client)("admin", name="expired")
    async with admin_client.app[_pool_key()].acquire() as conn:
        await conn.execute("UPDATE admin_tokens SET expires_at = now() - interval '1 s' "
                           "WHERE name = 'expired'")
    assert (await admin_client.get("/api/v1/admin/audit", headers=bearer(token))).status == 401


def _pool_key() -> Any:
    from aqi_service.web import keys
    return keys.POOL


async def test_failures_are_rate_limited_per_address(config: Config, clock: Any,
                                                     tmp_path: Path) -> None:
    app = create_app(admin_config(config, tmp_path, auth_failures=3, auth_window_s=60),
                     scheduler=False, clock=clock)
    async with TestClient(TestServer(app)) as client:
        good = await minter(client)("admin")
        for _ in range(3):
            resp = await client.get("/api/v1/admin/audit", headers=bearer("aqi_bad"))
            assert resp.status == 401
        resp = await client.get("/api/v1/admin/audit", headers=bearer("aqi_bad"))
        assert resp.status == 429
        retry = int(resp.headers["Retry-After"])
        assert 1 <= retry <= 60
        assert (await resp.json())["error"]["code"] == "too_many_failures"
        # a good token still passes (it is verified before the lock applies)
        assert (await client.get("/api/v1/admin/audit", headers=bearer(good))).status == 200
        guard = app[_guard_key()]
        guard.set_clock(lambda: 10**9)  # the window has passed
        assert (await client.get("/api/v1/admin/audit", headers=bearer("aqi_bad"))).status \
            == 401


def _guard_key() -> Any:
    from aqi_service.web import keys
    return keys.ADMIN_GUARD


def test_the_failure_table_is_bounded() -> None:
    from aqi_service.web.admin_auth import FailureLimiter

    now = [0.0]
    limiter = FailureLimiter(limit=2, window_s=60, max_clients=100, clock=lambda: now[0])
    for i in range(10_000):
        limiter.fail(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter) == 100
    limiter.fail("192.0.2.1")
    assert limiter.retry_after("192.0.2.1") is None
    limiter.fail("192.0.2.1")
    assert limiter.retry_after("192.0.2.1") == 60
    now[0] = 59.5
    assert limiter.retry_after("192.0.2.1") == 1
    now[0] = 60.0
    assert limiter.retry_after("192.0.2.1") is None


async def _ok(resp: Any, status: int = 200) -> Any:
    body = await resp.json()
    assert resp.status == status, body
    return body


async def test_every_change_is_audited(admin_client: TestClient
                                       ) -> None:
    mint = minter(admin_client)
    writer = await mint("enterprises:write", "disclosures:write", "penalties:write",
                        "eia:write", "monitoring:write", name="bureau-desk")
    admin = await mint("admin", name="auditor")
    h = bearer(writer)
    c = admin_client
    await _ok(await c.post("/api/v1/admin/enterprises", json=ENTERPRISE, headers=h), 201)
    # a PATCH that changes nothing writes no audit entry
    await _ok(await c.patch(f"/api/v1/admin/enterprises/{VALID_CODE}",
                            json={"name_zh": "测试化工有限公司"}, headers=h))
    await _ok(await c.patch(f"/api/v1/admin/enterprises/{VALID_CODE}",
                            json={"name_zh": "测试化工股份有限公司"}, headers=h))
    await _ok(await c.put(f"/api/v1/admin/enterprises/{VALID_CODE}/outlets/DW001",
                          json={"name": "废水总排口", "limits": [
                              {"parameter": "w01001", "lower_limit": "6",
                               "upper_limit": "9"}]}, headers=h), 201)
    await _ok(await c.put(f"/api/v1/admin/enterprises/{VALID_CODE}/key-list/2026",
                          json={"categories": ["air", "water"]}, headers=h), 201)
    await _ok(await c.delete(f"/api/v1/admin/enterprises/{VALID_CODE}/key-list/2026",
                             headers=h))
    record = await _ok(await c.post("/api/v1/admin/disclosures", headers=h, json={
        "subitem": "monitoring.supervisory", "enterprise": VALID_CODE,
        "title": "监督性监测结果", "body": "二氧化硫达标", "effective_on": "2026-11-01"}), 201)
    rid = record["id"]
    await _ok(await c.post(f"/api/v1/admin/disclosures/{rid}/corrections", headers=h,
                           json={"body": "二氧化硫 21 mg/m³，达标", "note": "补充数值"}), 201)
    await _ok(await c.post(f"/api/v1/admin/disclosures/{rid}/retraction", headers=h,
                           json={"reason": "监测报告编号有误"}))
    penalty = await _ok(await c.post("/api/v1/admin/penalties", headers=h, json={
        "decision_no": "廊环罚〔2026〕第1号", "party_name": "测试化工股份有限公司",
        "credit_code": VALID_CODE, "violation": "超标排放", "legal_basis": "大气法第九十九条",
        "penalty": "罚款", "fine_amount": 123456.78, "decision_date": "2026-11-02"}), 201)
    assert penalty["fine_amount"] == "123456.78"  # exact, never through a float
    await _ok(await c.patch(f"/api/v1/admin/penalties/{penalty['id']}", headers=h,
                            json={"enforcement_status": "completed"}))
    project = await _ok(await c.post("/api/v1/admin/eia/projects", headers=h, json={
        "project_code": "2611-131002-04-01-000001", "name": "测试项目", "builder": "测试公司",
        "county": "anci", "location": "安次区", "project_type": "化工",
        "document_kind": "报告书"}), 201)
    await _ok(await c.patch(f"/api/v1/admin/eia/projects/{project['id']}", headers=h,
                            json={"summary": "新建装置"}))
    await _ok(await c.put(f"/api/v1/admin/eia/projects/{project['id']}/stages/pre_approval",
                          headers=h, json={"published_on": "2026-11-10",
                                           "comment_from": "2026-11-10",
                                           "comment_until": "2026-11-17"}), 201)
    counts = await _ok(await c.post("/api/v1/admin/monitoring-results", headers=h, json={
        "results": [{"enterprise": VALID_CODE, "outlet": "DA001", "parameter": "a21026",
                     "source": "supervisory", "method": "manual",
                     "measured_at": "2026-11-03T10:00", "value": "40.5"}]}), 201)
    assert counts == {"created": 1, "updated": 0, "unchanged": 0}
    upload = await c.post("/api/v1/admin/attachments", headers=h, data=_pdf_form())
    attachment = await _ok(upload, 201)

    entries = (await _ok(await c.get("/api/v1/admin/audit?limit=200",
                                     headers=bearer(admin))))["entries"]
    got = [(e["action"], e["entity"]) for e in reversed(entries)]
    assert got == [
        ("create", "enterprise"), ("update", "enterprise"), ("create", "outlet"),
        ("create", "key_listing"), ("delete", "key_listing"), ("create", "record"),
        ("correct", "record"), ("retract", "record"), ("create", "penalty"),
        ("update", "penalty"), ("create", "eia_project"), ("update", "eia_project"),
        ("create", "eia_stage"), ("create", "monitoring_result"), ("upload", "attachment")]
    assert all(e["actor"] == "token:bureau-desk" for e in entries)
    assert all(e["client_address"] == "127.0.0.1" for e in entries)
    update = next(e for e in entries if e["action"] == "update" and e["entity"] == "enterprise")
    assert update["before"]["name_zh"] == "测试化工有限公司"
    assert update["after"]["name_zh"] == "测试化工股份有限公司"
    retract = next(e for e in entries if e["action"] == "retract")
    assert (retract["before"]["status"], retract["after"]["status"]) == \
        ("corrected", "retracted")
    pen = next(e for e in entries if e["entity"] == "penalty" and e["action"] == "update")
    assert (pen["before"]["enforcement_status"], pen["after"]["enforcement_status"]) == \
        ("pending", "completed")
    assert entries[0]["after"]["sha256"] == attachment["sha256"]
    # filters
    only = await _ok(await c.get(f"/api/v1/admin/audit?entity=record&entity_id={rid}",
                                 headers=bearer(admin)))
    assert [e["action"] for e in only["entries"]] == ["retract", "correct", "create"]


def _pdf_form() -> Any:
    from aiohttp import FormData

    from aqi_service.disclosure.seed import sample_pdf

    form = FormData()
    form.add_field("file", sample_pdf(["x"]), filename="决定书.pdf",
                   content_type="application/pdf")
    return form


async def test_a_retracted_record_stays_visible_with_its_history(
        admin_client: TestClient) -> None:
    h = bearer(await minter(admin_client)("disclosures:write"))
    c = admin_client
    rec = await _ok(await c.post("/api/v1/admin/disclosures", headers=h, json={
        "subitem": "emergency.heavy_pollution_weather", "title": "启动橙色预警",
        "body": "自18日12时起", "published_at": "2026-11-17T17:30+08:00"}), 201)
    assert (rec["version"], rec["status"]) == (1, "published")
    assert rec["published_at"] == "2026-11-17T17:30:00+08:00"
    # nothing to correct, an unknown field, an empty reason: 400 naming the field
    for path, body, field in [
            ("corrections", {"note": "x"}, "body"),
            ("corrections", {"note": "x", "colour": "red"}, "colour"),
            ("corrections", {"body": "新"}, "note"),
            ("retraction", {"reason": "  "}, "reason")]:
        resp = await c.post(f"/api/v1/admin/disclosures/{rec['id']}/{path}", json=body, headers=h)
        problems = (await _ok(resp, 400))["error"]["details"]["problems"]
        assert field in [p["field"] for p in problems]
    await _ok(await c.post(f"/api/v1/admin/disclosures/{rec['id']}/retraction", headers=h,
                           json={"reason": "预警级别有误，以新通知为准"}))
    again = await c.post(f"/api/v1/admin/disclosures/{rec['id']}/retraction", headers=h,
                         json={"reason": "再次"})
    assert (await _ok(again, 409))["error"]["code"] == "conflict"
    fix = await c.post(f"/api/v1/admin/disclosures/{rec['id']}/corrections", headers=h,
                       json={"body": "改", "note": "改"})
    assert fix.status == 409
    doc = await _ok(await c.get(f"/api/v1/admin/disclosures/{rec['id']}", headers=h))
    assert (doc["status"], doc["status_reason"], doc["version"]) == \
        ("retracted", "预警级别有误，以新通知为准", 2)
    assert [v["change"] for v in doc["versions"]] == ["created", "retracted"]
    assert doc["versions"][1]["title"] == "启动橙色预警"
    listed = await _ok(await c.get("/api/v1/admin/disclosures?status=retracted", headers=h))
    assert [r["id"] for r in listed["records"]] == [rec["id"]]
    assert (await c.delete(f"/api/v1/admin/disclosures/{rec['id']}", headers=h)).status == 405


HOSTILE = ["' OR '1'='1", "'; DROP TABLE enterprises; --", "%", "_%_", "\\", "$1",
           "1) OR (1=1", "抽查' --", "%00", "null", "∅" * 50]
FILTERS = {
    "/api/v1/admin/enterprises": ["county", "control_level", "key_list_year", "q", "sample",
                                  "cursor", "limit"],
    "/api/v1/admin/disclosures": ["category", "subitem", "county", "status", "enterprise",
                              "published_from", "published_before", "q", "cursor", "limit"],
    "/api/v1/admin/penalties": ["credit_code", "county", "enforcement_status", "q", "sample",
                                "cursor", "limit"],
    "/api/v1/admin/eia/projects": ["county", "stage", "q", "sample", "cursor", "limit"],
    "/api/v1/admin/monitoring-results": ["enterprise", "outlet", "parameter", "source",
                                         "compliant", "sample", "cursor", "limit"],
    "/api/v1/admin/audit": ["entity", "entity_id", "actor", "since", "cursor", "limit"],
}


async def test_sql_metacharacters_in_every_filter_are_harmless(
        admin_client: TestClient) -> None:
    h = bearer(await minter(admin_client)("admin"))
    c = admin_client
    await _ok(await c.post("/api/v1/admin/enterprises", json=ENTERPRISE, headers=h), 201)
    for path, names in FILTERS.items():
        for name in names:
            for value in HOSTILE:
                resp = await c.get(path, params={name: value}, headers=h)
                body = await resp.json()
                assert resp.status in (200, 400), (path, name, value, body)
                if resp.status == 400:
                    assert body["error"]["details"].get("parameter") == name or \
                        body["error"]["code"] == "invalid", (path, name, body)
                else:
                    lists = [v for v in body.values() if isinstance(v, list)]
                    assert lists and all(len(x) <= 1 for x in lists), (path, name, value)
    async with c.app[_pool_key()].acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM enterprises") == 1
    # repeated parameters are refused by name
    resp = await c.get("/api/v1/admin/disclosures?status=published&status=retracted", headers=h)
    assert (await _ok(resp, 400))["error"]["details"]["parameter"] == "status"


async def test_bad_bodies_are_clear_errors(admin_client: TestClient
                                           ) -> None:
    h = bearer(await minter(admin_client)("admin"))
    c = admin_client
    resp = await c.post("/api/v1/admin/enterprises", data=b"{not json", headers={
        **h, "Content-Type": "application/json"})
    assert (await _ok(resp, 400))["error"]["code"] == "bad_json"
    resp = await c.post("/api/v1/admin/enterprises", data="x", headers=h)
    assert resp.status == 415
    resp = await c.post("/api/v1/admin/enterprises", json=[1, 2], headers=h)
    assert resp.status == 400
    bad = {**ENTERPRISE, "credit_code": "91350100M000100Y44", "lat": "north",
           "county": "北京", "outlets": [{"outlet_code": "DA001", "kind": "water"}]}
    problems = (await _ok(await c.post("/api/v1/admin/enterprises", json=bad, headers=h),
                          400))["error"]["details"]["problems"]
    fields = {p["field"] for p in problems}
    assert {"credit_code", "lat", "county", "outlets[0].kind"} <= fields
    resp = await c.post("/api/v1/admin/penalties", headers=h, json={
        "decision_no": "x", "party_name": "y", "violation": "v", "legal_basis": "b",
        "penalty": "p", "decision_date": "2026-11-02", "fine_amount": "12.345"})
    assert "at most 2 decimal places" in (await _ok(resp, 400))["error"]["message"]
    huge = {"results": [{}] * 1001}
    assert (await c.post("/api/v1/admin/monitoring-results", json=huge, headers=h)).status \
        == 400
    await _ok(await c.post("/api/v1/admin/enterprises", json=ENTERPRISE, headers=h), 201)
    dup = await c.post("/api/v1/admin/enterprises", json=ENTERPRISE, headers=h)
    assert (await _ok(dup, 409))["error"]["code"] == "conflict"
    assert (await c.get("/api/v1/admin/enterprises/91350100M000100Y44",
                        headers=h)).status == 404
    assert (await c.get("/api/v1/admin/disclosures/99999999999999999999",
                        headers=h)).status == 404


async def test_admin_responses_conform_to_the_openapi_document(
        admin_client: TestClient, tmp_path: Path) -> None:
    from aqi_service.disclosure.seed import load_seed
    from aqi_service.web import keys
    from aqi_service.web.openapi import for_app

    doc = await (await admin_client.get("/api/v1/openapi.json")).json()
    assert doc == for_app(admin_client.app)
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    async with admin_client.app[keys.POOL].acquire() as conn:
        await load_seed(conn, admin_client.app[keys.ATTACHMENTS])
    h = bearer(await minter(admin_client)("admin"))
    async with admin_client.app[keys.POOL].acquire() as conn:
        record_id = await conn.fetchval("SELECT id FROM disclosure_records "
                                        "WHERE status = 'corrected'")
        penalty_id = await conn.fetchval("SELECT min(id) FROM penalties")
        project_id = await conn.fetchval("SELECT min(id) FROM eia_projects")
    cases = [
        ("get", "/api/v1/admin/enterprises", "/api/v1/admin/enterprises", None, "200"),
        ("get", "/api/v1/admin/enterprises/91131003MA0LF0016W",
         "/api/v1/admin/enterprises/{code}", None, "200"),
        ("get", "/api/v1/admin/disclosures?limit=50", "/api/v1/admin/disclosures", None, "200"),
        ("get", "/api/v1/admin/disclosures?q=超标", "/api/v1/admin/disclosures", None, "200"),
        ("get", f"/api/v1/admin/disclosures/{record_id}", "/api/v1/admin/disclosures/{id}", None,
         "200"),
        ("get", "/api/v1/admin/disclosures?status=x", "/api/v1/admin/disclosures", None, "400"),
        ("get", "/api/v1/admin/penalties", "/api/v1/admin/penalties", None, "200"),
        ("get", f"/api/v1/admin/penalties/{penalty_id}", "/api/v1/admin/penalties/{id}",
         None, "200"),
        ("get", "/api/v1/admin/eia/projects", "/api/v1/admin/eia/projects", None, "200"),
        ("get", f"/api/v1/admin/eia/projects/{project_id}", "/api/v1/admin/eia/projects/{id}",
         None, "200"),
        ("get", "/api/v1/admin/monitoring-results?compliant=false",
         "/api/v1/admin/monitoring-results", None, "200"),
        ("get", "/api/v1/admin/audit", "/api/v1/admin/audit", None, "200"),
        ("get", "/api/v1/admin/tokens", "/api/v1/admin/tokens", None, "200"),
        ("post", "/api/v1/admin/enterprises", "/api/v1/admin/enterprises", ENTERPRISE, "201"),
        ("post", "/api/v1/admin/disclosures", "/api/v1/admin/disclosures",
         {"subitem": "enforcement.inspections", "title": "检查"}, "201"),
        ("post", "/api/v1/admin/disclosures", "/api/v1/admin/disclosures", {"title": 1}, "400"),
        ("get", "/api/v1/admin/disclosures/99999", "/api/v1/admin/disclosures/{id}", None, "404"),
    ]
    broken = {"records": [{"id": "one", "status": "deleted", "version": 0}],
              "next_cursor": 5}
    listing = response_validator(doc, "/api/v1/admin/disclosures", "200")
    assert len(list(listing.iter_errors(broken))) >= 3
    for method, url, path, body, status in cases:
        op = doc["paths"][path][method]
        assert op["security"][0]["bearerAuth"]
        resp = await admin_client.request(method.upper(), url, json=body, headers=h)
        assert str(resp.status) == status, (url, await resp.text())
        data = await resp.json()
        errors = list(response_validator(doc, path, status, method).iter_errors(data))
        assert not errors, (url, errors[:3])
        if status == "200" and "records" in data:
            assert data["records"], url
