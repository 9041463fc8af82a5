"""Simulated stations: the built-in Langfang list, the TOML stations file and synthetic ones."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aqi_service.errors import ConfigError
from aqi_service.simulator.hashing import hash_keys, uniform


@dataclass(frozen=True)
class SimStation:
    """One simulated monitoring station (its data logger answers for ``code``)."""

    code: str
    lat: float
    lon: float
    name: str = ""


LANGFANG_STATIONS: tuple[SimStation, ...] = (
    SimStation("LF01", 39.524, 116.710, "广阳区"),
    SimStation("LF02", 39.503, 116.695, "安次区"),
    SimStation("LF03", 39.575, 116.762, "廊坊经济技术开发区"),
    SimStation("LF04", 39.983, 117.078, "三河市"),
    SimStation("LF05", 39.887, 116.989, "大厂回族自治县"),
    SimStation("LF06", 39.761, 117.006, "香河县"),
    SimStation("LF07", 39.438, 116.299, "固安县"),
    SimStation("LF08", 39.321, 116.499, "永清县"),
    SimStation("LF09", 39.126, 116.392, "霸州市"),
    SimStation("LF10", 38.873, 116.458, "文安县"),
    SimStation("LF11", 38.705, 116.654, "大城县"),
)
"""The 11 Langfang stations, one per county-level unit (approximate county-seat positions)."""

SYNTHETIC_PREFIX = "SYN"
_SYNTHETIC_STREAM = 0x5E7


def load_stations(path: Path) -> list[SimStation]:
    """Stations from a TOML file of ``[[stations]]`` tables; the Langfang list if it is missing."""
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        return list(LANGFANG_STATIONS)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    tables = doc.get("stations")
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f"{path}: no [[stations]] tables")
    stations = []
    for i, table in enumerate(tables):
        try:
            code = str(table["code"])
            lat, lon = float(table["lat"]), float(table["lon"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: station #{i + 1} needs code, lat and lon") from exc
        name = str(table.get("name_zh") or table.get("name_en") or table.get("name") or "")
        stations.append(SimStation(code, lat, lon, name))
    return stations


def synthetic_stations(count: int, around: Sequence[SimStation]) -> list[SimStation]:
    """``count`` stations coded SYN00001… spread over the area of ``around`` (or Langfang).

    Positions depend only on the index and the area, so a station keeps its place (and its
    series) whatever the seed or the number of other synthetic stations.
    """
    if count <= 0:
        return []
    base = around or LANGFANG_STATIONS
    lats = [s.lat for s in base]
    lons = [s.lon for s in base]
    lat0, lat1 = min(lats) - 0.1, max(lats) + 0.1
    lon0, lon1 = min(lons) - 0.1, max(lons) + 0.1
    index = np.arange(1, count + 1)
    u_lat = uniform(hash_keys(_SYNTHETIC_STREAM, index, 1))
    u_lon = uniform(hash_keys(_SYNTHETIC_STREAM, index, 2))
    lat = np.round(lat0 + (lat1 - lat0) * u_lat, 4).tolist()
    lon = np.round(lon0 + (lon1 - lon0) * u_lon, 4).tolist()
    return [
        SimStation(f"{SYNTHETIC_PREFIX}{i:05d}", la, lo, f"Synthetic {i:05d}")
        for i, la, lo in zip(index.tolist(), lat, lon, strict=True)
    ]
