"""Calling async services from the worker thread Authlib runs in."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import CancelledError, Future
from typing import Any, TypeVar

T = TypeVar("T")

BRIDGE_TIMEOUT_SECONDS = 30.0


class Bridge:
    """Runs coroutines on the service's event loop and waits for them from a thread.

    `close` (at shutdown) cancels every call still waiting, so no thread sits out its
    timeout on a loop that is stopping: the process exits within its shutdown timeout.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._pending: set[Future[Any]] = set()
        self._lock = threading.Lock()
        self._closed = False

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            if self._closed:
                coro.close()
                raise CancelledError("the service is stopping")
            future = asyncio.run_coroutine_threadsafe(coro, self.loop)
            self._pending.add(future)
        try:
            return future.result(BRIDGE_TIMEOUT_SECONDS)
        finally:
            with self._lock:
                self._pending.discard(future)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pending = list(self._pending)
        for future in pending:
            future.cancel()
