"""Unhandled errors in the event loop fail the test that produced them.

Every coroutine test gets ``loop_errors``: an exception handler on the running loop that
keeps what the loop reports (an exception in a callback, a task dropped with its exception
never retrieved, a task destroyed while pending, an unclosed client session) and still logs
it as asyncio does. At the test's teardown a garbage collection makes dropped tasks report
themselves, and the test fails if anything was reported.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every coroutine test watches the event loop (``loop_errors``)."""
    for item in items:
        if asyncio.iscoroutinefunction(getattr(item, "obj", None)):
            item.fixturenames.insert(0, "loop_errors")


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict]]:
    """What the event loop reports to its exception handler during the test (still logged
    as asyncio logs it); the test fails at teardown if there is anything."""
    loop = asyncio.get_running_loop()
    caught: list[dict] = []

    def handler(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        if not _asyncpg_cancel_left_pending(context):
            caught.append(context)
        loop.default_exception_handler(context)

    previous = loop.get_exception_handler()
    loop.set_exception_handler(handler)
    try:
        yield caught
        # A task dropped with its exception unread reports it when it is collected.
        gc.collect()
        await asyncio.sleep(0)   # the reports of what the collection finalised
    finally:
        loop.set_exception_handler(previous)
    if caught:
        pytest.fail("the event loop reported:\n" + "\n".join(
            f"{c.get('message')}: {c.get('exception')!r}" for c in caught), pytrace=False)


def _asyncpg_cancel_left_pending(context: dict) -> bool:
    """asyncpg's own CancelRequest task, dropped pending with its connection.

    When a statement times out about when the server terminates its session, asyncpg (0.32)
    can leave its ``Connection._cancel`` task waiting for an acknowledgement that will never
    come; the task is destroyed with the connection. No code of the service's runs in it, and
    nothing is lost: the connection is gone already.
    """
    task = context.get("task")
    coro = task.get_coro() if isinstance(task, asyncio.Task) else None
    return (context.get("message") == "Task was destroyed but it is pending!"
            and getattr(coro, "__qualname__", "") == "Connection._cancel"
            and "asyncpg" in Path(coro.cr_code.co_filename).parts)
