"""The embedded PostgreSQL under a real ``serve`` process: killed, orphaned, shared.

Real processes and real signals: ``kill -9`` of the postmaster while ``serve`` runs (it is
started again, the pool recovers, nothing is lost, the restart is counted), of ``serve``
itself (its postmaster does not outlive it, and the next ``serve`` starts on the same
folder with every hour), of another process sharing the server (``serve``'s postmaster is
left alone), and a postmaster that cannot start again (the service stays up on its
snapshot, reports the database down, and takes a server started later by ``migrate``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest
from process_support import (
    REPO,
    Service,
    free_port,
    get_json,
    gone,
    ignored_signals,
    postgres_of,
    run_cli,
    scratch_folder,
)

pytestmark = pytest.mark.embedded

FAST = {"AQI_COLLECTION_INITIAL_BACKFILL_DAYS": "2"}
"""A short first back-fill keeps each test well under a minute."""


@pytest.fixture
def data_dir() -> Iterator[Path]:
    yield from scratch_folder()


def postmaster_pid(data_dir: Path) -> int:
    """The pid in the server's lock file (the postmaster)."""
    return int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def metric(svc: Service, name: str) -> float | None:
    with urllib.request.urlopen(svc.url("/metrics"), timeout=5) as resp:
        text = resp.read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def wait_for(check: Callable[[], bool], timeout: float, what: str, svc: Service) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if check():
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s\n{svc.log.read_text()[-4000:]}")


WINDOW_TO = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
HOURLY = ("/api/v1/stations/LF01/hourly?from={}&to={}".format(
    (WINDOW_TO - timedelta(hours=36)).strftime("%Y-%m-%dT%H:%MZ"),
    WINDOW_TO.strftime("%Y-%m-%dT%H:%MZ")))
"""36 published hours that were all back-filled before any fault of a test."""


def hourly(svc: Service) -> list[dict]:
    """LF01's records over ``HOURLY``'s fixed window."""
    return get_json(svc.url(HOURLY))["records"]


def test_killed_postmaster_is_restarted_and_the_pool_recovers(data_dir: Path) -> None:
    svc = Service(data_dir, free_port(), data_dir / "serve.log", FAST)
    try:
        svc.wait_ready(45)
        before = hourly(svc)
        assert len(before) >= 30, before
        old = postmaster_pid(data_dir)
        assert metric(svc, "aqi_db_embedded_up") == 1.0
        assert metric(svc, "aqi_db_embedded_restarts_total") == 0.0
        os.kill(old, signal.SIGKILL)

        def back() -> bool:
            return (status_of(svc.url("/api/v1/stations/LF01/hourly")) == 200
                    and status_of(svc.url("/readyz")) == 200
                    and metric(svc, "aqi_db_embedded_up") == 1.0)
        took = wait_for(back, 30, "service back after kill -9 of the postmaster", svc)
        print(f"hourly API and /readyz answered again {took:.1f} s after kill -9")
        assert postmaster_pid(data_dir) != old
        assert hourly(svc) == before, "hours lost or changed across the restart"
        assert metric(svc, "aqi_db_embedded_restarts_total") == 1.0
        log = svc.log.read_text()
        assert f"postmaster {old} in" in log and "embedded PostgreSQL restarted" in log
    finally:
        assert svc.stop(signal.SIGTERM) == 0
    assert gone(data_dir, 15), "server left running after SIGTERM"


def test_postmaster_does_not_outlive_a_killed_serve(data_dir: Path) -> None:
    first = Service(data_dir, free_port(), data_dir / "first.log", FAST)
    first.wait_ready(45)
    before = hourly(first)
    assert postgres_of(data_dir)
    # Its watchdog is killed first: serve starts another, which does the work below.
    watchdog = psutil.Process(first.proc.pid).children()
    assert len(watchdog) == 1 and "aqi_service.storage.watchdog" in watchdog[0].cmdline()
    # A service manager's stop signal does not end it: the kernel discards a signal its
    # receiver ignores as it is sent, so the watchdog still runs once terminate() returns.
    assert signal.SIGTERM in ignored_signals(watchdog[0].pid)
    watchdog[0].terminate()
    assert watchdog[0].is_running() and watchdog[0].status() != psutil.STATUS_ZOMBIE
    watchdog[0].kill()
    wait_for(lambda: len([c for c in psutil.Process(first.proc.pid).children()
                          if c.pid != watchdog[0].pid and c.status() != "zombie"]) == 1,
             10, "a new watchdog", first)
    first.stop(signal.SIGKILL)
    assert gone(data_dir, 15), "postmaster still running 15 s after kill -9 of serve"
    second = Service(data_dir, free_port(), data_dir / "second.log", FAST)
    try:
        second.wait_ready(45)
        assert len(before) >= 30 and hourly(second) == before
    finally:
        assert second.stop(signal.SIGTERM) == 0
    assert gone(data_dir, 15)


def test_orphan_left_by_serve_and_its_watchdog_is_stopped_at_the_next_start(
        data_dir: Path) -> None:
    first = Service(data_dir, free_port(), data_dir / "first.log", FAST)
    first.wait_ready(45)
    orphan = postmaster_pid(data_dir)
    family = [first.proc.pid] + [c.pid for c in psutil.Process(first.proc.pid).children()]
    watchers = [psutil.Process(pid) for pid in family[1:]]
    for pid in family:  # serve and its watchdog at once: nothing is left to stop the server
        os.kill(pid, signal.SIGKILL)
    first.proc.wait(10)
    _, alive = psutil.wait_procs(watchers, timeout=10)
    assert not alive, alive
    assert psutil.pid_exists(orphan), "the orphan case needs a postmaster left running"
    second = Service(data_dir, free_port(), data_dir / "second.log", FAST)
    try:
        second.wait_ready(45)
        assert f"postmaster {orphan} in" in second.log.read_text()
        assert "is orphaned" in second.log.read_text()
        assert not psutil.pid_exists(orphan) or postmaster_pid(data_dir) != orphan
    finally:
        assert second.stop(signal.SIGTERM) == 0
    assert gone(data_dir, 15)


def test_other_users_of_the_server_leave_serves_postmaster_alone(data_dir: Path) -> None:
    svc = Service(data_dir, free_port(), data_dir / "serve.log", FAST)
    try:
        svc.wait_ready(45)
        pid = postmaster_pid(data_dir)
        migrate = run_cli("migrate", "--data-dir", str(data_dir))
        assert migrate.returncode == 0, migrate.stderr
        # A process holding a handle dies by SIGKILL: its watchdog must see serve's handle.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AQI_")}
        holder = subprocess.Popen(
            [sys.executable, "-c",
             "import sys, time\nfrom pathlib import Path\n"
             "from aqi_service.storage.embedded import EmbeddedPostgres\n"
             "EmbeddedPostgres(Path(sys.argv[1])).start()\nprint('held', flush=True)\n"
             "time.sleep(60)\n", str(data_dir)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert holder.stdout is not None
        assert b"held" in holder.stdout.readline()
        (its_watchdog,) = psutil.Process(holder.pid).children()
        holder.kill()
        holder.wait(10)
        # Its watchdog decides (serve's handle is alive: leave the server) and exits.
        its_watchdog.wait(15)
        assert postmaster_pid(data_dir) == pid and psutil.pid_exists(pid)
        assert status_of(svc.url("/readyz")) == 200
        assert metric(svc, "aqi_db_embedded_restarts_total") == 0.0
        assert "orphaned" not in svc.log.read_text()
    finally:
        assert svc.stop(signal.SIGTERM) == 0
    assert gone(data_dir, 15)


def test_exhausted_restarts_leave_the_service_up_until_a_server_returns(
        data_dir: Path) -> None:
    settings = FAST | {"AQI_DATABASE_RESTART_ATTEMPTS": "2",
                       "AQI_DATABASE_RESTART_BACKOFF_S": "0.2"}
    svc = Service(data_dir, free_port(), data_dir / "serve.log", settings)
    try:
        svc.wait_ready(45)
        conf = data_dir / "pg" / "postgresql.auto.conf"
        good = conf.read_text()
        conf.write_text(good + "no_such_setting = 1\n")   # the server cannot start now
        os.kill(postmaster_pid(data_dir), signal.SIGKILL)
        wait_for(lambda: "giving up after 2 restart attempts" in svc.log.read_text(), 30,
                 "supervisor gives up", svc)
        assert status_of(svc.url("/api/v1/now")) == 200   # the snapshot is still served
        assert status_of(svc.url("/readyz")) == 503
        assert metric(svc, "aqi_db_embedded_up") == 0.0
        assert metric(svc, "aqi_db_embedded_restarts_total") == 0.0

        conf.write_text(good)
        migrate = run_cli("migrate", "--data-dir", str(data_dir))
        assert migrate.returncode == 0, migrate.stderr
        wait_for(lambda: metric(svc, "aqi_db_embedded_up") == 1.0, 20,
                 "the server started by migrate is taken over", svc)
        assert status_of(svc.url("/readyz")) == 200
        assert status_of(svc.url("/api/v1/stations/LF01/hourly")) == 200
        assert "a server was started on" in svc.log.read_text()
    finally:
        assert svc.stop(signal.SIGTERM) == 0
    assert gone(data_dir, 15)


def test_a_failed_start_is_tried_again(data_dir: Path) -> None:
    first = Service(data_dir, free_port(), data_dir / "first.log", FAST)
    first.wait_ready(45)
    assert first.stop(signal.SIGTERM) == 0
    conf = data_dir / "pg" / "postgresql.auto.conf"
    good = conf.read_text()
    conf.write_text(good + "no_such_setting = 1\n")
    settings = FAST | {"AQI_DATABASE_RESTART_BACKOFF_S": "1"}
    second = Service(data_dir, free_port(), data_dir / "second.log", settings)
    try:
        wait_for(lambda: "start attempt 1/5 failed" in second.log.read_text(), 20,
                 "a failed first attempt", second)
        conf.write_text(good)
        second.wait_ready(40)
        assert status_of(second.url("/readyz")) == 200
    finally:
        assert second.stop(signal.SIGTERM) == 0
    assert gone(data_dir, 15)
