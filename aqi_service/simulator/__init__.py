"""Simulated data loggers of monitoring stations, served over HTTP with injectable faults.

``Simulator`` is the data model (deterministic hourly values of six pollutants per station,
plus faults); ``create_simulator_app`` serves it (see ``app`` for the HTTP API);
``run_simulator`` starts it on a port; ``add_simulate_parser`` and ``run`` make the
``aqi-service simulate`` command.
"""

from aqi_service.simulator.app import (
    create_simulator_app,
    run_simulator,
    simulator_ctx,
    simulator_url,
)
from aqi_service.simulator.cli import add_simulate_parser, run
from aqi_service.simulator.config import SimulatorConfig
from aqi_service.simulator.errors import BadParameter, UnknownStationError
from aqi_service.simulator.faults import Fault, FaultKind, FaultRates, FaultRegistry
from aqi_service.simulator.model import MAX_RANGE, Simulator, TransportFault
from aqi_service.simulator.series import POLLUTANTS
from aqi_service.simulator.stations import LANGFANG_STATIONS, SimStation, load_stations

__all__ = [
    "LANGFANG_STATIONS",
    "MAX_RANGE",
    "POLLUTANTS",
    "BadParameter",
    "Fault",
    "FaultKind",
    "FaultRates",
    "FaultRegistry",
    "SimStation",
    "Simulator",
    "SimulatorConfig",
    "TransportFault",
    "UnknownStationError",
    "add_simulate_parser",
    "create_simulator_app",
    "load_stations",
    "run",
    "run_simulator",
    "simulator_ctx",
    "simulator_url",
]
