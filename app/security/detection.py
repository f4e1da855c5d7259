"""In-app detection: bursts of failed logins and mass permission changes become alerts.

The detector only observes (brute-force back-off is the rate limiter's job). It keeps sliding
windows in memory, per instance: failed logins per account and per client address, and rule
changes across the whole policy. When a window crosses its threshold it raises one alert,
written to the audit log as `alert.<kind>` and counted in `oms_auth_security_alerts_total`,
then stays quiet for that key until the window has passed (no alert storm during an attack).
Each instance sees its own share of the traffic: with several instances behind a proxy, set
the thresholds per instance or rely on the Prometheus alerts over the summed metrics.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from app.audit.note import SecurityEvents, mask_username

MAX_TRACKED_KEYS = 10_000


class AlertCounter(Protocol):
    def labels(self, *, kind: str) -> Any: ...


@dataclass(frozen=True)
class Thresholds:
    login_failures_per_account: int = 10
    login_failures_per_address: int = 30
    login_window: float = 60.0
    permission_changes: int = 50
    permission_window: float = 60.0


class _Windows:
    """Timestamps per key inside a window, for at most MAX_TRACKED_KEYS keys (LRU)."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._quiet_until: dict[str, float] = {}

    def add(self, key: str, now: float, count: int = 1) -> int:
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
            if len(self._hits) > MAX_TRACKED_KEYS:
                old, _ = self._hits.popitem(last=False)
                self._quiet_until.pop(old, None)
        else:
            self._hits.move_to_end(key)
        hits.extend([now] * count)
        horizon = now - self.window
        while hits and hits[0] <= horizon:
            hits.popleft()
        return len(hits)

    def should_alert(self, key: str, now: float) -> bool:
        if self._quiet_until.get(key, 0.0) > now:
            return False
        self._quiet_until[key] = now + self.window
        return True


class Detector:
    def __init__(
        self,
        events: SecurityEvents,
        *,
        thresholds: Thresholds | None = None,
        alerts: AlertCounter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.events = events
        self.t = thresholds or Thresholds()
        self.alerts = alerts
        self.clock = clock
        self._accounts = _Windows(self.t.login_window)
        self._addresses = _Windows(self.t.login_window)
        self._changes = _Windows(self.t.permission_window)

    def login_failed(self, username: str, ip: str | None) -> None:
        now = self.clock()
        n = self._accounts.add(username, now)
        if n >= self.t.login_failures_per_account and self._accounts.should_alert(username, now):
            masked = mask_username(username)
            self._raise(
                "login_failure_burst",
                actor=masked,
                target=f"user:{masked}",
                details={
                    "scope": "account",
                    "username": masked,
                    "failures": n,
                    "window_seconds": self.t.login_window,
                    "last_address": ip,
                },
            )
        if ip is None:
            return
        n = self._addresses.add(ip, now)
        if n >= self.t.login_failures_per_address and self._addresses.should_alert(ip, now):
            self._raise(
                "login_failure_burst",
                actor=f"address:{ip}",
                target=f"address:{ip}",
                details={
                    "scope": "address",
                    "address": ip,
                    "failures": n,
                    "window_seconds": self.t.login_window,
                },
            )

    def permissions_changed(self, count: int, *, revision: int, trigger: str) -> None:
        if count <= 0:
            return
        now = self.clock()
        n = self._changes.add("policy", now, count)
        if n >= self.t.permission_changes and self._changes.should_alert("policy", now):
            self._raise(
                "mass_permission_change",
                actor=f"policy:{trigger}",
                target="policy",
                details={
                    "changes": n,
                    "window_seconds": self.t.permission_window,
                    "revision": revision,
                    "trigger": trigger,
                },
            )

    def _raise(self, kind: str, *, actor: str, target: str, details: dict[str, Any]) -> None:
        self.events.emit(
            f"alert.{kind}", actor=actor, target=target, details=details, source="system"
        )
        if self.alerts is not None:
            self.alerts.labels(kind=kind).inc()
