"""Password logins per core: v2 logins against a real server, through its bounded hashing pool.

A login's cost is one argon2id verification at the configured cost (`OMS_AUTH_ARGON2_*`),
run in the server's hashing pool (`OMS_AUTH_HASH_WORKERS` threads, at most
`OMS_AUTH_HASH_QUEUE` waiting; beyond that, 503 `SYS_003` with `Retry-After` at once). Three
measurements in one run:

- **argon2 alone**: verifications on this process, run by as many threads at once as the
  server's pool has (concurrent 64 MiB hashes share the caches and memory bandwidth, so a
  hash costs more CPU beside others than alone), CPU time from `process_time` (argon2's
  lane threads included): what the hash itself costs, the ceiling of logins per CPU-second.
- **at capacity**: `2 x workers` clients log in back to back (the pool always busy, its queue
  never full). Logins per second, and logins per CPU-second of the server process (utime +
  stime from /proc, like the other HTTP rows): what one core of server buys in logins.
- **overloaded**: more clients than the pool and its queue hold, arriving over the first
  second (a storm arrives from many machines, not in one instant). The excess must be
  refused fast (a 503 with `Retry-After`) while the pool keeps logging people in at
  capacity; anything else (a timeout, another status) counts against the fast-503 share.
  Clients honour `Retry-After` plus up to a second of random jitter, as retry guidance
  asks of clients: `Retry-After` is whole seconds, so without jitter every client told the
  same value returns in the same instant, and this one-process generator then spends more
  time serialising that burst than the server spends refusing it.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.processes import REPO, Server, delete_prefix, redis_for_bench, start_oms_auth
from bench.scenario import cli

LOGIN = "/api/v2/auth/login"
PASSWORD = "bench login password"  # noqa: S105 (the benchmark users')
USERS = 16
FAST_MS = 100.0  # a refusal answered within this is a fast 503
CLIENT_TIMEOUT = 10.0
OVERLOAD_EXTRA = 32  # clients beyond workers + queue
ARRIVAL = 1.0  # seconds over which the overloading clients arrive
JITTER = 1.0  # seconds of random jitter a client adds to Retry-After


@dataclass
class LoginPhase:
    clients: int
    seconds: float
    cpu_seconds: float = 0.0
    ok_ms: list[float] = field(default_factory=list)
    refused_ms: list[float] = field(default_factory=list)  # 503 SYS_003 with Retry-After
    other: Counter[str] = field(default_factory=Counter)  # timeouts, any other answer
    slow_reasons: Counter[str] = field(default_factory=Counter)  # slow 503s, by message

    @property
    def ok(self) -> int:
        return len(self.ok_ms)

    @property
    def attempts(self) -> int:
        return self.ok + len(self.refused_ms) + sum(self.other.values())

    @property
    def logins_per_s(self) -> float:
        return self.ok / self.seconds

    @property
    def logins_per_cpu_s(self) -> float:
        return self.ok / self.cpu_seconds if self.cpu_seconds > 0 else float("nan")

    @property
    def cores(self) -> float:
        """CPU the server used meanwhile, in cores (CPU-seconds per second)."""
        return self.cpu_seconds / self.seconds

    @property
    def refused_share(self) -> float:
        return len(self.refused_ms) / self.attempts if self.attempts else 0.0

    def outcomes(self) -> str:
        """Every answer that was neither a login nor a 503 + Retry-After, by kind."""
        return ", ".join(f"{k}: {n}" for k, n in sorted(self.other.items())) or "0"

    @property
    def fast_refusals(self) -> int:
        return sum(ms <= FAST_MS for ms in self.refused_ms)

    @property
    def fast_503_share(self) -> float:
        """Of the logins that did not succeed, the share refused by a fast 503."""
        failed = len(self.refused_ms) + sum(self.other.values())
        return self.fast_refusals / failed if failed else 1.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


@dataclass
class LoginReport:
    cost: str  # "argon2id t=3, m=64 MiB, p=4"
    workers: int
    queue: int
    argon2_per_cpu_s: float  # verifications per CPU-second, in process
    capacity: LoginPhase
    overload: LoginPhase

    @property
    def overhead_ratio(self) -> float:
        """Server logins per CPU-second against bare argon2 verifications per CPU-second."""
        return self.capacity.logins_per_cpu_s / self.argon2_per_cpu_s

    @property
    def overload_ratio(self) -> float:
        """Logins per second while overloaded against at capacity."""
        if not self.capacity.logins_per_s:
            return float("nan")
        return self.overload.logins_per_s / self.capacity.logins_per_s


def _argon2_per_cpu_second(budget: float) -> tuple[float, str, int, int]:
    """Verifications per CPU-second at the configured cost, and the pool's configured size."""
    from app.config import Settings
    from app.factories import password_hasher

    settings = Settings()
    hasher = password_hasher(settings)
    try:
        stored = hasher.hash_blocking(PASSWORD)
        hasher.verify_blocking(stored, PASSWORD)  # warm
        workers, queue = hasher.workers, hasher.queue
        counts = [0] * workers
        wall = time.monotonic()

        def verify_until_budget(i: int) -> None:
            while counts[i] < 2 or time.monotonic() - wall < budget:
                hasher.verify_blocking(stored, PASSWORD)
                counts[i] += 1

        started = time.process_time()
        threads = [threading.Thread(target=verify_until_budget, args=(i,)) for i in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        cpu = time.process_time() - started
        done = sum(counts)
    finally:
        hasher.close()
    cost = (
        f"argon2id t={settings.argon2_time_cost}, m={settings.argon2_memory_kib // 1024} MiB, "
        f"p={settings.argon2_parallelism}"
    )
    return done / cpu, cost, workers, queue


def _login_policy(workdir: Path, users: list[str]) -> Path:
    """The shipped policy, with the benchmark users as viewers (their v2 scope)."""
    folder = workdir / "login-policy"
    folder.mkdir()
    shutil.copy(REPO / "policies" / "model.conf", folder / "model.conf")
    rules = (REPO / "policies" / "policy.csv").read_text()
    rules += "\n" + "".join(f"g, {u}, viewer\n" for u in users)
    (folder / "policy.csv").write_text(rules)
    return folder


def _import_users(server: Server, workdir: Path, users: list[str]) -> None:
    """One `oms-auth users import`, every user with one hash made at the configured cost."""
    from app.config import Settings
    from app.factories import password_hasher

    hasher = password_hasher(Settings())
    try:
        stored = hasher.hash_blocking(PASSWORD)
    finally:
        hasher.close()
    path = workdir / "login-users.jsonl"
    lines = [json.dumps({"username": u, "password_hash": stored}) for u in users]
    path.write_text("\n".join(lines) + "\n")
    assert server.env is not None
    cli(server.env, "users", "import", str(path))


async def _drive(
    url: str, users: list[str], clients: int, seconds: float, arrival: float = 0.0
) -> LoginPhase:
    """`clients` log in back to back for `seconds`, each starting at a random point of the
    first `arrival` seconds."""
    phase = LoginPhase(clients, seconds)
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def one(n: int, http: httpx.AsyncClient) -> None:
        body = {"username": users[n % len(users)], "password": PASSWORD}
        await asyncio.sleep(random.uniform(0.0, arrival))
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                r = await http.post(LOGIN, json=body)
            except httpx.HTTPError as exc:
                phase.other[type(exc).__name__] += 1  # ReadTimeout, ConnectError...
                continue
            ms = (time.perf_counter() - started) * 1000
            if r.status_code == 200:
                phase.ok_ms.append(ms)
                continue
            code = message = ""
            try:
                error = r.json().get("error")
                if isinstance(error, dict):
                    code, message = error.get("code", ""), error.get("message", "")
            except ValueError:
                pass
            retry_after = r.headers.get("retry-after")
            if r.status_code == 503 and code == "SYS_003" and retry_after is not None:
                phase.refused_ms.append(ms)
                if ms > FAST_MS:
                    phase.slow_reasons[message] += 1
                # what a well-behaved client does: Retry-After, plus jitter
                pause = float(retry_after) + random.uniform(0.0, JITTER)
                await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            else:
                phase.other[f"{r.status_code} {code}".strip()] += 1

    async with httpx.AsyncClient(base_url=url, timeout=CLIENT_TIMEOUT, limits=limits) as http:
        await asyncio.gather(*(one(n, http) for n in range(clients)))
    return phase


def _measure(
    server: Server, users: list[str], clients: int, seconds: float, arrival: float = 0.0
) -> LoginPhase:
    before = server.cpu_seconds()
    started = time.monotonic()
    phase = asyncio.run(_drive(server.url, users, clients, seconds, arrival))
    phase.seconds = time.monotonic() - started  # the last answers may land after the deadline
    phase.cpu_seconds = server.cpu_seconds() - before
    return phase


def run_logins(workdir: Path, *, seconds: float, log: Callable[[str], None]) -> LoginReport:
    argon2_per_cpu_s, cost, workers, queue = _argon2_per_cpu_second(min(2.0, seconds / 2))
    log(f"  {cost}: {argon2_per_cpu_s:.1f} verifications per CPU-second in process")
    users = [f"bench{i:02d}" for i in range(USERS)]
    redis_url = redis_for_bench()
    server = start_oms_auth(
        workdir,
        _login_policy(workdir, users),
        redis_url=redis_url,
        name="logins",
        extra_env={
            "OMS_AUTH_RATE_LIMIT_LOGIN_IP": "100000000/minute",
            "OMS_AUTH_RATE_LIMIT_LOGIN_USER": "100000000/minute",
        },
    )
    try:
        _import_users(server, workdir, users)
        _measure(server, users, workers, min(2.0, seconds))  # warm-up: first logins, caches
        capacity = _measure(server, users, 2 * workers, seconds)
        log(
            f"  at capacity ({2 * workers} clients): {capacity.logins_per_s:.1f} logins/s, "
            f"{capacity.logins_per_cpu_s:.1f} per server CPU-second, other answers "
            f"{capacity.outcomes()}"
        )
        overload = _measure(server, users, workers + queue + OVERLOAD_EXTRA, seconds, ARRIVAL)
        log(
            f"  overloaded ({overload.clients} clients): {overload.logins_per_s:.1f} logins/s, "
            f"{overload.refused_share:.0%} refused, fast-503 share {overload.fast_503_share:.1%}, "
            f"other answers {overload.outcomes()}; slow 503s by reason: "
            f"{dict(overload.slow_reasons) or 'none'}"
        )
    finally:
        server.stop()
        delete_prefix(redis_url, server.service + ":")
    return LoginReport(cost, workers, queue, argon2_per_cpu_s, capacity, overload)
