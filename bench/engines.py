"""In-process engines, each answering `check(sub, obj, act) -> bool` on the same policy files."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVarTuple

import casbin

from app.policy.request import DecisionRequest
from app.policy.snapshot import PolicySnapshot
from app.policy.sources import FileRuleSource, PolicyLoader
from bench.policies import DATA, ROLE, USER, Size

logging.getLogger("casbin").setLevel(logging.ERROR)

Check = Callable[[str, str, str], bool]
Args = TypeVarTuple("Args")


@dataclass
class Engine:
    name: str
    check: Check
    load_seconds: float


def load_snapshot(folder: Path) -> tuple[PolicySnapshot, float]:
    started = time.perf_counter()
    model, rules = PolicyLoader(folder, [FileRuleSource(folder)]).read()
    snapshot = PolicySnapshot.build(model, rules, revision=1)
    return snapshot, time.perf_counter() - started


def ours(folder: Path) -> Engine:
    snapshot, seconds = load_snapshot(folder)
    assert snapshot.evaluator_name == "indexed", snapshot.generic_reason

    def check(sub: str, obj: str, act: str) -> bool:
        return snapshot.decide(DecisionRequest.of(sub, obj, act)).allowed

    return Engine("oms-auth (indexed)", check, seconds)


def ours_generic(folder: Path) -> Engine:
    snapshot, seconds = load_snapshot(folder)

    def check(sub: str, obj: str, act: str) -> bool:
        return snapshot.decide_generic(DecisionRequest.of(sub, obj, act)).allowed

    return Engine("oms-auth (generic path)", check, seconds)


def casbin_enforcer(folder: Path) -> Engine:
    started = time.perf_counter()
    e = casbin.Enforcer(str(folder / "model.conf"), str(folder / "policy.csv"))
    return Engine("casbin.Enforcer", e.enforce, time.perf_counter() - started)


def casbin_fast(folder: Path) -> Engine:
    started = time.perf_counter()
    e = casbin.FastEnforcer(
        str(folder / "model.conf"), str(folder / "policy.csv"), cache_key_order=[1, 2]
    )
    return Engine("casbin.FastEnforcer", e.enforce, time.perf_counter() - started)


def cedar(size: Size) -> Engine | None:
    """The same RBAC in Cedar: users are members of groups, one permit per group."""
    try:
        import cedarpy
    except ImportError:
        return None
    started = time.perf_counter()
    policies = "\n".join(
        f'permit(principal in Group::"{ROLE.format(i)}", action == Action::"read", '
        f'resource == Data::"{DATA.format(i // 10)}");'
        for i in range(size.roles)
    )
    entities = [
        {
            "uid": {"type": "User", "id": USER.format(j)},
            "attrs": {},
            "parents": [{"type": "Group", "id": ROLE.format(j // 10)}],
        }
        for j in range(size.users)
    ]
    entities += [
        {"uid": {"type": "Group", "id": ROLE.format(i)}, "attrs": {}, "parents": []}
        for i in range(size.roles)
    ]
    entities += [
        {"uid": {"type": "Data", "id": DATA.format(k)}, "attrs": {}, "parents": []}
        for k in range(size.resources)
    ]
    import json

    policy_set = cedarpy.PolicySet.from_str(policies)
    entity_set = cedarpy.Entities.from_json_str(json.dumps(entities))
    seconds = time.perf_counter() - started

    def check(sub: str, obj: str, act: str) -> bool:
        request = {
            "principal": {"type": "User", "id": sub},
            "action": {"type": "Action", "id": act},
            "resource": {"type": "Data", "id": obj},
            "context": {},
        }
        return bool(cedarpy.is_authorized(request, policy_set, entity_set).allowed)

    return Engine("cedarpy", check, seconds)


def oso_engine(size: Size) -> Engine | None:
    """The same RBAC in Polar, when oso is importable (it does not install next to cffi 2)."""
    try:
        from oso import Oso
    except ImportError:
        return None
    started = time.perf_counter()
    facts = "\n".join(
        f'has_role("{USER.format(j)}", "{ROLE.format(j // 10)}");' for j in range(size.users)
    )
    grants = "\n".join(
        f'grants("{ROLE.format(i)}", "read", "{DATA.format(i // 10)}");' for i in range(size.roles)
    )
    engine = Oso()
    engine.load_str(
        facts + "\n" + grants + "\nallow(user, action, resource) if "
        "has_role(user, role) and grants(role, action, resource);"
    )
    seconds = time.perf_counter() - started

    def check(sub: str, obj: str, act: str) -> bool:
        return bool(engine.is_allowed(sub, act, obj))

    return Engine("oso", check, seconds)


@dataclass
class Latency:
    p50_us: float
    p99_us: float
    samples: int


def measure(
    check: Callable[[*Args], object], requests: Sequence[tuple[*Args]], *, budget: float
) -> Latency:
    """Per-call latency over the request list (cycled) until `budget` seconds are used.

    `check` takes each request's values as its arguments (any number, of any type)."""
    for req in requests[:20]:
        check(*req)  # warm-up: role caches, lazy structures
    times: list[int] = []
    deadline = time.perf_counter() + budget
    i = 0
    perf = time.perf_counter_ns
    while (time.perf_counter() < deadline or len(times) < 5) and len(times) < 50_000:
        req = requests[i % len(requests)]
        t0 = perf()
        check(*req)
        times.append(perf() - t0)
        i += 1
    times.sort()
    return Latency(
        p50_us=times[len(times) // 2] / 1000,
        p99_us=times[min(len(times) - 1, int(len(times) * 0.99))] / 1000,
        samples=len(times),
    )
