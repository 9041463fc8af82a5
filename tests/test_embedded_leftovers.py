"""What a start finds in the data folder: a ``postmaster.pid`` left by a dead server.

After a crash or a reboot the file names a pid that is gone, or — pids being reused —
one that now belongs to an unrelated process. PostgreSQL replaces the first itself; the
second it takes for a running server (and so does the wheel), so the start removes it
when the shared memory segment it names has no process attached.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from process_support import postgres_of, scratch_folder

from aqi_service.storage.embedded import EmbeddedPostgres

pytestmark = pytest.mark.embedded


@pytest.fixture
def data_dir() -> Iterator[Path]:
    yield from scratch_folder()


def _left_behind(data_dir: Path) -> list[str]:
    """Run the server once, keep its ``postmaster.pid`` as a crash would leave it."""
    server = EmbeddedPostgres(data_dir)
    server.start()
    lines = (data_dir / "pg" / "postmaster.pid").read_text().splitlines()
    server.stop()
    assert not postgres_of(data_dir)
    return lines


def _start_and_query(data_dir: Path) -> None:
    server = EmbeddedPostgres(data_dir)
    server.start()
    try:
        assert server.pid is not None
        assert "(1 row)" in server._server.psql("SELECT 1;")
    finally:
        server.stop()


def test_a_pid_file_naming_a_reused_pid_does_not_block_the_start(
        data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    lines = _left_behind(data_dir)
    stranger = subprocess.Popen(["sleep", "60"])   # the pid now belongs to this process
    try:
        lines[0] = str(stranger.pid)
        (data_dir / "pg" / "postmaster.pid").write_text("\n".join(lines) + "\n")
        with caplog.at_level(logging.INFO, "aqi_service.storage.embedded"):
            _start_and_query(data_dir)
        assert "which is not its server" in caplog.text
        assert stranger.poll() is None, "the unrelated process was touched"
    finally:
        stranger.kill()
        stranger.wait()
    assert not postgres_of(data_dir)


def test_a_pid_file_naming_a_dead_process_is_left_to_postgresql(
        data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    lines = _left_behind(data_dir)
    gone = subprocess.Popen(["true"])
    gone.wait()
    lines[0] = str(gone.pid)
    (data_dir / "pg" / "postmaster.pid").write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.INFO, "aqi_service.storage.embedded"):
        _start_and_query(data_dir)
    assert "PostgreSQL replaces it" in caplog.text
    assert not postgres_of(data_dir)
