"""County rankings (each county has one station): composite index and PM2.5, with inputs."""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import date
from fractions import Fraction
from typing import Any

import asyncpg

from aqi_service.aqi.assessment import composite_index, good_day_ratio, min_days, rules_for

_POLLUTANT_COLUMNS = {"so2": "so2_24h", "no2": "no2_24h", "co": "co_24h", "pm10": "pm10_24h",
                      "pm2_5": "pm2_5_24h", "o3": "o3_8h_24h"}


def _num(value: Fraction | None, places: int) -> float | None:
    return None if value is None else round(float(round(value, places)), places)


def period_bounds(period: str, start: date) -> tuple[date, date]:
    """First and last day of the month or year beginning at ``start``."""
    if period == "year":
        return date(start.year, 1, 1), date(start.year, 12, 31)
    last = calendar.monthrange(start.year, start.month)[1]
    return date(start.year, start.month, 1), date(start.year, start.month, last)


def rank(rows: Sequence[asyncpg.Record], stations: Sequence[asyncpg.Record], period: str,
         first: date) -> dict[str, Any]:
    """Rankings from the stations' daily records of one period."""
    rules = rules_for(first)
    by_station: dict[str, list[asyncpg.Record]] = {}
    for r in rows:
        by_station.setdefault(r["station_code"], []).append(r)
    required = min_days(first, period, rules)
    counties = []
    for st in stations:
        days = by_station.get(st["code"], [])
        daily = {p: [r[c] for r in days if r[c] is not None] for p, c in _POLLUTANT_COLUMNS.items()}
        index = composite_index(daily, first, rules)
        pm = daily["pm2_5"]
        pm_mean = sum((Fraction(v) for v in pm), Fraction(0)) / len(pm) if pm else None
        good = good_day_ratio([r["aqi"] for r in days])
        counties.append({
            "station_code": st["code"], "county_zh": st["county_zh"],
            "county_en": st["county_en"], "admin_code": st["admin_code"],
            "days": len(days), "valid_days": {p: len(v) for p, v in daily.items()},
            "required_days": required,
            "complete": all(len(v) >= required for v in daily.values()),
            "composite_index": _num(index.rounded(2), 2),
            "composite_parts": [{
                "pollutant": part.pollutant, "statistic": part.statistic,
                "value": _num(part.value, 3), "limit": _num(part.limit, 3),
                "weight": part.weight, "single_index": _num(part.ratio, 4),
            } for part in index.parts],
            "composite_missing": list(index.missing),
            "pm2_5_mean": _num(pm_mean, 1),
            "good_day_ratio": _num(good, 4),
        })

    def order(key: str) -> list[str]:
        ranked = sorted((c for c in counties if c[key] is not None),
                        key=lambda c: (c[key], c["station_code"]))
        return [c["station_code"] for c in ranked]

    by_index, by_pm = order("composite_index"), order("pm2_5_mean")
    for c in counties:
        c["rank_composite"] = (by_index.index(c["station_code"]) + 1
                               if c["station_code"] in by_index else None)
        c["rank_pm2_5"] = (by_pm.index(c["station_code"]) + 1
                           if c["station_code"] in by_pm else None)
    counties.sort(key=lambda c: (c["rank_composite"] is None, c["rank_composite"] or 0))
    return {
        "period": period, "from": first.isoformat(),
        "rules": rules.name,
        "method": ("composite index = Σ C/S: SO2, NO2, PM10, PM2.5 period means over the "
                   "class-II annual limits; CO 95th percentile over 4 mg/m³; O3 90th "
                   "percentile of daily max 8 h over 160 µg/m³ (lower is better). Ranks: 1 is "
                   "the cleanest."),
        "counties": counties,
    }
