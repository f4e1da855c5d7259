"""`OMS_AUTH_REDIS_URL=redis+cluster://...`: two real server processes on PostgreSQL and a
private Redis Cluster (3 primaries, 3 replicas) in token mode, and a primary killed during
checks. The cluster runs on spare ports; only its own processes are stopped, by PID."""

from __future__ import annotations

import asyncio
import functools
import shutil
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio.cluster import RedisCluster

from app.adapters.redis.client import ClusterHealth, close_redis, limits_storage_uri, make_redis
from app.addresses import parse_cluster_url
from app.config import Settings
from tests.conftest import POLICY_DIR
from tests.support.redis_cluster import RedisClusterSet, redis_cluster
from tests.support.server import Server, instances
from tests.support.tokens import PASSWORD, bearer
from tests.support.waiting import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.timeout(400),
]
__all__ = ["redis_cluster"]  # the fixture, used by name

KEY = "cluster-admin-key-0123456789abcdef"
ADMIN = {"X-API-Key": KEY}
ALICE_WRITES = {"subject": "alice", "resource": "api:schemas", "action": "write"}
ALICE_DELETES = {"subject": "alice", "resource": "api:branches:main", "action": "delete"}
ZOE_WRITES = {"subject": "zoe", "resource": "api:schemas", "action": "write"}
SERVICE_LIMIT = 6


def test_cluster_urls_are_parsed_or_refused_clearly() -> None:
    target = parse_cluster_url("redis+cluster://app:s%40cret@h1:7000,[::1]:7001/")
    assert target.nodes == (("h1", 7000), ("::1", 7001))
    assert (target.username, target.password) == ("app", "s@cret")
    assert parse_cluster_url("redis+cluster://:pw@h1:7000").username is None
    assert limits_storage_uri("redis+cluster://:pw@h1:7000,[::1]:7001/") == (
        "async+redis+cluster://h1:7000,[::1]:7001"
    )
    for bad, reason in (
        ("redis+cluster://h1/", "HOST:PORT"),
        ("redis+cluster://h1:7000/2", "one database"),
        ("redis+cluster://h1:7000?ssl=true", "options"),
    ):
        with pytest.raises(ValueError, match=reason):
            parse_cluster_url(bad)
        with pytest.raises(ValueError, match=r"OMS_AUTH_REDIS_URL|redis_url"):
            Settings(redis_url=bad)


def _env(pg_url: str, service_name: str, cluster: RedisClusterSet, tmp: Path) -> dict[str, str]:
    # The shipped policy, with the service client `checker` a decision client (in token mode a
    # caller asking about someone else needs `authz:check`).
    policy_dir = tmp / "policies"
    shutil.copytree(POLICY_DIR, policy_dir, ignore=shutil.ignore_patterns("examples", "tests"))
    with (policy_dir / "policy.csv").open("a") as f:
        f.write("\ng, client:checker, decision-client\n")
    return {
        "OMS_AUTH_DATABASE_URL": pg_url,
        "OMS_AUTH_REDIS_URL": cluster.url,
        "OMS_AUTH_SERVICE_NAME": service_name,
        "OMS_AUTH_POLICY_DIR": str(policy_dir),
        "OMS_AUTH_POLICY_SOURCE": "files+db",
        "OMS_AUTH_POLICY_WATCH": "false",
        # slow on purpose: a change that arrives within seconds was announced, not polled
        "OMS_AUTH_POLICY_POLL_INTERVAL": "30",
        "OMS_AUTH_DECISION_AUTH": "token",
        "OMS_AUTH_CALLER_CACHE_SECONDS": "0",  # every check asks Redis
        "OMS_AUTH_RATE_LIMIT_CHECK": "100000/minute",
        "OMS_AUTH_RATE_LIMIT_CHECK_SERVICE": f"{SERVICE_LIMIT}/minute",
        "OMS_AUTH_RATE_LIMIT_LOGIN_IP": "3/minute",
        "OMS_AUTH_HEALTH_CHECK_INTERVAL": "0.5",
        "OMS_AUTH_ADMIN_API_KEY": KEY,
        "OMS_AUTH_ARGON2_TIME_COST": "1",
        "OMS_AUTH_ARGON2_MEMORY_KIB": "1024",
        "OMS_AUTH_ARGON2_PARALLELISM": "1",
        "OMS_AUTH_LOG_LEVEL": "INFO",
    }


async def _login(http: httpx.AsyncClient, server: Server, user: str) -> dict[str, str]:
    r = await http.post(
        server.url + "/api/v2/auth/login", json={"username": user, "password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    return bearer(r.json()["access_token"])


async def _check(
    http: httpx.AsyncClient, server: Server, headers: dict[str, str], body: dict[str, str]
) -> httpx.Response:
    return await http.post(server.url + "/api/v1/authz/check", json=body, headers=headers)


async def _is_true(answer: Awaitable[bool | None]) -> bool:
    return await answer is True


async def _allowed(
    http: httpx.AsyncClient, server: Server, headers: dict[str, str], body: dict[str, str]
) -> bool:
    r = await _check(http, server, headers, body)
    assert r.status_code == 200, r.text
    allowed: bool = r.json()["allowed"]
    return allowed


async def _ready(http: httpx.AsyncClient, server: Server) -> dict[str, Any]:
    r = await http.get(server.url + "/readyz")
    assert r.status_code == 200, r.text  # a Redis failover never makes an instance unready
    checks: dict[str, Any] = r.json()["checks"]
    return checks


async def _recovered(http: httpx.AsyncClient, server: Server) -> bool:
    checks = await _ready(http, server)
    return bool(
        checks["cache"]["status"] == "ok"
        and checks["cache"]["policy_sync"] == "pubsub+db-poll"
        and checks["redis_cluster"]["state"] == "ok"
        and checks["dependencies"]["redis"]["status"] == "ok"
    )


async def _health_keeps_its_last_answer_while_checking(url: str) -> None:
    """`/readyz` reads the cluster's health at any time, also while the next check waits for
    its answer: it must see the last answer, not a placeholder ("unreachable", no counts)."""
    redis = make_redis(Settings(redis_url=url))
    assert isinstance(redis, RedisCluster)
    try:
        health = ClusterHealth(redis)
        assert await health.check()
        checking = asyncio.create_task(health.check())
        await asyncio.sleep(0)  # the check runs up to its round trip
        assert health.as_dict()["known_nodes"] == 6
        assert await checking
    finally:
        await close_redis(redis)


async def test_two_instances_on_a_cluster_through_a_primary_failover(
    pg_url: str, service_name: str, tmp_path: Path, redis_cluster: RedisClusterSet
) -> None:
    await _health_keeps_its_last_answer_while_checking(redis_cluster.url)
    env = _env(pg_url, service_name, redis_cluster, tmp_path)
    with instances(env, tmp_path) as (a, b):
        created = a.cli("clients", "create", "checker", "--scope", "authz:check")
        secret = created.split("client_secret: ")[1].split()[0]
        async with httpx.AsyncClient(timeout=10) as http:
            for user, roles in (("alice", ["developer"]), ("zoe", [])):
                body = {"username": user, "password": PASSWORD, "roles": roles}
                made = await http.post(a.url + "/api/v1/admin/users", json=body, headers=ADMIN)
                assert made.status_code == 201, made.text
            for server in (a, b):
                await wait_for(functools.partial(_recovered, http, server), timeout=20)
                cluster = (await _ready(http, server))["redis_cluster"]
                assert cluster["known_nodes"] == 6 and cluster["shards"] == 3, cluster

            # decisions, both ways, on both instances (the second answer may come from a cache)
            alice = await _login(http, a, "alice")
            for server in (a, b, a, b):
                assert await _allowed(http, server, alice, ALICE_WRITES) is True
                assert await _allowed(http, server, alice, ALICE_DELETES) is False

            # the check limit of a service caller holds across the two processes
            token = await http.post(
                a.url + "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=("checker", secret),
            )
            assert token.status_code == 200, token.text
            service = bearer(token.json()["access_token"])
            statuses = [
                (await _check(http, server, service, ALICE_WRITES)).status_code
                for server in (a, b) * (SERVICE_LIMIT // 2 + 1)
            ]
            assert statuses == [200] * SERVICE_LIMIT + [429] * 2
            limited = await _check(http, b, service, ALICE_WRITES)
            assert limited.json()["error"]["code"] == "RATE_001"
            assert int(limited.headers["retry-after"]) >= 1

            # a revocation on A is seen by B at its next check
            leaving = await _login(http, a, "alice")
            assert await _allowed(http, b, leaving, ALICE_WRITES) is True
            out = await http.post(a.url + "/api/v1/auth/logout", headers=leaving)
            assert out.status_code == 204
            refused = await _check(http, b, leaving, ALICE_WRITES)
            assert refused.status_code == 401, refused.text
            assert refused.json()["error"]["code"] == "AUTH_005"

            # a policy change made on A is announced to B (its poll is 30 s away); zoe logs in
            # afresh each time: a role change makes the tokens issued before it stale
            async def zoe_may_write(server: Server) -> bool | None:
                """None: the change reached `server` between zoe's login and her check, so
                it cut her fresh token off (401 stale, as it must); not settled yet."""
                r = await _check(http, server, await _login(http, server, "zoe"), ZOE_WRITES)
                if r.status_code == 401 and r.json()["error"]["details"].get("reason") == "stale":
                    return None
                assert r.status_code == 200, r.text
                allowed: bool = r.json()["allowed"]
                return allowed

            assert await zoe_may_write(b) is False
            put = await http.put(a.url + "/api/v1/roles/developer/members/zoe", headers=ADMIN)
            assert put.status_code == 201, put.text
            await wait_for(lambda: _is_true(zoe_may_write(b)), timeout=10)

            # a primary dies during checks: the one serving the revocation keys' slot
            answers: list[tuple[int, bool, float]] = []  # status, decision correct, seconds
            stop = asyncio.Event()

            async def keep_checking(server: Server) -> None:
                while not stop.is_set():
                    for body, want in ((ALICE_WRITES, True), (ALICE_DELETES, False)):
                        started = time.monotonic()
                        r = await _check(http, server, alice, body)
                        allowed = r.json().get("allowed") if r.status_code == 200 else None
                        answers.append((r.status_code, allowed is want, time.monotonic() - started))
                    await asyncio.sleep(0.01)

            checkers = [asyncio.create_task(keep_checking(s)) for s in (a, b)]
            revocation_slot_key = f"{{{service_name}:v1:auth}}:revocations:complete"
            old = redis_cluster.primary_of(revocation_slot_key)
            await asyncio.sleep(0.3)  # some checks before
            killed_at = time.monotonic()
            redis_cluster.kill(old)
            new = await asyncio.to_thread(redis_cluster.wait_promoted, revocation_slot_key, old)
            promoted_after = time.monotonic() - killed_at
            recovery = [
                await wait_for(functools.partial(_recovered, http, server), timeout=20)
                for server in (a, b)
            ]
            await asyncio.sleep(0.3)  # some checks after
            stop.set()
            await asyncio.gather(*checkers)
            slowest = max(seconds for _, _, seconds in answers)
            print(
                f"\nprimary {old} killed; replica {new} promoted after {promoted_after:.1f} s;"
                f" instances recovered {max(recovery):.1f} s later; {len(answers)} checks,"
                f" the slowest {slowest:.2f} s"
            )
            assert len(answers) > 20
            assert {status for status, _, _ in answers} == {200}, sorted(
                {status for status, _, _ in answers}
            )
            assert all(correct for _, correct, _ in answers)
            for server in (a, b):
                checks = await _ready(http, server)
                assert checks["redis_cluster"]["known_nodes"] == 6  # the dead one is still known
                assert checks["redis_cluster"]["slots_ok"] == 16384

            # after the failover: a revocation on B lands on the promoted node and reaches A
            leaving = await _login(http, b, "alice")
            assert await _allowed(http, a, leaving, ALICE_WRITES) is True
            out = await http.post(b.url + "/api/v1/auth/logout", headers=leaving)
            assert out.status_code == 204
            refused = await _check(http, a, leaving, ALICE_WRITES)
            assert refused.status_code == 401 and refused.json()["error"]["code"] == "AUTH_005"
            assert redis_cluster.primary_of(revocation_slot_key) == new
            with_keys = redis_cluster.ask(new, "KEYS", f"{{{service_name}:v1:auth}}:revoked:*")
            assert isinstance(with_keys, list) and with_keys

            # ... and a policy change on B is announced to A again
            put = await http.delete(b.url + "/api/v1/roles/developer/members/zoe", headers=ADMIN)
            assert put.status_code == 200, put.text

            async def zoe_refused_on_a() -> bool:
                return await zoe_may_write(a) is False

            await wait_for(zoe_refused_on_a, timeout=10)

            # the login windows (limits' cluster storage) and the failure store hold too:
            # failed logins from this address on A and B share one window
            for server, user in ((a, "nobody-1"), (b, "nobody-2"), (a, "nobody-3")):
                r = await http.post(
                    server.url + "/api/v2/auth/login",
                    json={"username": user, "password": "wrong password"},
                )
                assert r.status_code == 401, r.text
            blocked = await http.post(
                b.url + "/api/v2/auth/login", json={"username": "alice", "password": PASSWORD}
            )
            assert blocked.status_code == 429, blocked.text
            assert blocked.json()["error"]["code"] == "RATE_001"
        for server in (a, b):
            assert not server.events("cache.redis.probe_failed")
