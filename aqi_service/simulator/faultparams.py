"""Each fault kind's ``value``, read and checked into ``FaultParams``.

``value`` by kind (``None`` takes the default):

====================  =============================================================
timeout               seconds the handler waits before answering (30)
late_hour             seconds an hour is published later than normal (3600)
revised_value         ``{"pollutant": "pm2_5", "delta": 10}`` or a number (the delta)
out_of_range          ``{"pollutant": "pm2_5", "value": 20000}`` or a number (20000)
sentinel              ``{"pollutant": "pm2_5", "value": -99}`` or a number (9999.9)
negative              ``{"pollutant": "pm2_5", "value": -5}`` or a negative number (-5)
non_numeric           ``{"pollutant": "pm2_5", "value": "—"}`` or a string ("—")
pm25_above_pm10       the ratio PM2.5 / PM10 the hours show, above 1 (1.25): PM10 reads low
flag_*                ``{"pollutant": "o3"}``, a pollutant or ``"*"`` (every pollutant)
bad_timestamp         ``"off_hour"`` (the time is 17 minutes past the hour) or ``"future"``
silent                the ISO 8601 time the station stops reporting (when the fault is added)
others                no value
====================  =============================================================

``"pollutants": [...]`` may replace ``"pollutant"`` and ``"*"`` means all six.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aqi_service.simulator.errors import BadParameter
from aqi_service.simulator.hours import ensure_aware, parse_time
from aqi_service.simulator.kinds import FLAG_OF_KIND, FaultKind
from aqi_service.simulator.series import POLLUTANTS

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_LATE_S = 3600.0
DEFAULT_PM_RATIO = 1.25
_VALUE_DEFAULTS: dict[FaultKind, float | str] = {
    FaultKind.OUT_OF_RANGE: 20000,
    FaultKind.SENTINEL: 9999.9,
    FaultKind.NEGATIVE: -5,
    FaultKind.NON_NUMERIC: "—",
}
BAD_TIMESTAMP_MODES = ("off_hour", "future")


@dataclass(frozen=True)
class FaultParams:
    """A fault's ``value`` read for its kind."""

    seconds: float = 0.0
    ratio: float = DEFAULT_PM_RATIO
    pollutants: tuple[str, ...] = ()
    replacement: float | str | None = None
    delta: float = 0.0
    mode: str = "off_hour"
    start: datetime | None = None


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _pollutants(spec: Any, default: tuple[str, ...]) -> tuple[str, ...]:
    if spec is None:
        return default
    names = [spec] if isinstance(spec, str) else spec
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BadParameter("bad_value", "'pollutant' must be a pollutant name or '*'")
    if "*" in names:
        return POLLUTANTS
    unknown = [n for n in names if n not in POLLUTANTS]
    if unknown or not names:
        raise BadParameter("bad_value", f"unknown pollutants {unknown}; use {list(POLLUTANTS)}")
    return tuple(dict.fromkeys(names))


def _split(value: Any, key: str, default_pollutants: tuple[str, ...]) -> tuple[tuple[str, ...],
                                                                              Any]:
    """(pollutants, ``value[key]``) of a dict value, or (defaults, value) of a scalar."""
    if isinstance(value, dict):
        unknown = set(value) - {"pollutant", "pollutants", key}
        if unknown:
            raise BadParameter("bad_value", f"unknown keys in 'value': {sorted(unknown)}")
        spec = value.get("pollutants", value.get("pollutant"))
        return _pollutants(spec, default_pollutants), value.get(key)
    return default_pollutants, value


def parse_params(kind: FaultKind, value: Any, created: datetime) -> FaultParams:
    """Read ``value`` for ``kind`` (see the module docstring)."""
    pm25 = ("pm2_5",)
    if kind in (FaultKind.TIMEOUT, FaultKind.LATE_HOUR):
        default = DEFAULT_TIMEOUT_S if kind is FaultKind.TIMEOUT else DEFAULT_LATE_S
        seconds = default if value is None else value
        if not _is_number(seconds) or seconds < 0:
            raise BadParameter("bad_value", f"{kind.value}: 'value' is seconds (>= 0)")
        return FaultParams(seconds=float(seconds))
    if kind is FaultKind.PM25_ABOVE_PM10:
        ratio = DEFAULT_PM_RATIO if value is None else value
        if not _is_number(ratio) or ratio <= 1:
            raise BadParameter("bad_value", "pm25_above_pm10: 'value' is a ratio above 1")
        return FaultParams(ratio=float(ratio))
    if kind is FaultKind.REVISED_VALUE:
        pollutants, delta = _split(value, "delta", pm25)
        delta = 10 if delta is None else delta
        if not _is_number(delta):
            raise BadParameter("bad_value", "revised_value: 'delta' must be a number")
        return FaultParams(pollutants=pollutants, delta=float(delta))
    if kind in _VALUE_DEFAULTS:
        pollutants, replacement = _split(value, "value", pm25)
        replacement = _VALUE_DEFAULTS[kind] if replacement is None else replacement
        if kind is FaultKind.NON_NUMERIC:
            valid = isinstance(replacement, str)
        elif kind is FaultKind.NEGATIVE:
            valid = _is_number(replacement) and replacement < 0
        else:
            valid = _is_number(replacement)
        if not valid:
            raise BadParameter("bad_value", f"{kind.value}: unsuitable value {replacement!r}")
        return FaultParams(pollutants=pollutants, replacement=replacement)
    if kind in FLAG_OF_KIND:
        pollutants, _ = _split(value if isinstance(value, dict) else {"pollutant": value},
                               "unused", POLLUTANTS)
        return FaultParams(pollutants=pollutants)
    if kind is FaultKind.BAD_TIMESTAMP:
        mode = value or "off_hour"
        if mode not in BAD_TIMESTAMP_MODES:
            raise BadParameter("bad_value", f"bad_timestamp: 'value' is one of "
                                            f"{list(BAD_TIMESTAMP_MODES)}")
        return FaultParams(mode=mode)
    if kind is FaultKind.SILENT:
        if value is not None and not isinstance(value, str | datetime):
            raise BadParameter("bad_value", "silent: 'value' is the ISO 8601 start time")
        if isinstance(value, str):
            return FaultParams(start=parse_time(value, "value"))
        return FaultParams(start=ensure_aware(value) if value else created)
    if value is not None:
        raise BadParameter("bad_value", f"{kind.value} takes no 'value'")
    return FaultParams()
