"""Turn a data logger's JSON into observation rows; refuse what cannot be trusted.

Every refused value is returned with its reason (counted, logged, kept for audit) and
never stored as valid. Values with an instrument flag other than N (maintenance,
calibration, fault …) are stored, marked invalid, so nothing is lost.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any

from aqi_service.aqi.schemes import POLLUTANTS
from aqi_service.storage.observations import ObservationRow

HOUR = timedelta(hours=1)
CLOCK_SKEW = timedelta(minutes=5)
"""A record labelled later than now plus this is in the future."""

FLAGS = {
    "N": "normal", "F": "instrument stopped", "M": "maintenance", "S": "manual value",
    "D": "fault", "C": "calibration", "T": "above instrument range",
    "B": "communication fault", "P": "power fault",
}
"""HJ 212 data flags; only N values are valid for publication."""

PLAUSIBLE_MAX: dict[str, float] = {
    "so2": 10000.0, "no2": 5000.0, "co": 200.0, "o3": 3000.0, "pm10": 10000.0, "pm2_5": 5000.0,
}
"""Above these (µg/m³; CO mg/m³) a value is an instrument or transmission error."""


class PayloadError(ValueError):
    """The response as a whole is unusable (not the expected JSON shape)."""


@dataclass(frozen=True, slots=True)
class FieldMap:
    """Where the values are in a logger's JSON."""

    records: str = "records"
    time: str = "time"
    time_convention: str = "hour-ending"
    fields: Mapping[str, str] = field(default_factory=lambda: {p: p for p in POLLUTANTS})
    flags: Mapping[str, str] = field(
        default_factory=lambda: {p: f"{p}_flag" for p in POLLUTANTS})


@dataclass(slots=True)
class Parsed:
    """Rows to store, rejections and counts from one response."""

    rows: list[ObservationRow] = field(default_factory=list)
    rejected: list[tuple[str, str | None, datetime | None, str | None, str | None, str]] = (
        field(default_factory=list))
    hours: set[datetime] = field(default_factory=set)
    duplicates: int = 0
    flagged: int = 0

    def reject_reasons(self) -> dict[str, int]:
        """Rejections counted by reason."""
        counts: dict[str, int] = {}
        for rej in self.rejected:
            counts[rej[5]] = counts.get(rej[5], 0) + 1
        return counts


def _dig(body: Any, path: str) -> Any:
    node = body
    for part in path.split(".") if path else []:
        if not isinstance(node, Mapping) or part not in node:
            raise PayloadError(f"no {path!r} in the response")
        node = node[part]
    return node


def _parse_time(raw: Any, tz: tzinfo) -> datetime:
    if not isinstance(raw, str):
        raise ValueError("time is not a string")
    when = datetime.fromisoformat(raw.strip())
    return when if when.tzinfo else when.replace(tzinfo=tz)


class NumText(str):
    """The text of a JSON number as the logger wrote it (``json.loads(parse_float=NumText)``).

    Kept as text all the way into the ``numeric`` column, so the stored value is exactly
    the reported one; a JSON *string* stays a plain ``str`` and is checked more strictly.
    """

    __slots__ = ()


_NUMERIC_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _number(raw: Any) -> tuple[str, float]:
    """(exact text for storage, float for range checks); ValueError if not a number."""
    if isinstance(raw, bool):
        raise ValueError("boolean")
    if isinstance(raw, int):
        return str(raw), float(raw)
    if isinstance(raw, NumText):
        return raw, float(raw)
    if isinstance(raw, str):
        text = raw.strip()
        if not _NUMERIC_TEXT.match(text):
            raise ValueError("not a number")
        return text, float(text)
    if isinstance(raw, float):
        if math.isnan(raw):
            raise ValueError("NaN")
        return repr(raw), raw
    if isinstance(raw, Decimal):
        if raw.is_nan():
            raise ValueError("NaN")
        return str(raw), float(raw)
    raise ValueError(type(raw).__name__)


def parse_hourly(
    body: Any,
    station: str,
    mapping: FieldMap,
    since: datetime,
    now: datetime,
    tz: tzinfo,
    source: str,
) -> Parsed:
    """Validate a response's records for hours after ``since``; raise PayloadError if unusable."""
    records = _dig(body, mapping.records)
    if not isinstance(records, list):
        raise PayloadError(f"{mapping.records!r} is not a list")
    out = Parsed()
    seen_hours: dict[datetime, int] = {}
    received = now
    shift = HOUR if mapping.time_convention == "hour-beginning" else timedelta(0)
    latest = now + CLOCK_SKEW
    wanted = [(pol, mapping.fields[pol], mapping.flags.get(pol, ""), PLAUSIBLE_MAX[pol])
              for pol in POLLUTANTS if mapping.fields.get(pol) is not None]
    rows, rejected, hours = out.rows, out.rejected, out.hours
    for rec in records:
        if type(rec) is not dict and not isinstance(rec, Mapping):
            rejected.append((station, None, None, _short(rec), None, "record_not_object"))
            continue
        raw_time = rec.get(mapping.time)
        try:
            when = (_parse_time(raw_time, tz) + shift).astimezone(timezone.utc)
        except (ValueError, TypeError, OverflowError):
            rejected.append((station, None, None, _short(raw_time), None, "bad_timestamp"))
            continue
        if when.minute or when.second or when.microsecond:
            rejected.append((station, None, when, _short(raw_time), None, "not_on_hour"))
            continue
        if when > latest:
            rejected.append((station, None, when, _short(raw_time), None, "future"))
            continue
        if when <= since:
            continue
        first_row = len(rows)
        for pol, key, flag_key, maximum in wanted:
            raw = rec.get(key)
            if raw is None:
                continue
            raw_flag = rec.get(flag_key, "N")
            flag = raw_flag if raw_flag == "N" else (
                "N" if raw_flag is None else str(raw_flag).strip().upper())
            if type(raw) is int:  # the common case: an integer is its own exact text
                value: int | str = raw
                number: float = raw
            else:
                try:
                    value, number = _number(raw)
                except (ValueError, OverflowError):
                    rejected.append((station, pol, when, _short(raw), flag, "non_numeric"))
                    continue
            if number < 0:
                rejected.append((station, pol, when, _short(raw), flag, "negative"))
                continue
            if not number <= maximum:
                rejected.append((station, pol, when, _short(raw), flag, "out_of_range"))
                continue
            valid = flag == "N"
            if not valid:
                if flag not in FLAGS:
                    rejected.append((station, pol, when, _short(raw), flag, "unknown_flag"))
                    continue
                out.flagged += 1
            rows.append((station, pol, when, value, flag, valid, source, received))
        if len(rows) == first_row:
            continue
        if when in seen_hours:  # the hour again: its values replace the earlier ones
            out.duplicates += 1
            _replace_duplicates(rows, seen_hours[when], first_row)
        else:
            seen_hours[when] = first_row
            hours.add(when)
    return out


def _replace_duplicates(rows: list[ObservationRow], earlier: int, start: int) -> None:
    """Rows from ``start`` repeat an hour first seen at ``earlier``: keep the later values."""
    repeat = rows[start:]
    del rows[start:]
    index = {rows[k][1]: k for k in range(earlier, len(rows))
             if rows[k][2] == repeat[0][2]}
    for row in repeat:
        k = index.get(row[1])
        if k is None:
            rows.append(row)
        else:
            rows[k] = row


def _short(raw: Any, limit: int = 64) -> str | None:
    if raw is None:
        return None
    text = str(raw)
    return text if len(text) <= limit else text[:limit] + "…"
