"""Token mode against open mode, in one run: what authenticating decision callers costs.

Two oms-auth servers on the same 11,000-rule policy and the same Redis: one with
`OMS_AUTH_DECISION_AUTH=open`, one with `token`. The token server is asked with a bearer JWT
(client credentials) and with `X-API-Key`; it also answers `/api/v1/tokens/validate`. Every
row is loaded in interleaved rounds (median of the rounds) and reports req/s and decisions per
CPU-second of the server process (utime + stime from /proc, workers included), since the load
generator shares the machine's cores: a server that is merely starved looks slow in req/s but
not per CPU-second. The check limit is raised on the token server so it is charged, never hit.
"""

from __future__ import annotations

import json
import secrets
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.load import LoadResult, run_load
from bench.policies import Size, requests
from bench.processes import REPO, Server, delete_prefix, redis_for_bench, start_oms_auth

CHECK = "/api/v1/authz/check"
BATCH = "/api/v1/authz/check/batch"
VALIDATE = "/api/v1/tokens/validate"
CONNECTIONS = 32
CLIENT_ID = "bench-service"
CLIENT_SUBJECT = f"client:{CLIENT_ID}"


@dataclass
class TokenRow:
    name: str
    result: LoadResult
    per_cpu_second: float  # requests answered per CPU-second of the server
    decisions_per_request: int = 1

    @property
    def decisions_per_cpu_second(self) -> float:
        return self.per_cpu_second * self.decisions_per_request


@dataclass
class TokenReport:
    rows: list[TokenRow]
    redis: bool

    def row(self, name: str) -> TokenRow:
        return next(r for r in self.rows if r.name == name)

    @property
    def open(self) -> TokenRow:
        return self.row(OPEN)


OPEN = "open mode, check"
BEARER = "token mode, check (bearer JWT)"
API_KEY = "token mode, check (X-API-Key)"
VALIDATE_ROW = "token validate"
OPEN_BATCH = "open mode, 1000-check batch"
BEARER_BATCH = "token mode, 1000-check batch (bearer)"


def _client_secret(server: Server) -> str:
    """Register the bench's client-credentials client through the CLI; its secret."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "clients",
            "create",
            CLIENT_ID,
            "--scope",
            "authz:check",
            "--grant",
            "client_credentials",
        ],
        cwd=REPO,
        env=server.env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return next(
        line.split(":", 1)[1].strip() for line in out.splitlines() if "client_secret" in line
    )


def _client_token(server: Server, secret: str) -> str:
    """A new access token of the bench client (each call: another token, another `jti`)."""
    response = httpx.post(
        server.url + "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "authz:check"},
        auth=(CLIENT_ID, secret),
        timeout=10,
    )
    if response.status_code != 200:
        raise RuntimeError(f"client credentials token refused: {response.text}")
    return str(response.json()["access_token"])


def _measure(
    server: Server, path: str, bodies: list[str], headers: dict[str, str] | None, seconds: float
) -> tuple[LoadResult, float]:
    before = server.cpu_seconds()
    result = run_load(
        server.url, path, seconds=seconds, connections=CONNECTIONS, bodies=bodies, headers=headers
    )
    cpu = server.cpu_seconds() - before
    return result, (result.requests / cpu if cpu > 0 else float("nan"))


def _median(results: list[tuple[LoadResult, float]]) -> tuple[LoadResult, float]:
    loads = [r for r, _ in results]
    ordered = sorted(loads, key=lambda r: r.requests_per_s)
    middle = ordered[len(ordered) // 2]
    return (
        LoadResult(
            requests_per_s=statistics.median(r.requests_per_s for r in loads),
            p50_ms=statistics.median(r.p50_ms for r in loads),
            p99_ms=statistics.median(r.p99_ms for r in loads),
            errors=sum(r.errors for r in loads),
            requests=sum(r.requests for r in loads),
            tool=middle.tool,
        ),
        statistics.median(c for _, c in results),
    )


def run_token_mode(
    workdir: Path,
    policy_dir: Path,
    size: Size,
    *,
    seconds: float,
    rounds: int,
    log: Callable[[str], None],
) -> TokenReport:
    redis_url = redis_for_bench()
    api_key = secrets.token_urlsafe(32)
    hot = requests(size, 1000, seed=11)
    check_bodies = [json.dumps({"subject": s, "resource": o, "action": a}) for s, o, a in hot]
    batch_bodies = [
        json.dumps({"checks": [{"subject": s, "resource": o, "action": a} for s, o, a in chunk]})
        for chunk in (requests(size, 1000, seed=30 + k) for k in range(3))
    ]
    # The bench client may hold the `authz:check` scope (a service asking for decisions).
    with (policy_dir / "policy.csv").open("a") as policy:
        policy.write(f"p, {CLIENT_SUBJECT}, authz, check\n")
    servers: list[Server] = []
    try:
        open_server = start_oms_auth(
            workdir,
            policy_dir,
            redis_url=redis_url,
            name="open-mode",
            extra_env={"OMS_AUTH_DECISION_AUTH": "open"},
        )
        servers.append(open_server)
        token_server = start_oms_auth(
            workdir,
            policy_dir,
            redis_url=redis_url,
            name="token-mode",
            extra_env={
                "OMS_AUTH_DECISION_AUTH": "token",
                "OMS_AUTH_ADMIN_API_KEY": api_key,
                "OMS_AUTH_RATE_LIMIT_CHECK": "100000000/minute",
            },
        )
        servers.append(token_server)
        secret = _client_secret(token_server)
        token = _client_token(token_server, secret)
        presented = _client_token(token_server, secret)  # the token a resource server was shown
        log(f"  open and token servers up (redis: {'yes' if redis_url else 'no'})")
        bearer = {"Authorization": f"Bearer {token}"}
        validate_bodies = [json.dumps({"token": presented})]
        plan: list[tuple[str, Server, str, list[str], dict[str, str] | None, int]] = [
            (OPEN, open_server, CHECK, check_bodies, None, 1),
            (BEARER, token_server, CHECK, check_bodies, bearer, 1),
            (API_KEY, token_server, CHECK, check_bodies, {"X-API-Key": api_key}, 1),
            # The validating service authenticates as itself (ValidationCaller): a client.
            (VALIDATE_ROW, token_server, VALIDATE, validate_bodies, bearer, 0),
        ]
        for _, server, path, bodies, headers, _ in plan:  # warm-up
            _measure(server, path, bodies, headers, min(2.0, seconds))
        collected: dict[str, list[tuple[LoadResult, float]]] = {p[0]: [] for p in plan}
        for i in range(rounds):
            for name, server, path, bodies, headers, _ in plan:
                collected[name].append(_measure(server, path, bodies, headers, seconds))
            log(f"  token-mode round {i + 1}/{rounds} done")
        rows = []
        for name, _, _, _, _, per in plan:
            result, per_cpu = _median(collected[name])
            rows.append(TokenRow(name, result, per_cpu, per))
        batch_plan = [
            (OPEN_BATCH, open_server, None),
            (BEARER_BATCH, token_server, bearer),
        ]
        batches: dict[str, list[tuple[LoadResult, float]]] = {n: [] for n, *_ in batch_plan}
        for _ in range(rounds):
            for name, server, headers in batch_plan:
                before = server.cpu_seconds()
                result = run_load(
                    server.url,
                    BATCH,
                    seconds=seconds,
                    connections=4,
                    bodies=batch_bodies,
                    headers=headers,
                )
                cpu = server.cpu_seconds() - before
                batches[name].append((result, result.requests / cpu if cpu > 0 else float("nan")))
        for name, *_ in batch_plan:
            result, per_cpu = _median(batches[name])
            rows.append(TokenRow(name, result, per_cpu, 1000))
        log("  token-mode batches done")
        return TokenReport(rows, redis_url is not None)
    finally:
        for server in servers:
            server.stop()
            if server.service:
                delete_prefix(redis_url, server.service + ":")
