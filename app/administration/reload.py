"""Reloading the policy from its sources: lint first, swap only a clean policy, audit both.

Used by the file watcher (trigger "file") and `POST /api/v1/policies/reload` (trigger
"reload"). A policy with lint errors is refused before it is built: the previous snapshot
keeps serving, the rejection is logged with the file and line and written to the audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from loguru import logger

from app.administration.ports import PolicyStore
from app.audit.note import Source
from app.errors import AuthzError, InvalidPolicy
from app.policy.engine import PolicyEngine
from app.policy.findings import Finding
from app.policy.watcher import PolicyWatcher
from app.policy.workspace import read_loader_sources


@dataclass(frozen=True)
class ReloadOutcome:
    revision: int
    previous_revision: int | None
    warnings: list[Finding]


class PolicyReloader:
    def __init__(self, *, engine: PolicyEngine, store: PolicyStore) -> None:
        self.engine = engine
        self.store = store
        self._lock = asyncio.Lock()

    async def reload(
        self,
        *,
        trigger: str,
        actor: str,
        source: Source,
        request_id: str | None = None,
        changed: Sequence[str] = (),
    ) -> ReloadOutcome:
        """Lint and load every source; raise `InvalidPolicy` (RBAC_003) when refused."""
        async with self._lock:
            policy = await asyncio.to_thread(read_loader_sources, self.engine.loader)
            report = policy.lint()
            if report.errors:
                error = InvalidPolicy(
                    report.errors[0].text(),
                    details={"findings": [f.as_dict() for f in report.sorted()]},
                )
                await self._rejected(
                    error, report.errors, trigger, actor, source, request_id, changed
                )
                raise error
            previous = self.engine.revision if self.engine.loaded else None
            try:
                snapshot = await self.engine.load(trigger=trigger, bump=True)
            except AuthzError as exc:  # the files changed again between lint and load
                await self._rejected(exc, [], trigger, actor, source, request_id, changed)
                raise
            await self._record(
                actor=actor,
                action="policy.reloaded",
                source=source,
                request_id=request_id,
                before={"revision": previous},
                after={"revision": snapshot.revision, "rules": snapshot.rule_counts},
                details={
                    "trigger": trigger,
                    "files": list(changed),
                    "warnings": [f.as_dict() for f in report.warnings],
                },
            )
            return ReloadOutcome(snapshot.revision, previous, report.warnings)

    async def _rejected(
        self,
        error: AuthzError,
        errors: Sequence[Finding],
        trigger: str,
        actor: str,
        source: Source,
        request_id: str | None,
        changed: Sequence[str],
    ) -> None:
        first = errors[0] if errors else None
        if first is not None:
            self.engine.status.rejected(
                trigger=trigger,
                code=first.code,
                message=first.message,
                file=first.file,
                line=first.line,
            )
        if errors and self.engine.metrics is not None:  # the engine counts its own refusals
            self.engine.metrics.policy_reloads.labels(trigger=trigger, result="rejected").inc()
        logger.warning(
            "policy.reload.rejected",
            trigger=trigger,
            file=first.file if first else error.details.get("file"),
            line=first.line if first else error.details.get("line"),
            code=first.code if first else error.code,
            reason=first.message if first else error.message,
            errors=len(errors) or 1,
            files=list(changed),
            serving_revision=self.engine.revision if self.engine.loaded else None,
        )
        await self._record(
            actor=actor,
            action="policy.reload.rejected",
            source=source,
            request_id=request_id,
            details={
                "trigger": trigger,
                "files": list(changed),
                "error": error.message,
                "findings": [f.as_dict() for f in errors],
            },
        )

    async def _record(
        self,
        *,
        actor: str,
        action: str,
        source: Source,
        request_id: str | None,
        details: dict[str, Any],
        before: Any = None,
        after: Any = None,
    ) -> None:
        """Audit a reload; a database outage must not stop the policy from reloading."""
        try:
            async with self.store.transaction() as tx:
                await tx.record(
                    actor=actor,
                    action=action,
                    source=source,
                    request_id=request_id,
                    target="policy",
                    before=before,
                    after=after,
                    details=details,
                )
        except Exception as exc:
            logger.error("audit.write_failed", action=action, error=str(exc))


def policy_watcher(reloader: PolicyReloader) -> PolicyWatcher:
    """A watcher on the engine's policy folder that reloads on every relevant edit."""

    async def on_change(files: list[str]) -> None:
        # A refusal is logged and audited by the reloader; the previous policy keeps serving.
        with contextlib.suppress(AuthzError):
            await reloader.reload(
                trigger="file", actor="file-watcher", source="file", changed=files
            )

    return PolicyWatcher(reloader.engine.loader.policy_dir, on_change)
