"""Fidelity: every case in policies/fidelity/ decides as `casbin.Enforcer` on the same files.

Each case exercises one Casbin feature that needs no code here: request definitions of any
shape, r2/p2/m2 selection, declared role/domain matching functions, timed role links, matcher
built-ins and declared helpers, priority with effects other than allow/deny. For every
request line: Casbin's answer equals the line's verdict (the case means what it says), and
ours equals both, on every route a request can take (positional values, named fields
mapped from the request definition, the generic path); the rule `explain` reports is
Casbin's whenever Casbin reports one.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace

import casbin
import pytest

from app.errors import InvalidPolicy, RequestInvalid
from app.policy.lint import lint_rules
from app.policy.model import parse_model
from app.policy.request import DecisionRequest, Entity
from app.policy.rules import rule_problems
from app.policy.snapshot import PolicySnapshot
from app.policy.sources import FileRuleSource, PolicyLoader
from tests.support.fidelity import CASES, FIDELITY, Ask, casbin_answer, casbin_enforcer, requests_of
from tests.support.policies import snapshot_of


def named_request(snapshot: PolicySnapshot, ask: Ask) -> DecisionRequest:
    """The request as the API's named fields carry it (subject/resource/action/domain and
    context), mapped by the request definition's token names."""
    fields = snapshot.model.definition(ask.suffix).request_fields
    tokens = snapshot.model.definition(ask.suffix).request_tokens
    named: dict[str, str] = {"subject": "", "resource": "", "action": ""}
    context: dict[str, str] = {}
    domain = None
    for token, field, value in zip(tokens, fields, ask.values, strict=True):
        if field == "domain":
            domain = value
        elif field.startswith("context."):
            context[token] = value
        else:
            named[field] = value
    return DecisionRequest(
        subject=Entity(named["subject"], kind="subject"),
        resource=Entity(named["resource"], kind="resource"),
        action=Entity(named["action"], kind="action"),
        domain=domain,
        context=context or None,
        definition=ask.suffix or None,
    )


@pytest.mark.parametrize("case", CASES)
def test_case_decides_as_casbin(case: str) -> None:
    folder = FIDELITY / case
    ours = snapshot_of(folder)
    oracle = casbin_enforcer(folder)
    asks = requests_of(folder)
    assert asks, case
    for ask in asks:
        allowed, rule = casbin_answer(oracle, ask)
        assert allowed is ask.allowed, (case, ask, "the case's verdict is not Casbin's")
        positional = DecisionRequest.positional(ask.values, definition=ask.suffix or None)
        named = named_request(ours, ask)
        for request in (positional, named):
            for decide in (ours.decide, ours.decide_generic):
                decision = decide(request, explain=True)
                assert decision.allowed is allowed, (case, ask, decision.evaluator)
                assert decision.definition == ask.suffix
                if rule:
                    assert decision.rule is not None, (case, ask)
                    assert list(decision.rule.values) == rule, (case, ask)
                explained = decision.explain()["definition"]
                assert explained["request"] == f"r{ask.suffix}"
                assert explained["matcher"] == f"m{ask.suffix}"


def test_casbins_model_files_load_unchanged_and_compile() -> None:
    """Every case model is also a plain Casbin model, and each matcher is compiled."""
    for case in CASES:
        ours = snapshot_of(FIDELITY / case)
        assert casbin_enforcer(FIDELITY / case).get_model() is not None
        assert all(g.compiled for g in ours.generics.values()), case


@pytest.mark.parametrize(
    ("case", "path"),
    [
        ("basic_acl", "indexed"),
        ("role_pattern_subjects", "indexed"),  # pattern roles reach the index
        ("role_pattern_resources", "generic"),
        ("timed_roles", "generic"),
    ],
)
def test_evaluation_path(case: str, path: str) -> None:
    assert snapshot_of(FIDELITY / case).evaluator_name == path


TIMED = """[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act

[role_definition]
g = _, _, (_, _)

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act
"""


def test_timed_roles_without_a_declared_condition_are_refused_naming_the_line() -> None:
    with pytest.raises(InvalidPolicy) as info:
        parse_model(TIMED)
    assert info.value.details["line"] == 8
    assert "model.conf:8" in info.value.message
    assert "g.condition = timeMatch" in info.value.message


def test_timed_roles_with_pattern_matching_are_refused() -> None:
    declared = "[functions]\ng.condition = timeMatch\ng.match = keyMatch\n\n[policy_effect]"
    with pytest.raises(InvalidPolicy, match="both a link condition and pattern matching"):
        parse_model(TIMED.replace("[policy_effect]", declared))


def test_timed_role_columns_are_not_a_domain() -> None:
    model = parse_model(
        TIMED.replace("[policy_effect]", "[functions]\ng.condition = timeMatch\n\n[policy_effect]")
    )
    assert model.role_arity["g"] == 2
    assert model.role_params["g"] == 2
    assert model.arity("g") == 4


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        ("g.match = noSuchMatch", "g.match must be one of"),
        ("g9.match = keyMatch", "g9 is not a role definition"),
        ("g.domain_match = keyMatch", "has no domain column"),
        ("keyMatch = keyMatch2", "cannot be redefined"),
        ("pathVar = os.system", "unknown function"),
        ("g.colour = keyMatch", "unknown role function"),
    ],
)
def test_bad_declarations_are_refused_with_their_line(declaration: str, message: str) -> None:
    text = (FIDELITY / "basic_acl" / "model.conf").read_text()
    text = text.replace("[policy_effect]", "[role_definition]\ng = _, _\n\n[policy_effect]")
    text += f"\n[functions]\n{declaration}\n"
    with pytest.raises(InvalidPolicy, match=message) as info:
        parse_model(text)
    assert info.value.details["line"] == len(text.splitlines())


def test_undeclared_helper_in_a_matcher_is_refused() -> None:
    text = (FIDELITY / "matcher_functions" / "model.conf").read_text()
    with pytest.raises(InvalidPolicy, match=r"pathVar\(\)"):
        parse_model(text.replace("pathVar = keyGet2", ""))


def test_request_shape_errors_are_request_errors(tmp_path: Path) -> None:
    ctx = snapshot_of(FIDELITY / "enforce_context")
    with pytest.raises(RequestInvalid, match="no request definition"):
        ctx.decide(DecisionRequest.positional(["ann", "x"], definition="3"))
    with pytest.raises(RequestInvalid, match="takes 2 values"):
        ctx.decide(DecisionRequest.positional(["ann", "x", "y"], definition="r2"))
    env = snapshot_of(FIDELITY / "abac_context")
    with pytest.raises(RequestInvalid, match="'env'"):
        env.decide(DecisionRequest.of("ann", "vault", "open"))
    assert env.decide(
        DecisionRequest(Entity("ann"), Entity("vault"), Entity("open"), context={"env": "office"})
    ).allowed


def test_definition_selection_changes_the_cache_fingerprint() -> None:
    a = DecisionRequest.positional(["ben", "restart"], definition="2")
    b = DecisionRequest.positional(["ben", "restart"])
    c = DecisionRequest.of("ben", "restart", "")
    assert len({a.fingerprint(), b.fingerprint(), c.fingerprint()}) == 3


def test_cases_lint_clean_and_other_effects_are_noted() -> None:
    """Pattern roles, pattern domains, r2/p2 rules and timed links raise no false alarm;
    an effect other than allow/deny under priority is a PL106 warning, elsewhere PL005."""
    for case in CASES:
        model, rules = PolicyLoader(FIDELITY / case, [FileRuleSource(FIDELITY / case)]).read()
        codes = {f.code for f in lint_rules(model, rules)}
        assert codes == ({"PL106"} if case == "priority_indeterminate" else set()), case
    model = parse_model(
        (FIDELITY / "basic_acl" / "model.conf")
        .read_text()
        .replace("p = sub, obj, act", "p = sub, obj, act, eft")
    )
    assert rule_problems("p", ["ann", "x", "read", "indeterminate"], model)
    priority = snapshot_of(FIDELITY / "priority_indeterminate").model
    assert rule_problems("p", ["1", "ann", "x", "read", "indeterminate"], priority) == []


ABAC_EVAL = """[request_definition]
r = sub, obj, act

[policy_definition]
p = sub_rule, obj, act

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = {matcher}
"""


@pytest.mark.parametrize(
    ("matcher", "compiled"),
    [
        ("eval(p.sub_rule) && r.obj == p.obj && r.act == p.act", False),  # Casbin's evaluator
        ("r.sub.Age > 18 && r.sub.Team in ('red', 'blue') && r.obj == p.obj", True),
    ],
)
def test_attribute_matchers_read_objects_as_casbin_does(
    tmp_path: Path, matcher: str, compiled: bool
) -> None:
    (tmp_path / "model.conf").write_text(ABAC_EVAL.format(matcher=matcher))
    (tmp_path / "policy.csv").write_text(
        "p, r.sub.Age > 18, /data1, read\np, r.sub.Age < 60 && r.sub.Team == 'red', /data2, write\n"
    )
    ours = snapshot_of(tmp_path)
    assert ours.generic.compiled is compiled
    oracle = casbin.Enforcer(str(tmp_path / "model.conf"), str(tmp_path / "policy.csv"))
    for age, team in itertools.product((10, 19, 70), ("red", "blue", "green")):
        for obj, act in (("/data1", "read"), ("/data2", "write"), ("/data3", "read")):
            want = oracle.enforce(SimpleNamespace(Age=age, Team=team), obj, act)
            sub = {"Age": age, "Team": team}
            got = ours.decide(DecisionRequest.positional([sub, obj, act])).allowed
            assert got is want, (matcher, age, team, obj, act)
    # A missing property: Casbin raises (its answer is undefined), ours makes the rule not
    # match, so the request is denied and explain names the property nobody supplied.
    with pytest.raises(Exception, match="Age"):
        oracle.enforce(SimpleNamespace(Team="red"), "/data1", "read")
    missing = ours.decide(
        DecisionRequest.positional([{"Team": "red"}, "/data1", "read"]), explain=True
    )
    assert missing.allowed is False
    assert missing.explain()["reason"] == "no_match"
    assert missing.explain()["missing_properties"] == ["sub.Age"]
