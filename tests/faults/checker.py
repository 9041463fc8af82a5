"""The end state of a fault scenario, checked against the simulator's truth.

One function, ``check_end_state``, reads what the service stored and compares it with
what it should hold:

- **Truth** comes from the simulator, not from the service: a simulator with the same seed
  and fault rates, its clock at the check time, gives every record the loggers published
  (so hours never published — missing, silent, still late, mislabelled — are not
  expected); the same seed without faults gives the clean values; with only the revision
  rate, the revised ones. A published value is *true* when its flag is N and it is the
  clean or the revised value; anything else (an out-of-range or negative replacement, a
  flagged value, a value at a mislabelled hour) must not be stored as valid.
- **Completeness**: every published station-hour has its observations and its station
  record, every true value is stored valid, every hour a city member has a record has a
  city record; nothing is stored twice.
- **Derived records**: the stored observations are copied into a scratch database and
  every record is recomputed there with the project's own derive code
  (``derive.derive_stations`` and ``derive.derive_city``); stored and recomputed records
  must agree field by field (times of publication and revision counters aside).
- **Runs**: none is left ``running``.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from aqi_service.collect import derive
from aqi_service.config import Config
from aqi_service.simulator import FaultRates, SimStation, Simulator
from aqi_service.simulator.series import POLLUTANTS
from aqi_service.storage import migrations, stations
from aqi_service.storage.db import _init_connection
from aqi_service.storage.observations import ensure_partitions

HOUR = timedelta(hours=1)
METADATA = {"first_published_at", "computed_at", "revision", "updated_at", "received_at"}
RECORD_TABLES = {"station_hourly": ("station_code", "hour_end"),
                 "station_daily": ("station_code", "day"),
                 "city_hourly": ("area_code", "hour_end"),
                 "city_daily": ("area_code", "day")}
OBSERVATION_COLUMNS = ("station_code", "pollutant", "hour_end", "value", "flag", "valid",
                       "source", "received_at", "updated_at", "revision")
EXAMPLES = 5
"""Examples listed per kind of finding."""


@dataclass
class Verdict:
    """What the check found; ``ok`` only when every count is zero."""

    window: tuple[datetime, datetime] | None = None
    expected_station_hours: int = 0
    lost_station_hours: int = 0
    lost_values: int = 0
    lost_city_hours: int = 0
    duplicated: int = 0
    false_values: int = 0
    derived_mismatches: int = 0
    runs_running: int = 0
    findings: list[str] = field(default_factory=list)

    @property
    def hours_lost(self) -> int:
        """Station-hours and city-hours missing."""
        return self.lost_station_hours + self.lost_city_hours

    @property
    def ok(self) -> bool:
        """Nothing lost, duplicated, false, stale or left running."""
        return not (self.hours_lost or self.lost_values or self.duplicated
                    or self.false_values or self.derived_mismatches or self.runs_running)

    def note(self, kind: str, examples: Sequence[Any], total: int | None = None) -> None:
        """Record a finding with a few examples."""
        total = len(examples) if total is None else total
        if total:
            shown = ", ".join(str(e) for e in list(examples)[:EXAMPLES])
            self.findings.append(f"{kind}: {total} (e.g. {shown})")

    def summary(self) -> str:
        """One paragraph for a test failure or a benchmark line."""
        head = (f"window {self.window[0].isoformat()}..{self.window[1].isoformat()}: "
                if self.window else "")
        counts = (f"{self.expected_station_hours} station-hours expected, "
                  f"{self.lost_station_hours} lost, {self.lost_city_hours} city-hours lost, "
                  f"{self.lost_values} true values lost, {self.duplicated} duplicated, "
                  f"{self.false_values} false values stored, {self.derived_mismatches} "
                  f"derived records differing from a recomputation, {self.runs_running} runs "
                  "left running")
        return head + counts + "".join(f"\n  - {f}" for f in self.findings)


class _FixedClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _sim_stations(cfg: Config) -> list[SimStation]:
    return [SimStation(s.code, s.lat, s.lon, s.name_zh) for s in cfg.stations]


def _dec(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    return Decimal(str(value))


@dataclass
class _Published:
    """What the loggers published in the window: true values and what must not be valid."""

    hours: dict[str, set[datetime]] = field(default_factory=dict)
    true_values: dict[tuple[str, str, datetime], set[Decimal]] = field(default_factory=dict)
    untrue: set[tuple[str, str, datetime]] = field(default_factory=set)
    clean: dict[tuple[str, str, datetime], Decimal] = field(default_factory=dict)


def _label(text: Any) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    if when.tzinfo is None or (when.minute, when.second, when.microsecond) != (0, 0, 0):
        return None
    return when.astimezone(UTC)


def published(cfg: Config, seed: int, rates: FaultRates, first: datetime, last: datetime,
              at: datetime) -> _Published:
    """The loggers' records of hours in (first, last] as published at ``at``."""
    sims = _sim_stations(cfg)
    faulty = Simulator(sims, seed=seed, clock=_FixedClock(at), rates=rates)
    revised = Simulator(sims, seed=seed, clock=_FixedClock(at),
                        rates=FaultRates(revised_value=rates.revised_value))
    clean = Simulator(sims, seed=seed, clock=_FixedClock(at))
    out = _Published()
    for st in sims:
        code = st.code
        values = clean.values(code, first + HOUR, last)
        for k in range(int((last - first) / HOUR)):
            hour = first + (k + 1) * HOUR
            for p in POLLUTANTS:
                out.clean[(code, p, hour)] = Decimal(str(values[p][k]))
        revised_at = {}
        for row in revised.hourly_rows(code, first, last):
            hour = _label(row[0])
            if hour is not None:
                revised_at[hour] = row
        hours = out.hours.setdefault(code, set())
        for row in faulty.hourly_rows(code, first, last):
            hour = _label(row[0])
            if hour is None or not (first < hour <= last):
                continue  # a mislabelled record: no hour to expect
            hours.add(hour)
            for i, p in enumerate(POLLUTANTS):
                value, flag = row[1 + 2 * i], row[2 + 2 * i]
                key = (code, p, hour)
                truths = {out.clean[key]}
                if hour in revised_at:
                    truths.add(Decimal(str(revised_at[hour][1 + 2 * i])))
                if flag == "N" and _dec(value) in truths:
                    out.true_values[key] = truths
                else:
                    out.untrue.add(key)
    return out


async def _rows(conn: asyncpg.Connection, sql: str, *args: Any) -> list[asyncpg.Record]:
    return list(await conn.fetch(sql, *args))


def _with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


async def recompute(admin_dsn: str, cfg: Config, observations: Sequence[asyncpg.Record],
                    first: datetime, last: datetime, latest_hour: datetime,
                    ) -> dict[str, dict[tuple[Any, Any], dict[str, Any]]]:
    """Every derived record recomputed from ``observations`` in a scratch database."""
    name = f"aqi_fcheck_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        conn = await asyncpg.connect(_with_database(admin_dsn, name))
        try:
            await _init_connection(conn)
            await migrations.migrate(conn)
            await stations.sync_stations(conn, cfg.stations)
            await ensure_partitions(conn, first - 2 * 24 * HOUR, last + 2 * 24 * HOUR)
            await conn.copy_records_to_table(
                "observations", records=[tuple(r) for r in observations],
                columns=OBSERVATION_COLUMNS)
            changed: dict[str, set[datetime]] = {}
            for r in observations:
                changed.setdefault(r["station_code"], set()).add(r["hour_end"])
            if changed:
                now = datetime.now(UTC)
                await derive.derive_stations(conn, changed, latest_hour, "recomputation",
                                             None, now)
                await derive.derive_city(conn, changed, latest_hour, cfg.city.code,
                                         [s.code for s in cfg.stations], "recomputation",
                                         None, now)
            return {t: await _records(conn, t) for t in RECORD_TABLES}
        finally:
            await conn.close()
    finally:
        admin = await asyncpg.connect(admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def _records(conn: asyncpg.Connection, table: str) -> dict[tuple[Any, Any], dict[str, Any]]:
    key = RECORD_TABLES[table]
    out = {}
    for r in await conn.fetch(f"SELECT * FROM {table}"):
        rec = {k: v for k, v in dict(r).items() if k not in METADATA}
        out[(rec[key[0]], rec[key[1]])] = rec
    return out


async def check_end_state(
    db_dsn: str, admin_dsn: str, cfg: Config, *, seed: int, rates: FaultRates,
    backfill_days: int, last_hour: datetime, at: datetime,
) -> Verdict:
    """Compare the database at ``db_dsn`` with the truth up to ``last_hour`` (see module)."""
    v = Verdict()
    conn = await asyncpg.connect(db_dsn)
    try:
        await _init_connection(conn)
        # The back-fill window ends at the first run that succeeded (a start-up that
        # failed is retried later, and its window moves on with the clock).
        first_target = await conn.fetchval(
            "SELECT coalesce((SELECT target_hour FROM collection_runs WHERE status IN "
            "('ok', 'partial') ORDER BY id LIMIT 1), (SELECT min(target_hour) FROM "
            "collection_runs))")
        running = await _rows(conn, "SELECT id, trigger, target_hour, started_at, instance "
                                    "FROM collection_runs WHERE status = 'running'")
        v.runs_running = len(running)
        v.note("runs left running", [f"#{r['id']} {r['trigger']} for {r['target_hour']} "
                                     f"started {r['started_at']} by {r['instance']}"
                                     for r in running])
        if first_target is None:
            v.findings.append("no collection run at all")
            v.lost_station_hours = 1
            return v
        first = first_target - backfill_days * 24 * HOUR
        v.window = (first, last_hour)
        truth = published(cfg, seed, rates, first, last_hour, at)
        obs = await _rows(conn, f"SELECT {', '.join(OBSERVATION_COLUMNS)} FROM observations")
        dup = await _rows(conn, """
            SELECT 'observations' AS t, count(*) AS n FROM (SELECT 1 FROM observations
              GROUP BY station_code, pollutant, hour_end HAVING count(*) > 1) d
            UNION ALL SELECT 'station_hourly', count(*) FROM (SELECT 1 FROM station_hourly
              GROUP BY station_code, hour_end HAVING count(*) > 1) d
            UNION ALL SELECT 'city_hourly', count(*) FROM (SELECT 1 FROM city_hourly
              GROUP BY area_code, hour_end HAVING count(*) > 1) d""")
        stored = {t: await _records(conn, t) for t in RECORD_TABLES}
        latest = await conn.fetchval(
            "SELECT max(target_hour) FROM collection_runs WHERE status IN ('ok', 'partial')")
    finally:
        await conn.close()

    v.duplicated = sum(int(r["n"]) for r in dup)
    v.note("keys stored more than once", [f"{r['t']}: {r['n']}" for r in dup if r["n"]],
           v.duplicated)
    by_key = {(r["station_code"], r["pollutant"], r["hour_end"]): r for r in obs}
    obs_hours = Counter((r["station_code"], r["hour_end"]) for r in obs)

    lost_hours = [(code, h) for code, hours in truth.hours.items() for h in sorted(hours)
                  if (code, h) not in stored["station_hourly"] or (code, h) not in obs_hours]
    v.expected_station_hours = sum(len(h) for h in truth.hours.values())
    v.lost_station_hours = len(lost_hours)
    v.note("station-hours published but without observations or record",
           [f"{c} {h.isoformat()}" for c, h in lost_hours])

    lost_values = [k for k, truths in truth.true_values.items()
                   if not (k in by_key and by_key[k]["valid"]
                           and by_key[k]["value"] in truths)]
    v.lost_values = len(lost_values)
    v.note("true values not stored valid", [f"{c} {p} {h.isoformat()}"
                                            for c, p, h in lost_values])

    false = []
    for key, r in by_key.items():
        if not r["valid"]:
            continue
        if key in truth.untrue:
            false.append(f"{key[0]} {key[1]} {key[2].isoformat()} = {r['value']} (falsified)")
        elif key in truth.true_values:
            if r["value"] not in truth.true_values[key]:
                false.append(f"{key[0]} {key[1]} {key[2].isoformat()} = {r['value']}")
        elif key in truth.clean and r["value"] != truth.clean[key]:
            false.append(f"{key[0]} {key[1]} {key[2].isoformat()} = {r['value']} "
                         f"(clean {truth.clean[key]})")
    v.false_values = len(false)
    v.note("values stored valid that the loggers never truly measured", false)

    members = {s.code for s in cfg.stations}
    city_expected = sorted({h for (code, h) in stored["station_hourly"]
                            if code in members and first < h <= last_hour})
    lost_city = [h for h in city_expected if (cfg.city.code, h) not in stored["city_hourly"]]
    v.lost_city_hours = len(lost_city)
    v.note("city-hours missing", [h.isoformat() for h in lost_city])

    fresh = await recompute(admin_dsn, cfg, obs, first, last_hour, latest or last_hour)
    # A day's records are due once its daily job has run (00:40 the next day); before,
    # a station whose last hour came late may not have one yet.
    daily_h, daily_m = (int(x) for x in cfg.collection.daily_at.split(":"))
    job_delay = timedelta(hours=daily_h, minutes=daily_m)

    def due(table: str, key: tuple[Any, Any]) -> bool:
        return "daily" not in table or derive.day_bounds(key[1])[1] + job_delay <= at

    diffs = []
    for table, records in fresh.items():
        have = stored[table]
        records = {k: r for k, r in records.items() if due(table, k)}
        have = {k: r for k, r in have.items() if due(table, k)}
        for key, rec in records.items():
            got = have.get(key)
            if got is None:
                diffs.append(f"{table} {key[0]} {key[1]}: missing")
                continue
            fields = [f for f in rec if rec[f] != got.get(f)]
            if fields:
                f = fields[0]
                diffs.append(f"{table} {key[0]} {key[1]}: {f} stored {got.get(f)!r}, "
                             f"recomputed {rec[f]!r}" + (f" (+{len(fields) - 1} fields)"
                                                         if len(fields) > 1 else ""))
        for key in have.keys() - records.keys():
            diffs.append(f"{table} {key[0]} {key[1]}: stored, not derivable")
    v.derived_mismatches = len(diffs)
    v.note("derived records differing from a recomputation", diffs)
    return v
