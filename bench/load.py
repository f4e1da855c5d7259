"""Load generation: wrk with a Lua script when installed, else an asyncio httpx client.

wrk (`apt-get install wrk` on Debian/Ubuntu) is written in C and costs the machine far less
than the server it loads, so its figures are the ones to trust; the asyncio fallback shares
the Python interpreter's limits and understates throughput of fast servers.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

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


def _lua_script(path: str, bodies: list[str]) -> str:
    """POST `bodies` in turn, over and over; report throughput and latency as JSON."""
    table = ",\n".join(_lua_quote(b) for b in bodies)
    make = "i = i + 1\n  if i > #bodies then i = 1 end\n  local body = bodies[i]"
    head = f"local bodies = {{\n{table}\n}}\n"
    return f"""{head}
local i = 0
local headers = {{["Content-Type"] = "application/json"}}
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
) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(_lua_script(path, bodies))
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
    data = json.loads(out.strip().splitlines()[-1])
    return LoadResult(
        requests_per_s=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=data["errors"],
        requests=data["requests"],
        tool="wrk",
    )


async def _run_asyncio(
    url: str,
    path: str,
    *,
    seconds: float,
    connections: int,
    bodies: list[str],
) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    counter = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors, counter
        while time.perf_counter() < deadline:
            counter += 1
            body = bodies[counter % len(bodies)]
            t0 = time.perf_counter()
            r = await client.post(path, content=body, headers={"content-type": "application/json"})
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors += 1

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return LoadResult(
        requests_per_s=len(latencies) / elapsed,
        p50_ms=latencies[len(latencies) // 2] * 1000,
        p99_ms=latencies[int(len(latencies) * 0.99)] * 1000,
        errors=errors,
        requests=len(latencies),
        tool="asyncio-httpx",
    )


def run_load(
    url: str,
    path: str,
    *,
    seconds: float,
    connections: int,
    bodies: list[str],
) -> LoadResult:
    if wrk_available():
        return run_wrk(url, path, seconds=seconds, connections=connections, bodies=bodies)
    return asyncio.run(
        _run_asyncio(url, path, seconds=seconds, connections=min(connections, 16), bodies=bodies)
    )
