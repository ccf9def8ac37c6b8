"""The proxy's data path (relay.py) with real sockets on loopback, in-process, on asyncio's own
loop and on uvloop (the agent's, which queues a view of a written buffer, not a copy): bytes
arrive whole and in order through the fast path, under backpressure, and across switches to
and from a toxic; closes pass both ways; no fd is left behind."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from chaos_tui.agent.proxy import Proxy, ProxyManager, Toxic

try:
    import uvloop
except ImportError:  # Windows: asyncio's loop only
    uvloop = None  # type: ignore[assignment]

RUNNERS = ["asyncio"] + (["uvloop"] if uvloop is not None else [])


def run(loop_name: str, body: Callable[[Proxy], Coroutine[Any, Any, None]], server=None) -> None:
    """`body(proxy)` on the named loop, with a proxy in front of `server()` (an echo server
    by default), both stopped afterwards."""

    async def main():
        upstream = await (server or echo_server)()
        manager = ProxyManager()
        port = upstream.sockets[0].getsockname()[1]
        proxy = await manager.create(f"t{time.monotonic_ns()}", "127.0.0.1:0", f"127.0.0.1:{port}")
        try:
            await body(proxy)
        finally:
            await manager.stop_all()
            upstream.close()

    if loop_name == "uvloop":
        uvloop.run(main())
    else:
        asyncio.run(main())


async def slow_echo_server() -> asyncio.AbstractServer:
    return await echo_server(slow=True)


async def echo_server(slow: bool = False) -> asyncio.AbstractServer:
    """Echoes; b"Q" alone makes it close its side; `slow` reads in small sips (backpressure)."""

    async def handle(reader, writer):
        try:
            while data := await reader.read(4096 if slow else 65536):
                if data == b"Q":
                    break
                writer.write(data)
                await writer.drain()
                if slow:
                    await asyncio.sleep(0)
        except ConnectionError:
            pass
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def pump(proxy: Proxy, payload: bytes, during=None) -> bytes:
    """Send `payload` through the echo and read it all back, running `during()` meanwhile.
    The client's receive buffer is small and it starts reading late: the proxy's writes to
    it queue in the proxy (where uvloop keeps a view of what it was given, not a copy)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(proxy.listen)
    sock.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=sock)

    async def send():
        view = memoryview(payload)
        for at in range(0, len(view), 50_000):
            writer.write(view[at : at + 50_000])
            await writer.drain()

    sender = asyncio.create_task(send())
    side = asyncio.create_task(during()) if during is not None else None
    await asyncio.sleep(0.2)
    got = await asyncio.wait_for(reader.readexactly(len(payload)), 30)
    await sender
    if side is not None:
        await side
    writer.close()
    return got


async def count_server() -> asyncio.AbstractServer:
    """Answers how many bytes it got, once the client's EOF came."""

    async def count(reader, writer):
        total = len(await reader.read(-1))
        writer.write(str(total).encode())
        await writer.drain()
        writer.close()

    return await asyncio.start_server(count, "127.0.0.1", 0)


def latency(name: str, ms: float, stream: str = "downstream") -> Toxic:
    return Toxic.build(name, "latency", stream, 1.0, {"latency": ms})


async def round_trip(reader, writer) -> float:
    started = time.perf_counter()
    writer.write(b"!")
    await writer.drain()
    assert await asyncio.wait_for(reader.readexactly(1), 5) == b"!"
    return time.perf_counter() - started


def open_fds() -> dict[str, str]:
    """This process's fds and what each is (the one listing them is gone by then)."""
    fds = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass
    return fds


async def settle(proxy: Proxy) -> None:
    for _ in range(200):
        if proxy.open == 0:
            return
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("loop_name", RUNNERS)
def test_bytes_arrive_whole_through_the_fast_path_under_backpressure(loop_name):
    async def main(proxy):
        payload = random.randbytes(6_000_000).replace(b"Q", b"q")
        got = await pump(proxy, payload)
        assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()

    run(loop_name, main, slow_echo_server)


@pytest.mark.parametrize("loop_name", RUNNERS)
def test_a_toxic_added_mid_stream_acts_and_once_removed_the_path_is_fast_again(loop_name):
    async def main(proxy):
        reader, writer = await asyncio.open_connection(*proxy.listen)
        assert await round_trip(reader, writer) < 0.1
        (conn,) = proxy.connections
        assert conn.up.fast and conn.down.fast

        proxy.add_toxic(latency("slow", 150))
        assert not conn.down.fast and conn.up.fast  # only the toxic's direction is held
        assert await round_trip(reader, writer) >= 0.14

        proxy.remove_toxic("slow")
        assert await round_trip(reader, writer) < 0.1
        assert conn.down.fast, "drained and no toxic: the direction must be fast again"
        writer.close()

    run(loop_name, main)


@pytest.mark.parametrize("loop_name", RUNNERS)
def test_switching_back_and_forth_under_load_loses_reorders_and_repeats_nothing(loop_name):
    async def main(proxy):
        payload = random.randbytes(4_000_000).replace(b"Q", b"q")

        async def flip():
            for i in range(30):
                stream = "upstream" if i % 2 else "downstream"
                proxy.add_toxic(latency(f"t{i}", 2, stream))
                await asyncio.sleep(0.01)
                proxy.remove_toxic(f"t{i}")
                await asyncio.sleep(0.005)

        got = await pump(proxy, payload, during=flip)
        assert len(got) == len(payload)
        assert got == payload

    run(loop_name, main, slow_echo_server)


@pytest.mark.parametrize("loop_name", RUNNERS)
def test_data_queued_while_dialling_and_a_half_close_pass_on(loop_name):
    """The client writes and half-closes at once (before upstream may have answered): every
    byte arrives, the server's reply after that EOF still comes back, then both ends close."""

    async def main(proxy):
        reader, writer = await asyncio.open_connection(*proxy.listen)
        writer.write(b"x" * 300_000)
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), 10) == b"300000"
        writer.close()
        await settle(proxy)
        assert proxy.open == 0 and not proxy.connections

    run(loop_name, main, count_server)


@pytest.mark.parametrize("loop_name", RUNNERS)
def test_closes_pass_both_ways_and_leave_no_descriptor(loop_name):
    async def main(proxy):
        reader, writer = await asyncio.open_connection(*proxy.listen)  # warm: lazy fds opened
        await round_trip(reader, writer)
        writer.close()
        await settle(proxy)
        await asyncio.sleep(0.05)
        before = open_fds()
        conns = [await asyncio.open_connection(*proxy.listen) for _ in range(40)]
        for reader, writer in conns:
            assert await round_trip(reader, writer) < 1
        proxy.add_toxic(latency("some", 5))  # half of them held when they close
        for i, (reader, writer) in enumerate(conns):
            if i % 2:  # the server closes: the client sees the EOF through the proxy
                writer.write(b"Q")
                assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
            if i == 20:
                proxy.remove_toxic("some")
        await settle(proxy)
        await asyncio.sleep(0.05)
        assert proxy.open == 0 and not proxy.connections
        assert open_fds().items() - before.items() == set(), "fds left open"

    run(loop_name, main)


@pytest.mark.parametrize("loop_name", RUNNERS)
def test_a_reset_peer_toxic_leaves_the_data_path_fast(loop_name):
    async def main(proxy):
        reader, writer = await asyncio.open_connection(*proxy.listen)
        await round_trip(reader, writer)
        (conn,) = proxy.connections
        proxy.add_toxic(Toxic.build("rst", "reset_peer", "downstream", 1.0, {"timeout": 100}))
        assert conn.down.fast and conn.up.fast
        # uvloop refuses the next write on a reset socket with RuntimeError; the reader holds
        # the reset either way.
        with pytest.raises((ConnectionResetError, RuntimeError)):
            for _ in range(100):
                await round_trip(reader, writer)
                await asyncio.sleep(0.01)
        assert isinstance(reader.exception(), ConnectionResetError)
        writer.close()
        await settle(proxy)
        assert proxy.open == 0

    run(loop_name, main)


@pytest.mark.parametrize("loop_name", RUNNERS)
def test_a_stopped_proxy_closes_connections_still_dialling_at_once(loop_name):
    """An upstream whose accept backlog is full leaves the proxy's dial hanging (for up to its
    5 s timeout); deleting the proxy must close those client connections now, not then."""

    async def main():
        full = socket.socket()
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        fillers = []
        for _ in range(4):  # fill the backlog: further SYNs are dropped, connects hang
            filler = socket.socket()
            filler.setblocking(False)
            try:
                filler.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(filler)
        manager = ProxyManager()
        proxy = await manager.create(f"d{time.monotonic_ns()}", "127.0.0.1:0", f"127.0.0.1:{port}")
        clients = [await asyncio.open_connection(*proxy.listen) for _ in range(3)]
        try:
            async with asyncio.timeout(2):
                while proxy.open < 3 or len(proxy.dialling) < 3:
                    await asyncio.sleep(0.01)
            await manager.stop_all()
            async with asyncio.timeout(1):  # well under the dial's 5 s
                for reader, _ in clients:
                    with contextlib.suppress(ConnectionError):
                        assert await reader.read() == b""
            assert proxy.open == 0 and not proxy.dialling
        finally:
            for _, writer in clients:
                writer.close()
            for sock in [full, *fillers]:
                sock.close()

    if loop_name == "uvloop":
        uvloop.run(main())
    else:
        asyncio.run(main())
