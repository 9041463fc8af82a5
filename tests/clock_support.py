"""The tests' clock: one settable time shared by the simulator, the collector and the app."""

from __future__ import annotations

from datetime import datetime


class FakeClock:
    """A settable clock shared by the simulator and the collector."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
