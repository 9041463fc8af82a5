"""``serve``, ``migrate``, ``collect``, ``recompute`` and ``check-config``: the commands that
run the service.

Every command that touches the database takes the same ``--data-dir`` (embedded
PostgreSQL) or ``AQI_DATABASE_URL`` (external PostgreSQL) and works while ``serve`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from aqi_service.config import Config, load_config
from aqi_service.errors import AqiServiceError, ConfigError

log = logging.getLogger(__name__)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config-dir", type=Path, default=None,
                   help="folder with service.toml and stations.toml (default: ./config or "
                        "AQI_CONFIG_DIR)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="state folder; the embedded PostgreSQL lives in DATA_DIR/pg "
                        "(default: ./var; ignored with AQI_DATABASE_URL)")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register the sub-commands."""
    p = sub.add_parser("serve", help="run the whole service (database, collectors, web)")
    _common(p)
    p.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="listen port (default 8080)")
    p.add_argument("--no-scheduler", action="store_true",
                   help="serve the web only; collect nothing (a read replica)")
    p.set_defaults(handler=serve, default_log_level="INFO")

    p = sub.add_parser("migrate", help="apply pending database migrations and exit")
    _common(p)
    p.set_defaults(handler=migrate)

    p = sub.add_parser("collect", help="run one collection and exit (cron, tests)")
    _common(p)
    p.add_argument("--once", action="store_true", required=True,
                   help="run one collection now (the schedule belongs to 'serve')")
    p.add_argument("--lookback-hours", type=int, default=None,
                   help="reach back this far for missing hours (default: from the config)")
    p.set_defaults(handler=collect, default_log_level="INFO")

    p = sub.add_parser("recompute", help="derive stored records again (methodology "
                                         "corrections, logged as revisions)")
    _common(p)
    p.add_argument("--from", dest="first", required=True,
                   help="first hour (ISO time, hour-ending, Beijing time unless an offset "
                        "is given) or date (its first hour)")
    p.add_argument("--to", dest="last", required=True,
                   help="last hour or date (its last hour, 24:00)")
    p.add_argument("--stations", default=None,
                   help="comma-separated station codes (default: every station with data)")
    p.add_argument("--dry-run", action="store_true",
                   help="print what would change; write nothing")
    p.set_defaults(handler=recompute, default_log_level="INFO")

    p = sub.add_parser("check-config", help="validate the configuration and print it (masked)")
    _common(p)
    p.set_defaults(handler=check_config)


def config_from_args(args: argparse.Namespace, **extra: dict[str, Any]) -> Config:
    """The configuration with command-line overrides applied."""
    overrides: dict[str, dict[str, Any]] = {"database": {"data_dir": args.data_dir}}
    for section, values in extra.items():
        overrides.setdefault(section, {}).update(values)
    return load_config(args.config_dir, **overrides)


def check_config(args: argparse.Namespace) -> int:
    """Exit 0 and print the masked configuration, or 2 and explain every error."""
    try:
        cfg = config_from_args(args)
    except ConfigError as exc:
        print(f"aqi-service: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(cfg.masked(), ensure_ascii=False, indent=2))
    print(f"configuration OK: {len(cfg.stations)} stations, database "
          f"{'embedded in ' + str(cfg.database.data_dir) if cfg.database.embedded else 'external'}",
          file=sys.stderr)
    return 0


async def _freeze_startup_objects(app: web.Application) -> None:
    """Move everything alive after start-up out of the garbage collector's sight.

    Modules, templates, the schemes and the pool live as long as the process; without
    this, every full collection walks them all again and shows up as latency spikes.
    """
    gc.collect()
    gc.freeze()


def serve(args: argparse.Namespace) -> int:
    """Run the service until SIGINT/SIGTERM; the embedded PostgreSQL stops with it."""
    from aqi_service.web import server
    from aqi_service.web.app import create_app

    cfg = config_from_args(args, http={"host": args.host, "port": args.port})
    log.info("configuration: %s", json.dumps(cfg.masked(), ensure_ascii=False))
    app = create_app(cfg, scheduler=not args.no_scheduler)
    app.on_startup.append(_freeze_startup_objects)
    server.run_app(app, cfg.http, access_log=None, shutdown_timeout=10)  # read timeouts
    return 0


def migrate(args: argparse.Namespace) -> int:
    """Apply pending migrations."""
    from aqi_service.storage import db, migrations

    cfg = config_from_args(args)

    async def main() -> int:
        async with db.open_pool(cfg) as pool, pool.acquire() as conn:
            applied = await migrations.migrate(conn)
            version = await migrations.current_version(conn)
        for mig in applied:
            print(f"applied {mig.version:03d}_{mig.name}")
        print(f"database at migration {version}")
        return 0

    return asyncio.run(main())


def collect(args: argparse.Namespace) -> int:
    """One collection run against the configured stations; prints its summary as JSON."""
    from aqi_service.web import keys
    from aqi_service.web.app import create_app

    cfg = config_from_args(args)

    async def main() -> int:
        app = create_app(cfg, scheduler=False)
        runner = web.AppRunner(app)
        await runner.setup()  # starts the resources (database, simulator, client)
        try:
            summary = await app[keys.COLLECTOR].run("manual",
                                                    lookback_hours=args.lookback_hours)
        finally:
            await runner.cleanup()
        print(json.dumps({
            "run_id": summary.run_id, "target_hour": summary.target_hour.isoformat(),
            "status": summary.status, "polled": summary.polled, "ok": summary.ok,
            "failed": summary.failed, "observations": summary.observations,
            "rejected": summary.rejected, "hours_backfilled": summary.backfilled,
            "revisions": summary.revisions, "duration_s": round(summary.duration_s, 3),
            "outcomes": summary.outcomes,
        }, ensure_ascii=False))
        return 0 if summary.status != "failed" else 1

    try:
        return asyncio.run(main())
    except AqiServiceError as exc:
        print(f"aqi-service: {exc}", file=sys.stderr)
        return 1


def recompute(args: argparse.Namespace) -> int:
    """Recompute the records of a range with the configured methodology; print the counts."""
    from aqi_service.collect import recompute as rc
    from aqi_service.storage import db, migrations

    try:
        first = rc.parse_bound(args.first, end=False)
        last = rc.parse_bound(args.last, end=True)
    except ValueError as exc:
        print(f"aqi-service: --from/--to: {exc}", file=sys.stderr)
        return 2
    if last < first:
        print("aqi-service: --to is before --from", file=sys.stderr)
        return 2
    cfg = config_from_args(args)
    codes = [c.strip() for c in args.stations.split(",") if c.strip()] if args.stations \
        else None

    async def main() -> int:
        async with db.open_pool(cfg) as pool, pool.acquire() as conn:
            await migrations.migrate(conn)
            report = await rc.recompute(
                conn, first, last, cfg.city.code, [s.code for s in cfg.stations],
                cfg.aqi.hourly_2012, stations=codes, dry_run=args.dry_run)
        for line in report.lines():
            print(line)
        return 0

    try:
        return asyncio.run(main())
    except AqiServiceError as exc:
        print(f"aqi-service: {exc}", file=sys.stderr)
        return 1
