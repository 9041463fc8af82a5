"""``aqi-service simulate``: serve the simulated station data loggers over HTTP."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from aiohttp import web

from aqi_service.simulator.app import create_simulator_app
from aqi_service.simulator.config import DEFAULT_STATIONS_FILE, SimulatorConfig
from aqi_service.simulator.errors import BadParameter
from aqi_service.simulator.faults import FaultRates

log = logging.getLogger(__name__)


def add_simulate_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``simulate`` sub-command."""
    p = subparsers.add_parser(
        "simulate",
        help="serve simulated station data loggers over HTTP",
        description=(
            "Serve simulated hourly data of the stations (and N synthetic ones) over HTTP, "
            "deterministic for a seed, with faults injected on demand (POST /_faults) or "
            "at random rates."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8081, help="port to listen on (default: 8081)")
    p.add_argument("--seed", type=int, default=2014, help="seed of the series (default: 2014)")
    p.add_argument("--extra-stations", type=int, default=0, metavar="N",
                   help="add N synthetic stations SYN00001… (default: 0)")
    p.add_argument("--stations-file", type=Path, default=DEFAULT_STATIONS_FILE,
                   help="TOML file of [[stations]] (default: %(default)s; if missing, the "
                        "11 Langfang stations)")
    p.add_argument("--publish-delay", type=float, default=0.0, metavar="SECONDS",
                   help="how long after its end an hour is published (default: 0)")
    p.add_argument("--fault-rate", action="append", default=[], metavar="KIND=P",
                   help="probability of a fault kind per request (transport) or per "
                        "station-hour (data); repeatable, e.g. --fault-rate down=0.01")
    p.set_defaults(handler=run)
    return p


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """The simulator settings given on the command line."""
    rates: dict[str, float] = {}
    for item in args.fault_rate:
        kind, _, rate = item.partition("=")
        try:
            rates[kind.strip()] = float(rate)
        except ValueError:
            raise BadParameter(
                "bad_rate", f"--fault-rate {item!r}: expected KIND=PROBABILITY"
            ) from None
    if args.extra_stations < 0:
        raise BadParameter("bad_extra_stations", "--extra-stations must be >= 0")
    return SimulatorConfig(
        host=args.host, port=args.port, seed=args.seed, extra_stations=args.extra_stations,
        stations_file=args.stations_file, publish_delay_s=args.publish_delay,
        rates=FaultRates.from_mapping(rates),
    )


def run(args: argparse.Namespace) -> int:
    """Run the simulator until interrupted."""
    config = config_from_args(args)
    sim = config.build()
    log.info("simulating %d stations (seed %d) on %s:%d", len(sim.stations), config.seed,
             config.host, config.port)
    web.run_app(create_simulator_app(sim), host=config.host, port=config.port,
                shutdown_timeout=5.0)
    return 0
