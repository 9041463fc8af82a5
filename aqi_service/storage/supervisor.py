"""Keep the embedded PostgreSQL running under ``serve``: watch the postmaster, restart it.

``pg_ctl`` daemonises the postmaster, so nothing would notice its death (a ``kill -9``,
the OOM killer, a crash) until every query failed, and nothing would start it again until
``serve`` restarted. The supervisor watches the process itself (its pid and start time,
a few times a second) and, when it is gone, starts the server again on the same data
folder and socket — the pool's DSN stays valid — with a bounded number of attempts and a
doubling back-off: a killed postmaster leaves its backends for a moment, and PostgreSQL
refuses to start while they still hold the old shared memory. After a restart the pool's
connections are expired, so that no dead connection is handed out.

When the attempts are exhausted the server is left down (``state`` ``down``): the service
keeps serving its snapshot and readiness reports the database down; the supervisor keeps
looking for a postmaster started by anyone else on the folder (e.g. ``aqi-service migrate
--data-dir …``, which starts it when it is not running) and adopts it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator

import asyncpg
import psutil

from aqi_service.config import DatabaseConfig
from aqi_service.storage.embedded import EmbeddedPostgres, postmaster_of

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 0.25
"""How often the postmaster's process is looked at."""
ADOPT_INTERVAL_S = 5.0
"""How often, once given up, the folder is checked for a server started by another."""
BACKOFF_CAP_S = 15.0


def backoff(first_s: float) -> Iterator[float]:
    """Waits between attempts: ``first_s``, then doubling, at most ``BACKOFF_CAP_S``."""
    delay = first_s
    while True:
        yield delay
        delay = min(delay * 2, BACKOFF_CAP_S)


def _alive(proc: psutil.Process | None) -> bool:
    try:
        return proc is not None and proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class EmbeddedSupervisor:
    """Watches one ``EmbeddedPostgres`` and restarts its postmaster when it dies."""

    def __init__(self, server: EmbeddedPostgres, pool: asyncpg.Pool, *, attempts: int,
                 backoff_s: float, on_restart: Callable[[], None] | None = None,
                 on_state: Callable[[bool], None] | None = None) -> None:
        self.server = server
        self.pool = pool
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.on_restart = on_restart
        self.on_state = on_state
        self.state = "up"
        """``up``, ``restarting`` (the postmaster died, attempts under way) or ``down``."""
        self.restarts = 0
        self.last_error: str | None = None
        self._postmaster = server.postmaster()

    @property
    def up(self) -> bool:
        """Whether the server is running (readiness reports ``database_down`` otherwise)."""
        return self.state == "up"

    def _set_state(self, state: str) -> None:
        self.state = state
        if self.on_state is not None:
            self.on_state(state == "up")

    async def run(self) -> None:
        """Watch for ever (cancelled by the owner at shutdown)."""
        self._set_state("up" if _alive(self._postmaster) else "down")
        while True:
            while _alive(self._postmaster):
                self.server.ensure_watchdog()
                await asyncio.sleep(WATCH_INTERVAL_S)
            pid = self._postmaster.pid if self._postmaster else None
            log.error("embedded PostgreSQL: postmaster %s in %s is gone; restarting it",
                      pid, self.server.pgdata)
            if not await self._restart():
                await self._wait_for_adoption()

    async def _restart(self) -> bool:
        self._set_state("restarting")
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        delays = backoff(self.backoff_s)
        for attempt in range(1, self.attempts + 1):
            try:
                pid = await loop.run_in_executor(None, self.server.restart)
            except Exception as exc:  # the wheel raises plain subprocess/OS errors
                self.last_error = f"{type(exc).__name__}: {exc}"
                if attempt < self.attempts:
                    delay = next(delays)
                    log.warning("embedded PostgreSQL: restart attempt %d/%d failed (%s); next "
                                "in %.1f s", attempt, self.attempts, self.last_error, delay)
                    await asyncio.sleep(delay)
                continue
            await self._adopt(pid)
            self.restarts += 1
            if self.on_restart is not None:
                self.on_restart()
            log.warning("embedded PostgreSQL restarted: postmaster %d, attempt %d, %.1f s "
                        "after it was found gone", pid, attempt, time.monotonic() - started)
            return True
        self._set_state("down")
        log.error("embedded PostgreSQL: giving up after %d restart attempts (%s); the service "
                  "serves its snapshot and reports the database down. Start the server again "
                  "(e.g. `aqi-service migrate --data-dir %s`) or restart the service; the log "
                  "is %s", self.attempts, self.last_error, self.server.data_dir,
                  self.server.pgdata / "log")
        return False

    async def _adopt(self, pid: int) -> None:
        self._postmaster = psutil.Process(pid)
        # Idle connections are to the dead server: make the next acquire open new ones.
        await self.pool.expire_connections()
        self._set_state("up")

    async def _wait_for_adoption(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(ADOPT_INTERVAL_S)
            if postmaster_of(self.server.pgdata) is None:
                continue
            try:
                pid = await loop.run_in_executor(None, self.server.restart)
            except Exception as exc:  # the wheel: subprocess/OS errors; look again later
                log.warning("embedded PostgreSQL: cannot join the server found (%s)", exc)
                continue
            log.warning("embedded PostgreSQL: a server was started on %s (postmaster %d): "
                        "using it", self.server.pgdata, pid)
            await self._adopt(pid)
            return


def supervise(server: EmbeddedPostgres, pool: asyncpg.Pool, cfg: DatabaseConfig, *,
              on_restart: Callable[[], None] | None = None,
              on_state: Callable[[bool], None] | None = None,
              ) -> tuple[EmbeddedSupervisor, asyncio.Task[None]]:
    """Start a supervisor as a task; its owner cancels it and awaits it at shutdown.

    Should the supervisor itself crash, the error is logged and it reads as down, so
    that readiness does not trust a server nothing watches any more.
    """
    supervisor = EmbeddedSupervisor(server, pool, attempts=cfg.restart_attempts,
                                    backoff_s=cfg.restart_backoff_s, on_restart=on_restart,
                                    on_state=on_state)
    task = asyncio.get_running_loop().create_task(supervisor.run(), name="embedded-supervisor")

    def ended(done: asyncio.Task[None]) -> None:
        if done.cancelled():
            return
        supervisor._set_state("down")
        log.error("embedded PostgreSQL supervisor stopped: nothing restarts the server now",
                  exc_info=done.exception())

    task.add_done_callback(ended)
    return supervisor, task
