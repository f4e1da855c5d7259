"""`make chaos`: fault injection on a private Redis and a private PostgreSQL cluster.

It starts everything it breaks: its own `redis-server` on a spare port, its own PostgreSQL
cluster (`initdb` in a temporary directory, as the `postgres` user when run as root, started
with `pg_ctl` on a spare port; the machine's shared PostgreSQL is never touched) and two
`oms-auth serve` instances in token mode on them. Then, per iteration:

- **Redis kill**: a session is logged out first; Redis is killed while both instances keep
  answering checks (every answer compared with `casbin.Enforcer` on the same rules) and
  logins; Redis comes back empty; the logged-out token must still be refused everywhere.
- **PostgreSQL stop**: `pg_ctl stop -m fast` while both instances keep answering checks;
  logins and refreshes must fail with a clean 503 (never a 500); one admin write (with an
  `Idempotency-Key`) is attempted during the outage. After `pg_ctl start`: logins and
  refreshes recover without a restart (the time is reported; the target is 5 s), the write is
  either absent (it failed) or present and audited once (it succeeded), its retry with the
  same key ends with the rule present and audited exactly once, and both instances
  reconverge on the database's policy revision with correct decisions.

The summary (per fault: decisions checked, wrong decisions, 500s, 503s, recovery time) goes
to `reports/chaos-<time>.md` and `.json`; the exit code is 1 when any check failed.

    python -m bench.chaos --iterations 5 --window 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.scenario import (
    POLICY_DIR,
    REPO,
    Oracle,
    cli,
    start_servers,
    stop_processes,
    wait_ready,
    write_users,
)
from tests.support.redis_server import RedisServer
from tests.support.server import free_port

PASSWORD = "chaos test password"  # noqa: S105 (the simulated users')
ADMIN = "chaos-admin"
ROLES = ("viewer", "developer", "admin")
CHECKS = [
    {"resource": r, "action": a}
    for r in ("api:ontologies", "api:schemas:person", "api:branches:main", "api:secrets")
    for a in ("read", "write", "delete")
]
TIMEOUT = 10.0
RECOVERY_DEADLINE = 60.0  # generous: a busy machine; the target (5 s) is reported, not asserted


# -- the private PostgreSQL cluster -----------------------------------------------------------
def _pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if found:
        return str(found[-1])
    return shutil.which(name) or name


class PostgresCluster:
    """A throwaway cluster in a temporary directory on a spare port (trust auth, loopback)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="oms-auth-pg-"))
        self.data = self.dir / "data"
        self.dir.chmod(0o777)  # the postgres user writes its data, socket and log here
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        command = [*args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip()}\n{self.log()}")

    def init(self) -> None:
        self._run(
            _pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            _pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.dir / "pg.log"),
            "-w", "-t", "120", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "120", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def log(self) -> str:
        path = self.dir / "pg.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def admin_url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def cleanup(self) -> None:
        if self.running():
            with contextlib.suppress(RuntimeError):
                self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# -- the deployment ---------------------------------------------------------------------------
@dataclass
class Stack:
    workdir: Path
    redis: RedisServer
    pg: PostgresCluster
    database: str
    env: dict[str, str] = field(default_factory=dict)
    urls: list[str] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)

    def stop(self) -> None:
        stop_processes(self.processes)
        self.redis.cleanup()
        self.pg.cleanup()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.workdir.glob("server-*.log"))
        )

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.pg.admin_url(self.database), connect_timeout=5) as conn:
            return list(conn.execute(query, params).fetchall())


def deploy(users: int, workdir: Path) -> tuple[Stack, dict[str, str]]:
    stack = Stack(workdir, RedisServer(), PostgresCluster(), "oms_auth_chaos")
    started = time.monotonic()

    def phase(name: str) -> None:
        stack.phases[name] = round(time.monotonic() - started - sum(stack.phases.values()), 1)

    try:
        stack.redis.start()
        stack.pg.init()
        stack.pg.start()
        phase("redis+initdb+pg_ctl start")
        database_url = stack.pg.create_database(stack.database)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMS_AUTH_")}
        env.update(
            {
                "OMS_AUTH_ENVIRONMENT": "test",
                "OMS_AUTH_DATABASE_URL": database_url,
                "OMS_AUTH_REDIS_URL": stack.redis.url,
                "OMS_AUTH_SERVICE_NAME": f"oms-auth-chaos-{secrets.token_hex(3)}",
                "OMS_AUTH_POLICY_DIR": str(POLICY_DIR),
                "OMS_AUTH_POLICY_WATCH": "false",
                "OMS_AUTH_POLICY_POLL_INTERVAL": "0.5",
                "OMS_AUTH_DECISION_AUTH": "token",
                "OMS_AUTH_LOG_LEVEL": "WARNING",
                "OMS_AUTH_RATE_LIMIT_LOGIN_IP": "1000000/minute",
                "OMS_AUTH_RATE_LIMIT_LOGIN_USER": "1000000/minute",
                "OMS_AUTH_RATE_LIMIT_REFRESH": "100000/hour",
                "OMS_AUTH_RATE_LIMIT_CHECK": "1000000/minute",
            }
        )
        stack.env = env
        cli(env, "migrate", timeout=300)
        phase("migrate")
        roles = {f"user{i:03d}": ROLES[i % 3] for i in range(users)}
        users_file = write_users(workdir, roles, PASSWORD, admins=(ADMIN,))
        # the import runs while the instances start (they pick its revision up by polling)
        importing = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "users", "import", str(users_file)],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        stack.processes.append(importing)
        for url, process in start_servers(env, workdir, 2):
            stack.processes.append(process)
            stack.urls.append(url)
        _, import_errors = importing.communicate(timeout=300)
        if importing.returncode != 0:
            raise RuntimeError(f"oms-auth users import failed: {import_errors.decode()}")
        for url, process in zip(stack.urls, stack.processes[1:], strict=True):
            wait_ready(url, process)
        phase("2 instances ready")
    except BaseException:
        stack.stop()
        raise
    return stack, roles


# -- what each fault records ------------------------------------------------------------------
@dataclass
class FaultResult:
    fault: str
    iteration: int
    decisions: int = 0
    wrong: list[dict[str, Any]] = field(default_factory=list)
    answers: dict[str, Counter[str]] = field(default_factory=dict)
    recovery_s: float | None = None
    problems: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def count(self, op: str, response: httpx.Response | None) -> None:
        key = "timeout" if response is None else str(response.status_code)
        self.answers.setdefault(op, Counter())[key] += 1

    def status_total(self, prefix: str) -> int:
        return sum(n for c in self.answers.values() for k, n in c.items() if k.startswith(prefix))

    def summary(self) -> dict[str, Any]:
        decision_failures = sum(
            n for k, n in self.answers.get("check", Counter()).items() if k != "200"
        )
        return {
            "fault": self.fault,
            "iteration": self.iteration,
            "decisions_checked": self.decisions,
            "wrong_decisions": len(self.wrong),
            "wrong_examples": self.wrong[:5],
            "decision_failures": decision_failures,
            "http_500": self.status_total("500"),
            "http_503": self.status_total("503"),
            "answers": {op: dict(c) for op, c in self.answers.items()},
            "recovery_s": None if self.recovery_s is None else round(self.recovery_s, 2),
            "problems": self.problems,
            **self.notes,
        }


async def _post(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], token: str | None = None
) -> httpx.Response | None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return await client.post(url, json=body, headers=headers, timeout=TIMEOUT)
    except httpx.HTTPError:
        return None


async def _login(client: httpx.AsyncClient, url: str, user: str) -> httpx.Response | None:
    return await _post(client, url + "/api/v2/auth/login", {"username": user, "password": PASSWORD})


async def _must_login(client: httpx.AsyncClient, url: str, user: str) -> dict[str, Any]:
    r = await _login(client, url, user)
    if r is None or r.status_code != 200:
        raise RuntimeError(f"login of {user} failed: {None if r is None else r.text}")
    body: dict[str, Any] = r.json()
    return body


class Run:
    def __init__(self, stack: Stack, roles: dict[str, str], client: httpx.AsyncClient) -> None:
        self.stack = stack
        self.oracle = Oracle(roles)
        self.client = client
        self.tokens: dict[str, str] = {}  # instance url -> a user's access token
        self.admin_token = ""

    async def setup(self) -> None:
        for url in self.stack.urls:  # an admin may ask about any subject
            self.tokens[url] = (await _must_login(self.client, url, ADMIN))["access_token"]
        self.admin_token = (await _must_login(self.client, self.stack.urls[0], ADMIN))[
            "access_token"
        ]

    async def check_all(self, result: FaultResult) -> set[int]:
        """One batch of checks per instance (concurrently), each answer compared with the
        oracle; the policy revisions seen."""
        checks = [
            {"subject": subject, **check}
            for subject in self.oracle.subjects[:6]
            for check in CHECKS
        ]

        async def one(url: str) -> int | None:
            r = await _post(
                self.client, url + "/api/v1/authz/check/batch", {"checks": checks},
                self.tokens[url],
            )  # fmt: skip
            result.count("check", r)
            if r is None or r.status_code != 200:
                return None
            answer = r.json()
            for check, item in zip(checks, answer["results"], strict=True):
                result.decisions += 1
                expected = self.oracle.allowed(check["subject"], check["resource"], check["action"])
                if item.get("allowed") is not expected:
                    result.wrong.append({**check, "url": url, "answered": item.get("allowed")})
            return int(answer["policy_revision"])

        seen = await asyncio.gather(*(one(url) for url in self.stack.urls))
        return {r for r in seen if r is not None}

    async def during(self, result: FaultResult, window: float, extra: Any) -> None:
        """Keep deciding on both instances (and run `extra` each round) for `window` s."""
        end = time.monotonic() + window
        rounds = 0
        while time.monotonic() < end or rounds < 2:
            await self.check_all(result)
            await extra()
            rounds += 1

    async def revoked_everywhere(self, token: str) -> bool:
        for url in self.stack.urls:
            r = await _post(  # validation itself needs a caller in token mode
                self.client, url + "/api/v1/tokens/validate", {"token": token}, self.tokens[url]
            )
            if r is None or r.status_code != 200 or r.json().get("valid") is not False:
                return False
            r = await _post(
                self.client,
                url + "/api/v1/authz/check",
                {"subject": "user002", **CHECKS[0]},  # its own subject: only 401 or 200
                token,
            )
            if r is None or r.status_code != 401:
                return False
        return True

    # -- Redis kill ---------------------------------------------------------------------
    async def redis_kill(self, iteration: int, window: float) -> FaultResult:
        result = FaultResult("redis kill", iteration)
        url = self.stack.urls[iteration % 2]
        session = await _must_login(self.client, url, "user002")
        r = await _post(
            self.client,
            url + "/api/v1/auth/logout",
            {"refresh_token": session["refresh_token"]},
            session["access_token"],
        )
        if r is None or r.status_code >= 300:
            result.problems.append(f"logout failed: {None if r is None else r.text}")
        revoked = session["access_token"]
        if not await self.revoked_everywhere(revoked):
            result.problems.append("logged-out token accepted before the fault")

        self.stack.redis.stop()

        async def logins_and_revocation() -> None:
            for u in self.stack.urls:
                result.count("login", await _login(self.client, u, "user003"))
            if not await self.revoked_everywhere(revoked):
                result.problems.append("logged-out token accepted while Redis was down")

        await self.during(result, window, logins_and_revocation)
        self.stack.redis.start()  # back, empty
        started = time.monotonic()
        result.recovery_s = await self._poll(result, started, self._cache_ok)
        if not await self.revoked_everywhere(revoked):
            result.problems.append("logged-out token accepted after Redis came back empty")
        await self.check_all(result)
        return result

    async def _cache_ok(self) -> bool:
        for url in self.stack.urls:
            try:
                r = await self.client.get(url + "/readyz", timeout=TIMEOUT)
            except httpx.HTTPError:
                return False
            cache = r.json().get("checks", {}).get("cache", {})
            if r.status_code != 200 or not isinstance(cache, dict) or cache.get("status") != "ok":
                return False
        return True

    async def _poll(self, result: FaultResult, started: float, condition: Any) -> float | None:
        while time.monotonic() - started < RECOVERY_DEADLINE:
            if await condition():
                return time.monotonic() - started
            await asyncio.sleep(0.05)
        result.problems.append(f"no recovery within {RECOVERY_DEADLINE} s")
        return None

    # -- PostgreSQL stop ----------------------------------------------------------------
    async def postgres_stop(self, iteration: int, window: float) -> FaultResult:
        result = FaultResult("postgres stop", iteration)
        url = self.stack.urls[iteration % 2]
        sessions = {u: await _must_login(self.client, u, "user004") for u in self.stack.urls}
        subject = f"chaos-subject-{iteration}-{secrets.token_hex(2)}"
        role = "developer"
        write_path = f"/api/v1/roles/{role}/members/{subject}"
        key = f"chaos-{iteration}-{secrets.token_hex(4)}"
        write_headers = {"Authorization": f"Bearer {self.admin_token}", "Idempotency-Key": key}

        # a second write races the stop: it may commit or fail, never anything in between
        racing_subject = f"{subject}-race"
        racing_headers = {**write_headers, "Idempotency-Key": key + "-race"}
        racing = asyncio.create_task(
            self._put(url + f"/api/v1/roles/{role}/members/{racing_subject}", racing_headers)
        )
        await asyncio.to_thread(self.stack.pg.stop)
        readyz: Counter[str] = Counter()

        async def logins_refreshes_and_write() -> None:
            for u in self.stack.urls:
                result.count("login", await _login(self.client, u, "user005"))
                result.count(
                    "refresh",
                    await _post(
                        self.client,
                        u + "/api/v1/auth/refresh",
                        {"refresh_token": sessions[u]["refresh_token"]},
                    ),
                )
                try:
                    readyz[
                        str((await self.client.get(u + "/readyz", timeout=TIMEOUT)).status_code)
                    ] += 1
                except httpx.HTTPError:
                    readyz["timeout"] += 1

        await self.during(result, window / 2, logins_refreshes_and_write)
        write = await self._put(url + write_path, write_headers)
        result.count("admin write", write)
        raced = await racing
        result.count("admin write racing the stop", raced)
        await self.during(result, window / 2, logins_refreshes_and_write)
        for op in ("login", "refresh"):
            if set(result.answers.get(op, {})) != {"503"}:
                result.problems.append(f"{op} during the outage: {dict(result.answers[op])}")
        result.notes["readyz_during_outage"] = dict(readyz)
        result.notes["write_during_outage"] = "timeout" if write is None else write.status_code
        result.notes["write_racing_stop"] = "timeout" if raced is None else raced.status_code

        self.stack.pg.start()
        started = time.monotonic()

        async def logins_and_refreshes_work() -> bool:
            for u in self.stack.urls:
                r = await _login(self.client, u, "user005")
                if r is None or r.status_code != 200:
                    result.count("login after", r)
                    return False
            return True

        result.recovery_s = await self._poll(result, started, logins_and_refreshes_work)
        for u in self.stack.urls:  # the refresh token tried during the outage still works
            r = await _post(
                self.client,
                u + "/api/v1/auth/refresh",
                {"refresh_token": sessions[u]["refresh_token"]},
            )
            result.count("refresh after", r)
            if r is None or r.status_code != 200:
                result.problems.append(f"refresh after recovery: {None if r is None else r.text}")

        # the writes: absent if they failed, present and audited once if they succeeded;
        # a retry with the same key leaves them present and audited exactly once
        for who, answer, headers in (
            (subject, write, write_headers),
            (racing_subject, raced, racing_headers),
        ):
            await self._check_write(result, url, role, who, answer, headers)

        # reconvergence: both instances on the database's revision, deciding correctly
        await self.converge(result)
        await self.check_all(result)
        return result

    async def _put(self, url: str, headers: dict[str, str]) -> httpx.Response | None:
        try:
            return await self.client.put(url, headers=headers, timeout=TIMEOUT)
        except httpx.HTTPError:
            return None

    async def _check_write(
        self,
        result: FaultResult,
        url: str,
        role: str,
        subject: str,
        answer: httpx.Response | None,
        headers: dict[str, str],
    ) -> None:
        present, audited = self._write_state(subject, role)
        succeeded = answer is not None and answer.status_code in (200, 201)
        status = "timeout" if answer is None else answer.status_code
        if succeeded and not (present and audited == 1):
            result.problems.append(f"write answered {status}: present={present}, {audited=}")
        if not succeeded and (present or audited):
            result.problems.append(f"write answered {status}: present={present}, {audited=}")
        started = time.monotonic()
        while True:  # a client retries as told: 409 + Retry-After means "still in progress"
            retry = await self._put(url + f"/api/v1/roles/{role}/members/{subject}", headers)
            result.count("admin write retry", retry)
            if retry is None or retry.status_code != 409 or "retry-after" not in retry.headers:
                break
            if time.monotonic() - started > RECOVERY_DEADLINE:
                break
            await asyncio.sleep(float(retry.headers["retry-after"]))
        present, audited = self._write_state(subject, role)
        if retry is None or retry.status_code not in (200, 201) or not present or audited != 1:
            retried = "timeout" if retry is None else retry.status_code
            result.problems.append(f"write retry {retried}: present={present}, {audited=}")
            return
        self.oracle.enforcer.add_grouping_policy(subject, role)
        self.oracle.subjects.insert(0, subject)
        self.oracle._memo.clear()

    async def converge(self, result: FaultResult) -> None:
        """Poll until both instances answer from the database's revision, correctly."""
        (db_revision,) = self.stack.sql("SELECT max(revision) FROM policy_state")[0]
        started = time.monotonic()

        async def converged() -> bool:
            probe = FaultResult("probe", result.iteration)
            revisions = await self.check_all(probe)
            return revisions == {int(db_revision)} and not probe.wrong

        seconds = await self._poll(result, started, converged)
        result.notes["reconverged_s"] = None if seconds is None else round(seconds, 2)

    def _write_state(self, subject: str, role: str) -> tuple[bool, int]:
        rules = self.stack.sql(
            "SELECT count(*) FROM casbin_rule WHERE ptype = 'g' AND v0 = %s AND v1 = %s",
            subject,
            role,
        )
        audits = self.stack.sql(
            "SELECT count(*) FROM audit_events WHERE source = 'api' AND target LIKE %s",
            f"%{subject}%",
        )
        return bool(rules[0][0]), int(audits[0][0])


async def _drive(stack: Stack, roles: dict[str, str], iterations: int, window: float) -> Any:
    results: list[FaultResult] = []
    async with httpx.AsyncClient() as client:
        run = Run(stack, roles, client)
        await run.setup()
        baseline = FaultResult("baseline", 0)
        await run.converge(baseline)
        await run.check_all(baseline)
        results.append(baseline)
        for i in range(iterations):
            results.append(await run.redis_kill(i, window))
            results.append(await run.postgres_stop(i, window))
    return results


def run(
    *, iterations: int = 1, window: float = 3.0, users: int = 12, out_dir: Path = REPO / "reports"
) -> tuple[dict[str, Any], Path]:
    workdir = Path(tempfile.mkdtemp(prefix="oms-auth-chaos-"))
    started = time.monotonic()
    stack, roles = deploy(users, workdir)
    setup_s = time.monotonic() - started
    try:
        results = asyncio.run(_drive(stack, roles, iterations, window))
        faults_s = time.monotonic() - started - setup_s
    except BaseException:
        print(stack.logs(), file=sys.stderr)
        raise
    finally:
        stack.stop()
    faults = [r.summary() for r in results]
    ok = all(
        not f["problems"] and not f["wrong_decisions"] and not f["http_500"]
        and not f["decision_failures"]
        for f in faults
    )  # fmt: skip
    summary = {
        "config": {"iterations": iterations, "window_s": window, "instances": 2, "users": users},
        "timing_s": {**stack.phases, "setup": round(setup_s, 1), "faults": round(faults_s, 1)},
        "faults": faults,
        "ok": ok,
    }
    return summary, write_report(summary, out_dir)


def write_report(summary: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    base = out_dir / f"chaos-{time.strftime('%Y%m%d-%H%M%S')}"
    base.with_suffix(".json").write_text(json.dumps(summary, indent=2))
    lines = [
        "# Fault injection (private Redis + private PostgreSQL, two instances, token mode)",
        "",
        "Configuration: " + ", ".join(f"{k}={v}" for k, v in summary["config"].items()),
        "Time (s): " + ", ".join(f"{k}={v}" for k, v in summary["timing_s"].items()),
        "",
        "Decisions are compared with casbin.Enforcer on the same rules. Recovery: Redis, until"
        " both instances report the cache ok; PostgreSQL, until logins succeed on both (target:"
        " 5 s).",
        "",
        "| fault | it. | decisions | wrong | check failures | 500s | 503s | recovery s "
        "| problems |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in summary["faults"]:
        lines.append(
            f"| {f['fault']} | {f['iteration']} | {f['decisions_checked']} "
            f"| {f['wrong_decisions']} | {f['decision_failures']} | {f['http_500']} "
            f"| {f['http_503']} | {f['recovery_s']} | {'; '.join(f['problems']) or '-'} |"
        )
    lines += ["", "Answers by operation and status:", ""]
    for f in summary["faults"]:
        notes = (
            "readyz_during_outage", "write_during_outage", "write_racing_stop", "reconverged_s"
        )  # fmt: skip
        extra = {k: f[k] for k in notes if k in f}
        lines.append(f"- {f['fault']} #{f['iteration']}: {f['answers']} {extra or ''}")
    lines += ["", f"Result: **{'OK' if summary['ok'] else 'FAILED'}**"]
    base.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return base.with_suffix(".md")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--window", type=float, default=10.0, help="seconds each fault lasts")
    parser.add_argument("--out", type=Path, default=REPO / "reports")
    args = parser.parse_args()
    summary, report = run(iterations=args.iterations, window=args.window, out_dir=args.out)
    print(report.read_text())
    print(f"report: {report}")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
