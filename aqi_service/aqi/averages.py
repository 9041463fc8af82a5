"""Averages of hourly values per GB 3095 (Table 4), each with the count of valid hours behind it.

Hourly values are labelled by the hour in which they end (hour-ending, as China's
platforms publish): the value labelled 16:00 is the mean of 15:00-16:00, and a natural
day holds the labels 01:00 … 24:00 (24:00 being 00:00 of the next day). A series is a
sequence of consecutive hours; ``None`` is a missing or invalid hour. Results are exact
Fractions; round them only for display or storage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from aqi_service.aqi.exact import Number, to_fraction

DAILY_MIN_HOURS = 20
"""24 h / daily mean of SO2, NO2, CO, PM10, PM2.5: at least 20 hourly values."""
EIGHT_HOUR_MIN = 6
"""O3 8 h mean: at least 6 hourly values in the 8 h window."""
MDA8_MIN_WINDOWS = 14
"""O3 daily max 8 h: at least 14 valid windows of the 17 [unconfirmed: HJ 663 practice]."""
MDA8_FIRST_WINDOW_END = 8
"""The first 8 h window of a day ends at 08:00; the last at 24:00 (none crosses midnight)."""
O3_8H_LIMIT = 160
"""Class-II O3 8 h limit (µg/m³): a daily max 8 h above it stands even with fewer windows."""
O3_1H_LIMIT = 200
"""Class-II O3 1 h limit (µg/m³): a daily max 1 h above it stands even with fewer hours."""


@dataclass(frozen=True, slots=True)
class Average:
    """An average with its coverage: ``value`` is None when too few valid values lie behind it."""

    value: Fraction | None
    valid: int
    """Valid hourly values behind it (valid 8 h windows for the O3 daily max 8 h)."""
    expected: int
    """Values the period holds when complete (24, 8, or 17 windows)."""

    @property
    def is_valid(self) -> bool:
        """Whether the average meets its validity rule."""
        return self.value is not None

    @property
    def coverage(self) -> Fraction:
        """Share of the expected values that were valid."""
        return Fraction(self.valid, self.expected)


Series = Sequence[Number | None]


def _exact(series: Series) -> list[Fraction | None]:
    return [None if v is None else to_fraction(v, "hourly value") for v in series]


def _mean(values: Sequence[Fraction | None], minimum: int) -> Average:
    valid = [v for v in values if v is not None]
    value = sum(valid, Fraction(0)) / len(valid) if len(valid) >= minimum and valid else None
    return Average(value, len(valid), len(values))


def daily_mean(day: Series) -> Average:
    """Mean of a natural day's 24 hourly values (labels 01:00…24:00); ≥ 20 valid hours."""
    if len(day) != 24:
        raise ValueError(f"a natural day has 24 hourly values, got {len(day)}")
    return _mean(_exact(day), DAILY_MIN_HOURS)


def moving_means(series: Series, window: int, minimum: int) -> list[Average]:
    """The ``window``-hour moving mean ending at each hour of ``series``.

    Hours before the start of ``series`` count as missing, so pass enough history.
    """
    exact = _exact(series)
    out = []
    for end in range(len(exact)):
        part = exact[max(0, end - window + 1): end + 1]
        padded = [None] * (window - len(part)) + part
        out.append(_mean(padded, minimum))
    return out


def moving_24h(series: Series) -> list[Average]:
    """24 h moving means (CNEMC ``*_24h`` fields): ≥ 20 valid hours of the last 24."""
    return moving_means(series, 24, DAILY_MIN_HOURS)


def moving_8h(series: Series) -> list[Average]:
    """O3 8 h moving means (CNEMC ``o3_8h``): ≥ 6 valid hours of the last 8."""
    return moving_means(series, 8, EIGHT_HOUR_MIN)


def moving_max(averages: Sequence[Average], window: int = 24) -> list[Average]:
    """The largest valid value of the last ``window`` entries (CNEMC ``o3_8h_24h``)."""
    out = []
    for end in range(len(averages)):
        part = averages[max(0, end - window + 1): end + 1]
        valid = [a.value for a in part if a.value is not None]
        out.append(Average(max(valid) if valid else None, len(valid), window))
    return out


def moving_max_1h(series: Series, window: int = 24) -> list[Average]:
    """The largest valid hourly value of the last ``window`` hours (CNEMC ``o3_24h``)."""
    exact = _exact(series)
    hourly = [Average(v, int(v is not None), 1) for v in exact]
    return moving_max(hourly, window)


def o3_daily_max_8h(day: Series) -> Average:
    """O3 daily maximum 8 h mean of a natural day (24 values, labels 01:00…24:00).

    The 17 windows end at 08:00 … 24:00 and lie within the day. Each window is valid with
    ≥ 6 hourly values; the daily maximum is valid with ≥ 14 valid windows, or with fewer
    when it exceeds the 8 h limit (a true exceedance is never hidden by missing data).
    """
    if len(day) != 24:
        raise ValueError(f"a natural day has 24 hourly values, got {len(day)}")
    exact = _exact(day)
    windows = []
    for end in range(MDA8_FIRST_WINDOW_END, 25):
        window = _mean(exact[end - 8: end], EIGHT_HOUR_MIN)
        if window.value is not None:
            windows.append(window.value)
    expected = 25 - MDA8_FIRST_WINDOW_END
    if not windows:
        return Average(None, 0, expected)
    best = max(windows)
    if len(windows) >= MDA8_MIN_WINDOWS or best > O3_8H_LIMIT:
        return Average(best, len(windows), expected)
    return Average(None, len(windows), expected)


def daily_max_1h(day: Series) -> Average:
    """Daily maximum 1 h value (O3 in the 2012 daily report).

    Valid with ≥ 20 valid hours, or with fewer when it exceeds the 1 h limit
    [unconfirmed: GB 3095 sets no rule for this statistic; the project's choice].
    """
    if len(day) != 24:
        raise ValueError(f"a natural day has 24 hourly values, got {len(day)}")
    valid = [v for v in _exact(day) if v is not None]
    if not valid:
        return Average(None, 0, 24)
    best = max(valid)
    ok = len(valid) >= DAILY_MIN_HOURS or best > O3_1H_LIMIT
    return Average(best if ok else None, len(valid), 24)
