"""Cache key format and the in-process tier's bounds and expiry."""

from __future__ import annotations

import hashlib

from app.cache.keys import CacheKeys
from app.cache.local import LocalCache
from app.policy.request import DecisionRequest, Entity

KEYS = CacheKeys("oms-auth:v1")


def test_decision_key_carries_revision_and_request_digest() -> None:
    request = DecisionRequest.of("alice", "api:schemas", "write")
    digest = hashlib.sha256(b"alice\x1fapi:schemas\x1fwrite\x1f").hexdigest()
    assert request.fingerprint() == digest
    assert KEYS.decision(7, request.fingerprint()) == f"oms-auth:v1:decision:7:{digest}"


def test_decision_digest_covers_domain_and_properties() -> None:
    plain = DecisionRequest.of("alice", "doc", "read")
    in_domain = DecisionRequest.of("alice", "doc", "read", "tenant-a")
    with_props = DecisionRequest(
        Entity("alice", "user", {"dept": "eng"}), Entity("doc"), Entity("read")
    )
    other_props = DecisionRequest(
        Entity("alice", "user", {"dept": "ops"}), Entity("doc"), Entity("read")
    )
    digests = {r.fingerprint() for r in (plain, in_domain, with_props, other_props)}
    assert len(digests) == 4


def test_other_keys() -> None:
    assert KEYS.user_permissions("client:ci") == "oms-auth:v1:user:permissions:client:ci"
    assert KEYS.policy_rev == "oms-auth:v1:policy:rev"
    assert KEYS.policy_channel == "oms-auth:v1:policy:changes"
    assert KEYS.active_subjects == "oms-auth:v1:stats:active_subjects"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_local_cache_expires_entries() -> None:
    clock = Clock()
    cache: LocalCache[str, int] = LocalCache(max_entries=10, ttl=5, clock=clock)
    cache.put("a", 1)
    cache.put("b", 2, ttl=1)
    clock.now = 2
    assert cache.get("a") == 1 and cache.get("b") is None
    clock.now = 5
    assert cache.get("a") is None and len(cache) == 0


def test_local_cache_is_bounded_and_evicts_least_recently_used() -> None:
    cache: LocalCache[int, int] = LocalCache(max_entries=3, ttl=60)
    for i in range(3):
        cache.put(i, i)
    assert cache.get(0) == 0  # 0 is now the most recent
    cache.put(3, 3)
    assert len(cache) == 3
    assert cache.get(1) is None
    assert [cache.get(k) for k in (0, 2, 3)] == [0, 2, 3]


def test_local_cache_of_size_zero_stores_nothing() -> None:
    cache: LocalCache[str, int] = LocalCache(max_entries=0, ttl=60)
    cache.put("a", 1)
    assert cache.get("a") is None
