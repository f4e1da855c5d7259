"""Search latency (AuthZEN subject and resource search) on the 110,000-rule policy."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from app.policy.request import Entity
from app.policy.search import search_resources, search_subjects
from bench.engines import load_snapshot, measure
from bench.policies import DATA, USER, Size


@dataclass(frozen=True)
class SearchRow:
    kind: str  # "subject" or "resource"
    rules: int
    p50_ms: float
    p99_ms: float
    samples: int
    results: int  # results per query (the last one measured)


def run_search(folder: Path, size: Size, *, budget: float) -> list[SearchRow]:
    snapshot, _ = load_snapshot(folder)
    rng = random.Random(11)
    resources = [(DATA.format(rng.randrange(size.resources)),) for _ in range(200)]
    users = [(USER.format(rng.randrange(size.users)),) for _ in range(200)]
    read = Entity("read", kind="action")
    last = {"subject": 0, "resource": 0}

    def subjects(resource: str) -> None:
        page = search_subjects(
            snapshot,
            subject_type="user",
            resource=Entity(resource, kind="resource"),
            action=read,
            limit=1000,
        )
        last["subject"] = len(page.results)

    def resources_of(user: str) -> None:
        page = search_resources(
            snapshot,
            subject=Entity(user, kind="subject"),
            action=read,
            resource_type=None,
            limit=1000,
        )
        last["resource"] = len(page.results)

    rows = []
    for kind, fn, reqs in (("subject", subjects, resources), ("resource", resources_of, users)):
        latency = measure(lambda *a, f=fn: f(*a), reqs, budget=budget)
        rows.append(
            SearchRow(
                kind,
                size.rules,
                latency.p50_us / 1000,
                latency.p99_us / 1000,
                latency.samples,
                last[kind],
            )
        )
    return rows
