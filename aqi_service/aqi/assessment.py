"""Assessment statistics per HJ 663: city values, period means, percentiles, good days, 综合指数.

Several details of HJ 663-2026 could not be checked against its text. Every such rule is
a field of :class:`AssessmentRules` below — the one place to change them — and is marked
[unconfirmed] in ``docs/METHODOLOGY.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction

from aqi_service.aqi.exact import Number, to_fraction

GB3095_2026_FROM = date(2026, 3, 1)


@dataclass(frozen=True, slots=True)
class AssessmentRules:
    """The rules of one assessment regime. Fields marked [unconfirmed] are the project's reading."""

    name: str
    annual_limits: Mapping[str, int]
    """Class-II annual limits, µg/m³ (SO2, NO2, PM10, PM2.5) — the composite index divisors."""
    co_daily_limit: Fraction = Fraction(4)
    """CO 24 h limit, mg/m³: divisor of the CO 95th percentile."""
    o3_8h_limit: int = 160
    """O3 8 h limit, µg/m³: divisor of the O3 daily-max-8 h 90th percentile."""
    percentiles: Mapping[str, int] = field(default_factory=lambda: {
        "so2": 98, "no2": 98, "pm10": 95, "pm2_5": 95, "co": 95, "o3": 90,
    })
    """Percentile of the daily values used per pollutant (O3: of the daily max 8 h)."""
    weights: Mapping[str, int] = field(default_factory=lambda: {
        "so2": 1, "no2": 1, "pm10": 1, "pm2_5": 1, "co": 1, "o3": 1,
    })
    """Composite-index weights [unconfirmed: a weighted 2026 variant is reported, unverified]."""
    month_min_days: int = 27
    february_min_days: int = 25
    year_min_days: int = 324
    good_aqi_max: int = 100


RULES_2012 = AssessmentRules(
    name="HJ 663-2013 / GB 3095-2012",
    annual_limits={"so2": 60, "no2": 40, "pm10": 70, "pm2_5": 35},
)
RULES_2026 = AssessmentRules(
    name="HJ 663-2026 / GB 3095-2026 (transition limits to 2030-12-31)",
    annual_limits={"so2": 60, "no2": 40, "pm10": 60, "pm2_5": 30},
)


def rules_for(period_start: date) -> AssessmentRules:
    """The assessment rules for a period starting on ``period_start``."""
    return RULES_2026 if period_start >= GB3095_2026_FROM else RULES_2012


def _exact_values(values: Iterable[Number | None]) -> list[Fraction]:
    return [to_fraction(v, "value") for v in values if v is not None]


def mean(values: Iterable[Number | None]) -> Fraction | None:
    """Arithmetic mean of the values present (None where there are none)."""
    exact = _exact_values(values)
    return sum(exact, Fraction(0)) / len(exact) if exact else None


def percentile(values: Iterable[Number | None], p: int | Fraction) -> Fraction | None:
    """HJ 663 percentile: k = 1 + (n-1)·p/100, s = ⌊k⌋, X(s) + (X(s+1) − X(s))·(k − s)."""
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} is outside 0-100")
    xs = sorted(_exact_values(values))
    if not xs:
        return None
    n = len(xs)
    k = 1 + Fraction(n - 1) * Fraction(p) / 100
    s = k.numerator // k.denominator
    if s >= n:
        return xs[-1]
    return xs[s - 1] + (xs[s] - xs[s - 1]) * (k - s)


def city_value(station_values: Iterable[Number | None]) -> Fraction | None:
    """A city's (or county's) value: the mean of its stations' valid values."""
    return mean(station_values)


def city_concentrations(
    stations: Sequence[Mapping[str, Number | None]],
) -> dict[str, Fraction | None]:
    """Per input key, the mean over stations; the city AQI is computed from these means."""
    keys: list[str] = []
    for row in stations:
        keys.extend(k for k in row if k not in keys)
    return {k: city_value(row.get(k) for row in stations) for k in keys}


def min_days(period_start: date, period: str, rules: AssessmentRules) -> int:
    """Valid daily values a monthly or annual statistic needs."""
    if period == "year":
        return rules.year_min_days
    if period == "month":
        return rules.february_min_days if period_start.month == 2 else rules.month_min_days
    raise ValueError(f"unknown period {period!r}; expected 'month' or 'year'")


@dataclass(frozen=True, slots=True)
class PeriodStatistic:
    """A period statistic with the days behind it and whether it meets the validity rule."""

    value: Fraction | None
    days: int
    required: int

    @property
    def is_valid(self) -> bool:
        """Enough valid days for the statistic to stand."""
        return self.value is not None and self.days >= self.required


def period_mean(
    daily: Iterable[Number | None], period_start: date, period: str = "month",
    rules: AssessmentRules | None = None,
) -> PeriodStatistic:
    """Monthly or annual mean of daily values, with its day count and requirement."""
    rules = rules or rules_for(period_start)
    exact = _exact_values(daily)
    value = sum(exact, Fraction(0)) / len(exact) if exact else None
    return PeriodStatistic(value, len(exact), min_days(period_start, period, rules))


def period_percentile(
    daily: Iterable[Number | None], pollutant: str, period_start: date, period: str = "month",
    rules: AssessmentRules | None = None,
) -> PeriodStatistic:
    """The pollutant's assessment percentile of daily values over the period."""
    rules = rules or rules_for(period_start)
    exact = _exact_values(daily)
    value = percentile(exact, rules.percentiles[pollutant])
    return PeriodStatistic(value, len(exact), min_days(period_start, period, rules))


def good_day_ratio(daily_aqi: Iterable[int | None], good_max: int = 100) -> Fraction | None:
    """优良天数比例: days with AQI ≤ 100 over days with a valid AQI."""
    valid = [a for a in daily_aqi if a is not None]
    if not valid:
        return None
    return Fraction(sum(1 for a in valid if a <= good_max), len(valid))


@dataclass(frozen=True, slots=True)
class IndexPart:
    """One pollutant's term of the composite index, with its inputs."""

    pollutant: str
    statistic: str
    value: Fraction
    limit: Fraction
    weight: int

    @property
    def ratio(self) -> Fraction:
        """The single-pollutant index C/S."""
        return self.value / self.limit


@dataclass(frozen=True, slots=True)
class CompositeIndex:
    """综合指数 with every term behind it (so rankings are reproducible)."""

    value: Fraction | None
    parts: tuple[IndexPart, ...]
    missing: tuple[str, ...]
    rules: str

    def rounded(self, places: int = 2) -> Fraction | None:
        """The index rounded half-even (GB/T 8170) for publication."""
        return Fraction(round(self.value, places)) if self.value is not None else None


def composite_index(
    daily: Mapping[str, Sequence[Number | None]], period_start: date,
    rules: AssessmentRules | None = None,
) -> CompositeIndex:
    """Σ w·C/S over six pollutants from daily values of one period.

    ``daily`` maps ``so2``, ``no2``, ``pm10``, ``pm2_5``, ``co`` to daily means and ``o3`` to
    daily max 8 h values. SO2, NO2, PM10, PM2.5 enter as period means over annual limits;
    CO as its 95th percentile over 4 mg/m³; O3 as its 90th percentile over 160 µg/m³.
    The index is given only when all six terms exist.
    """
    rules = rules or rules_for(period_start)
    parts: list[IndexPart] = []
    missing: list[str] = []
    for pol in ("so2", "no2", "pm10", "pm2_5"):
        value = mean(daily.get(pol, ()))
        if value is None:
            missing.append(pol)
        else:
            parts.append(IndexPart(pol, "mean", value, Fraction(rules.annual_limits[pol]),
                                   rules.weights[pol]))
    co = percentile(daily.get("co", ()), rules.percentiles["co"])
    if co is None:
        missing.append("co")
    else:
        parts.append(IndexPart("co", f"p{rules.percentiles['co']}", co,
                               Fraction(rules.co_daily_limit), rules.weights["co"]))
    o3 = percentile(daily.get("o3", ()), rules.percentiles["o3"])
    if o3 is None:
        missing.append("o3")
    else:
        parts.append(IndexPart("o3", f"p{rules.percentiles['o3']}_mda8", o3,
                               Fraction(rules.o3_8h_limit), rules.weights["o3"]))
    total = None if missing else sum((p.weight * p.ratio for p in parts), Fraction(0))
    return CompositeIndex(total, tuple(parts), tuple(missing), rules.name)
