"""The ``/api/v1/now`` snapshot: prepared when data change, served without a query.

Concentrations are presented at the publication precision of HJ 633-2026 (µg/m³ as
integers, CO in mg/m³ to one decimal, GB/T 8170 rounding), so the numbers shown are the
numbers indexed; full precision is in the research downloads.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import asyncpg

from aqi_service.aqi.batch import names
from aqi_service.aqi.schemes import POLLUTANTS, SHANGHAI, get_scheme
from aqi_service.aqi.series import DAILY_COUNTS, DAILY_FIELDS, HOURLY_COUNTS, HOURLY_FIELDS
from aqi_service.config import Config
from aqi_service.web.conditional import Prepared, etag_of

HOUR = timedelta(hours=1)
LATE_HOURS = 1
"""A station 1-2 hours behind the expected hour is late; 3 or more, missing."""
MISSING_HOURS = 3
MAINTENANCE_FLAGS = {"M", "C"}

SELECT_LATEST = """
SELECT s.code, s.name_zh, s.name_en, s.county_zh, s.county_en, s.admin_code, s.lat, s.lon,
       s.not_monitored, h.*
FROM stations s
LEFT JOIN LATERAL (
    SELECT * FROM station_hourly sh WHERE sh.station_code = s.code
    ORDER BY sh.hour_end DESC LIMIT 1
) h ON true
WHERE s.active AND s.city_member
ORDER BY s.code
"""
SELECT_CITY = "SELECT * FROM city_hourly WHERE area_code = $1 ORDER BY hour_end DESC LIMIT 1"
SELECT_LAST_RUN = """
SELECT max(finished_at) FROM collection_runs WHERE status IN ('ok', 'partial')
"""


def present(field: str, value: Decimal | float | None) -> int | float | None:
    """A concentration at publication precision (integers; CO one decimal)."""
    if value is None:
        return None
    dec = value if isinstance(value, Decimal) else Decimal(repr(value))
    if field.startswith("co"):
        return float(dec.quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN))
    return int(dec.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def expected_hour(now: datetime, cfg: Config) -> datetime:
    """The newest hour that should be published by ``now`` (collection minute + 10 min)."""
    grace = timedelta(minutes=cfg.collection.minute + 10)
    return (now - grace).astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def next_expected_at(now: datetime, cfg: Config) -> datetime:
    """When the next hour is expected to be published."""
    return expected_hour(now, cfg) + HOUR + timedelta(minutes=cfg.collection.minute + 10)


def status_of(hour_end: datetime | None, flags: dict[str, str] | None, expected: datetime) -> str:
    """on_time, late, missing or maintenance."""
    if hour_end is None:
        return "missing"
    behind = int((expected - hour_end) / HOUR)
    if behind >= MISSING_HOURS:
        return "missing"
    if flags and len([f for f in flags.values() if f in MAINTENANCE_FLAGS]) >= 3:
        return "maintenance"
    return "late" if behind >= LATE_HOURS else "on_time"


def level_fields(scheme_id: str, aqi: int | None) -> dict[str, Any]:
    """Level, category, colour and texts of an AQI under a scheme (None where NA)."""
    level = get_scheme(scheme_id).level_for(aqi) if aqi is not None else None
    return {
        "level": level.level if level else None,
        "level_zh": level.level_zh if level else None,
        "category": level.category_zh if level else None,
        "category_en": level.category_en if level else None,
        "color": level.color if level else None,
        "health_effect": level.health_effect_zh if level else None,
        "health_effect_en": level.health_effect_en if level else None,
        "advice": level.advice_zh if level else None,
        "advice_en": level.advice_en if level else None,
    }


def _results(rec: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    return {
        "iaqi": {p: rec[f"iaqi_{p}"] for p in POLLUTANTS if rec[f"iaqi_{p}"] is not None},
        "aqi": rec["aqi"],
        **level_fields(rec["scheme"], rec["aqi"]),
        "primary_pollutants": names(rec["primary_mask"]),
        "exceeding_pollutants": (None if rec["exceeding_mask"] is None
                                 else names(rec["exceeding_mask"])),
        "missing_pollutants": names(rec["missing_mask"]),
        "beyond_index": rec["beyond_index"],
        "scheme": rec["scheme"],
        "revision": rec["revision"],
    }


def record_json(rec: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """The CNEMC-style record of an hour (station or city)."""
    hour_end: datetime = rec["hour_end"]
    out: dict[str, Any] = {
        "time_point": hour_end.astimezone(SHANGHAI).isoformat(),
        "time_point_utc": hour_end.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
        "time_convention": "hour-ending",
    }
    for f in HOURLY_FIELDS:
        out[f] = present(f, rec[f])
    out.update(_results(rec))
    out["valid_hours"] = {c: rec[c] for c in HOURLY_COUNTS}
    return out


def daily_json(rec: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """The daily record of a natural day (Asia/Shanghai)."""
    out: dict[str, Any] = {"day": rec["day"].isoformat()}
    for f in DAILY_FIELDS:
        out[f] = present(f, rec[f])
    out.update(_results(rec))
    out["valid_hours"] = {c: rec[c] for c in DAILY_COUNTS}
    return out


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A prepared response: JSON body, strong ETag, when its data were last modified."""

    body: bytes
    etag: str
    last_modified: datetime
    next_expected_at: datetime
    data: dict[str, Any]
    response: Prepared
    """How ``/api/v1/now`` answers it: conditional, with the body gzip-compressed once
    (widgets and browsers ask for gzip every time)."""


class SnapshotStore:
    """Holds the current snapshot; ``refresh`` rebuilds it from the database."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.current: Snapshot | None = None

    async def refresh(self, conn: asyncpg.Connection, now: datetime | None = None) -> Snapshot:
        """Rebuild the snapshot (after a collection, and periodically for the statuses)."""
        now = now or datetime.now(timezone.utc)
        expected = expected_hour(now, self.cfg)
        rows = await conn.fetch(SELECT_LATEST)
        city_row = await conn.fetchrow(SELECT_CITY, self.cfg.city.code)
        last_run = await conn.fetchval(SELECT_LAST_RUN)
        stations = []
        newest: datetime | None = None
        for r in rows:
            item: dict[str, Any] = {
                "station_code": r["code"], "position_name": r["name_zh"],
                "name_zh": r["name_zh"], "name_en": r["name_en"],
                "county_zh": r["county_zh"], "county_en": r["county_en"],
                "admin_code": r["admin_code"], "lat": r["lat"], "lon": r["lon"],
                "not_monitored": list(r["not_monitored"]),
            }
            if r["hour_end"] is not None:
                item.update(record_json(r))
                item["flags"] = r["flags"] or {}
                newest = max(newest, r["hour_end"]) if newest else r["hour_end"]
            else:
                item.update(time_point=None, aqi=None, level=None, primary_pollutants=[])
            item["status"] = status_of(r["hour_end"], r["flags"], expected)
            stations.append(item)
        city: dict[str, Any] = {"area_code": self.cfg.city.code, "name_zh": self.cfg.city.name_zh,
                                "name_en": self.cfg.city.name_en}
        if city_row is not None:
            city.update(record_json(city_row))
            city["stations_reporting"] = city_row["stations"]
        next_at = next_expected_at(now, self.cfg)
        data = {
            "city": city,
            "stations": stations,
            "data_as_of": newest.astimezone(SHANGHAI).isoformat() if newest else None,
            "expected_hour": expected.astimezone(SHANGHAI).isoformat(),
            "next_expected_at": next_at.astimezone(SHANGHAI).isoformat(),
            "last_collection_at": last_run.astimezone(SHANGHAI).isoformat() if last_run else None,
            "time_convention": "hour-ending; times in Asia/Shanghai (UTC+8)",
            "units": {"so2": "µg/m³", "no2": "µg/m³", "co": "mg/m³", "o3": "µg/m³",
                      "pm10": "µg/m³", "pm2_5": "µg/m³"},
        }
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        etag = etag_of(body)
        previous = self.current
        modified = previous.last_modified if previous and previous.etag == etag else now
        if previous is not None and previous.etag == etag:
            packed = previous.response.gzipped
        else:
            packed = gzip.compress(body, compresslevel=6, mtime=0)
        self.current = Snapshot(body, etag, modified, next_at, data,
                                Prepared(body, etag, modified, next_at, packed))
        return self.current
