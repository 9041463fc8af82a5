"""The admin failure limiter over real HTTP on a real database: what counts as a guess,
per address and per key id, never reset by another token, never locking a valid token out,
and the client address read through trusted proxies only."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from disclosure_support import ENTERPRISE, admin_config, bearer, minter

from aqi_service.config import Config, HttpConfig
from aqi_service.web import keys
from aqi_service.web.app import create_app
from aqi_service.web.client_address import (
    ClientAddresses,
    forwarded_for,
    limiter_key,
    x_forwarded_for,
)

pytestmark = pytest.mark.db
AUDIT = "/api/v1/admin/audit"


def _guess() -> str:
    """A well-formed token nobody was given."""
    return f"aqi_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


def _client(config: Config, clock: Any, tmp_path: Path, failures: int = 10,
            **http: Any) -> TestClient:
    cfg = admin_config(config, tmp_path, auth_failures=failures, auth_window_s=300)
    if http:
        cfg = cfg.replace(http=http)
    return TestClient(TestServer(create_app(cfg, scheduler=False, clock=clock)))


async def test_requests_without_credentials_are_401_and_not_guesses(
        config: Config, clock: Any, tmp_path: Path) -> None:
    async with _client(config, clock, tmp_path, failures=3) as client:
        for headers in ({}, {"Authorization": ""}, {"Authorization": "Basic dXNlcjpwYXNz"},
                        {"Authorization": "Bearer "}) * 6:
            resp = await client.get(AUDIT, headers=headers)
            assert resp.status == 401, headers
            assert resp.headers["WWW-Authenticate"].startswith('Bearer realm=')
            assert (await resp.json())["error"]["code"] == "unauthorized"
        # RFC 6750 §3.1: no error code when there was no authentication at all
        resp = await client.get(AUDIT)
        assert "error=" not in resp.headers["WWW-Authenticate"]
        # the three guesses the address is allowed are all still there
        for _ in range(3):
            assert (await client.get(AUDIT, headers=bearer(_guess()))).status == 401
        resp = await client.get(AUDIT, headers=bearer(_guess()))
        assert resp.status == 429
        # and still no 429 for a request that guesses nothing
        assert (await client.get(AUDIT)).status == 401


async def test_a_valid_token_of_another_scope_does_not_reset_the_count(
        config: Config, clock: Any, tmp_path: Path) -> None:
    """The issue's run: 27 × (10 wrong guesses + 1 valid token lacking the scope)."""
    async with _client(config, clock, tmp_path) as client:
        low = await minter(client)("monitoring:write")
        answers = []
        for _ in range(27):
            for _ in range(10):
                answers.append((await client.get(AUDIT, headers=bearer(_guess()))).status)
            resp = await client.get(AUDIT, headers=bearer(low))
            assert resp.status == 403   # valid, authenticated, lacks the scope
        assert answers.count(401) == 10
        assert answers.count(429) == 260


async def test_a_valid_token_passes_from_a_locked_address(
        config: Config, clock: Any, tmp_path: Path) -> None:
    async with _client(config, clock, tmp_path) as client:
        good = await minter(client)("admin")
        for _ in range(10):
            assert (await client.get(AUDIT, headers=bearer(_guess()))).status == 401
        resp = await client.get(AUDIT, headers=bearer(_guess()))
        assert resp.status == 429
        assert 1 <= int(resp.headers["Retry-After"]) <= 300
        body = await resp.json()
        assert body["error"]["code"] == "too_many_failures"
        assert body["error"]["details"]["retry_after_s"] == int(resp.headers["Retry-After"])
        # the real admin is not locked out, first time seen or not
        for _ in range(3):
            assert (await client.get(AUDIT, headers=bearer(good))).status == 200
        # a revoked token does not pass the lock as a "recently valid" one
        async with client.app[keys.POOL].acquire() as conn:
            await conn.execute("UPDATE admin_tokens SET revoked_at = now()")
        assert (await client.get(AUDIT, headers=bearer(good))).status == 429
        # the window ends: 401 again, not 429
        guard = client.app[keys.ADMIN_GUARD]
        guard.set_clock(lambda: 10.0 ** 9)
        assert (await client.get(AUDIT, headers=bearer(_guess()))).status == 401


async def test_failures_are_counted_per_key_id_across_addresses(
        config: Config, clock: Any, tmp_path: Path) -> None:
    async with _client(config, clock, tmp_path, failures=5,
                       trusted_proxies=("127.0.0.1/32",)) as client:
        good = await minter(client)("admin")
        key_id = good.split("_")[1]
        wrong = f"aqi_{key_id}_{'B' * 43}"
        for i in range(5):   # five addresses, one failure each, all against one key id
            resp = await client.get(AUDIT, headers={**bearer(wrong),
                                                     "X-Forwarded-For": f"198.51.100.{i}"})
            assert resp.status == 401
        fresh = {"X-Forwarded-For": "203.0.113.9"}
        resp = await client.get(AUDIT, headers={**bearer(wrong), **fresh})
        assert resp.status == 429    # the key id is locked, whatever the address
        assert (await client.get(AUDIT, headers={**bearer(_guess()), **fresh})).status == 401
        # and its real token still passes
        assert (await client.get(AUDIT, headers={**bearer(good), **fresh})).status == 200


async def test_the_client_address_comes_from_trusted_proxies_only(
        config: Config, clock: Any, tmp_path: Path) -> None:
    async with _client(config, clock, tmp_path, failures=3,
                       trusted_proxies=("127.0.0.1/32", "10.0.0.0/8")) as client:
        # a client behind two trusted proxies, with a forged left part
        one = {"X-Forwarded-For": "6.6.6.6, 198.51.100.7, 10.1.2.3"}
        for i in range(3):
            forged = {"X-Forwarded-For": f"6.6.6.{i}, 198.51.100.7, 10.1.2.3"}
            assert (await client.get(AUDIT, headers={**bearer(_guess()), **forged})
                    ).status == 401
        assert (await client.get(AUDIT, headers={**bearer(_guess()), **one})).status == 429
        # another client behind the same proxies is not locked
        other = {"X-Forwarded-For": "198.51.100.8, 10.1.2.3"}
        assert (await client.get(AUDIT, headers={**bearer(_guess()), **other})).status == 401
        # the audit log records the client, not the proxy
        good = await minter(client)("admin")
        resp = await client.post("/api/v1/admin/enterprises", json=ENTERPRISE,
                                 headers={**bearer(good), **other})
        assert resp.status == 201, await resp.text()
        async with client.app[keys.POOL].acquire() as conn:
            assert await conn.fetchval("SELECT client_address FROM audit_log") == "198.51.100.8"

    # without trusted proxies the header is the client's word and is ignored
    async with _client(config, clock, tmp_path / "b", failures=3) as client:
        for i in range(3):
            headers = {**bearer(_guess()), "X-Forwarded-For": f"198.51.100.{i}"}
            assert (await client.get(AUDIT, headers=headers)).status == 401
        headers = {**bearer(_guess()), "X-Forwarded-For": "198.51.100.200"}
        assert (await client.get(AUDIT, headers=headers)).status == 429


async def test_verification_under_a_flood_is_bounded(
        config: Config, clock: Any, tmp_path: Path) -> None:
    """While locked, a flood of fresh guesses costs at most the rationed look-ups."""
    from aqi_service.web.admin_auth import LOCKED_CHECKS_BURST, LOCKED_CHECKS_PER_S

    async def scans(client: TestClient) -> int:
        # A backend flushes its table statistics when it goes idle, at most once a second
        # unless forced: every connection of the pool is made to flush before the count.
        pool = client.app[keys.POOL]
        conns = [await pool.acquire(timeout=5) for _ in range(pool.get_max_size())]
        try:
            for conn in conns:
                await conn.execute("SELECT pg_stat_force_next_flush()")
            return await conns[0].fetchval(
                "SELECT coalesce(idx_scan, 0) + coalesce(seq_scan, 0) FROM pg_stat_user_tables"
                " WHERE relname = 'admin_tokens'")
        finally:
            for conn in conns:
                await pool.release(conn)

    async with _client(config, clock, tmp_path, failures=3) as client:
        for _ in range(3):
            await client.get(AUDIT, headers=bearer(_guess()))
        before = await scans(client)
        loop = asyncio.get_running_loop()
        started = loop.time()
        statuses = [(await client.get(AUDIT, headers=bearer(_guess()))).status
                    for _ in range(300)]
        elapsed = loop.time() - started
        after = await scans(client)
        assert set(statuses) == {429}
        allowed = LOCKED_CHECKS_BURST + LOCKED_CHECKS_PER_S * (elapsed + 1.5)
        assert after - before <= allowed, (after - before, allowed, elapsed)


def test_forwarding_headers_are_read_right_to_left() -> None:
    addresses = ClientAddresses(HttpConfig(trusted_proxies=("10.0.0.0/8", "2001:db8::/32")))
    hops = x_forwarded_for(["1.1.1.1, 192.0.2.1", "10.0.0.2"])
    assert hops == ["1.1.1.1", "192.0.2.1", "10.0.0.2"]
    assert addresses.rightmost_untrusted(hops, "10.0.0.1") == "192.0.2.1"
    assert addresses.rightmost_untrusted(["10.0.0.3"], "10.0.0.1") == "10.0.0.3"
    assert addresses.rightmost_untrusted([], "10.0.0.1") == "10.0.0.1"
    # RFC 7239 §4 examples: quoted IPv6 with a port, several elements, parameters
    fwd = forwarded_for(['for="_gazonk"', 'For="[2001:db8:cafe::17]:4711"',
                         "for=192.0.2.60;proto=http;by=203.0.113.43, for=198.51.100.17"])
    assert fwd == ["_gazonk", "[2001:db8:cafe::17]:4711", "192.0.2.60", "198.51.100.17"]
    assert addresses.rightmost_untrusted(fwd, "10.0.0.1") == "198.51.100.17"
    assert addresses.rightmost_untrusted(['[2001:db8:cafe::17]:4711'], "10.0.0.1") \
        == "2001:db8:cafe::17"
    assert addresses.rightmost_untrusted(["_gazonk"], "10.0.0.1") == "_gazonk"
    # IPv6 clients are counted by their /64, mapped IPv4 as IPv4
    assert limiter_key("2001:db8:1:2:aaaa::1") == limiter_key("2001:db8:1:2:bbbb::9") \
        == "2001:db8:1:2::/64"
    assert limiter_key("::ffff:192.0.2.1") == "192.0.2.1"
