"""Query parameters: parsed strictly, refused with a 400 envelope naming the parameter."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from aiohttp import web

from aqi_service.aqi.schemes import SHANGHAI
from aqi_service.web.errors import ApiError

STATION_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
"""What a station code in a path may look like (anything else is unknown: 404)."""

MAX_PARAM = 200
"""Longest accepted parameter value (characters)."""


def bad(name: str, message: str, **details: object) -> ApiError:
    """A 400 naming the parameter."""
    return ApiError(400, "bad_parameter", f"{name}: {message}", {"parameter": name, **details})


def _raw(request: web.Request, name: str) -> str | None:
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise bad(name, "given more than once")
    if not values:
        return None
    if len(values[0]) > MAX_PARAM:
        raise bad(name, f"longer than {MAX_PARAM} characters")
    return values[0]


def time_param(request: web.Request, name: str, default: datetime | None = None) -> datetime:
    """An ISO 8601 time or date (Asia/Shanghai when no offset is given)."""
    raw = _raw(request, name)
    if raw is None:
        if default is None:
            raise bad(name, "required (ISO 8601, e.g. 2026-11-26T08:00+08:00)")
        return default
    try:
        when = datetime.fromisoformat(raw.replace(" ", "+", 1) if raw.count(" ") == 1 else raw)
    except ValueError:
        raise bad(name, f"{raw[:40]!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=SHANGHAI)
    try:
        when.astimezone(SHANGHAI) + timedelta(days=1)
    except OverflowError:
        raise bad(name, "out of range") from None
    return when


def date_param(request: web.Request, name: str, default: date | None = None) -> date:
    """An ISO 8601 date."""
    raw = _raw(request, name)
    if raw is None:
        if default is None:
            raise bad(name, "required (YYYY-MM-DD)")
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise bad(name, f"{raw[:40]!r} is not a date (YYYY-MM-DD)") from None


def check_range(first_name: str, first: datetime | date, last: datetime | date,
                limit: timedelta, unit: str) -> None:
    """``first`` ≤ ``last`` and the span within ``limit`` (else a 400 pointing to downloads)."""
    if last < first:
        raise bad(first_name, "is after the end of the range")
    span = last - first
    if span > limit:
        raise ApiError(400, "range_too_long",
                       f"at most {limit.days} days of {unit} per request; for longer series "
                       "use the research downloads (/api/v1/download/…)",
                       {"parameter": first_name, "limit_days": limit.days})
