"""Rows to JSON-ready dicts: exact decimals as strings, times in Asia/Shanghai, ids as text.

Used for the admin API's answers and the audit log's before/after, and available to the
public side so that both show a record the same way.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from aqi_service.aqi.schemes import SHANGHAI
from aqi_service.errors import InputError

HIDDEN = frozenset({"search_text", "search_tokens", "storage_name", "token_hash"})
"""Columns never shown: search support, file-system names, secrets."""


def jsonable(value: Any) -> Any:
    """One value as JSON data (Decimal → its exact text; datetime → ISO 8601 +08:00)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.astimezone(SHANGHAI).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def row_json(row: Mapping[str, Any] | None, hide: Iterable[str] = ()) -> dict[str, Any] | None:
    """A row as a dict of JSON data without hidden columns."""
    if row is None:
        return None
    hidden = HIDDEN | set(hide)
    return {k: jsonable(v) for k, v in dict(row).items() if k not in hidden}


def encode_cursor(*parts: datetime | date | int | str) -> str:
    """An opaque keyset cursor from the last row's sort key."""
    text = "|".join(p.isoformat() if isinstance(p, date | datetime) else str(p) for p in parts)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kinds: tuple[type, ...]) -> tuple[Any, ...]:
    """The sort key of a cursor; InputError if it was not made by encode_cursor."""
    try:
        if len(cursor) > 200:
            raise ValueError
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        raw = text.split("|")
        if len(raw) != len(kinds):
            raise ValueError
        out: list[Any] = []
        for kind, part in zip(kinds, raw, strict=True):
            if kind is datetime:
                when = datetime.fromisoformat(part)
                if when.tzinfo is None:
                    raise ValueError
                out.append(when)
            elif kind is date:
                out.append(date.fromisoformat(part))
            elif kind is int:
                number = int(part)
                if not 0 <= number < 2 ** 63:
                    raise ValueError
                out.append(number)
            else:
                out.append(part)
        return tuple(out)
    except (ValueError, UnicodeDecodeError):
        raise InputError("not a cursor of this list") from None
