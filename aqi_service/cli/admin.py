"""``aqi-service admin token create|list|revoke``: the bureau's bearer tokens.

A token is printed once, on stdout, when created; only its SHA-256 is stored. Works with
the same ``--data-dir`` / ``AQI_DATABASE_URL`` as ``serve``, also while it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg

from aqi_service.cli.service import _common, config_from_args
from aqi_service.disclosure import tokens
from aqi_service.disclosure.serialize import row_json
from aqi_service.errors import InputError


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``admin`` and its sub-commands."""
    admin = sub.add_parser("admin", help="administer the admin API (bearer tokens)")
    admin_sub = admin.add_subparsers(dest="admin_command", metavar="COMMAND")
    admin_sub.required = True
    token = admin_sub.add_parser("token", help="create, list or revoke bearer tokens")
    token_sub = token.add_subparsers(dest="token_command", metavar="ACTION")
    token_sub.required = True

    p = token_sub.add_parser("create", help="create a token and print it once")
    _common(p)
    p.add_argument("--name", required=True, help="who or what uses it (unique among live "
                                                 "tokens)")
    p.add_argument("--scope", action="append", required=True, choices=tokens.SCOPES,
                   help="a scope the token grants (repeat for several)")
    p.add_argument("--expires-days", type=int, default=None,
                   help="expire after this many days (default: never)")
    p.set_defaults(handler=create)

    p = token_sub.add_parser("list", help="list tokens (never their secrets)")
    _common(p)
    p.add_argument("--all", action="store_true", help="include revoked tokens")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=list_)

    p = token_sub.add_parser("revoke", help="revoke a live token by name or key id")
    _common(p)
    p.add_argument("name", help="the token's name or key id")
    p.set_defaults(handler=revoke)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _run(args: argparse.Namespace,
         action: Callable[[asyncpg.Connection], Awaitable[int]]) -> int:
    from aqi_service.storage import db, migrations

    cfg = config_from_args(args)

    async def main() -> int:
        async with db.open_pool(cfg) as pool, pool.acquire() as conn:
            await migrations.migrate(conn)
            return await action(conn)

    return asyncio.run(main())


def create(args: argparse.Namespace) -> int:
    """Create a token; print it once."""
    from aqi_service.storage import admin as store

    name = args.name.strip()
    if not name or len(name) > 100 or any(ord(c) < 32 for c in name):
        raise InputError("--name: 1-100 printable characters")
    if args.expires_days is not None and not 1 <= args.expires_days <= 3650:
        raise InputError("--expires-days: 1-3650")
    scopes = list(dict.fromkeys(args.scope))
    expires = (datetime.now(UTC) + timedelta(days=args.expires_days)
               if args.expires_days else None)

    async def action(conn: asyncpg.Connection) -> int:
        new = tokens.make_token()
        async with conn.transaction():
            if any(t["name"] == name for t in await store.list_tokens(conn)):
                raise InputError(f"a live token is named {name!r}; revoke it first")
            row = await store.insert_token(conn, new.key_id, name, new.token_hash, scopes,
                                           _actor(), expires)
            await store.audit(conn, _actor(), "create", "token", new.key_id, None,
                              row_json(row))
        print(new.token)
        print(f"token {name!r} (key id {new.key_id}, scopes {', '.join(scopes)}) created; "
              "it is shown only now: keep it secret", file=sys.stderr)
        return 0

    return _run(args, action)


def list_(args: argparse.Namespace) -> int:
    """List tokens."""
    from aqi_service.storage import admin as store

    async def action(conn: asyncpg.Connection) -> int:
        rows = [row_json(r) for r in await store.list_tokens(conn,
                                                             include_revoked=args.all)]
        if args.json:
            print(json.dumps(rows, ensure_ascii=False, indent=2))
            return 0
        print(f"{'KEY ID':<13} {'NAME':<24} {'SCOPES':<40} {'CREATED':<26} STATE")
        for r in rows:
            state = "revoked" if r["revoked_at"] else (
                f"expires {r['expires_at']}" if r["expires_at"] else "live")
            print(f"{r['key_id']:<13} {r['name'][:24]:<24} {','.join(r['scopes'])[:40]:<40} "
                  f"{r['created_at']:<26} {state}")
        return 0

    return _run(args, action)


def revoke(args: argparse.Namespace) -> int:
    """Revoke a token."""
    from aqi_service.storage import admin as store

    async def action(conn: asyncpg.Connection) -> int:
        async with conn.transaction():
            row = await store.revoke_token(conn, args.name)
            if row is None:
                raise InputError(f"no live token named {args.name!r}")
            await store.audit(conn, _actor(), "revoke", "token", row["key_id"], None,
                              row_json(row))
        print(f"revoked token {row['name']!r} (key id {row['key_id']})")
        return 0

    return _run(args, action)
