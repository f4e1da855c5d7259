"""Server processes for the HTTP benchmarks: oms-auth and the baselines, on loopback ports."""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    started_at: float
    ready_seconds: float = 0.0
    service: str = ""  # oms-auth's key prefix in Redis
    env: dict[str, str] | None = None  # oms-auth's environment (for its CLI)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        return int(match.group(1)) / 1024 if match else float("nan")

    def cpu_seconds(self) -> float:
        """User + system CPU of the server and every process under it (workers), from /proc."""
        return process_tree_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # the fields after `pid (comm)`


def process_tree_cpu_seconds(root: int) -> float:
    """utime + stime of `root` and its descendants (cumulative for the ones already reaped)."""
    parents: dict[int, int] = {}
    fields: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat_fields(int(entry.name))) is not None:
            parents[int(entry.name)] = int(stat[1])
            fields[int(entry.name)] = stat
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    ticks = 0
    for pid in tree:
        stat = fields.get(pid)
        if stat is not None:  # utime, stime, cutime, cstime: fields 14-17 of /proc/PID/stat
            ticks += sum(int(v) for v in stat[11:15])
    return ticks / _TICKS


def _wait_ready(server: Server, path: str, *, timeout: float = 120) -> Server:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited: see {server.log}")
        try:
            r = httpx.request("GET" if path != "/check" else "POST", server.url + path, timeout=1)
            if r.status_code < 500:
                server.ready_seconds = time.monotonic() - server.started_at
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"{server.name} did not become ready: see {server.log}")


def start_baseline(kind: str, workdir: Path, policy_dir: Path | None = None) -> Server:
    port = free_port()
    log = workdir / f"{kind}.log"
    args = [sys.executable, "-m", "bench.servers", kind, str(port)]
    if policy_dir is not None:
        args.append(str(policy_dir))
    with log.open("wb") as out:
        process = subprocess.Popen(args, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    server = Server(kind, process, port, log, time.monotonic())
    return _wait_ready(server, "/check")


def redis_for_bench() -> str | None:
    """Redis for the service under test, when one answers (keys go under a unique prefix)."""
    url = os.environ.get("OMS_AUTH_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
        client.ping()
        client.close()
    except (redis.RedisError, OSError):
        return None
    return url


_compiled = False


def compile_bytecode() -> None:
    """Byte-compile the service once, as the image build does (deploy/Dockerfile): with
    PYTHONDONTWRITEBYTECODE set, every server start would otherwise compile every module
    again, a cost no deployed instance pays."""
    global _compiled
    if not _compiled:
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", "app", "oms_auth", "migrations"],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        _compiled = True


def start_oms_auth(
    workdir: Path,
    policy_dir: Path,
    *,
    redis_url: str | None,
    name: str = "oms-auth",
    workers: int = 1,
    cpus: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Server:
    """`oms-auth serve` with `workers` processes, pinned to `cpus` (taskset list) if given."""
    compile_bytecode()
    port = free_port()
    service = f"oms-auth-bench-{secrets.token_hex(3)}"
    env = {
        **os.environ,
        "OMS_AUTH_DATABASE_URL": f"sqlite:///{workdir / (name + '.db')}",
        "OMS_AUTH_POLICY_DIR": str(policy_dir),
        "OMS_AUTH_POLICY_SOURCE": "files",
        "OMS_AUTH_POLICY_WATCH": "false",
        "OMS_AUTH_HOST": "127.0.0.1",
        "OMS_AUTH_PORT": str(port),
        "OMS_AUTH_SERVICE_NAME": service,
        "OMS_AUTH_REDIS_URL": redis_url or "",
        "OMS_AUTH_LOG_LEVEL": "INFO",
        "OMS_AUTH_LOG_JSON": "true",
        "OMS_AUTH_ENVIRONMENT": "development",
        "OMS_AUTH_WORKERS": str(workers),
        "OMS_AUTH_GC_FREEZE": "true",
        **(extra_env or {}),
    }
    subprocess.run(
        [sys.executable, "-m", "app.cli", "migrate"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        pin = ["taskset", "-c", cpus] if cpus else []
        process = subprocess.Popen(
            [*pin, sys.executable, "-m", "app.cli", "serve"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, process, port, log, time.monotonic(), service=service, env=env)
    return _wait_ready(server, "/readyz")


def group_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and all its live descendants (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (OSError, ValueError, IndexError):
            continue
        pending.extend(int(c) for c in children)
    return total


def policy_load_seconds(server: Server) -> float | None:
    """The `seconds` of the start-up `policy.loaded` event in the server's log."""
    import json

    for line in server.log.read_text(errors="replace").splitlines():
        if '"policy.loaded"' in line:
            try:
                return float(json.loads(line)["seconds"])
            except (ValueError, KeyError):
                return None
    return None


def delete_prefix(redis_url: str | None, prefix: str) -> None:
    if not redis_url:
        return
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
    finally:
        client.close()
