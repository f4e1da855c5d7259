"""Admission control of password hashing: a bounded pool and queue, fast 503s beyond them,
no work for callers that left, hash upgrades off the request path."""

from __future__ import annotations

import asyncio
import threading

import pytest
from argon2 import PasswordHasher as Argon2Hasher
from sqlalchemy import event

from app.adapters.http.responses import http_headers, http_status
from app.errors import Overloaded
from app.security.passwords import MAX_RETRY_AFTER, PasswordHasher, Verification
from app.store.database import Database
from app.store.users import UserRepository
from tests.support.tokens import PASSWORD, AppFactory, hold_verifications, until_warmed
from tests.support.waiting import wait_for


class GatedHasher(PasswordHasher):
    """A real hasher whose verifications wait for `gate` (so a test controls how long a
    slot is held); `started` counts verifications that really began."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(time_cost=1, memory_kib=1024, parallelism=1, **kwargs)  # type: ignore[arg-type]
        self.gate = threading.Event()
        self.started = 0

    def verify_blocking(self, stored_hash: str | None, password: str) -> Verification:
        self.started += 1
        self.gate.wait(30)
        return super().verify_blocking(stored_hash, password)


async def _until_running(hasher: PasswordHasher, running: int, waiting: int = 0) -> None:
    async def reached() -> bool:
        return hasher._taken == running and hasher._waiting == waiting

    await wait_for(reached, timeout=10)


async def test_beyond_the_queue_is_refused_at_once_with_retry_after() -> None:
    hasher = GatedHasher(workers=1, queue=1, queue_timeout=30)
    try:
        first = asyncio.create_task(hasher.verify(None, "x"))
        await _until_running(hasher, 1)
        second = asyncio.create_task(hasher.verify(None, "x"))
        await _until_running(hasher, 1, 1)
        with pytest.raises(Overloaded) as refused:
            await hasher.verify(None, "x")
        assert refused.value.code == "SYS_003" and http_status(refused.value) == 503
        assert http_headers(refused.value)["Retry-After"] == "1"
        assert hasher.refused == 1 and hasher.started == 1
        hasher.gate.set()
        assert (await first).ok is False and (await second).ok is False
        assert hasher.started == 2
    finally:
        hasher.gate.set()
        hasher.close()


async def test_a_job_waiting_too_long_is_refused_without_running() -> None:
    hasher = GatedHasher(workers=1, queue=5, queue_timeout=0.2)
    try:
        first = asyncio.create_task(hasher.verify(None, "x"))
        await _until_running(hasher, 1)
        with pytest.raises(Overloaded):
            await hasher.verify(None, "x")
        hasher.gate.set()
        await first
        assert hasher.started == 1 and hasher.refused == 1
    finally:
        hasher.gate.set()
        hasher.close()


async def test_a_job_that_would_wait_too_long_is_refused_before_queueing() -> None:
    """Once the pool knows how long a job holds a slot, a job that would predictably wait
    past the queue timeout is refused at once (not after waiting), with an honest
    Retry-After; the queue itself is not full."""
    hasher = GatedHasher(workers=1, queue=8, queue_timeout=1.0)
    try:
        hasher.gate.set()
        assert (await hasher.verify(None, "x")).ok is False
        hasher.gate.clear()
        hasher.job_seconds = 0.6  # as measured under a slower cost
        first = asyncio.create_task(hasher.verify(None, "x"))
        await _until_running(hasher, 1)
        assert hasher.predicted_wait() == pytest.approx(0.6)
        queued = asyncio.create_task(hasher.verify(None, "x"))  # 0.6 s ahead of it: admitted
        await _until_running(hasher, 1, 1)
        assert hasher.predicted_wait() == pytest.approx(1.2)
        with pytest.raises(Overloaded, match="longer than the service waits") as refused:
            await hasher.verify(None, "x")  # 1.2 s ahead of it: refused without waiting
        assert http_headers(refused.value)["Retry-After"] == "1"
        assert hasher._waiting == 1 and hasher.refused == 1
        hasher.gate.set()
        assert (await first).ok is False and (await queued).ok is False
        assert hasher.job_seconds is not None and hasher.job_seconds < 0.6
    finally:
        hasher.gate.set()
        hasher.close()


async def test_a_reservation_holds_a_place_in_the_queue_until_it_is_used() -> None:
    """A login reserves its place before its lookups: reservations count against the queue
    (even while a slot is free, so a burst arriving at once cannot all pass), one that is
    never used gives its place back, and a used one is not judged again."""
    hasher = GatedHasher(workers=1, queue=1, queue_timeout=30)
    try:
        assert not hasher.would_refuse()
        with hasher.reservation() as first, hasher.reservation() as second:
            assert hasher.would_refuse() and hasher.refused == 0  # asking counts nothing
            with pytest.raises(Overloaded, match="Too many"), hasher.reservation():
                pass  # the slot and the queue place are spoken for
            hasher.job_seconds = 60.0  # a prediction would now refuse anyone queueing
            running = asyncio.create_task(hasher.verify(None, "x", reservation=first))
            await _until_running(hasher, 1, 1)
            queued = asyncio.create_task(hasher.verify(None, "x", reservation=second))
            await _until_running(hasher, 1, 1)  # admitted: its place was reserved
            hasher.gate.set()
            assert (await running).ok is False and (await queued).ok is False
        assert hasher.refused == 1 and hasher.started == 2
        hasher.gate.clear()
        with hasher.reservation():
            pass  # left unused (say, the caller was rate limited): the place comes back
        assert hasher._waiting == 0 and hasher._taken == 0
    finally:
        hasher.gate.set()
        hasher.close()


async def test_a_storm_is_told_to_come_back_spread_over_the_time_it_needs() -> None:
    """Refused callers get a Retry-After drawn over the window the pool needs to serve the
    refusals it sees (refusals per second / jobs per second), not all "1 s" at once."""
    hasher = GatedHasher(workers=1, queue=0, queue_timeout=30)
    try:
        hasher.job_seconds = 1.0  # one job per second
        first = asyncio.create_task(hasher.verify(None, "x"))
        await _until_running(hasher, 1)
        waits = []
        for _ in range(30):
            with pytest.raises(Overloaded) as refused:
                await hasher.verify(None, "x")
            waits.append(int(http_headers(refused.value)["Retry-After"]))
        assert min(waits) >= 1 and max(waits) <= 30
        assert max(waits) > 5, waits  # spread, not everyone back in a second
        hasher.gate.set()
        await first
    finally:
        hasher.gate.set()
        hasher.close()


async def test_a_cancelled_caller_never_starts_hashing() -> None:
    hasher = GatedHasher(workers=1, queue=4, queue_timeout=30)
    try:
        first = asyncio.create_task(hasher.verify(None, "x"))
        await _until_running(hasher, 1)
        queued = asyncio.create_task(hasher.verify(None, "x"))
        await _until_running(hasher, 1, 1)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        assert hasher._waiting == 0
        hasher.gate.set()
        await first
        # the slot is free again and the cancelled job never ran
        assert (await hasher.verify(None, "x")).ok is False
        assert hasher.started == 2
    finally:
        hasher.gate.set()
        hasher.close()


async def test_an_abandoned_caller_never_starts_hashing() -> None:
    hasher = GatedHasher(workers=1, queue=4, queue_timeout=30)
    hasher.gate.set()

    async def gone() -> bool:
        return False

    try:
        with pytest.raises(Overloaded):
            await hasher.verify(None, "x", still_wanted=gone)
        assert hasher.started == 0 and hasher.abandoned == 1
        assert (await hasher.verify(None, "x")).ok is False  # the slot was given back
    finally:
        hasher.close()


async def test_a_slot_is_held_until_the_thread_finishes_even_if_its_caller_left() -> None:
    hasher = GatedHasher(workers=1, queue=4, queue_timeout=30)
    try:
        running = asyncio.create_task(hasher.verify(None, "x"))
        await _until_running(hasher, 1)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        # argon2 cannot be interrupted: the thread still runs, so its slot stays taken
        assert hasher._taken == 1
        assert await hasher.hash_if_idle(PASSWORD) is None
        hasher.gate.set()
        await _until_running(hasher, 0)
        assert await hasher.hash_if_idle(PASSWORD) is not None
    finally:
        hasher.gate.set()
        hasher.close()


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_login_storm_gets_fast_503s_not_a_queue(
    token_app_factory: AppFactory, version: str
) -> None:
    # Real argon2 at a cost that keeps the one hashing thread busy while the storm arrives.
    async with token_app_factory(
        argon2_time_cost=4,
        argon2_memory_kib=65_536,
        hash_workers=1,
        hash_queue=1,
        hash_queue_timeout=30,
        rate_limit_login_ip="10000/minute",
        rate_limit_login_user="10000/minute",
    ) as env:
        hasher = env.tokens.hasher
        before = hasher.verifications
        answers = await asyncio.gather(
            *(
                env.http.post(
                    f"/api/{version}/auth/login", json={"username": "alice", "password": PASSWORD}
                )
                for _ in range(24)
            )
        )
        statuses = [r.status_code for r in answers]
        assert set(statuses) <= {200, 503}, statuses
        refused = [r for r in answers if r.status_code == 503]
        assert refused, statuses
        for r in refused:
            assert 1 <= int(r.headers["Retry-After"]) <= MAX_RETRY_AFTER
            assert r.json()["error"]["code"] == "SYS_003"
        # refused logins did no hashing at all
        assert hasher.verifications - before == statuses.count(200)
        assert hasher.refused == len(refused)


async def test_a_login_the_pool_would_refuse_costs_no_lookups(
    token_app_factory: AppFactory,
) -> None:
    """While the pool is full, logins are refused before the rate limiter, the back-off and
    the user lookup: a storm the pool cannot serve adds no database (or Redis) work."""
    async with token_app_factory(
        hash_workers=1,
        hash_queue=0,
        rate_limit_login_ip="10000/minute",
        health_check_interval=300,  # no database ping among the statements counted
    ) as env:
        hasher = env.tokens.hasher
        await until_warmed(hasher)
        statements: list[str] = []

        def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
            statements.append(statement)

        engine = env.tokens.users.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", seen)
        gate = threading.Event()
        hold_verifications(hasher, gate)
        body = {"username": "alice", "password": PASSWORD}
        try:
            first = asyncio.create_task(env.http.post("/api/v2/auth/login", json=body))
            await _until_running(hasher, 1)
            before = len(statements)
            storm = await asyncio.gather(
                *(env.http.post("/api/v2/auth/login", json=body) for _ in range(10))
            )
            assert [r.status_code for r in storm] == [503] * 10
            assert {r.json()["error"]["code"] for r in storm} == {"SYS_003"}
            assert statements[before:] == []
            gate.set()
            assert (await first).status_code == 200
        finally:
            gate.set()
            event.remove(engine, "before_cursor_execute", seen)


async def test_password_grant_storm_gets_503_temporarily_unavailable(
    token_app_factory: AppFactory,
) -> None:
    async with token_app_factory(
        argon2_time_cost=4,
        argon2_memory_kib=65_536,
        hash_workers=1,
        hash_queue=0,
        rate_limit_login_ip="10000/minute",
        rate_limit_login_user="10000/minute",
    ) as env:
        data = {"grant_type": "password", "username": "alice", "password": PASSWORD}
        answers = await asyncio.gather(*(env.oauth("token", "web", data) for _ in range(12)))
        statuses = [r.status_code for r in answers]
        assert set(statuses) <= {200, 503} and 503 in statuses, statuses
        for r in answers:
            if r.status_code == 503:
                assert r.json()["error"] == "temporarily_unavailable"
                assert 1 <= int(r.headers["Retry-After"]) <= MAX_RETRY_AFTER


async def test_outdated_hash_is_upgraded_after_the_login_answered(
    token_app_factory: AppFactory,
) -> None:
    async with token_app_factory(users={}, argon2_time_cost=2) as env:
        old = Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
        db = Database(env.settings.database_url)
        try:
            users = UserRepository(db)
            await users.create(username="dora", password_hash=old)
            await env.login("dora")

            async def upgraded() -> bool:
                user = await users.by_username("dora")
                return user is not None and user.password_hash != old

            await wait_for(upgraded, timeout=20)
            user = await users.by_username("dora")
            assert user is not None and "t=2" in user.password_hash
            await env.login("dora")  # the new hash verifies
        finally:
            await db.close()


async def test_no_upgrade_while_hashing_is_busy() -> None:
    hasher = GatedHasher(workers=1, queue=4, queue_timeout=30)
    try:
        busy = asyncio.create_task(hasher.verify(None, "x"))
        await _until_running(hasher, 1)
        assert await hasher.hash_if_idle(PASSWORD) is None  # never queues behind a login
        hasher.gate.set()
        await busy
    finally:
        hasher.gate.set()
        hasher.close()
