"""Cache tiers measured where they would sit: does each one make a check faster?

An indexed check costs a few microseconds; a Redis round trip costs hundreds. So L1 and L2
are measured in front of both evaluation paths, through the real `DecisionService`, with the
same requests: the figures justify (or not) each tier on each path.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from app.adapters.redis.availability import RedisAvailability
from app.adapters.redis.remote import RedisTier
from app.cache.decisions import TieredDecisionCache
from app.cache.keys import CacheKeys
from app.cache.permissions import PermissionSetCache
from app.decisions.permissions import permission_set
from app.decisions.service import DecisionService
from app.heap import freeze_after_load
from app.policy.engine import PolicyEngine
from app.policy.request import DecisionRequest
from app.policy.sources import FileRuleSource, PolicyLoader
from bench.policies import MODEL, Size, requests
from bench.processes import delete_prefix, redis_for_bench

# The same RBAC, written with keyMatch2: equal decisions for these ids, but a matcher the index
# does not take, so every check scans all rules (Casbin's generic semantics).
GENERIC_MODEL = MODEL.replace("r.obj == p.obj", "keyMatch2(r.obj, p.obj)")


class _Revisions:
    """A fixed revision: the bench measures tiers, not invalidation."""

    async def current(self) -> int:
        return 1

    async def bump(self) -> int:
        return 1

    async def label(self, seen: int, fingerprint: str) -> int | None:
        return seen  # any content keeps the revision it was read under

    async def remember(self, revision: int, fingerprint: str) -> None:
        pass  # nothing to remember: the revision never moves


@dataclass
class TierRow:
    path: str
    tier: str
    p50_us: float
    p99_us: float
    samples: int


async def _engine(folder: Path) -> PolicyEngine:
    engine = PolicyEngine(PolicyLoader(folder, [FileRuleSource(folder)]), _Revisions())
    engine.on_change(freeze_after_load)  # as the benchmarked server (OMS_AUTH_GC_FREEZE=true)
    await engine.load(trigger="startup", bump=False)
    return engine


def _cache(keys: CacheKeys, redis: Redis | None, *, l1: int) -> TieredDecisionCache:
    remote = RedisTier(redis, RedisAvailability(redis)) if redis is not None else None
    return TieredDecisionCache(keys=keys, max_entries=l1, ttl=300, remote=remote)


async def _time_checks(
    service: DecisionService, reqs: list[DecisionRequest], *, budget: float
) -> tuple[float, float, int]:
    for r in reqs:  # warm every tier in front of the check
        await service.check(r)
    times: list[int] = []
    deadline = time.perf_counter() + budget
    i = 0
    while (time.perf_counter() < deadline or len(times) < 5) and len(times) < 20_000:
        request = reqs[i % len(reqs)]
        t0 = time.perf_counter_ns()
        await service.check(request)
        times.append(time.perf_counter_ns() - t0)
        i += 1
    times.sort()
    return times[len(times) // 2] / 1000, times[int(len(times) * 0.99)] / 1000, len(times)


async def _run(workdir: Path, size: Size, budget: float) -> list[TierRow]:
    from bench.policies import write_policy

    indexed_dir = write_policy(workdir / "tiers-indexed", size)
    generic_dir = write_policy(workdir / "tiers-generic", size)
    (generic_dir / "model.conf").write_text(GENERIC_MODEL)
    redis_url = redis_for_bench()
    redis = Redis.from_url(redis_url) if redis_url else None
    keys = CacheKeys(f"oms-auth-bench-{secrets.token_hex(3)}:v1")
    rows: list[TierRow] = []
    try:
        for path, folder, count in (("indexed", indexed_dir, 500), ("generic", generic_dir, 40)):
            engine = await _engine(folder)
            assert engine.snapshot.evaluator_name == path
            reqs = [DecisionRequest.of(*r) for r in requests(size, count, seed=31)]
            variants: list[tuple[str, DecisionService]] = [
                ("no cache", DecisionService(engine)),
                (
                    "L1 hit",
                    DecisionService(
                        engine, cache=_cache(keys, None, l1=10_000), cache_indexed=True
                    ),
                ),
            ]
            if redis is not None:
                variants.append(
                    (
                        "L2 (Redis) hit",
                        DecisionService(
                            engine, cache=_cache(keys, redis, l1=0), cache_indexed=True
                        ),
                    )
                )
            for tier, service in variants:
                p50, p99, n = await _time_checks(service, reqs, budget=budget)
                rows.append(TierRow(path, tier, p50, p99, n))
        for path, folder in (("indexed", indexed_dir), ("generic", generic_dir)):
            rows.extend(await _permission_rows(folder, path, size, keys, redis, budget))
    finally:
        if redis is not None:
            await redis.aclose()
        delete_prefix(redis_url, keys.prefix + ":")
    return rows


async def _permission_rows(
    folder: Path, path: str, size: Size, keys: CacheKeys, redis: Redis | None, budget: float
) -> list[TierRow]:
    """A user's permission set: computed, from L1, from Redis (forced on, to compare)."""
    engine = await _engine(folder)
    snapshot = engine.snapshot
    users = [r[0] for r in requests(size, 100 if path == "indexed" else 10, seed=41)]
    local = PermissionSetCache(keys=keys, max_entries=10_000, ttl=300)
    remote = RedisTier(redis, RedisAvailability(redis)) if redis is not None else None
    shared = PermissionSetCache(keys=keys, max_entries=0, ttl=300, remote=remote)
    sets = [(u, permission_set(snapshot, u, None)) for u in users]
    await local.put_many(1, sets, None, shared=False)
    await shared.put_many(1, sets, None, shared=True)

    async def compute(user: str) -> object:
        return permission_set(snapshot, user, None)

    async def from_l1(user: str) -> object:
        return (await local.get_many(1, [user], None, shared=False))[0]

    async def from_l2(user: str) -> object:
        return (await shared.get_many(1, [user], None, shared=True))[0]

    variants = [("no cache", compute), ("L1 hit", from_l1)]
    if remote is not None:
        variants.append(("L2 (Redis) hit", from_l2))
    rows = []
    for tier, fetch in variants:
        times: list[int] = []
        deadline = time.perf_counter() + budget
        i = 0
        while (time.perf_counter() < deadline or len(times) < 5) and len(times) < 20_000:
            t0 = time.perf_counter_ns()
            assert await fetch(users[i % len(users)]) is not None
            times.append(time.perf_counter_ns() - t0)
            i += 1
        times.sort()
        p50, p99 = times[len(times) // 2] / 1000, times[int(len(times) * 0.99)] / 1000
        rows.append(TierRow(f"permission set ({path})", tier, p50, p99, len(times)))
    return rows


def run_tiers(workdir: Path, size: Size, *, budget: float) -> list[TierRow]:
    return asyncio.run(_run(workdir, size, budget))
