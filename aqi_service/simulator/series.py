"""Deterministic hourly concentrations: a pure function of (seed, station, hour).

Every random number is a counter-based hash (``hashing``) of (seed, stream, key, index), so
any hour of any station is computed on its own: a range asked twice, in any order, from
any ``SeriesModel`` with the same seed, gives the same values (random access, no state).

The shapes are those of the North China Plain:

- seasons: a heating season (mid-November to mid-March) with high PM2.5, CO and SO2;
  summer photochemistry (O3 afternoon peaks); spring dust events raising PM10;
- diurnal cycles: PM2.5 and CO highest at night, NO2 peaks in the morning and evening rush
  hours, O3 peaks at 14:00-17:00 local time and is titrated by NO2 at night;
- a regional "stagnation" factor driving multi-day episodes: daily values smoothed over the
  previous days and interpolated between days, partly shared by the whole plain and partly
  from a lattice of nodes ~25 km apart weighted by distance, so nearby stations correlate
  more;
- hourly noise, partly common to the area and partly local to the station.

Concentrations are lognormal-like: µg/m³, CO in mg/m³, before rounding.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from aqi_service.simulator.hashing import FloatArray, hash_indices, hash_keys, normal, string_key

POLLUTANTS = ("so2", "no2", "co", "o3", "pm10", "pm2_5")
"""Pollutant keys (CNEMC names) in the order loggers report them."""

_LAT_STEP, _LON_STEP = 0.25, 0.30  # degrees between regional nodes (~28 km x ~26 km)
_NODE_SCALE_KM = 35.0  # Gaussian length of the distance weighting
_NODE_REACH = 4  # nodes considered on each side of a station
_REGIONAL_SHARE = 0.4  # variance of the stagnation factor shared by the whole plain
_COMMON_HOURLY_SHARE = 0.6  # variance of hourly noise shared by the area

_EPISODE_KERNEL = np.array([1.0, 0.9, 0.75, 0.5, 0.25])  # today, yesterday, …
_SUN_KERNEL = np.array([1.0, 0.5])
_HOURLY_KERNEL = 0.8 ** np.arange(8)
_NOISE_ROWS = 6  # so2, no2, co, o3, pm10/pm2.5 ratio, pm2.5
_TIME_CACHE = 32
_MATRIX_MAX_HOURS = 240
_STAGNATION_LIMIT = 2.0  # soft limit (in standard deviations) of the stagnation factor


class Stream(IntEnum):
    """Independent random streams: one per component of the model."""

    BIAS = 1
    STAGNATION = 2
    NODES = 3
    SUN = 4
    DUST = 5
    HOURLY_COMMON = 6
    HOURLY_LOCAL = 7


def _unit(kernel: FloatArray) -> FloatArray:
    """The kernel reversed for sliding windows and scaled to keep unit variance."""
    return (kernel / np.sqrt(np.sum(kernel**2)))[::-1].copy()


def _moving_average(z: FloatArray, kernel: FloatArray) -> FloatArray:
    """Weighted sums of the last ``len(kernel)`` values along the last axis."""
    return sliding_window_view(z, kernel.size, axis=-1) @ kernel


def _moving_average_matrix(kernel: FloatArray, n: int) -> FloatArray:
    """The matrix ``M`` with ``z @ M == _moving_average(z, kernel)`` for ``n`` outputs."""
    k = kernel.size
    matrix = np.zeros((n + k - 1, n))
    cols = np.arange(n)
    for j in range(k):
        matrix[cols + j, cols] = kernel[j]
    return matrix


def _bump(hour: FloatArray, center: float, width: float) -> FloatArray:
    """A Gaussian bump on the 24-hour clock."""
    dist = (hour - center + 12.0) % 24.0 - 12.0
    return np.exp(-0.5 * (dist / width) ** 2)


def _sigmoid(x: FloatArray) -> FloatArray:
    return 1.0 / (1.0 + np.exp(-x))


def _soft_cap(x: FloatArray, knee: float, cap: float) -> FloatArray:
    """``x`` below ``knee``, bending smoothly towards ``cap`` above it."""
    span = cap - knee
    return np.where(x <= knee, x, knee + span * np.tanh((x - knee) / span))


def _interpolate(daily: FloatArray, day_idx: NDArray[np.intp], weight: FloatArray) -> FloatArray:
    lo = daily[..., day_idx]
    return lo + weight * (daily[..., day_idx + 1] - lo)


@dataclass(frozen=True)
class StationField:
    """What the model needs to know of a station: its key, regional weights and bias."""

    key: int
    node_prefixes: NDArray[np.uint64]
    node_weights: FloatArray
    local_prefix: np.uint64
    bias: float


@dataclass(frozen=True)
class _TimeTerms:
    """Everything in an hour range that does not depend on the station."""

    first: int
    day_lo: int
    n_days: int
    day_idx: NDArray[np.intp]
    day_weight: FloatArray
    heat: FloatArray
    ln_pm: FloatArray
    pm_amp: FloatArray
    pm_diurnal: FloatArray
    ratio_shift: FloatArray
    dust: FloatArray
    ln_no2: FloatArray
    ln_so2: FloatArray
    ln_co: FloatArray
    co_amp: FloatArray
    o3_night: FloatArray
    o3_peak: FloatArray
    o3_shape: FloatArray
    stagnation: FloatArray
    hourly: FloatArray

    def interpolate(self, daily: FloatArray) -> FloatArray:
        """Daily values (placed at local noon) interpolated smoothly to the hours."""
        return _interpolate(daily, self.day_idx, self.day_weight)


class SeriesModel:
    """Generates hourly concentrations for a seed; caches the station-independent terms."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._time_cache: OrderedDict[tuple[int, int], _TimeTerms] = OrderedDict()
        self._hour_matrices: dict[int, FloatArray] = {}
        self._ep_kernel = _unit(_EPISODE_KERNEL)
        self._sun_kernel = _unit(_SUN_KERNEL)
        self._hour_kernel = _unit(_HOURLY_KERNEL)

    def station_fields(self, codes: Sequence[str], lats: Sequence[float],
                       lons: Sequence[float]) -> list[StationField]:
        """The regional weights and bias of stations at (lat, lon), computed together."""
        keys = np.array([string_key(c) for c in codes], dtype=np.uint64)
        lat = np.asarray(lats, dtype=np.float64)[:, None]
        lon = np.asarray(lons, dtype=np.float64)[:, None]
        offsets = np.arange(-_NODE_REACH, _NODE_REACH + 1)
        di, dj = (a.ravel() for a in np.meshgrid(offsets, offsets, indexing="ij"))
        ii = np.rint(lat / _LAT_STEP).astype(np.int64) + di
        jj = np.rint(lon / _LON_STEP).astype(np.int64) + dj
        dy = (ii * _LAT_STEP - lat) * 111.2
        dx = (jj * _LON_STEP - lon) * 111.2 * np.cos(np.radians(lat))
        weights = np.exp(-(dx**2 + dy**2) / (2.0 * _NODE_SCALE_KM**2))
        weights /= np.sqrt(np.sum(weights**2, axis=1, keepdims=True))
        # Node values depend on the node only, so every station near a node shares them.
        node_prefixes = hash_keys(self.seed, Stream.NODES, hash_keys(Stream.NODES, ii, jj))
        local_prefixes = hash_keys(self.seed, Stream.HOURLY_LOCAL, keys)
        biases = 0.15 * normal(hash_keys(self.seed, Stream.BIAS, keys))
        return [
            StationField(int(keys[s]), node_prefixes[s], weights[s], local_prefixes[s],
                         float(biases[s]))
            for s in range(keys.size)
        ]

    def generate(self, field: StationField, first: int, last: int) -> dict[str, FloatArray]:
        """Unrounded concentrations for hours ``first..last`` (hour-ending numbers)."""
        tt = self._time_terms(first, last)
        n = last - first + 1
        ep = self._ep_kernel
        days = np.arange(tt.day_lo - ep.size + 1, tt.day_lo + tt.n_days)
        nodes = normal(hash_indices(field.node_prefixes[:, None], days))
        local_daily = _moving_average(field.node_weights @ nodes, ep)
        stag = tt.stagnation + np.sqrt(1.0 - _REGIONAL_SHARE) * tt.interpolate(local_daily)
        # Episodes saturate: the worst days reach AQI 300-500, not ten times the median.
        stag = _STAGNATION_LIMIT * np.tanh(stag / _STAGNATION_LIMIT)

        hk = self._hour_kernel
        hours = np.arange(first - hk.size + 1, last + 1)
        cells = hours * _NOISE_ROWS + np.arange(_NOISE_ROWS)[:, None]
        local = normal(hash_indices(field.local_prefix, cells))
        noise = tt.hourly + np.sqrt(1.0 - _COMMON_HOURLY_SHARE) * self._hourly_ma(local, n)
        n_so2, n_no2, n_co, n_o3, n_ratio, n_pm = noise[:, :n]
        bias = field.bias

        pm_fine = _soft_cap(np.exp(tt.ln_pm + bias + tt.pm_amp * stag + 0.25 * n_pm),
                            350.0, 550.0)
        ratio = 1.3 + 0.7 * _sigmoid(0.9 * n_ratio + tt.ratio_shift)
        dust = tt.dust * np.exp(0.25 * n_ratio)
        no2 = np.exp(tt.ln_no2 + 0.5 * bias + 0.35 * stag + 0.2 * n_no2)
        so2 = np.exp(tt.ln_so2 + 0.5 * bias + (0.2 + 0.2 * tt.heat) * stag + 0.3 * n_so2)
        # CO and PM2.5 share their winter sources, hence part of their hourly noise.
        co = np.exp(tt.ln_co + 0.5 * bias + tt.co_amp * stag + 0.7 * tt.pm_diurnal
                    + 0.12 * n_co + 0.12 * n_pm)
        # Stagnant winter air holds little ozone; NO2 titrates it away at night.
        peak = tt.o3_peak * np.exp(-(0.1 + 0.3 * tt.heat) * stag)
        o3 = (tt.o3_night + (peak - tt.o3_night) * tt.o3_shape) * np.exp(0.12 * n_o3)
        o3 = np.maximum(_soft_cap(o3 - 0.25 * no2 * (1.0 - tt.o3_shape), 220.0, 330.0), 1.0)
        return {
            "so2": np.maximum(so2, 2.0),
            "no2": np.maximum(no2, 3.0),
            "co": np.maximum(_soft_cap(co, 3.0, 5.0), 0.1),
            "o3": o3,
            "pm10": np.minimum(pm_fine * ratio + dust, 2500.0),
            "pm2_5": np.minimum(pm_fine + 0.12 * dust, 900.0),
        }

    def _hourly_ma(self, z: FloatArray, n: int) -> FloatArray:
        """The hourly moving average: a cached banded matrix for short ranges (faster)."""
        if n > _MATRIX_MAX_HOURS:
            return _moving_average(z, self._hour_kernel)
        matrix = self._hour_matrices.get(n)
        if matrix is None:
            matrix = self._hour_matrices[n] = _moving_average_matrix(self._hour_kernel, n)
        return z @ matrix

    def _time_terms(self, first: int, last: int) -> _TimeTerms:
        key = (first, last)
        cached = self._time_cache.get(key)
        if cached is not None:
            self._time_cache.move_to_end(key)
            return cached
        terms = self._compute_time_terms(first, last)
        self._time_cache[key] = terms
        if len(self._time_cache) > _TIME_CACHE:
            self._time_cache.popitem(last=False)
        return terms

    def _compute_time_terms(self, first: int, last: int) -> _TimeTerms:
        seed = self.seed
        hours = np.arange(first, last + 1)
        local = hours - 0.5 + 8.0  # middle of the averaging hour, local time
        clock = local % 24.0
        local_days = local / 24.0
        year = (local_days / 365.2425) % 1.0  # 0 = 1 January
        # Daily values sit at local noon; each hour lies between two of them.
        u = local_days - 0.5
        d0 = np.floor(u).astype(np.int64)
        frac = u - d0
        day_lo = int(d0.min())
        n_days = int(d0.max()) - day_lo + 2
        day_idx = (d0 - day_lo).astype(np.intp)
        day_weight = frac * frac * (3.0 - 2.0 * frac)

        winter = np.cos(2.0 * np.pi * (year - 0.036))  # +1 mid-January, -1 mid-July
        heat = _sigmoid((winter - 0.5) / 0.07)  # the heating season, mid-Nov to mid-Mar
        o3_season = ((1.0 + np.cos(2.0 * np.pi * (year - 0.45))) / 2.0) ** 1.5
        spring = np.exp(-(((year - 0.29) / 0.06) ** 2))

        pm_diurnal = ((0.10 + 0.15 * heat) * np.cos(2.0 * np.pi * (clock - 23.0) / 24.0)
                      + 0.05 * _bump(clock, 8.0, 1.5))
        rush = (0.8 + 0.35 * _bump(clock, 8.0, 1.5) + 0.5 * _bump(clock, 19.5, 2.5)
                - 0.25 * _bump(clock, 14.0, 3.0))

        ep, sk = self._ep_kernel, self._sun_kernel
        ext = np.arange(day_lo - ep.size + 1, day_lo + n_days)
        common = _moving_average(normal(hash_keys(seed, Stream.STAGNATION, ext)), ep)
        sun_days = np.arange(day_lo - sk.size + 1, day_lo + n_days)
        sun = _moving_average(normal(hash_keys(seed, Stream.SUN, sun_days)), sk)
        dust_days = np.arange(day_lo, day_lo + n_days)
        dust_daily = np.maximum(normal(hash_keys(seed, Stream.DUST, dust_days)) - 1.2, 0.0)

        hk = self._hour_kernel
        ext_hours = np.arange(first - hk.size + 1, last + 1)
        rows = np.arange(_NOISE_ROWS)[:, None]
        hourly = _moving_average(normal(hash_keys(seed, Stream.HOURLY_COMMON, rows, ext_hours)),
                                 hk)

        def interp(daily: FloatArray) -> FloatArray:
            return _interpolate(daily, day_idx, day_weight)

        return _TimeTerms(
            first=first, day_lo=day_lo, n_days=n_days, day_idx=day_idx,
            day_weight=day_weight, heat=heat,
            ln_pm=np.log(24.0 + 62.0 * heat) + pm_diurnal,
            pm_amp=0.35 + 0.40 * heat,
            pm_diurnal=pm_diurnal,
            ratio_shift=1.5 * spring - 0.8 * heat,
            dust=600.0 * spring * interp(dust_daily),
            ln_no2=np.log((22.0 + 24.0 * heat) * rush),
            ln_so2=np.log((4.0 + 12.0 * heat) * (1.0 + 0.3 * _bump(clock, 11.0, 3.0))),
            ln_co=np.log(0.5 + 0.5 * heat),
            co_amp=0.15 + 0.4 * heat,
            o3_night=6.0 + 32.0 * o3_season,
            o3_peak=(35.0 + 185.0 * o3_season) * np.exp(0.18 * interp(sun)),
            o3_shape=_bump(clock, 15.5, 2.6),
            stagnation=np.sqrt(_REGIONAL_SHARE) * interp(common),
            hourly=np.sqrt(_COMMON_HOURLY_SHARE) * hourly,
        )


def round_reported(values: dict[str, FloatArray]) -> dict[str, FloatArray]:
    """Round as loggers publish hourly values: whole µg/m³, CO to 0.001 mg/m³."""
    return {p: np.round(v, 3) if p == "co" else np.rint(v) for p, v in values.items()}
