"""Typed settings of a standalone simulator and the builder of its data model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from aqi_service.simulator.faults import FaultRates
from aqi_service.simulator.model import Simulator
from aqi_service.simulator.stations import load_stations

DEFAULT_STATIONS_FILE = Path("config/stations.toml")


@dataclass(frozen=True)
class SimulatorConfig:
    """Where the simulator listens and what it simulates."""

    host: str = "127.0.0.1"
    port: int = 8081
    seed: int = 2014
    extra_stations: int = 0
    stations_file: Path = DEFAULT_STATIONS_FILE
    publish_delay_s: float = 0.0
    rates: FaultRates = field(default_factory=FaultRates)

    def build(self, clock: Callable[[], datetime] | None = None) -> Simulator:
        """The simulator for these settings (the Langfang stations if the file is missing)."""
        return Simulator(
            load_stations(self.stations_file), seed=self.seed,
            extra_stations=self.extra_stations, clock=clock,
            publish_delay_s=self.publish_delay_s, rates=self.rates,
        )
