"""Hour-ending hour numbers and their conversions to datetimes, labels and ISO 8601 text.

An hour is numbered by its *label*, the end of its averaging period, in whole hours since
the Unix epoch: hour ``h`` is the mean over ``[h - 1, h)``, so the value labelled 16:00 is
the mean of 15:00-16:00.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
from numpy.typing import NDArray

from aqi_service.simulator.errors import BadParameter

# Asia/Shanghai has kept UTC+8 without daylight saving since 1991: a fixed offset is exact
# and prints as "+08:00", as loggers do.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
TIMEZONE_NAME = "Asia/Shanghai"
HOUR_S = 3600
_OFFSET_S = 8 * HOUR_S


def hour_floor(when: datetime) -> int:
    """The number of the last whole hour at or before ``when`` (aware)."""
    return int(when.timestamp() // HOUR_S)


def hour_datetime(hour: int) -> datetime:
    """The aware UTC datetime of hour number ``hour``."""
    return datetime.fromtimestamp(hour * HOUR_S, UTC)


def hour_label(hour: int) -> str:
    """The ISO 8601 label of an hour in local time, e.g. ``2026-11-26T16:00:00+08:00``."""
    return datetime.fromtimestamp(hour * HOUR_S, SHANGHAI).isoformat()


def ensure_aware(when: datetime) -> datetime:
    """``when`` itself if aware, else read as Asia/Shanghai local time."""
    return when if when.tzinfo is not None else when.replace(tzinfo=SHANGHAI)


def parse_time(text: str, name: str) -> datetime:
    """Parse an ISO 8601 time (Asia/Shanghai if it has no offset); raise BadParameter."""
    # A "+" left unescaped in a query string arrives as a space.
    candidate = text.strip()
    if " " in candidate and "+" not in candidate and "T" in candidate:
        candidate = candidate.replace(" ", "+")
    try:
        when = datetime.fromisoformat(candidate)
    except ValueError:
        raise BadParameter(
            "bad_time", f"{name!r}: {text!r} is not an ISO 8601 time"
        ) from None
    return ensure_aware(when)


def parse_hour(value: str | datetime, name: str) -> int:
    """The number of an hour given as an on-the-hour ISO 8601 time or datetime."""
    when = parse_time(value, name) if isinstance(value, str) else ensure_aware(value)
    stamp = when.timestamp()
    if stamp % HOUR_S:
        raise BadParameter("bad_hour", f"{name!r}: {when.isoformat()} is not on the hour")
    return int(stamp // HOUR_S)


def time_label(seconds: float) -> str:
    """The ISO 8601 local label of any instant given in seconds since the epoch."""
    return datetime.fromtimestamp(seconds, SHANGHAI).isoformat()


def hour_labels(hours: NDArray[np.int64]) -> list[str]:
    """``hour_label`` of many hours at once."""
    local = (hours * HOUR_S + _OFFSET_S).astype("datetime64[s]")
    return [f"{text}+08:00" for text in np.datetime_as_string(local, unit="s").tolist()]
