"""The OpenAPI 3.1 document of API v1 (``GET /api/v1/openapi.json``).

Kept true by tests that validate real responses against it.
"""

from __future__ import annotations

import importlib
from typing import Any

from aqi_service import __version__
from aqi_service.aqi.schemes import all_schemes

_NUM = {"type": ["number", "null"]}
_INT = {"type": ["integer", "null"]}
_STR = {"type": ["string", "null"]}
_NAMES = {"type": "array", "items": {"enum": ["so2", "no2", "co", "o3", "pm10", "pm2_5"]}}
_FIELDS_HOURLY = ("so2", "so2_24h", "no2", "no2_24h", "co", "co_24h", "o3", "o3_8h", "o3_24h",
                  "o3_8h_24h", "pm10", "pm10_24h", "pm2_5", "pm2_5_24h")
_FIELDS_DAILY = ("so2_24h", "no2_24h", "co_24h", "pm10_24h", "pm2_5_24h", "o3_24h",
                 "o3_8h_24h")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_RESULT = {
    "iaqi": {"type": "object", "additionalProperties": {"type": "integer"}},
    "aqi": {**_INT, "minimum": 0, "maximum": 500},
    "level": {**_INT, "minimum": 1, "maximum": 6},
    "level_zh": _STR, "category": _STR, "category_en": _STR,
    "color": {"type": ["string", "null"], "pattern": "^#[0-9A-F]{6}$"},
    "health_effect": _STR, "health_effect_en": _STR, "advice": _STR, "advice_en": _STR,
    "primary_pollutants": _NAMES,
    "exceeding_pollutants": {"oneOf": [_NAMES, {"type": "null"}]},
    "missing_pollutants": _NAMES,
    "beyond_index": {"type": "boolean"},
    "scheme": {"enum": [s.id for s in all_schemes()]},
    "revision": {"type": "integer", "minimum": 0},
    "valid_hours": {"type": "object", "additionalProperties": _INT},
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {
            "type": "object", "required": ["code", "message", "details"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                           "details": {"type": "object"}}}},
    },
    "Station": {
        "type": "object",
        "required": ["station_code", "position_name", "name_zh", "name_en", "lat", "lon"],
        "properties": {
            "station_code": {"type": "string"}, "position_name": {"type": "string"},
            "name_zh": {"type": "string"}, "name_en": {"type": "string"},
            "county_zh": {"type": "string"}, "county_en": {"type": "string"},
            "admin_code": {"type": "string"}, "lat": {"type": "number"},
            "lon": {"type": "number"}, "timezone": {"type": "string"},
        },
    },
    "HourlyRecord": {
        "type": "object",
        "description": "CNEMC-style record of one hour (hour-ending; µg/m³, CO mg/m³).",
        "required": ["time_point", "time_point_utc", *_FIELDS_HOURLY, "iaqi", "aqi", "level",
                     "primary_pollutants", "scheme", "valid_hours"],
        "properties": {
            "time_point": {"type": "string", "format": "date-time"},
            "time_point_utc": {"type": "string", "format": "date-time"},
            "time_convention": {"const": "hour-ending"},
            **{f: _NUM for f in _FIELDS_HOURLY}, **_RESULT,
        },
    },
    "DailyRecord": {
        "type": "object",
        "required": ["day", *_FIELDS_DAILY, "iaqi", "aqi", "level", "primary_pollutants",
                     "scheme", "valid_hours"],
        "properties": {"day": {"type": "string", "format": "date"},
                       **{f: _NUM for f in _FIELDS_DAILY}, **_RESULT},
    },
    "StationNow": {
        "allOf": [_ref("Station"), {
            "type": "object", "required": ["status", "aqi"],
            "properties": {"status": {"enum": ["on_time", "late", "missing", "maintenance"]},
                           "flags": {"type": "object"}},
        }],
    },
    "Now": {
        "type": "object",
        "required": ["city", "stations", "data_as_of", "next_expected_at"],
        "properties": {
            "city": {"type": "object", "required": ["area_code"]},
            "stations": {"type": "array", "items": _ref("StationNow")},
            "data_as_of": _STR, "next_expected_at": {"type": "string"},
            "expected_hour": {"type": "string"}, "last_collection_at": _STR,
        },
    },
    "HourlySeries": {
        "type": "object", "required": ["from", "to", "count", "records"],
        "properties": {"from": {"type": "string"}, "to": {"type": "string"},
                       "count": {"type": "integer"},
                       "records": {"type": "array", "items": _ref("HourlyRecord")}},
    },
    "DailySeries": {
        "type": "object", "required": ["from", "to", "count", "records"],
        "properties": {"from": {"type": "string", "format": "date"},
                       "to": {"type": "string", "format": "date"},
                       "count": {"type": "integer"},
                       "records": {"type": "array", "items": _ref("DailyRecord")}},
    },
    "Rankings": {
        "type": "object", "required": ["period", "from", "rules", "method", "counties"],
        "properties": {
            "period": {"enum": ["month", "year"]}, "from": {"type": "string", "format": "date"},
            "rules": {"type": "string"}, "method": {"type": "string"},
            "counties": {"type": "array", "items": {
                "type": "object",
                "required": ["station_code", "county_zh", "composite_index", "composite_parts",
                             "pm2_5_mean", "rank_composite", "rank_pm2_5", "valid_days",
                             "required_days", "complete"],
                "properties": {
                    "station_code": {"type": "string"}, "county_zh": {"type": "string"},
                    "composite_index": _NUM, "pm2_5_mean": _NUM, "good_day_ratio": _NUM,
                    "rank_composite": _INT, "rank_pm2_5": _INT,
                    "valid_days": {"type": "object",
                                   "additionalProperties": {"type": "integer"}},
                    "required_days": {"type": "integer"}, "complete": {"type": "boolean"},
                    "composite_parts": {"type": "array", "items": {
                        "type": "object",
                        "required": ["pollutant", "statistic", "value", "limit", "weight",
                                     "single_index"]}},
                },
            }},
        },
    },
    "Revision": {
        "type": "object",
        "required": ["id", "kind", "subject", "field", "period_end", "old_value", "new_value",
                     "reason", "changed_at"],
        "properties": {"id": {"type": "integer"}, "kind": {"type": "string"},
                       "subject": {"type": "string"}, "field": {"type": "string"},
                       "period_end": {"type": "string"}, "old_value": _STR,
                       "new_value": _STR, "reason": {"type": "string"},
                       "changed_at": {"type": "string"}},
    },
}


def _ok(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "200": {"description": description,
                "content": {"application/json": {"schema": schema}}},
        "304": {"description": "Not modified (If-None-Match matched the ETag)"},
        "400": {"description": "Bad parameter",
                "content": {"application/json": {"schema": _ref("Error")}}},
    }


def _param(name: str, description: str, fmt: str = "date-time",
           where: str = "query", required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "description": description,
            "schema": {"type": "string", "format": fmt} if fmt else {"type": "string"}}


_CODE = _param("code", "station code", "", "path", True)
_FROM_TO = [_param("from", "start (ISO 8601; Asia/Shanghai if no offset)"),
            _param("to", "end (ISO 8601; Asia/Shanghai if no offset)")]
_DAYS = [_param("from", "first day", "date"), _param("to", "last day", "date")]
_404 = {"404": {"description": "Unknown station",
                "content": {"application/json": {"schema": _ref("Error")}}}}


CONTRIBUTORS: tuple[str, ...] = ("aqi_service.web.status", "aqi_service.web.admin",
                                  "aqi_service.web.disclosure_api")
"""Modules whose ``OPENAPI_PATHS`` / ``OPENAPI_SCHEMAS`` dicts join the document."""


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    paths: dict[str, Any] = {
        "/api/v1/now": {"get": {
            "summary": "The latest hour for the city and every station",
            "responses": _ok(_ref("Now"), "Latest records with status per station")}},
        "/api/v1/stations": {"get": {
            "summary": "The monitoring stations",
            "responses": _ok({"type": "object", "required": ["stations", "count"],
                              "properties": {"stations": {"type": "array",
                                                          "items": _ref("Station")},
                                             "count": {"type": "integer"}}},
                             "Stations")}},
        "/api/v1/stations/{code}": {"get": {
            "summary": "One station with its latest record", "parameters": [_CODE],
            "responses": {**_ok(_ref("Station"), "The station"), **_404}}},
        "/api/v1/stations/{code}/hourly": {"get": {
            "summary": "A station's hourly records (at most 31 days)",
            "parameters": [_CODE, *_FROM_TO],
            "responses": {**_ok(_ref("HourlySeries"), "Hourly records"), **_404}}},
        "/api/v1/stations/{code}/daily": {"get": {
            "summary": "A station's daily records (at most 366 days)",
            "parameters": [_CODE, *_DAYS],
            "responses": {**_ok(_ref("DailySeries"), "Daily records"), **_404}}},
        "/api/v1/city/hourly": {"get": {
            "summary": "The city's hourly records", "parameters": _FROM_TO,
            "responses": _ok(_ref("HourlySeries"), "Hourly records")}},
        "/api/v1/city/daily": {"get": {
            "summary": "The city's daily records", "parameters": _DAYS,
            "responses": _ok(_ref("DailySeries"), "Daily records")}},
        "/api/v1/schemes": {"get": {
            "summary": "The AQI index schemes as data",
            "responses": _ok({"type": "object", "required": ["schemes"],
                              "properties": {"schemes": {"type": "array",
                                                         "items": {"type": "object"}}}},
                             "Schemes")}},
        "/api/v1/rankings": {"get": {
            "summary": "Counties ranked by composite index and by PM2.5, with the inputs",
            "parameters": [
                {"name": "period", "in": "query", "schema": {"enum": ["month", "year"]}},
                {"name": "month", "in": "query", "description": "YYYY-MM (period=month)",
                 "schema": {"type": "string"}},
                {"name": "year", "in": "query", "description": "YYYY (period=year)",
                 "schema": {"type": "string"}}],
            "responses": _ok(_ref("Rankings"), "Rankings")}},
        "/api/v1/download/hourly.{fmt}": {"get": {
            "summary": "Hourly records of many stations for research, streamed (any range)",
            "parameters": [
                {"name": "fmt", "in": "path", "required": True,
                 "description": "parquet needs the server's optional pyarrow "
                 "(aqi-service[parquet])", "schema": {"enum": ["csv", "jsonl", "parquet"]}},
                {"name": "stations", "in": "query", "description": "comma-separated codes "
                 "(default: all)", "schema": {"type": "string"}},
                {"name": "pollutants", "in": "query", "description": "comma-separated "
                 "(default: all six)", "schema": {"type": "string"}}, *_FROM_TO],
            "responses": {
                "200": {"description": "One row per station-hour, by station and time: values "
                        "as stored, flags, valid hours, IAQIs, AQI, primary pollutants, "
                        "scheme, revision (codebook: hourly.csv-metadata.json)",
                        "content": {"text/csv": {"schema": {"type": "string"}},
                                    "application/x-ndjson": {"schema": {"type": "string"}},
                                    "application/vnd.apache.parquet": {"schema": {
                                        "type": "string",
                                        "contentMediaType": "application/vnd.apache.parquet"}}}},
                "400": {"description": "Bad parameter",
                        "content": {"application/json": {"schema": _ref("Error")}}},
                "404": {"description": "Unknown format",
                        "content": {"application/json": {"schema": _ref("Error")}}},
                "501": {"description": "Parquet asked of a server without pyarrow (the "
                        "message says how to install it)",
                        "content": {"application/json": {"schema": _ref("Error")}}},
                "503": {"description": "Too many downloads streaming; retry shortly",
                        "content": {"application/json": {"schema": _ref("Error")}}}}}},
        "/api/v1/download/monthly/{code}/{month}.csv.gz": {"get": {
            "summary": "A station's hourly records of one month, as a gzip-compressed CSV file",
            "description": "Hours ending 01:00 on the 1st through 24:00 on the last day of "
                           "the month, Asia/Shanghai; the columns of hourly.csv. Strong ETag; "
                           "a closed month may be cached for 30 days, the current month "
                           "until the next publication.",
            "parameters": [_CODE, {"name": "month", "in": "path", "required": True,
                                   "description": "YYYY-MM",
                                   "schema": {"type": "string",
                                              "pattern": "^[0-9]{4}-[0-9]{2}$"}}],
            "responses": {
                "200": {"description": "The file (Content-Disposition names it)",
                        "content": {"application/gzip": {"schema": {
                            "type": "string", "contentMediaType": "application/gzip"}}}},
                "304": {"description": "Not modified (If-None-Match matched the ETag)"},
                "400": {"description": "Malformed month",
                        "content": {"application/json": {"schema": _ref("Error")}}},
                "404": {"description": "Unknown station, or no data for that month (none "
                        "stored, or the month has not begun)",
                        "content": {"application/json": {"schema": _ref("Error")}}}}}},
        "/api/v1/revisions": {"get": {
            "summary": "Changes to stored or published values",
            "parameters": [_param("since", "oldest change (ISO 8601)")],
            "responses": _ok({"type": "object", "required": ["since", "count", "revisions"],
                              "properties": {"revisions": {"type": "array",
                                                           "items": _ref("Revision")},
                                             "next_since": {"type": "string"}}},
                             "Revisions, oldest first, 1,000 at a time")}},
    }
    schemas = dict(SCHEMAS)
    security_schemes: dict[str, Any] = {}
    for module in CONTRIBUTORS:
        mod = importlib.import_module(module)
        paths.update(getattr(mod, "OPENAPI_PATHS", {}))
        schemas.update(getattr(mod, "OPENAPI_SCHEMAS", {}))
        security_schemes.update(getattr(mod, "OPENAPI_SECURITY_SCHEMES", {}))
    return {
        "openapi": "3.1.0",
        "info": {"title": "aqi-service API", "version": __version__,
                 "description": "Real-time air quality of Langfang: China AQI exactly by "
                                "HJ 633-2012/2026. Times are hour-ending, Asia/Shanghai.",
                 "license": {"name": "CC BY 4.0 (data)", "identifier": "CC-BY-4.0"}},
        "paths": paths,
        "components": {"schemas": schemas,
                       **({"securitySchemes": security_schemes} if security_schemes else {})},
    }
