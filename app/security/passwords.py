"""User passwords: argon2id hashes, computed off the event loop in a small bounded pool.

Each argon2id hash takes tens of milliseconds and `argon2_memory_kib` of memory, so hashing
runs in its own thread pool (bounded: N concurrent logins never hold more than
`workers x memory` at once) and never on the event loop. Unknown users are verified against
a dummy hash made with the same parameters, so "no such user" costs the same time as
"wrong password" and login timing does not reveal which usernames exist.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

T = TypeVar("T")

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024


class WeakPassword(ValueError):
    """The password does not meet the minimum policy."""


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"password must have at most {MAX_PASSWORD_LENGTH} characters")


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
    ) -> None:
        self._argon = Argon2Hasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self._pool = ThreadPoolExecutor(
            max_workers=workers or min(4, os.cpu_count() or 1), thread_name_prefix="argon2"
        )
        self._dummy: str | None = None
        self.verifications = 0  # every verify, real or dummy (tests and metrics read it)

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
    async def hash(self, password: str) -> str:
        return await self._run(self.hash_blocking, password)

    async def verify(self, stored_hash: str | None, password: str) -> Verification:
        return await self._run(self.verify_blocking, stored_hash, password)

    async def warm_up(self) -> None:
        """Make the dummy hash now, so the first unknown-user login is not slower."""
        await self._run(self._dummy_hash)

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
