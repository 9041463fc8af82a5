"""Faults a simulated data logger can show: added on demand, or drawn at random rates.

Transport faults replace the answer to a ``/stations/{code}/hourly`` request; data faults
alter the records of an answer. Faults are added on demand (``FaultRegistry.add`` or
``POST /_faults``; see ``faultparams`` for each kind's ``value``) or happen on their own
with ``FaultRates``.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aqi_service.simulator.errors import BadParameter
from aqi_service.simulator.faultparams import FaultParams, parse_params
from aqi_service.simulator.hours import ensure_aware, hour_label, parse_hour, parse_time
from aqi_service.simulator.kinds import FaultKind

log = logging.getLogger(__name__)

ALL_STATIONS = "*"


@dataclass
class Fault:
    """One fault added on demand; ``count`` (if set) is how many more requests it affects."""

    id: int
    kind: FaultKind
    station: str
    count: int | None
    until: datetime | None
    hours: frozenset[int] | None
    value: Any
    params: FaultParams
    created: datetime

    def applies_to(self, code: str) -> bool:
        """Whether the fault concerns station ``code``."""
        return self.station in (ALL_STATIONS, code)

    def is_active(self, now: datetime) -> bool:
        """Whether the fault still has effect at ``now``."""
        if self.count is not None and self.count <= 0:
            return False
        return self.until is None or now < self.until

    def hour_mask(self, hours: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Which of ``hours`` the fault concerns (all of them if it names none)."""
        if self.hours is None:
            return np.ones(hours.shape, dtype=bool)
        return np.isin(hours, np.fromiter(self.hours, dtype=np.int64))

    def to_json(self) -> dict[str, Any]:
        """The fault as ``GET /_faults`` lists it."""
        return {
            "id": self.id,
            "station": self.station,
            "kind": self.kind.value,
            "count": self.count,
            "until": self.until.isoformat() if self.until else None,
            "hours": sorted(hour_label(h) for h in self.hours) if self.hours else None,
            "value": self.value.isoformat() if isinstance(self.value, datetime) else self.value,
            "created": self.created.isoformat(),
        }


@dataclass(frozen=True)
class FaultRates:
    """Probabilities of faults happening on their own, deterministic given the seed.

    Transport kinds: per request to a station. Data kinds: per station-hour (``silent``
    starts an outage of 1-24 hours; ``revised_value`` changes a value 3 hours after it was
    first published; ``late_hour`` publishes an hour 1-3 hours late).
    """

    down: float = 0.0
    http_500: float = 0.0
    timeout: float = 0.0
    malformed_json: float = 0.0
    wrong_content: float = 0.0
    missing_hour: float = 0.0
    late_hour: float = 0.0
    duplicate_hour: float = 0.0
    revised_value: float = 0.0
    out_of_range: float = 0.0
    negative: float = 0.0
    bad_timestamp: float = 0.0
    non_numeric: float = 0.0
    sentinel: float = 0.0
    pm25_above_pm10: float = 0.0
    flag_maintenance: float = 0.0
    flag_calibration: float = 0.0
    flag_fault: float = 0.0
    silent: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            rate = getattr(self, f.name)
            if not (isinstance(rate, int | float) and 0.0 <= rate <= 1.0):
                raise BadParameter("bad_rate", f"rate of {f.name!r} must be in [0, 1]")

    @classmethod
    def from_mapping(cls, rates: Mapping[str, float]) -> FaultRates:
        """Rates from a mapping of fault kind to probability."""
        unknown = set(rates) - {f.name for f in fields(cls)}
        if unknown:
            raise BadParameter("bad_kind", f"unknown fault kinds: {sorted(unknown)}")
        return cls(**{k: float(v) for k, v in rates.items()})

    def of(self, kind: FaultKind) -> float:
        """The rate of one kind."""
        return float(getattr(self, kind.value))

    def nonzero(self) -> dict[str, float]:
        """The kinds with a rate above zero."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}


class FaultRegistry:
    """The faults added on demand: add, list, clear, and take those a request meets."""

    def __init__(self, clock: Callable[[], datetime], stations: Iterable[str]) -> None:
        self._clock = clock
        self._stations = frozenset(stations)
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(
        self,
        kind: FaultKind | str,
        station: str = ALL_STATIONS,
        *,
        count: int | None = None,
        until: datetime | str | None = None,
        hours: Iterable[datetime | str] | None = None,
        value: Any = None,
    ) -> Fault:
        """Add a fault for one station (or ``"*"``); raise BadParameter if it is invalid."""
        kind = _parse_kind(kind)
        if station != ALL_STATIONS and station not in self._stations:
            raise BadParameter("unknown_station", f"unknown station {station!r}")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)
                                  or count < 1):
            raise BadParameter("bad_count", "'count' must be a positive integer")
        if isinstance(until, str):
            until = parse_time(until, "until")
        elif until is not None:
            until = ensure_aware(until)
        hour_set = None
        if hours is not None:
            if kind.is_transport or kind is FaultKind.SILENT:
                raise BadParameter("bad_hours", f"'hours' does not apply to {kind.value!r}")
            if isinstance(hours, str):
                raise BadParameter("bad_hours", "'hours' must be a list of ISO 8601 hours")
            hour_set = frozenset(parse_hour(h, "hours") for h in hours)
        created = self._clock()
        fault = Fault(
            id=next(self._ids), kind=kind, station=station, count=count, until=until,
            hours=hour_set, value=value, params=parse_params(kind, value, created),
            created=created,
        )
        self._faults.append(fault)
        log.info("fault %d added: %s on %s", fault.id, kind.value, station)
        return fault

    def add_json(self, payload: Any) -> Fault:
        """Add a fault from a ``POST /_faults`` body."""
        if not isinstance(payload, dict):
            raise BadParameter("bad_fault", "the body must be a JSON object")
        unknown = set(payload) - {"station", "kind", "count", "until", "hours", "value"}
        if unknown:
            raise BadParameter("bad_fault", f"unknown fields: {sorted(unknown)}")
        if "kind" not in payload:
            raise BadParameter("bad_fault", "'kind' is required")
        station = payload.get("station", ALL_STATIONS)
        if not isinstance(station, str):
            raise BadParameter("bad_fault", "'station' must be a station code or '*'")
        until = payload.get("until")
        if until is not None and not isinstance(until, str):
            raise BadParameter("bad_time", "'until' must be an ISO 8601 time")
        hours = payload.get("hours")
        if hours is not None and not (isinstance(hours, list)
                                      and all(isinstance(h, str) for h in hours)):
            raise BadParameter("bad_hours", "'hours' must be a list of ISO 8601 hours")
        return self.add(payload["kind"], station, count=payload.get("count"), until=until,
                        hours=hours, value=payload.get("value"))

    def remove(self, fault_id: int) -> bool:
        """Remove one fault; False if there is none with this id."""
        before = len(self._faults)
        self._faults = [f for f in self._faults if f.id != fault_id]
        return len(self._faults) < before

    def clear(self) -> int:
        """Remove every fault; return how many there were."""
        removed = len(self._faults)
        self._faults.clear()
        return removed

    def active(self) -> list[Fault]:
        """The faults still in effect, oldest first (spent and expired ones are dropped)."""
        now = self._clock()
        self._faults = [f for f in self._faults if f.is_active(now)]
        return list(self._faults)

    def take_transport(self, code: str) -> Fault | None:
        """The transport fault a request to ``code`` meets (the newest), counting it."""
        for fault in reversed(self.active()):
            if fault.kind.is_transport and fault.applies_to(code):
                _consume(fault)
                return fault
        return None

    def take_data(self, code: str) -> list[Fault]:
        """The data faults an answer for ``code`` carries, counting them."""
        taken = [f for f in self.active() if not f.kind.is_transport and f.applies_to(code)]
        for fault in taken:
            _consume(fault)
        return taken


def _consume(fault: Fault) -> None:
    if fault.count is not None:
        fault.count -= 1


def _parse_kind(kind: FaultKind | str) -> FaultKind:
    try:
        return FaultKind(kind)
    except ValueError:
        raise BadParameter("bad_kind", f"unknown fault kind {kind!r}") from None


