"""Each fault scenario end to end (see scenarios.py): survived, or the checker's findings.

The service runs as a real process on an accelerated clock (one simulated hour = 4 s);
PostgreSQL is real (the suite's server), reached through the fault proxy; the loggers are
the real simulator over loopback HTTP. About 25 s per scenario.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .scenarios import EMBEDDED, SCENARIOS, run_scenario

pytestmark = [pytest.mark.db, pytest.mark.slow]


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.embedded) if n in EMBEDDED else n for n in SCENARIOS])
async def test_scenario(name: str, pg_server: str, fault_logs: Path) -> None:
    out = await run_scenario(name, pg_server, fault_logs)
    print(out.report())
    assert out.survived, out.report()
