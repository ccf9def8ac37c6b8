"""The agent client's HTTP exchange (agent/wire.py) against real sockets on loopback: what it
sends, what it reads, and which failure it names when the agent is not there or breaks off.
The happy path against the real agent is covered by every agent test."""

from __future__ import annotations

import asyncio
import socket

import pytest

from chaos_tui.agent.wire import AgentConnectionLost, exchange
from chaos_tui.core.errors import AgentUnavailable


async def serve(handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head, await reader.readexactly(length)


async def test_sends_json_with_its_headers_and_reads_status_headers_and_body() -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def handler(reader, writer):
        seen.append(await read_request(reader))
        body = b'{"ok": true, "n": 3}'
        writer.write(
            b"HTTP/1.1 201 Created\r\nX-Chaos-Warning: disk slow\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()

    server, url = await serve(handler)
    async with server:
        answer = await exchange(
            url, "POST", "/leases", {"kind": "x"}, {"Authorization": "Bearer t"}
        )
    head, body = seen[0]
    assert head.startswith(b"POST /leases HTTP/1.1\r\n")
    assert b"Authorization: Bearer t" in head and b"Content-Type: application/json" in head
    assert body == b'{"kind": "x"}'
    assert answer.status_code == 201
    assert answer.json() == {"ok": True, "n": 3}
    assert answer.headers["x-chaos-warning"] == "disk slow"


async def test_a_chunked_answer_is_read_whole_without_waiting_for_the_close() -> None:
    async def handler(reader, writer):
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n"
        )
        await writer.drain()
        await asyncio.sleep(0.5)  # the answer is whole before the connection ends
        writer.close()

    server, url = await serve(handler)
    async with server:
        answer = await asyncio.wait_for(exchange(url, "GET", "/leases"), 0.4)
    assert answer.json() == [1, 2]


async def test_nobody_listening_is_unavailable_and_nothing_was_sent() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: refused
        with pytest.raises(AgentUnavailable, match=r"cannot reach .*: Connection refused"):
            await exchange(f"http://127.0.0.1:{port}", "POST", "/leases", {})


@pytest.mark.parametrize(
    "reply",
    [b"", b'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{"ok"', b"garbage\r\n\r\n"],
    ids=["closed-at-once", "cut-short", "not-http"],
)
async def test_a_connection_broken_after_the_request_is_lost_not_unavailable(reply) -> None:
    """The request went out: it may have been applied, and the caller must not think not."""

    async def handler(reader, writer):
        await read_request(reader)
        writer.write(reply)
        await writer.drain()
        writer.close()

    server, url = await serve(handler)
    async with server:
        with pytest.raises(AgentConnectionLost, match="did not answer POST /leases") as caught:
            await exchange(url, "POST", "/leases", {"kind": "x"})
    assert not isinstance(caught.value, AgentUnavailable)


async def test_an_agent_that_never_answers_times_out_as_lost() -> None:
    async def handler(reader, writer):
        await read_request(reader)
        await asyncio.sleep(5)

    server, url = await serve(handler)
    async with server:
        with pytest.raises(AgentConnectionLost, match="no answer in time"):
            await exchange(url, "DELETE", "/leases/x", timeout_s=0.3)


async def test_an_ipv6_agent_gets_a_bracketed_host() -> None:
    seen: list[bytes] = []

    async def handler(reader, writer):
        head, _ = await read_request(reader)
        seen.append(head)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        writer.close()

    try:
        server = await asyncio.start_server(handler, "::1", 0)
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    port = server.sockets[0].getsockname()[1]
    async with server:
        answer = await exchange(f"http://[::1]:{port}", "GET", "/health")
    assert answer.status_code == 204 and answer.content == b""
    assert f"Host: [::1]:{port}".encode() in seen[0]


async def test_a_latin1_header_value_is_read_not_raised() -> None:
    """The agent's DELETE may answer X-Chaos-Warning with a journal path in it, and header
    values go out as latin-1: a state dir under /home/josé sends b'\\xe9'."""

    async def handler(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 204 No Content\r\nX-Chaos-Warning: /home/jos\xe9/x\r\n\r\n")
        await writer.drain()
        writer.close()

    server, url = await serve(handler)
    async with server:
        answer = await exchange(url, "DELETE", "/leases/x")
    assert answer.status_code == 204
    assert answer.headers["x-chaos-warning"] == "/home/jos\xe9/x"
