"""``aqi-service aqi``: index JSON Lines (or CSV) of concentrations from stdin to stdout.

A line may be a whole real-time record as the national platform publishes it (every 1 h
value and moving average, CNEMC names): each scheme and report reads the keys it indexes,
and the other concentration keys are accepted and ignored, named in ``--detail`` as
``ignored_keys`` and in one note on stderr per run, so nobody is surprised that, say, the
24 h PM averages do not move an hourly AQI.
"""

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
from aqi_service.aqi.series import HOURLY_FIELDS
from aqi_service.errors import InputError

log = logging.getLogger(__name__)

NOT_MONITORED = "/"
"""A value of "/" means the pollutant is not monitored (as China's tables print it)."""
MISSING_TEXT = "NA"
"""A value of "NA" is missing, as in CNEMC's hourly archives."""
SYNONYMS = {"o3_1h": "o3"}
"""Other names of input keys (O3's 1 h value is ``o3_1h`` in some re-published data)."""
NATURAL_KEYS = frozenset(HOURLY_FIELDS) | frozenset(SYNONYMS)
"""Concentration keys of a CNEMC real-time record; those a report does not read are ignored."""
_ARCHIVE_TIME = "%Y-%m-%dT%H%M"
"""``timepoint`` in CNEMC's hourly archives: ``2026-03-01T0100``, Beijing time."""

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
            "(so2, no2, co, o3 (or o3_1h), pm10, pm2_5 and the *_24h, o3_8h, o3_24h, "
            "o3_8h_24h averages); µg/m³, CO mg/m³. A whole real-time record may be given: "
            "keys the scheme and report do not index are ignored (--detail lists them as "
            "ignored_keys; stderr names them once). A missing key, null, empty or \"NA\" is "
            "missing; \"/\" is not monitored. With --scheme auto each line carries \"time\" "
            "(ISO 8601, or \"timepoint\" as in CNEMC archives, 2026-03-01T0100; hour-ending "
            "for the hourly report, the natural day for the daily report; Asia/Shanghai if no "
            "offset): hours ending up to 2026-03-01 00:00 are HJ633-2012 (as the national "
            "platform published them), later ones HJ633-2026."
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


def _parse_time(text: Any, key: str = "time") -> datetime | date:
    if not isinstance(text, str):
        raise InputError(f"'{key}' must be an ISO 8601 string")
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        if key == "timepoint" and len(text) == 15:
            when = datetime.strptime(text, _ARCHIVE_TIME)
        else:
            when = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"'{key}': {text!r} is not an ISO 8601 date or time") from None
    return when if when.tzinfo else when.replace(tzinfo=SHANGHAI)


def _scheme_for(obj: dict[str, Any], fixed: Scheme | None, report: str) -> Scheme:
    if fixed is not None:
        return fixed
    key = "time" if "time" in obj or "timepoint" not in obj else "timepoint"
    if key not in obj:
        raise InputError("'time' is required with --scheme auto")
    when = _parse_time(obj[key], key)
    if report == "daily":
        try:
            day = when if not isinstance(when, datetime) else when.astimezone(SHANGHAI).date()
        except OverflowError:
            raise InputError(f"'time': {obj['time']!r} is out of range") from None
        return scheme_for_day(day)
    if not isinstance(when, datetime):
        raise InputError("'time' of an hourly value needs the hour (hour-ending)")
    return scheme_for_hour(when)


def _natural(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with synonyms under their input names (``o3_1h`` → ``o3``)."""
    for other, key in SYNONYMS.items():
        if other not in obj:
            continue
        if obj.get(key) is None:
            obj = {**obj, key: obj[other]}
        elif obj.get(other) is not None and obj[other] != obj[key]:
            raise InputError(f"'{other}' and '{key}' are the same value and differ")
    return obj


def ignored_keys(obj: dict[str, Any], scheme: Scheme, report: str) -> list[str]:
    """Concentration keys with a value in ``obj`` (not NA or "/") that ``scheme``'s ``report``
    does not read."""
    read = set(scheme.inputs(report))
    read |= {k for k, v in SYNONYMS.items() if v in read}
    return sorted(k for k in obj
                  if k in NATURAL_KEYS and k not in read
                  and obj[k] not in (None, "", MISSING_TEXT, NOT_MONITORED))


def index_object(obj: Any, fixed: Scheme | None, report: str, detail: bool,
                 ignored: dict[str, set[str]] | None = None) -> dict[str, Any]:
    """Index one input object; raises InputError with a clear message.

    ``ignored`` collects, per scheme id, the concentration keys the line gave but the scheme
    and report do not index.
    """
    if not isinstance(obj, dict):
        raise InputError(f"expected a JSON object, got {type(obj).__name__}")
    scheme = _scheme_for(obj, fixed, report)
    obj = _natural(obj)
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
        elif isinstance(value, str) and value.strip() in ("", MISSING_TEXT):
            continue
        elif value is not None:
            values[key] = value
    result = compute(values, scheme, report, not_monitored=not_monitored)
    skipped = ignored_keys(obj, scheme, report)
    if ignored is not None and skipped:
        ignored.setdefault(scheme.id, set()).update(skipped)
    out = result.to_dict(detail=detail)
    if detail:
        out["ignored_keys"] = skipped
    return out


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
    ignored: dict[str, set[str]] = {}
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
                out = index_object(obj, fixed, args.report, detail=False, ignored=ignored)
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
                out = index_object(obj, fixed, args.report, detail=args.detail,
                                   ignored=ignored)
            except InputError as exc:
                failed += 1
                log.warning("line %d: %s", number, exc)
                out = {"error": f"line {number}: {exc}"}
            stdout.write(json.dumps(out, ensure_ascii=False, default=_json_default) + "\n")
    stdout.flush()
    if ignored:
        named = "; ".join(f"{sid} {args.report}: {', '.join(sorted(keys))}"
                          for sid, keys in sorted(ignored.items()))
        print(f"aqi-service aqi: note: keys these schemes do not index were ignored "
              f"({named})", file=sys.stderr)
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
