"""Schemathesis hooks: the cross-parameter rules that an OpenAPI document cannot state.

OpenAPI describes each parameter on its own; a few rules of API v1 join two of them (the
document says them in words): ``from`` is not after ``to``, an hourly series spans at most
31 days and a daily one 366, and a ``cursor`` is only valid as the ``next_cursor`` of the
page before; and a credit code is valid only with its two GB 32100 / GB 11714 check
characters, which no pattern can state. A request generated as *valid* is made to keep
those rules (``to`` is set to ``from`` when they are broken; a made-up cursor is left out;
an admin filter's credit code is replaced by a real one), so that refusing it would be a
real finding. Requests generated as invalid are left as they are. The refusals themselves
are tested in tests/test_api.py and tests/test_input_errors.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import schemathesis

from aqi_service.web import params

SPANS = {
    "/api/v1/stations/{code}/hourly": (timedelta(days=31), "time"),
    "/api/v1/city/hourly": (timedelta(days=31), "time"),
    "/api/v1/download/hourly.{fmt}": (timedelta(days=366 * 20), "time"),
    "/api/v1/stations/{code}/daily": (timedelta(days=366), "date"),
    "/api/v1/city/daily": (timedelta(days=366), "date"),
    "/api/v1/disclosures": (None, "date"),
    "/api/v1/penalties": (None, "date"),
}
"""Operations with a from/to pair: the longest span (None: any) and the kind of value."""
CREDIT_CODE_FILTERS = ("enterprise", "credit_code")
VALID_CREDIT_CODE = "91350100M000100Y43"
"""The example published with GB 32100 (both check characters right)."""


def _value(kind: str, raw: Any) -> Any:
    if not isinstance(raw, str):
        return None
    try:
        if kind == "time":
            return params.parse_time("x", raw)
        return params.parse_date("x", raw)
    except Exception:   # not a valid value: the case is not a valid one for this rule
        return None


def _now(kind: str) -> Any:
    now = datetime.now(UTC)
    return now if kind == "time" else now.date()


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """Make a case generated as valid keep the cross-parameter rules."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or not case.query:
        return case
    query = case.query
    query.pop("cursor", None)
    if case.operation.path.startswith("/api/v1/admin/"):
        for name in CREDIT_CODE_FILTERS:
            if query.get(name):
                query[name] = VALID_CREDIT_CODE
    rule = SPANS.get(case.operation.path)
    if rule is None:
        return case
    limit, kind = rule
    first, last = _value(kind, query.get("from")), _value(kind, query.get("to"))
    if first is None:
        return case
    end = last if last is not None else _now(kind)
    if end < first or (limit is not None and end - first > limit):
        query["to"] = query["from"]
    return case
