"""The benchmark's fallback load generator counts what the server answered, no more, no less."""

from __future__ import annotations

import asyncio

from bench.load import ASYNCIO_TOOL, _run_asyncio


async def _serve(replies: list[bytes]) -> tuple[asyncio.Server, int, list[bytes]]:
    """A server that answers each request with the next reply (the last one repeats)."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                seen.append(await reader.readexactly(length))
                writer.write(replies[min(len(seen), len(replies)) - 1])
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, port, seen


def _reply(status: str, body: bytes, *, length: bool = True) -> bytes:
    size = f"Content-Length: {len(body)}\r\n" if length else ""
    return f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{size}\r\n".encode() + body


async def test_counts_requests_statuses_and_bodies() -> None:
    ok, denied = _reply("200 OK", b'{"allowed":true}'), _reply("429 Too Many", b"{}")
    server, port, seen = await _serve([ok, ok, denied, ok])
    async with server:
        result = await _run_asyncio(
            f"http://127.0.0.1:{port}", "/check", seconds=0.3, connections=2, bodies=['{"a":1}']
        )
    assert result.tool == ASYNCIO_TOOL
    assert result.requests == len(seen) > 10
    assert result.errors == 1  # the one 429
    assert set(seen) == {b'{"a":1}'}
    assert 0 < result.p50_ms <= result.p99_ms


async def test_a_response_without_length_is_an_error_not_a_hang() -> None:
    server, port, _ = await _serve([_reply("200 OK", b"{}", length=False)])
    async with server:
        result = await asyncio.wait_for(
            _run_asyncio(
                f"http://127.0.0.1:{port}", "/check", seconds=0.2, connections=1, bodies=["{}"]
            ),
            timeout=10,
        )
    assert (result.requests, result.errors) == (0, 1)


def test_extra_headers_go_into_every_request() -> None:
    from bench.load import _lua_script, _request_bytes

    raw = _request_bytes("h:1", "/check", '{"a":1}', {"X-API-Key": "secret"})
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"\r\nX-API-Key: secret\r\n" in head + b"\r\n" and body == b'{"a":1}'
    assert b"Content-Length: 7" in head
    script = _lua_script("/check", ['{"a":1}'], {"Authorization": "Bearer t"})
    assert "[ [==[Authorization]==] ] = [==[Bearer t]==]" in script
