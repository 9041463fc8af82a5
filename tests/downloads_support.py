"""Synthetic station-hours for the download tests (``load_hours``: one INSERT, deterministic
decimals of up to 6 places, some missing and flagged values), the stored rows read back,
and the CSV cells and Parquet values each stored record should give."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

CST = ZoneInfo("Asia/Shanghai")


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


def expected_value(rec, col: str):
    """The value a Parquet column should hold for a stored record (None for empty)."""
    flags = rec["flags"] or {}
    if col == "position_name":
        return rec["name_zh"]
    if col in ("time_point", "time_point_utc"):
        return rec["hour_end"]
    if col == "primary_pollutants":
        return rec["primary_text"] or None
    if col.endswith("_flag"):
        return flags.get(col[:-5], "N" if rec[col[:-5]] is not None else None)
    return rec[col]
