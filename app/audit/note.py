"""Who makes a change, as plain data the domain core can pass to storage without knowing SQL.

A repository that receives an `AuditNote` writes the audit event inside the same transaction
as the change (`app.store.audit_log.AuditLog.write`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Source = Literal["api", "file", "cli", "system"]


@dataclass(frozen=True)
class AuditNote:
    actor: str
    source: Source
    request_id: str | None = None


@dataclass(frozen=True)
class SecurityAlert:
    """Something that looks like an attack (e.g. a stolen refresh token replayed): audited as
    `alert.<kind>` next to the change that answers it, and counted in a metric."""

    kind: str  # e.g. "refresh_reuse"
    actor: str  # whose credentials were involved
    details: Mapping[str, Any] = field(default_factory=dict)
    request_id: str | None = None


class SecurityEvents(Protocol):
    def emit(
        self,
        action: str,
        *,
        actor: str,
        target: str | None = None,
        details: dict[str, Any] | None = None,
        source: Source = "api",
    ) -> None: ...


def mask_username(username: str) -> str:
    """`alice` -> `a***e#2bd806c9`: recognisable to whoever knows the name, not readable."""
    digest = hashlib.sha256(username.encode()).hexdigest()[:8]
    if len(username) <= 2:
        return f"***#{digest}"
    return f"{username[0]}***{username[-1]}#{digest}"
