"""The agent's TCP fault proxy against a direct loopback connection, repeated and interleaved.

    python benchmarks/proxy_bench.py [--rounds 7] [--megabytes 200] [--pings 3000]
                                     [--output FILE]

Each round measures direct, then proxied (or the other way round, alternately), so a burst
of load from elsewhere hits both; the figures are medians over rounds:
- throughput ratio: a bulk transfer to a sink, proxied with no toxic / direct (goal >= 0.5);
- added round trip: 1-byte echo round trips, p50 (goal <= 100 µs) and p99 (no goal) of the
  proxied run minus the direct run of the same round;
- toxic effect: from the start of the API call (AgentClient.create_lease) that adds a 50 ms
  latency toxic to the arrival at the proxy of the first reply it slows (that round trip's
  end less 50 ms), on a connection that is busy the whole time (goal <= 5 ms); the API
  call's own duration is reported beside it.

It starts its own agent in a temporary state directory and stops it afterwards; the sink and
echo servers run in a process of their own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from figures import document, emit, figure, percentile

from chaos_tui.agent.client import AgentClient
from chaos_tui.settings import Settings

CHUNK = 64 * 1024
TOXIC_LATENCY_MS = 50


async def serve_forever() -> None:
    """The sink and echo servers, in a process of their own (see start_servers)."""

    async def sink(reader, writer):
        total = 0
        while data := await reader.read(1 << 20):
            total += len(data)
        writer.write(str(total).encode())
        await writer.drain()
        writer.close()

    async def echo(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    servers = [
        await asyncio.start_server(sink, "127.0.0.1", 0),
        await asyncio.start_server(echo, "127.0.0.1", 0),
    ]
    print(json.dumps([s.sockets[0].getsockname()[1] for s in servers]), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until stdin closes


def start_servers() -> tuple[int, int, subprocess.Popen]:
    """Client and server in different processes, as in life: the direct path then pays the
    same process switches the proxied one does, and the difference is the proxy's own."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    sink_port, echo_port = json.loads(proc.stdout.readline())
    return sink_port, echo_port, proc


async def throughput(port: int, megabytes: int) -> float:
    """MB/s of a bulk transfer to the sink, until it has counted every byte."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    block = b"\x5a" * CHUNK
    total = megabytes * 1024 * 1024
    started = time.perf_counter()
    for _ in range(total // CHUNK):
        writer.write(block)
        await writer.drain()
    writer.write_eof()
    received = int(await reader.read())
    took = time.perf_counter() - started
    writer.close()
    assert received == total, (received, total)
    return total / took / 1e6


async def pings(port: int, count: int) -> list[float]:
    """Round-trip times (µs) of `count` 1-byte echoes on one connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        writer.write(b"!")
        await writer.drain()
        await reader.readexactly(1)
        times.append((time.perf_counter() - started) * 1e6)
    writer.close()
    return times


def busy_pinger(port: int, hold_s: float) -> None:
    """Round trips on a blocking socket for `hold_s` after saying "ready", then the log as
    JSON, in a process of its own (`--ping PORT`): a pinger thread in the benchmark's own
    process took the GIL and a core from the API call it was timing. perf_counter is the
    system's monotonic clock, the same in both processes."""
    log: list[tuple[float, float]] = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        print("ready", flush=True)
        until = time.perf_counter() + hold_s
        while (started := time.perf_counter()) < until:
            sock.sendall(b"!")
            sock.recv(1)
            log.append((started, time.perf_counter() - started))
    print(json.dumps(log), flush=True)


async def toxic_effect(client: AgentClient, proxy: str, port: int) -> tuple[float, float]:
    """(effect ms, API call ms): from the start of the API call to the first round trip
    slowed by the new toxic, on a connection busy the whole time."""
    pinger = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--ping", str(port), stdout=asyncio.subprocess.PIPE, limit=1 << 26
    )
    assert pinger.stdout is not None
    try:
        await pinger.stdout.readline()  # "ready"
        await asyncio.sleep(0.1)
        called = time.perf_counter()
        lease = await client.create_lease(
            kind="proxy.toxic",
            ttl_s=30,
            params={"proxy": proxy, "type": "latency", "attributes": {"latency": TOXIC_LATENCY_MS}},
        )
        returned = time.perf_counter()
        log = json.loads(await pinger.stdout.readline())
    finally:
        if pinger.returncode is None:
            await pinger.wait()
    await client.heal_lease(lease.id)
    # A round trip slowed by the toxic took >= the latency; the proxy held its reply from
    # the reply's arrival, which is its end less the latency: the effect time is the first
    # such arrival minus the call's start. (Its send may predate the call: a reply that
    # reaches the proxy after the toxic landed is slowed all the same.)
    latency = TOXIC_LATENCY_MS / 1000
    slowed = [start + took - latency for start, took in log if took >= latency * 0.98]
    if not slowed:
        raise RuntimeError("no round trip was slowed by the toxic")
    return (min(slowed) - called) * 1000, (returned - called) * 1000


async def health_call(client: AgentClient) -> float:
    """ms of the cheapest API call through AgentClient (a new connection each, as always)."""
    times = []
    for _ in range(5):
        started = time.perf_counter()
        await client.call("GET", "/health")
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)[2]


async def main_async(args) -> dict:
    state = Path(tempfile.mkdtemp(prefix="chaos-tui-proxybench-", dir="/tmp"))
    client = AgentClient(Settings(state_dir=state))
    sink_port, echo_port, servers = start_servers()
    try:
        await client.ensure()
        sink_via = await make_proxy(client, "sink", sink_port)
        echo_via = await make_proxy(client, "echo", echo_port)

        await throughput(sink_port, 20)  # warm both paths up
        await throughput(sink_via, 20)
        await pings(echo_port, 200)
        await pings(echo_via, 200)

        rates: dict[str, list[float]] = {"direct": [], "proxy": []}
        trips: dict[str, list[list[float]]] = {"direct": [], "proxy": []}
        ports = {"direct": (sink_port, echo_port), "proxy": (sink_via, echo_via)}
        effects, calls, healths = [], [], []
        for round_no in range(args.rounds):
            order = ["direct", "proxy"] if round_no % 2 == 0 else ["proxy", "direct"]
            for case in order:
                rates[case].append(await throughput(ports[case][0], args.megabytes))
            for case in order:
                trips[case].append(await pings(ports[case][1], args.pings))
            effect, call = await toxic_effect(client, "echo", echo_via)
            effects.append(effect)
            calls.append(call)
            healths.append(await health_call(client))

        ratios = [p / d for p, d in zip(rates["proxy"], rates["direct"], strict=True)]
        added = {
            q: [
                percentile(p, q) - percentile(d, q)
                for p, d in zip(trips["proxy"], trips["direct"], strict=True)
            ]
            for q in (50, 99)
        }
        figures = [
            figure(
                "proxy throughput ratio (proxy / direct)",
                ratios,
                "x",
                goal=0.5,
                better="higher",
                note=f"{args.megabytes} MB to a sink, no toxic",
            ),
            figure(
                "proxy added round trip p50",
                added[50],
                "µs",
                goal=100,
                note=f"{args.pings} 1-byte echoes, proxied p50 minus direct p50 of the same round",
            ),
            figure("proxy added round trip p99", added[99], "µs", note="no goal"),
            figure(
                "proxy toxic effect time",
                effects,
                "ms",
                goal=5,
                note=f"API call start to first round trip slowed by a {TOXIC_LATENCY_MS} ms "
                "latency toxic, busy connection",
            ),
            figure("proxy toxic API call", calls, "ms", note="create_lease round trip, no goal"),
            figure(
                "agent API floor (GET /health)",
                healths,
                "ms",
                note="AgentClient round trip that does nothing (median of 5): what any toxic "
                "waits for at least, no goal",
            ),
        ]
        return document(
            "proxy",
            figures,
            rounds=args.rounds,
            throughput_mb_per_s={k: [round(v, 1) for v in vs] for k, vs in rates.items()},
            round_trip_us={
                case: {
                    "p50": [round(percentile(r, 50), 1) for r in runs],
                    "p99": [round(percentile(r, 99), 1) for r in runs],
                }
                for case, runs in trips.items()
            },
        )
    finally:
        stop_everything(servers, client, state)


def stop_everything(servers: subprocess.Popen, client: AgentClient, state: Path) -> None:
    """Our own server process (it exits when its stdin closes), agent and state dir."""
    assert servers.stdin is not None
    servers.stdin.close()
    servers.wait(10)
    client.stop_spawned()
    shutil.rmtree(state, ignore_errors=True)


async def make_proxy(client: AgentClient, name: str, upstream_port: int) -> int:
    made = await client._ok(
        "POST", "/proxies", {"name": name, "upstream": f"127.0.0.1:{upstream_port}"}
    )
    return int(made["listen"].rsplit(":", 1)[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--pings", type=int, default=3000)
    parser.add_argument("--output", type=Path, help="write the JSON here as well")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ping", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve_forever())
        return 0
    if args.ping:
        busy_pinger(args.ping, hold_s=0.4)
        return 0
    emit(asyncio.run(main_async(args)), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
