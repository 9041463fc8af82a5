"""The fault scenarios, shared by the test suite and ``bench/faults.py``.

Each scenario starts the service on an empty database (first back-fill), breaks something
at a chosen moment, lets the service run on, and ends with the same judgement
(``run_scenario``): the end state (``checker``), readiness during the fault (503 with one of
the expected ``problems`` within one expected interval, and not ready while it lasts),
readiness and metrics after (200, no problems, ``aqi_collection_stalled`` 0 and
``aqi_derive_pending`` equal to what the database has waiting).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import asyncpg
import psutil

from aqi_service.simulator import FaultRates

from .checker import Verdict
from .harness import EXPECTED_INTERVAL_S, GRACE_MINUTES, HOUR_S, World, postmaster_info

DOWN_CODES = ("database_down", "collection_stalled", "collection_failing")
"""Problems a database outage may rightly be reported by."""
RECOVERY_HOURS = 4
"""Simulated hours after the fault within which the service must be whole again."""
SIMULATOR_RATES = FaultRates(
    down=0.02, http_500=0.03, timeout=0.02, malformed_json=0.02, wrong_content=0.01,
    missing_hour=0.02, late_hour=0.03, duplicate_hour=0.03, revised_value=0.03,
    out_of_range=0.02, sentinel=0.02, negative=0.02, bad_timestamp=0.02, non_numeric=0.02,
    flag_maintenance=0.01, flag_calibration=0.01, flag_fault=0.01, silent=0.003)
"""Every kind of logger fault at once, at a few per cent each; not ``pm25_above_pm10``,
whose two values the documented rule keeps as received (METHODOLOGY)."""
COPY_ACTIVE = ("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = $1 "
               "AND state = 'active' AND query ILIKE 'COPY%') AND EXISTS (SELECT 1 FROM "
               "collection_runs WHERE status = 'running' AND trigger = 'initial')")
DERIVING = ("SELECT $1::text IS NOT NULL AND EXISTS (SELECT 1 FROM observations) AND "
            "EXISTS (SELECT 1 FROM collection_runs WHERE status = 'running' "
            "AND trigger = 'initial') AND "
            "(SELECT count(*) FROM station_hourly) < "
            "(SELECT count(*) FROM (SELECT DISTINCT station_code, hour_end FROM observations) d)")
BACKFILL_RUNNING = ("SELECT $1::text IS NOT NULL AND EXISTS (SELECT 1 FROM collection_runs "
                    "WHERE status = 'running' AND trigger = 'initial')")
PENDING_SQL = """
SELECT count(*) FROM (SELECT DISTINCT station_code, hour_end FROM observations) o
WHERE NOT EXISTS (SELECT 1 FROM station_hourly h
                  WHERE h.station_code = o.station_code AND h.hour_end = o.hour_end)
"""


@dataclass
class Outcome:
    """What one scenario showed."""

    name: str
    verdict: Verdict | None = None
    fault_start: float | None = None
    fault_end: float | None = None
    expect: tuple[str, ...] = ()
    """Problems /readyz must report during the fault (empty: no requirement)."""
    must_see: tuple[str, ...] = ()
    """Problems /readyz must each report at some point during the fault."""
    detect_s: float | None = None
    recover_s: float | None = None
    errors: list[str] = field(default_factory=list)
    exits: list[str] = field(default_factory=list)
    """The service's exits on its own (restarted, as the deployment does)."""

    @property
    def survived(self) -> bool:
        return not self.errors and self.verdict is not None and self.verdict.ok

    def report(self) -> str:
        lines = [f"scenario {self.name}: {'survived' if self.survived else 'FAILED'}"]
        if self.detect_s is not None:
            lines.append(f"  detected by /readyz after {self.detect_s:.1f} s "
                         f"(one expected interval: {EXPECTED_INTERVAL_S:.1f} s)")
        if self.recover_s is not None:
            lines.append(f"  recovered {self.recover_s:.1f} s after the fault ended")
        lines += [f"  ! {e}" for e in self.errors]
        lines += [f"  service exited on its own (restarted): {e}" for e in self.exits]
        if self.verdict is not None:
            lines.append("  " + self.verdict.summary().replace("\n", "\n  "))
        return "\n".join(lines)


Body = Callable[[World, Outcome], Awaitable[None]]


async def _wait_backfilled(world: World, timeout: float = 60.0) -> None:
    """Until a run has finished ok or partial and none is running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = await asyncpg.connect(world.db_dsn)
        except (OSError, asyncpg.PostgresError):
            await asyncio.sleep(0.2)
            continue
        try:
            done = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM collection_runs WHERE status IN ('ok', 'partial'))"
                " AND NOT EXISTS (SELECT 1 FROM collection_runs WHERE status = 'running')")
        finally:
            await conn.close()
        if done:
            return
        await asyncio.sleep(0.2)


async def _at_next_collection(world: World, minutes_after: float = 0.5) -> None:
    await world.until_sim(world.next_collection() + timedelta(minutes=minutes_after))


# -- scenarios ------------------------------------------------------------------------------

async def baseline(world: World, out: Outcome) -> None:
    """No fault: the control (must pass on any code)."""
    await world.start_service()
    await world.sleep_hours(2)


async def terminate_once_backfill(world: World, out: Outcome) -> None:
    """pg_terminate_backend of the service's sessions once, during the first back-fill."""
    world.proxy.latency_s = 0.005
    await world.start_service(wait=False)
    await _when(world, BACKFILL_RUNNING, 30, out)
    out.fault_start = out.fault_end = time.time()
    world.notes.append(f"terminated {await world.terminate_sessions()} sessions")
    world.proxy.heal()
    await world.sleep_hours(2)


async def terminate_storm_backfill(world: World, out: Outcome) -> None:
    """pg_terminate_backend once a second for 10 s from the first back-fill on."""
    world.proxy.latency_s = 0.005
    await world.start_service(wait=False)
    await _when(world, BACKFILL_RUNNING, 30, out)
    await _storm(world, out, 10)
    world.proxy.heal()


async def terminate_storm_hourly(world: World, out: Outcome) -> None:
    """pg_terminate_backend once a second for 10 s across hourly runs."""
    await world.start_service()
    await _wait_backfilled(world)
    await _at_next_collection(world, -2)
    await _storm(world, out, 10)


async def no_connections(world: World, out: Outcome) -> None:
    """ALTER DATABASE … ALLOW_CONNECTIONS false (and its sessions ended) for 1.25 intervals
    across an hourly collection."""
    await world.start_service()
    await _wait_backfilled(world)
    await _at_next_collection(world, -10)
    out.expect = DOWN_CODES
    out.fault_start = time.time()
    await world.allow_connections(False)
    await world.terminate_sessions()
    await asyncio.sleep(EXPECTED_INTERVAL_S * 1.25)
    await world.allow_connections(True)
    out.fault_end = time.time()


async def proxy_cut_backfill(world: World, out: Outcome) -> None:
    """The proxy cuts every connection once 300 kB have passed: inside the back-fill."""
    world.proxy.cut_after(300_000)
    out.fault_start = time.time()
    await world.start_service()
    await world.sleep_hours(1)
    out.fault_end = time.time()
    world.notes.append(f"proxy cut {world.proxy.stats.cut} connections")
    await world.sleep_hours(1)


async def proxy_cut_hourly(world: World, out: Outcome) -> None:
    """The proxy cuts every connection during an hourly collection."""
    world.proxy.latency_s = 0.01
    await world.start_service()
    await _wait_backfilled(world)
    await _at_next_collection(world, 0.2)
    out.fault_start = out.fault_end = time.time()
    world.notes.append(f"proxy cut {world.proxy.cut_all()} connections")
    world.proxy.heal()
    await world.sleep_hours(1)


async def proxy_refuse(world: World, out: Outcome) -> None:
    """Cut, then refuse new connections for 1.25 intervals (ECONNREFUSED)."""
    await world.start_service()
    await _wait_backfilled(world)
    await _at_next_collection(world, -10)
    out.expect = DOWN_CODES
    out.fault_start = time.time()
    await world.proxy.refuse_for(EXPECTED_INTERVAL_S * 1.25)
    world.proxy.cut_all()
    await asyncio.sleep(EXPECTED_INTERVAL_S * 1.25)
    out.fault_end = time.time()


async def proxy_stall(world: World, out: Outcome) -> None:
    """The proxy accepts and forwards nothing for 1.5 intervals (a hung network)."""
    await world.start_service()
    await _wait_backfilled(world)
    await _at_next_collection(world, -10)
    out.expect = DOWN_CODES
    out.fault_start = time.time()
    world.proxy.stall()
    await asyncio.sleep(EXPECTED_INTERVAL_S * 1.5)
    world.proxy.release()
    out.fault_end = time.time()


async def kill9_copy(world: World, out: Outcome) -> None:
    """SIGKILL of the service during the first back-fill's COPY, then a restart."""
    await _kill_then_restart(world, out, COPY_ACTIVE)


async def kill9_derive(world: World, out: Outcome) -> None:
    """SIGKILL between the COPY and the end of deriving, then a restart."""
    await _kill_then_restart(world, out, DERIVING)


async def kill9_between_runs(world: World, out: Outcome) -> None:
    """SIGKILL between hourly runs; the service stays down an hour, then restarts."""
    await world.start_service()
    await _wait_backfilled(world)
    await _at_next_collection(world, 30)
    out.fault_start = time.time()
    world.kill9()
    await world.sleep_hours(1)
    await world.start_service()
    out.fault_end = time.time()
    await world.sleep_hours(1)


async def kill9_postmaster(world: World, out: Outcome) -> None:
    """SIGKILL of the embedded PostgreSQL's postmaster before an hourly collection: the
    service must restart it and carry on."""
    await world.start_service()
    await _wait_backfilled(world)
    await _at_next_collection(world, -10)
    info = postmaster_info(world.embedded_dir)
    out.expect = DOWN_CODES
    out.fault_start = time.time()
    os.kill(info[0], signal.SIGKILL)
    # The fault lasts until a new postmaster accepts connections (or two intervals).
    deadline = out.fault_start + 2 * EXPECTED_INTERVAL_S
    while time.time() < deadline:
        again = postmaster_info(world.embedded_dir)
        if again is not None and again[0] != info[0] and psutil.pid_exists(again[0]):
            break
        await asyncio.sleep(0.1)
    else:
        world.notes.append("no new postmaster within two expected intervals")
    out.fault_end = time.time()
    await world.sleep_hours(1)


async def loggers_down(world: World, out: Outcome) -> None:
    """Every data logger answers 503 for 1.25 intervals across an hourly collection: the
    database is fine, collection is not."""
    await world.start_service()
    await _wait_backfilled(world)
    await _at_next_collection(world, -10)
    out.expect = ("collection_failing", "collection_stalled")
    out.must_see = ("collection_stalled",)
    out.fault_start = time.time()
    world.sim.faults.add("down", until=world.clock() + timedelta(
        seconds=EXPECTED_INTERVAL_S * 1.25 * world.clock.speed))
    await asyncio.sleep(EXPECTED_INTERVAL_S * 1.25)
    out.fault_end = time.time()


async def simulator_faults(world: World, out: Outcome) -> None:
    """Every logger fault at a few per cent (see SIMULATOR_RATES) for four hours."""
    out.fault_start = time.time()
    await world.start_service()
    await world.sleep_hours(4)
    out.fault_end = time.time()


SCENARIOS: dict[str, tuple[Body, FaultRates | None]] = {
    "baseline": (baseline, None),
    "terminate_once_backfill": (terminate_once_backfill, None),
    "terminate_storm_backfill": (terminate_storm_backfill, None),
    "terminate_storm_hourly": (terminate_storm_hourly, None),
    "no_connections": (no_connections, None),
    "proxy_cut_backfill": (proxy_cut_backfill, None),
    "proxy_cut_hourly": (proxy_cut_hourly, None),
    "proxy_refuse": (proxy_refuse, None),
    "proxy_stall": (proxy_stall, None),
    "kill9_copy": (kill9_copy, None),
    "kill9_derive": (kill9_derive, None),
    "kill9_between_runs": (kill9_between_runs, None),
    "kill9_postmaster": (kill9_postmaster, None),
    "loggers_down": (loggers_down, None),
    "simulator_faults": (simulator_faults, SIMULATOR_RATES),
}
EMBEDDED = {"kill9_postmaster"}
"""Scenarios where the service runs on its own embedded PostgreSQL."""


# -- helpers ------------------------------------------------------------------------------

async def _when(world: World, condition: str, timeout: float, out: Outcome) -> bool:
    conn = await asyncpg.connect(world.db_dsn)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await conn.fetchval(condition, world.db_name):
                return True
            await asyncio.sleep(0.01)
    finally:
        await conn.close()
    out.errors.append(f"the moment to strike never came ({condition[:60]}…)")
    return False


async def _storm(world: World, out: Outcome, seconds: int) -> None:
    out.fault_start = time.time()
    killed = 0
    for _ in range(seconds):
        killed += await world.terminate_sessions()
        await asyncio.sleep(1.0)
    out.fault_end = time.time()
    world.notes.append(f"storm: {killed} sessions terminated in {seconds} s")


async def _kill_then_restart(world: World, out: Outcome, condition: str) -> None:
    world.proxy.latency_s = 0.03  # slows the back-fill so that the moment can be caught
    await world.start_service(wait=False)
    out.fault_start = time.time()
    if not await world.kill_when(condition, 30):
        out.errors.append("the moment to kill never came")
        world.kill9()
    world.proxy.heal()
    await asyncio.sleep(0.5)
    await world.start_service()
    out.fault_end = time.time()
    await world.sleep_hours(2)


# -- the judgement ------------------------------------------------------------------------

async def _whole_by(world: World, deadline: float) -> tuple[float | None, str]:
    """When (``time.time()``) the service was first whole before ``deadline``, or None and
    why not. Judged once per check: a second look a moment later may already expect the
    next hour, whose collection has not come yet."""
    why = "never checked"
    while True:
        why = await _not_whole(world)
        if not why:
            return time.time(), ""
        if time.time() >= deadline:
            return None, why
        await asyncio.sleep(0.2)


async def _not_whole(world: World) -> str:
    """Why the service is not whole now ("" when it is: ready, no problems, and the hour
    expected now has a record of every station that published it)."""
    s = world.watcher.samples[-1] if world.watcher and world.watcher.samples else None
    if s is None or s.status != 200 or s.problems:
        return f"last /readyz: {s}"
    at = world.clock() - timedelta(minutes=GRACE_MINUTES)
    hour = at.replace(minute=0, second=0, microsecond=0)
    try:
        conn = await asyncpg.connect(world.db_dsn)
    except (OSError, asyncpg.PostgresError) as exc:
        return f"database: {exc!r}"
    try:
        have = {r[0] for r in await conn.fetch(
            "SELECT station_code FROM station_hourly WHERE hour_end = $1", hour)}
    finally:
        await conn.close()
    want = set()
    for st in world.sim.stations:
        rows = world.truth.hourly_rows(st.code, hour - timedelta(hours=1), hour)
        if any(r[0].endswith(":00:00+08:00") for r in rows):
            want.add(st.code)
    gone = sorted(want - have)
    return f"hour {hour.isoformat()} has no record of {', '.join(gone)}" if gone else ""


async def run_scenario(name: str, admin_dsn: str, log_dir: Path, seed: int = 2014) -> Outcome:
    """Run one scenario in a fresh world and judge it."""
    body, rates = SCENARIOS[name]
    out = Outcome(name)
    async with World.create(admin_dsn, log_dir / name, seed=seed, rates=rates,
                            embedded=name in EMBEDDED) as world:
        try:
            await body(world, out)
        except AssertionError as exc:
            out.errors.append(str(exc)[:2000])
            return out
        await judge(world, out)
    return out


async def judge(world: World, out: Outcome) -> None:
    """Readiness during and after, recovery time, the end state and the metrics."""
    end = out.fault_end or time.time()
    whole_at, why = await _whole_by(world, time.time() + RECOVERY_HOURS * HOUR_S)
    if world.service is None or world.service.proc.poll() is not None:
        out.exits = list(world.exits)
        out.errors.append(f"the service is not running at the end: {world.log_tail(1500)}")
        return
    if whole_at is not None:
        out.recover_s = max(0.0, whole_at - end)
    else:
        out.errors.append(f"not whole again {RECOVERY_HOURS} simulated hours after the fault "
                          f"({why})")
    _judge_readiness(world, out)
    world.pause_schedule()
    await world.wait_idle(4 * HOUR_S)
    out.exits = list(world.exits)
    try:
        out.verdict = await world.check()
        await _judge_metrics(world, out)
    except (OSError, asyncpg.PostgresError) as exc:
        out.errors.append(f"the database is unreachable at the end: {exc!r}")


def _judge_readiness(world: World, out: Outcome) -> None:
    if not out.expect or out.fault_start is None or out.fault_end is None:
        return
    samples = world.watcher.samples
    hit = world.watcher.first(out.fault_start, lambda s: s.status == 503
                              and bool(set(s.problems) & set(out.expect)))
    if hit is None or hit.t > out.fault_end + 1:
        seen = sorted({(s.status, s.problems) for s in samples if s.t >= out.fault_start
                       and s.t <= out.fault_end}, key=str)
        out.errors.append(f"/readyz never reported {'/'.join(out.expect)} during the fault "
                          f"(answers seen: {seen})")
        return
    out.detect_s = hit.done - out.fault_start
    if out.detect_s > EXPECTED_INTERVAL_S:
        out.errors.append(f"fault reported after {out.detect_s:.1f} s (that /readyz answer "
                          f"took {hit.done - hit.t:.1f} s), more than one expected interval "
                          f"({EXPECTED_INTERVAL_S:.1f} s)")
    ready = [s for s in samples if hit.t < s.t and s.done < out.fault_end - 0.2
             and s.status == 200]
    if ready:
        out.errors.append(f"/readyz said ready {len(ready)} times while the fault lasted")
    for code in out.must_see:
        seen = world.watcher.first(out.fault_start, lambda s, c=code: c in s.problems)
        if seen is None or seen.t > out.fault_end:
            out.errors.append(f"/readyz never reported {code} during the fault")
    stalled = world.watcher.first(out.fault_start, lambda s: "collection_stalled" in s.problems)
    if stalled is not None and stalled.t <= out.fault_end:
        gauge = [v for t, v in world.watcher.stalled if stalled.t <= t <= out.fault_end + 1]
        if gauge and 1.0 not in gauge:
            out.errors.append(f"/readyz reported collection_stalled, aqi_collection_stalled "
                              f"stayed {sorted(set(gauge), key=str)}")


async def _judge_metrics(world: World, out: Outcome) -> None:
    m = await world.metrics()
    stalled = m.get("aqi_collection_stalled")
    if stalled != 0:
        out.errors.append(f"after: aqi_collection_stalled = {stalled} (want 0)")
    conn = await asyncpg.connect(world.db_dsn)
    try:
        pending = await conn.fetchval(PENDING_SQL)
    finally:
        await conn.close()
    got = m.get("aqi_derive_pending")
    if got != pending:
        out.errors.append(f"after: aqi_derive_pending = {got}, the database has {pending} "
                          "station-hours waiting")
    last = world.watcher.samples[-1]
    if last.status != 200 or last.problems:
        out.errors.append(f"after: /readyz {last.status} {list(last.problems)} "
                          f"{list(last.reasons)}")


SOAK_KINDS = ("terminate", "storm", "cut", "refuse", "stall", "kill9", "no_connections")
OUTAGES = {"refuse", "stall", "no_connections"}
"""Soak faults that block collection for a whole expected interval: /readyz must say so."""


def random_plan(seed: int, hours: int) -> list[tuple[float, str]]:
    """(simulated hour from the start, fault kind) pairs for the soak, drawn with ``seed``:
    one fault every 2-4 hours from hour 2, none in the last 4 hours."""
    rng = random.Random(seed)
    plan, hour = [], 2.0
    while hour < hours - 4:
        plan.append((hour + rng.random(), rng.choice(SOAK_KINDS)))
        hour += rng.uniform(2.0, 4.0)
    return plan


async def _soak_fault(world: World, kind: str) -> None:
    if kind == "terminate":
        await world.terminate_sessions()
    elif kind == "storm":
        for _ in range(5):
            await world.terminate_sessions()
            await asyncio.sleep(1.0)
    elif kind == "cut":
        world.proxy.cut_all()
    elif kind == "refuse":
        await world.proxy.refuse_for(EXPECTED_INTERVAL_S * 1.25)
        world.proxy.cut_all()
        await asyncio.sleep(EXPECTED_INTERVAL_S * 1.25 + 0.1)
    elif kind == "stall":
        world.proxy.stall()
        await asyncio.sleep(EXPECTED_INTERVAL_S * 1.25)
        world.proxy.release()
    elif kind == "kill9":
        world.kill9()
        await asyncio.sleep(HOUR_S / 2)
        await world.start_service()
    elif kind == "no_connections":
        await world.allow_connections(False)
        await world.terminate_sessions()
        await asyncio.sleep(EXPECTED_INTERVAL_S * 1.25)
        await world.allow_connections(True)


@dataclass
class SoakEvent:
    """One fault of the soak and what the service made of it."""

    hour: float
    kind: str
    detect_s: float | None = None
    recover_s: float | None = None
    errors: list[str] = field(default_factory=list)
    exits: list[str] = field(default_factory=list)
    """The service's exits on its own (restarted, as the deployment does)."""


async def run_soak(admin_dsn: str, log_dir: Path, hours: int = 24, seed: int = 1,
                   rates: FaultRates = SIMULATOR_RATES) -> tuple[Outcome, list[SoakEvent]]:
    """``hours`` simulated hours with the logger faults of ``rates`` and database, proxy
    and process faults at random (``random_plan``); judged like a scenario at the end."""
    out = Outcome(f"soak_{hours}h")
    events = [SoakEvent(h, k) for h, k in random_plan(seed, hours)]
    async with World.create(admin_dsn, log_dir / out.name, seed=seed, rates=rates) as world:
        start = time.time()
        out.fault_start = start
        try:
            await world.start_service()
            for ev in events:
                await asyncio.sleep(max(0.0, start + ev.hour * HOUR_S - time.time()))
                began = time.time()
                await _soak_fault(world, ev.kind)
                ended = time.time()
                if ev.kind in OUTAGES:
                    hit = world.watcher.first(began, lambda s: s.status == 503
                                              and bool(set(s.problems) & set(DOWN_CODES)))
                    if hit is None or hit.t > ended + 1:
                        ev.errors.append("outage never reported by /readyz")
                    else:
                        ev.detect_s = hit.done - began
                        if ev.detect_s > EXPECTED_INTERVAL_S:
                            ev.errors.append(f"outage reported after {ev.detect_s:.1f} s")
                whole_at, _ = await _whole_by(world, time.time() + RECOVERY_HOURS * HOUR_S)
                if whole_at is not None:
                    ev.recover_s = whole_at - ended
                else:
                    ev.errors.append("not whole again within "
                                     f"{RECOVERY_HOURS} simulated hours")
            await asyncio.sleep(max(0.0, start + hours * HOUR_S - time.time()))
            out.fault_end = time.time()
        except AssertionError as exc:
            out.errors.append(str(exc)[:2000])
            return out, events
        await judge(world, out)
    for ev in events:
        out.errors += [f"{ev.kind} at hour {ev.hour:.1f}: {e}" for e in ev.errors]
    return out, events
