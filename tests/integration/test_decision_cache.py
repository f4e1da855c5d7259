"""The decision and permission-set caches against real Redis: hits, misses, keys, batching."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis

from app.adapters.redis.availability import RedisAvailability
from app.adapters.redis.remote import RedisTier
from app.cache.decisions import TieredDecisionCache
from app.cache.keys import CacheKeys
from app.policy.request import DecisionRequest
from tests.conftest import SettingsFactory
from tests.support.apps import serve, services_of
from tests.support.fidelity import FIDELITY
from tests.support.policies import EXAMPLES
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

ERIN_READS = {"subject": "erin", "resource": "doc:1", "action": "read"}


@pytest.fixture
def shared_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


async def test_generic_decisions_hit_l1_then_live_in_redis(
    make_settings: SettingsFactory, redis_url: str, service_name: str, shared_redis: redis.Redis
) -> None:
    settings = make_settings(policy_dir=EXAMPLES / "abac", redis_url=redis_url)
    async with serve(settings) as (app, client):
        first = (await client.post("/api/v1/authz/check", json=ERIN_READS)).json()
        second = (await client.post("/api/v1/authz/check", json=ERIN_READS)).json()
        assert first["allowed"] is second["allowed"] is True
        assert (first["cached"], second["cached"]) == (False, True)
        revision = first["policy_revision"]
        request = DecisionRequest.of("erin", "doc:1", "read")
        policy = services_of(app).engine.snapshot.content_digest
        digest = hashlib.sha256(f"{policy}\x1d{request.fingerprint()}".encode()).hexdigest()
        key = f"{service_name}:v1:decision:{revision}:{digest}"
        assert shared_redis.get(key) == b"1"
        assert 0 < shared_redis.ttl(key) <= settings.decision_cache_ttl
        explained = (
            await client.post("/api/v1/authz/check", json={**ERIN_READS, "explain": True})
        ).json()
        assert explained["cached"] is False  # explained decisions are always computed
        assert explained["explain"]["evaluator"] == "generic"
        metrics = (await client.get("/metrics")).text
        assert (
            'oms_auth_cache_lookups_total{cache="decision",result="hit",tier="l1"} 1.0' in metrics
        )
        assert 'path="generic"' in metrics


async def test_indexed_decisions_bypass_the_cache(
    make_settings: SettingsFactory, redis_url: str, service_name: str, shared_redis: redis.Redis
) -> None:
    """An indexed check is cheaper than a cache lookup: it is never cached, anywhere."""
    settings = make_settings(redis_url=redis_url)
    async with serve(settings) as (_app, client):
        body = {"subject": "alice", "resource": "api:schemas", "action": "write"}
        answers = [(await client.post("/api/v1/authz/check", json=body)).json() for _ in range(3)]
        assert [a["cached"] for a in answers] == [False, False, False]
        assert all(a["allowed"] for a in answers)
        explained = await client.post("/api/v1/authz/check", json={**body, "explain": True})
        assert explained.json()["explain"]["evaluator"] == "indexed"
    assert list(shared_redis.scan_iter(f"{service_name}:v1:decision:*")) == []


async def test_batch_costs_one_mget_and_a_second_instance_reads_redis(
    private_redis: RedisServer,
) -> None:
    keys = CacheKeys("svc:v1")
    clients = [Redis.from_url(private_redis.url) for _ in range(2)]
    caches = [
        TieredDecisionCache(
            keys=keys, max_entries=1000, ttl=60, remote=RedisTier(c, RedisAvailability(c))
        )
        for c in clients
    ]
    try:
        fingerprints = [DecisionRequest.of(f"u{i}", "r", "read").fingerprint() for i in range(100)]
        before = private_redis.command_calls("mget")
        assert await caches[0].get_many(5, fingerprints) == [None] * 100
        assert private_redis.command_calls("mget") == before + 1
        await caches[0].set_many(5, [(fp, i % 2 == 0) for i, fp in enumerate(fingerprints)])
        # the other instance has an empty L1: one MGET answers the whole batch from Redis
        got = await caches[1].get_many(5, fingerprints)
        assert got == [i % 2 == 0 for i in range(100)]
        assert private_redis.command_calls("mget") == before + 2
        assert private_redis.command_calls("get") == 0
        # ...and now from its L1, without Redis
        assert await caches[1].get_many(5, fingerprints[:10]) == got[:10]
        assert private_redis.command_calls("mget") == before + 2
        # another revision never sees these entries
        assert await caches[1].get_many(6, fingerprints[:3]) == [None] * 3
    finally:
        for c in clients:
            await c.aclose()


async def test_batch_over_http_uses_one_redis_lookup(
    make_settings: SettingsFactory, private_redis: RedisServer
) -> None:
    settings = make_settings(policy_dir=EXAMPLES / "abac", redis_url=private_redis.url)
    checks = [{"subject": f"user{i}", "resource": "doc:1", "action": "read"} for i in range(50)]
    async with serve(settings) as (_app, client):
        before = private_redis.command_calls("mget")
        first = (await client.post("/api/v1/authz/check/batch", json={"checks": checks})).json()
        assert private_redis.command_calls("mget") == before + 1
        second = (await client.post("/api/v1/authz/check/batch", json={"checks": checks})).json()
        assert [r["cached"] for r in first["results"]] == [False] * 50
        assert [r["cached"] for r in second["results"]] == [True] * 50  # L1: no Redis at all
        assert private_redis.command_calls("mget") == before + 1


async def test_a_policy_change_is_never_answered_from_the_old_revision(
    make_settings: SettingsFactory, redis_url: str, abac_dir: Path
) -> None:
    folder = abac_dir
    settings = make_settings(policy_dir=folder, redis_url=redis_url)
    async with serve(settings) as (app, client):
        ask = {"subject": "zed", "resource": "doc:9", "action": "archive"}
        assert (await client.post("/api/v1/authz/check", json=ask)).json()["allowed"] is False
        assert (await client.post("/api/v1/authz/check", json=ask)).json()["cached"] is True
        with (folder / "policy.csv").open("a") as f:
            f.write("g, zed, records-manager\n")
        await services_of(app).engine.load(trigger="file")
        after = (await client.post("/api/v1/authz/check", json=ask)).json()
        assert after["allowed"] is True and after["cached"] is False


async def test_permission_sets_are_cached_per_revision(
    make_settings: SettingsFactory,
    redis_url: str,
    service_name: str,
    shared_redis: redis.Redis,
    abac_dir: Path,
) -> None:
    """Generic path: sets live in L1 and Redis, each stored with its revision."""
    settings = make_settings(policy_dir=abac_dir, redis_url=redis_url)
    async with serve(settings) as (app, client):
        first = (await client.get("/api/v1/users/erin/permissions")).json()
        second = (await client.get("/api/v1/users/erin/permissions")).json()
        assert (first["cached"], second["cached"]) == (False, True)
        assert first["roles"] == second["roles"] == ["records-manager"]
        stored = shared_redis.hget(f"{service_name}:v1:user:permissions:erin", "")
        assert stored is not None and f'"revision":{first["policy_revision"]}'.encode() in stored
        batch = await client.post(
            "/api/v1/users/permissions/batch", json={"user_ids": ["erin", "bob"]}
        )
        assert [u["cached"] for u in batch.json()["users"]] == [True, False]
        # Reloading identical content keeps its revision; changed content takes a new one.
        with (abac_dir / "policy.csv").open("a") as f:
            f.write("g, zed, records-manager\n")
        await services_of(app).engine.load(trigger="reload")  # a new revision: recomputed
        third = (await client.get("/api/v1/users/erin/permissions")).json()
        assert third["cached"] is False and third["policy_revision"] > first["policy_revision"]


async def test_a_generic_permission_set_is_shared_between_instances(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    settings = make_settings(policy_dir=EXAMPLES / "abac", redis_url=redis_url)
    async with AsyncExitStack() as stack:
        app_a, a = await stack.enter_async_context(serve(settings))
        app_b, b = await stack.enter_async_context(serve(settings))

        async def same_revision() -> bool:
            return services_of(app_a).engine.revision == services_of(app_b).engine.revision

        await wait_for(same_revision, timeout=10)
        assert (await a.get("/api/v1/users/erin/permissions")).json()["cached"] is False
        from_redis = (await b.get("/api/v1/users/erin/permissions")).json()
        assert from_redis["cached"] is True and from_redis["roles"] == ["records-manager"]


async def test_indexed_permission_sets_stay_in_process(
    make_settings: SettingsFactory, redis_url: str, service_name: str, shared_redis: redis.Redis
) -> None:
    """An indexed set computes faster than a Redis round trip: L1 only."""
    settings = make_settings(redis_url=redis_url)
    async with serve(settings) as (_app, client):
        first = (await client.get("/api/v1/users/alice/permissions")).json()
        second = (await client.get("/api/v1/users/alice/permissions")).json()
        assert (first["cached"], second["cached"]) == (False, True)
        assert first["roles"] == ["developer", "viewer"]
    assert list(shared_redis.scan_iter(f"{service_name}:v1:user:*")) == []


@pytest.fixture
def abac_dir(tmp_path: Path) -> Path:
    """An editable copy of the ABAC example (served by the generic path)."""
    target = tmp_path / "abac"
    shutil.copytree(EXAMPLES / "abac", target)
    return target


async def test_instances_with_different_files_never_share_answers(
    make_settings: SettingsFactory, redis_url: str, abac_dir: Path
) -> None:
    """A rolling deploy: two instances, one revision label, different policy files."""
    with (abac_dir / "policy.csv").open("a") as f:
        f.write("g, zed, records-manager\n")
    ask = {"subject": "zed", "resource": "doc:3", "action": "archive"}
    old_files = make_settings(policy_dir=EXAMPLES / "abac", redis_url=redis_url)
    new_files = make_settings(policy_dir=abac_dir, redis_url=redis_url)
    async with AsyncExitStack() as stack:
        app_a, a = await stack.enter_async_context(serve(old_files))
        app_b, b = await stack.enter_async_context(serve(new_files))

        async def same_revision() -> bool:
            return services_of(app_a).engine.revision == services_of(app_b).engine.revision

        await wait_for(same_revision, timeout=10)
        old = (await a.post("/api/v1/authz/check", json=ask)).json()
        assert old["allowed"] is False
        new = (await b.post("/api/v1/authz/check", json=ask)).json()
        assert new["policy_revision"] == old["policy_revision"]
        assert new["allowed"] is True and new["cached"] is False


async def test_a_generic_definition_on_an_indexed_policy_uses_the_cache(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    """The cache follows the evaluator of each request, not of the policy: a request of a
    second definition is answered on the generic path, so its decision is cached; the main
    definition's indexed checks still bypass the cache, in a batch too."""
    settings = make_settings(policy_dir=FIDELITY / "enforce_context", redis_url=redis_url)
    second = {"values": ["ben", "restart"], "definition": "r2"}
    plain = {"subject": "ann", "resource": "report", "action": "read"}
    async with serve(settings) as (_app, client):
        answers = [(await client.post("/api/v1/authz/check", json=second)).json() for _ in range(2)]
        assert [(a["allowed"], a["cached"]) for a in answers] == [(True, False), (True, True)]
        batch = (
            await client.post("/api/v1/authz/check/batch", json={"checks": [second, plain, second]})
        ).json()
        assert [(r["allowed"], r["cached"]) for r in batch["results"]] == [
            (True, True),
            (True, False),
            (True, True),
        ]
        assert batch["policy_revision"] == answers[0]["policy_revision"]
