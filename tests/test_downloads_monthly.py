"""Monthly bulk files per station: hour-ending calendar months, strong ETags, caching, errors."""

from __future__ import annotations

import csv
import gzip
import io
import re
from datetime import datetime

import pytest
from aiohttp.test_utils import TestClient
from downloads_support import CST, SELECT_STORED, assert_row, load_hours
from openapi_support import response_validator

from aqi_service.web import keys
from aqi_service.web.openapi import document

pytestmark = pytest.mark.db
PATH = "/api/v1/download/monthly/{code}/{month}.csv.gz"
CURRENT_MAX_AGE = 3600  # the current month is fresh until the next hourly publication
CLOSED_MAX_AGE = 30 * 86400


def _rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(gzip.decompress(body).decode())))


def _max_age(resp) -> int:
    return int(re.search(r"max-age=(\d+)", resp.headers["Cache-Control"])[1])


async def test_a_closed_month_holds_its_hour_ending_hours(client: TestClient) -> None:
    pool = client.server.app[keys.POOL]
    # From the last hour of 30 September to the first of 1 November (Asia/Shanghai).
    async with pool.acquire() as conn:
        await load_hours(conn, ["LF02"], datetime(2026, 9, 30, 23, tzinfo=CST),
                         datetime(2026, 11, 1, 2, tzinfo=CST))
        # The month: hours ending 1 October 01:00 … 1 November 00:00 (24:00 of 31 October).
        stored = await conn.fetch(SELECT_STORED, ["LF02"], datetime(2026, 10, 1, 1, tzinfo=CST),
                                  datetime(2026, 11, 1, tzinfo=CST))
    assert len(stored) == 31 * 24
    resp = await client.get("/api/v1/download/monthly/LF02/2026-10.csv.gz")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/gzip"
    assert "Content-Encoding" not in resp.headers
    assert resp.headers["Content-Disposition"] == \
        'attachment; filename="langfang_LF02_2026-10_hourly.csv.gz"'
    etag = resp.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)  # strong: no W/ prefix
    assert _max_age(resp) == CLOSED_MAX_AGE
    assert resp.headers["X-Licence"] == "CC-BY-4.0"
    body = await resp.read()
    assert client.server.app[keys.MONTHLY_CACHE].size == len(body)
    rows = _rows(body)
    header = rows[0]
    assert len(rows) - 1 == 744
    assert rows[1][header.index("time_point")] == "2026-10-01T01:00:00+08:00"
    assert rows[-1][header.index("time_point")] == "2026-11-01T00:00:00+08:00"
    for row, rec in zip(rows[1:], stored, strict=True):
        assert_row(row, rec, header)
    meta = await (await client.get("/api/v1/download/hourly.csv-metadata.json")).json()
    assert header == [c["name"] for c in meta["tableSchema"]["columns"]]

    again = await client.get("/api/v1/download/monthly/LF02/2026-10.csv.gz",
                             headers={"If-None-Match": etag})
    assert again.status == 304 and again.headers["ETag"] == etag

    # A revision changes the file and its ETag; the old ETag no longer matches.
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE station_hourly SET pm2_5 = 123.4, revision = revision + 1, "
            "computed_at = now() WHERE station_code = 'LF02' AND hour_end = $1",
            datetime(2026, 10, 15, 8, tzinfo=CST))
    revised = await client.get("/api/v1/download/monthly/LF02/2026-10.csv.gz",
                               headers={"If-None-Match": etag})
    assert revised.status == 200 and revised.headers["ETag"] != etag
    rows = _rows(await revised.read())
    changed = [r for r in rows[1:] if r[header.index("time_point")] ==
               "2026-10-15T08:00:00+08:00"]
    assert changed[0][header.index("pm2_5")] == "123.4"


async def test_the_current_month_is_fresh_until_the_next_publication(
        client: TestClient) -> None:
    resp = await client.get("/api/v1/download/monthly/LF01/2026-11.csv.gz")
    assert resp.status == 200
    assert 0 <= _max_age(resp) <= CURRENT_MAX_AGE
    rows = _rows(await resp.read())
    async with client.server.app[keys.POOL].acquire() as conn:
        stored = await conn.fetch(SELECT_STORED, ["LF01"], datetime(2026, 11, 1, 1, tzinfo=CST),
                                  datetime(2026, 12, 1, tzinfo=CST))
    assert len(rows) - 1 == len(stored) >= 48
    for row, rec in zip(rows[1:], stored, strict=True):
        assert_row(row, rec, rows[0])
    # The same bytes again (from the cache or made anew): the same strong ETag.
    second = await client.get("/api/v1/download/monthly/LF01/2026-11.csv.gz")
    assert second.headers["ETag"] == resp.headers["ETag"]
    assert await second.read() == await resp.read()


ERRORS = [
    ("NOPE", "2026-11", 404, "unknown_station"),
    ("LF..01", "2026-11", 404, "unknown_station"),
    ("LF01", "2026-08", 404, "no_data"),
    ("LF01", "2026-12", 404, "no_data"),
    ("LF01", "2999-01", 404, "no_data"),
    ("LF01", "0001-01", 404, "no_data"),
    ("LF01", "2026-13", 400, "bad_parameter"),
    ("LF01", "2026-00", 400, "bad_parameter"),
    ("LF01", "2026-1", 400, "bad_parameter"),
    ("LF01", "0000-01", 400, "bad_parameter"),
    ("LF01", "11-2026", 400, "bad_parameter"),
    ("LF01", "2026-11-01", 400, "bad_parameter"),
]


async def test_monthly_errors(client: TestClient) -> None:
    doc = document()
    for code, month, status, error in ERRORS:
        resp = await client.get(PATH.format(code=code, month=month))
        case = f"{code}/{month}"
        assert resp.status == status, case
        body = await resp.json()
        assert body["error"]["code"] == error, case
        if status == 400:
            assert body["error"]["details"]["parameter"] == "month", case
        assert not list(response_validator(doc, PATH, str(status)).iter_errors(body)), case
