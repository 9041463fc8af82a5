"""IAQI and AQI of one report (hourly or daily) under one scheme, exactly.

The arithmetic follows HJ 633: the segments of a column join end to end, the IAQI is
rounded up (全部向上进位取整数) and computed on exact rationals, HJ 633-2026 rounds the
concentration first (GB/T 8170, half to even), nothing is extrapolated above a column.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from decimal import Context, Decimal
from fractions import Fraction
from functools import cache
from typing import Any

from aqi_service.aqi.exact import Number, round_half_even, to_fraction
from aqi_service.aqi.schemes import POLLUTANTS, Column, Level, Scheme

BEYOND_INDEX_IAQI = 500
"""The top of the IAQI scale; a concentration above its column is capped here and flagged."""

PRIMARY_THRESHOLD = 50
"""A primary pollutant is named only when the AQI is above 50."""

EXCEEDING_THRESHOLD = 100
"""An exceeding pollutant (2012) has an IAQI above 100."""

NA_THRESHOLD = 100
"""HJ 633-2026 §5.3: with a pollutant missing, the AQI is published only above 100."""

_WIDE = Context(prec=80)


def iaqi_exact(column: Column, conc: Fraction) -> int:
    """IAQI of ``conc`` on ``column`` (``conc`` within the column), rounded up, exactly."""
    if conc <= 0:
        return 0
    bps = column.breakpoints
    i = bisect_left(bps, conc)
    lo, hi = bps[i - 1], bps[i]
    ilo, ihi = column.iaqi[i - 1], column.iaqi[i]
    num = (ihi - ilo) * (conc.numerator - lo * conc.denominator)
    den = (hi - lo) * conc.denominator
    return ilo + -((-num) // den)


@cache
def iaqi_table(column: Column, decimals: int) -> tuple[int, ...]:
    """IAQI of every concentration ``k / 10**decimals`` from 0 to the column's top."""
    scale = 10**decimals
    return tuple(iaqi_exact(column, Fraction(k, scale)) for k in range(column.top * scale + 1))


def _indexed_value(scheme: Scheme, pollutant: str, value: Number, key: str) -> Fraction:
    conc = to_fraction(value, key)
    if scheme.round_concentrations:
        conc = round_half_even(conc, scheme.precision[pollutant])
    return conc


def _iaqi_within(scheme: Scheme, pollutant: str, column: Column, conc: Fraction) -> int:
    if scheme.round_concentrations:
        decimals = scheme.precision[pollutant]
        return iaqi_table(column, decimals)[int(conc * 10**decimals)]
    return iaqi_exact(column, conc)


@dataclass(frozen=True, slots=True)
class AqiResult:
    """The outcome of indexing one set of concentrations."""

    scheme: Scheme
    report: str
    aqi: int | None
    """The published AQI; None where it is not available or not published (NA)."""
    computed_aqi: int | None
    """The largest IAQI of the pollutants present, before the missing-data rule."""
    level: Level | None
    iaqi: dict[str, int]
    """Pollutant → IAQI (the larger where a pollutant has two indicators)."""
    indicator_iaqi: dict[str, int]
    """Input key → IAQI of each indicator actually computed."""
    indexed: dict[str, Fraction]
    """Input key → the concentration as indexed (after GB/T 8170 rounding in 2026)."""
    primary_pollutants: tuple[str, ...]
    exceeding_pollutants: tuple[str, ...] | None
    """Pollutants with IAQI > 100 where the scheme has the notion (2012), else None."""
    missing: tuple[str, ...]
    not_monitored: tuple[str, ...]
    beyond_index: bool
    notes: tuple[str, ...] = field(default=())

    @property
    def category_zh(self) -> str | None:
        """The category (优, 良, …) or None."""
        return self.level.category_zh if self.level else None

    @property
    def color(self) -> str | None:
        """The level colour ``#RRGGBB`` or None."""
        return self.level.color if self.level else None

    def to_dict(self, detail: bool = False) -> dict[str, Any]:
        """The result in the ``aqi-service aqi`` output format."""
        out: dict[str, Any] = {
            "aqi": self.aqi,
            "level": self.level.level if self.level else None,
            "category": self.level.category_zh if self.level else None,
            "category_en": self.level.category_en if self.level else None,
            "color": self.level.color if self.level else None,
            "primary_pollutants": list(self.primary_pollutants),
            "iaqi": dict(self.iaqi),
            "scheme": self.scheme.id,
            "beyond_index": self.beyond_index,
        }
        if detail:
            out.update(
                report=self.report,
                computed_aqi=self.computed_aqi,
                exceeding_pollutants=(
                    list(self.exceeding_pollutants)
                    if self.exceeding_pollutants is not None else None
                ),
                indicator_iaqi=dict(self.indicator_iaqi),
                indexed={k: _fraction_text(v) for k, v in self.indexed.items()},
                missing=list(self.missing),
                not_monitored=list(self.not_monitored),
                notes=list(self.notes),
            )
            if self.level:
                out.update(
                    level_zh=self.level.level_zh,
                    health_effect_zh=self.level.health_effect_zh,
                    health_effect_en=self.level.health_effect_en,
                    advice_zh=self.level.advice_zh,
                    advice_en=self.level.advice_en,
                )
            groups = self.scheme.sensitive_groups
            if groups:
                out["sensitive_groups"] = {
                    p: groups[p] for p, v in self.iaqi.items()
                    if v > EXCEEDING_THRESHOLD and p in groups
                }
        return out


def _fraction_text(value: Fraction) -> str:
    """A finite decimal as plain text; a repeating one as ``p/q``."""
    dec = _WIDE.divide(Decimal(value.numerator), Decimal(value.denominator))
    if Fraction(dec) == value:
        return format(dec, "f")
    return f"{value.numerator}/{value.denominator}"


def compute(
    concentrations: Mapping[str, Number | None],
    scheme: Scheme,
    report: str = "hourly",
    not_monitored: Collection[str] = (),
) -> AqiResult:
    """Index ``concentrations`` (input key → value, None = missing) under ``scheme``.

    Keys are CNEMC names (``so2``, ``pm2_5_24h``, ``o3_8h_24h``, …; µg/m³, CO mg/m³).
    ``not_monitored`` names pollutants the monitoring plan does not measure: they are
    neither indexed nor counted as missing. Raises ConcentrationError for a negative,
    non-finite or non-numeric value of any key the report reads.
    """
    indicators = scheme.report(report)
    per_pollutant: dict[str, int] = {}
    indicator_iaqi: dict[str, int] = {}
    indexed: dict[str, Fraction] = {}
    notes: list[str] = []
    beyond = False
    skip = frozenset(not_monitored)

    # Validate every key the report reads, used or not: garbage is never silently ignored.
    prepared: dict[str, Fraction] = {}
    for ind in indicators:
        for key, pol in ((ind.input, ind.pollutant), (ind.fallback_input, ind.pollutant)):
            if key and key not in prepared and pol not in skip:
                value = concentrations.get(key)
                if value is not None:
                    prepared[key] = _indexed_value(scheme, pol, value, key)

    for ind in indicators:
        pol = ind.pollutant
        conc = prepared.get(ind.input)
        if conc is None:
            continue
        indexed[ind.input] = conc
        if conc <= ind.column.top:
            value = _iaqi_within(scheme, pol, ind.column, conc)
        elif ind.above_top == "drop":
            notes.append(f"{ind.input} above {ind.column.top}: not indexed")
            continue
        elif ind.above_top == "fixed":
            value = ind.fixed_iaqi  # type: ignore[assignment]
            notes.append(f"{ind.input} above {ind.column.top}: IAQI counts as {value}")
        elif ind.above_top == "fallback":
            assert ind.fallback_input and ind.fallback_column
            fallback = prepared.get(ind.fallback_input)
            notes.append(f"{ind.input} above {ind.column.top}: indexed by {ind.fallback_input}")
            if fallback is None:
                continue
            indexed[ind.fallback_input] = fallback
            if fallback <= ind.fallback_column.top:
                value = _iaqi_within(scheme, pol, ind.fallback_column, fallback)
            else:
                value, beyond = BEYOND_INDEX_IAQI, True
            indicator_iaqi[ind.fallback_input] = value
            per_pollutant[pol] = max(per_pollutant.get(pol, -1), value)
            continue
        else:
            value, beyond = BEYOND_INDEX_IAQI, True
        indicator_iaqi[ind.input] = value
        per_pollutant[pol] = max(per_pollutant.get(pol, -1), value)

    report_pollutants = [p for p in POLLUTANTS if any(i.pollutant == p for i in indicators)]
    missing = tuple(p for p in report_pollutants if p not in per_pollutant and p not in skip)
    computed = max(per_pollutant.values()) if per_pollutant else None
    aqi = computed
    if (computed is not None and missing and scheme.missing_data == "publish_above_100"
            and computed <= NA_THRESHOLD):
        aqi = None
        notes.append("a pollutant is missing and the AQI is not above 100: NA")
    required = scheme.requires_any.get(report, ())
    if aqi is not None and required and all(p in missing for p in required):
        aqi = None
        notes.append(f"none of {', '.join(required)} has a value: NA")
    level = scheme.level_for(aqi) if aqi is not None else None
    primary: tuple[str, ...] = ()
    if aqi is not None and aqi > PRIMARY_THRESHOLD:
        primary = tuple(sorted(p for p, v in per_pollutant.items() if v == aqi))
    exceeding = None
    if scheme.exceeding_pollutants:
        exceeding = tuple(sorted(p for p, v in per_pollutant.items() if v > EXCEEDING_THRESHOLD))
    ordered = {p: per_pollutant[p] for p in POLLUTANTS if p in per_pollutant}
    return AqiResult(
        scheme=scheme, report=report, aqi=aqi, computed_aqi=computed, level=level,
        iaqi=ordered, indicator_iaqi=indicator_iaqi, indexed=indexed,
        primary_pollutants=primary, exceeding_pollutants=exceeding, missing=missing,
        not_monitored=tuple(p for p in POLLUTANTS if p in skip),
        beyond_index=beyond,
        notes=tuple(notes),
    )


def iaqi(column: Column, value: Number, decimals: int | None = None) -> tuple[int, bool]:
    """IAQI of one value on one column → (IAQI, beyond_index); rounds first if ``decimals``."""
    conc = to_fraction(value)
    if decimals is not None:
        conc = round_half_even(conc, decimals)
    if conc > column.top:
        return BEYOND_INDEX_IAQI, True
    return iaqi_exact(column, conc), False


