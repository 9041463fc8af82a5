"""Errors the event loop reports fail the test that produced them (``loop_support``): run on
tests written to produce each kind, in a pytest of their own."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg.connection
from loop_support import _asyncpg_cancel_left_pending

INNER = '''
import asyncio


async def test_a_task_dropped_with_its_exception():
    async def boom():
        raise RuntimeError("dropped")
    task = asyncio.ensure_future(boom())
    await asyncio.sleep(0.01)
    del task


async def test_an_exception_in_a_callback():
    asyncio.get_running_loop().call_soon(lambda: 1 / 0)
    await asyncio.sleep(0.01)


async def test_a_quiet_coroutine():
    await asyncio.sleep(0)


def test_a_plain_function():
    assert True
'''


def test_reported_errors_fail_their_tests_and_only_theirs(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["loop_support"]\n')
    (tmp_path / "test_inner.py").write_text(INNER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o",
         "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=session", "-o",
         "asyncio_default_test_loop_scope=session", "--rootdir", str(tmp_path),
         str(tmp_path)],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    out = run.stdout
    assert run.returncode == 1, out + run.stderr
    # Each of the two fails at its teardown (its call passed): 4 calls passed, 2 errors.
    assert "4 passed, 2 errors" in out, out
    assert "ERROR test_inner.py::test_a_task_dropped_with_its_exception" in out, out
    assert "ERROR test_inner.py::test_an_exception_in_a_callback" in out, out
    assert "Task exception was never retrieved: RuntimeError('dropped')" in out, out
    assert "ZeroDivisionError" in out, out
    assert "test_a_quiet_coroutine -" not in out and "test_a_plain_function -" not in out


async def test_only_asyncpg_s_own_cancel_task_is_let_through() -> None:
    loop = asyncio.get_running_loop()
    cancel = loop.create_task(asyncpg.connection.Connection._cancel(None, None))
    other = loop.create_task(asyncio.sleep(1))
    message = "Task was destroyed but it is pending!"
    try:
        assert _asyncpg_cancel_left_pending({"message": message, "task": cancel})
        assert not _asyncpg_cancel_left_pending({"message": message, "task": other})
        assert not _asyncpg_cancel_left_pending({"message": "Task exception was never "
                                                 "retrieved", "task": cancel})
    finally:
        cancel.cancel()
        other.cancel()
        await asyncio.gather(cancel, other, return_exceptions=True)
