"""HTTP benchmarks: oms-auth against the FastAPI floor and the naive Casbin service.

All servers run at once on loopback (idle ones cost nothing) and are loaded one at a time,
in interleaved rounds, so the machine's background noise spreads over all of them; each
figure is the median of the rounds. Warm: after a warm-up over the same 1,000 requests.
Cold: a freshly started instance answering requests whose subjects it has never seen.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.load import LoadResult, run_load
from bench.policies import Size, requests
from bench.processes import (
    Server,
    delete_prefix,
    policy_load_seconds,
    redis_for_bench,
    start_baseline,
    start_oms_auth,
)

CHECK = "/api/v1/authz/check"
BATCH = "/api/v1/authz/check/batch"
EVALUATION = "/access/v1/evaluation"


def check_body(sub: str, obj: str, act: str) -> str:
    return json.dumps({"subject": sub, "resource": obj, "action": act})


def evaluation_body(sub: str, obj: str, act: str) -> str:
    return json.dumps(
        {
            "subject": {"type": "user", "id": sub},
            "action": {"name": act},
            "resource": {"type": "data", "id": obj},
        }
    )


LOGGED_CHECK = "oms-auth /api/v1/authz/check, decision log on"


@dataclass
class HttpRow:
    name: str
    result: LoadResult
    rounds: int


def median_result(results: list[LoadResult]) -> LoadResult:
    ordered = sorted(results, key=lambda r: r.requests_per_s)
    middle = ordered[len(ordered) // 2]
    return LoadResult(
        requests_per_s=statistics.median(r.requests_per_s for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        errors=sum(r.errors for r in results),
        requests=sum(r.requests for r in results),
        tool=middle.tool,
    )


@dataclass
class HttpReport:
    rows: list[HttpRow]
    batch_decisions_per_s: float
    batch: LoadResult
    redis: bool
    # The same batches against an instance logging every decision to a JSON-lines file.
    logged_batch_decisions_per_s: float = 0.0


def run_http(
    workdir: Path,
    policy_dir: Path,
    size: Size,
    *,
    seconds: float,
    rounds: int,
    log: Callable[[str], None],
) -> HttpReport:
    redis_url = redis_for_bench()
    hot = requests(size, 1000, seed=11)
    cold = [
        (f"user-has-a-very-long-name-{u}", obj, act)
        for u, (_, obj, act) in enumerate(requests(size, size.users, seed=12))
    ]
    check_bodies = [check_body(*r) for r in hot]
    eval_bodies = [evaluation_body(*r) for r in hot]
    servers: list[Server] = []
    try:
        floor = start_baseline("floor", workdir)
        servers.append(floor)
        naive = start_baseline("naive", workdir, policy_dir)
        servers.append(naive)
        ours = start_oms_auth(workdir, policy_dir, redis_url=redis_url)
        servers.append(ours)
        logged = start_oms_auth(
            workdir,
            policy_dir,
            redis_url=redis_url,
            name="logged",
            extra_env={
                "OMS_AUTH_DECISION_LOG_ENABLED": "true",
                "OMS_AUTH_DECISION_LOG_PATH": str(workdir / "decisions.jsonl"),
            },
        )
        servers.append(logged)
        log(f"  servers up (redis: {'yes' if redis_url else 'no'})")

        # Cold: a freshly started instance per endpoint, every subject seen for the first time.
        cold_results = []
        for path, make in ((CHECK, check_body), (EVALUATION, evaluation_body)):
            fresh = start_oms_auth(workdir, policy_dir, redis_url=redis_url, name="cold")
            servers.append(fresh)
            cold_seconds = min(seconds, 0.8 * len(cold) / 5000)  # stay within first sightings
            cold_results.append(
                run_load(
                    fresh.url,
                    path,
                    seconds=max(1.0, cold_seconds),
                    connections=32,
                    bodies=[make(*r) for r in cold],
                )
            )
            fresh.stop()
        cold_check, cold_eval = cold_results
        log("  cold runs done")

        plan: list[tuple[str, Server, str, list[str]]] = [
            ("FastAPI floor (constant JSON)", floor, "/check", check_bodies),
            ("oms-auth /api/v1/authz/check", ours, CHECK, check_bodies),
            ("oms-auth /access/v1/evaluation", ours, EVALUATION, eval_bodies),
            ("naive FastAPI + casbin.Enforcer", naive, "/check", check_bodies),
            (LOGGED_CHECK, logged, CHECK, check_bodies),
        ]
        for _, server, path, bodies in plan:  # warm-up
            run_load(server.url, path, seconds=min(2.0, seconds), connections=32, bodies=bodies)
        collected: dict[str, list[LoadResult]] = {name: [] for name, *_ in plan}
        for i in range(rounds):
            for name, server, path, bodies in plan:
                collected[name].append(
                    run_load(server.url, path, seconds=seconds, connections=32, bodies=bodies)
                )
            log(f"  round {i + 1}/{rounds} done")
        rows = [
            HttpRow(name, median_result(results), rounds) for name, results in collected.items()
        ]
        rows.insert(2, HttpRow("oms-auth /api/v1/authz/check (cold)", cold_check, 1))
        rows.insert(4, HttpRow("oms-auth /access/v1/evaluation (cold)", cold_eval, 1))

        batch_bodies = [
            json.dumps(
                {"checks": [{"subject": s, "resource": o, "action": a} for s, o, a in chunk]}
            )
            for chunk in (requests(size, 1000, seed=20 + k) for k in range(5))
        ]
        run_load(ours.url, BATCH, seconds=min(2.0, seconds), connections=4, bodies=batch_bodies)
        batches = [
            run_load(ours.url, BATCH, seconds=seconds, connections=4, bodies=batch_bodies)
            for _ in range(rounds)
        ]
        batch = median_result(batches)
        run_load(logged.url, BATCH, seconds=min(2.0, seconds), connections=4, bodies=batch_bodies)
        logged_batch = median_result(
            [
                run_load(logged.url, BATCH, seconds=seconds, connections=4, bodies=batch_bodies)
                for _ in range(rounds)
            ]
        )
        log("  batch runs done")
        return HttpReport(
            rows,
            batch.requests_per_s * 1000,
            batch,
            redis_url is not None,
            logged_batch.requests_per_s * 1000,
        )
    finally:
        for server in servers:
            server.stop()
            if server.service:
                delete_prefix(redis_url, server.service + ":")


@dataclass
class MemoryReport:
    rules: int
    rss_mb_ready: float
    rss_mb_loaded: float
    policy_load_seconds: float | None
    ready_seconds: float


def run_memory(workdir: Path, policy_dir: Path, size: Size, *, seconds: float) -> MemoryReport:
    """RSS and load time of one instance serving the largest policy."""
    redis_url = redis_for_bench()
    server = start_oms_auth(workdir, policy_dir, redis_url=redis_url, name="large")
    try:
        ready_rss = server.rss_mb()
        bodies = [check_body(*r) for r in requests(size, 2000, seed=5)]
        run_load(server.url, CHECK, seconds=seconds, connections=32, bodies=bodies)
        return MemoryReport(
            rules=size.rules,
            rss_mb_ready=ready_rss,
            rss_mb_loaded=server.rss_mb(),
            policy_load_seconds=policy_load_seconds(server),
            ready_seconds=server.ready_seconds,
        )
    finally:
        server.stop()
        delete_prefix(redis_url, server.service + ":")
