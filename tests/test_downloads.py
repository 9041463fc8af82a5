"""Research downloads: streamed CSV/JSONL that parse back to exactly the stored values."""

from __future__ import annotations

import csv
import gzip
import io
import json

import pytest
from aiohttp.test_utils import TestClient
from test_service import client  # noqa: F401  (fixture: app after a 2-day back-fill)

from aqi_service.web import keys

pytestmark = pytest.mark.db
RANGE = {"from": "2026-11-18T00:00+08:00", "to": "2026-11-20T12:00+08:00"}


async def stored(client: TestClient, codes: list[str]) -> dict[tuple[str, str], dict]:  # noqa: F811
    async with client.server.app[keys.POOL].acquire() as conn:
        rows = await conn.fetch("SELECT * FROM station_hourly WHERE station_code = ANY($1)",
                                codes)
    return {(r["station_code"], r["hour_end"].isoformat().replace("+00:00", "Z")): dict(r)
            for r in rows}


async def test_csv_parses_back_to_the_stored_values(client: TestClient) -> None:  # noqa: F811
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


async def test_jsonl_and_gzip_and_pollutant_choice(client: TestClient) -> None:  # noqa: F811
    resp = await client.get("/api/v1/download/hourly.jsonl", headers={"Accept-Encoding": "gzip"},
                            params={**RANGE, "stations": "LF03", "pollutants": "pm2_5,o3"},
                            auto_decompress=False)
    assert resp.headers["Content-Encoding"] == "gzip"
    lines = gzip.decompress(await resp.read()).decode().splitlines()
    assert len(lines) == 48
    first = json.loads(lines[0])
    assert "pm2_5_24h" in first and "o3_8h_24h" in first and "so2" not in first


@pytest.mark.parametrize(("query", "parameter"), [
    ({"stations": "LF01,NOPE"}, "stations"), ({"pollutants": "pm25"}, "pollutants"),
    ({"from": "garbage"}, "from"), ({"stations": "x" * 5000}, "stations"),
])
async def test_bad_download_parameters(client: TestClient, query: dict,  # noqa: F811
                                       parameter: str) -> None:
    resp = await client.get("/api/v1/download/hourly.csv", params=query)
    assert resp.status == 400
    assert (await resp.json())["error"]["details"]["parameter"] == parameter


async def test_csvw_metadata_describes_every_column(client: TestClient) -> None:  # noqa: F811
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
