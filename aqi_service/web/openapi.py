"""The OpenAPI 3.1 document of API v1 (``GET /api/v1/openapi.json``).

Kept true by tests that validate real responses against it.
"""

from __future__ import annotations

import copy
import importlib
from functools import lru_cache
from typing import Any

from aqi_service import __version__
from aqi_service.aqi.schemes import all_schemes
from aqi_service.web import params

_NUM = {"type": ["number", "null"]}
_INT = {"type": ["integer", "null"]}
_STR = {"type": ["string", "null"]}
_POLLUTANTS = ("so2", "no2", "co", "o3", "pm10", "pm2_5")
_NAMES = {"type": "array", "items": {"enum": list(_POLLUTANTS)}}
_FIELDS_HOURLY = ("so2", "so2_24h", "no2", "no2_24h", "co", "co_24h", "o3", "o3_8h", "o3_24h",
                  "o3_8h_24h", "pm10", "pm10_24h", "pm2_5", "pm2_5_24h")
_FIELDS_DAILY = ("so2_24h", "no2_24h", "co_24h", "pm10_24h", "pm2_5_24h", "o3_24h",
                 "o3_8h_24h")

_PLAN = {**_NAMES, "uniqueItems": True, "description":
         "Pollutants the station's monitoring plan does not measure (`/` on the national "
         "platform): neither indexed nor missing in its records (a station's series only)."}


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
        "required": ["station_code", "position_name", "name_zh", "name_en", "lat", "lon",
                     "not_monitored"],
        "properties": {
            "station_code": {"type": "string"}, "position_name": {"type": "string"},
            "name_zh": {"type": "string"}, "name_en": {"type": "string"},
            "county_zh": {"type": "string"}, "county_en": {"type": "string"},
            "admin_code": {"type": "string"}, "lat": {"type": "number"},
            "lon": {"type": "number"}, "timezone": {"type": "string"},
            "not_monitored": _PLAN,
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
                       "count": {"type": "integer"}, "not_monitored": _PLAN,
                       "records": {"type": "array", "items": _ref("HourlyRecord")}},
    },
    "DailySeries": {
        "type": "object", "required": ["from", "to", "count", "records"],
        "properties": {"from": {"type": "string", "format": "date"},
                       "to": {"type": "string", "format": "date"},
                       "count": {"type": "integer"}, "not_monitored": _PLAN,
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


def _param(name: str, description: str, kind: str = "time",
           where: str = "query", required: bool = False) -> dict[str, Any]:
    schema = {"time": {"type": "string", "pattern": params.TIME_PATTERN},
              "date": {"type": "string", "pattern": params.DATE_PATTERN},
              "code": {"type": "string", "pattern": params.STATION_CODE.pattern}}[kind]
    return {"name": name, "in": where, "required": required, "description": description,
            "schema": schema}


_TIMES = ("ISO 8601 of 2000-2099: a date or a date and time, with an offset or Z (none: "
          "Asia/Shanghai); an empty value is refused")
_CODE = _param("code", "station code", "code", "path", True)
_FROM_TO = [_param("from", f"start ({_TIMES}); not after to"),
            _param("to", f"end ({_TIMES})")]
_DAYS = [_param("from", "first day (YYYY-MM-DD, 2000-2099); not after to", "date"),
         _param("to", "last day (YYYY-MM-DD, 2000-2099)", "date")]
_404 = {"404": {"description": "Unknown station",
                "content": {"application/json": {"schema": _ref("Error")}}}}
_503 = {"description": "The database is unavailable (code database_unavailable), or too "
                       "many downloads are streaming (code busy); retry after Retry-After "
                       "seconds",
        "headers": {"Retry-After": {"required": True, "description": "seconds",
                                    "schema": {"type": "string", "pattern": "^[0-9]+$"}}},
        "content": {"application/json": {"schema": _ref("Error")}}}
NO_DATABASE = frozenset({"/api/v1/now", "/api/v1/schemes", "/api/v1/openapi.json",
                         "/api/v1/download/hourly.csv-metadata.json"})
"""Operations answered without the database (from the snapshot or from code)."""


CONTRIBUTORS: tuple[str, ...] = ("aqi_service.web.status", "aqi_service.web.admin_openapi",
                                  "aqi_service.web.disclosure_api")
"""Modules whose ``OPENAPI_PATHS`` / ``OPENAPI_SCHEMAS`` dicts join the document."""


@lru_cache(maxsize=8)   # one per deployment; callers do not change it
def document(stations: tuple[str, ...] = (), categories: tuple[str, ...] = (),
             subitems: tuple[str, ...] = ()) -> dict[str, Any]:
    """The OpenAPI 3.1 document; with the deployment's station codes and disclosure
    catalogue, those parameters are enumerated (any other value is refused)."""
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
                {"name": "period", "in": "query", "description": "default: month",
                 "schema": {"enum": ["month", "year"]}},
                {"name": "month", "in": "query", "description": "YYYY-MM (with period=month; "
                 "default: the current month)",
                 "schema": {"type": "string", "pattern": params.MONTH_PATTERN}},
                {"name": "year", "in": "query", "description": "YYYY (with period=year; "
                 "default: the current year)",
                 "schema": {"type": "string", "pattern": params.YEAR_PATTERN}}],
            "responses": _ok(_ref("Rankings"), "Rankings")}},
        "/api/v1/download/hourly.{fmt}": {"get": {
            "summary": "Hourly records of many stations for research, streamed (any range)",
            "parameters": [
                {"name": "fmt", "in": "path", "required": True,
                 "description": "parquet needs the server's optional pyarrow "
                 "(aqi-service[parquet])", "schema": {"enum": ["csv", "jsonl", "parquet"]}},
                {"name": "stations", "in": "query", "style": "form", "explode": False,
                 "description": "comma-separated station codes (empty or absent: all)",
                 "schema": {"type": "array", "items": {
                     "type": "string", "pattern": params.STATION_CODE.pattern}}},
                {"name": "pollutants", "in": "query", "style": "form", "explode": False,
                 "description": "comma-separated (empty or absent: all six)",
                 "schema": {"type": "array", "items": {"enum": list(_POLLUTANTS)}}},
                *_FROM_TO],
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
                }}},
        "/api/v1/download/monthly/{code}/{month}.csv.gz": {"get": {
            "summary": "A station's hourly records of one month, as a gzip-compressed CSV file",
            "description": "Hours ending 01:00 on the 1st through 24:00 on the last day of "
                           "the month, Asia/Shanghai; the columns of hourly.csv. Strong ETag; "
                           "a closed month may be cached for 30 days, the current month "
                           "until the next publication.",
            "parameters": [_CODE, {"name": "month", "in": "path", "required": True,
                                   "description": "YYYY-MM (2000-2099)",
                                   "schema": {"type": "string",
                                              "pattern": params.MONTH_PATTERN}}],
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
            "parameters": [_param("since", f"oldest change ({_TIMES}; default: 24 hours "
                                  "ago)")],
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
    paths = copy.deepcopy(paths)   # the contributors' dicts are shared
    _complete(paths, stations, categories, subitems)
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


def for_app(app: Any) -> dict[str, Any]:
    """The document this deployment serves: its stations and disclosure catalogue."""
    from aqi_service.web import keys

    cfg = app[keys.CONFIG]
    stations = tuple(s.code for s in (*cfg.stations, *app[keys.EXTRA_STATIONS]))
    catalog = app.get(keys.DISCLOSURE_CATALOG)
    categories = tuple(c.code for c in catalog.categories) if catalog else ()
    subitems = tuple(s.code for s in catalog.subitems) if catalog else ()
    return document(stations, categories, subitems)


def _complete(paths: dict[str, Any], stations: tuple[str, ...], categories: tuple[str, ...],
              subitems: tuple[str, ...]) -> None:
    """What every operation shares: the 503 of an outage (those reading the database), text
    parameters without control characters, and the deployment's enumerations."""
    enums = {"code": stations, "category": categories, "subitem": subitems}
    for path, item in paths.items():
        for op in item.values():
            if path not in NO_DATABASE:
                op.setdefault("responses", {}).setdefault("503", _503)
            for param in op.get("parameters", []):
                schema = param["schema"]
                values = enums.get(param["name"])
                if param["name"] == "stations" and stations:
                    param["schema"] = {**schema, "items": {"enum": list(stations)}}
                elif values and param["in"] != "header" and (
                        param["name"] != "code" or "/admin/" not in path):
                    # the admin API's filters take an empty value as absent
                    empty = [""] if "/admin/" in path else []
                    param["schema"] = {"enum": [*empty, *values]}
                elif schema.get("type") == "string" and not (
                        {"pattern", "format", "enum"} & set(schema)):
                    param["schema"] = {**schema, "pattern": params.NO_CONTROL_PATTERN}
