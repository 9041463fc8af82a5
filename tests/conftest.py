"""Shared fixtures: a real PostgreSQL, a fresh migrated database per test, real simulators.

The server is the embedded PostgreSQL (started once per session in a short temporary
folder) unless ``AQI_TEST_DATABASE_URL`` names another one (CI also runs the suite against
PostgreSQL 15). Every test that asks for ``db_dsn`` gets its own database, created from a
migrated template, and dropped afterwards.

Whatever the event loop reports to its exception handler while a coroutine test runs (an
exception in a callback, a task dropped with its exception never retrieved, an unclosed
client session) fails that test (``loop_support``).

The fixtures that several test modules share live in the support modules named in
``pytest_plugins`` (their helpers are imported from them directly); no test module imports
another.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from clock_support import FakeClock

from aqi_service.config import Config, Secret, load_config
from aqi_service.storage import migrations
from aqi_service.storage.db import _init_connection

# The support modules, loaded as plugins: their fixtures serve every test module, and their
# asserts are rewritten like a test module's (registered first: they import each other).
SUPPORT = ["attachments_support", "browser_support", "disclosure_support", "downloads_support",
           "history_support", "loop_support", "metrics_support", "openapi_support",
           "pipeline_support", "process_support", "service_support"]
pytest.register_assert_rewrite(*SUPPORT)
pytest_plugins = SUPPORT

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = "aqi_test_template"
_counter = itertools.count()


def _with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A DSN of a PostgreSQL server's maintenance database (``postgres``)."""
    external = os.environ.get("AQI_TEST_DATABASE_URL")
    if external:
        yield _with_database(external, "postgres")
        return
    from aqi_service.storage.embedded import EmbeddedPostgres

    folder = Path(tempfile.mkdtemp(prefix="aqit-", dir="/tmp"))
    server = EmbeddedPostgres(folder)
    params = server.start()
    try:
        yield f"postgresql://{params.user}@/postgres?host={params.host}&port={params.port}"
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


async def _admin(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(dsn)


@pytest.fixture(scope="session")
def template_db(pg_server: str) -> Iterator[str]:
    """A migrated template database; tests clone it."""
    name = f"{TEMPLATE}_{os.getpid()}"

    async def setup() -> None:
        admin = await _admin(pg_server)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(_with_database(pg_server, name))
        try:
            await migrations.migrate(conn)
        finally:
            await conn.close()

    async def teardown() -> None:
        admin = await _admin(pg_server)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    asyncio.run(setup())
    try:
        yield name
    finally:
        asyncio.run(teardown())


@pytest.fixture
async def db_dsn(pg_server: str, template_db: str) -> AsyncIterator[str]:
    """A fresh migrated database for one test."""
    name = f"aqi_t_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    admin = await _admin(pg_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    finally:
        await admin.close()
    try:
        yield _with_database(pg_server, name)
    finally:
        admin = await _admin(pg_server)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test's database, set up like the service's."""
    p = await asyncpg.create_pool(db_dsn, min_size=1, max_size=4, init=_init_connection)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
def config(db_dsn: str, tmp_path: Path) -> Config:
    """The shipped configuration pointed at the test database, with short timeouts.

    Uploaded attachments (and the sample data's documents) go to the test's own folder.
    """
    cfg = load_config(REPO / "config", env={})
    return cfg.replace(
        disclosure={"attachment_dir": tmp_path / "attachments"},
        database={"url": Secret(db_dsn), "pool_min": 1, "pool_max": 4},
        collection={"timeout_s": 2.0, "connect_timeout_s": 1.0, "retries": 1,
                    "backoff_s": 0.05, "concurrency": 8},
        simulator={"port": 0},
        http={"port": 0},
    )


@pytest.fixture
def clock() -> FakeClock:
    """Fixed at 2026-11-20 10:20 Asia/Shanghai (02:20 UTC)."""
    return FakeClock(datetime(2026, 11, 20, 2, 20, tzinfo=UTC))


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session with short timeouts."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s:
        yield s


def with_database_url(cfg: Config, dsn: str) -> Config:
    """``cfg`` using ``dsn``."""
    return replace(cfg, database=replace(cfg.database, url=Secret(dsn)))


@pytest.fixture
def serve_app() -> Callable[[web.Application], contextlib.AbstractAsyncContextManager[str]]:
    """Serve an aiohttp app on a free loopback port: ``async with serve_app(app) as base``
    gives its base URL (``http://127.0.0.1:PORT``); the server stops on leaving."""
    @contextlib.asynccontextmanager
    async def serve(app: web.Application) -> AsyncIterator[str]:
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            host, port = runner.addresses[0][:2]
            yield f"http://{host}:{port}"
        finally:
            await runner.cleanup()
    return serve
