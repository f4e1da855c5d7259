"""The fidelity cases (policies/fidelity/<case>/) and a plain Casbin Enforcer for each.

A case is a `model.conf`, a `policy.csv` and a `requests.txt` whose lines are
``allow|deny[, @<suffix>], value, value, ...`` (the values Casbin's `enforce` takes, in
request-definition order; ``@2`` selects r2/p2/m2). The oracle is `casbin.Enforcer` on the
same two files plus the registration code a Casbin user writes for what the model's
`[functions]` section declares (matching functions, link conditions, `add_function`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import casbin
from casbin import util as casbin_util
from casbin.util import builtin_operators as ops

from app.policy.functions import section_lines
from tests.support.policies import SHIPPED

logging.getLogger("casbin").setLevel(logging.ERROR)

FIDELITY = SHIPPED / "fidelity"
CASES = sorted(p.name for p in FIDELITY.iterdir() if (p / "model.conf").is_file())

# What a Casbin user imports by hand for each name a declaration may use.
_BY_NAME: dict[str, Any] = {
    "keyMatch": casbin_util.key_match,
    "keyMatch2": casbin_util.key_match2,
    "keyMatch3": casbin_util.key_match3,
    "keyMatch4": casbin_util.key_match4,
    "keyMatch5": casbin_util.key_match5,
    "regexMatch": casbin_util.regex_match,
    "globMatch": casbin_util.glob_match,
    "ipMatch": casbin_util.ip_match,
    "keyGet": ops.key_get,
    "keyGet2": ops.key_get2,
    "keyGet3": ops.key_get3,
}


@dataclass(frozen=True)
class Ask:
    allowed: bool
    suffix: str
    values: tuple[str, ...]


def requests_of(folder: Path) -> list[Ask]:
    out = []
    for line in (folder / "requests.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        verdict, *values = (v.strip() for v in line.split(","))
        suffix = ""
        if values and values[0].startswith("@"):
            suffix = values.pop(0)[1:]
        out.append(Ask(verdict == "allow", suffix, tuple(values)))
    return out


def casbin_enforcer(folder: Path) -> casbin.Enforcer:
    """A plain Enforcer on the case's files, with Casbin's registration calls."""
    e = casbin.Enforcer(str(folder / "model.conf"), str(folder / "policy.csv"))
    text = (folder / "model.conf").read_text()
    for _, line in section_lines(text, "functions"):
        key, _, value = (p.strip() for p in line.partition("="))
        if key.endswith(".match"):
            e.add_named_matching_func(key.split(".")[0], _BY_NAME[value])
        elif key.endswith(".domain_match"):
            e.add_named_domain_matching_func(key.split(".")[0], _BY_NAME[value])
        elif key.endswith(".condition"):
            ptype = key.split(".")[0]
            width = len(e.model["g"][ptype].tokens)
            for rule in e.get_named_grouping_policy(ptype):
                if width > 2:
                    e.add_named_domain_link_condition_func(
                        ptype, rule[0], rule[1], rule[2], casbin_util.time_match_func
                    )
                else:
                    e.add_named_link_condition_func(
                        ptype, rule[0], rule[1], casbin_util.time_match_func
                    )
        else:
            e.add_function(key, _BY_NAME[value])
    return e


def casbin_answer(e: casbin.Enforcer, ask: Ask) -> tuple[bool, list[str]]:
    if ask.suffix:
        allowed, rule = e.enforce_ex(e.new_enforce_context(ask.suffix), *ask.values)
    else:
        allowed, rule = e.enforce_ex(*ask.values)
    return bool(allowed), list(rule)
