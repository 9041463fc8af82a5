"""An independent reference for the AQI tests, typed from aqi-standards.md.

Nothing here is read from the engine: the breakpoint table is §2 of the reference document
typed row by row, the arithmetic is the §2 formula on exact Fractions with the §4 ceiling,
and the 2026 rounding step (GB/T 8170, half to even) uses ``decimal`` rather than the
engine's own helper. The test modules compare the engine against these functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from itertools import pairwise

S2012 = "HJ633-2012-text"
"""HJ 633-2012 as its text reads (hourly: PM 24 h moving averages, O3 1 h and 8 h)."""
S2012P = "HJ633-2012"
"""HJ 633-2012 as the national platform published it (hourly: the six 1 h values)."""
S2026 = "HJ633-2026"
SCHEMES = (S2012, S2012P, S2026)

# §2, typed row by row as printed. None = no breakpoint ((b) SO2 1 h, (c) O3 8 h).
# The two bold PM cells differ between the schemes.
COLUMN_NAMES = (
    "so2_24h", "so2_1h", "no2_24h", "no2_1h", "co_24h",
    "co_1h", "o3_1h", "o3_8h", "pm10_24h", "pm2_5_24h",
)
_PM10_100 = {S2012: 150, S2012P: 150, S2026: 120}
_PM25_100 = {S2012: 75, S2012P: 75, S2026: 60}
# fmt: off
_TABLE = (
    # IAQI  SO2 24h SO2 1h NO2 24h NO2 1h CO 24h CO 1h O3 1h O3 8h PM10 24h   PM2.5 24h
    (0,     0,      0,     0,      0,     0,     0,    0,    0,    0,         0),
    (50,    50,     150,   40,     100,   2,     5,    160,  100,  50,        35),
    (100,   150,    500,   80,     200,   4,     10,   200,  160,  _PM10_100, _PM25_100),
    (150,   475,    650,   180,    700,   14,    35,   300,  215,  250,       115),
    (200,   800,    800,   280,    1200,  24,    60,   400,  265,  350,       150),
    (300,   1600,   None,  565,    2340,  36,    90,   800,  800,  420,       250),
    (400,   2100,   None,  750,    3090,  48,    120,  1000, None, 500,       350),
    (500,   2620,   None,  940,    3840,  60,    150,  1200, None, 600,       500),
)
# fmt: on


def _columns(scheme: str) -> dict[str, tuple[tuple[int, int], ...]]:
    cols: dict[str, list[tuple[int, int]]] = {name: [] for name in COLUMN_NAMES}
    for row in _TABLE:
        level, cells = row[0], row[1:]
        for name, cell in zip(COLUMN_NAMES, cells, strict=True):
            if isinstance(cell, dict):
                cell = cell[scheme]
            if cell is not None:
                cols[name].append((cell, level))
    return {name: tuple(points) for name, points in cols.items()}


COLUMNS: dict[str, dict[str, tuple[tuple[int, int], ...]]] = {s: _columns(s) for s in SCHEMES}
"""scheme → column → ((concentration breakpoint, IAQI), …) from 0 to the column's top."""


def top(scheme: str, column: str) -> int:
    """The highest concentration a column indexes."""
    return COLUMNS[scheme][column][-1][0]


def pollutant_of(column: str) -> str:
    return column.rsplit("_", 1)[0]


# 2026 rounds before indexing: µg/m³ to integers, CO (mg/m³) to one decimal.
def places(column: str) -> int:
    return 1 if column.startswith("co_") else 0


def to_decimal(value: object) -> Decimal:
    """A test input as the decimal it denotes (a float as its repr)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, Fraction):
        raise TypeError("use a decimal value in the reference")
    return Decimal(str(value))


def round_gbt8170(value: Decimal, ndigits: int) -> Decimal:
    """GB/T 8170: round half to even, on the exact decimal."""
    return value.quantize(Decimal(1).scaleb(-ndigits), rounding=ROUND_HALF_EVEN)


def indexed_conc(scheme: str, column: str, value: object) -> Fraction:
    """The concentration the standard indexes: rounded first in 2026, as measured in 2012."""
    dec = to_decimal(value)
    if scheme == S2026:
        dec = round_gbt8170(dec, places(column))
    return Fraction(dec)


def iaqi_formula(scheme: str, column: str, conc: Fraction) -> int:
    """§2 formula on the segment holding ``conc``, rounded up (§4); ``conc`` within the column."""
    points = COLUMNS[scheme][column]
    if conc == 0:
        return 0
    for (bp_lo, i_lo), (bp_hi, i_hi) in pairwise(points):
        if bp_lo < conc <= bp_hi:
            exact = Fraction(i_hi - i_lo, bp_hi - bp_lo) * (conc - bp_lo) + i_lo
            return math.ceil(exact)
    raise ValueError(f"{conc} is outside column {column}")


def expected_iaqi(scheme: str, column: str, value: object) -> tuple[int, bool]:
    """(IAQI, beyond the index) of ``value`` on ``column`` with plain capping above the top."""
    conc = indexed_conc(scheme, column, value)
    if conc > top(scheme, column):
        return 500, True
    return iaqi_formula(scheme, column, conc), False


# §5 levels: (level, AQI min, AQI max, category, English, colour name, RGB)
LEVELS = (
    (1, 0, 50, "优", "Excellent", "绿色", (0, 228, 0)),
    (2, 51, 100, "良", "Good", "黄色", (255, 255, 0)),
    (3, 101, 150, "轻度污染", "Lightly polluted", "橙色", (255, 126, 0)),
    (4, 151, 200, "中度污染", "Moderately polluted", "红色", (255, 0, 0)),
    (5, 201, 300, "重度污染", "Heavily polluted", "紫色", (153, 0, 76)),
    (6, 301, 500, "严重污染", "Severely polluted", "褐红色", (126, 0, 35)),
)


def level_of(aqi: int) -> tuple:
    for row in LEVELS:
        if row[1] <= aqi <= row[2]:
            return row
    raise ValueError(aqi)


# §3: the indicators of each report. above: what §2 says happens above the column's top.
@dataclass(frozen=True)
class Path:
    """One way a concentration reaches a column through compute()."""

    scheme: str
    report: str
    key: str
    column: str
    above: str = "cap"  # cap | fixed200 | fixed300 | fallback_so2_24h | drop
    context: dict = field(default_factory=dict)  # other inputs needed to reach the column

    @property
    def pollutant(self) -> str:
        return pollutant_of(self.column)

    @property
    def id(self) -> str:
        suffix = "+so2>800" if self.context else ""
        return f"{self.scheme[-4:]}-{self.report}-{self.key}{suffix}@{self.column}"


PATHS = (
    # HJ 633-2026 real-time: the six 1 h values, PM on the 24 h PM columns.
    Path(S2026, "hourly", "so2", "so2_1h", "fixed200"),
    Path(S2026, "hourly", "no2", "no2_1h"),
    Path(S2026, "hourly", "co", "co_1h"),
    Path(S2026, "hourly", "o3", "o3_1h"),
    Path(S2026, "hourly", "pm10", "pm10_24h"),
    Path(S2026, "hourly", "pm2_5", "pm2_5_24h"),
    # HJ 633-2026 daily.
    Path(S2026, "daily", "so2_24h", "so2_24h"),
    Path(S2026, "daily", "no2_24h", "no2_24h"),
    Path(S2026, "daily", "co_24h", "co_24h"),
    Path(S2026, "daily", "o3_8h_24h", "o3_8h", "fixed300"),
    Path(S2026, "daily", "pm10_24h", "pm10_24h"),
    Path(S2026, "daily", "pm2_5_24h", "pm2_5_24h"),
    # HJ 633-2012 real-time: 1 h gases, O3 8 h moving, PM 24 h moving.
    Path(S2012, "hourly", "so2", "so2_1h", "fallback_so2_24h"),
    Path(S2012, "hourly", "so2_24h", "so2_24h", context={"so2": 900}),
    Path(S2012, "hourly", "no2", "no2_1h"),
    Path(S2012, "hourly", "co", "co_1h"),
    Path(S2012, "hourly", "o3", "o3_1h"),
    Path(S2012, "hourly", "o3_8h", "o3_8h", "drop"),
    Path(S2012, "hourly", "pm10_24h", "pm10_24h"),
    Path(S2012, "hourly", "pm2_5_24h", "pm2_5_24h"),
    # HJ 633-2012 real-time as published: 1 h gases and O3 1 h, 1 h PM on the 24 h columns.
    Path(S2012P, "hourly", "so2", "so2_1h", "fallback_so2_24h"),
    Path(S2012P, "hourly", "so2_24h", "so2_24h", context={"so2": 900}),
    Path(S2012P, "hourly", "no2", "no2_1h"),
    Path(S2012P, "hourly", "co", "co_1h"),
    Path(S2012P, "hourly", "o3", "o3_1h"),
    Path(S2012P, "hourly", "pm10", "pm10_24h"),
    Path(S2012P, "hourly", "pm2_5", "pm2_5_24h"),
    # HJ 633-2012 daily (the same in both readings).
    Path(S2012, "daily", "so2_24h", "so2_24h"),
    Path(S2012, "daily", "no2_24h", "no2_24h"),
    Path(S2012, "daily", "co_24h", "co_24h"),
    Path(S2012, "daily", "o3_24h", "o3_1h"),
    Path(S2012, "daily", "o3_8h_24h", "o3_8h", "drop"),
    Path(S2012, "daily", "pm10_24h", "pm10_24h"),
    Path(S2012, "daily", "pm2_5_24h", "pm2_5_24h"),
    Path(S2012P, "daily", "so2_24h", "so2_24h"),
    Path(S2012P, "daily", "no2_24h", "no2_24h"),
    Path(S2012P, "daily", "co_24h", "co_24h"),
    Path(S2012P, "daily", "o3_24h", "o3_1h"),
    Path(S2012P, "daily", "o3_8h_24h", "o3_8h", "drop"),
    Path(S2012P, "daily", "pm10_24h", "pm10_24h"),
    Path(S2012P, "daily", "pm2_5_24h", "pm2_5_24h"),
)

# §3 report inputs (engine key names from the brief), for whole-report tests.
REPORT_KEYS = {
    (S2026, "hourly"): ("so2", "no2", "co", "o3", "pm10", "pm2_5"),
    (S2026, "daily"): ("so2_24h", "no2_24h", "co_24h", "o3_8h_24h", "pm10_24h", "pm2_5_24h"),
    (S2012, "hourly"): ("so2", "so2_24h", "no2", "co", "o3", "o3_8h", "pm10_24h", "pm2_5_24h"),
    (S2012, "daily"): (
        "so2_24h", "no2_24h", "co_24h", "o3_24h", "o3_8h_24h", "pm10_24h", "pm2_5_24h",
    ),
    (S2012P, "hourly"): ("so2", "so2_24h", "no2", "co", "o3", "pm10", "pm2_5"),
    (S2012P, "daily"): (
        "so2_24h", "no2_24h", "co_24h", "o3_24h", "o3_8h_24h", "pm10_24h", "pm2_5_24h",
    ),
}
