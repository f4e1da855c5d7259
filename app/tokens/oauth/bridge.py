"""Calling async services from the worker thread Authlib runs in."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

BRIDGE_TIMEOUT_SECONDS = 30.0


class Bridge:
    """Runs coroutines on the service's event loop and waits for them from a thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(BRIDGE_TIMEOUT_SECONDS)
