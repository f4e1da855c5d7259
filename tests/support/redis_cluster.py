"""A private Redis Cluster: 3 primaries and 3 replicas (`redis-server --cluster-enabled yes`,
joined by `redis-cli --cluster create`) on spare ports in a temporary directory.

Each node gets its own client port and an explicit cluster-bus port (`--cluster-port`, Redis
7), both spare, so the usual "port + 10000" bus port never collides with anything. Only the
processes started here are ever stopped, by their PIDs.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.support.redis_sentinel import redis_server_binary, wait_redis
from tests.support.server import free_port
from tests.support.waiting import DEADLINE_SCALE

NODE_TIMEOUT_MS = 1000  # how long a silent primary takes to be declared failed


class RedisClusterSet:
    def __init__(self, size: int = 6) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="oms-auth-cluster-"))
        self.ports = [free_port() for _ in range(size)]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """Two of the nodes: the client learns the others from them."""
        return f"redis+cluster://127.0.0.1:{self.ports[0]},127.0.0.1:{self.ports[1]}"

    def ask(self, port: int, *command: str) -> object:
        with redis.Redis(port=port, socket_timeout=2, decode_responses=True) as client:
            return client.execute_command(*command)

    def start(self) -> None:
        binary = redis_server_binary()
        for port in self.ports:
            bus = free_port()
            args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
            args += ["--appendonly", "no", "--dir", str(self.dir)]
            args += ["--dbfilename", f"dump-{port}.rdb", "--cluster-enabled", "yes"]
            args += ["--cluster-config-file", f"nodes-{port}.conf", "--cluster-port", str(bus)]
            args += ["--cluster-node-timeout", str(NODE_TIMEOUT_MS)]
            self.processes[port] = subprocess.Popen(
                args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        for port in self.ports:
            wait_redis(self._answers(port), f"node {port} answers")
        cli = shutil.which("redis-cli")
        assert cli is not None, "redis-cli comes with redis-server"
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        created = subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=60 * DEADLINE_SCALE,
            check=False,
        )
        assert created.returncode == 0, created.stdout + created.stderr
        for port in self.ports:
            wait_redis(self._sees_ok(port), f"node {port} sees cluster_state:ok")
        wait_redis(self._replicas_in_sync, "every replica follows its primary")

    def _answers(self, port: int) -> Callable[[], bool]:
        return lambda: self.ask(port, "PING") is True

    def _sees_ok(self, port: int) -> Callable[[], bool]:
        return lambda: self.state(port) == "ok"

    def info(self, port: int) -> dict[str, str]:
        raw = self.ask(port, "CLUSTER", "INFO")
        assert isinstance(raw, str)
        return dict(line.split(":", 1) for line in raw.splitlines() if ":" in line)

    def state(self, port: int) -> str:
        return self.info(port).get("cluster_state", "")

    def nodes(self, port: int) -> list[dict[str, str]]:
        """`CLUSTER NODES` as seen from `port`: port, role flags and served slots per node."""
        raw = self.ask(port, "CLUSTER", "NODES")
        assert isinstance(raw, str)
        out = []
        for line in raw.splitlines():
            fields = line.split()
            address = fields[1].split("@")[0]
            out.append(
                {
                    "id": fields[0],
                    "port": address.rsplit(":", 1)[1],
                    "flags": fields[2],
                    "slots": " ".join(fields[8:]),
                }
            )
        return out

    def _replicas_in_sync(self) -> bool:
        replicas = [n for n in self.nodes(self.ports[0]) if "slave" in n["flags"]]
        if len(replicas) != len(self.ports) // 2:
            return False
        for node in replicas:
            with redis.Redis(port=int(node["port"]), socket_timeout=2) as client:
                if client.info("replication").get("master_link_status") != "up":
                    return False
        return True

    def primary_of(self, key: str) -> int:
        """The port of the primary serving `key`'s slot now."""
        slot = int(str(self.ask(self.live_port(), "CLUSTER", "KEYSLOT", key)))
        with redis.Redis(port=self.live_port(), socket_timeout=2) as client:
            for start, end, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if int(start) <= slot <= int(end):
                    return int(primary[1])
        raise AssertionError(f"slot {slot} is not served")

    def live_port(self) -> int:
        return next(p for p, proc in self.processes.items() if proc.poll() is None)

    def kill(self, port: int) -> None:
        """Stop the node on `port` at once (SIGKILL to the PID started here)."""
        process = self.processes[port]
        process.kill()
        process.wait(timeout=10)

    def wait_promoted(self, key: str, old_primary: int, timeout: float = 30) -> int:
        """Wait until a replica serves `key`'s slot instead of `old_primary` and the cluster
        says `ok` again; returns the new primary's port."""
        found: list[int] = []

        def promoted() -> bool:
            try:
                port = self.primary_of(key)
            except AssertionError:  # the slot is between owners
                return False
            if port == old_primary or self.state(self.live_port()) != "ok":
                return False
            found.append(port)
            return True

        wait_redis(promoted, "a replica takes over the failed primary's slots", timeout)
        return found[-1]

    def cleanup(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def redis_cluster() -> Iterator[RedisClusterSet]:
    found = RedisClusterSet()
    try:
        found.start()
        yield found
    finally:
        found.cleanup()
