"""The Parquet download: exact stored values, described schema, a clear error without pyarrow."""

from __future__ import annotations

import io
import sys
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from aiohttp.test_utils import TestClient
from downloads_support import CST, SELECT_STORED, expected_value, load_hours
from openapi_support import response_validator

from aqi_service.web import keys
from aqi_service.web.openapi import document

pytestmark = pytest.mark.db
FIRST = datetime(2026, 10, 1, 1, tzinfo=CST)
LAST = datetime(2026, 10, 11, tzinfo=CST)
CODES = ["LF06", "LF07"]


async def _download(client: TestClient, **query: str) -> pa.Table:
    resp = await client.get("/api/v1/download/hourly.parquet", params=query)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"] == "application/vnd.apache.parquet"
    assert resp.headers["Content-Disposition"].endswith('.parquet"')
    return pq.read_table(io.BytesIO(await resp.read()))


async def test_parquet_holds_exactly_the_stored_values(client: TestClient) -> None:
    async with client.server.app[keys.POOL].acquire() as conn:
        await load_hours(conn, CODES, FIRST, LAST)
        stored = await conn.fetch(SELECT_STORED, CODES, FIRST, LAST)
    table = await _download(client, stations=",".join(CODES), **{
        "from": FIRST.isoformat(), "to": LAST.isoformat()})
    assert table.num_rows == len(stored) == 480
    for col in table.column_names:
        got = table.column(col).to_pylist()
        want = [expected_value(r, col) for r in stored]
        assert got == want, col
    types = {f.name: f.type for f in table.schema}
    assert types["pm2_5"] == pa.float64() and types["co_24h"] == pa.float64()
    assert types["aqi"] == pa.int16() and types["scheme"] == pa.string()
    assert types["time_point"] == pa.timestamp("ms", tz="Asia/Shanghai")


async def test_parquet_schema_carries_licence_citation_and_codebook(
        client: TestClient) -> None:
    table = await _download(client, stations="LF01", pollutants="pm2_5,o3")
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    assert meta["licence"] == "CC-BY-4.0"
    assert "Langfang" in meta["citation"]
    assert "hour-ending" in meta["time_convention"]
    assert "float64" in meta["values"]
    assert [c for c in table.column_names if c.startswith(("so2", "no2", "co"))] == []
    field = table.schema.field("pm2_5_24h")
    assert field.metadata[b"unit"] == b"ug/m3"
    assert b"24 h" in field.metadata[b"description"]
    async with client.server.app[keys.POOL].acquire() as conn:
        hours = await conn.fetchval(
            "SELECT count(*) FROM station_hourly WHERE station_code = 'LF01' "
            "AND hour_end >= $1::timestamptz - interval '7 days'", client.server.app[
                keys.CLOCK]())
    assert table.num_rows == hours > 0


async def test_without_pyarrow_parquet_is_a_501_saying_how_to_get_it(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    # As if the optional package were not installed: importing it fails.
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    resp = await client.get("/api/v1/download/hourly.parquet", params={"stations": "LF01"})
    assert resp.status == 501
    body = await resp.json()
    assert body["error"]["code"] == "format_unavailable"
    assert "aqi-service[parquet]" in body["error"]["message"]
    assert body["error"]["details"]["install"] == "pip install 'aqi-service[parquet]'"
    errors = list(response_validator(document(), "/api/v1/download/hourly.{fmt}", "501")
                  .iter_errors(body))
    assert not errors
    csv = await client.get("/api/v1/download/hourly.csv", params={"stations": "LF01"})
    assert csv.status == 200


@pytest.mark.parametrize("fmt", ["xml", "parquet.gz"])
async def test_unknown_formats_are_404(client: TestClient, fmt: str) -> None:
    resp = await client.get(f"/api/v1/download/hourly.{fmt}")
    assert resp.status == 404
    assert "hourly.parquet" in (await resp.json())["error"]["message"]
