"""Query and path parameters: parsed strictly, refused with a 400 envelope naming the parameter.

One parser for every JSON route (the series, downloads, rankings, the admin API). The
shapes are regular expressions that the OpenAPI document publishes as they are (``PATTERNS``),
so the document says exactly what is accepted: dates and times of the years 2000–2099 (no
data can exist before, and a year-0001 or 9999 date would overflow the time arithmetic),
no control characters (a NUL byte would reach PostgreSQL), ids of 1–18 ASCII digits (``str.isdigit``
also accepts '¹' or '٣', which ``int`` then refuses or reads).
"""

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

EARLIEST = date(2000, 1, 1)
LATEST = date(2099, 12, 31)
"""Accepted dates (and days of times, Asia/Shanghai): no data can exist outside."""

_MONTH_DAY = ("(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
              "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
              "|02-(?:0[1-9]|1[0-9]|2[0-8]))")
_DATE = f"(?:20[0-9]{{2}}-{_MONTH_DAY}|20(?:[02468][048]|[13579][26])-02-29)"
"""A calendar date of 2000-2099 (leap days of that century: every fourth year, 2000 too)."""
_TIME = "(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\\.[0-9]{1,6})?)?"
_OFFSET = "(?:Z|[+ -](?:0[0-9]|1[0-4]):[0-5][0-9])"
"""UTC offset; a space stands for '+' (an unencoded '+' in a query string)."""

DATE_PATTERN = f"^{_DATE}$"
TIME_PATTERN = f"^{_DATE}(?:T{_TIME}{_OFFSET}?)?$"
"""A date, or a date and time with an optional offset (none: Asia/Shanghai)."""
MONTH_PATTERN = "^20[0-9]{2}-(?:0[1-9]|1[0-2])$"
YEAR_PATTERN = "^20[0-9]{2}$"
ID_PATTERN = "^[0-9]{1,18}$"
NO_CONTROL_PATTERN = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"
"""Text without control characters (C0, DEL, C1)."""

DATE_RE = re.compile(DATE_PATTERN)
TIME_RE = re.compile(TIME_PATTERN)
MONTH_RE = re.compile(MONTH_PATTERN)
YEAR_RE = re.compile(YEAR_PATTERN)
ID_RE = re.compile(ID_PATTERN)
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def bad(name: str, message: str, **details: object) -> ApiError:
    """A 400 naming the parameter."""
    return ApiError(400, "bad_parameter", f"{name}: {message}", {"parameter": name, **details})


def text(request: web.Request, name: str, max_len: int = MAX_PARAM, *,
         empty_is_absent: bool = False) -> str | None:
    """One value of ``name`` (None when absent): given once, at most ``max_len`` characters,
    no control characters; an empty value is refused unless ``empty_is_absent``."""
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise bad(name, "given more than once")
    if not values:
        return None
    value = values[0]
    if value == "":
        if empty_is_absent:
            return None
        raise bad(name, "empty (leave the parameter out for the default)")
    if len(value) > max_len:
        raise bad(name, f"longer than {max_len} characters")
    if CONTROL.search(value):
        raise bad(name, "contains control characters")
    return value


def choice(request: web.Request, name: str, choices: tuple[str, ...],
           **kwargs: bool) -> str | None:
    """One of ``choices`` (None when absent)."""
    value = text(request, name, **kwargs)
    if value is not None and value not in choices:
        raise bad(name, f"must be one of {', '.join(choices)}")
    return value


def matching(request: web.Request, name: str, pattern: re.Pattern[str], what: str,
             **kwargs: bool) -> str | None:
    """A value of a fixed shape (None when absent)."""
    value = text(request, name, **kwargs)
    if value is not None and not pattern.match(value):
        raise bad(name, f"{value[:40]!r} is not {what}")
    return value


def parse_time(name: str, raw: str) -> datetime:
    """An ISO 8601 date or time of 2000-2099 (Asia/Shanghai when no offset is given)."""
    if not TIME_RE.match(raw):
        raise bad(name, f"{raw[:40]!r} is not an ISO 8601 time of {EARLIEST.year}-"
                  f"{LATEST.year} (e.g. 2026-11-26T08:00+08:00)")
    when = datetime.fromisoformat(raw.replace(" ", "+", 1))
    if when.tzinfo is None:
        when = when.replace(tzinfo=SHANGHAI)
    return when


def time_param(request: web.Request, name: str, default: datetime | None = None,
               **kwargs: bool) -> datetime:
    """An ISO 8601 time or date (Asia/Shanghai when no offset is given)."""
    raw = text(request, name, **kwargs)
    if raw is None:
        if default is None:
            raise bad(name, "required (ISO 8601, e.g. 2026-11-26T08:00+08:00)")
        return default
    return parse_time(name, raw)


def optional_time(request: web.Request, name: str, **kwargs: bool) -> datetime | None:
    """An ISO 8601 time or date, or None when absent."""
    raw = text(request, name, **kwargs)
    return None if raw is None else parse_time(name, raw)


def parse_date(name: str, raw: str) -> date:
    """A date YYYY-MM-DD of 2000-2099."""
    if not DATE_RE.match(raw):
        raise bad(name, f"{raw[:40]!r} is not a date of {EARLIEST.year}-{LATEST.year} "
                  "(YYYY-MM-DD)")
    return date.fromisoformat(raw)


def date_param(request: web.Request, name: str, default: date | None = None) -> date:
    """An ISO 8601 date."""
    raw = text(request, name)
    if raw is None:
        if default is None:
            raise bad(name, "required (YYYY-MM-DD)")
        return default
    return parse_date(name, raw)


def month_param(request: web.Request, name: str) -> date | None:
    """The first day of a month YYYY-MM of 2000-2099, or None when absent."""
    raw = matching(request, name, MONTH_RE, f"a month of {EARLIEST.year}-{LATEST.year} "
                   "(YYYY-MM)")
    return None if raw is None else date(int(raw[:4]), int(raw[5:]), 1)


def year_param(request: web.Request, name: str) -> date | None:
    """The first day of a year YYYY of 2000-2099, or None when absent."""
    raw = matching(request, name, YEAR_RE, f"a year of {EARLIEST.year}-{LATEST.year}")
    return None if raw is None else date(int(raw), 1, 1)


def object_id(raw: str) -> int | None:
    """An id of a path (1-18 ASCII digits), or None when it cannot be one."""
    return int(raw) if ID_RE.match(raw) else None


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
