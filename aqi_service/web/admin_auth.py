"""Bearer tokens on the admin API: 401 / 403 / 429, failures limited per client address.

Every admin handler is wrapped by :func:`requires` with the scopes it needs (a token with
any of them, or ``admin``, passes). A missing or invalid token answers 401 with
``WWW-Authenticate: Bearer``; a valid token without the scope answers 403. Each client
address may fail ``auth_failures`` times per ``auth_window_s``; then it gets 429 with
``Retry-After`` until the window ends. The table of addresses is bounded
(``auth_clients_tracked``, oldest forgotten first), so memory stays bounded under attack.
"""

from __future__ import annotations

import functools
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from aqi_service.config import DisclosureConfig
from aqi_service.disclosure import tokens
from aqi_service.disclosure.service import Actor
from aqi_service.storage import admin as token_store
from aqi_service.web import keys
from aqi_service.web.errors import ApiError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REALM = 'Bearer realm="aqi-service admin"'


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
    """Failed authentications per client address in a fixed window, bounded in size."""

    def __init__(self, limit: int, window_s: float, max_clients: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_clients = max_clients
        self.clock = clock
        self._clients: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or None if it may now."""
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
        """Count a failure."""
        now = self.clock()
        start, count = self._clients.pop(client, (now, 0))
        if now - start >= self.window_s:
            start, count = now, 0
        self._clients[client] = (start, count + 1)
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)

    def succeed(self, client: str) -> None:
        """Forget a client's failures after a good token."""
        self._clients.pop(client, None)

    def __len__(self) -> int:
        return len(self._clients)


class AdminGuard:
    """Checks bearer tokens against the database."""

    def __init__(self, cfg: DisclosureConfig) -> None:
        self.limiter = FailureLimiter(cfg.auth_failures, cfg.auth_window_s,
                                      cfg.auth_clients_tracked)

    async def authenticate(self, request: web.Request) -> Principal:
        """The request's principal, or 401/429."""
        client = request.remote or "unknown"
        wait = self.limiter.retry_after(client)
        if wait is not None:
            raise _with_headers(ApiError(429, "too_many_failures",
                                         "too many failed authentications from this address",
                                         {"retry_after_s": wait}),
                                {"Retry-After": str(wait)})
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:   # no credentials: not a guess
            raise _unauthorized("a bearer token is required", "invalid_request")
        key_id = tokens.key_id_of(token)
        row = None
        if key_id is not None:
            async with request.app[keys.POOL].acquire() as conn:
                row = await token_store.token_by_key_id(conn, key_id)
        ok = tokens.matches(token, row["token_hash"] if row else None)
        now = datetime.now(UTC)
        if not ok or row is None or row["revoked_at"] is not None or (
                row["expires_at"] is not None and row["expires_at"] <= now):
            self.limiter.fail(client)
            raise _unauthorized("the token is invalid, revoked or expired", "invalid_token")
        self.limiter.succeed(client)
        async with request.app[keys.POOL].acquire() as conn:
            await token_store.touch_token(conn, row["id"], now)
        return Principal(row["id"], row["name"], tuple(row["scopes"]))


def _with_headers(err: ApiError, headers: dict[str, str]) -> ApiError:
    err.headers.update(headers)
    return err


def _unauthorized(message: str, error: str) -> ApiError:
    return _with_headers(ApiError(401, "unauthorized", message),
                         {"WWW-Authenticate": f'{REALM}, error="{error}"'})


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
    """The audit actor of an authenticated admin request."""
    principal = request[keys.ADMIN_PRINCIPAL]
    return Actor(principal.actor_name, request.remote or "",
                 request.headers.get("X-Request-ID", "")[:100])
