"""Bearer tokens of the bureau's staff: made once, stored as a SHA-256, compared in constant time.

A token reads ``aqi_<key id>_<secret>``: the key id (12 hex digits, also stored) finds the
row, the SHA-256 of the whole token is compared with ``hmac.compare_digest``. The secret has
256 bits of entropy, so a plain hash (no salt, no stretching) is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

SCOPES = ("admin", "enterprises:write", "disclosures:write", "penalties:write", "eia:write",
          "monitoring:write")
"""Known scopes; ``admin`` grants every other one and reads the audit log."""
_TOKEN = re.compile(r"^aqi_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_DUMMY_HASH = hashlib.sha256(b"no such token").digest()


@dataclass(frozen=True, slots=True)
class NewToken:
    """A freshly made token: the text (shown once) and what is stored."""

    token: str
    key_id: str
    token_hash: bytes


def make_token() -> NewToken:
    """A new random token."""
    key_id = secrets.token_hex(6)
    token = f"aqi_{key_id}_{secrets.token_urlsafe(32)}"
    return NewToken(token, key_id, hash_token(token))


def hash_token(token: str) -> bytes:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).digest()


def key_id_of(token: str) -> str | None:
    """The key id inside a well-formed token, else None."""
    match = _TOKEN.match(token)
    return match[1] if match else None


def matches(token: str, stored_hash: bytes | None) -> bool:
    """Constant-time comparison of a presented token with a stored hash."""
    presented = hash_token(token)
    return hmac.compare_digest(presented, stored_hash if stored_hash else _DUMMY_HASH) \
        and stored_hash is not None


def grants(scopes: tuple[str, ...] | list[str], needed: tuple[str, ...]) -> bool:
    """Whether a token's scopes allow an action needing any of ``needed``."""
    return "admin" in scopes or any(s in scopes for s in needed)


def check_scopes(scopes: list[str]) -> list[str]:
    """The unknown scopes among ``scopes``."""
    return [s for s in scopes if s not in SCOPES]
