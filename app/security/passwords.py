"""User passwords: argon2id hashes, computed off the event loop under admission control.

Each argon2id hash takes tens of milliseconds and `argon2_memory_kib` of memory, so hashing
runs in its own thread pool of `workers` threads (N concurrent logins never hold more than
`workers x memory` at once) and never on the event loop.

Admission control keeps a login storm from turning into minutes of queueing: a job first
takes one of `workers` slots; at most `queue` jobs wait for one, each at most
`queue_timeout` seconds. A job beyond the queue, or one that waited too long, is refused
with `Overloaded` (503 `SYS_003` + `Retry-After`): it did no work, so retrying is safe. The
pool keeps a moving average of how long a job holds a slot, so a job that would predictably
wait past `queue_timeout` (the queue ahead of it, divided among the workers, times that
average) is refused at once rather than after waiting for nothing.
A login takes its place in the queue (`reservation`) before its lookups, so it is refused
then, in microseconds, or queued; a job admitted that way is never refused later by a
prediction made after its lookups (only by really waiting `queue_timeout`).
A job whose caller was cancelled (or, checked just before hashing starts, went away) never
starts. A slot is held until its thread really finishes, so an abandoned hash can never let
more than `workers` hashes run at once.

Hashing threads run at a lower CPU priority (nice 10) than the event loop, so a login storm
takes the CPU that decisions leave, instead of starving them.

Unknown users are verified against a dummy hash made with the same parameters, so "no such
user" costs the same time as "wrong password" and login timing does not reveal which
usernames exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.errors import Overloaded

T = TypeVar("T")
StillWanted = Callable[[], Awaitable[bool]]  # False once the caller went away

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024


class WeakPassword(ValueError):
    """The password does not meet the minimum policy."""


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"password must have at most {MAX_PASSWORD_LENGTH} characters")


HASHING_NICENESS = 10
MAX_RETRY_AFTER = 60  # seconds: the longest a refused login is told to wait
REFUSAL_WINDOW_SECONDS = 2.0  # refusals are counted over this window for Retry-After


def _lower_priority() -> None:
    """Run this hashing thread (and the lanes argon2 starts from it, which inherit it) at a
    lower CPU priority than the event loop: a login storm uses the CPU left over by
    decisions instead of starving them (each hash runs `parallelism` threads at full speed)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


@dataclass
class Reservation:
    """A place in the hashing queue, taken before a login's lookups (see `reservation`)."""

    used: bool = False


@dataclass(frozen=True)
class Verification:
    ok: bool
    needs_rehash: bool = False


class PasswordHasher:
    def __init__(
        self,
        *,
        time_cost: int = 3,
        memory_kib: int = 65_536,
        parallelism: int = 4,
        workers: int | None = None,
        queue: int | None = None,
        queue_timeout: float = 2.0,
        retry_after: int = 1,
    ) -> None:
        self._argon = Argon2Hasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self.workers = workers or min(4, os.cpu_count() or 1)
        self.queue = self.workers * 8 if queue is None else queue
        self.queue_timeout = queue_timeout
        self.retry_after = retry_after
        self._pool = ThreadPoolExecutor(
            max_workers=self.workers, thread_name_prefix="argon2", initializer=_lower_priority
        )
        self._slots = asyncio.Semaphore(self.workers)
        self._waiting = 0  # jobs (and reservations) queued for a slot
        self._taken = 0  # slots held, from their acquisition until their thread finishes
        self.job_seconds: float | None = None  # moving average of a slot's holding time
        self._window_started = time.monotonic()  # refusals counted per window (Retry-After)
        self._refusals_now = 0
        self._refusals_before = 0
        self._dummy: str | None = None
        self.verifications = 0  # every verify, real or dummy (tests and metrics read it)
        self.refused = 0  # jobs refused by admission control
        self.abandoned = 0  # jobs whose caller left before hashing started

    @property
    def busy(self) -> int:
        """Jobs holding a slot (hashing now) plus jobs queued for one."""
        return self._taken + self._waiting

    # -- blocking primitives (run in the pool) ---------------------------------------------
    def hash_blocking(self, password: str) -> str:
        return self._argon.hash(password)

    def verify_blocking(self, stored_hash: str | None, password: str) -> Verification:
        """Verify `password`; with no stored hash, burn the same time on a dummy one."""
        self.verifications += 1
        target = stored_hash or self._dummy_hash()
        try:
            self._argon.verify(target, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return Verification(ok=False)
        if stored_hash is None:
            return Verification(ok=False)
        return Verification(ok=True, needs_rehash=self._argon.check_needs_rehash(stored_hash))

    def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = self._argon.hash(secrets.token_urlsafe(24))
        return self._dummy

    # -- async API -------------------------------------------------------------------------
    async def hash(self, password: str, *, still_wanted: StillWanted | None = None) -> str:
        return await self._run(self.hash_blocking, password, still_wanted=still_wanted)

    async def verify(
        self,
        stored_hash: str | None,
        password: str,
        *,
        still_wanted: StillWanted | None = None,
        reservation: Reservation | None = None,
    ) -> Verification:
        return await self._run(
            self.verify_blocking,
            stored_hash,
            password,
            still_wanted=still_wanted,
            reservation=reservation,
        )

    @contextlib.contextmanager
    def reservation(self) -> Iterator[Reservation]:
        """Refuse now (`Overloaded`) or hold a place in the queue until `verify` uses it.

        A login takes it before its rate-limit, back-off and user lookups: a storm the pool
        cannot serve is refused without a Redis or database round trip each (they would
        slow every refusal and load the stores the decisions use), and the place counts in
        the queue meanwhile, so the decision to refuse is made once, up front."""
        self.shed()
        reservation = Reservation()
        self._waiting += 1
        try:
            yield reservation
        finally:
            if not reservation.used:
                self._waiting -= 1

    async def hash_if_idle(self, password: str) -> str | None:
        """Hash only if a slot is free right now (no queueing, never displacing a login):
        the hash upgrades of `needs_rehash` use it. None when every slot is busy."""
        if self._waiting or self._slots.locked():
            return None
        await self._slots.acquire()  # free: returns without waiting
        self._taken += 1
        return await self._start(self.hash_blocking, password)

    async def warm_up(self) -> None:
        """Make the dummy hash now, so the first unknown-user login is not slower."""
        await self._run(self._dummy_hash)

    @property
    def warmed(self) -> bool:
        """The dummy hash is made (the start-up's warm-up no longer holds a slot)."""
        return self._dummy is not None

    async def _run(
        self,
        fn: Callable[..., T],
        *args: object,
        still_wanted: StillWanted | None = None,
        reservation: Reservation | None = None,
    ) -> T:
        await self._admit(reservation)
        try:
            if still_wanted is not None and not await still_wanted():
                self.abandoned += 1
                raise Overloaded("The request was abandoned", retry_after=self.retry_after)
        except BaseException:
            self._release()
            raise
        return await self._start(fn, *args)

    def predicted_wait(self) -> float:
        """Seconds a job arriving now would wait for a slot: the jobs ahead of it (holding a
        slot or queued for one) beyond the slots, divided among the slots, times the
        average holding time (0 while a slot is free for it)."""
        ahead = self._taken + self._waiting
        if ahead < self.workers or self.job_seconds is None:
            return 0.0
        rounds = math.ceil((ahead + 1 - self.workers) / self.workers)
        return rounds * self.job_seconds

    def _refuse(self, message: str) -> Overloaded:
        """A refusal whose `Retry-After` spreads the refused callers over the time the pool
        needs to serve them: the refusals of the last seconds divided by the pool's
        throughput, each caller told a random point of that window (at least
        `retry_after`, at most `MAX_RETRY_AFTER`). Telling everyone "1 s" would bring the
        whole storm back at once, every second."""
        self.refused += 1
        now = time.monotonic()
        elapsed = now - self._window_started
        if elapsed >= REFUSAL_WINDOW_SECONDS:  # a new window; the last one counts if adjacent
            recent = elapsed < 2 * REFUSAL_WINDOW_SECONDS
            self._refusals_before = self._refusals_now if recent else 0
            self._refusals_now, self._window_started, elapsed = 0, now, 0.0
        self._refusals_now += 1
        span = max(1.0, elapsed + (REFUSAL_WINDOW_SECONDS if self._refusals_before else 0.0))
        demand = (self._refusals_before + self._refusals_now) / span  # refusals per second
        throughput = self.workers / self.job_seconds if self.job_seconds else float("inf")
        window = min(MAX_RETRY_AFTER, max(self.retry_after, math.ceil(demand / throughput)))
        jitter = random.randint(self.retry_after, window)  # noqa: S311 (spreading, not a secret)
        return Overloaded(message, retry_after=jitter)

    def _refusal(self) -> str | None:
        """Why a job arriving now would be refused on admission, or None."""
        if self._taken + self._waiting >= self.workers + self.queue:
            return "Too many password checks in progress"
        if self.predicted_wait() > self.queue_timeout:
            return "Password checks are queued longer than the service waits"
        return None

    def would_refuse(self) -> bool:
        """Whether a job arriving now would be refused on admission (counts nothing)."""
        return self._refusal() is not None

    def shed(self) -> None:
        """Refuse now (`Overloaded`) if a job arriving now would be refused on admission."""
        reason = self._refusal()
        if reason is not None:
            raise self._refuse(reason)

    async def _admit(self, reservation: Reservation | None = None) -> None:
        """Take a slot, waiting in the bounded queue at most `queue_timeout` seconds (a
        reservation already holds its place in the queue)."""
        if reservation is None or reservation.used:
            self.shed()
            self._waiting += 1
        else:
            reservation.used = True
        try:
            async with asyncio.timeout(self.queue_timeout):
                await self._slots.acquire()
            self._taken += 1
        except TimeoutError:
            raise self._refuse("Password checks are queued too long") from None
        finally:
            self._waiting -= 1

    async def _start(self, fn: Callable[..., T], *args: object) -> T:
        """Run `fn` in the pool on a slot already taken; the slot is given back when the
        thread finishes, even if the caller stopped waiting for it."""
        loop = asyncio.get_running_loop()

        started = time.monotonic()

        def give_back(_: Future[T]) -> None:
            held = time.monotonic() - started
            average = self.job_seconds
            self.job_seconds = held if average is None else 0.8 * average + 0.2 * held
            self._release()

        def finished(done: Future[T]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to free
                loop.call_soon_threadsafe(give_back, done)

        try:
            job = self._pool.submit(fn, *args)
        except RuntimeError:  # the pool is shut down: the instance is stopping
            self._release()
            raise Overloaded("The service is stopping", retry_after=self.retry_after) from None
        job.add_done_callback(finished)
        return await asyncio.wrap_future(job)

    def _release(self) -> None:
        self._taken -= 1
        self._slots.release()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
