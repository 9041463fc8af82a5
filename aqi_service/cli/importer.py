"""``aqi-service import enterprises|penalties|records|monitoring FILE.csv``, and
``aqi-service import hourly FILE.csv --format cnemc`` (archived hourly station data,
``collect/history.py``: ``--add-stations`` adds the file's stations that the configuration
does not have, outside the city aggregate; the report ends with the reconciliation of the
published AQIs and moving averages in the file).

``--dry-run`` checks every row (against the database too) and imports nothing; otherwise
the file is imported only if every row is good, or with ``--skip-bad`` the good rows are
and the bad ones are listed. Bad rows are printed as ``line N, column C: reason``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from aqi_service.cli.service import _common, config_from_args
from aqi_service.config import Config
from aqi_service.disclosure.importer import KINDS, describe, run_import


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``import``."""
    p = sub.add_parser("import", help="import disclosure data or archived hourly station "
                                      "data from a CSV file")
    _common(p)
    p.add_argument("kind", choices=sorted([*KINDS, "hourly"]), help="what the file holds")
    p.add_argument("file", type=Path, help="the CSV file (UTF-8, header row)")
    p.add_argument("--dry-run", action="store_true",
                   help="check every row and report; import nothing")
    p.add_argument("--skip-bad", action="store_true",
                   help="import the good rows and report the bad ones")
    p.add_argument("--encoding", default="utf-8-sig",
                   help="the file's encoding (default UTF-8, with or without BOM; "
                        "spreadsheets saved as GBK: gb18030)")
    p.add_argument("--note", default="",
                   help="public note of the corrections an import makes to changed records")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--format", default=None, choices=["cnemc"],
                   help="hourly: the file's layout (cnemc: CNEMC's hourly archive)")
    p.add_argument("--add-stations", action="store_true",
                   help="hourly: add the file's stations missing from the configuration "
                        "(served, not members of the city aggregate)")
    p.set_defaults(handler=import_file)


def import_file(args: argparse.Namespace) -> int:
    """Run the import; exit 0 when imported (or a clean dry run), 1 otherwise."""
    from aqi_service.storage import db, migrations

    cfg = config_from_args(args)
    if not args.file.is_file():
        print(f"aqi-service: {args.file}: no such file", file=sys.stderr)
        return 1
    if args.kind == "hourly":
        return import_hourly(args, cfg)
    if args.format or args.add_stations:
        print("aqi-service: --format and --add-stations are for 'import hourly'",
              file=sys.stderr)
        return 2

    async def main() -> int:
        async with db.open_pool(cfg) as pool, pool.acquire() as conn:
            await migrations.migrate(conn)
            from aqi_service.disclosure.catalog import load_catalog
            from aqi_service.storage.disclosure import sync_catalog

            await sync_catalog(conn, load_catalog(
                cfg.disclosure.catalog_path(cfg.config_dir)))
            report = await run_import(conn, args.kind, args.file, dry_run=args.dry_run,
                                      skip_bad=args.skip_bad, encoding=args.encoding,
                                      now=datetime.now(UTC), note=args.note)
        if args.json:
            print(json.dumps({
                "file": report.file, "kind": report.kind, "rows": report.rows,
                "dry_run": report.dry_run, "imported": report.imported,
                "counts": report.counts,
                "errors": [{"line": e.line, "column": e.column, "reason": e.reason}
                           for e in report.errors]}, ensure_ascii=False, indent=2))
        else:
            for line in describe(report):
                print(line)
        if report.dry_run:
            return 0 if not report.errors else 1
        return 0 if report.imported else 1

    return asyncio.run(main())


def import_hourly(args: argparse.Namespace, cfg: Config) -> int:
    """``import hourly``: exit 0 when imported (or a clean dry run), 1 otherwise."""
    from aqi_service.collect.history import run_history_import, to_json
    from aqi_service.storage import db, migrations, stations
    from aqi_service.web.app import ProgressBar, extra_station_configs

    if args.format != "cnemc":
        print("aqi-service: import hourly needs --format cnemc (the only layout so far)",
              file=sys.stderr)
        return 2

    async def main() -> int:
        extra = extra_station_configs(cfg)
        async with db.open_pool(cfg) as pool, pool.acquire() as conn:
            await migrations.migrate(conn)
            await stations.sync_stations(conn, cfg.stations, extra)
            known = {s["code"] for s in await stations.list_stations(conn)}
            report = await run_history_import(
                conn, args.file, known, cfg.city.code, [s.code for s in cfg.stations],
                cfg.aqi.hourly_2012, dry_run=args.dry_run, add_stations=args.add_stations,
                encoding=args.encoding, progress=ProgressBar(f"importing {args.file.name}",
                                                             "bytes"))
        if args.json:
            print(json.dumps(to_json(report), ensure_ascii=False, indent=2))
        else:
            for line in report.lines():
                print(line)
        if report.dry_run:
            return 0 if not report.error_count and not (report.unknown and
                                                        not args.add_stations) else 1
        return 0 if report.imported else 1

    return asyncio.run(main())
