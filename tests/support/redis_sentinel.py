"""A private Redis primary, its replica and one Sentinel watching them, on spare ports.

Sentinel mode is part of the `redis-server` binary (`--sentinel`); if the machine has no
`redis-server`, the set-up installs Debian's package first.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.support.server import free_port
from tests.support.waiting import wait_until

SERVICE = "oms-primary"


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "redis-server"], check=True, capture_output=True
        )
        found = shutil.which("redis-server")
    assert found is not None, "redis-server could not be installed"
    return found


def wait_redis(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """`wait_until` for a condition that asks Redis: an error answer means "not yet"."""

    def holds() -> bool:
        try:
            return condition()
        except (redis.RedisError, OSError):
            return False

    wait_until(holds, timeout=timeout, interval=0.05, message=what)


class SentinelSet:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="oms-auth-sentinel-"))
        self.ports = [free_port(), free_port()]  # first the primary, then its replica
        self.sentinel_port = free_port()
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{SERVICE}/0"

    def client(self, port: int) -> redis.Redis:
        """A client the caller closes (`with set.client(port) as c:`)."""
        return redis.Redis(port=port, socket_timeout=2)

    def _ask(self, port: int, *command: str, decode: bool = False) -> object:
        with redis.Redis(port=port, socket_timeout=2, decode_responses=decode) as client:
            return client.execute_command(*command)

    def _role(self, port: int) -> dict[str, object]:
        with self.client(port) as client:
            info: dict[str, object] = client.info("replication")
            return info

    def start(self) -> None:
        binary = redis_server_binary()
        primary, replica = self.ports
        for port, extra in ((primary, []), (replica, ["--replicaof", "127.0.0.1", str(primary)])):
            args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
            args += ["--appendonly", "no", "--dir", str(self.dir), *extra]
            args += ["--dbfilename", f"dump-{port}.rdb"]
            self._spawn(args)
        config = self.dir / "sentinel.conf"
        config.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
        )
        self._spawn([binary, str(config), "--sentinel"])
        wait_redis(lambda: self._replica_in_sync(replica), "the replica follows the primary")
        wait_redis(lambda: bool(self._sentinel_replicas()), "the sentinel knows the replica")

    def _spawn(self, args: list[str]) -> None:
        out = subprocess.DEVNULL
        self.processes.append(subprocess.Popen(args, stdout=out, stderr=out))

    def _replica_in_sync(self, port: int) -> bool:
        return self._role(port).get("master_link_status") == "up"

    def _sentinel_replicas(self) -> list[dict[str, str]]:
        found = self._ask(self.sentinel_port, "SENTINEL", "REPLICAS", SERVICE, decode=True)
        assert isinstance(found, list)
        return [r for r in found if "s_down" not in r.get("flags", "")]

    def primary_port(self) -> int:
        address = self._ask(
            self.sentinel_port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE, decode=True
        )
        assert isinstance(address, list)
        return int(address[1])

    def failover(self) -> int:
        """Promote the replica; returns the new primary's port once it acts as one."""
        old = self.primary_port()
        self._ask(self.sentinel_port, "SENTINEL", "FAILOVER", SERVICE)
        wait_redis(lambda: self.primary_port() != old, "the sentinel names a new primary")
        new = self.primary_port()
        wait_redis(lambda: self._role(new).get("role") == "master", "promotion")
        return new

    def cleanup(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def sentinel_set() -> Iterator[SentinelSet]:
    found = SentinelSet()
    try:
        found.start()
        yield found
    finally:
        found.cleanup()
