"""Research downloads: streamed CSV/JSONL that parse back to exactly the stored values.

``load_hours`` (used by the other download tests too) writes synthetic station-hours with
one INSERT: deterministic decimals of up to 6 places, some missing and flagged values.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import json
import logging
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from test_service import client  # noqa: F401  (fixture: app after a 2-day back-fill)

from aqi_service.web import keys
from aqi_service.web.downloads import Slots
from aqi_service.web.errors import ApiError

pytestmark = pytest.mark.db
RANGE = {"from": "2026-11-18T00:00+08:00", "to": "2026-11-20T12:00+08:00"}
CST = ZoneInfo("Asia/Shanghai")
POLLUTANTS = ("so2", "no2", "co", "o3", "pm10", "pm2_5")
AVERAGE_COLUMNS = ("so2_24h", "no2_24h", "co_24h", "o3_8h", "o3_24h", "o3_8h_24h",
                   "pm10_24h", "pm2_5_24h")

# n: hour number, k: station number. Values are decimals (numeric) cast to float8.
LOAD_HOURS = """
INSERT INTO station_hourly (
    station_code, hour_end, scheme, flags,
    so2, no2, co, o3, pm10, pm2_5,
    so2_24h, no2_24h, co_24h, o3_8h, o3_24h, o3_8h_24h, pm10_24h, pm2_5_24h,
    so2_24h_hours, no2_24h_hours, co_24h_hours, o3_8h_hours, o3_24h_hours,
    o3_8h_24h_hours, pm10_24h_hours, pm2_5_24h_hours,
    iaqi_so2, iaqi_no2, iaqi_co, iaqi_o3, iaqi_pm10, iaqi_pm2_5,
    aqi, computed_aqi, level, primary_mask, missing_mask, revision)
SELECT s.code, g.t,
    CASE WHEN g.t <= '2026-03-01 00:00+08' THEN 'HJ633-2012' ELSE 'HJ633-2026' END,
    CASE WHEN g.n % 101 = 0 THEN '{"so2": "M"}'::jsonb
         WHEN g.n % 157 = 0 THEN '{"pm10": "D", "o3": "C"}'::jsonb END,
    CASE WHEN g.n % 101 <> 0 THEN ((g.n * 7 + s.k * 13) % 2000)::numeric / 10 END,
    ((g.n * 11 + s.k) % 3000)::numeric / 10,
    ((g.n * 17 + s.k * 3) % 9000)::numeric / 1000,
    CASE WHEN g.n % 157 <> 0 THEN ((g.n * 19 + s.k) % 4000)::numeric / 10 END,
    CASE WHEN g.n % 157 <> 0 THEN ((g.n * 23 + s.k) % 6000)::numeric / 10 END,
    CASE WHEN g.n % 53 <> 0 THEN ((g.n * 29 + s.k * 7) % 5000)::numeric / 10 END,
    ((g.n * 7919 + s.k * 104729) % 300000000)::numeric / 1000000,
    ((g.n * 6007 + s.k * 7) % 200000000)::numeric / 1000000,
    ((g.n * 3001 + s.k) % 9000000)::numeric / 1000000,
    ((g.n * 9001 + s.k) % 400000000)::numeric / 1000000,
    ((g.n * 4001 + s.k) % 500000000)::numeric / 1000000,
    ((g.n * 5003 + s.k) % 400000000)::numeric / 1000000,
    ((g.n * 2003 + s.k) % 600000000)::numeric / 1000000,
    CASE WHEN g.n % 89 <> 0 THEN ((g.n * 1009 + s.k) % 500000000)::numeric / 1000000 END,
    (g.n % 25)::smallint, ((g.n + 1) % 25)::smallint, ((g.n + 2) % 25)::smallint,
    (g.n % 9)::smallint, ((g.n + 3) % 25)::smallint, ((g.n + 4) % 19)::smallint,
    ((g.n + 5) % 25)::smallint, CASE WHEN g.n % 89 <> 0 THEN ((g.n + 6) % 25)::smallint END,
    (g.n * 3 % 501)::smallint, (g.n * 5 % 501)::smallint, (g.n * 7 % 501)::smallint,
    (g.n * 11 % 501)::smallint, (g.n * 13 % 501)::smallint, (g.n * 17 % 501)::smallint,
    CASE WHEN g.n % 211 <> 0 THEN ((g.n + s.k) % 501)::smallint END,
    ((g.n + s.k) % 501)::smallint,
    CASE WHEN g.n % 211 <> 0 THEN (1 + (g.n + s.k) % 6)::smallint END,
    ((g.n * 7 + s.k) % 64)::smallint, 0, (g.n % 3)
FROM unnest($1::text[]) WITH ORDINALITY AS s(code, k),
     generate_series($2::timestamptz, $3::timestamptz, interval '1 hour')
         WITH ORDINALITY AS g(t, n)
"""
SELECT_STORED = """
SELECT h.*, s.name_zh, array_to_string(pollutant_names(h.primary_mask), ';') AS primary_text
FROM station_hourly h JOIN stations s ON s.code = h.station_code
WHERE h.station_code = ANY($1::text[]) AND h.hour_end >= $2 AND h.hour_end <= $3
ORDER BY h.station_code, h.hour_end
"""


async def load_hours(conn: asyncpg.Connection, codes: list[str], first: datetime,
                     last: datetime) -> int:
    """Synthetic station-hours for ``codes`` with hour_end in [first, last]; rows written."""
    await conn.execute("SELECT ensure_partitions($1, $2)", first, last)
    status = await conn.execute(LOAD_HOURS, codes, first, last)
    return int(status.split()[-1])


def expected_cells(rec: Any, header: list[str]) -> list[str]:
    """The CSV text of a stored record, column by column, worked out here from the record."""
    flags = rec["flags"] or {}
    out = []
    for col in header:
        if col == "position_name":
            out.append(rec["name_zh"])
        elif col == "time_point":
            out.append(rec["hour_end"].astimezone(CST).isoformat())
        elif col == "time_point_utc":
            out.append(rec["hour_end"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        elif col == "primary_pollutants":
            out.append(rec["primary_text"])
        elif col.endswith("_flag"):
            p = col[:-5]
            out.append(flags.get(p, "N" if rec[p] is not None else ""))
        elif rec[col] is None:
            out.append("")
        elif isinstance(rec[col], float):
            out.append(rec[col])  # compared as numbers: float(cell) == stored double
        else:
            out.append(str(rec[col]))
    return out


def assert_row(row: list[str], rec: Any, header: list[str]) -> None:
    """The parsed CSV row holds exactly the stored values."""
    for col, cell, want in zip(header, row, expected_cells(rec, header), strict=True):
        if isinstance(want, float):
            assert float(cell) == want, (col, cell, want)
        else:
            assert cell == want, (col, cell, want)


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
    refused = await client.get("/api/v1/download/hourly.jsonl",
                               headers={"Accept-Encoding": "gzip;q=0, deflate"},
                               params={**RANGE, "stations": "LF03"}, auto_decompress=False)
    assert "Content-Encoding" not in refused.headers
    assert len((await refused.read()).decode().splitlines()) == 48


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
    assert "float64" in meta["rdfs:comment"]


async def test_every_column_of_synthetic_hours_is_exact(client: TestClient) -> None:  # noqa: F811
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
        client: TestClient, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
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
