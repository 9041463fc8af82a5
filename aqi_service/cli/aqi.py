"""``aqi-service aqi``: index JSON Lines (or CSV) of concentrations from stdin to stdout."""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import sys
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

from aqi_service.aqi import POLLUTANTS, Scheme, all_schemes, compute, get_scheme
from aqi_service.aqi.schemes import SHANGHAI, scheme_for_day, scheme_for_hour
from aqi_service.errors import InputError

log = logging.getLogger(__name__)

NOT_MONITORED = "/"
"""A value of "/" means the pollutant is not monitored (as China's tables print it)."""

CSV_RESULT_COLUMNS = (
    ["aqi", "level", "category", "category_en", "color", "primary_pollutants"]
    + [f"iaqi_{p}" for p in POLLUTANTS]
    + ["scheme", "beyond_index", "error"]
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the sub-command."""
    schemes = [s.id for s in all_schemes()]
    p = sub.add_parser(
        "aqi",
        help="compute AQI for concentrations read from stdin",
        description=(
            "Read one object of concentrations per line (JSON Lines, or CSV with a header) "
            "on stdin and write one result per line, in order. Keys are CNEMC names "
            "(so2, no2, co, o3, pm10, pm2_5 and the *_24h, o3_8h, o3_8h_24h averages); "
            "µg/m³, CO mg/m³. A missing key or null is missing; \"/\" is not monitored. "
            "With --scheme auto each line carries \"time\" (ISO 8601; hour-ending for the "
            "hourly report, the natural day for the daily report; Asia/Shanghai if no offset)."
        ),
    )
    p.add_argument("--scheme", default="auto", choices=[*schemes, "auto"],
                   help="index scheme, or auto to choose by each line's time (default: auto)")
    p.add_argument("--report", default="hourly", choices=["hourly", "daily"],
                   help="real-time (hourly) or daily report (default: hourly)")
    p.add_argument("--format", default="jsonl", choices=["jsonl", "csv"],
                   help="input and output format (default: jsonl)")
    p.add_argument("--detail", action="store_true",
                   help="add indexed concentrations, per-indicator IAQIs, exceeding "
                        "pollutants, missing pollutants and level texts to each result")
    p.set_defaults(handler=run)


def _parse_time(text: Any) -> datetime | date:
    if not isinstance(text, str):
        raise InputError("'time' must be an ISO 8601 string")
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"'time': {text!r} is not an ISO 8601 date or time") from None
    return when if when.tzinfo else when.replace(tzinfo=SHANGHAI)


def _scheme_for(obj: dict[str, Any], fixed: Scheme | None, report: str) -> Scheme:
    if fixed is not None:
        return fixed
    if "time" not in obj:
        raise InputError("'time' is required with --scheme auto")
    when = _parse_time(obj["time"])
    if report == "daily":
        try:
            day = when if not isinstance(when, datetime) else when.astimezone(SHANGHAI).date()
        except OverflowError:
            raise InputError(f"'time': {obj['time']!r} is out of range") from None
        return scheme_for_day(day)
    if not isinstance(when, datetime):
        raise InputError("'time' of an hourly value needs the hour (hour-ending)")
    return scheme_for_hour(when)


def index_object(obj: Any, fixed: Scheme | None, report: str, detail: bool) -> dict[str, Any]:
    """Index one input object; raises InputError with a clear message."""
    if not isinstance(obj, dict):
        raise InputError(f"expected a JSON object, got {type(obj).__name__}")
    scheme = _scheme_for(obj, fixed, report)
    not_monitored = set()
    listed = obj.get("not_monitored") or []
    if not isinstance(listed, list) or not all(isinstance(x, str) for x in listed):
        raise InputError("'not_monitored' must be a list of pollutant names")
    for name in listed:
        if name not in POLLUTANTS:
            raise InputError(f"'not_monitored': unknown pollutant {name!r}")
        not_monitored.add(name)
    values: dict[str, Any] = {}
    pollutant_of = {i.input: i.pollutant for i in scheme.report(report)}
    pollutant_of.update(
        {i.fallback_input: i.pollutant for i in scheme.report(report) if i.fallback_input})
    for key in scheme.inputs(report):
        value = obj.get(key)
        if value == NOT_MONITORED:
            not_monitored.add(pollutant_of[key])
        elif isinstance(value, str) and value.strip() == "":
            continue
        elif value is not None:
            values[key] = value
    result = compute(values, scheme, report, not_monitored=not_monitored)
    return result.to_dict(detail=detail)


def _jsonl(stdin: IO[bytes]) -> Iterator[tuple[int, Any]]:
    for number, raw in enumerate(stdin, start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, InputError(f"not UTF-8 text (byte {exc.start + 1})")
            continue
        if not line.strip():
            continue
        try:
            yield number, json.loads(line, parse_float=Decimal, parse_int=Decimal)
        except json.JSONDecodeError as exc:
            yield number, InputError(f"not valid JSON: {exc}")
        except (RecursionError, ValueError):
            yield number, InputError("not valid JSON: nested too deeply or a number too long")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)


def run(args: argparse.Namespace, stdin: IO[bytes] | None = None,
        stdout: IO[str] | None = None) -> int:
    """Process stdin; exit status 1 if any line failed, 0 otherwise."""
    stdin = stdin or sys.stdin.buffer
    if stdout is None:
        sys.stdout.reconfigure(encoding="utf-8")  # type: ignore[union-attr]
        stdout = sys.stdout
    fixed = None if args.scheme == "auto" else get_scheme(args.scheme)
    failed = total = 0
    if args.format == "csv":
        text = io.TextIOWrapper(stdin, encoding="utf-8-sig", errors="replace", newline="")
        reader = csv.DictReader(text)
        fields = list(reader.fieldnames or [])
        writer = csv.DictWriter(stdout, fieldnames=fields + [c for c in CSV_RESULT_COLUMNS
                                                             if c not in fields],
                                extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for number, row in enumerate(reader, start=2):
            total += 1
            obj: dict[str, Any] = {k: (v if v != "" else None) for k, v in row.items() if k}
            try:
                out = index_object(obj, fixed, args.report, detail=False)
                flat = {**row, **_flatten(out)}
            except InputError as exc:
                failed += 1
                log.warning("line %d: %s", number, exc)
                flat = {**row, "error": f"line {number}: {exc}"}
            writer.writerow(flat)
    else:
        for number, obj in _jsonl(stdin):
            total += 1
            try:
                if isinstance(obj, InputError):
                    raise obj
                out = index_object(obj, fixed, args.report, detail=args.detail)
            except InputError as exc:
                failed += 1
                log.warning("line %d: %s", number, exc)
                out = {"error": f"line {number}: {exc}"}
            stdout.write(json.dumps(out, ensure_ascii=False, default=_json_default) + "\n")
    stdout.flush()
    if failed:
        print(f"aqi-service aqi: {failed} of {total} lines failed", file=sys.stderr)
    return 1 if failed else 0


def _flatten(out: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in out.items() if k not in ("iaqi", "primary_pollutants")}
    flat["primary_pollutants"] = ";".join(out["primary_pollutants"])
    flat["beyond_index"] = "true" if out["beyond_index"] else "false"
    for p, v in out["iaqi"].items():
        flat[f"iaqi_{p}"] = v
    return {k: ("" if v is None else v) for k, v in flat.items()}
