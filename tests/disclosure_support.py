"""Shared pieces of the disclosure/admin tests: the app on a real database and tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from aqi_service.config import Config
from aqi_service.disclosure import tokens
from aqi_service.storage import admin as token_store
from aqi_service.web import keys
from aqi_service.web.app import create_app

VALID_CODE = "91350100M000100Y43"
"""The example code published with GB 32100 (valid; see test_credit_code.py)."""


def admin_config(config: Config, tmp_path: Path, **disclosure: Any) -> Config:
    """The test config with attachments in a temporary folder."""
    settings = {"attachment_dir": tmp_path / "attachments", "max_attachment_bytes": 64 * 1024,
                "auth_failures": 10_000, **disclosure}
    return config.replace(disclosure=settings,
                          database={"data_dir": tmp_path / "data"})


MintToken = Callable[..., Coroutine[Any, Any, str]]


def minter(client: TestClient) -> MintToken:
    """A function making a token with some scopes in the app's database."""
    async def mint(*scopes: str, name: str | None = None) -> str:
        new = tokens.make_token()
        async with client.app[keys.POOL].acquire() as conn:
            await token_store.insert_token(conn, new.key_id, name or f"t-{new.key_id}",
                                           new.token_hash, list(scopes), "test", None)
        return new.token
    return mint


def bearer(token: str) -> dict[str, str]:
    """The Authorization header."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def admin_client(config: Config, clock: Any, tmp_path: Path
                       ) -> AsyncIterator[TestClient]:
    """The app (no scheduler) with attachments under tmp_path."""
    app = create_app(admin_config(config, tmp_path), scheduler=False, clock=clock)
    async with TestClient(TestServer(app)) as c:
        yield c
