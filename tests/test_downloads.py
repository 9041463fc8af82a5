"""Research downloads: streamed CSV/JSONL that parse back to exactly the stored values
(synthetic station-hours written by ``downloads_support.load_hours``)."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import json
import logging
from datetime import datetime

import pytest
from aiohttp.test_utils import TestClient
from downloads_support import CST, SELECT_STORED, assert_row, load_hours

from aqi_service.web import keys
from aqi_service.web.downloads import Slots
from aqi_service.web.errors import ApiError

pytestmark = pytest.mark.db
RANGE = {"from": "2026-11-18T00:00+08:00", "to": "2026-11-20T12:00+08:00"}
POLLUTANTS = ("so2", "no2", "co", "o3", "pm10", "pm2_5")
AVERAGE_COLUMNS = ("so2_24h", "no2_24h", "co_24h", "o3_8h", "o3_24h", "o3_8h_24h",
                   "pm10_24h", "pm2_5_24h")


async def stored(client: TestClient, codes: list[str]) -> dict[tuple[str, str], dict]:
    async with client.server.app[keys.POOL].acquire() as conn:
        rows = await conn.fetch("SELECT * FROM station_hourly WHERE station_code = ANY($1)",
                                codes)
    return {(r["station_code"], r["hour_end"].isoformat().replace("+00:00", "Z")): dict(r)
            for r in rows}


async def test_csv_parses_back_to_the_stored_values(client: TestClient) -> None:
    resp = await client.get("/api/v1/download/hourly.csv",
                            params={**RANGE, "stations": "LF01,LF02"})
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/csv")
    assert 'filename="langfang-hourly-20261118-20261120.csv"' in \
        resp.headers["Content-Disposition"]
    assert resp.headers["X-Licence"] == "CC-BY-4.0"
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    db = await stored(client, ["LF01", "LF02"])
    assert len(rows) == len(db) == 2 * 48
    for row in rows:
        rec = db[(row["station_code"], row["time_point_utc"])]
        for col in ("so2", "pm2_5", "pm2_5_24h", "o3_8h", "o3_8h_24h", "co_24h"):
            expected = rec[col]
            assert (float(row[col]) if row[col] else None) == expected, col
        assert int(row["aqi"]) == rec["aqi"] if row["aqi"] else rec["aqi"] is None
        assert row["pm2_5_24h_hours"] == str(rec["pm2_5_24h_hours"])
        assert row["scheme"] == "HJ633-2026" and row["pm2_5_flag"] == "N"


async def test_jsonl_and_gzip_and_pollutant_choice(client: TestClient) -> None:
    resp = await client.get("/api/v1/download/hourly.jsonl", headers={"Accept-Encoding": "gzip"},
                            params={**RANGE, "stations": "LF03", "pollutants": "pm2_5,o3"},
                            auto_decompress=False)
    assert resp.headers["Content-Encoding"] == "gzip"
    lines = gzip.decompress(await resp.read()).decode().splitlines()
    assert len(lines) == 48
    first = json.loads(lines[0])
    assert "pm2_5_24h" in first and "o3_8h_24h" in first and "so2" not in first
    refused = await client.get("/api/v1/download/hourly.jsonl",
                               headers={"Accept-Encoding": "gzip;q=0, deflate"},
                               params={**RANGE, "stations": "LF03"}, auto_decompress=False)
    assert "Content-Encoding" not in refused.headers
    assert len((await refused.read()).decode().splitlines()) == 48


@pytest.mark.parametrize(("query", "parameter"), [
    ({"stations": "LF01,NOPE"}, "stations"), ({"pollutants": "pm25"}, "pollutants"),
    ({"from": "garbage"}, "from"), ({"stations": "x" * 5000}, "stations"),
])
async def test_bad_download_parameters(client: TestClient, query: dict,
                                       parameter: str) -> None:
    resp = await client.get("/api/v1/download/hourly.csv", params=query)
    assert resp.status == 400
    assert (await resp.json())["error"]["details"]["parameter"] == parameter


async def test_csvw_metadata_describes_every_column(client: TestClient) -> None:
    meta = await (await client.get("/api/v1/download/hourly.csv-metadata.json")).json()
    assert meta["@context"] == "http://www.w3.org/ns/csvw"
    cols = [c["name"] for c in meta["tableSchema"]["columns"]]
    header = (await (await client.get("/api/v1/download/hourly.csv",
                                      params={**RANGE, "stations": "LF01"})).text()).split(
        "\n", 1)[0].split(",")
    assert cols == header
    by_name = {c["name"]: c for c in meta["tableSchema"]["columns"]}
    assert by_name["co_24h"]["unit"] == "mg/m3" and by_name["pm2_5"]["unit"] == "ug/m3"
    assert "hour-ending" in by_name["time_point"]["dc:description"]
    assert all(c["dc:description"] for c in meta["tableSchema"]["columns"])
    assert "float64" in meta["rdfs:comment"]


async def test_every_column_of_synthetic_hours_is_exact(client: TestClient) -> None:
    first = datetime(2026, 10, 1, 1, tzinfo=CST)
    last = datetime(2026, 10, 11, tzinfo=CST)
    pool = client.server.app[keys.POOL]
    async with pool.acquire() as conn:
        assert await load_hours(conn, ["LF04", "LF05"], first, last) == 2 * 240
        stored = await conn.fetch(SELECT_STORED, ["LF04", "LF05"], first, last)
    resp = await client.get("/api/v1/download/hourly.csv", params={
        "stations": "LF05,LF04", "from": first.isoformat(), "to": last.isoformat()})
    assert resp.headers["Link"].startswith("</api/v1/download/hourly.csv-metadata.json>")
    rows = list(csv.reader(io.StringIO(await resp.text())))
    header = rows[0]
    assert len(rows) - 1 == len(stored) == 480
    assert [r[0] for r in rows[1:]] == ["LF04"] * 240 + ["LF05"] * 240
    for row, rec in zip(rows[1:], stored, strict=True):
        assert_row(row, rec, header)
    cells = {c for row in rows[1:] for c in row}
    assert {"M", "D", "C", ""} <= cells  # flagged and missing values are in the sample


async def test_a_client_that_goes_away_frees_its_slot_and_connection(
        client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "aqi_service.web.downloads")
    app = client.server.app
    # A year of 11 stations: about 24 MB of CSV, more than the sockets' buffers hold.
    first, last = datetime(2025, 1, 1, 1, tzinfo=CST), datetime(2026, 1, 1, tzinfo=CST)
    codes = [f"LF{i:02d}" for i in range(1, 12)]
    async with app[keys.POOL].acquire() as conn:
        rows = await load_hours(conn, codes, first, last)
    query = {"stations": ",".join(codes), "from": first.isoformat(), "to": last.isoformat()}
    for fmt in ("csv", "jsonl", "parquet", "csv", "csv"):  # more than the pool holds
        resp = await client.get(f"/api/v1/download/hourly.{fmt}", params=query)
        assert resp.status == 200
        await resp.content.readany()
        resp.close()
    for _ in range(50):
        if app[keys.DOWNLOAD_SLOTS].busy == 0:
            break
        await asyncio.sleep(0.1)
    assert app[keys.DOWNLOAD_SLOTS].busy == 0
    assert caplog.text.count("the client went away") == 5
    whole = await client.get("/api/v1/download/hourly.csv", params=query)
    assert (await whole.text()).count("\n") == rows + 1


def test_downloads_beyond_the_bound_are_refused() -> None:
    slots = Slots(1)
    with slots:
        with pytest.raises(ApiError) as refused, slots:
            pass
        assert refused.value.status == 503
    with slots:
        assert slots.busy == 1
