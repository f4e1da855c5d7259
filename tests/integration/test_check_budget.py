"""`RedisBatcher` and `CheckBudget` against the machine's Redis (a test-only key prefix)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from app.adapters.redis.batch import RedisBatcher
from app.adapters.redis.check_budget import CheckBudget
from app.security.rate_limits import OverLimit

pytestmark = pytest.mark.integration


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_commands_of_one_loop_turn_share_one_round_trip(
    redis: Redis, service_name: str
) -> None:
    batcher = RedisBatcher(redis)
    key = f"{service_name}:batch"
    results = await asyncio.gather(
        batcher.run(lambda p: p.set(key, b"1")),
        batcher.run(lambda p: (p.incrby(key, 2), p.get(key))),
        batcher.run(lambda p: p.get(f"{key}:absent")),
    )
    assert batcher.round_trips == 1
    assert list(results) == [[True], [3, b"3"], [None]]
    # each caller gets its own failure; the others their results
    wrong: list[Any] | BaseException  # declared: mypy cannot infer them through the lambdas
    right: list[Any] | BaseException
    wrong, right = await asyncio.gather(
        batcher.run(lambda p: p.lpush(key, b"x")),  # WRONGTYPE: key holds a string
        batcher.run(lambda p: p.get(key)),
        return_exceptions=True,
    )
    assert isinstance(wrong, ResponseError) and right == [b"3"]
    assert batcher.round_trips == 2


async def test_a_closed_batcher_ends_its_round_trips_and_sends_no_more(
    redis: Redis, service_name: str
) -> None:
    """Closing (before the client closes) lets a round trip in flight finish and refuses
    later ones, so nothing opens a connection on a closed client."""
    batcher = RedisBatcher(redis)
    key = f"{service_name}:closing"
    in_flight = asyncio.ensure_future(batcher.run(lambda p: p.set(key, b"1")))
    for _ in range(100):  # queued, then sent on a later loop turn
        if batcher._sending:
            break
        await asyncio.sleep(0)
    assert batcher._sending
    await batcher.close()
    assert await in_flight == [True]
    with pytest.raises(RedisConnectionError):
        await batcher.run(lambda p: p.get(key))
    assert batcher.round_trips == 1
    # one queued but not yet sent when the close came is failed, not sent
    other = RedisBatcher(redis)
    queued = asyncio.ensure_future(other.run(lambda p: p.get(key)))
    await asyncio.sleep(0)
    await other.close()
    with pytest.raises(RedisConnectionError):
        await queued
    assert other.round_trips == 0


async def test_a_dead_redis_fails_every_waiter(unused_tcp_port: int) -> None:
    dead = Redis(host="127.0.0.1", port=unused_tcp_port, socket_connect_timeout=0.5)
    batcher = RedisBatcher(dead)
    outcomes = await asyncio.gather(
        batcher.run(lambda p: p.get("a")), batcher.run(lambda p: p.get("b")), return_exceptions=True
    )
    assert all(isinstance(o, RedisConnectionError) for o in outcomes), outcomes
    await dead.aclose()


def budget(redis: Redis, prefix: str, clock: Clock, *, window: float, amount: int) -> CheckBudget:
    return CheckBudget(
        RedisBatcher(redis),
        amount=amount,
        period_seconds=60,
        prefix=prefix,
        window=window,
        clock=clock,
    )


async def test_every_charge_asks_redis_without_a_window(redis: Redis, service_name: str) -> None:
    clock = Clock(1_000_040.0)  # 20 s into a 60 s period
    a = budget(redis, service_name, clock, window=0, amount=5)
    b = budget(redis, service_name, clock, window=0, amount=5)  # another process
    for charger in (a, b, a, b, a):
        await charger.charge("svc", 1)
    with pytest.raises(OverLimit) as refused:
        await b.charge("svc", 1)
    assert refused.value.retry_after == 40
    assert a.batcher.round_trips == 3 and b.batcher.round_trips >= 2
    # a refused charge was given back: next period, the previous 5 weigh 5 * 40/60 = 3.3
    clock.now += 60
    await a.charge("svc", 1)
    with pytest.raises(OverLimit):
        await b.charge("svc", 1)  # 3.3 + 2 > 5


async def test_within_the_window_only_the_first_charge_asks(
    redis: Redis, service_name: str
) -> None:
    clock = Clock(2_000_010.0)  # 30 s into a period
    a = budget(redis, service_name, clock, window=1.0, amount=10)
    for _ in range(10):
        await a.charge("svc", 1)
    assert a.batcher.round_trips == 1
    with pytest.raises(OverLimit):
        await a.charge("svc", 1)  # refused locally: what Redis said can only grow
    assert a.batcher.round_trips == 1
    # after the window the counted checks reach Redis with the next charge
    clock.now += 1.5
    b = budget(redis, service_name, clock, window=0, amount=10)
    with pytest.raises(OverLimit):
        await a.charge("svc", 1)
    with pytest.raises(OverLimit):
        await b.charge("svc", 1)  # another process sees all ten
    current = await redis.get(f"{service_name}:rate:checks:svc:{int(clock.now // 60)}")
    assert current is not None and int(current) == 10
