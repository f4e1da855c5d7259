"""Talking to one chosen worker of a `oms-auth serve --workers N` process.

The workers share one listening socket and the kernel hands each new connection to one of
them. A keep-alive connection stays with the worker that accepted it, so a test opens
connections until one lands on the worker it wants, recognising the worker from /proc (the
server side of the TCP connection is a file descriptor of exactly one worker process).
"""

from __future__ import annotations

import http.client
import json
import os
from pathlib import Path
from typing import Any

from tests.support.server import Server


def worker_pids(server: Server) -> list[int]:
    """The supervisor's live worker processes (multiprocessing spawn children)."""
    assert server.process is not None
    pid = server.process.pid
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    out = []
    for child in children:
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            out.append(int(child))
    return sorted(out)


def _server_socket_inode(server_port: int, client_port: int) -> int | None:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], int(fields[9])
        if (
            int(local.rsplit(":", 1)[1], 16) == server_port
            and int(remote.rsplit(":", 1)[1], 16) == client_port
            and inode
        ):
            return inode
    return None


def _owner(inode: int, pids: list[int]) -> int | None:
    target = f"socket:[{inode}]"
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd_dir / fd) == target:
                    return pid
            except OSError:
                continue
    return None


class WorkerClient:
    """HTTP requests that all reach worker `pid` (reconnecting to it when needed)."""

    def __init__(self, server: Server, pid: int) -> None:
        self.server = server
        self.pid = pid
        self._conn: http.client.HTTPConnection | None = None

    def _connect(self, attempts: int = 200) -> http.client.HTTPConnection:
        others: list[http.client.HTTPConnection] = []
        try:
            for _ in range(attempts):
                conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                assert conn.sock is not None
                inode = _server_socket_inode(self.server.port, conn.sock.getsockname()[1])
                owner = _owner(inode, [self.pid]) if inode is not None else None
                if owner == self.pid:
                    return conn
                others.append(conn)  # held open so the next connection is accepted afresh
            raise AssertionError(f"no connection reached worker {self.pid}")
        finally:
            for conn in others:
                conn.close()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """(status, parsed JSON body or text)."""
        payload = None if body is None else json.dumps(body)
        all_headers = {"content-type": "application/json", **(headers or {})}
        for attempt in range(2):
            if self._conn is None or self._conn.sock is None:
                self._conn = self._connect()
            try:
                self._conn.request(method, path, body=payload, headers=all_headers)
                response = self._conn.getresponse()
                data = response.read()
            except (http.client.HTTPException, ConnectionError):
                # The server closed an idle keep-alive connection: reconnect to the same worker.
                self._conn.close()
                self._conn = None
                if attempt:
                    raise
                continue
            text = data.decode()
            kind = response.getheader("content-type") or ""
            return response.status, json.loads(text) if "json" in kind and text else text
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
