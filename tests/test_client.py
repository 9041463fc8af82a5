"""Polling a logger over real HTTP: a response is read whole, however it arrives."""

from __future__ import annotations

import asyncio
import json
from itertools import pairwise

from aiohttp import web

from aqi_service.collect.client import create_session, fetch_json
from aqi_service.config import load_config

RECORDS = {"records": [{"time": "2026-11-20T10:00:00", "pm10": 80, "co": 0.6}] * 200}


async def test_a_body_arriving_in_pieces_is_read_whole(serve_app) -> None:
    """A remote logger's answer reaches the collector in several TCP segments (here three
    writes, 50 ms apart): the collector decodes the whole body, not the first piece."""
    body = json.dumps(RECORDS).encode()
    cuts = (0, len(body) // 3, 2 * len(body) // 3, len(body))

    async def slow(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.content_length = len(body)
        await resp.prepare(request)
        for start, end in pairwise(cuts):
            await resp.write(body[start:end])
            await asyncio.sleep(0.05)
        return resp

    app = web.Application()
    app.router.add_get("/hourly", slow)
    cfg = load_config("config").collection
    async with serve_app(app) as base, create_session(cfg) as session:
        fetched = await fetch_json(session, cfg, f"{base}/hourly", {})
    assert fetched.attempts == 1
    # every record, each JSON number as the text the logger wrote
    assert fetched.body == {"records": [{"time": "2026-11-20T10:00:00", "pm10": 80,
                                         "co": "0.6"}] * 200}
