"""Research downloads: long hourly series of many stations, streamed in constant memory.

``GET /api/v1/download/hourly.csv`` (and ``.jsonl``) reads the records through a
server-side cursor and writes them as they come, so any range costs the same memory.
Values are written as stored: observations exactly as the stations reported them,
averages to 6 decimals.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

from aiohttp import web

from aqi_service.aqi.batch import names
from aqi_service.aqi.schemes import POLLUTANTS, SHANGHAI
from aqi_service.web import conditional, keys, params
from aqi_service.web.errors import ApiError

CHUNK_ROWS = 2000
"""Rows fetched from the cursor and written per chunk."""
MAX_SPAN = timedelta(days=366 * 20)
LICENCE = "CC-BY-4.0"
CITATION = "Langfang air-quality disclosure service (aqi-service), hourly station records"

# 24 h (or 8 h) averages per pollutant, with the column of their valid-hour counts.
AVERAGES = {
    "so2": (("so2_24h", "so2_24h_hours"),),
    "no2": (("no2_24h", "no2_24h_hours"),),
    "co": (("co_24h", "co_24h_hours"),),
    "o3": (("o3_8h", "o3_8h_hours"), ("o3_24h", "o3_24h_hours"),
           ("o3_8h_24h", "o3_8h_24h_hours")),
    "pm10": (("pm10_24h", "pm10_24h_hours"),),
    "pm2_5": (("pm2_5_24h", "pm2_5_24h_hours"),),
}

SELECT_HOURLY = """
SELECT h.*, s.name_zh
FROM station_hourly h JOIN stations s ON s.code = h.station_code
WHERE h.station_code = ANY($1::text[]) AND h.hour_end >= $2 AND h.hour_end <= $3
ORDER BY h.station_code, h.hour_end
"""
SELECT_CODES = "SELECT code FROM stations WHERE active AND city_member ORDER BY code"
SELECT_KNOWN = "SELECT code FROM stations WHERE active AND code = ANY($1::text[])"


def columns(pollutants: list[str]) -> list[str]:
    """The file's columns for the chosen pollutants."""
    cols = ["station_code", "position_name", "time_point", "time_point_utc"]
    for p in pollutants:
        cols += [p, f"{p}_flag"]
        for value, hours in AVERAGES[p]:
            cols += [value, hours]
        cols.append(f"iaqi_{p}")
    return [*cols, "aqi", "level", "primary_pollutants", "scheme", "revision"]


def row_of(rec: Any, pollutants: list[str]) -> list[Any]:
    """One station-hour as values in ``columns`` order (None for empty)."""
    flags = rec["flags"] or {}
    hour = rec["hour_end"]
    out = [rec["station_code"], rec["name_zh"], hour.astimezone(SHANGHAI).isoformat(),
           hour.isoformat().replace("+00:00", "Z")]
    for p in pollutants:
        value = rec[p]
        out += [value, flags.get(p, "N" if value is not None else "")]
        for avg, hours in AVERAGES[p]:
            out += [rec[avg], rec[hours]]
        out.append(rec[f"iaqi_{p}"])
    return [*out, rec["aqi"], rec["level"], ";".join(names(rec["primary_mask"])),
            rec["scheme"], rec["revision"]]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


async def _choose(request: web.Request) -> tuple[list[str], list[str]]:
    raw = request.query.get("stations", "")
    async with request.app[keys.POOL].acquire() as conn:
        if not raw:
            codes = [r["code"] for r in await conn.fetch(SELECT_CODES)]
        else:
            if len(raw) > 4000:
                raise params.bad("stations", "too long")
            codes = [c.strip() for c in raw.split(",") if c.strip()]
            known = {r["code"] for r in await conn.fetch(SELECT_KNOWN, codes)}
            unknown = [c for c in codes if c not in known]
            if unknown:
                raise params.bad("stations", f"unknown station(s) {unknown[:10]}")
    wanted = request.query.get("pollutants", "")
    pollutants = [p.strip() for p in wanted.split(",") if p.strip()] if wanted else list(
        POLLUTANTS)
    bad_names = [p for p in pollutants if p not in POLLUTANTS]
    if bad_names or not pollutants:
        raise params.bad("pollutants", f"expected some of {', '.join(POLLUTANTS)}",
                         unknown=bad_names[:10])
    return codes, [p for p in POLLUTANTS if p in pollutants]


async def hourly(request: web.Request) -> web.StreamResponse:
    """Stream the hourly records of the chosen stations and pollutants as CSV or JSONL."""
    fmt = request.match_info["fmt"]
    if fmt not in ("csv", "jsonl"):
        raise ApiError(404, "not_found", "formats: hourly.csv, hourly.jsonl")
    codes, pollutants = await _choose(request)
    now = request.app[keys.CLOCK]()
    last = params.time_param(request, "to", now)
    first = params.time_param(request, "from", last - timedelta(days=7))
    params.check_range("from", first, last, MAX_SPAN, "hourly records")
    cols = columns(pollutants)
    span = f"{first.astimezone(SHANGHAI):%Y%m%d}-{last.astimezone(SHANGHAI):%Y%m%d}"
    filename = f"langfang-hourly-{span}.{fmt}"
    resp = web.StreamResponse(headers={
        "Content-Type": ("text/csv; charset=utf-8" if fmt == "csv"
                         else "application/x-ndjson; charset=utf-8"),
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Access-Control-Allow-Origin": "*",
        "X-Licence": LICENCE,
        "X-Citation": CITATION,
        "X-Time-Convention": "hour-ending; time_point in Asia/Shanghai, time_point_utc in UTC",
    })
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        resp.enable_compression()
    await resp.prepare(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if fmt == "csv":
        writer.writerow(cols)
    async with request.app[keys.POOL].acquire() as conn, conn.transaction():
        cursor = conn.cursor(SELECT_HOURLY, codes, first, last, prefetch=CHUNK_ROWS)
        count = 0
        async for rec in cursor:
            row = row_of(rec, pollutants)
            if fmt == "csv":
                writer.writerow([_text(v) for v in row])
            else:
                buffer.write(json.dumps(dict(zip(cols, row, strict=True)),
                                        ensure_ascii=False) + "\n")
            count += 1
            if count % CHUNK_ROWS == 0:
                await resp.write(buffer.getvalue().encode())
                buffer.seek(0)
                buffer.truncate()
    await resp.write(buffer.getvalue().encode())
    await resp.write_eof()
    return resp


_NAMES = {"so2": "SO2", "no2": "NO2", "co": "CO", "o3": "O3", "pm10": "PM10",
          "pm2_5": "PM2.5"}
_AVERAGE_TEXT = {
    "24h": "24 h moving mean of the hourly values (≥ 20 valid hours)",
    "8h": "8 h moving mean (≥ 6 valid hours)",
    "o3_24h": "largest 1 h value of the last 24 h",
    "o3_8h_24h": "largest 8 h mean of the last 24 h",
}


def _describe(col: str) -> tuple[str, str, str | None]:
    """(datatype, description, unit) of a column of the hourly file."""
    fixed = {
        "station_code": ("string", "station code", None),
        "position_name": ("string", "station name (Chinese)", None),
        "time_point": ("dateTime", "end of the hour, Asia/Shanghai (hour-ending label)", None),
        "time_point_utc": ("dateTime", "end of the hour, UTC (hour-ending label)", None),
        "aqi": ("integer", "AQI; empty where not published (HJ 633-2026 §5.3: NA)", None),
        "level": ("integer", "AQI level 1-6", None),
        "primary_pollutants": ("string", "primary pollutants, ';'-separated, sorted", None),
        "scheme": ("string", "index scheme: HJ633-2012 or HJ633-2026", None),
        "revision": ("integer", "times the record was revised after publication", None),
    }
    if col in fixed:
        return fixed[col]
    if col.startswith("iaqi_"):
        return "integer", f"IAQI of {_NAMES[col[5:]]}", None
    if col.endswith("_flag"):
        return ("string", f"HJ 212 data flag of the 1 h {_NAMES[col[:-5]]} value (N normal; "
                "M maintenance, C calibration, D fault …: not valid)", None)
    if col.endswith("_hours"):
        return "integer", f"valid hours (or 8 h windows) behind {col[:-6]}", None
    pollutant = next(p for p in sorted(_NAMES, key=len, reverse=True) if col.startswith(p))
    unit = "mg/m3" if pollutant == "co" else "ug/m3"
    rest = col[len(pollutant):].lstrip("_")
    if not rest:
        return "decimal", f"1 h mean of {_NAMES[pollutant]} as reported", unit
    text = _AVERAGE_TEXT.get(col) or _AVERAGE_TEXT.get(rest, rest)
    return "decimal", f"{_NAMES[pollutant]}: {text}", unit


def csvw_metadata(base_url: str) -> dict[str, Any]:
    """CSVW metadata (with the codebook) for ``hourly.csv`` with every pollutant."""
    cols = []
    for name in columns(list(POLLUTANTS)):
        datatype, description, unit = _describe(name)
        col: dict[str, Any] = {"name": name, "titles": name, "datatype": datatype,
                               "dc:description": description}
        if unit:
            col["unit"] = unit
        cols.append(col)
    return {
        "@context": "http://www.w3.org/ns/csvw",
        "url": f"{base_url}/api/v1/download/hourly.csv",
        "dc:title": "Langfang hourly air quality by station",
        "dc:license": {"@id": "https://creativecommons.org/licenses/by/4.0/"},
        "dc:bibliographicCitation": CITATION,
        "dc:description": ("One row per station-hour. Times are hour-ending (the value at "
                           "16:00 is the mean of 15:00-16:00). Gases at 298.15 K and "
                           "1013.25 hPa; particles at actual conditions. AQI by HJ 633-2012 "
                           "for hours beginning before 2026-03-01 00:00 Asia/Shanghai, "
                           "HJ 633-2026 after."),
        "tableSchema": {"columns": cols, "primaryKey": ["station_code", "time_point_utc"]},
    }


async def metadata(request: web.Request) -> web.Response:
    """The CSVW metadata and codebook of the hourly download."""
    base = f"{request.scheme}://{request.host}"
    return conditional.json_response(request, csvw_metadata(base), 86400)
