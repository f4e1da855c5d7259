"""Load generation: wrk with a Lua script when installed, else a lean asyncio client.

wrk (`apt-get install wrk` on Debian/Ubuntu) is written in C and costs the machine far less
than the server it loads, so its figures are the ones to trust. The fallback is a keep-alive
HTTP/1.1 client on `asyncio.Protocol` under uvloop: still Python, so it takes more of the
shared CPU than wrk and understates the fastest servers somewhat, but far less than a general
HTTP client library would.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

import uvloop

ASYNCIO_TOOL = "asyncio-protocol"
WRK_INSTALL_HINT = "wrk not found: `apt-get install wrk` (Debian/Ubuntu) or `brew install wrk`"


@dataclass
class LoadResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    tool: str


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _lua_quote(text: str) -> str:
    return "[==[" + text + "]==]"


def _lua_script(path: str, bodies: list[str], headers: dict[str, str] | None = None) -> str:
    """POST `bodies` in turn, over and over; report throughput and latency as JSON."""
    table = ",\n".join(_lua_quote(b) for b in bodies)
    make = "i = i + 1\n  if i > #bodies then i = 1 end\n  local body = bodies[i]"
    head = f"local bodies = {{\n{table}\n}}\n"
    extra = "".join(f"[ {_lua_quote(k)} ] = {_lua_quote(v)}, " for k, v in (headers or {}).items())
    return f"""{head}
local i = 0
local headers = {{{extra}["Content-Type"] = "application/json"}}
request = function()
  {make}
  return wrk.format("POST", {_lua_quote(path)}, headers, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{{"requests": %d, "duration_us": %d, "errors": %d, "p50_us": %d, "p99_us": %d}}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def run_wrk(
    url: str,
    path: str,
    *,
    seconds: float,
    connections: int,
    bodies: list[str],
    headers: dict[str, str] | None = None,
) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(_lua_script(path, bodies, headers))
        script = f.name
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                script,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        Path(script).unlink(missing_ok=True)
    lines = out.strip().splitlines()
    try:
        data = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError) as exc:
        raise RuntimeError(f"wrk printed no summary for {path}: {out[-500:]!r}") from exc
    return LoadResult(
        requests_per_s=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=data["errors"],
        requests=data["requests"],
        tool="wrk",
    )


class _KeepAliveConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection sending prepared requests back to back.

    Written against `asyncio.Protocol` rather than an HTTP client library because the load
    generator shares this 2-core machine with the server: httpx costs ~1 ms of CPU per request
    here and would measure itself. Responses are framed by Content-Length (every server under
    test sends it); anything else counts as an error and ends the connection.
    """

    def __init__(self, requests: list[bytes], offset: int, deadline: float, stats: _Stats) -> None:
        self.requests = requests
        self.i = offset
        self.deadline = deadline
        self.stats = stats
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.buffer = b""
        self.need: int | None = None
        self.status = 0
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        if time.perf_counter() >= self.deadline:
            self.transport.close()
            return
        self.sent_at = time.perf_counter()
        self.transport.write(self.requests[self.i % len(self.requests)])
        self.i += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.need is None:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buffer[:end].lower()
                self.status = int(head[9:12])
                at = head.find(b"\r\ncontent-length:")
                if at < 0:
                    self.stats.errors += 1
                    assert self.transport is not None
                    self.transport.close()
                    return
                line_end = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
                self.need = end + 4 + length
            if len(self.buffer) < self.need:
                return
            self.stats.latencies.append(time.perf_counter() - self.sent_at)
            if self.status != 200:
                self.stats.errors += 1
            self.buffer = self.buffer[self.need :]
            self.need = None
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self.stats.errors += 1
        if not self.done.done():
            self.done.set_result(None)


@dataclass
class _Stats:
    latencies: list[float]
    errors: int = 0


def _request_bytes(host: str, path: str, body: str, headers: dict[str, str] | None = None) -> bytes:
    payload = body.encode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"{extra}Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


async def _run_asyncio(
    url: str,
    path: str,
    *,
    seconds: float,
    connections: int,
    bodies: list[str],
    headers: dict[str, str] | None = None,
) -> LoadResult:
    parsed = urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    requests = [_request_bytes(f"{host}:{port}", path, b, headers) for b in bodies]
    stats = _Stats(latencies=[])
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    deadline = started + seconds
    protocols: list[_KeepAliveConnection] = []
    for n in range(connections):
        offset = n * len(requests) // max(1, connections)
        _, protocol = await loop.create_connection(
            partial(_KeepAliveConnection, requests, offset, deadline, stats), host, port
        )
        protocols.append(protocol)
    await asyncio.gather(*(p.done for p in protocols))
    elapsed = time.perf_counter() - started
    latencies = sorted(stats.latencies)
    if not latencies:
        return LoadResult(0.0, 0.0, 0.0, stats.errors, 0, ASYNCIO_TOOL)
    return LoadResult(
        requests_per_s=len(latencies) / elapsed,
        p50_ms=latencies[len(latencies) // 2] * 1000,
        p99_ms=latencies[int(len(latencies) * 0.99)] * 1000,
        errors=stats.errors,
        requests=len(latencies),
        tool=ASYNCIO_TOOL,
    )


def run_load(
    url: str,
    path: str,
    *,
    seconds: float,
    connections: int,
    bodies: list[str],
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """POST `bodies` in turn (with `headers`, beyond Content-Type) for `seconds`."""
    if wrk_available():
        return run_wrk(
            url, path, seconds=seconds, connections=connections, bodies=bodies, headers=headers
        )
    return uvloop.run(
        _run_asyncio(
            url, path, seconds=seconds, connections=connections, bodies=bodies, headers=headers
        )
    )
