"""China's AQI, exactly: index schemes as data, IAQI/AQI, GB 3095 averages, HJ 663 statistics.

Pure computation: no I/O, no database, no clock. Storage, collection and the web call in.
"""

from aqi_service.aqi.exact import round_half_even, to_fraction
from aqi_service.aqi.index import AqiResult, compute, iaqi, iaqi_exact
from aqi_service.aqi.schemes import (
    POLLUTANTS,
    UNITS,
    Column,
    Indicator,
    Level,
    Scheme,
    all_schemes,
    get_scheme,
    scheme_for,
    scheme_for_day,
    scheme_for_hour,
)

__all__ = [
    "POLLUTANTS",
    "UNITS",
    "AqiResult",
    "Column",
    "Indicator",
    "Level",
    "Scheme",
    "all_schemes",
    "compute",
    "get_scheme",
    "iaqi",
    "iaqi_exact",
    "round_half_even",
    "scheme_for",
    "scheme_for_day",
    "scheme_for_hour",
    "to_fraction",
]
