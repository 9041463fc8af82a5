"""Rows to JSON-ready dicts: exact decimals as strings, times in Asia/Shanghai, ids as text.

Used for the admin API's answers and the audit log's before/after, and available to the
public side so that both show a record the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from aqi_service.aqi.schemes import SHANGHAI

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
