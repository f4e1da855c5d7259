"""One loaded policy: model, rules, role graph and evaluator, immutable once built.

The engine swaps whole snapshots, so a check that took a snapshot at its start sees one policy
from its first rule to its last, whatever reload happens meanwhile.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import casbin

from app.errors import RequestInvalid
from app.policy.decision import Decision
from app.policy.entities import EMPTY, EntitySet
from app.policy.generic import GenericEvaluator
from app.policy.indexed import IndexedEvaluator
from app.policy.model import ModelInfo
from app.policy.request import DecisionRequest, Entity
from app.policy.roles import RoleGraph
from app.policy.rules import Rule
from app.policy.shape import IndexPlan, recognise


def content_digest(model: ModelInfo, rules: Iterable[Rule], entities: str = "") -> str:
    """Identifies a policy's content: instances whose files differ under one revision label
    (a rolling deploy) must not share cached answers; nor may answers given before and after
    an entity change (the entity store's digest is part of it)."""
    text = "\x1e".join("\x1f".join((r.ptype, *r.values)) for r in rules)
    return hashlib.sha256(f"{model.text}\x1d{text}\x1d{entities}".encode()).hexdigest()


ENTITY_SOURCE = "entities"
_ACT_LITERAL = re.compile(
    r"""\br[_.]act\s*==\s*["']([^"']+)["']|["']([^"']+)["']\s*==\s*r[_.]act\b"""
)


def entity_role_rules(model: ModelInfo, entities: EntitySet) -> list[Rule]:
    """Parents as `g` links, for models whose `g` has two fields (member, role)."""
    if model.role_arity.get("g") != 2:
        return []
    return [Rule("g", link, ENTITY_SOURCE) for link in entities.role_links()]


@dataclass(frozen=True)
class Permission:
    resource: str
    action: str
    effect: str
    via: str  # the subject or role the rule is written for
    rule: Rule

    def as_dict(self) -> dict[str, Any]:
        return {
            "resource": self.resource,
            "action": self.action,
            "effect": self.effect,
            "via": self.via,
            "source": self.rule.source,
        }


@dataclass
class PolicySnapshot:
    revision: int
    model: ModelInfo
    rules: tuple[Rule, ...]
    roles: dict[str, RoleGraph]  # per g ptype
    generic: GenericEvaluator  # Casbin's semantics for any model; the reference
    rule_index: dict[tuple[str, tuple[str, ...]], Rule]
    indexed: IndexedEvaluator | None = None  # when the model's shape is one it decides exactly
    generic_reason: str = ""  # why a model is served by the generic path
    content_digest: str = ""  # sha256 of the model and rules: what a revision label stands for
    loaded_at: float = field(default_factory=time.time)
    build_seconds: float = 0.0
    entities: EntitySet = EMPTY  # the entity store at `entities.revision`
    source_rules: tuple[Rule, ...] = ()  # the policy's own rules (without entity links)

    @property
    def evaluator_name(self) -> str:
        """Which path decides this snapshot's checks: "indexed" or "generic"."""
        return "indexed" if self.indexed is not None else "generic"

    # -- construction -------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        model: ModelInfo,
        rules: Sequence[Rule],
        *,
        revision: int,
        entities: EntitySet = EMPTY,
    ) -> PolicySnapshot:
        started = time.perf_counter()
        source_rules = tuple(rules)
        links = entity_role_rules(model, entities)
        if links:
            rules = [*rules, *links]
        enforcer = casbin.Enforcer(model.new_casbin_model())
        cm = enforcer.get_model()
        index: dict[tuple[str, tuple[str, ...]], Rule] = {}
        for rule in rules:
            if rule.key in index:
                continue  # the first source wins (files before db)
            index[rule.key] = rule
            cm.model[rule.ptype[0]][rule.ptype].policy.append(list(rule.values))
        for sec in ("p", "g"):
            for assertion in cm.model.get(sec, {}).values():
                assertion.policy_map = {",".join(v): i for i, v in enumerate(assertion.policy)}
        cm.sort_policies_by_subject_hierarchy()
        cm.sort_policies_by_priority()
        role_graphs = {
            ptype: RoleGraph.from_rules(tuple(v) for v in assertion.policy)
            for ptype, assertion in cm.model.get("g", {}).items()
        }
        functions = dict(enforcer.fm.get_functions())
        for ptype, graph in role_graphs.items():
            functions[ptype] = graph.g_function()
        generic = GenericEvaluator(enforcer, functions)
        policy = cm.model["p"]["p"].policy
        plan = recognise(model, list(cm.model["r"]["r"].tokens), list(cm.model["p"]["p"].tokens))
        indexed = None
        if isinstance(plan, IndexPlan) and policy:
            indexed = IndexedEvaluator(plan, policy, role_graphs.get("g"))
        return cls(
            revision=revision,
            model=model,
            rules=tuple(index.values()),
            roles=role_graphs,
            generic=generic,
            rule_index=index,
            indexed=indexed,
            generic_reason="" if indexed else (plan if isinstance(plan, str) else "no p rules"),
            content_digest=content_digest(model, index.values(), entities.digest),
            build_seconds=time.perf_counter() - started,
            entities=entities,
            source_rules=source_rules,
        )

    # -- decisions ----------------------------------------------------------------------
    def _check_domain(self, request: DecisionRequest) -> None:
        if request.domain is None and self.model.has_domain:
            raise RequestInvalid(
                "this policy model needs a domain",
                details={"fields": [{"field": "domain", "message": "required"}]},
            )
        if request.domain is not None and not self.model.has_domain:
            raise RequestInvalid(
                "this policy model has no domains; omit `domain`",
                details={"fields": [{"field": "domain", "message": "not used by the model"}]},
            )

    def casbin_args(self, request: DecisionRequest) -> list[Any]:
        self._check_domain(request)
        args: list[Any] = []
        for name in self.model.request_fields:
            if name == "domain":
                args.append(Entity(request.domain or "", kind="domain"))
            else:
                args.append(getattr(request, name))
        return args

    def decide(self, request: DecisionRequest, *, explain: bool = False) -> Decision:
        indexed = self.indexed
        if indexed is not None:
            self._check_domain(request)
            allowed, index = indexed.check(
                str(request.subject), request.resource, request.action, request.domain or ""
            )
            path = "indexed"
        else:
            missing: list[str] = []
            allowed, index = self.generic.evaluate(self.casbin_args(self.enrich(request)), missing)
            path = "generic"
            if missing and explain:
                rule = self._rule(index)
                return Decision(
                    allowed,
                    self.revision,
                    path,
                    rule=rule,
                    role_path=self._role_path(request, rule),
                    missing=tuple(missing),
                )
        if not explain:
            return Decision(allowed, self.revision, path)
        rule = self._rule(index)
        return Decision(
            allowed, self.revision, path, rule=rule, role_path=self._role_path(request, rule)
        )

    def enrich(self, request: DecisionRequest) -> DecisionRequest:
        """`request` with the entity store's properties for its subject and resource."""
        entities = self.entities
        if not entities.by_key:
            return request
        subject = entities.enrich(request.subject)
        resource = entities.enrich(request.resource)
        if subject is request.subject and resource is request.resource:
            return request
        return DecisionRequest(subject, resource, request.action, request.domain)

    def with_entities(self, entities: EntitySet) -> PolicySnapshot:
        """The same policy (same revision) over another entity store content."""
        return PolicySnapshot.build(
            self.model, self.source_rules, revision=self.revision, entities=entities
        )

    def decide_generic(self, request: DecisionRequest, *, explain: bool = False) -> Decision:
        """The generic path's answer whatever the model (the reference the index must equal)."""
        missing: list[str] = []
        allowed, index = self.generic.evaluate(self.casbin_args(self.enrich(request)), missing)
        rule = self._rule(index) if explain else None
        role_path = self._role_path(request, rule) if explain else ()
        return Decision(
            allowed,
            self.revision,
            "generic",
            rule=rule,
            role_path=role_path,
            missing=tuple(missing) if explain else (),
        )

    def _rule(self, index: int) -> Rule | None:
        if index < 0:
            return None
        values = tuple(self.generic.rule_at(index))
        return self.rule_index.get(("p", values)) or Rule("p", values)

    def _role_path(self, request: DecisionRequest, rule: Rule | None) -> tuple[str, ...]:
        sub_index = self.model.field_index("p", "sub")
        if rule is None or sub_index is None:
            return ()
        graph = self.roles.get("g")
        target = rule.values[sub_index]
        if graph is None:
            return (request.subject.id,) if request.subject.id == target else ()
        domain = self._rule_domain(rule, request)
        return graph.path(request.subject.id, target, domain) or ()

    def _rule_domain(self, rule: Rule, request: DecisionRequest) -> str:
        dom_index = self.model.field_index("p", "dom")
        if (
            dom_index is not None
            and "g" in self.model.role_arity
            and self.model.role_arity["g"] > 2
        ):
            return rule.values[dom_index] if request.domain is None else request.domain
        return ""

    # -- queries ------------------------------------------------------------------------
    @property
    def rule_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for rule in self.rules:
            counts[rule.ptype] = counts.get(rule.ptype, 0) + 1
        return counts

    def _graph_domain(self, domain: str | None) -> str:
        if domain is not None and self.model.role_arity.get("g", 2) > 2:
            return domain
        return ""

    def implicit_roles(self, subject: str, domain: str | None = None) -> list[str]:
        graph = self.roles.get("g")
        if graph is None:
            return []
        reach = graph.reachable(subject, self._graph_domain(domain))
        return sorted((r for r in reach if r != subject), key=lambda r: (reach[r], r))

    def permissions_for(self, subject: str, domain: str | None = None) -> list[Permission]:
        """Every `p` rule that applies to `subject` directly or through its roles."""
        self._require_rbac()
        sub_i, obj_i, act_i = (self.model.field_index("p", n) for n in ("sub", "obj", "act"))
        eft_i = self.model.field_index("p", "eft")
        dom_i = self.model.field_index("p", "dom")
        by_subject = self._p_rules_by_subject
        names = {subject, *self.implicit_roles(subject, domain)}
        positions = sorted(p for name in names for p in by_subject.get(name, ()))
        out = []
        for position in positions:
            rule = self.rules[position]
            if dom_i is not None and domain is not None and rule.values[dom_i] != domain:
                continue
            out.append(
                Permission(
                    resource=rule.values[obj_i],  # type: ignore[index]
                    action=rule.values[act_i],  # type: ignore[index]
                    effect=rule.values[eft_i] if eft_i is not None else "allow",
                    via=rule.values[sub_i],  # type: ignore[index]
                    rule=rule,
                )
            )
        return out

    @cached_property
    def _p_rules_by_subject(self) -> dict[str, list[int]]:
        """Positions in `rules` of the `p` rules written for each subject or role."""
        sub_i = self.model.field_index("p", "sub")
        out: dict[str, list[int]] = {}
        if sub_i is None:
            return out
        for position, rule in enumerate(self.rules):
            if rule.ptype == "p":
                out.setdefault(rule.values[sub_i], []).append(position)
        return out

    def allowed_scopes(self, subject: str, domain: str | None = None) -> list[str]:
        """`resource:action` for every allow rule of `subject` that a check confirms.

        A rule overridden by a deny for the same resource and action is left out; pattern
        resources (``api:branches:*``) appear as written.
        """
        scopes = set()
        for perm in self.permissions_for(subject, domain):
            if perm.effect != "allow":
                continue
            req = DecisionRequest.of(subject, perm.resource, perm.action, domain)
            if self.decide(req).allowed:
                scopes.add(f"{perm.resource}:{perm.action}")
        return sorted(scopes)

    def subjects(self) -> tuple[set[str], set[str]]:
        """(users, roles) named anywhere in the policy."""
        self._require_rbac()
        sub_i = self.model.field_index("p", "sub")
        roles: set[str] = set()
        members: set[str] = set()
        for graph in self.roles.values():
            for d in graph.domains:
                roles |= graph.roles(d)
                members |= graph.members(d)
        named = {r.values[sub_i] for r in self.rules if r.ptype == "p"}  # type: ignore[index]
        users = (members | named) - roles
        return users, roles

    @property
    def generic_rules(self) -> list[list[str]]:
        """The `p` rules in evaluation order (as the evaluators index them)."""
        return self.generic._policy

    @cached_property
    def rules_by_object(self) -> tuple[dict[str, list[int]], list[tuple[str, int]]]:
        """`p` rule positions by exact resource, and (prefix, position) for `*` patterns."""
        obj_i = self.model.field_index("p", "obj")
        exact: dict[str, list[int]] = {}
        patterns: list[tuple[str, int]] = []
        if obj_i is None:
            return exact, patterns
        for i, values in enumerate(self.generic_rules):
            obj = values[obj_i]
            star = obj.find("*")
            if star >= 0:
                patterns.append((obj[:star], i))
            else:
                exact.setdefault(obj, []).append(i)
        return exact, patterns

    @cached_property
    def role_members(self) -> dict[str, list[str]]:
        """role -> direct members, over every role graph and domain (for backward walks)."""
        out: dict[str, list[str]] = {}
        for graph in self.roles.values():
            for domain in graph.domains:
                for member in graph.members(domain):
                    for role in graph.direct_roles(member, domain):
                        out.setdefault(role, []).append(member)
        return out

    @cached_property
    def domains(self) -> frozenset[str]:
        """Every domain a rule or role link names (models with domains)."""
        out: set[str] = set()
        dom_i = self.model.field_index("p", "dom")
        if dom_i is not None:
            out |= {r.values[dom_i] for r in self.rules if r.ptype == "p"}
        for graph in self.roles.values():
            out |= {d for d in graph.domains if d}
        return frozenset(out)

    @cached_property
    def subject_sets(self) -> tuple[frozenset[str], frozenset[str]]:
        """(users, roles) as `subjects()` gives them, computed once per snapshot."""
        users, roles = self.subjects()
        return frozenset(users), frozenset(roles)

    @cached_property
    def action_names(self) -> tuple[str, ...]:
        """Every action a rule names or the matcher compares `r.act` with (sorted; `*`
        and empty values left out)."""
        names: set[str] = set()
        for ptype, tokens in self.model.policy_tokens.items():
            for column in ("act", "action"):
                if column in tokens:
                    index = tokens.index(column)
                    names |= {r.values[index] for r in self.rules if r.ptype == ptype}
        for a, b in _ACT_LITERAL.findall(self.model.matcher):
            names.add(a or b)
        return tuple(sorted(n for n in names if n and n != "*"))

    def _require_rbac(self) -> None:
        if not self.model.is_rbac:
            raise RequestInvalid(
                "this query needs a model whose `p` has sub, obj and act",
                details={"model": self.model.source},
            )
