"""The bureau's bearer tokens and the audit log (append-only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from aqi_service.storage.cursors import after, clamp, page

INSERT_TOKEN = """
INSERT INTO admin_tokens (key_id, name, token_hash, scopes, created_by, expires_at)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id, key_id, name, scopes, created_at, created_by, expires_at
"""
SELECT_TOKEN = """
SELECT id, key_id, name, token_hash, scopes, expires_at, revoked_at
FROM admin_tokens WHERE key_id = $1
"""
TOUCH_TOKEN = """
UPDATE admin_tokens SET last_used_at = $2
WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2::timestamptz - interval '1 minute')
"""
LIST_TOKENS = """
SELECT id, key_id, name, scopes, created_at, created_by, expires_at, last_used_at, revoked_at
FROM admin_tokens
WHERE $1 OR revoked_at IS NULL
ORDER BY id
"""
REVOKE_TOKEN = """
UPDATE admin_tokens SET revoked_at = now()
WHERE revoked_at IS NULL AND (name = $1 OR key_id = $1)
RETURNING id, key_id, name, scopes, created_at, revoked_at
"""

INSERT_AUDIT = """
INSERT INTO audit_log (actor, action, entity, entity_id, before, after, client_address,
                       request_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING id
"""
LIST_AUDIT = """
SELECT id, at, actor, action, entity, entity_id, before, after, client_address, request_id
FROM audit_log
WHERE ($1::text IS NULL OR entity = $1)
  AND ($2::text IS NULL OR entity_id = $2)
  AND ($3::text IS NULL OR actor = $3)
  AND ($4::timestamptz IS NULL OR at >= $4)
  AND ($5::bigint IS NULL OR id < $5)
ORDER BY id DESC
LIMIT $6
"""


async def insert_token(conn: asyncpg.Connection, key_id: str, name: str, token_hash: bytes,
                       scopes: Sequence[str], created_by: str,
                       expires_at: datetime | None) -> asyncpg.Record:
    """Store a new token's hash; the row without the hash."""
    return await conn.fetchrow(INSERT_TOKEN, key_id, name, token_hash, list(scopes),
                               created_by, expires_at)


async def token_by_key_id(conn: asyncpg.Connection, key_id: str) -> asyncpg.Record | None:
    """The token row with ``key_id`` (hash included, for the constant-time comparison)."""
    return await conn.fetchrow(SELECT_TOKEN, key_id)


async def touch_token(conn: asyncpg.Connection, token_id: int, at: datetime) -> None:
    """Note a token's use (at most once a minute, to spare writes)."""
    await conn.execute(TOUCH_TOKEN, token_id, at)


async def list_tokens(conn: asyncpg.Connection, *, include_revoked: bool = False
                      ) -> list[asyncpg.Record]:
    """Tokens without their hashes."""
    return await conn.fetch(LIST_TOKENS, include_revoked)


async def revoke_token(conn: asyncpg.Connection, name_or_key_id: str) -> asyncpg.Record | None:
    """Revoke the live token with this name or key id; the row, or None if none was live."""
    return await conn.fetchrow(REVOKE_TOKEN, name_or_key_id)


async def audit(conn: asyncpg.Connection, actor: str, action: str, entity: str,
                entity_id: object, before: Mapping[str, Any] | None = None,
                after: Mapping[str, Any] | None = None, *, client_address: str = "",
                request_id: str = "") -> int:
    """Append one entry to the audit log (inside the change's transaction); its id.
    ``before`` and ``after`` are JSON data (``serialize.jsonable``)."""
    return await conn.fetchval(INSERT_AUDIT, actor, action, entity, str(entity_id), before,
                               after, client_address, request_id)


async def list_audit(
    conn: asyncpg.Connection, *, entity: str | None = None, entity_id: str | None = None,
    actor: str | None = None, since: datetime | None = None, cursor: str | None = None,
    limit: int = 100,
) -> tuple[list[asyncpg.Record], str | None]:
    """Audit entries, newest first."""
    before = after("audit", cursor, (int,))
    limit = clamp(limit, 500)
    rows = await conn.fetch(LIST_AUDIT, entity, entity_id, actor, since, *before, limit + 1)
    return page(rows, limit, "audit", ("id",))
