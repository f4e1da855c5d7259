"""Waiting for something that happens in the background, with a deadline.

Deadlines are generous on purpose (the suite must pass on a busy 2-core machine) and scale
with `OMS_AUTH_TEST_DEADLINE_SCALE` (default 1) for slower machines still. How fast
something happens is measured in `make bench`, never asserted here.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable

DEADLINE_SCALE = float(os.environ.get("OMS_AUTH_TEST_DEADLINE_SCALE", "1"))


async def wait_for(
    condition: Callable[[], Awaitable[bool]], *, timeout: float, interval: float = 0.02
) -> float:
    """Seconds until `condition()` held; AssertionError after `timeout` (scaled)."""
    limit = timeout * DEADLINE_SCALE
    started = time.monotonic()
    while True:
        if await condition():
            return time.monotonic() - started
        if time.monotonic() - started > limit:
            raise AssertionError(f"condition not met within {limit} s")
        await asyncio.sleep(interval)
