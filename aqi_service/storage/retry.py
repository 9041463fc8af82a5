"""Start-up steps that survive a brief database outage.

Migrations, the station and catalogue sync and the first snapshot run once, before the
service serves; a session terminated or a connection refused in the middle of one of them
used to end the process. Each step is retried on connection errors with bounded back-off
(every retry logged); a database that stays down past the budget still ends the start-up,
with one clear line (``DatabaseUnavailable``, printed by the CLI, exit status 1).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from aqi_service.storage.db import DatabaseUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

STARTUP_BUDGET_S = 30.0
"""How long a start-up step keeps retrying before the start-up gives up."""
FIRST_DELAY_S = 0.5
MAX_DELAY_S = 5.0
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,   # 57P01 terminated, 57P03 starting up
    asyncpg.exceptions.ObjectNotInPrerequisiteStateError)  # database not accepting connections
"""Errors of the connection, not of the statement: worth a retry."""


async def retry_on_outage(what: str, step: Callable[[], Awaitable[T]],
                          budget_s: float = STARTUP_BUDGET_S) -> T:
    """``step()``, retried with back-off (0.5 s doubling to 5 s) on connection errors for
    at most ``budget_s``; then ``DatabaseUnavailable`` naming ``what`` and the last error.
    ``step`` must be safe to run again (each of ours is one transaction or idempotent)."""
    deadline = time.monotonic() + budget_s
    delay = FIRST_DELAY_S
    attempt = 0
    while True:
        attempt += 1
        try:
            return await step()
        except CONNECTION_ERRORS as exc:
            left = deadline - time.monotonic()
            reason = f"{type(exc).__name__}: {exc}"
            if left <= 0:
                raise DatabaseUnavailable(
                    f"{what}: the database is unreachable after {attempt} attempts over "
                    f"{budget_s:.0f} s ({reason})") from exc
            wait = min(delay, left)
            log.warning("%s: database connection failed (%s); retry %d in %.1f s", what,
                        reason, attempt, wait)
            await asyncio.sleep(wait)
            delay = min(delay * 2, MAX_DELAY_S)
