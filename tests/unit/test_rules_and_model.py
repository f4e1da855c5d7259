"""Rule values that would not survive storage are refused; models are checked at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import InvalidPolicy
from app.policy.model import ModelInfo, parse_model
from app.policy.rules import load_rule_files, rule_problems, split_policy_line, value_problem
from app.policy.sources import read_model

POLICIES = Path(__file__).resolve().parents[2] / "policies"


@pytest.fixture
def model() -> ModelInfo:
    return read_model(POLICIES)


def test_split_keeps_commas_inside_brackets() -> None:
    assert split_policy_line("p, alice, keyMatch(a, b), read") == [
        "p",
        "alice",
        "keyMatch(a, b)",
        "read",
    ]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        ("a,b", "comma"),
        (" a", "whitespace"),
        ("#x", "comment"),
        ("a\nb", "control"),
        ("a\x00", "control"),
        ("(a", "unbalanced"),
        ("x" * 256, "longer"),
    ],
)
def test_unstorable_values_are_refused(value: str, reason: str) -> None:
    problem = value_problem(value)
    assert problem is not None and reason in problem


@pytest.mark.parametrize("value", ["café", "O'Brien", 'say "hi"', "api:ontologies:*", "日本"])
def test_unicode_and_quotes_are_fine(value: str) -> None:
    assert value_problem(value) is None


def test_rule_arity_and_effect_are_checked(model: ModelInfo) -> None:
    def problem(ptype: str, values: list[str]) -> str:
        return " ".join(rule_problems(ptype, values, model))

    assert "need 4 values" in problem("p", ["alice", "api:x", "read"])
    assert "effect must be" in problem("p", ["alice", "api:x", "read", "maybe"])
    assert "not defined by the model" in problem("g2", ["alice", "admin"])
    assert rule_problems("g", ["alice", "admin"], model) == []


def test_bad_file_line_is_reported_with_file_and_line(tmp_path: Path, model: ModelInfo) -> None:
    csv = tmp_path / "policy.csv"
    csv.write_text("# comment\np, viewer, api:x, read, allow\np, viewer, api:x\n")
    with pytest.raises(InvalidPolicy) as info:
        load_rule_files([csv], model)
    assert info.value.details["file"] == "policy.csv"
    assert info.value.details["line"] == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[request_definition]\nr = sub, obj, act\n", "missing section"),
        (
            "[request_definition]\nr = sub, obj, act\n[policy_definition]\np = sub, obj, act\n"
            "[policy_effect]\ne = some(where (p.eft == allow))\n[matchers]\nm = r.sub == p.nope\n",
            "p.nope",
        ),
        (
            "[request_definition]\nr = sub, obj, act\n[policy_definition]\np = sub, obj, act\n"
            "[policy_effect]\ne = some(where (p.eft == allow))\n[matchers]\nm = g(r.sub, p.sub)\n",
            "no role definition g",
        ),
        (
            "[request_definition]\nr = sub, obj, act\n[policy_definition]\np = sub, obj, act\n"
            "[policy_effect]\ne = some(where (p.eft == allow))\n[matchers]\n"
            "m = fooMatch(r.obj, p.obj)\n",
            "fooMatch\\(\\), which is not a Casbin built-in",
        ),
        (
            "[request_definition]\nr = sub, obj, act\n[policy_definition]\np = sub, obj, act\n"
            "[policy_effect]\ne = some(where (p.eft == allow))\n[matchers]\nm = r.sub == (p.sub\n",
            "not a valid expression",
        ),
    ],
)
def test_broken_models_are_rejected_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(InvalidPolicy, match=message):
        parse_model(text)


def test_shipped_model_shape(model: ModelInfo) -> None:
    assert model.request_fields == ("subject", "resource", "action")
    assert model.policy_tokens["p"] == ("sub", "obj", "act", "eft")
    assert model.is_rbac and not model.has_domain
