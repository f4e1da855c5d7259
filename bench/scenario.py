"""`make load`: simulated users against oms-auth instances on PostgreSQL + Redis.

By default it starts its own deployment: a throwaway PostgreSQL database, a private key
prefix on Redis, `--instances` servers (token mode, the shipped policy), and `--users` users
created with ONE `oms-auth users import`. Each simulated user logs in (v2), then loops over
single checks, batches of 10 checks and token validations, refreshes its tokens every
`--refresh-every` seconds and sometimes logs out and in again, spread over the instances.
Users log in first over `--ramp` seconds (1000 logins over 30 s by default: a login storm
for any argon2 cost, which admission control must answer with fast 503s) and pause
`--think` seconds between requests (0.5-2 s).

Every decision is checked against `casbin.Enforcer` on the same model and rules (the shipped
`policy.csv` plus each user's role). The report (`reports/load-<time>.md` and `.json`, plus a
latency plot when matplotlib is installed) has, per operation, the count, latency
percentiles and answers by status and error code; the run fails (exit 1) on any wrong
decision, any 5xx on a decision route, or any login that neither succeeded nor got a fast
503 with Retry-After within the client timeout.

    python -m bench.scenario --users 1000 --duration 60 [--no-redis] [--no-decision-cache]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import free_port

REPO = Path(__file__).resolve().parents[1]
POLICY_DIR = REPO / "policies"
PG_ADMIN = os.environ.get("OMS_AUTH_LOAD_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("OMS_AUTH_LOAD_REDIS", "redis://127.0.0.1:6379/9")
PASSWORD = "load test password"  # noqa: S105 (the simulated users')
# The resource server's credential: it validates the users' tokens (token mode needs a client
# or an administrator there); end users ask the decision API about themselves only.
SERVICE_KEY = secrets.token_urlsafe(32)
ROLES = ("viewer", "developer", "admin")
RESOURCES = (
    "api:ontologies",
    "api:ontologies:core",
    "api:ontologies:published:v1",
    "api:schemas",
    "api:schemas:person",
    "api:branches",
    "api:branches:main",
    "api:branches:feature-x",
    "api:policies",
    "api:secrets",
)
ACTIONS = ("read", "write", "delete")
CLIENT_TIMEOUT = 10.0


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    answers: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    decisions: int = 0
    wrong: list[dict[str, Any]] = field(default_factory=list)
    slow_logins: int = 0
    # how late the generator's own event loop ran a 100 ms timer (ms): when it is large, the
    # latencies above are partly the generator's, not the servers'
    loop_lag: list[float] = field(default_factory=list)

    def record(
        self, op: str, seconds: float, response: httpx.Response | None, failure: str = ""
    ) -> None:
        """One answer; with no response, `failure` names the client error (a timeout, a
        connection the server closed...)."""
        self.latencies[op].append(seconds * 1000)
        if response is None:
            self.answers[op][failure or "no answer"] += 1
            return
        code = ""
        if response.status_code >= 400:
            try:
                error = response.json().get("error")
                code = error.get("code", "") if isinstance(error, dict) else str(error)
            except ValueError:
                code = "?"
        self.answers[op][f"{response.status_code} {code}".strip()] += 1


class Oracle:
    """Plain Casbin on the shipped model and rules plus the users' roles."""

    def __init__(self, roles: dict[str, str]) -> None:
        import casbin

        self.enforcer = casbin.Enforcer(
            str(POLICY_DIR / "model.conf"), str(POLICY_DIR / "policy.csv")
        )
        for user, role in roles.items():
            self.enforcer.add_grouping_policy(user, role)
        self._memo: dict[tuple[str, str, str], bool] = {}
        self.subjects = list(roles)

    def allowed(self, subject: str, resource: str, action: str) -> bool:
        key = (subject, resource, action)
        if key not in self._memo:
            self._memo[key] = bool(self.enforcer.enforce(subject, resource, action))
        return self._memo[key]


# -- the deployment (shared with bench.chaos) ---------------------------------------------
def cli(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    """`oms-auth ARGS` with `env`; its stdout, or RuntimeError with its stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"oms-auth {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def write_users(
    workdir: Path, roles: dict[str, str], password: str, *, admins: tuple[str, ...] = ()
) -> Path:
    """A JSON Lines file for ONE `oms-auth users import`: each user with its role, plus
    `admins`. One hash at the service's default cost serves every user: logins cost what they
    cost, and the import does not spend minutes hashing the same password."""
    from app.security.passwords import PasswordHasher

    hasher = PasswordHasher()
    try:
        ready_hash = asyncio.run(hasher.hash(password))
    finally:
        hasher.close()
    lines = [
        json.dumps({"username": u, "password_hash": ready_hash, "roles": [r]})
        for u, r in roles.items()
    ]
    lines += [
        json.dumps({"username": a, "password_hash": ready_hash, "is_admin": True}) for a in admins
    ]
    path = workdir / "users.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_servers(
    env: dict[str, str], workdir: Path, count: int
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start `count` `oms-auth serve` processes on spare ports, each logging to
    `workdir/server-PORT.log`; yields each (url, process) as soon as it is started, so the
    caller owns it (and stops it) even if a later one fails to start. The ports come from
    the tests' `free_port`: inside `OMS_AUTH_TEST_PORTS` when that is set."""
    for _ in range(count):
        port = free_port()
        with (workdir / f"server-{port}.log").open("wb") as log:  # the child keeps a copy
            process = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
                env=env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        yield f"http://127.0.0.1:{port}", process


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """Terminate them all at once, then give each 30 s before it is killed."""
    for p in processes:
        if p.poll() is None:
            p.terminate()
    for p in processes:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout}s")


@dataclass
class Deployment:
    env: dict[str, str]
    urls: list[str]
    processes: list[subprocess.Popen[bytes]]
    database: str | None
    prefix: str
    workdir: Path
    pg_admin: str = PG_ADMIN

    def stop(self) -> None:
        stop_processes(self.processes)
        if self.database is not None:
            import psycopg

            with psycopg.connect(self.pg_admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        if self.env.get("OMS_AUTH_REDIS_URL"):
            import redis

            client = redis.Redis.from_url(self.env["OMS_AUTH_REDIS_URL"])
            for key in client.scan_iter(match=self.prefix + ":*", count=1000):
                client.delete(key)
            client.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def deploy(
    *,
    users: int,
    instances: int,
    use_redis: bool,
    decision_cache: bool,
    pg_admin: str = PG_ADMIN,
    redis_url: str = REDIS_URL,
    database: str | None = None,
) -> tuple[Deployment, dict[str, str]]:
    """`database`: the name of the throwaway database to create (and drop); by default
    `oms_auth_load_<pid>_<random>` (the tests pass one named with their own prefix)."""
    import psycopg

    workdir = Path(tempfile.mkdtemp(prefix="oms-auth-load-"))
    if database is None:
        database = f"oms_auth_load_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    host = pg_admin.split("@", 1)[1].rsplit("/", 1)[0]
    user = pg_admin.split("://", 1)[1].split("@", 1)[0]
    prefix = f"oms-auth-load-{secrets.token_hex(3)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMS_AUTH_")}
    env.update(
        {
            "OMS_AUTH_ENVIRONMENT": "test",
            "OMS_AUTH_DATABASE_URL": f"postgresql+psycopg://{user}@{host}/{database}",
            "OMS_AUTH_SERVICE_NAME": prefix,
            "OMS_AUTH_POLICY_DIR": str(POLICY_DIR),
            "OMS_AUTH_POLICY_WATCH": "false",
            "OMS_AUTH_DECISION_AUTH": "token",
            "OMS_AUTH_ADMIN_API_KEY": SERVICE_KEY,
            "OMS_AUTH_LOG_LEVEL": "WARNING",
            # every simulated user comes from 127.0.0.1: the per-IP login limit would be the
            # only thing measured otherwise
            "OMS_AUTH_RATE_LIMIT_LOGIN_IP": "1000000/minute",
            "OMS_AUTH_RATE_LIMIT_REFRESH": "1000/hour",
            "OMS_AUTH_RATE_LIMIT_CHECK": "1000000/minute",
        }
    )
    if use_redis:
        env["OMS_AUTH_REDIS_URL"] = redis_url
    if not decision_cache:
        env["OMS_AUTH_DECISION_CACHE_TTL"] = "0"
        env["OMS_AUTH_PERMISSION_CACHE_TTL"] = "0"
    deployment = Deployment(env, [], [], database, prefix, workdir, pg_admin)
    try:
        cli(env, "migrate")
        roles = {f"user{i:04d}": ROLES[i % 3] if i % 10 else "viewer" for i in range(users)}
        users_file = write_users(workdir, roles, PASSWORD)
        print(cli(env, "users", "import", str(users_file)).strip(), flush=True)
        for url, process in start_servers(env, workdir, instances):
            deployment.processes.append(process)
            deployment.urls.append(url)
        for url, process in zip(deployment.urls, deployment.processes, strict=True):
            wait_ready(url, process)
    except BaseException:
        deployment.stop()
        raise
    return deployment, roles


# -- the simulated users ----------------------------------------------------------------
async def _call(
    stats: Stats, op: str, client: httpx.AsyncClient, method: str, url: str, **kw: Any
) -> httpx.Response | None:
    started = time.perf_counter()
    try:
        response = await client.request(method, url, timeout=CLIENT_TIMEOUT, **kw)
    except httpx.HTTPError as exc:
        stats.record(op, time.perf_counter() - started, None, type(exc).__name__)
        return None
    stats.record(op, time.perf_counter() - started, response)
    return response


async def _login(
    stats: Stats, client: httpx.AsyncClient, url: str, user: str, deadline: float
) -> dict[str, Any] | None:
    while time.monotonic() < deadline:
        started = time.perf_counter()
        r = await _call(
            stats,
            "login",
            client,
            "POST",
            url + "/api/v2/auth/login",
            json={"username": user, "password": PASSWORD},
        )
        if r is None or time.perf_counter() - started > CLIENT_TIMEOUT:
            stats.slow_logins += 1
        if r is not None and r.status_code == 200:
            body: dict[str, Any] = r.json()
            return body
        if r is not None and r.status_code == 503 and "retry-after" not in r.headers:
            stats.slow_logins += 1  # a 503 must say when to come back
        wait = float(r.headers.get("retry-after", "1")) if r is not None else 1.0
        # honour Retry-After (plus jitter), but not past the end of the run
        pause = wait * random.uniform(1.0, 1.2)
        await asyncio.sleep(max(0.0, min(pause, deadline - time.monotonic())))
    return None


def _check_body(subject: str) -> dict[str, str]:
    return {
        "subject": subject,
        "resource": random.choice(RESOURCES),
        "action": random.choice(ACTIONS),
    }


def _verify(stats: Stats, oracle: Oracle, check: dict[str, str], allowed: Any) -> None:
    stats.decisions += 1
    expected = oracle.allowed(check["subject"], check["resource"], check["action"])
    if allowed is not expected and len(stats.wrong) < 100:
        stats.wrong.append({**check, "answered": allowed, "expected": expected})


async def simulated_user(
    stats: Stats,
    oracle: Oracle,
    client: httpx.AsyncClient,
    urls: list[str],
    user: str,
    deadline: float,
    refresh_every: float,
    ramp: float = 5.0,
    think: tuple[float, float] = (0.5, 2.0),
) -> None:
    url = random.choice(urls)
    await asyncio.sleep(random.uniform(0, ramp))
    tokens = await _login(stats, client, url, user, deadline)
    refreshed = time.monotonic()
    while tokens is not None and time.monotonic() < deadline:
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        roll = random.random()
        if roll < 0.70:
            check = _check_body(user)
            r = await _call(
                stats,
                "check",
                client,
                "POST",
                url + "/api/v1/authz/check",
                json=check,
                headers=headers,
            )
            if r is not None and r.status_code == 200:
                _verify(stats, oracle, check, r.json()["allowed"])
        elif roll < 0.85:
            checks = [_check_body(user) for _ in range(10)]
            r = await _call(
                stats,
                "batch10",
                client,
                "POST",
                url + "/api/v1/authz/check/batch",
                json={"checks": checks},
                headers=headers,
            )
            if r is not None and r.status_code == 200:
                for check, result in zip(checks, r.json()["results"], strict=True):
                    _verify(stats, oracle, check, result["allowed"])
        elif roll < 0.99:
            await _call(
                stats,
                "validate",
                client,
                "POST",
                url + "/api/v1/tokens/validate",
                json={"token": tokens["access_token"]},
                headers={"X-API-Key": SERVICE_KEY},
            )
        else:
            await _call(
                stats,
                "logout",
                client,
                "POST",
                url + "/api/v1/auth/logout",
                headers=headers,
                json={"refresh_token": tokens["refresh_token"]},
            )
            tokens = await _login(stats, client, url, user, deadline)
            refreshed = time.monotonic()
            continue
        if time.monotonic() - refreshed > refresh_every:
            r = await _call(
                stats,
                "refresh",
                client,
                "POST",
                url + "/api/v1/auth/refresh",
                json={"refresh_token": tokens["refresh_token"]},
            )
            if r is not None and r.status_code == 200:
                tokens = r.json()
            refreshed = time.monotonic()
        await asyncio.sleep(random.uniform(*think))


async def drive(
    urls: list[str],
    roles: dict[str, str],
    *,
    users: int,
    duration: float,
    refresh_every: float,
    ramp: float = 30.0,
    think: tuple[float, float] = (0.5, 2.0),
) -> Stats:
    """`users` simulated users; each logs in first at a random time within `ramp` seconds
    (capped at half the duration), then pauses `think` seconds (uniform) between requests."""
    ramp = min(ramp, duration / 2)
    stats = Stats()
    oracle = Oracle(roles)
    deadline = time.monotonic() + duration
    # One client (one connection) per simulated user, as real users have: a single client
    # with a pool of hundreds of connections spends most of the generator's CPU choosing a
    # connection (httpcore scans its whole pool per request), and the latencies it reports
    # are then its own. The TLS context is built once and shared (httpx builds one per
    # client otherwise).
    tls = ssl.create_default_context()
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def one_user(user: str) -> None:
        async with httpx.AsyncClient(limits=limits, verify=tls) as client:
            await simulated_user(
                stats, oracle, client, urls, user, deadline, refresh_every, ramp, think
            )

    async def watch_lag() -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            await asyncio.sleep(0.1)
            stats.loop_lag.append((time.perf_counter() - started - 0.1) * 1000)

    watcher = asyncio.create_task(watch_lag())
    await asyncio.gather(*(one_user(user) for user in list(roles)[:users]))
    await watcher
    return stats


# -- the report -------------------------------------------------------------------------
def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


DECISION_OPS = ("check", "batch10")


def summarize(stats: Stats, config: dict[str, Any]) -> dict[str, Any]:
    ops = {}
    for op, values in sorted(stats.latencies.items()):
        ops[op] = {
            "count": len(values),
            "p50_ms": _pct(values, 0.50),
            "p95_ms": _pct(values, 0.95),
            "p99_ms": _pct(values, 0.99),
            "answers": dict(stats.answers[op]),
        }
    decision_5xx = sum(
        n
        for op in DECISION_OPS
        for answer, n in stats.answers[op].items()
        if not answer[:1].isdigit() or answer[:1] == "5"
    )
    return {
        "config": config,
        "operations": ops,
        "decisions_checked": stats.decisions,
        "wrong_decisions": len(stats.wrong),
        "wrong_examples": stats.wrong[:10],
        "decision_5xx": decision_5xx,
        "slow_or_unclear_logins": stats.slow_logins,
        "generator_loop_lag_ms": {
            "p50": _pct(stats.loop_lag, 0.50),
            "p99": _pct(stats.loop_lag, 0.99),
            "max": _pct(stats.loop_lag, 1.0),
        },
        "ok": not stats.wrong and decision_5xx == 0 and stats.slow_logins == 0,
    }


def write_report(summary: dict[str, Any], stats: Stats, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = out_dir / f"load-{stamp}"
    base.with_suffix(".json").write_text(json.dumps(summary, indent=2))
    lines = [
        f"# Load scenario {stamp}",
        "",
        "Configuration: " + ", ".join(f"{k}={v}" for k, v in summary["config"].items()),
        "",
        f"- decisions checked against casbin.Enforcer: {summary['decisions_checked']}, "
        f"wrong: **{summary['wrong_decisions']}**",
        f"- 5xx or timeouts on decision routes: **{summary['decision_5xx']}**",
        f"- logins neither answered nor refused fast with Retry-After: "
        f"**{summary['slow_or_unclear_logins']}**",
        "- the generator's own event-loop lag (ms; its share of every latency below): "
        + ", ".join(f"{k} {v}" for k, v in summary["generator_loop_lag_ms"].items()),
        "",
        "| operation | count | p50 ms | p95 ms | p99 ms | answers |",
        "|---|---|---|---|---|---|",
    ]
    for op, row in summary["operations"].items():
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(row["answers"].items()))
        lines.append(
            f"| {op} | {row['count']} | {row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} "
            f"| {answers} |"
        )
    plot = _plot(stats, base)
    if plot is not None:
        lines += ["", f"![latency]({plot.name})"]
    base.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return base.with_suffix(".md")


def _plot(stats: Stats, base: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(8, 4))
    ops = sorted(stats.latencies)
    ax.boxplot([stats.latencies[o] for o in ops], tick_labels=ops, showfliers=False)
    ax.set_ylabel("latency (ms)")
    ax.set_title("oms-auth load scenario: latency per operation")
    path = base.with_suffix(".png")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def run(
    *,
    users: int,
    duration: float,
    instances: int = 2,
    use_redis: bool = True,
    decision_cache: bool = True,
    refresh_every: float = 30.0,
    ramp: float = 30.0,
    think: tuple[float, float] = (0.5, 2.0),
    out_dir: Path = REPO / "reports",
    pg_admin: str = PG_ADMIN,
    redis_url: str = REDIS_URL,
    database: str | None = None,
) -> tuple[dict[str, Any], Path]:
    deployment, roles = deploy(
        users=users,
        instances=instances,
        use_redis=use_redis,
        decision_cache=decision_cache,
        pg_admin=pg_admin,
        redis_url=redis_url,
        database=database,
    )
    try:
        stats = asyncio.run(
            drive(
                deployment.urls,
                roles,
                users=users,
                duration=duration,
                refresh_every=refresh_every,
                ramp=ramp,
                think=think,
            )
        )
    finally:
        deployment.stop()
    config = {
        "users": users,
        "duration_s": duration,
        "ramp_s": min(ramp, duration / 2),
        "think_s": list(think),
        "instances": instances,
        "redis": use_redis,
        "decision_cache": decision_cache,
        "cores": os.cpu_count(),
    }
    summary = summarize(stats, config)
    return summary, write_report(summary, stats, out_dir)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--refresh-every", type=float, default=30.0)
    parser.add_argument(
        "--ramp", type=float, default=30.0, help="seconds over which the users log in first"
    )
    parser.add_argument(
        "--think",
        type=float,
        nargs=2,
        default=(0.5, 2.0),
        metavar=("MIN", "MAX"),
        help="seconds a user pauses between requests (uniform)",
    )
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument("--no-decision-cache", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "reports")
    args = parser.parse_args()
    summary, report = run(
        users=args.users,
        duration=args.duration,
        instances=args.instances,
        use_redis=not args.no_redis,
        decision_cache=not args.no_decision_cache,
        refresh_every=args.refresh_every,
        ramp=args.ramp,
        think=(args.think[0], args.think[1]),
        out_dir=args.out,
    )
    print(report.read_text())
    print(f"report: {report}")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
