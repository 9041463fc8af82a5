"""Index schemes as data: HJ 633-2012, HJ 633-2026 and any later file in ``schemes/``.

Each ``schemes/*.toml`` file describes one scheme completely: its validity period (by
observation time), breakpoint columns, what each report indexes, the special rules above
a truncated column, rounding, the missing-data rule and the levels with their texts.
Adding a scheme means adding a file; nothing here names a particular scheme.

Where a standard's text and the national platform's publishing practice differ (HJ 633-2012
hourly: the platform indexes 1 h PM and no O3 8 h since 2014), each reading has its own
file, and a file lists the *variants* it serves: ``practice`` (what the national platform
published, the default) or ``text`` (the standard's text as written). Choosing a scheme by
time takes the variant as a parameter, so configuration only has to pass a name through.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from functools import cache
from importlib import resources
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aqi_service.errors import SchemeError

POLLUTANTS: tuple[str, ...] = ("so2", "no2", "co", "o3", "pm10", "pm2_5")
"""The six pollutants, CNEMC/PM25.in names, in the standard's order."""

UNITS: dict[str, str] = {p: ("mg/m³" if p == "co" else "µg/m³") for p in POLLUTANTS}
REPORTS: tuple[str, ...] = ("hourly", "daily")
VARIANTS: tuple[str, ...] = ("practice", "text")
"""Readings a scheme file can serve: national-platform practice, or the standard's text."""
DEFAULT_VARIANT = "practice"
"""The reading the service publishes unless configured otherwise."""
SHANGHAI = ZoneInfo("Asia/Shanghai")
MissingRule = Literal["available", "publish_above_100"]


@dataclass(frozen=True, slots=True)
class Level:
    """One AQI level (一级…六级) with its category, colour and texts."""

    level: int
    aqi_min: int
    aqi_max: int
    level_zh: str
    category_zh: str
    category_en: str
    color_name_zh: str
    color_name_en: str
    rgb: tuple[int, int, int]
    health_effect_zh: str
    health_effect_en: str
    advice_zh: str
    advice_en: str

    @property
    def color(self) -> str:
        """The level colour as ``#RRGGBB``."""
        return "#{:02X}{:02X}{:02X}".format(*self.rgb)


@dataclass(frozen=True, slots=True)
class Column:
    """A breakpoint column: concentration breakpoints against the IAQI scale."""

    name: str
    breakpoints: tuple[int, ...]
    iaqi: tuple[int, ...]

    @property
    def top(self) -> int:
        """The highest concentration the column indexes."""
        return self.breakpoints[-1]


@dataclass(frozen=True, slots=True)
class Indicator:
    """One indexed input of a report: an input key read against a column.

    ``above_top`` says what happens above the column's last breakpoint: ``cap`` (IAQI 500,
    flagged beyond the index), ``drop`` (the indicator is not computed), a fixed IAQI, or a
    fallback to another input on another column.
    """

    pollutant: str
    input: str
    column: Column
    above_top: Literal["cap", "drop", "fixed", "fallback"] = "cap"
    fixed_iaqi: int | None = None
    fallback_input: str | None = None
    fallback_column: Column | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Scheme:
    """A complete AQI index scheme (one instance per scheme file; compared by identity)."""

    id: str
    standard: str
    name_zh: str
    name_en: str
    valid_from: datetime | None
    valid_until: datetime | None
    round_concentrations: bool
    precision: dict[str, int]
    exceeding_pollutants: bool
    missing_data: MissingRule
    iaqi_scale: tuple[int, ...]
    columns: dict[str, Column]
    reports: dict[str, tuple[Indicator, ...]]
    levels: tuple[Level, ...]
    sensitive_groups: dict[str, dict[str, str]] = field(default_factory=dict)
    level_texts_source: str = "standard"
    variants: tuple[str, ...] = VARIANTS
    """The readings (``practice``, ``text``) for which this file is the scheme by time."""
    description_en: str = ""
    """What this scheme is, and how it differs from its sibling reading if it has one."""
    description_zh: str = ""
    """The same in Chinese."""
    requires_any: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Per report, pollutants of which at least one must have a value for an AQI to be
    published (HJ 633-2012 as the platform published it: no hourly AQI without PM)."""

    def report(self, name: str) -> tuple[Indicator, ...]:
        """The indicators of report ``name`` (``hourly`` or ``daily``)."""
        try:
            return self.reports[name]
        except KeyError:
            raise SchemeError(
                f"unknown report {name!r}; expected one of {', '.join(self.reports)}"
            ) from None

    def inputs(self, report: str) -> tuple[str, ...]:
        """Every input key report ``report`` reads, fallbacks included, in order."""
        keys: list[str] = []
        for ind in self.report(report):
            for key in (ind.input, ind.fallback_input):
                if key and key not in keys:
                    keys.append(key)
        return tuple(keys)

    def level_for(self, aqi: int) -> Level:
        """The level whose AQI range holds ``aqi`` (0…500)."""
        for lvl in self.levels:
            if aqi <= lvl.aqi_max:
                return lvl
        return self.levels[-1]

    def covers(self, when: datetime) -> bool:
        """Whether an observation at ``when`` (aware) is indexed by this scheme."""
        if self.valid_from is not None and when < self.valid_from:
            return False
        return self.valid_until is None or when < self.valid_until

    def as_dict(self) -> dict[str, Any]:
        """The scheme as JSON-ready data (for the API and the docs)."""
        return {
            "id": self.id,
            "standard": self.standard,
            "name_zh": self.name_zh,
            "name_en": self.name_en,
            "valid_from": self.valid_from.isoformat() if self.valid_from else None,
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "round_concentrations": self.round_concentrations,
            "precision": dict(self.precision),
            "exceeding_pollutants": self.exceeding_pollutants,
            "missing_data": self.missing_data,
            "iaqi_scale": list(self.iaqi_scale),
            "units": dict(UNITS),
            "columns": {n: list(c.breakpoints) for n, c in self.columns.items()},
            "reports": {
                name: [
                    {
                        "pollutant": i.pollutant,
                        "input": i.input,
                        "column": i.column.name,
                        "above_top": i.above_top,
                        **({"iaqi": i.fixed_iaqi} if i.above_top == "fixed" else {}),
                        **(
                            {"fallback_input": i.fallback_input,
                             "fallback_column": i.fallback_column.name}
                            if i.above_top == "fallback" and i.fallback_column else {}
                        ),
                    }
                    for i in inds
                ]
                for name, inds in self.reports.items()
            },
            "levels": [
                {
                    "level": lv.level, "aqi_min": lv.aqi_min, "aqi_max": lv.aqi_max,
                    "level_zh": lv.level_zh, "category_zh": lv.category_zh,
                    "category_en": lv.category_en, "color": lv.color, "rgb": list(lv.rgb),
                    "color_name_zh": lv.color_name_zh, "color_name_en": lv.color_name_en,
                    "health_effect_zh": lv.health_effect_zh,
                    "health_effect_en": lv.health_effect_en,
                    "advice_zh": lv.advice_zh, "advice_en": lv.advice_en,
                }
                for lv in self.levels
            ],
            "level_texts_source": self.level_texts_source,
            "sensitive_groups": self.sensitive_groups,
            "variants": list(self.variants),
            "default": DEFAULT_VARIANT in self.variants,
            "description": self.description_en,
            "description_zh": self.description_zh,
            "requires_any": {k: list(v) for k, v in self.requires_any.items()},
        }


def _parse_time(text: str | None, where: str) -> datetime | None:
    if text is None:
        return None
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise SchemeError(f"{where}: {text!r} needs a UTC offset")
    return when


def _build(data: dict[str, Any], source: str) -> Scheme:
    """Validate one scheme file's data and build the Scheme."""
    try:
        scale = tuple(int(v) for v in data["iaqi_scale"])
        columns = {}
        for name, bps in data["columns"].items():
            bps = tuple(int(b) for b in bps)
            if len(bps) < 2 or list(bps) != sorted(set(bps)) or bps[0] != 0:
                raise SchemeError(f"{source}: column {name} must rise strictly from 0")
            if len(bps) > len(scale):
                raise SchemeError(f"{source}: column {name} is longer than the IAQI scale")
            columns[name] = Column(name, bps, scale[: len(bps)])
        reports: dict[str, tuple[Indicator, ...]] = {}
        for rname, items in data["reports"].items():
            inds = []
            for item in items:
                if item["pollutant"] not in POLLUTANTS:
                    raise SchemeError(f"{source}: unknown pollutant {item['pollutant']!r}")
                rule = item.get("above_top", "cap")
                kwargs: dict[str, Any] = {}
                if isinstance(rule, dict) and "iaqi" in rule:
                    kwargs = {"above_top": "fixed", "fixed_iaqi": int(rule["iaqi"])}
                elif isinstance(rule, dict) and "fallback_input" in rule:
                    kwargs = {
                        "above_top": "fallback",
                        "fallback_input": rule["fallback_input"],
                        "fallback_column": columns[rule["fallback_column"]],
                    }
                elif rule in ("cap", "drop"):
                    kwargs = {"above_top": rule}
                else:
                    raise SchemeError(f"{source}: unknown above_top rule {rule!r}")
                inds.append(Indicator(item["pollutant"], item["input"],
                                      columns[item["column"]], **kwargs))
            reports[rname] = tuple(inds)
        levels = tuple(
            Level(
                level=int(lv["level"]), aqi_min=int(lv["aqi_min"]), aqi_max=int(lv["aqi_max"]),
                level_zh=lv["level_zh"], category_zh=lv["category_zh"],
                category_en=lv["category_en"], color_name_zh=lv["color_name_zh"],
                color_name_en=lv["color_name_en"], rgb=tuple(lv["rgb"]),
                health_effect_zh=lv["health_effect_zh"], health_effect_en=lv["health_effect_en"],
                advice_zh=lv["advice_zh"], advice_en=lv["advice_en"],
            )
            for lv in sorted(data["levels"], key=lambda x: x["level"])
        )
        if levels[-1].aqi_max != scale[-1]:
            raise SchemeError(f"{source}: the last level must end at {scale[-1]}")
        missing_rule = data["missing_data"]
        if missing_rule not in ("available", "publish_above_100"):
            raise SchemeError(f"{source}: unknown missing_data rule {missing_rule!r}")
        precision = {p: int(data.get("precision", {}).get(p, 0)) for p in POLLUTANTS}
        requires_any = {name: tuple(pols) for name, pols in data.get("requires_any", {}).items()}
        for name, pols in requires_any.items():
            if name not in reports or not pols or any(p not in POLLUTANTS for p in pols):
                raise SchemeError(f"{source}: requires_any.{name} must name pollutants of a "
                                  "report")
        variants = tuple(data.get("variants", VARIANTS))
        if not variants or any(v not in VARIANTS for v in variants):
            raise SchemeError(f"{source}: variants must be among {', '.join(VARIANTS)}")
        return Scheme(
            id=data["id"], standard=data["standard"], name_zh=data["name_zh"],
            name_en=data["name_en"],
            valid_from=_parse_time(data.get("valid_from"), source),
            valid_until=_parse_time(data.get("valid_until"), source),
            round_concentrations=bool(data["round_concentrations"]), precision=precision,
            exceeding_pollutants=bool(data["exceeding_pollutants"]),
            missing_data=missing_rule, iaqi_scale=scale, columns=columns, reports=reports,
            levels=levels, sensitive_groups=data.get("sensitive_groups", {}),
            level_texts_source=data.get("level_texts_source", "standard"),
            variants=variants, description_en=data.get("description_en", "").strip(),
            description_zh=data.get("description_zh", "").strip(), requires_any=requires_any,
        )
    except KeyError as exc:
        raise SchemeError(f"{source}: missing key {exc}") from None


@cache
def all_schemes() -> tuple[Scheme, ...]:
    """Every scheme shipped in ``schemes/``, oldest first (the same period: by id)."""
    found = []
    for entry in resources.files("aqi_service.aqi").joinpath("schemes").iterdir():
        if entry.name.endswith(".toml"):
            found.append(_build(tomllib.loads(entry.read_text(encoding="utf-8")), entry.name))
    found.sort(key=lambda s: (s.valid_from or datetime.min.replace(tzinfo=timezone.utc), s.id))
    return tuple(found)


def check_variant(variant: str) -> str:
    """``variant`` if it is a known reading (``practice`` or ``text``); SchemeError if not."""
    if variant not in VARIANTS:
        raise SchemeError(f"unknown scheme variant {variant!r}; expected one of "
                          f"{', '.join(VARIANTS)}")
    return variant


def get_scheme(scheme_id: str) -> Scheme:
    """The scheme named ``scheme_id`` (e.g. ``HJ633-2026``)."""
    for scheme in all_schemes():
        if scheme.id == scheme_id:
            return scheme
    known = ", ".join(s.id for s in all_schemes())
    raise SchemeError(f"unknown scheme {scheme_id!r}; known schemes: {known}")


def scheme_for(period_start: datetime, variant: str = DEFAULT_VARIANT) -> Scheme:
    """The scheme in force for an observation period starting at ``period_start`` (aware).

    Validity is by observation period: an hourly value labelled (hour-ending) 2026-03-01
    00:00 Asia/Shanghai covers 23:00-24:00 on 28 February and is indexed under HJ 633-2012.
    ``variant`` picks the reading where a period has two (``practice``: the national
    platform's, the default; ``text``: the standard's text).
    Use :func:`scheme_for_hour` and :func:`scheme_for_day` for labelled values.
    """
    check_variant(variant)
    if period_start.tzinfo is None:
        raise SchemeError("observation time needs a time zone (or UTC offset)")
    for scheme in all_schemes():
        if variant in scheme.variants and scheme.covers(period_start):
            return scheme
    raise SchemeError(f"no index scheme covers {period_start.isoformat()}")


def scheme_for_hour(hour_ending: datetime, variant: str = DEFAULT_VARIANT) -> Scheme:
    """The scheme for an hourly value labelled by the hour in which it ends."""
    try:
        start = hour_ending - timedelta(hours=1)
    except OverflowError:
        raise SchemeError(f"time {hour_ending.isoformat()} is out of range") from None
    return scheme_for(start, variant)


def scheme_for_day(day: date, tz: tzinfo = SHANGHAI, variant: str = DEFAULT_VARIANT) -> Scheme:
    """The scheme for the daily value of natural day ``day`` (local time ``tz``)."""
    return scheme_for(datetime.combine(day, time(0), tzinfo=tz), variant)
