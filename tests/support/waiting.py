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


class _Deadline:
    """The deadline of one wait (scaled), and the AssertionError that says it passed."""

    def __init__(self, timeout: float, message: Message) -> None:
        self.limit = timeout * DEADLINE_SCALE
        self.message = message
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def check(self) -> None:
        if self.elapsed > self.limit:
            detail = self.message() if callable(self.message) else self.message
            reason = f"condition not met within {self.limit} s"
            raise AssertionError(f"{detail} ({reason})" if detail else reason)


async def wait_for(
    condition: Callable[[], Awaitable[bool]],
    *,
    timeout: float,
    interval: float = 0.02,
    message: Message = None,
) -> float:
    """Seconds until `condition()` held; AssertionError after `timeout` (scaled)."""
    deadline = _Deadline(timeout, message)
    while not await condition():
        deadline.check()
        await asyncio.sleep(interval)
    return deadline.elapsed


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.05,
    message: Message = None,
) -> float:
    """`wait_for` for synchronous code: sleeps (blocking) between polls of `condition()`."""
    deadline = _Deadline(timeout, message)
    while not condition():
        deadline.check()
        time.sleep(interval)
    return deadline.elapsed
