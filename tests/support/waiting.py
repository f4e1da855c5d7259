"""Waiting for something that happens in the background, with a deadline.

Deadlines are generous on purpose (the suite must pass on a busy 2-core machine) and scale
with `OMS_AUTH_TEST_DEADLINE_SCALE` (default 1) for slower machines still. How fast
something happens is measured in `make bench`, never asserted here.

`wait_for` polls an async condition from async tests; `wait_until` is its synchronous twin
for tests that drive a server process from plain (non-async) code.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import TypeAlias

DEADLINE_SCALE = float(os.environ.get("OMS_AUTH_TEST_DEADLINE_SCALE", "1"))

# What the AssertionError says besides the deadline: a text, or a function called only on
# failure (for what is worth reading then, such as the server's last log lines).
Message: TypeAlias = str | Callable[[], str] | None


def _timed_out(limit: float, message: Message) -> AssertionError:
    detail = message() if callable(message) else message
    reason = f"condition not met within {limit} s"
    return AssertionError(f"{detail} ({reason})" if detail else reason)


async def wait_for(
    condition: Callable[[], Awaitable[bool]],
    *,
    timeout: float,
    interval: float = 0.02,
    message: Message = None,
) -> float:
    """Seconds until `condition()` held; AssertionError after `timeout` (scaled)."""
    limit = timeout * DEADLINE_SCALE
    started = time.monotonic()
    while True:
        if await condition():
            return time.monotonic() - started
        if time.monotonic() - started > limit:
            raise _timed_out(limit, message)
        await asyncio.sleep(interval)


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.05,
    message: Message = None,
) -> float:
    """`wait_for` for synchronous code: sleeps (blocking) between polls of `condition()`."""
    limit = timeout * DEADLINE_SCALE
    started = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - started
        if time.monotonic() - started > limit:
            raise _timed_out(limit, message)
        time.sleep(interval)
