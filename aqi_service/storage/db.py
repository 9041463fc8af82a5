"""The asyncpg pool: one per process, on the embedded server or on ``database.url``."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from aqi_service.config import Config, mask_url
from aqi_service.errors import AqiServiceError
from aqi_service.storage.embedded import ConnectParams, EmbeddedPostgres
from aqi_service.storage.supervisor import backoff

log = logging.getLogger(__name__)


class DatabaseUnavailable(AqiServiceError):
    """The database cannot be reached or set up."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where to connect: a DSN (external) or the embedded server's socket."""

    dsn: str
    label: str
    embedded: EmbeddedPostgres | None = field(default=None, compare=False)
    """The embedded server behind the DSN (for its supervisor), None on an external one."""


def _jsonb_encode(value: object) -> bytes:
    if not value and isinstance(value, dict):
        return b"\x01{}"
    return b"\x01" + json.dumps(value, ensure_ascii=False).encode()


def _jsonb_decode(data: bytes) -> object:
    return json.loads(data[1:])


async def _init_connection(conn: asyncpg.Connection) -> None:
    # Binary jsonb (version byte 1 + text) so that COPY can carry it too.
    await conn.set_type_codec("jsonb", encoder=_jsonb_encode, decoder=_jsonb_decode,
                              schema="pg_catalog", format="binary")
    await conn.execute("SET TIME ZONE 'UTC'")


@asynccontextmanager
async def database_target(cfg: Config) -> AsyncIterator[Target]:
    """Yield where to connect; start (and finally release) the embedded server if needed."""
    if cfg.database.url is not None:
        url = cfg.database.url.reveal()
        yield Target(url, mask_url(url))
        return
    embedded = EmbeddedPostgres(cfg.database.data_dir)
    loop = asyncio.get_running_loop()
    try:
        params = await _start_embedded(embedded, cfg)
    except BaseException:
        await loop.run_in_executor(None, embedded.stop)
        raise
    try:
        yield Target(params.dsn(), f"embedded PostgreSQL in {embedded.pgdata}", embedded)
    finally:
        await loop.run_in_executor(None, embedded.stop)


async def _start_embedded(embedded: EmbeddedPostgres, cfg: Config) -> ConnectParams:
    """Start the embedded server, trying again as its supervisor does after a death."""
    loop = asyncio.get_running_loop()
    attempts = max(1, cfg.database.restart_attempts)
    delays = backoff(cfg.database.restart_backoff_s)
    for attempt in range(1, attempts):
        try:
            return await loop.run_in_executor(None, embedded.start)
        except Exception as exc:  # the wheel raises plain subprocess/OS errors
            delay = next(delays)
            log.warning("embedded PostgreSQL: start attempt %d/%d failed (%s); next in %.1f s",
                        attempt, attempts, exc, delay)
            await asyncio.sleep(delay)
    try:
        return await loop.run_in_executor(None, embedded.start)
    except Exception as exc:
        raise DatabaseUnavailable(
            f"embedded PostgreSQL failed to start ({attempts} attempts): {exc}") from exc


async def create_pool(target: Target, cfg: Config,
                      query_logger: Callable[[Any], None] | None = None) -> asyncpg.Pool:
    """Create the pool and probe it with ``SELECT 1``.

    ``query_logger`` (asyncpg's hook: called with each finished statement and its time)
    is installed on every connection; the metrics use it.
    """
    db = cfg.database

    async def init(conn: asyncpg.Connection) -> None:
        await _init_connection(conn)
        if query_logger is not None:
            conn.add_query_logger(query_logger)

    try:
        pool = await asyncpg.create_pool(
            target.dsn, min_size=db.pool_min, max_size=db.pool_max,
            command_timeout=db.command_timeout_s, timeout=db.connect_timeout_s,
            init=init,
        )
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailable(f"cannot connect to {target.label}: {exc}") from exc
    log.info("database pool ready (%s, %d-%d connections)", target.label, db.pool_min,
             db.pool_max)
    return pool


@asynccontextmanager
async def open_pool(cfg: Config) -> AsyncIterator[asyncpg.Pool]:
    """Target, pool and teardown in one: for commands that just need a pool."""
    async with database_target(cfg) as target:
        pool = await create_pool(target, cfg)
        try:
            yield pool
        finally:
            await pool.close()
