"""Bearer tokens on the admin API: 401 / 403 / 429, failed verifications limited.

Every admin handler is wrapped by :func:`requires` with the scopes it needs (a token with
any of them, or ``admin``, passes). A request without a bearer token answers 401 with
``WWW-Authenticate: Bearer`` and is not a guess: nothing was verified. A token that fails
verification (unknown, wrong secret, revoked, expired) is counted against its client
address (an IPv6 address by its /64, the address read through trusted proxies, see
``client_address``) and against its key id (the ``aqi_<key id>_`` part, when the token has
that form), ``auth_failures`` per ``auth_window_s``. A valid token without the scope
answers 403 and is no failure; nothing resets the counts but the end of the window, so
interleaving one's own valid token does not buy more guesses.

A locked address or key id answers 429 with ``Retry-After`` to failed attempts only: the
token is verified first, so a valid token passes from a locked address (behind one proxy
address, an attacker would otherwise lock every admin out). Verification costs a database
look-up, so while locked it is rationed: a token that verified within the window is
always checked, any other at most ``LOCKED_CHECKS_PER_S`` per second for the whole service,
beyond which the answer is 429 at the cost of one SHA-256. The secret has 256 bits, so the
limit is not what keeps it from being guessed; it bounds the work a flood can cause, and
makes one visible. The hash comparison is constant-time, and a well-formed token costs
the same look-up whether its key id exists or not. Every table is bounded
(``auth_clients_tracked`` entries, oldest forgotten first).
"""

from __future__ import annotations

import functools
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from aiohttp import web

from aqi_service.config import DisclosureConfig, HttpConfig
from aqi_service.disclosure import tokens
from aqi_service.disclosure.service import Actor
from aqi_service.storage import admin as token_store
from aqi_service.web import keys
from aqi_service.web.client_address import ClientAddresses, limiter_key
from aqi_service.web.errors import ApiError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REALM = 'Bearer realm="aqi-service admin"'
LOCKED_CHECKS_PER_S = 5.0
"""Verifications per second granted to tokens never seen valid while their address or key
id is locked: enough for an admin to get in, too few for a flood to load the database."""
LOCKED_CHECKS_BURST = 10
RECENT_TOKENS = 256
"""Tokens remembered as recently valid (by their SHA-256), for the locked path."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The token an admin request was made with."""

    token_id: int
    name: str
    scopes: tuple[str, ...]

    @property
    def actor_name(self) -> str:
        """How the audit log names it."""
        return f"token:{self.name}"


class FailureLimiter:
    """Failures per key (an address or a key id) in a fixed window, bounded in size."""

    def __init__(self, limit: int, window_s: float, max_clients: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_clients = max_clients
        self.clock = clock
        self._clients: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` is no longer locked, or None if it is not locked."""
        entry = self._clients.get(client)
        if entry is None:
            return None
        start, count = entry
        left = start + self.window_s - self.clock()
        if left <= 0:
            del self._clients[client]
            return None
        return max(1, math.ceil(left)) if count >= self.limit else None

    def fail(self, client: str) -> None:
        """Count a failure (the most recently failing keys are the last forgotten)."""
        now = self.clock()
        start, count = self._clients.pop(client, (now, 0))
        if now - start >= self.window_s:
            start, count = now, 0
        self._clients[client] = (start, count + 1)
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)

    def __len__(self) -> int:
        return len(self._clients)


class Budget:
    """A token bucket: ``rate`` grants per second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._level = float(burst)
        self._at = clock()

    def take(self) -> bool:
        """Spend one grant if there is one."""
        now = self.clock()
        self._level = min(self.burst, self._level + (now - self._at) * self.rate)
        self._at = now
        if self._level < 1:
            return False
        self._level -= 1
        return True


class AdminGuard:
    """Checks bearer tokens against the database, limiting failed verifications."""

    def __init__(self, cfg: DisclosureConfig, http: HttpConfig | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.by_address = FailureLimiter(cfg.auth_failures, cfg.auth_window_s,
                                         cfg.auth_clients_tracked, clock)
        self.by_key_id = FailureLimiter(cfg.auth_failures, cfg.auth_window_s,
                                        cfg.auth_clients_tracked, clock)
        self.locked_checks = Budget(LOCKED_CHECKS_PER_S, LOCKED_CHECKS_BURST, clock)
        self.addresses = ClientAddresses(http or HttpConfig())
        self.window_s = cfg.auth_window_s
        self.clock = clock
        self._recent: OrderedDict[bytes, float] = OrderedDict()

    def set_clock(self, clock: Callable[[], float]) -> None:
        """Use another clock everywhere (tests move time forward with it)."""
        self.clock = self.by_address.clock = self.by_key_id.clock = clock
        self.locked_checks.clock = clock

    async def authenticate(self, request: web.Request) -> Principal:
        """The request's principal, or 401/429."""
        token = _bearer_token(request)
        client = limiter_key(self.addresses.client_of(request))
        key_id = tokens.key_id_of(token)
        digest = tokens.hash_token(token)
        waits = [w for w in (self.by_address.retry_after(client),
                             self.by_key_id.retry_after(key_id) if key_id else None) if w]
        if waits and not self._recently_valid(digest) and not self.locked_checks.take():
            raise _too_many(max(waits))
        row = await self._verify(request, token, key_id)
        if row is None:
            self.by_address.fail(client)
            if key_id:
                self.by_key_id.fail(key_id)
            if waits:
                raise _too_many(max(waits))
            raise _unauthorized("the token is invalid, revoked or expired", "invalid_token")
        self._remember(digest)
        async with request.app[keys.POOL].acquire() as conn:
            await token_store.touch_token(conn, row["id"], datetime.now(UTC))
        return Principal(row["id"], row["name"], tuple(row["scopes"]))

    async def _verify(self, request: web.Request, token: str,
                      key_id: str | None) -> asyncpg.Record | None:
        """The live token row matching ``token`` (constant-time hash comparison), or None."""
        row = None
        if key_id is not None:
            async with request.app[keys.POOL].acquire() as conn:
                row = await token_store.token_by_key_id(conn, key_id)
        ok = tokens.matches(token, row["token_hash"] if row else None)
        if not ok or row is None or row["revoked_at"] is not None or (
                row["expires_at"] is not None and row["expires_at"] <= datetime.now(UTC)):
            return None
        return row

    def _recently_valid(self, digest: bytes) -> bool:
        seen = self._recent.get(digest)
        return seen is not None and self.clock() - seen < self.window_s

    def _remember(self, digest: bytes) -> None:
        self._recent.pop(digest, None)
        self._recent[digest] = self.clock()
        while len(self._recent) > RECENT_TOKENS:
            self._recent.popitem(last=False)


def _bearer_token(request: web.Request) -> str:
    """The bearer token of the request; 401 (not counted) when it carries none."""
    header = request.headers.get("Authorization", "").strip()
    if not header:
        # RFC 6750 §3.1: no error code when the request had no authentication at all
        raise _with_headers(ApiError(401, "unauthorized", "a bearer token is required"),
                            {"WWW-Authenticate": REALM})
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("a bearer token is required", "invalid_request")
    return token


def _with_headers(err: ApiError, headers: dict[str, str]) -> ApiError:
    err.headers.update(headers)
    return err


def _unauthorized(message: str, error: str) -> ApiError:
    return _with_headers(ApiError(401, "unauthorized", message),
                         {"WWW-Authenticate": f'{REALM}, error="{error}"'})


def _too_many(wait: int) -> ApiError:
    return _with_headers(ApiError(429, "too_many_failures",
                                  "too many failed authentications from this address or "
                                  "for this token", {"retry_after_s": wait}),
                         {"Retry-After": str(wait)})


def requires(*scopes: str) -> Callable[[Handler], Handler]:
    """Wrap a handler: authenticate, then require one of ``scopes`` (``admin`` always does)."""
    unknown = tokens.check_scopes(list(scopes))
    if unknown or not scopes:
        raise ValueError(f"unknown scopes {unknown}")

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            principal = await request.app[keys.ADMIN_GUARD].authenticate(request)
            if not tokens.grants(principal.scopes, scopes):
                raise ApiError(403, "forbidden",
                               f"the token lacks the scope {' or '.join(scopes)}",
                               {"required_scopes": list(scopes),
                                "token_scopes": list(principal.scopes)})
            request[keys.ADMIN_PRINCIPAL] = principal
            return await handler(request)
        guarded.admin_scopes = scopes  # type: ignore[attr-defined]
        return guarded
    return wrap


def actor_of(request: web.Request) -> Actor:
    """The audit actor of an authenticated admin request (address as the limiter sees it)."""
    principal = request[keys.ADMIN_PRINCIPAL]
    client = request.app[keys.ADMIN_GUARD].addresses.client_of(request)
    return Actor(principal.actor_name, client, request.headers.get("X-Request-ID", "")[:100])
