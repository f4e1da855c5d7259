"""The generic path against `casbin.Enforcer` on every example model, same run, same requests.

The example set is policies/fidelity/ (one case per Casbin feature: request shapes, r2/p2/m2,
pattern roles and domains, timed links, matcher built-ins, priority effects) plus a
generated large pattern policy in the style of Casbin's `rbac_with_pattern_large_scale`
(keyMatch4 resources, regexMatch actions, ~3,800 lines). Each engine answers the same
requests; a ratio below 1 means the generic path is faster than Casbin.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.policy.request import DecisionRequest
from bench.engines import load_snapshot, measure
from tests.support.fidelity import CASES, FIDELITY, Ask, casbin_answer, casbin_enforcer, requests_of

LARGE_PATTERN = "rbac_with_pattern_large_scale (generated)"


@dataclass
class ModelRow:
    model: str
    rules: int
    evaluator: str  # the path `decide` takes for this model
    ours_us: float  # p50 of `decide` (whichever path)
    generic_us: float  # p50 of the generic path
    casbin_us: float  # p50 of casbin.Enforcer.enforce_ex
    mismatches: int

    @property
    def generic_ratio(self) -> float:
        return self.generic_us / self.casbin_us


def write_large_pattern(folder: Path, *, orgs: int = 250, seed: int = 7) -> list[Ask]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.conf").write_text(
        "[request_definition]\nr = sub, obj, act\n\n[policy_definition]\np = sub, obj, act\n\n"
        "[role_definition]\ng = _, _\n\n[policy_effect]\ne = some(where (p.eft == allow))\n\n"
        "[matchers]\nm = g(r.sub, p.sub) && keyMatch4(r.obj, p.obj) && regexMatch(r.act, p.act)\n"
    )
    lines = []
    for org in range(orgs):
        for site in range(10):
            lines.append(f"p, org{org}_admin, /orgs/{org}/sites/site{site}/{{item}}, (GET)|(POST)")
        lines.append(f"p, org{org}_viewer, /orgs/{org}/sites/{{site}}/reports, GET")
    for user in range(orgs * 5):
        org = user % orgs
        lines.append(f"g, staff{user}, org{org}_{'admin' if user % 3 else 'viewer'}")
    (folder / "policy.csv").write_text("\n".join(lines) + "\n")
    rng = random.Random(seed)
    asks = []
    for _ in range(200):
        user = rng.randrange(orgs * 5)
        org = user % orgs if rng.random() < 0.7 else rng.randrange(orgs)
        path = rng.choice(
            [f"/orgs/{org}/sites/site{rng.randrange(12)}/x", f"/orgs/{org}/sites/s/reports"]
        )
        asks.append(Ask(False, "", (f"staff{user}", path, rng.choice(["GET", "POST", "DELETE"]))))
    return asks


def run_models(workdir: Path, budget: float) -> list[ModelRow]:
    cases: list[tuple[str, Path, list[Ask]]] = [
        (case, FIDELITY / case, requests_of(FIDELITY / case)) for case in CASES
    ]
    large = workdir / "large-pattern"
    cases.append((LARGE_PATTERN, large, write_large_pattern(large)))
    rows = []
    for name, folder, asks in cases:
        snapshot, _ = load_snapshot(folder)
        enforcer = casbin_enforcer(folder)
        requests = [DecisionRequest.positional(a.values, definition=a.suffix or None) for a in asks]
        expected = [casbin_answer(enforcer, a)[0] for a in asks]
        mismatches = sum(
            snapshot.decide(r).allowed != e or snapshot.decide_generic(r).allowed != e
            for r, e in zip(requests, expected, strict=True)
        )
        order = list(range(len(asks)))

        def ours(i: int, snapshot: Any = snapshot, requests: Any = requests) -> bool:
            return bool(snapshot.decide(requests[i]).allowed)

        def generic(i: int, snapshot: Any = snapshot, requests: Any = requests) -> bool:
            return bool(snapshot.decide_generic(requests[i]).allowed)

        def casbin(i: int, enforcer: Any = enforcer, asks: Any = asks) -> bool:
            return casbin_answer(enforcer, asks[i])[0]

        indices = [(i,) for i in order]
        timings = [measure(f, indices, budget=budget) for f in (ours, generic, casbin)]
        rows.append(
            ModelRow(
                name,
                len(snapshot.rules),
                snapshot.evaluator_name,
                timings[0].p50_us,
                timings[1].p50_us,
                timings[2].p50_us,
                mismatches,
            )
        )
    return rows
