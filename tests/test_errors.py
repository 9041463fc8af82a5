"""The one JSON error envelope, for errors no handler answered itself (real app, real HTTP)."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from aqi_service.config import Config
from aqi_service.web.app import create_app

pytestmark = pytest.mark.db


async def test_router_limits_and_crashes_answer_the_envelope(
        config: Config, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(config, scheduler=False)

    async def crash(request: web.Request) -> web.Response:
        raise RuntimeError("secret internal detail")

    app.router.add_get("/api/v1/_crash", crash)
    app.router.add_get("/_crash", crash)
    async with TestClient(TestServer(app)) as client:
        cases = [
            (client.get("/api/v1/no/such/thing"), 404, "not_found"),
            (client.post("/api/v1/now"), 405, "method_not_allowed"),
            (client.get("/api/v1/_crash"), 500, "internal_error"),
        ]
        with caplog.at_level(logging.ERROR):
            for call, status, code in cases:
                resp = await call
                assert resp.status == status
                assert resp.content_type == "application/json"
                body = await resp.json()
                assert body["error"]["code"] == code
                assert set(body["error"]) == {"code", "message", "details"}
                assert "secret" not in await resp.text()
        assert "secret internal detail" in caplog.text   # logged with its traceback
        resp = await client.post("/api/v1/now")
        assert "GET" in resp.headers["Allow"]
        # A body over the limit is refused by the server before any handler runs.
        resp = await client.post("/api/v1/admin/disclosures", data=b"x" * (1024 * 1024 + 10),
                                 headers={"Authorization": "Bearer nothing"})
        assert resp.status in (401, 413)
        assert (await resp.json())["error"]["code"] in ("unauthorized", "too_large")
        # The HTML pages keep their own error pages; a crash on a page path gets the HTML
        # 500 page, which names nothing internal either.
        resp = await client.get("/stations/NOPE")
        assert resp.status == 404 and resp.content_type == "text/html"
        with caplog.at_level(logging.ERROR):
            resp = await client.get("/_crash", headers={"Accept-Language": "en"})
        assert resp.status == 500 and resp.content_type == "text/html"
        text = await resp.text()
        assert "Server error" in text and "secret" not in text
