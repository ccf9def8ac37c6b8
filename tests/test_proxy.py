"""The agent's TCP fault proxy with real sockets on loopback: each toxic changes what a client
sees, a toxic's lease heals at its TTL, and removing a toxic under load returns at once."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time

import pytest
import pytest_asyncio

from chaos_tui.agent.client import AgentClient, AgentError
from chaos_tui.settings import Settings
from tests.conftest import leftovers, make_state_dir

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def agent():
    state_dir = make_state_dir("proxy")
    client = AgentClient(Settings(state_dir=state_dir))
    await client.ensure()
    try:
        yield client
    finally:
        left = leftovers(state_dir)  # stops the agent, which heals every lease first
        shutil.rmtree(state_dir, ignore_errors=True)
        assert all(item.startswith("agent") for item in left), left


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def echo():
    """An echo server; `closing=True` connections are closed by the server at once."""

    async def handle(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


@pytest_asyncio.fixture(loop_scope="module")
async def proxy(agent, echo):
    name = f"p{time.monotonic_ns()}"
    created = await agent._ok("POST", "/proxies", {"name": name, "upstream": f"127.0.0.1:{echo}"})
    yield name, int(created["listen"].rsplit(":", 1)[1])
    await agent._ok("DELETE", f"/proxies/{name}")
    assert [le for le in await agent.leases() if le.params.get("proxy") == name] == []


async def toxic(agent, proxy_name, type, ttl_s=60, **params) -> dict:
    return await agent.create_lease(
        kind="proxy.toxic", ttl_s=ttl_s, params={"proxy": proxy_name, "type": type, **params}
    )


async def round_trip(port: int, payload: bytes = b"ping", timeout: float = 5.0) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        started = time.perf_counter()
        writer.write(payload)
        await writer.drain()
        got = await asyncio.wait_for(reader.readexactly(len(payload)), timeout)
        assert got == payload
        return time.perf_counter() - started
    finally:
        writer.close()


async def test_without_toxics_bytes_pass_unchanged(agent, proxy):
    _, port = proxy
    assert await round_trip(port) < 0.1
    blob = bytes(range(256)) * 4096  # 1 MiB
    assert await round_trip(port, blob) < 5


async def test_latency_is_added_and_removed_at_once_under_load(agent, proxy):
    name, port = proxy
    lease = await toxic(agent, name, "latency", attributes={"latency": 150, "jitter": 10})
    assert await round_trip(port) >= 0.14

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    stop = asyncio.Event()

    async def load():  # a steady stream through the toxic while it is removed
        while not stop.is_set():
            writer.write(b"x" * 4096)
            await writer.drain()
            await reader.read(65536)

    loader = asyncio.create_task(load())
    await asyncio.sleep(0.3)
    started = time.perf_counter()
    assert await agent.heal_lease(lease.id) is True
    took = time.perf_counter() - started
    stop.set()
    await asyncio.wait_for(loader, 5)
    assert took < 0.5, f"removing a toxic under load took {took:.3f}s"
    started = time.perf_counter()  # the loaded connection itself is fast again
    writer.write(b"q")
    await writer.drain()
    await asyncio.wait_for(reader.read(65536), 5)
    assert time.perf_counter() - started < 0.1
    writer.close()
    assert await round_trip(port) < 0.1


async def test_a_reply_in_several_pieces_is_late_by_the_latency_once(agent, proxy):
    """Pieces echoed 30 ms apart arrive behind the first while it is held: each is due at
    its own arrival + 300 ms, so the last lands about 360 ms after the first was sent. (It
    once took 600 ms and more: each read waited the full latency after the previous one.)"""
    name, port = proxy
    lease = await toxic(agent, name, "latency", attributes={"latency": 300})
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        started = time.perf_counter()
        for piece in (b"a", b"b", b"c"):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.03)
        assert await asyncio.wait_for(reader.readexactly(3), 5) == b"abc"
        took = time.perf_counter() - started
    finally:
        writer.close()
        await agent.heal_lease(lease.id)
    assert 0.35 <= took < 0.5, f"three pieces through 300 ms took {took:.3f}s"


async def test_data_held_by_a_toxic_goes_on_when_it_is_removed(agent, proxy):
    name, port = proxy
    lease = await toxic(agent, name, "latency", attributes={"latency": 3000})
    pending = asyncio.create_task(round_trip(port))
    await asyncio.sleep(0.3)
    await agent.heal_lease(lease.id)
    assert await asyncio.wait_for(pending, 5) < 1.0, "the held data waited out the toxic"


async def test_toxicity_zero_touches_no_connection(agent, proxy):
    name, port = proxy
    await toxic(agent, name, "latency", toxicity=0.0, attributes={"latency": 300})
    assert await round_trip(port) < 0.1


async def test_bandwidth_caps_the_rate(agent, proxy):
    name, port = proxy
    await toxic(agent, name, "bandwidth", attributes={"rate": 200})  # KB/s, downstream
    took = await round_trip(port, b"y" * 400 * 1024, timeout=10)
    assert 1.5 <= took <= 4, took


async def test_timeout_is_a_black_hole_and_closes_after_its_timeout(agent, proxy):
    name, port = proxy
    lease = await toxic(agent, name, "timeout", attributes={"timeout": 0})
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"lost")
    await writer.drain()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(reader.read(10), 0.5)
    await agent.heal_lease(lease.id)
    # The bytes it swallowed are gone: that connection is closed, not resumed half-whole.
    assert await asyncio.wait_for(reader.read(10), 3) == b""
    writer.close()
    assert await round_trip(port) < 0.1
    await toxic(agent, name, "timeout", attributes={"timeout": 300})
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.perf_counter()
    assert await asyncio.wait_for(reader.read(10), 3) == b""  # closed by the toxic
    assert time.perf_counter() - started >= 0.25
    writer.close()


async def test_reset_peer_resets_the_connection(agent, proxy):
    name, port = proxy
    await toxic(agent, name, "reset_peer", attributes={"timeout": 100})
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    with pytest.raises(ConnectionResetError):
        for _ in range(50):
            writer.write(b"z")
            await writer.drain()
            if not await asyncio.wait_for(reader.read(10), 3):
                raise AssertionError("closed with a FIN, not reset")
            await asyncio.sleep(0.02)
    writer.close()


async def test_limit_data_closes_after_its_bytes(agent, proxy):
    name, port = proxy
    await toxic(agent, name, "limit_data", attributes={"bytes": 1000})  # downstream only
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"a" * 600)
    await writer.drain()
    assert await asyncio.wait_for(reader.readexactly(600), 3) == b"a" * 600
    writer.write(b"b" * 900)
    await writer.drain()
    got = await asyncio.wait_for(reader.read(), 3)  # until EOF
    writer.close()
    assert got == b"b" * 400, len(got)


async def test_slicer_delivers_everything_in_pieces(agent, proxy):
    name, port = proxy
    await toxic(
        agent, name, "slicer", attributes={"average_size": 100, "size_variation": 20, "delay": 2000}
    )
    payload = bytes(range(256)) * 20
    took = await round_trip(port, payload)
    assert took >= 0.05, "5 KB in ~100 byte slices 2 ms apart cannot arrive at once"


async def test_slow_close_delays_the_close(agent, proxy):
    name, port = proxy
    await toxic(agent, name, "slow_close", attributes={"delay": 400})
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write_eof()  # the echo server closes back; the toxic holds that close
    started = time.perf_counter()
    assert await asyncio.wait_for(reader.read(), 3) == b""
    assert time.perf_counter() - started >= 0.35
    writer.close()


async def test_down_refuses_connections_until_healed(agent, proxy):
    name, port = proxy
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lease = await agent.create_lease(kind="proxy.down", ttl_s=60, params={"proxy": name})
    assert await asyncio.wait_for(reader.read(10), 3) == b"", "a live connection survived"
    writer.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    await agent.heal_lease(lease.id)
    assert await round_trip(port) < 0.1


async def test_two_downs_keep_it_down_until_both_are_healed(agent, proxy):
    name, port = proxy
    first = await agent.create_lease(kind="proxy.down", ttl_s=60, params={"proxy": name})
    second = await agent.create_lease(kind="proxy.down", ttl_s=60, params={"proxy": name})
    await agent.heal_lease(first.id)
    with pytest.raises(ConnectionRefusedError):  # the second down still holds
        await asyncio.open_connection("127.0.0.1", port)
    await agent.heal_lease(second.id)
    assert await round_trip(port) < 0.1


async def test_one_down_lease_takes_several_proxies_down_together(agent, echo):
    names, ports = [], []
    for i in range(2):
        created = await agent.ensure_proxy(
            f"pair{i}-{time.monotonic_ns()}", "127.0.0.1:0", f"127.0.0.1:{echo}"
        )
        names.append(created.name)
        ports.append(int(created.listen.rsplit(":", 1)[1]))
    try:
        lease = await agent.create_lease(kind="proxy.down", ttl_s=60, params={"proxies": names})
        for port in ports:
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection("127.0.0.1", port)
        await agent.heal_lease(lease.id)
        for port in ports:
            assert await round_trip(port) < 0.1
        for bad in (
            {"proxies": []},
            {"proxies": [names[0], names[0]]},
            {"proxies": names, "proxy": names[0]},
            {"proxies": [names[0], "nope"]},
        ):
            with pytest.raises(AgentError) as refused:
                await agent.create_lease(kind="proxy.down", ttl_s=5, params=bad)
            assert refused.value.status == 400, bad
    finally:
        for name in names:
            await agent._ok("DELETE", f"/proxies/{name}")


async def test_a_proxy_that_cannot_listen_again_stays_down_and_its_heal_is_retried(agent, proxy):
    name, port = proxy
    lease = await agent.create_lease(kind="proxy.down", ttl_s=60, params={"proxy": name})
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", port))  # someone else took the port during the cut
    squatter.listen(1)
    try:
        with pytest.raises(AgentError) as failed:
            await agent.heal_lease(lease.id)
        assert failed.value.status == 502
        view = await agent._ok("GET", f"/proxies/{name}")
        assert not view["enabled"] and not view["listening"], "it must not look healed"
        assert [le.id for le in await agent.leases()] == [lease.id], "the lease must stay"
    finally:
        squatter.close()
    await agent.heal_lease(lease.id)  # the port is free again: the retry brings it back
    assert await round_trip(port) < 0.1


async def test_ensure_proxy_keeps_a_matching_proxy_and_remakes_a_different_one(agent, echo):
    name = f"same{time.monotonic_ns()}"
    first = await agent.ensure_proxy(name, "127.0.0.1:0", f"127.0.0.1:{echo}")
    try:
        again = await agent.ensure_proxy(name, first.listen, f"127.0.0.1:{echo}")
        assert again.listen == first.listen
        moved = await agent.ensure_proxy(name, first.listen, "127.0.0.1:9")
        assert moved.upstream == "127.0.0.1:9" and moved.listen == first.listen
    finally:
        await agent._ok("DELETE", f"/proxies/{name}")


async def test_a_toxic_ends_at_its_ttl(agent, proxy):
    name, port = proxy
    await toxic(agent, name, "latency", ttl_s=0.5, attributes={"latency": 200})
    assert await round_trip(port) >= 0.19
    await asyncio.sleep(1.0)
    assert await round_trip(port) < 0.1
    assert [le for le in await agent.leases() if le.params.get("proxy") == name] == []


@pytest.mark.parametrize(
    "params",
    [
        {"type": "earthquake"},
        {"type": "latency", "stream": "sideways"},
        {"type": "latency", "toxicity": 2},
        {"type": "latency", "attributes": {"latency": -5}},
        {"type": "latency", "attributes": {"speed": 1}},
        {"type": "latency", "proxy": "no-such-proxy"},
        {"type": "latency", "attributes": ["latency", 5]},
        {"type": "latency", "attributes": {"latency": 1e300}},
        {"type": "latency", "toxicity": "all"},
    ],
)
async def test_bad_toxics_are_refused(agent, proxy, params):
    with pytest.raises(AgentError) as refused:
        await agent.create_lease(kind="proxy.toxic", ttl_s=5, params={"proxy": proxy[0], **params})
    assert refused.value.status == 400
