"""Keyset paging: one signed cursor codec for every list (public and admin).

A cursor is the sort key of the last row shown, as JSON, base64url, and a check value that
also names the list, so that an altered cursor, or one of another list, is refused
(:class:`~aqi_service.errors.InputError`) rather than silently paging from somewhere else.
The check is not a secret: a cursor grants nothing a request could not ask for directly.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import asyncpg

from aqi_service.errors import InputError

MAX_PAGE = 200
"""Most rows of a page of a disclosure list."""
CURSOR_MAX_CHARS = 600


def _check(kind: str, payload: bytes) -> str:
    return hashlib.sha256(b"aqi-service cursor\0" + kind.encode() + b"\0" + payload
                          ).hexdigest()[:12]


def encode_cursor(kind: str, *key: datetime | date | int | str) -> str:
    """An opaque cursor of list ``kind`` after the row with sort key ``key``."""
    payload = json.dumps([k.isoformat() if isinstance(k, date | datetime) else k for k in key],
                         ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + _check(kind, payload)


def decode_cursor(kind: str, cursor: str, types: Sequence[type]) -> tuple[Any, ...]:
    """The sort key in a cursor of list ``kind``; InputError if it was not made for it."""
    try:
        if len(cursor) > CURSOR_MAX_CHARS or cursor.count(".") != 1:
            raise ValueError
        body, check = cursor.split(".")
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        if check != _check(kind, payload):
            raise ValueError
        raw = json.loads(payload)
        if not isinstance(raw, list) or len(raw) != len(types):
            raise ValueError
        out: list[Any] = []
        for kind_of, value in zip(types, raw, strict=True):
            if kind_of is datetime:
                when = datetime.fromisoformat(value)
                if when.tzinfo is None:
                    raise ValueError
                out.append(when)
            elif kind_of is date:
                out.append(date.fromisoformat(value))
            elif kind_of is int:
                if type(value) is not int or not -2 ** 63 <= value < 2 ** 63:
                    raise ValueError
                out.append(value)
            elif type(value) is str:
                out.append(value)
            else:
                raise ValueError
        return tuple(out)
    except (ValueError, TypeError, UnicodeDecodeError, binascii.Error):
        raise InputError("not a cursor of this list") from None


def after(kind: str, cursor: str | None, types: Sequence[type]) -> tuple[Any, ...]:
    """The sort key of ``cursor`` (all None for the first page)."""
    return decode_cursor(kind, cursor, types) if cursor else (None,) * len(types)


def clamp(limit: int, most: int = MAX_PAGE) -> int:
    """A page size within 1..``most``."""
    return max(1, min(limit, most))


def page(rows: Sequence[asyncpg.Record], limit: int, kind: str,
         key: Sequence[str]) -> tuple[list[asyncpg.Record], str | None]:
    """The first ``limit`` of ``limit + 1`` fetched rows and the cursor of the next page."""
    more = len(rows) > limit
    shown = list(rows[:limit])
    return shown, (encode_cursor(kind, *(shown[-1][k] for k in key)) if more else None)
