"""Real `oms-auth serve` processes on free loopback ports, as `make run` starts them.

Every end-to-end test starts its servers through here: one way to build the environment
(the developer's own `OMS_AUTH_*` variables never leak in), to wait for readiness, to read
the JSON logs and to stop the process.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.waiting import DEADLINE_SCALE

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "app.cli"]


def _port_range() -> tuple[int, int] | None:
    """`OMS_AUTH_TEST_PORTS=LOW-HIGH` keeps the test servers' ports inside that range."""
    raw = os.environ.get("OMS_AUTH_TEST_PORTS", "").strip()
    if not raw:
        return None
    low, _, high = raw.partition("-")
    return int(low), int(high)


def free_port() -> int:
    span = _port_range()
    if span is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    for port in random.sample(range(span[0], span[1] + 1), span[1] - span[0] + 1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in OMS_AUTH_TEST_PORTS={span[0]}-{span[1]}")


def cli_env(overrides: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMS_AUTH_")}
    env.update({"OMS_AUTH_ENVIRONMENT": "test", "OMS_AUTH_LOG_LEVEL": "INFO"})
    env.update(overrides)
    return env


def run_cli(
    *args: str, env: Mapping[str, str], input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env=cli_env(env),
        cwd=REPO,
        input=input,
        capture_output=True,
        text=True,
        # A CLI run is a whole Python start-up: on busy cores that alone can take a minute.
        timeout=180 * DEADLINE_SCALE,
        check=False,
    )


@dataclass
class Server:
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*CLI, "serve"],
                env=cli_env(self.env),
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 90.0) -> None:
        assert self.process is not None
        timeout *= DEADLINE_SCALE
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready after {timeout}s:\n{self.logs()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM (graceful shutdown), then SIGKILL if it does not exit in 15 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log records whose event is `name`."""
        out = []
        for line in self.logs().splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("event") == name:
                    out.append(record)
        return out

    def cli(self, *args: str, stdin: str | None = None) -> str:
        """Run `oms-auth ARGS` against this server's database and settings; its stdout."""
        done = run_cli(*args, env=self.env, input=stdin)
        assert done.returncode == 0, done.stderr
        return done.stdout


def new_server(
    env: Mapping[str, str], *, log_dir: Path, port: int | None = None, migrate: bool = True
) -> Server:
    port = port or free_port()
    full = {"OMS_AUTH_PORT": str(port), "OMS_AUTH_HOST": "127.0.0.1", **env}
    if migrate:
        migrated = run_cli("migrate", env=full)
        if migrated.returncode != 0:
            raise RuntimeError(f"migrate failed: {migrated.stderr}")
    return Server(port, full, log_dir / f"server-{port}.log")


@contextmanager
def serve(
    env: Mapping[str, str],
    *,
    log_dir: Path,
    port: int | None = None,
    migrate: bool = True,
    timeout: float = 90.0,
) -> Iterator[Server]:
    """Migrate, start one server, wait for /readyz; stop it on exit."""
    with instances(env, log_dir, count=1, port=port, migrate=migrate, timeout=timeout) as (srv,):
        yield srv


@contextmanager
def instances(
    env: Mapping[str, str],
    log_dir: Path,
    *,
    count: int = 2,
    port: int | None = None,
    migrate: bool = True,
    timeout: float = 90.0,
) -> Iterator[list[Server]]:
    """`count` servers on one configuration (e.g. a shared database and Redis)."""
    with ExitStack() as stack:
        servers = []
        for i in range(count):
            srv = new_server(
                env, log_dir=log_dir, port=port if i == 0 else None, migrate=migrate and i == 0
            )
            stack.callback(srv.stop)
            srv.start()
            servers.append(srv)
        for srv in servers:
            srv.wait_ready(timeout)
        yield servers
