"""One loaded policy: model, rules, role graph and evaluator, immutable once built.

The engine swaps whole snapshots, so a check that took a snapshot at its start sees one policy
from its first rule to its last, whatever reload happens meanwhile.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import casbin

from app.errors import RequestInvalid
from app.policy.casbin_roles import CasbinRoleFunction, build_role_manager
from app.policy.decision import Decision, DecisionPlan
from app.policy.entities import EMPTY, EntitySet
from app.policy.generic import GenericEvaluator
from app.policy.indexed import IndexedEvaluator
from app.policy.model import ModelInfo
from app.policy.request import DecisionRequest, Entity, request_value
from app.policy.roles import RoleGraph
from app.policy.rules import Rule
from app.policy.shape import IndexPlan, recognise


def _role_builder(
    model: ModelInfo, ptype: str, policy: Sequence[Sequence[str]], names: Sequence[str]
) -> Callable[[], Any]:
    rows = [tuple(v) for v in policy]
    return lambda: build_role_manager(model, ptype, rows, names)


def _indexable_roles(model: ModelInfo) -> bool:
    """Declared functions on `g` whose reachable roles the index can take from Casbin's own
    role manager: pattern roles without domains, or pattern domains without pattern roles.
    Conditional links (their answer changes with the clock) stay on the generic path."""
    declared = model.functions.for_role("g")
    if "g" in model.role_params or declared.condition is not None:
        return False
    if model.role_arity.get("g") == 2:
        return declared.domain_match is None
    return model.role_arity.get("g") == 3 and declared.match is None


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

    generics: dict[str, GenericEvaluator] = field(default_factory=dict)  # per definition

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
        entity_links = entity_role_rules(model, entities)
        if entity_links:
            rules = [*rules, *entity_links]
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
        role_graphs: dict[str, RoleGraph] = {}
        sub_index = model.field_index("p", "sub")
        subjects = (
            sorted({v[sub_index] for v in cm.model["p"]["p"].policy})
            if sub_index is not None
            else []
        )
        functions = dict(model.functions.matcher_functions())
        declared_roles: dict[str, CasbinRoleFunction] = {}
        for ptype, assertion in cm.model.get("g", {}).items():
            width = model.role_arity[ptype]
            links = [tuple(v[:width]) for v in assertion.policy]
            role_graphs[ptype] = RoleGraph.from_rules(links)
            if model.functions.for_role(ptype).declared:
                role_fn = CasbinRoleFunction(
                    _role_builder(model, ptype, assertion.policy, subjects),
                    conditional=ptype in model.role_params,
                )
                declared_roles[ptype] = role_fn
                functions[ptype] = role_fn
            else:
                functions[ptype] = role_graphs[ptype].g_function()
        generics = {
            suffix: GenericEvaluator(enforcer, functions, suffix) for suffix in model.definitions
        }
        generic = generics[""]
        policy = cm.model["p"]["p"].policy
        plan = recognise(model, list(cm.model["r"]["r"].tokens), list(cm.model["p"]["p"].tokens))
        indexed = None
        reason = plan if isinstance(plan, str) else "no p rules"
        if isinstance(plan, IndexPlan) and policy:
            if plan.roles == "none" or "g" not in declared_roles:
                indexed = IndexedEvaluator(plan, policy, role_graphs.get("g"))
            elif _indexable_roles(model):
                indexed = IndexedEvaluator(plan, policy, declared_roles["g"])
            else:
                reason = "g has declared functions the index does not answer"
        return cls(
            revision=revision,
            model=model,
            rules=tuple(index.values()),
            roles=role_graphs,
            generic=generic,
            rule_index=index,
            indexed=indexed,
            generic_reason="" if indexed else reason,
            content_digest=content_digest(model, index.values(), entities.digest),
            build_seconds=time.perf_counter() - started,
            generics=generics,
            entities=entities,
            source_rules=source_rules,
        )

    # -- decisions ----------------------------------------------------------------------
    def _check_domain(self, request: DecisionRequest, fields: tuple[str, ...]) -> None:
        if request.values is not None:
            if request.domain is not None:
                raise RequestInvalid(
                    "give the domain among `values`, not as `domain`",
                    details={"fields": [{"field": "domain", "message": "not with values"}]},
                )
            return
        has_domain = "domain" in fields
        if request.domain is None and has_domain:
            raise RequestInvalid(
                "this policy model needs a domain",
                details={"fields": [{"field": "domain", "message": "required"}]},
            )
        if request.domain is not None and not has_domain:
            raise RequestInvalid(
                "this policy model has no domains; omit `domain`",
                details={"fields": [{"field": "domain", "message": "not used by the model"}]},
            )

    def casbin_args(self, request: DecisionRequest) -> list[Any]:
        """The values Casbin's `enforce` would take for this request, in definition order.

        The one place a request becomes a model's request tokens: `values` by position, else
        each token from the field its name maps to (`ModelInfo.request_fields`), tokens with
        other names from `context`.
        """
        definition = self.model.definition(request.definition)
        fields = definition.request_fields
        self._check_domain(request, fields)
        tokens = definition.request_tokens
        if request.values is not None:
            if len(request.values) != len(tokens):
                name = definition.names["request"]
                raise RequestInvalid(
                    f"request definition {name} takes {len(tokens)} values "
                    f"({', '.join(tokens)}), got {len(request.values)}",
                    details={"fields": [{"field": "values", "message": f"{len(tokens)} values"}]},
                )
            return [request_value(v, t) for v, t in zip(request.values, tokens, strict=True)]
        args: list[Any] = []
        context = request.context or {}
        for token, name in zip(tokens, fields, strict=True):
            if name == "domain":
                args.append(Entity(request.domain or "", kind="domain"))
            elif name.startswith("context."):
                if token not in context:
                    raise RequestInvalid(
                        f"this policy's request definition reads {token!r}: give it in "
                        "`context` (or every value in `values`)",
                        details={"fields": [{"field": f"context.{token}", "message": "required"}]},
                    )
                args.append(request_value(context[token], token))
            else:
                args.append(getattr(request, name))
        return args

    def _as_named(self, request: DecisionRequest) -> DecisionRequest | None:
        """A positional request of the main definition as named fields (for the index), when
        every value is plain text and the tokens map to subject/resource/action(/domain)."""
        values = request.values
        fields = self.model.request_fields
        if values is None or request.definition:
            return None
        if len(values) != len(fields) or not all(type(v) is str for v in values):
            return None
        named = dict(zip(fields, values, strict=True))
        if set(named) - {"domain"} != {"subject", "resource", "action"}:
            return None
        return DecisionRequest.of(
            named["subject"], named["resource"], named["action"], named.get("domain")
        )

    def plan(
        self, request: DecisionRequest, *, explain: bool = False, cache_indexed: bool = False
    ) -> DecisionPlan:
        """Which evaluator answers `request` and whether the decision cache applies: the one
        place that rule lives (see `DecisionPlan`).

        The index answers requests of the main definition given by name, and positional ones
        whose plain-text values name subject, resource, action (and domain); every other
        request goes to the generic path. `cache_indexed=True` caches indexed decisions too
        (benchmarks only).
        """
        if self.indexed is not None:
            if request.values is not None:
                request = self._as_named(request) or request
            if not request.definition and request.values is None:
                return DecisionPlan(request, "indexed", explain, cache_indexed and not explain)
        return DecisionPlan(request, "generic", explain, not explain)

    def decide_planned(self, plan: DecisionPlan) -> Decision:
        """The decision `plan` (made by this snapshot's `plan`) leads to."""
        indexed = self.indexed
        if plan.evaluator != "indexed" or indexed is None:
            return self.decide_generic(plan.request, explain=plan.explain)
        request = plan.request
        self._check_domain(request, self.model.request_fields)
        allowed, index = indexed.check(
            str(request.subject), request.resource, request.action, request.domain or ""
        )
        if not plan.explain:
            return Decision(allowed, self.revision, "indexed")
        rule = self._rule(index)
        return Decision(
            allowed,
            self.revision,
            "indexed",
            rule=rule,
            role_path=self._role_path(request, rule),
        )

    def decide(self, request: DecisionRequest, *, explain: bool = False) -> Decision:
        return self.decide_planned(self.plan(request, explain=explain))

    def enrich(self, request: DecisionRequest) -> DecisionRequest:
        """`request` with the entity store's properties for its subject and resource."""
        entities = self.entities
        if not entities.by_key:
            return request
        subject = entities.enrich(request.subject)
        resource = entities.enrich(request.resource)
        if subject is request.subject and resource is request.resource:
            return request
        return dataclasses.replace(request, subject=subject, resource=resource)

    def with_entities(self, entities: EntitySet) -> PolicySnapshot:
        """The same policy (same revision) over another entity store content."""
        return PolicySnapshot.build(
            self.model, self.source_rules, revision=self.revision, entities=entities
        )

    def decide_generic(self, request: DecisionRequest, *, explain: bool = False) -> Decision:
        """The generic path's answer whatever the model (the reference the index must equal)."""
        definition = self.model.definition(request.definition)
        evaluator = self.generics[definition.suffix]
        missing: list[str] = []
        allowed, index = evaluator.evaluate(self.casbin_args(self.enrich(request)), missing)
        if not explain:
            return Decision(allowed, self.revision, "generic", definition=definition.suffix)
        rule = self._rule(index, evaluator, f"p{definition.suffix}")
        role_path = self._role_path(request, rule) if not definition.suffix else ()
        return Decision(
            allowed,
            self.revision,
            "generic",
            rule=rule,
            role_path=role_path,
            missing=tuple(missing),
            definition=definition.suffix,
        )

    def _rule(
        self, index: int, evaluator: GenericEvaluator | None = None, ptype: str = "p"
    ) -> Rule | None:
        if index < 0:
            return None
        values = tuple((evaluator or self.generic).rule_at(index))
        return self.rule_index.get((ptype, values)) or Rule(ptype, values)

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
