"""Faults: the fault suite's scenarios and a 24-hour soak, with the figures of one run.

What it measures
    Every scenario of ``tests/faults/scenarios.py`` (database sessions terminated once and
    as a storm, ``ALLOW_CONNECTIONS false``, proxy cuts, refusals and stalls, ``kill -9``
    of the service during the COPY, during deriving and between runs, every logger fault
    of the simulator), then a soak: ``--soak-hours`` (24) simulated hours with the
    logger faults at a few per cent each and a database, proxy or process fault every 2-4
    simulated hours, drawn with ``--seed``. Each ends with the suite's judgement: the
    checker (every published station-hour stored once, every derived record equal to a
    recomputation with the project's derive code, no value stored valid that the
    simulator falsified, no run left running) and readiness during and after.

Set-up
    The service runs as its own process (``tests/faults/runner.py``) on an accelerated
    clock (one simulated hour = 4 s), against a fresh database per scenario on an
    embedded PostgreSQL in a temporary directory under /tmp (removed at the end) or on
    ``--database-url`` (a role with CREATEDB; the scratch databases ``aqi_faults_…`` and
    ``aqi_fcheck_…`` are dropped). It reaches PostgreSQL through the suite's fault proxy;
    the station simulator runs in this process on the same clock. Loopback only.

Output
    One block per scenario (survived or the checker's findings), a summary table, and as
    the last line a JSON object with the scenarios' figures ``{"survived", "tried",
    "hours_lost", "hours_duplicated", "false_values", "values_lost", "derived_mismatches",
    "runs_left_running", "unjudged", "service_exits", "recover_s_max", "detect_s_max",
    "stalls_detected", "stalls", "recover_s": {scenario: s}, "expected_interval_s",
    "soak": {the same figures for the soak, its faults in "recover_s"}}``. Targets:
    survived = tried, 0 lost, 0 duplicated, 0 false values, every stall detected within
    one expected interval (``stalls_detected == stalls``), for the scenarios and the soak.

Run from the repository root::

    .venv/bin/python bench/faults.py [--database-url postgresql://…] [--scenarios a,b]
                                     [--soak-hours 24] [--seed 1] [--logs DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "tests"))   # the suite's support modules (process_support, …)

from tests.faults.harness import EXPECTED_INTERVAL_S, HOUR_S  # noqa: E402
from tests.faults.scenarios import (  # noqa: E402
    OUTAGES,
    SCENARIOS,
    Outcome,
    SoakEvent,
    run_scenario,
    run_soak,
)


def _say(line: str = "") -> None:
    print(line, flush=True)


def figures(outcomes: list[Outcome], events: list[SoakEvent] | None = None) -> dict:
    """The figures of some scenarios (or of the soak: its outcome and its faults)."""
    verdicts = [o.verdict for o in outcomes if o.verdict is not None]
    recover = {o.name: o.recover_s for o in outcomes}
    stalls = [o.detect_s for o in outcomes if o.expect]
    for e in events or []:
        recover[f"{e.kind}@{e.hour:.1f}h"] = e.recover_s
        if e.kind in OUTAGES:
            stalls.append(e.detect_s)
    known = [r for r in recover.values() if r is not None]
    detected = [d for d in stalls if d is not None]
    return {
        "survived": sum(o.survived for o in outcomes),
        "tried": len(outcomes),
        "hours_lost": sum(v.hours_lost for v in verdicts),
        "hours_duplicated": sum(v.duplicated for v in verdicts),
        "false_values": sum(v.false_values for v in verdicts),
        "values_lost": sum(v.lost_values for v in verdicts),
        "derived_mismatches": sum(v.derived_mismatches for v in verdicts),
        "runs_left_running": sum(v.runs_running for v in verdicts),
        "unjudged": sum(1 for o in outcomes if o.verdict is None),
        "service_exits": sum(len(o.exits) for o in outcomes),
        # None when some fault was never recovered from, or some stall never detected.
        "recover_s_max": round(max(known), 2) if known and len(known) == len(recover)
        else None,
        "detect_s_max": round(max(detected), 2) if detected and len(detected) == len(stalls)
        else None,
        "stalls_detected": sum(1 for d in detected if d <= EXPECTED_INTERVAL_S),
        "stalls": len(stalls),
        "recover_s": {k: None if v is None else round(v, 2) for k, v in recover.items()},
    }


def _row(o: Outcome) -> str:
    v = o.verdict
    cells = [o.name[:26].ljust(26), ("yes" if o.survived else "NO").rjust(8)]
    if v is None:
        cells += ["-".rjust(5)] * 4
    else:
        cells += [str(v.hours_lost).rjust(5), str(v.duplicated).rjust(5),
                  str(v.false_values).rjust(5), str(v.derived_mismatches).rjust(5)]
    cells += [("-" if o.recover_s is None else f"{o.recover_s:.1f}").rjust(9),
              ("-" if o.detect_s is None else f"{o.detect_s:.1f}").rjust(8)]
    return "  ".join(cells)


async def bench(args: argparse.Namespace, admin_dsn: str, logs: Path) -> dict:
    outcomes = []
    for name in args.scenarios:
        started = time.monotonic()
        out = await run_scenario(name, admin_dsn, logs, seed=args.seed)
        _say(out.report())
        _say(f"  ({time.monotonic() - started:.0f} s)")
        outcomes.append(out)
    soak, events = None, []
    if args.soak_hours > 0:
        started = time.monotonic()
        soak, events = await run_soak(admin_dsn, logs, args.soak_hours, args.seed)
        _say(soak.report())
        for e in events:
            _say(f"  soak fault {e.kind} at hour {e.hour:.1f}: detect "
                 f"{'-' if e.detect_s is None else f'{e.detect_s:.1f} s'}, recover "
                 f"{'-' if e.recover_s is None else f'{e.recover_s:.1f} s'}"
                 + "".join(f"; {x}" for x in e.errors))
        _say(f"  ({time.monotonic() - started:.0f} s)")
    _say()
    _say(f"one simulated hour = {HOUR_S:.1f} s; one expected interval = "
         f"{EXPECTED_INTERVAL_S:.1f} s")
    _say(f"{'scenario':26}  survived   lost    dup  false  deriv  recover_s  detect_s")
    for o in [*outcomes, *([soak] if soak else [])]:
        _say(_row(o))
    result = figures(outcomes)
    result["expected_interval_s"] = round(EXPECTED_INTERVAL_S, 2)
    result["soak"] = figures([soak], events) if soak else None
    return result


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown scenarios {unknown}; see {list(SCENARIOS)}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server (role with CREATEDB); default: embedded")
    parser.add_argument("--scenarios", type=_names, default=list(SCENARIOS),
                        help="comma-separated scenario names (default: all)")
    parser.add_argument("--soak-hours", type=int, default=24,
                        help="simulated hours of the soak (0: no soak; default 24)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the soak's faults")
    parser.add_argument("--logs", type=Path, default=None,
                        help="keep the service logs here (default: a removed temp folder)")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="aqibf-", dir="/tmp"))
    logs = args.logs or tmp / "logs"
    embedded = None
    try:
        if args.database_url:
            admin = args.database_url
        else:
            from aqi_service.storage.embedded import EmbeddedPostgres

            embedded = EmbeddedPostgres(tmp / "db")
            params = embedded.start()
            admin = f"postgresql://{params.user}@/postgres?host={params.host}&port={params.port}"
        result = asyncio.run(bench(args, admin, logs))
    finally:
        if embedded is not None:
            embedded.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
