"""Cutting off tokens whose holder's roles or permissions changed.

Roles live in Casbin `g` rules, so they change through policy changes (files, admin API, CLI).
After every reload, the previous and the new snapshot are compared: a subject is affected
when the set of roles it reaches changed, or when a role (or itself) it reaches lost an allow
rule or gained a deny rule. Each affected user gets `tokens_valid_after = now` (never moved
back), so its older tokens stop validating and a v2 token never keeps a scope that was
removed. Permissions that only grew cut nothing off: an older token just lacks the new scope
until it is refreshed.

A client's own subject is `client:<id>`: when it is affected, the client's cut-off moves, which
ends every token naming the client (its own and those of users who logged in through it; the
users' tokens cannot be told apart by subject, so they are refreshed too).

Changes made while no instance runs are not seen (there is no previous snapshot to compare);
such tokens expire with their short access TTL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

from loguru import logger

from app.audit.note import SecurityEvents
from app.policy.snapshot import PolicySnapshot
from app.tokens.metrics import TokenMetrics
from app.tokens.models import RevocationState, client_subject, split_subjects
from app.tokens.ports import ClientStore, UserStore
from app.tokens.revocation import Revocations

RuleSet = dict[str, set[tuple[str, ...]]]


def _rules_by_subject(snapshot: PolicySnapshot) -> tuple[RuleSet, RuleSet]:
    """(allow rules, deny rules) per rule subject (a role or a user)."""
    model = snapshot.model
    sub_i = model.field_index("p", "sub")
    eft_i = model.field_index("p", "eft")
    allow: RuleSet = {}
    deny: RuleSet = {}
    if sub_i is None:
        return allow, deny
    for rule in snapshot.rules:
        if rule.ptype != "p":
            continue
        effect = rule.values[eft_i] if eft_i is not None else "allow"
        target = deny if effect == "deny" else allow
        target.setdefault(rule.values[sub_i], set()).add(rule.values)
    return allow, deny


def _names(snapshot: PolicySnapshot, allow: RuleSet, deny: RuleSet) -> set[str]:
    names = set(allow) | set(deny)
    for graph in snapshot.roles.values():
        for domain in graph.domains:
            names |= graph.members(domain) | graph.roles(domain)
    return names


def _reach(snapshot: PolicySnapshot, name: str) -> frozenset[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for ptype, graph in snapshot.roles.items():
        for domain in graph.domains or ("",):
            out |= {(f"{ptype}|{domain}", r) for r in graph.reachable(name, domain)}
    return frozenset(out)


def affected_subjects(old: PolicySnapshot, new: PolicySnapshot) -> set[str]:
    """Every name whose effective permissions may have shrunk between the two snapshots."""
    old_allow, old_deny = _rules_by_subject(old)
    new_allow, new_deny = _rules_by_subject(new)
    names = _names(old, old_allow, old_deny) | _names(new, new_allow, new_deny)
    if old.model.text != new.model.text:
        return names
    narrowed = {
        n
        for n in names
        if old_allow.get(n, set()) - new_allow.get(n, set())
        or new_deny.get(n, set()) - old_deny.get(n, set())
    }
    out = set()
    for name in names:
        before, after = _reach(old, name), _reach(new, name)
        if before != after:
            out.add(name)
            continue
        reached = {role for _, role in after} | {name}
        if reached & narrowed:
            out.add(name)
    return out


class PermissionCutoff:
    """Listens to policy changes and cuts off the affected users' older tokens."""

    def __init__(
        self,
        users: UserStore,
        revocations: Revocations,
        *,
        clients: ClientStore | None = None,
        metrics: TokenMetrics | None = None,
        clock: Callable[[], float] = time.time,
        events: SecurityEvents | None = None,
    ) -> None:
        self.users = users
        self.events = events  # the audit trail of cut-offs
        self.clients = clients
        self.revocations = revocations
        self.metrics = metrics
        self.clock = clock
        self._previous: PolicySnapshot | None = None

    def watch(self, current: PolicySnapshot | None) -> None:
        self._previous = current

    async def on_policy_change(self, snapshot: PolicySnapshot, trigger: str) -> None:
        previous, self._previous = self._previous, snapshot
        if previous is None or previous is snapshot:
            return
        subjects = await asyncio.to_thread(affected_subjects, previous, snapshot)
        if subjects:
            await self.cut_off(subjects, reason="permissions_changed", trigger=trigger)

    async def cut_off(self, subjects: set[str], *, reason: str, trigger: str = "") -> list[str]:
        """Tokens issued to these users and clients (`client:<id>`) until now stop validating."""
        now = self.clock()
        at = datetime.fromtimestamp(now, UTC)
        usernames, client_ids = split_subjects(subjects)
        found = await self.users.cut_off(usernames=usernames, at=at) if usernames else []
        if client_ids and self.clients is not None:
            found_clients = await self.clients.cut_off(client_ids=client_ids, at=at)
            found = [*found, *(client_subject(c) for c in found_clients)]
        if not found:
            return []
        at_ms = int(now * 1000)
        await self.revocations.remember(RevocationState(valid_after=dict.fromkeys(found, at_ms)))
        if self.metrics is not None:
            self.metrics.revocations.labels(reason=reason).inc(len(found))
        logger.info(
            "auth.tokens.cut_off",
            reason=reason,
            trigger=trigger,
            subjects=sorted(found)[:20],
            subject_count=len(found),
        )
        if self.events is not None:
            self.events.emit(
                "token.cut_off",
                actor=f"policy:{trigger}" if trigger else "system",
                target=found[0] if len(found) == 1 else None,
                details={
                    "reason": reason,
                    "trigger": trigger,
                    "subjects": sorted(found)[:100],
                    "subject_count": len(found),
                },
                source="system",
            )
        return found
