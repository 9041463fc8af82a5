"""Turn a data logger's JSON into observation rows; refuse what cannot be trusted.

Every refused value is returned with its reason (counted, logged, kept for audit) and
never stored as valid. Values with an instrument flag other than N (maintenance,
calibration, fault …) are stored, marked invalid, so nothing is lost.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
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

PLAUSIBLE_MAX: dict[str, Decimal] = {
    "so2": Decimal(10000), "no2": Decimal(5000), "co": Decimal(200),
    "o3": Decimal(3000), "pm10": Decimal(10000), "pm2_5": Decimal(5000),
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


def _number(raw: Any) -> Decimal:
    if isinstance(raw, bool):
        raise InvalidOperation
    if isinstance(raw, Decimal):
        value = raw
    elif isinstance(raw, int):
        value = Decimal(raw)
    elif isinstance(raw, float):
        if not math.isfinite(raw):
            raise InvalidOperation
        value = Decimal(repr(raw))
    elif isinstance(raw, str):
        value = Decimal(raw.strip())
    else:
        raise InvalidOperation
    if not value.is_finite():
        raise InvalidOperation
    return value


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
    seen: dict[tuple[str, datetime], int] = {}
    received = now
    shift = HOUR if mapping.time_convention == "hour-beginning" else timedelta(0)
    for rec in records:
        if not isinstance(rec, Mapping):
            out.rejected.append((station, None, None, _short(rec), None, "record_not_object"))
            continue
        raw_time = rec.get(mapping.time)
        try:
            when = (_parse_time(raw_time, tz) + shift).astimezone(timezone.utc)
        except (ValueError, TypeError):
            out.rejected.append((station, None, None, _short(raw_time), None, "bad_timestamp"))
            continue
        if when.minute or when.second or when.microsecond:
            out.rejected.append((station, None, when, _short(raw_time), None, "not_on_hour"))
            continue
        if when > now + CLOCK_SKEW:
            out.rejected.append((station, None, when, _short(raw_time), None, "future"))
            continue
        if when <= since:
            continue
        for pol in POLLUTANTS:
            key = mapping.fields.get(pol)
            if key is None or key not in rec:
                continue
            raw = rec[key]
            raw_flag = rec.get(mapping.flags.get(pol, ""), "N")
            flag = str(raw_flag).strip().upper() if raw_flag is not None else "N"
            if raw is None:
                continue
            try:
                value = _number(raw)
            except (InvalidOperation, ValueError):
                out.rejected.append((station, pol, when, _short(raw), flag, "non_numeric"))
                continue
            if value < 0:
                out.rejected.append((station, pol, when, _short(raw), flag, "negative"))
                continue
            if value > PLAUSIBLE_MAX[pol]:
                out.rejected.append((station, pol, when, _short(raw), flag, "out_of_range"))
                continue
            if flag not in FLAGS:
                out.rejected.append((station, pol, when, _short(raw), flag, "unknown_flag"))
                continue
            valid = flag == "N"
            if not valid:
                out.flagged += 1
            row: ObservationRow = (station, pol, when, value, flag, valid, source, received)
            prior = seen.get((pol, when))
            if prior is not None:
                out.duplicates += 1
                out.rows[prior] = row
                continue
            seen[(pol, when)] = len(out.rows)
            out.rows.append(row)
            out.hours.add(when)
    return out


def _short(raw: Any, limit: int = 64) -> str | None:
    if raw is None:
        return None
    text = str(raw)
    return text if len(text) <= limit else text[:limit] + "…"
