"""Forward-only SQL migrations from ``sql/NNN_name.sql``, applied under an advisory lock.

Each file runs in its own transaction and is recorded in ``schema_migrations`` with its
checksum; a recorded file that changed afterwards is an error (write a new migration).
Concurrent starts are safe: the second waits for the lock, then finds nothing to do.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from aqi_service.errors import AqiServiceError

log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x61716901
"""Advisory lock key held while migrating."""

_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
SELECT_APPLIED = "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
INSERT_APPLIED = "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)"


class MigrationError(AqiServiceError):
    """The migrations on disk and in the database disagree."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file's text."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def sql_dir() -> Path:
    """Where the migrations live: ``AQI_SQL_DIR`` or the project's ``sql/`` folder."""
    env = os.environ.get("AQI_SQL_DIR")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parents[2] / "sql"
    return checkout if checkout.is_dir() else Path("sql")


def discover(directory: Path | None = None) -> list[Migration]:
    """The migrations on disk, in order; numbering must be 1, 2, 3 … without gaps."""
    directory = directory or sql_dir()
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNN_name.sql")
        found.append(Migration(int(match[1]), match[2], path.read_text(encoding="utf-8")))
    for expected, mig in enumerate(found, start=1):
        if mig.version != expected:
            raise MigrationError(f"migration {expected:03d} is missing (found {mig.version:03d})")
    return found


SELECT_VERSION = "SELECT coalesce(max(version), 0) FROM schema_migrations"


async def applied_version(conn: asyncpg.Connection, timeout: float | None = None) -> int:
    """The highest applied version of a migrated database (``schema_migrations`` exists)."""
    return int(await conn.fetchval(SELECT_VERSION, timeout=timeout))


async def current_version(conn: asyncpg.Connection) -> int:
    """The highest applied version (0 on an empty database)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return 0
    return await applied_version(conn)


async def migrate(conn: asyncpg.Connection, directory: Path | None = None) -> list[Migration]:
    """Apply every pending migration; return those applied (empty when up to date)."""
    migrations = discover(directory)
    applied_now: list[Migration] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(CREATE_TABLE)
        applied = {r["version"]: r for r in await conn.fetch(SELECT_APPLIED)}
        for mig in migrations:
            row = applied.get(mig.version)
            if row is not None:
                if row["checksum"] != mig.checksum:
                    raise MigrationError(
                        f"migration {mig.version:03d}_{mig.name} changed after it was applied; "
                        "migrations are forward-only: add a new file instead")
                continue
            log.info("applying migration %03d_%s", mig.version, mig.name)
            async with conn.transaction():
                await conn.execute(mig.sql)
                await conn.execute(INSERT_APPLIED, mig.version, mig.name, mig.checksum)
            applied_now.append(mig)
        extra = sorted(set(applied) - {m.version for m in migrations})
        if extra:
            raise MigrationError(
                f"the database has migrations this code does not know: {extra}; "
                "is an older version of aqi-service running against a newer database?")
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied_now


def latest_version(directory: Path | None = None) -> int:
    """The version the code expects."""
    migrations = discover(directory)
    return migrations[-1].version if migrations else 0
