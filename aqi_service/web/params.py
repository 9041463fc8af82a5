"""Query and path parameters: parsed strictly, refused with a 400 naming the parameter.

One parser for every route: the JSON routes (the series, downloads, rankings, the admin
API) refuse with the 400 envelope (:func:`bad`); the disclosure lists and the pages read
through :class:`Query`, whose refusals (:class:`BadParameter`, in Chinese and English) the
JSON routes answer with the same envelope and the pages with the HTML error page. Every
value goes through :func:`single` (given once, not too long, no control characters). The
shapes are regular expressions that the OpenAPI document publishes as they are (``PATTERNS``),
so the document says exactly what is accepted: dates and times of the years 2000–2099 (no
data can exist before, and a year-0001 or 9999 date would overflow the time arithmetic),
no control characters (a NUL byte would reach PostgreSQL), ids of 1–18 ASCII digits (``str.isdigit``
also accepts '¹' or '٣', which ``int`` then refuses or reads).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from aiohttp import web

from aqi_service.aqi.schemes import SHANGHAI
from aqi_service.errors import InputError
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
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
"""Control characters (C0, DEL, C1) and lone surrogates."""


class BadParameter(InputError):
    """A parameter that cannot be accepted: a 400 naming it (the JSON envelope on JSON routes,
    the HTML error page on the pages); the message in English and Chinese."""

    def __init__(self, name: str, message_en: str, message_zh: str | None = None) -> None:
        super().__init__(f"{name}: {message_en}")
        self.name = name
        self.message_en = message_en
        self.message_zh = message_zh or message_en

    def api_error(self) -> ApiError:
        """The 400 envelope of this refusal."""
        return ApiError(400, "bad_parameter", str(self), {"parameter": self.name})


def bad(name: str, message: str, **details: object) -> ApiError:
    """A 400 naming the parameter."""
    return ApiError(400, "bad_parameter", f"{name}: {message}", {"parameter": name, **details})


def single(query: Mapping[str, str] | Any, name: str, max_len: int = MAX_PARAM, *,
           empty_is_absent: bool = False) -> str | None:
    """One value of ``name`` in ``query`` (None when absent): given once, at most ``max_len``
    characters, no control characters; an empty value is refused unless ``empty_is_absent``.
    Refusals are :class:`BadParameter`."""
    values = query.getall(name, [])
    if len(values) > 1:
        raise BadParameter(name, "given more than once", "重复给出")
    if not values:
        return None
    value = values[0]
    if value == "":
        if empty_is_absent:
            return None
        raise BadParameter(name, "empty (leave the parameter out for the default)",
                           "为空（不需要时请省略该参数）")
    if len(value) > max_len:
        raise BadParameter(name, f"longer than {max_len} characters", f"超过 {max_len} 个字符")
    if CONTROL.search(value):
        raise BadParameter(name, "contains control characters", "含有控制字符")
    return value


def text(request: web.Request, name: str, max_len: int = MAX_PARAM, *,
         empty_is_absent: bool = False) -> str | None:
    """:func:`single` of the request's query, refused with the 400 envelope."""
    try:
        return single(request.query, name, max_len, empty_is_absent=empty_is_absent)
    except BadParameter as exc:
        raise exc.api_error() from None


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


CREDIT_CODE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$")
"""The shape of a unified social credit code (GB 32100; the check characters are verified
where one is stored)."""
DIGITS = re.compile(r"^[0-9]{1,18}$")


class Query:
    """Typed access to a request's query parameters; every refusal is a :class:`BadParameter`.

    With ``forms`` (the pages' filter forms, which send empty fields) an empty value counts
    as absent; without (API v1) an empty value is refused. Values are stripped. A value
    given twice, too long, or holding control characters is refused.
    """

    def __init__(self, query: Mapping[str, str] | Any, *, forms: bool = True) -> None:
        self.query = query
        self.forms = forms

    def text(self, name: str, max_len: int = 40) -> str | None:
        """One value, stripped; None when absent (or blank)."""
        value = single(self.query, name, max_len, empty_is_absent=self.forms)
        return None if value is None else value.strip() or None

    def choice(self, name: str, allowed: Any) -> str | None:
        """One of ``allowed``."""
        value = self.text(name)
        if value is not None and value not in allowed:
            raise BadParameter(name, f"{value!r} is not one of {', '.join(sorted(allowed))}",
                               f"{value!r} 不是可选值（{'、'.join(sorted(allowed))}）")
        return value

    def pattern(self, name: str, regex: re.Pattern[str], what_en: str, what_zh: str,
                upper: bool = False) -> str | None:
        """A value of a fixed shape."""
        value = self.text(name)
        if value is not None and upper:
            value = value.upper()
        if value is not None and not regex.match(value):
            raise BadParameter(name, f"{value!r} is not {what_en}", f"{value!r} 不是{what_zh}")
        return value

    def credit_code(self, name: str) -> str | None:
        """A unified social credit code (18 characters, GB 32100)."""
        return self.pattern(name, CREDIT_CODE, "a unified social credit code (18 characters)",
                            "统一社会信用代码（18 位）", upper=True)

    def integer(self, name: str, low: int, high: int, default: int | None = None) -> int | None:
        """A whole number in ``[low, high]``."""
        value = self.text(name)
        if value is None:
            return default
        if not DIGITS.match(value) or not low <= int(value) <= high:
            raise BadParameter(name, f"must be a whole number from {low} to {high}",
                               f"应为 {low} 至 {high} 的整数")
        return int(value)

    def day(self, name: str) -> date | None:
        """A date, YYYY-MM-DD, of 2000-2099."""
        value = self.text(name)
        if value is None:
            return None
        if not DATE_RE.match(value):
            raise BadParameter(name, f"{value!r} is not a date of {EARLIEST.year}-"
                               f"{LATEST.year} (YYYY-MM-DD)",
                               f"{value!r} 不是 {EARLIEST.year}—{LATEST.year} 年的"
                               "日期（YYYY-MM-DD）")
        return date.fromisoformat(value)

    def days(self) -> tuple[date | None, date | None]:
        """``from`` and ``to`` (inclusive days); ``from`` after ``to`` is refused."""
        first, last = self.day("from"), self.day("to")
        if first and last and first > last:
            raise BadParameter("from", "is after to", "晚于 to")
        return first, last
