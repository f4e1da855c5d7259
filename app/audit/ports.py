"""How the domain writes audit events without knowing the storage (`app.store.audit_log`).

Two ways, by when the event is written: `AuditRecorder` adds an event to the transaction of
the change it describes (the change and its row commit together), `AuditTrail` appends events
that accompany no change of their own, in one transaction per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from app.audit.note import Source


@dataclass(frozen=True, slots=True)
class AuditRecord:
    action: str
    actor: str
    source: Source
    request_id: str | None = None
    target: str | None = None
    details: dict[str, Any] | None = None


class AuditRecorder(Protocol):
    async def record(
        self,
        *,
        actor: str,
        action: str,
        source: Source,
        request_id: str | None = None,
        target: str | None = None,
        before: Any = None,
        after: Any = None,
        details: Any = None,
    ) -> int:
        """Add one event to the open transaction; returns its id."""
        ...


class AuditTrail(Protocol):
    async def append(self, records: Sequence[AuditRecord]) -> None:
        """Write `records` in one transaction; raises when the store failed."""
        ...
