"""Dependency state kept by background checks, so a readiness probe costs no round trip.

`DependencyMonitor` pings the database (and Redis, when configured) every `interval`
seconds, each ping bounded by `timeout`, and keeps the last result with when it changed.
`/readyz` only reads it. Readiness itself does not depend on them: an instance with a
loaded policy decides correctly with the database or Redis down (see README, "Probes"), so
taking it out of rotation for a dependency blip would only turn a partial outage into a
full one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from loguru import logger

Ping = Callable[[], Awaitable[object]]


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class DependencyState:
    def __init__(self, name: str, ping: Ping) -> None:
        self.name = name
        self.ping = ping
        self.status = "unknown"
        self.since = _now_iso()
        self.checked_at: str | None = None
        self.latency_ms: float | None = None

    def record(self, ok: bool, latency_ms: float | None) -> None:
        status = "ok" if ok else "unreachable"
        if status != self.status:
            if self.status != "unknown" or not ok:
                log = logger.info if ok else logger.warning
                log("dependency.state_changed", dependency=self.name, status=status)
            self.status = status
            self.since = _now_iso()
        self.checked_at = _now_iso()
        self.latency_ms = latency_ms

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "since": self.since,
            "checked_at": self.checked_at,
            "latency_ms": self.latency_ms,
        }


class DependencyMonitor:
    def __init__(self, *, interval: float = 2.0, timeout: float = 1.0) -> None:
        self.interval = interval
        self.timeout = timeout
        self.states: dict[str, DependencyState] = {}
        self.checks = 0  # completed rounds (tests read it)
        self._task: asyncio.Task[None] | None = None

    def watch(self, name: str, ping: Ping) -> None:
        self.states[name] = DependencyState(name, ping)

    def state(self, name: str) -> DependencyState | None:
        return self.states.get(name)

    async def check_now(self) -> None:
        await asyncio.gather(*(self._check(s) for s in self.states.values()))
        self.checks += 1

    async def _check(self, state: DependencyState) -> None:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                result = await state.ping()
            ok = result is not False
        except asyncio.CancelledError:
            raise
        except Exception:
            ok = False
        state.record(ok, round((time.perf_counter() - started) * 1000, 3) if ok else None)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="dependency-monitor")

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.check_now()
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
