"""Fixtures of the fault suite: the server of tests/conftest.py, a folder for the logs.

Every scenario creates its own database on that server (see ``harness.World``); the
service runs as a separate process reaching it through the fault proxy.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def fault_logs(tmp_path: Path) -> Path:
    """Where the service processes of one scenario write their logs."""
    return tmp_path / "logs"
