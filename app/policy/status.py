"""What policy an instance serves, where it came from, and whether a newer edit was refused.

The engine records every successful load; the engine and the reloader record every refusal
(lint error, invalid rule, unreadable file) with the file, line and code of the first error.
A refusal newer than the served load is "pending": an operator's edit is not live, and the
readiness body and `GET /api/v1/policies/status` say so until a later load succeeds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Rejection:
    at: float
    trigger: str
    code: str
    message: str
    file: str | None = None
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": _iso(self.at),
            "trigger": self.trigger,
            "code": self.code,
            "message": self.message,
            "file": self.file,
            "line": self.line,
        }


class PolicyStatus:
    def __init__(self, sources: str = "") -> None:
        self.sources = sources
        self.revision: int | None = None
        self.loaded_at: float | None = None
        self.trigger: str | None = None
        self.content_digest: str | None = None
        self.last_rejection: Rejection | None = None
        # when the sources last read back as exactly the serving content (an unchanged load):
        # an edit rejected before that is no longer pending, though nothing was rebuilt
        self.confirmed_at: float | None = None

    def loaded(self, *, revision: int, trigger: str, digest: str, at: float | None = None) -> None:
        self.revision = revision
        self.trigger = trigger
        self.content_digest = digest
        self.loaded_at = time.time() if at is None else at

    def confirmed(self, at: float | None = None) -> None:
        """The sources were read again and equal the serving content (nothing to rebuild)."""
        self.confirmed_at = time.time() if at is None else at

    def rejected(
        self,
        *,
        trigger: str,
        code: str,
        message: str,
        file: str | None = None,
        line: int | None = None,
        at: float | None = None,
    ) -> None:
        when = time.time() if at is None else at
        self.last_rejection = Rejection(when, trigger, code, message, file, line)

    def rejected_error(self, trigger: str, code: str, message: str, details: Any) -> None:
        """A refusal described by an error's details (`file`/`line` or `findings`)."""
        where: Any = details if isinstance(details, dict) else {}
        findings = where.get("findings") or []
        errors = [f for f in findings if isinstance(f, dict) and f.get("severity") == "error"]
        first = errors[0] if errors else (findings[0] if findings else where)
        line = first.get("line")
        self.rejected(
            trigger=trigger,
            code=str(first.get("code") or code),
            message=str(first.get("message") or message),
            file=str(first["file"]) if first.get("file") else None,
            line=int(line) if isinstance(line, int) else None,
        )

    @property
    def pending_rejection(self) -> Rejection | None:
        r = self.last_rejection
        if r is None:
            return None
        settled = [t for t in (self.loaded_at, self.confirmed_at) if t is not None]
        if settled and r.at < max(settled):
            return None
        return r

    def as_dict(self) -> dict[str, Any]:
        pending = self.pending_rejection
        return {
            "status": "ok" if pending is None else "newer_edit_rejected",
            "revision": self.revision,
            "loaded_at": _iso(self.loaded_at) if self.loaded_at is not None else None,
            "trigger": self.trigger,
            "sources": self.sources,
            "content_digest": self.content_digest,
            "rejected": pending.as_dict() if pending is not None else None,
            "last_rejection": (
                self.last_rejection.as_dict() if self.last_rejection is not None else None
            ),
        }


def readiness_fields(status: PolicyStatus) -> dict[str, Any]:
    """What the readiness body says about the policy, besides "ok"/"not loaded"."""
    pending = status.pending_rejection
    return {
        "revision": status.revision,
        "sources": status.sources,
        "loaded_at": _iso(status.loaded_at) if status.loaded_at is not None else None,
        "newer_edit_rejected": pending is not None,
        "rejected": pending.as_dict() if pending is not None else None,
    }
