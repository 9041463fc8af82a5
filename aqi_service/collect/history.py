"""History import: archived hourly station data in CNEMC's archive layout.

``aqi-service import hourly FILE.csv --format cnemc`` reads the layout of CNEMC's hourly
archive (``timepoint`` hour-ending Beijing time like ``2026-03-01T0100``; ``NA`` or empty:
missing; ``/``: not in the monitoring plan). The 1 h values are validated exactly as a
collection validates a feed (``validate.parse_hourly`` with the ``cnemc`` mapping), stored
as observations with source ``import`` (``observations.ingest``: idempotent, a changed
value logged as a revision), and their records derived as the collectors derive them
(the durable derive marks, the scheme by hour, the configured HJ 633-2012 reading).

The file is read twice, as a stream, in chunks of rows: first to check every row (bad rows
are reported by line and column; stations outside the configuration are refused, or added
with ``add_stations``), then, if everything is good, to import. Memory stays bounded by a
chunk whatever the file's size. After each chunk the derived records of its rows are read
back and compared with what the file says was published: the AQI and every moving
average (the reconciliation). A file is expected in time order, as CNEMC's archive is: a
record is final once the hours before it are stored.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from aqi_service.aqi.schemes import POLLUTANTS, SHANGHAI
from aqi_service.collect import derive
from aqi_service.collect.file_plans import FilePlans, PlanCheck, check_plans, store_plans
from aqi_service.collect.validate import parse_hourly
from aqi_service.config import HTTP_PRESETS, HttpSource
from aqi_service.storage import observations
from aqi_service.storage import stations as station_store

CNEMC_HEADER = (
    "timepoint", "stationcode", "longitude", "latitude", "area", "positionname",
    "primarypollutant", "aqi", "pm10", "pm10_24h", "pm2_5", "pm2_5_24h", "o3", "o3_24h",
    "o3_8h", "o3_8h_24h", "no2", "no2_24h", "so2", "so2_24h", "co", "co_24h",
)
FORMATS = ("cnemc",)
MOVING_AVERAGES = ("so2_24h", "no2_24h", "co_24h", "o3_24h", "o3_8h", "o3_8h_24h",
                   "pm10_24h", "pm2_5_24h")
"""The published averages of the layout (CNEMC names), each a number, NA or ``/``."""
COMPARED = {"so2_24h": "so2_24h", "no2_24h": "no2_24h", "co_24h": "co_24h",
            "pm10_24h": "pm10_24h", "pm2_5_24h": "pm2_5_24h", "o3_8h_24h": "o3_8h"}
"""The published averages the reconciliation compares: file column → the stored field of the
same meaning. The archive defines its O3 columns (HeQinWill/CNEMC's README): ``o3_8h_24h`` is
the 8 h moving mean within the natural day (08:00 to 24:00), stored as ``o3_8h``; ``o3_8h``
is the largest 8 h mean of the natural day so far and ``o3_24h`` the 1 h value (equal to
``o3`` in the 2026 files), which no stored field holds."""
WINDOW_HOURS = {name: 8 if name == "o3_8h_24h" else 24 for name in COMPARED}
"""Hours of 1 h values behind each compared average."""
MISSING = ("NA", "", "—", "-", "/")
CHUNK_ROWS = 20_000
"""File rows per chunk (about 6 observations each)."""
ERRORS_LISTED = 50
DISAGREEMENTS_LISTED = 20
SOURCE = "import"
REASON = "history import: value revised by the imported file"
MAPPING = HttpSource(url="file:", **HTTP_PRESETS["cnemc"])
_TIMEPOINT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:?00$")
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RowError:
    """A bad row: where, and why."""

    line: int
    column: str
    reason: str


@dataclass(slots=True)
class Tally:
    """Published values of one kind and how many the derived records reproduce."""

    published: int = 0
    derivable: int = 0
    """Published values that can be compared: every AQI, and the averages for which the
    derived record has a value (an average needs the hours before it stored: the first
    hours of a file have none)."""
    reproduced: int = 0
    gappy: int = 0
    """Averages compared apart: their window lacks a valid 1 h value of the pollutant in
    the file and the store, so the published one may average values the file does not show
    (the platform's own data); counted here, not in ``derivable``."""
    gappy_reproduced: int = 0

    def share(self) -> float | None:
        """Reproduced among the derivable (None: nothing to compare)."""
        return self.reproduced / self.derivable if self.derivable else None


@dataclass(slots=True)
class HistoryReport:
    """What an import found, did and reproduced."""

    file: str
    rows: int = 0
    stations: set[str] = field(default_factory=set)
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    unknown: dict[str, tuple[str, float, float]] = field(default_factory=dict)
    """Stations not in the configuration: code → (name, lat, lon) from the file."""
    added: list[str] = field(default_factory=list)
    dry_run: bool = False
    imported: bool = False
    inserted: int = 0
    updated: int = 0
    revisions: int = 0
    aqi: Tally = field(default_factory=Tally)
    averages: dict[str, Tally] = field(default_factory=lambda: {f: Tally()
                                                                for f in COMPARED})
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    file_plans: FilePlans = field(default_factory=FilePlans)
    """The monitoring plans the file's ``/`` cells show (see ``file_plans``)."""
    plans: PlanCheck = field(default_factory=PlanCheck)

    def add_error(self, line: int, column: str, reason: str) -> None:
        """Count a bad row (the first ERRORS_LISTED are kept)."""
        self.error_count += 1
        if len(self.errors) < ERRORS_LISTED:
            self.errors.append(RowError(line, column, reason))

    def averages_total(self) -> Tally:
        """Every moving average together."""
        total = Tally()
        for t in self.averages.values():
            total.published += t.published
            total.derivable += t.derivable
            total.reproduced += t.reproduced
            total.gappy += t.gappy
            total.gappy_reproduced += t.gappy_reproduced
        return total

    def lines(self) -> list[str]:
        """The report for the console."""
        out = [f"{self.file}: {self.rows} rows, {len(self.stations)} stations"]
        for e in self.errors:
            out.append(f"line {e.line}, column {e.column}: {e.reason}")
        if self.error_count > len(self.errors):
            out.append(f"… and {self.error_count - len(self.errors)} more bad rows")
        if self.unknown and not self.added:
            out.append("stations not in the configuration (use --add-stations to add them "
                       "as stations outside the city aggregate): " + ", ".join(
                           f"{c} ({v[0]})" for c, v in sorted(self.unknown.items())))
        if self.added:
            out.append(f"added {len(self.added)} stations (not city members): "
                       + ", ".join(self.added))
        out.extend(self.plans.lines())
        if self.dry_run:
            out.append("dry run: nothing imported" + (
                "" if self.error_count or (self.unknown and not self.added)
                else "; the file can be imported"))
            return out
        if not self.imported:
            out.append("nothing imported")
            return out
        out.append(f"observations: {self.inserted} new, {self.updated} revised; "
                   f"{self.revisions} record field revisions")
        out.append("reconciliation with the published values in the file:")
        out.append(f"  AQI: {_fmt(self.aqi)}")
        total = self.averages_total()
        out.append(f"  moving averages, windows with every 1 h value: {_fmt(total)}")
        for name, t in self.averages.items():
            if t.published:
                out.append(f"    {name}: {_fmt(t)}")
        if total.gappy:
            out.append(f"  moving averages, windows missing a 1 h value the platform may hold: "
                       f"{total.gappy_reproduced} of {total.gappy} reproduced")
        if self.disagreements:
            out.append("  first disagreements (line, station, hour, field: published / "
                       "derived):")
            for d in self.disagreements:
                out.append(f"    line {d['line']}, {d['station']} {d['hour']} {d['field']}: "
                           f"{d['published']} / {d['derived']}")
        return out


def _fmt(t: Tally) -> str:
    share = t.share()
    pct = "—" if share is None else f"{100 * share:.2f} %"
    return (f"{t.reproduced} of {t.derivable} reproduced ({pct}); {t.published} published, "
            f"{t.published - t.derivable - t.gappy} without a derived value")


@dataclass(slots=True)
class _Row:
    line: int
    station: str
    hour: datetime
    values: dict[str, str]


def _open(path: Path, encoding: str) -> Iterator[tuple[int, list[str]]]:
    with path.open(encoding=encoding, newline="") as fh:
        reader = csv.reader(fh)
        for row in reader:
            yield reader.line_num, row


def _chunks(path: Path, encoding: str, report: HistoryReport, header_check: bool,
            progress: Callable[[int, int], None] | None) -> Iterator[list[_Row]]:
    """The file's good rows in chunks; bad rows (and a bad header) go to the report."""
    size = max(path.stat().st_size, 1)
    rows = _open(path, encoding)
    try:
        _, header = next(rows)
    except StopIteration:
        report.add_error(1, "-", "empty file")
        return
    header = [h.strip().lower() for h in header]
    missing = [h for h in CNEMC_HEADER if h not in header]
    if missing:
        if header_check:
            report.add_error(1, ",".join(missing), "missing columns (the CNEMC layout is "
                             + ",".join(CNEMC_HEADER) + ")")
        return
    col = {h: header.index(h) for h in CNEMC_HEADER}
    chunk: list[_Row] = []
    done_bytes = 0
    for line, raw in rows:
        done_bytes += sum(len(c) for c in raw) + len(raw)
        if not raw or raw == [""]:
            continue
        report.rows += 1
        if len(raw) != len(header):
            report.add_error(line, "-", f"{len(raw)} fields, the header has {len(header)}")
            continue
        rec = {h: raw[i].strip() for h, i in col.items()}
        row = _row(line, rec, report)
        if row is not None:
            chunk.append(row)
        if len(chunk) >= CHUNK_ROWS:
            yield chunk
            chunk = []
            if progress:
                progress(min(done_bytes, size), size)
    if chunk:
        yield chunk
    if progress:
        progress(size, size)


def _row(line: int, rec: dict[str, str], report: HistoryReport) -> _Row | None:
    code, tp = rec["stationcode"], rec["timepoint"]
    if not _CODE.match(code):
        report.add_error(line, "stationcode", f"{code!r} is not a station code")
        return None
    if not _TIMEPOINT.match(tp):
        report.add_error(line, "timepoint", f"{tp!r} is not a CNEMC hour like "
                                            "2026-03-01T0100")
        return None
    try:
        hour = datetime.fromisoformat(tp).replace(tzinfo=SHANGHAI).astimezone(UTC)
    except ValueError:
        report.add_error(line, "timepoint", f"{tp!r} is not a date and hour")
        return None
    aqi = rec["aqi"]
    if aqi not in MISSING and not (aqi.isdigit() and int(aqi) <= 500):
        report.add_error(line, "aqi", f"{aqi!r} is not an AQI (0-500, NA)")
        return None
    for name in MOVING_AVERAGES:
        if not _number_or_missing(rec[name]):
            report.add_error(line, name, f"{rec[name]!r} is not a number, NA or /")
            return None
    return _Row(line, code, hour, rec)


def _number_or_missing(text: str) -> bool:
    if text in MISSING:
        return True
    try:
        return float(text) >= 0
    except ValueError:
        return False


def _parse(chunk: Sequence[_Row], report: HistoryReport, now: datetime,
           ) -> dict[str, list[observations.Column]]:
    """Validate the chunk's 1 h values as a collection would; columns per station."""
    by_station: dict[str, list[_Row]] = {}
    for row in chunk:
        by_station.setdefault(row.station, []).append(row)
    out: dict[str, list[observations.Column]] = {}
    for station, rows in by_station.items():
        report.stations.add(station)
        lines = {r.hour: r.line for r in rows}
        records = [{"timepoint": r.hour.astimezone(SHANGHAI).isoformat(),
                    **{p: r.values[p] for p in POLLUTANTS}} for r in rows]
        parsed = parse_hourly({"records": records}, station, MAPPING, EPOCH, now, SHANGHAI,
                              SOURCE)
        for _st, pol, hour, raw, _flag, reason in parsed.rejected:
            report.add_error(lines.get(hour, 0), pol or "timepoint",
                             f"{raw!r}: {reason.replace('_', ' ')}")
        out[station] = parsed.columns
    return out


async def run_history_import(
    conn: asyncpg.Connection, path: Path, known: set[str], city_code: str,
    city_members: Sequence[str], variant: str, *, dry_run: bool = False,
    add_stations: bool = False, encoding: str = "utf-8-sig", now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> HistoryReport:
    """Check the whole file, then (unless a dry run, bad rows or refused stations) import
    it chunk by chunk, deriving and reconciling as it goes."""
    now = now or datetime.now(UTC)
    report = HistoryReport(str(path), dry_run=dry_run)
    for chunk in _chunks(path, encoding, report, True, None):
        _parse(chunk, report, now)
        for row in chunk:
            report.file_plans.see(row.station, row.line, row.values)
            if row.station not in known and row.station not in report.unknown:
                report.unknown[row.station] = _describe(row, report)
    report.plans = await check_plans(conn, report.file_plans,
                                     set(report.unknown) if add_stations else set(),
                                     report.add_error)
    if dry_run or report.error_count or (report.unknown and not add_stations):
        return report
    if report.unknown:
        await station_store.add_imported(
            conn, [(c, *v) for c, v in sorted(report.unknown.items())], report.plans.added)
        report.added = sorted(report.unknown)
    await store_plans(conn, report.plans)
    counted = HistoryReport(str(path))  # the second pass re-counts rows and stations
    for chunk in _chunks(path, encoding, counted, False, progress):
        by_station = _parse(chunk, counted, now)
        await _import_chunk(conn, by_station, report, city_code, city_members, variant)
        await _reconcile(conn, chunk, report)
    report.imported = True
    return report


def _describe(row: _Row, report: HistoryReport) -> tuple[str, float, float]:
    """(name, lat, lon) of a station from its first row."""
    v = row.values
    try:
        lat, lon = float(v["latitude"]), float(v["longitude"])
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError
    except ValueError:
        report.add_error(row.line, "latitude", f"{v['latitude']!r}, {v['longitude']!r} are "
                                               "not coordinates")
        lat = lon = 0.0
    name = v["positionname"] or row.station
    return (f"{v['area']}{name}" if v["area"] and not name.startswith(v["area"]) else name,
            lat, lon)


async def _import_chunk(conn: asyncpg.Connection,
                        by_station: dict[str, list[observations.Column]],
                        report: HistoryReport, city_code: str, city_members: Sequence[str],
                        variant: str) -> None:
    rows = {s: r for s, r in by_station.items() if r}
    if not rows:
        return
    newest = {s: c[1] for s, c in (await observations.cursors(conn)).items()}
    res = await observations.ingest(conn, rows, newest, None, REASON)
    report.inserted += res.inserted
    report.updated += res.updated
    latest = max(max(c.hours) for cs in rows.values() for c in cs)
    reason = "history import: records of imported hours"
    derived = await derive.derive_marked_stations(conn, latest, reason, variant=variant)
    derived = await derive.derive_marked_city(conn, latest, city_code, city_members, reason,
                                              result=derived, variant=variant)
    report.revisions += derived.revisions


SELECT_RECORDS = """
SELECT station_code, hour_end, aqi, {fields} FROM station_hourly
WHERE station_code = ANY($1::text[]) AND hour_end >= $2 AND hour_end <= $3
"""
SELECT_HOURS = """
SELECT station_code, pollutant, hour_end, valid FROM observations
WHERE station_code = ANY($1::text[]) AND hour_end >= $2 AND hour_end <= $3
"""


async def _reconcile(conn: asyncpg.Connection, chunk: Sequence[_Row],
                     report: HistoryReport) -> None:
    """Compare the chunk's published AQIs and averages with the derived records, at the
    precision the service publishes them (``/api/v1/stations/{code}/hourly``). An average is
    compared only where the store holds every hour of its window (a row of this file or a
    stored observation): a window reaching before the stored hours has fewer hours than the
    published one, so its value, even when valid, is not the published one's."""
    from aqi_service.web.snapshot import present

    if not chunk:
        return
    first = min(r.hour for r in chunk)
    last = max(r.hour for r in chunk)
    codes = sorted({r.station for r in chunk})
    stored = {(r["station_code"], r["hour_end"]): r for r in await conn.fetch(
        SELECT_RECORDS.format(fields=", ".join(COMPARED.values())), codes, first, last)}
    hours = await conn.fetch(
        SELECT_HOURS, codes, first - timedelta(hours=max(WINDOW_HOURS.values())), last)
    known = {(r["station_code"], r["hour_end"]) for r in hours}
    known |= {(r.station, r.hour) for r in chunk}
    valid = {(r["station_code"], r["pollutant"], r["hour_end"]) for r in hours if r["valid"]}
    for row in chunk:
        rec = stored.get((row.station, row.hour))
        published = row.values["aqi"]
        if published not in MISSING:
            derived = rec["aqi"] if rec else None
            _tally(report, report.aqi, row, "aqi", int(published), derived)
        for name, stored_as in COMPARED.items():
            text = row.values[name]
            if text in MISSING:
                continue
            value = present(name, float(text)) if name.startswith("co") else int(
                float(text))
            window = [row.hour - timedelta(hours=k) for k in range(WINDOW_HOURS[name])]
            whole = all((row.station, h) in known for h in window)
            derived = (present(stored_as, rec[stored_as])
                       if whole and rec and rec[stored_as] is not None else None)
            pollutant = name.split("_")[0] if not name.startswith("pm2_5") else "pm2_5"
            if whole and not all((row.station, pollutant, h) in valid for h in window):
                tally = report.averages[name]
                tally.published += 1
                tally.gappy += 1
                tally.gappy_reproduced += derived == value
                continue
            _tally(report, report.averages[name], row, name, value, derived)


def _tally(report: HistoryReport, tally: Tally, row: _Row, name: str, published: Any,
           derived: Any) -> None:
    """Count one published value. An average the store cannot derive (its window's hours
    are not all stored) is left out; an AQI needs no history, so a withheld one counts
    as a disagreement."""
    tally.published += 1
    if derived is None and name != "aqi":
        return
    tally.derivable += 1
    if derived == published:
        tally.reproduced += 1
    elif len(report.disagreements) < DISAGREEMENTS_LISTED:
        report.disagreements.append({
            "line": row.line, "station": row.station,
            "hour": row.hour.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M"),
            "field": name, "published": published, "derived": derived})


def to_json(report: HistoryReport) -> dict[str, Any]:
    """The report as plain data (``--json``)."""
    def tally(t: Tally) -> dict[str, Any]:
        return {"published": t.published, "derivable": t.derivable,
                "reproduced": t.reproduced, "gappy_windows": t.gappy,
                "gappy_reproduced": t.gappy_reproduced}
    return {
        "file": report.file, "rows": report.rows, "stations": sorted(report.stations),
        "dry_run": report.dry_run, "imported": report.imported,
        "errors": [{"line": e.line, "column": e.column, "reason": e.reason}
                   for e in report.errors], "error_count": report.error_count,
        "unknown_stations": sorted(report.unknown), "added_stations": report.added,
        "observations": {"inserted": report.inserted, "updated": report.updated},
        "record_revisions": report.revisions,
        "monitoring_plans": report.plans.to_json(),
        "reconciliation": {"aqi": tally(report.aqi),
                           "moving_averages": tally(report.averages_total()),
                           "by_average": {k: tally(v) for k, v in report.averages.items()},
                           "disagreements": report.disagreements},
    }

