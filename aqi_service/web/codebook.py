"""The columns of the research downloads and their codebook (CSVW metadata, Parquet fields).

One list of columns serves every format (CSV, JSON Lines, Parquet and the monthly files),
so the codebook describes them all.
"""

from __future__ import annotations

from typing import Any

from aqi_service.aqi.schemes import POLLUTANTS

LICENCE = "CC-BY-4.0"
LICENCE_URL = "https://creativecommons.org/licenses/by/4.0/"
CITATION = "Langfang air-quality disclosure service (aqi-service), hourly station records"
TIME_CONVENTION = "hour-ending; time_point in Asia/Shanghai, time_point_utc in UTC"
VALUES_NOTE = (
    "Concentrations are the stored double-precision values: decimals of at most 6 places "
    "(1 h values as the station reported them, averages to 6 places). CSV and JSON write "
    "each in the shortest form that reads back to the same double, which is that decimal "
    "(an exponent form such as 5e-05 below 0.0001). Parquet stores the same doubles "
    "(float64) unchanged rather than a decimal type: bit for bit what the database holds, "
    "read by every Parquet reader; format them with a shortest round-trip formatter "
    "(Python repr, JavaScript String, Java 19+ Double.toString) to get the decimal back. "
    "Parquet times are timestamps in milliseconds (UTC-adjusted; time_point carries the "
    "Asia/Shanghai zone), empty cells are nulls, counts and indices are integers.")

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

NAMES = {"so2": "SO2", "no2": "NO2", "co": "CO", "o3": "O3", "pm10": "PM10",
         "pm2_5": "PM2.5"}
_AVERAGE_TEXT = {
    "24h": "24 h moving mean of the hourly values (≥ 20 valid hours)",
    "8h": "8 h moving mean (≥ 6 valid hours)",
    "o3_24h": "largest 1 h value of the last 24 h",
    "o3_8h_24h": "largest 8 h mean of the last 24 h",
}
_FIXED = {
    "station_code": ("string", "station code", None),
    "position_name": ("string", "station name (Chinese)", None),
    "time_point": ("dateTime", "end of the hour, Asia/Shanghai (hour-ending label)", None),
    "time_point_utc": ("dateTime", "end of the hour, UTC (hour-ending label)", None),
    "aqi": ("integer", "AQI; empty where not published (HJ 633-2026 §5.3: NA)", None),
    "level": ("integer", "AQI level 1-6", None),
    "primary_pollutants": ("string", "primary pollutants, ';'-separated, sorted", None),
    "scheme": ("string", "index scheme: HJ633-2012, HJ633-2012-text or HJ633-2026", None),
    "revision": ("integer", "times the record was revised after publication", None),
}


DESCRIBED_BY = ('</api/v1/download/hourly.csv-metadata.json>; rel="describedby"; '
                'type="application/csvm+json"')


def download_headers(filename: str, content_type: str) -> dict[str, str]:
    """Headers of every download: type, file name, CORS, licence, citation, conventions."""
    return {
        "Content-Type": content_type,
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Access-Control-Allow-Origin": "*",
        "X-Licence": LICENCE,
        "X-Citation": CITATION,
        "X-Time-Convention": TIME_CONVENTION,
        "Link": DESCRIBED_BY,
    }


def columns(pollutants: list[str]) -> list[str]:
    """The file's columns for the chosen pollutants."""
    cols = ["station_code", "position_name", "time_point", "time_point_utc"]
    for p in pollutants:
        cols += [p, f"{p}_flag"]
        for value, hours in AVERAGES[p]:
            cols += [value, hours]
        cols.append(f"iaqi_{p}")
    return [*cols, "aqi", "level", "primary_pollutants", "scheme", "revision"]


def describe(col: str) -> tuple[str, str, str | None]:
    """(CSVW datatype, description, unit) of a column."""
    if col in _FIXED:
        return _FIXED[col]
    if col.startswith("iaqi_"):
        return "integer", f"IAQI of {NAMES[col[5:]]}", None
    if col.endswith("_flag"):
        return ("string", f"HJ 212 data flag of the 1 h {NAMES[col[:-5]]} value (N normal; "
                "M maintenance, C calibration, D fault …: not valid)", None)
    if col.endswith("_hours"):
        return "integer", f"valid hours (or 8 h windows) behind {col[:-6]}", None
    pollutant = next(p for p in sorted(NAMES, key=len, reverse=True) if col.startswith(p))
    unit = "mg/m3" if pollutant == "co" else "ug/m3"
    rest = col[len(pollutant):].lstrip("_")
    if not rest:
        return "double", f"1 h mean of {NAMES[pollutant]} as reported", unit
    text = _AVERAGE_TEXT.get(col) or _AVERAGE_TEXT.get(rest, rest)
    return "double", f"{NAMES[pollutant]}: {text}", unit


def csvw_metadata(base_url: str) -> dict[str, Any]:
    """CSVW metadata (with the codebook) for ``hourly.csv`` with every pollutant."""
    cols = []
    for name in columns(list(POLLUTANTS)):
        datatype, description, unit = describe(name)
        col: dict[str, Any] = {"name": name, "titles": name, "datatype": datatype,
                               "dc:description": description}
        if unit:
            col["unit"] = unit
        cols.append(col)
    return {
        "@context": "http://www.w3.org/ns/csvw",
        "url": f"{base_url}/api/v1/download/hourly.csv",
        "dc:title": "Langfang hourly air quality by station",
        "dc:license": {"@id": LICENCE_URL},
        "dc:bibliographicCitation": CITATION,
        "dc:description": ("One row per station-hour, ordered by station code and time. "
                           "Times are hour-ending (the value at 16:00 is the mean of "
                           "15:00-16:00). Gases at 298.15 K and 1013.25 hPa; particles at "
                           "actual conditions. AQI by HJ 633-2012 for hours beginning before "
                           "2026-03-01 00:00 Asia/Shanghai, HJ 633-2026 after. The same "
                           "columns are in hourly.jsonl, hourly.parquet and the monthly "
                           "files monthly/{station}/{YYYY-MM}.csv.gz (a station's hours "
                           "ending from 01:00 on the 1st to 24:00 on the last day of the "
                           "month, Asia/Shanghai)."),
        "rdfs:comment": VALUES_NOTE,
        "tableSchema": {"columns": cols, "primaryKey": ["station_code", "time_point_utc"]},
    }
