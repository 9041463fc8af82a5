"""Turn a data logger's JSON into observation rows; refuse what cannot be trusted.

Every refused value is returned with its reason (counted, logged, kept for audit) and
never stored as valid. Values with an instrument flag other than N (maintenance,
calibration, fault …) are stored, marked invalid, so nothing is lost.

Reasons of a refused value: ``sentinel`` (a logger's "no value" code such as 9999.9 or
-99, whatever the pollutant), ``non_numeric``, ``negative``, ``out_of_range`` (above the
pollutant's plausible maximum), ``unknown_flag``. The ranges, the sentinels and the rule
for PM2.5 above PM10 are documented with their sources in docs/METHODOLOGY.md
("Validation").
"""

from __future__ import annotations

import logging
import math
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from functools import lru_cache
from itertools import repeat
from typing import Any, Protocol

from aqi_service.aqi.schemes import POLLUTANTS
from aqi_service.storage.observations import Column, ObservationRow

log = logging.getLogger(__name__)

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
    "so2": 2620.0, "no2": 3840.0, "co": 150.0, "o3": 1200.0, "pm10": 10000.0, "pm2_5": 5000.0,
}
"""Above these (µg/m³; CO mg/m³) a value is an instrument or transmission error.

Gases: the top of HJ 633's breakpoint table (IAQI 500), above the HJ 654 analysers' range;
PM10: above the 8,108 µg/m³ measured in Beijing's 2021-03-15 dust storm, well over HJ 653's
0-1,000 range; PM2.5: half of that. METHODOLOGY.md gives the figures and their sources.
"""


def _all_nines(digits: range, decimals: tuple[str, ...]) -> set[float]:
    return {float("9" * n + d) for n in digits for d in decimals}


SENTINELS: frozenset[float] = frozenset(
    _all_nines(range(4, 10), ("", ".9", ".99"))
    | {-v for v in _all_nines(range(2, 10), ("", ".9", ".99"))}
)
"""Loggers' "no value" codes: 9999, 9999.9, 99999 … and -99, -999, -9999.9 …

Refused as ``sentinel`` even inside a range (PM10's reaches 10,000): a reading exactly on
such a code is not a measurement. 99 and 999 are not in the set: both are ordinary
readings (99 appears in published hourly PM10 and O3; dust storms give PM10 near 1,000).
"""
SENTINEL_FLOOR = min(v for v in SENTINELS if v > 0)
"""A column whose values are all in [0, this) holds no sentinel (the fast path's test)."""


class PayloadError(ValueError):
    """The response as a whole is unusable (not the expected JSON shape)."""


class FieldMap(Protocol):
    """Where the values are in a logger's JSON (``config.HttpSource`` is one)."""

    records: str
    time: str
    time_convention: str
    fields: Mapping[str, str]
    flags: Mapping[str, str]
    # Optionally also ``missing``: texts meaning "no value" (CNEMC's ``NA``, ``/``): the
    # hour has none, nothing is rejected.


@dataclass(slots=True)
class Parsed:
    """Values to store (columns), rejections and counts from one response."""

    station: str = ""
    received: datetime | None = None
    columns: list[Column] = field(default_factory=list)
    rejected: list[tuple[str, str | None, datetime | None, str | None, str | None, str]] = (
        field(default_factory=list))
    hours: set[datetime] = field(default_factory=set)
    duplicates: int = 0
    flagged: int = 0
    pm_inverted: list[tuple[datetime, str, str]] = field(default_factory=list)
    """Hours whose valid PM2.5 exceeds their valid PM10: (hour, PM10, PM2.5) as received.

    Both values are kept, valid (METHODOLOGY.md: the national platform published such
    pairs); the hours are listed so that they can be logged and reviewed.
    """

    @property
    def rows(self) -> list[ObservationRow]:
        """The values to store as rows (pollutant by pollutant, in the records' order)."""
        assert self.received is not None or not self.columns
        return [row for c in self.columns for row in c.rows(self.station, self.received)]

    @property
    def count(self) -> int:
        """How many values there are to store."""
        return sum(len(c.values) for c in self.columns)

    def clip(self, last: datetime) -> None:
        """Keep only the values of hours up to ``last``."""
        if not self.hours or max(self.hours) <= last:
            return
        self.hours = {h for h in self.hours if h <= last}
        self.columns = [
            c if max(c.hours) <= last else c.take([i for i, h in enumerate(c.hours) if h <= last])
            for c in self.columns]
        self.columns = [c for c in self.columns if c.values]

    def extend(self, part: Parsed) -> None:
        """Add another response's values, rejections and counts."""
        self.received = self.received or part.received
        self.columns.extend(part.columns)
        self.rejected.extend(part.rejected)
        self.hours |= part.hours
        self.duplicates += part.duplicates
        self.flagged += part.flagged

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


@lru_cache(maxsize=8192)
def _hour_end_utc(raw: str, tz: tzinfo, shift: timedelta) -> datetime:
    """A record's time as an hour-ending UTC label (every station repeats the same times)."""
    return (_parse_time(raw, tz) + shift).astimezone(timezone.utc)


class NumText(str):
    """The text of a JSON number as the logger wrote it (``json.loads(parse_float=NumText)``).

    Kept as text all the way into the ``numeric`` column, so the stored value is exactly
    the reported one; a JSON *string* stays a plain ``str`` and is checked more strictly.
    """

    __slots__ = ()


_NUMERIC_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
MAX_DECIMALS = 20
"""Decimal places a reported value may have. Instruments report to 0.1 µg/m³ or 0.001
mg/m³, and a float-emitting logger's ``repr`` needs at most 17; ``1e-20000`` is 0.0 as a
float but 20,000 places as the exact text the ``numeric`` column stores, which PostgreSQL
refuses ("value overflows numeric format"), failing its whole batch on every run."""
SHORT_TEXT = 24
"""Number texts at most this long, without an exponent, cannot have too many places."""


class TooPrecise(ValueError):
    """A number with more decimal places than MAX_DECIMALS (reason ``too_precise``)."""


def _places_checked(text: str) -> str:
    if len(text) > SHORT_TEXT or "e" in text or "E" in text:
        exponent = Decimal(text).as_tuple().exponent
        if not isinstance(exponent, int) or -exponent > MAX_DECIMALS:
            raise TooPrecise(text)
    return text


def _number(raw: Any) -> tuple[str, float]:
    """(exact text for storage, float for range checks); ValueError if not a number."""
    if isinstance(raw, bool):
        raise ValueError("boolean")
    if isinstance(raw, int):
        return str(raw), float(raw)
    if isinstance(raw, NumText):
        return _places_checked(raw), float(raw)
    if isinstance(raw, str):
        text = raw.strip()
        if not _NUMERIC_TEXT.match(text):
            raise ValueError("not a number")
        return _places_checked(text), float(text)
    if isinstance(raw, float):
        if math.isnan(raw):
            raise ValueError("NaN")
        number = float(raw)
        return (_places_checked(repr(number)) if math.isfinite(number) else repr(number),
                number)
    if isinstance(raw, Decimal):
        if raw.is_nan():
            raise ValueError("NaN")
        return _places_checked(str(raw)) if raw.is_finite() else str(raw), float(raw)
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
    out = Parsed(station, now)
    shift = HOUR if mapping.time_convention == "hour-beginning" else timedelta(0)
    latest = now + CLOCK_SKEW
    rejected = out.rejected
    # 1. Records and their hours; a repeated hour's values replace the earlier ones.
    by_hour: dict[datetime, Mapping[str, Any]] = {}
    get: Any = dict.get  # how to read a record (any Mapping, if not all are dicts)
    for rec in records:
        if type(rec) is not dict:
            if not isinstance(rec, Mapping):
                rejected.append((station, None, None, _short(rec), None, "record_not_object"))
                continue
            get = _mapping_get
        raw_time = rec.get(mapping.time)
        try:
            if type(raw_time) is str:
                when = _hour_end_utc(raw_time, tz, shift)
            else:
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
        prior = by_hour.get(when)
        if prior is not None:
            out.duplicates += 1
            rec = {**prior, **rec}
        by_hour[when] = rec
    if not by_hour:
        return out
    hours = list(by_hour)
    recs = list(by_hour.values())
    # 2. Column by column: a column of plain, in-range, normal values takes the fast path.
    pm: dict[str, list[Any]] = {}
    pm_ints = 0  # PM columns that took the fast path as ints
    for pol in POLLUTANTS:
        key = mapping.fields.get(pol)
        if key is None:
            continue
        flag_key = mapping.flags.get(pol, "")
        maximum = min(PLAUSIBLE_MAX[pol], SENTINEL_FLOOR)
        col = list(map(get, recs, repeat(key)))
        absent = getattr(mapping, "missing", ())
        if absent:
            col = [None if type(v) is str and v.strip() in absent else v for v in col]
        flags = list(map(get, recs, repeat(flag_key), repeat("N")))
        if (flags.count("N") == len(flags) and col.count(None) == 0
                and _plain_in_range(col, maximum)):
            out.columns.append(Column(pol, hours, col, source))
            out.hours.update(hours)
            if pol in _PM:
                pm[pol] = col
                pm_ints += type(col[0]) is int  # a passing column is all ints or all texts
            continue
        valid: list[Any] = []
        kept = Column(pol, [], [], source, [], [])
        assert kept.flags is not None and kept.valid is not None
        for when, raw, raw_flag in zip(hours, col, flags, strict=True):
            got = _check(station, pol, when, raw, raw_flag, PLAUSIBLE_MAX[pol], out)
            if got is None:
                valid.append(None)
                continue
            kept.hours.append(when)
            kept.values.append(got[0])
            kept.flags.append(got[1])
            kept.valid.append(got[2])
            out.hours.add(when)
            valid.append(got[0] if got[2] else None)
        if kept.values:
            if kept.flags.count("N") == len(kept.flags):  # every value kept is valid
                kept.flags = kept.valid = None
            out.columns.append(kept)
        if pol in _PM:
            pm[pol] = valid
    if len(pm) == 2:
        _pm_pairs(station, hours, pm["pm10"], pm["pm2_5"], pm_ints == 2, out)
    return out


_PM = ("pm10", "pm2_5")


def _pm_pairs(station: str, hours: list[datetime], pm10: list[Any], pm2_5: list[Any],
              ints: bool, out: Parsed) -> None:
    """List the hours whose valid PM2.5 exceeds their valid PM10 (both values are kept).

    ``pm10`` and ``pm2_5`` are aligned with ``hours``: the value as received, None where
    there is no valid value. Two columns of ints (``ints``, the common case) are compared
    in C first.
    """
    if ints:
        if not any(map(operator.gt, pm2_5, pm10)):
            return
        found = [i for i, (coarse, fine) in enumerate(zip(pm10, pm2_5, strict=True))
                 if fine > coarse]
    else:
        found = [i for i, (coarse, fine) in enumerate(zip(pm10, pm2_5, strict=True))
                 if coarse is not None and fine is not None and float(fine) > float(coarse)]
    if found:
        out.pm_inverted.extend((hours[i], str(pm10[i]), str(pm2_5[i])) for i in found)
        log.debug("station %s: %d hours with PM2.5 above PM10, both kept as received "
                  "(first %s: PM10 %s, PM2.5 %s)", station, len(found),
                  *out.pm_inverted[-len(found)])


def _plain_in_range(col: list[Any], maximum: float) -> bool:
    """All ints (or JSON number texts) within [0, maximum): no value needs a closer look.

    ``maximum`` is at most the smallest positive sentinel, so a column that passes holds
    no sentinel.
    """
    kinds = set(map(type, col))
    if kinds == {int}:
        return min(col) >= 0 and max(col) < maximum
    if kinds == {NumText}:
        joined = "".join(col)
        if "e" in joined or "E" in joined or max(map(len, col)) > SHORT_TEXT:
            return False   # _check looks at the decimal places
        try:
            numbers = list(map(float, col))
        except ValueError:
            return False
        return min(numbers) >= 0 and max(numbers) < maximum
    return False


def _check(station: str, pol: str, when: datetime, raw: Any, raw_flag: Any, maximum: float,
           out: Parsed) -> tuple[int | str, str, bool] | None:
    """One value the fast path could not take: (value, flag, valid), or None with the
    rejection recorded."""
    if raw is None:
        return None
    flag = raw_flag if raw_flag == "N" else (
        "N" if raw_flag is None else str(raw_flag).strip().upper())
    try:
        value, number = (raw, raw) if type(raw) is int else _number(raw)
    except TooPrecise:
        out.rejected.append((station, pol, when, _short(raw), flag, "too_precise"))
        return None
    except (ValueError, OverflowError):
        out.rejected.append((station, pol, when, _short(raw), flag, "non_numeric"))
        return None
    if number in SENTINELS:
        out.rejected.append((station, pol, when, _short(raw), flag, "sentinel"))
        return None
    if number < 0:
        out.rejected.append((station, pol, when, _short(raw), flag, "negative"))
        return None
    if not number <= maximum:
        out.rejected.append((station, pol, when, _short(raw), flag, "out_of_range"))
        return None
    valid = flag == "N"
    if not valid:
        if flag not in FLAGS:
            out.rejected.append((station, pol, when, _short(raw), flag, "unknown_flag"))
            return None
        out.flagged += 1
    return value, flag, valid


def _mapping_get(record: Mapping[str, Any], key: str, default: Any = None) -> Any:
    return record.get(key, default)


def _short(raw: Any, limit: int = 64) -> str | None:
    if raw is None:
        return None
    text = str(raw)
    return text if len(text) <= limit else text[:limit] + "…"
