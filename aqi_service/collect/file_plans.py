"""The monitoring plans a history file shows, checked against the stations' stored plans.

In CNEMC's archive layout a ``/`` cell means "not in the station's monitoring plan"
(``NA`` or empty: measured, but no value that hour). A station's plan in the file is the
pollutants it shows ``/`` in every one of its rows. A station has one plan, stored with it
and followed by all of its records (:mod:`aqi_service.storage.stations`), so:

* a station the import adds (``--add-stations``) is stored with the file's plan;
* a station an earlier import added follows the file: the history files are the only
  source of its plan (one imported before plans were stored has an empty one); a change
  is shown on the console and its stored hours are derived again under the new plan;
* a configured station whose plan the file contradicts is refused, as a bad row naming
  the first row that contradicts it (and so is a station showing ``/`` for a pollutant in
  some rows but not in others). The configuration is the operator's statement of what the
  station measures; following the file for some hours would publish hours of one station
  under two plans that neither its records nor the API can tell apart, and changing the
  stored plan would be undone by the next start (which syncs the configuration). The
  import checks everything before it writes anything, so refusing costs nothing: correct
  ``not_monitored`` in ``stations.toml`` (or the file) and run it again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from aqi_service.aqi.schemes import POLLUTANTS
from aqi_service.storage import stations as station_store

NOT_MONITORED = "/"
"""The cell of a pollutant outside the station's monitoring plan."""


@dataclass(slots=True)
class _Seen:
    """One station × pollutant in the file: rows with ``/`` and rows without, and the
    first line of each."""

    slash: int = 0
    other: int = 0
    first_slash: int = 0
    first_other: int = 0


@dataclass(slots=True)
class FilePlans:
    """What the file's rows show of each station's monitoring plan."""

    seen: dict[tuple[str, str], _Seen] = field(default_factory=dict)

    def see(self, station: str, line: int, values: Mapping[str, str]) -> None:
        """Count one row's pollutant cells."""
        for pol in POLLUTANTS:
            s = self.seen.get((station, pol))
            if s is None:
                s = self.seen[station, pol] = _Seen()
            if values[pol] == NOT_MONITORED:
                s.slash += 1
                s.first_slash = s.first_slash or line
            else:
                s.other += 1
                s.first_other = s.first_other or line

    def plans(self) -> dict[str, tuple[str, ...]]:
        """Station → the pollutants it shows ``/`` in every row."""
        out: dict[str, list[str]] = {}
        for (station, pol), s in self.seen.items():
            out.setdefault(station, [])
            if s.slash and not s.other:
                out[station].append(pol)
        return {st: tuple(p for p in POLLUTANTS if p in pols) for st, pols in out.items()}


@dataclass(slots=True)
class PlanCheck:
    """The plans an import stores: of the stations it adds, and the changed plans of
    stations an earlier import added (code → (stored, file's))."""

    added: dict[str, tuple[str, ...]] = field(default_factory=dict)
    changed: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The console's account of the plans."""
        out = []
        shown = {c: p for c, p in sorted(self.added.items()) if p}
        if shown:
            out.append("monitoring plans of the new stations, from the file's '/' cells: "
                       + "; ".join(f"{c} does not monitor {', '.join(p)}"
                                   for c, p in shown.items()))
        for code, (old, new) in sorted(self.changed.items()):
            out.append(f"monitoring plan of {code} (an imported station) follows the file: "
                       f"not monitored {_names(new)} (was {_names(old)}); its stored hours "
                       "are derived again")
        return out

    def to_json(self) -> dict[str, Any]:
        """The plans as plain data."""
        return {"added": {c: list(p) for c, p in sorted(self.added.items())},
                "changed": {c: {"stored": list(o), "file": list(n)}
                            for c, (o, n) in sorted(self.changed.items())}}


def _names(plan: tuple[str, ...]) -> str:
    return ", ".join(plan) if plan else "none"


async def check_plans(conn: asyncpg.Connection, file: FilePlans, adding: set[str],
                      add_error: Callable[[int, str, str], None]) -> PlanCheck:
    """Compare the file's plans with the stored ones; contradictions go to ``add_error``
    (line, column, reason). ``adding``: the stations the import adds."""
    for (station, pol), s in sorted(file.seen.items()):
        if s.slash and s.other:
            add_error(max(s.first_slash, s.first_other), pol,
                      f"{station} shows {pol} as '/' (not monitored) in {s.slash} rows and "
                      f"measured (a value or NA) in {s.other}: a station has one monitoring "
                      "plan")
    plans = file.plans()
    check = PlanCheck(added={c: p for c, p in plans.items() if c in adding})
    stored = {s["code"]: s for s in await station_store.list_stations(conn)}
    for code, plan in sorted(plans.items()):
        row = stored.get(code)
        if row is None or code in adding:
            continue
        old = tuple(p for p in POLLUTANTS if p in row["not_monitored"])
        if old == plan:
            continue
        if row["source"] == "import":
            check.changed[code] = (old, plan)
            continue
        for pol in POLLUTANTS:
            s = file.seen[code, pol]
            if (pol in plan) != (pol in old) and not (s.slash and s.other):
                add_error(s.first_slash or s.first_other, pol, _contradiction(
                    code, pol, pol in plan, plan))
    return check


def _contradiction(code: str, pol: str, file_says_not: bool, plan: tuple[str, ...]) -> str:
    wanted = "not_monitored = [" + ", ".join(f'"{p}"' for p in plan) + "]"
    if file_says_not:
        said = f"the file shows {pol} of {code} as '/' (not monitored), the configuration " \
               "has it measured"
    else:
        said = f"the file has {pol} of {code} measured (a value or NA), the configuration " \
               "lists it in not_monitored"
    return f"{said}: set {wanted} for {code} in stations.toml, or correct the file"


async def store_plans(conn: asyncpg.Connection, check: PlanCheck) -> None:
    """Store the changed plans of imported stations (their stored hours are marked to be
    derived again); the added stations' plans are stored as they are added."""
    await station_store.set_plans(conn, {c: new for c, (_, new) in check.changed.items()})
