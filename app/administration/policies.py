"""Rule and role-membership changes made at run time, validated, stored and audited together.

Every write follows one path: check the rule against the live model; then, in ONE database
transaction, take the policy revision (its row lock serialises writers across instances;
an in-process lock keeps this instance's writers from queueing on the pool), read the stored
rules, build the candidate policy, refuse a change that adds lint errors, write the rule and
its audit row; after the commit make it live with `engine.load(trigger="api", bump=False)`.
A bad rule therefore never reaches the database or the live enforcer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from loguru import logger

from app.administration.ports import PolicyStore
from app.errors import AuthzError, Conflict, InvalidPolicy, NotFound, RoleNotFound
from app.policy.engine import PolicyEngine
from app.policy.findings import Finding, new_findings
from app.policy.lint import lint_rules, role_cycles_closed_by
from app.policy.model import ModelInfo
from app.policy.rules import DB_SOURCE, Rule, rule_problems
from app.security.names import canonical_name

Kind = Literal["rule", "member"]
WARNING_LINT_LIMIT = 5_000  # rules; above it a write reports errors only (see _findings)


@dataclass(frozen=True)
class WriteResult:
    rule: Rule
    revision: int  # the revision the change was committed as
    live: bool  # False when the commit succeeded but this instance could not reload
    created: bool = True
    warnings: list[Finding] = field(default_factory=list)
    # A removed stored copy of a rule a file still defines: where the file copy lives.
    still_defined_in: str | None = None


class _AlreadyThere(Conflict):
    """The membership to add exists (raised inside the transaction, so it rolls back)."""


@dataclass(frozen=True)
class _Change:
    rule: Rule
    add: bool
    kind: Kind

    @property
    def action(self) -> str:
        noun = "policy.rule" if self.kind == "rule" else "role.member"
        return f"{noun}.{'added' if self.add else 'removed'}"


class PolicyAdministration:
    def __init__(self, *, store: PolicyStore, engine: PolicyEngine, db_is_source: bool) -> None:
        self.store = store
        self.engine = engine
        self.db_is_source = db_is_source
        self._lock = asyncio.Lock()

    # -- public operations --------------------------------------------------------------
    async def add_rule(
        self, ptype: str, values: Sequence[str], *, actor: str, request_id: str | None
    ) -> WriteResult:
        rule = self._valid_rule(ptype, values)
        if ptype.startswith("g") and len(values) >= 2:
            await self._refuse_role_named_like_user(values[1])
        return await self._apply(_Change(rule, True, "rule"), actor=actor, request_id=request_id)

    async def remove_rule(
        self, ptype: str, values: Sequence[str], *, actor: str, request_id: str | None
    ) -> WriteResult:
        rule = self._valid_rule(ptype, values)
        return await self._apply(_Change(rule, False, "rule"), actor=actor, request_id=request_id)

    async def add_member(
        self, role: str, subject: str, domain: str | None, *, actor: str, request_id: str | None
    ) -> WriteResult:
        """Idempotent: an existing membership is reported with `created=False`."""
        rule = self._valid_rule("g", self._member_values(role, subject, domain))
        await self._refuse_role_named_like_user(role)
        try:
            return await self._apply(
                _Change(rule, True, "member"), actor=actor, request_id=request_id
            )
        except _AlreadyThere:
            return WriteResult(rule, self.engine.revision, live=True, created=False)

    async def remove_member(
        self, role: str, subject: str, domain: str | None, *, actor: str, request_id: str | None
    ) -> WriteResult:
        rule = self._valid_rule("g", self._member_values(role, subject, domain))
        return await self._apply(_Change(rule, False, "member"), actor=actor, request_id=request_id)

    # -- validation ---------------------------------------------------------------------
    async def _refuse_role_named_like_user(self, role: str) -> None:
        """A role may not be named like a user: `g, x, alice` would hand every member of
        `x` whatever alice holds, and alice would read as a role in every listing."""
        if await self.store.user_exists(canonical_name(role)):
            raise Conflict(
                f"{role!r} is a user's name; a role may not be named like a user",
                details={"role": role, "collides_with": "user"},
            )

    @property
    def model(self) -> ModelInfo:
        return self.engine.snapshot.model

    def _member_values(self, role: str, subject: str, domain: str | None) -> list[str]:
        arity = self.model.role_arity.get("g")
        if arity is None:
            raise InvalidPolicy("this policy model has no role definition g")
        if arity > 2 and domain is None:
            raise InvalidPolicy("this model assigns roles per domain: give ?domain=")
        if arity == 2 and domain is not None:
            raise InvalidPolicy("this model has no domains; omit domain")
        return [subject, role] + ([domain] if domain is not None else [])

    def _valid_rule(self, ptype: str, values: Sequence[str]) -> Rule:
        problems = rule_problems(ptype, values, self.model)
        if problems:
            raise InvalidPolicy(
                f"invalid {ptype} rule: {problems[0]}",
                details={"ptype": ptype, "rule": list(values), "problems": problems},
            )
        if not self.db_is_source:
            raise Conflict(
                "this service reads rules from files only (OMS_AUTH_POLICY_SOURCE=files); "
                "edit the policy files instead",
                details={"policy_source": "files"},
            )
        return Rule(ptype, tuple(values), "api")

    def _findings(self, change: _Change, current: list[Rule]) -> list[Finding]:
        """What the change brings: its errors (exact) and new warnings (small policies).

        Errors can only come from an added rule itself or from a role cycle it closes;
        removing a rule cannot make a valid policy invalid. Warnings need a lint of the
        whole candidate, which is linear in the rules, so they are left out above
        `WARNING_LINT_LIMIT` rules to keep writes fast.
        """
        rule = Rule(change.rule.ptype, change.rule.values, DB_SOURCE)
        errors: list[Finding] = []
        if change.add:
            errors = [f for f in lint_rules(self.model, [rule]) if f.severity == "error"]
            if rule.is_role:
                errors += role_cycles_closed_by(rule, current)
        if errors or len(current) > WARNING_LINT_LIMIT:
            return errors
        others = [r for r in current if r.key != rule.key]
        candidate = [*current, rule] if change.add else others
        found = new_findings(lint_rules(self.model, current), lint_rules(self.model, candidate))
        return [f for f in found if f.severity == "warning"]

    # -- the write path -----------------------------------------------------------------
    async def _apply(self, change: _Change, *, actor: str, request_id: str | None) -> WriteResult:
        async with self._lock, self.store.transaction() as tx:
            revision = await tx.bump_revision()  # locks the policy_state row first
            stored = await tx.read_rules()
            files = [r for r in self.engine.snapshot.rules if r.source != DB_SOURCE]
            current = files + stored
            in_file = self._check_target(change, files, stored, current)
            rule = change.rule
            found = await asyncio.to_thread(self._findings, change, current)
            errors = [f for f in found if f.severity == "error"]
            if errors:
                raise InvalidPolicy(
                    f"the change would make the policy invalid: {errors[0].message}",
                    details={"rule": rule.as_dict(), "findings": [f.as_dict() for f in errors]},
                )
            if change.add:
                await tx.insert_rules([rule])
            else:
                await tx.delete_rule(rule)
            document = {"ptype": rule.ptype, "rule": list(rule.values)}
            await tx.record(
                actor=actor,
                action=change.action,
                source="api",
                request_id=request_id,
                target=rule.text(),
                before=None if change.add else document,
                after=document if change.add else None,
                details={"revision": revision},
            )
        logger.info(change.action, rule=rule.text(), actor=actor, revision=revision)
        live = await self._make_live(revision)
        return WriteResult(rule, revision, live, True, found, in_file)

    def _check_target(
        self, change: _Change, files: list[Rule], stored: list[Rule], current: list[Rule]
    ) -> str | None:
        """Refuse a change that cannot apply; for a removal, say which file still holds
        the rule when only its stored copy goes (a copy left by an earlier `push`)."""
        key = change.rule.key
        in_file = next((r for r in files if r.key == key), None)
        in_db = any(r.key == key for r in stored)
        text = change.rule.text()
        if change.add:
            if change.kind == "member":
                self._require_role(change.rule.values[1], change.rule.values[2:], current)
            if in_file is not None or in_db:
                where = in_file.source if in_file is not None else "the database"
                error = _AlreadyThere if change.kind == "member" else Conflict
                raise error(f"rule '{text}' already exists ({where})", details={"source": where})
            return None
        if in_file is not None and in_db:
            return in_file.source
        if in_file is not None:
            raise Conflict(
                f"rule '{text}' is defined in {in_file.source}; remove it by editing that file",
                details={"source": in_file.source, "stored_in_database": in_db},
            )
        if not in_db:
            if change.kind == "member":
                self._require_role(change.rule.values[1], change.rule.values[2:], current)
            raise NotFound(f"no rule '{text}'", details={"rule": change.rule.as_dict()})
        return None

    def _require_role(self, role: str, domain: tuple[str, ...], rules: list[Rule]) -> None:
        sub = self.model.field_index("p", "sub")
        for rule in rules:
            if rule.ptype == "g" and rule.values[1] == role and rule.values[2:] == domain:
                return
            if rule.ptype == "g" and rule.values[0] == role and rule.values[2:] == domain:
                return
            if rule.ptype == "p" and sub is not None and rule.values[sub] == role:
                return
        raise RoleNotFound(f"role {role!r} does not exist", details={"role": role})

    async def _make_live(self, revision: int) -> bool:
        """After the commit: a failure here never fails the write (it is stored, and every
        instance picks it up on its next reload); it is reported as `live: false`."""
        try:
            await self.engine.load(trigger="api", bump=False)
        except AuthzError as exc:
            logger.error("policy.write.not_live", revision=revision, error=exc.message)
            return False
        except Exception as exc:
            logger.error("policy.write.not_live", revision=revision, error=type(exc).__name__)
            return False
        return True
