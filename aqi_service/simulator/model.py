"""The simulator's data model: stations, the clock, hour availability, records and faults."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from aqi_service.errors import ConfigError
from aqi_service.simulator.errors import BadParameter, UnknownStationError
from aqi_service.simulator.faultparams import DEFAULT_TIMEOUT_S
from aqi_service.simulator.faults import FaultRates, FaultRegistry
from aqi_service.simulator.hashing import FloatArray, hash_keys, string_key, uniform
from aqi_service.simulator.hours import HOUR_S, ensure_aware, hour_datetime, hour_floor, parse_hour
from aqi_service.simulator.kinds import TRANSPORT_KINDS, FaultKind
from aqi_service.simulator.records import RecordContext, Row, build_rows, rows_to_records
from aqi_service.simulator.series import SeriesModel, StationField, round_reported
from aqi_service.simulator.stations import SimStation, synthetic_stations

MAX_RANGE = timedelta(days=31)
"""The longest span one ``hourly`` request may cover."""

_TRANSPORT_STREAM = 0x7A25
# A fixed order, so rate-drawn transport faults do not depend on set iteration order.
_TRANSPORT_ORDER = tuple(k for k in FaultKind if k in TRANSPORT_KINDS)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class TransportFault:
    """How the next answer fails: the kind, and for ``timeout`` how long to wait."""

    kind: FaultKind
    seconds: float = 0.0


class Simulator:
    """Simulated data loggers of a station network: deterministic values plus faults.

    Values are a pure function of (seed, station code, hour), so any range asked any time
    gives the same numbers. Hours are labelled hour-ending; the latest available hour at
    time t is the last whole hour at or before t - ``publish_delay_s``.
    """

    def __init__(
        self,
        stations: Sequence[SimStation],
        seed: int = 2014,
        extra_stations: int = 0,
        clock: Callable[[], datetime] | None = None,
        publish_delay_s: float = 0,
        rates: FaultRates | None = None,
    ) -> None:
        all_stations = (*stations, *synthetic_stations(extra_stations, stations))
        self._by_code = {s.code: s for s in all_stations}
        if len(self._by_code) != len(all_stations):
            raise ConfigError("station codes must be unique")
        self.stations: tuple[SimStation, ...] = all_stations
        self.seed = seed
        self.publish_delay_s = float(publish_delay_s)
        self.rates = rates or FaultRates()
        self._clock = clock or _utc_now
        self._model = SeriesModel(seed)
        fields = self._model.station_fields([s.code for s in all_stations],
                                            [s.lat for s in all_stations],
                                            [s.lon for s in all_stations])
        self._fields: dict[str, StationField] = dict(zip(self._by_code, fields, strict=True))
        self._requests: dict[str, int] = {}
        self.faults = FaultRegistry(self.now, self._by_code)

    def now(self) -> datetime:
        """The simulator's current time (aware)."""
        now = self._clock()
        if now.tzinfo is None:
            raise ConfigError("the simulator clock must return aware datetimes")
        return now

    def station(self, code: str) -> SimStation:
        """The station with this code; UnknownStationError if there is none."""
        try:
            return self._by_code[code]
        except KeyError:
            raise UnknownStationError(code) from None

    def latest_hour(self, now: datetime | None = None) -> datetime:
        """The label (UTC) of the latest hour published at ``now`` (default: the clock)."""
        return hour_datetime(self._latest(now or self.now()))

    def values(self, code: str, first: datetime, last: datetime) -> dict[str, FloatArray]:
        """Reported values (rounded, no faults) for the hours labelled ``first..last``."""
        h0, h1 = parse_hour(first, "first"), parse_hour(last, "last")
        if h1 < h0:
            raise BadParameter("bad_range", "'last' is before 'first'")
        return round_reported(self._generate(code, h0, h1))

    def hourly_records(self, code: str, since: datetime,
                       until: datetime | None = None) -> list[dict[str, Any]]:
        """Records for the hours after ``since`` up to ``until`` (default: the latest).

        Hours not yet published are never returned. Data faults are applied and counted.
        Raises UnknownStationError, or BadParameter for a range longer than 31 days.
        """
        return rows_to_records(self.hourly_rows(code, since, until))

    def hourly_rows(self, code: str, since: datetime, until: datetime | None = None) -> list[Row]:
        """``hourly_records`` as tuples in the order of ``RECORD_KEYS`` (cheaper to encode)."""
        self.station(code)
        now = self.now()
        since = ensure_aware(since)
        latest = self._latest(now)
        if until is None:
            until_hour, end = latest, hour_datetime(latest)
        else:
            end = ensure_aware(until)
            until_hour = hour_floor(end)
        if end - since > MAX_RANGE:
            raise BadParameter("range_too_long", "at most 31 days per request")
        faults = self.faults.take_data(code)
        first, last = hour_floor(since) + 1, min(until_hour, latest)
        if last < first:
            return []
        hours = np.arange(first, last + 1, dtype=np.int64)
        ctx = RecordContext(self.seed, code, self.rates, now, self.publish_delay_s)
        return build_rows(hours, self._generate(code, first, last), faults, ctx)

    def transport_fault(self, code: str) -> TransportFault | None:
        """How a request to ``code`` fails now, if it does (on demand first, then by rate)."""
        fault = self.faults.take_transport(code)
        if fault is not None:
            return TransportFault(fault.kind, fault.params.seconds)
        n = self._requests.get(code, 0)
        self._requests[code] = n + 1
        for kind in _TRANSPORT_ORDER:
            rate = self.rates.of(kind)
            if rate > 0.0 and uniform(hash_keys(self.seed, _TRANSPORT_STREAM,
                                                string_key(kind.value), string_key(code),
                                                n)) < rate:
                return TransportFault(kind, DEFAULT_TIMEOUT_S)
        return None

    def _latest(self, now: datetime) -> int:
        return int((now.timestamp() - self.publish_delay_s) // HOUR_S)

    def _generate(self, code: str, first: int, last: int) -> dict[str, FloatArray]:
        self.station(code)
        return self._model.generate(self._fields[code], first, last)
