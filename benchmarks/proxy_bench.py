"""The agent's TCP fault proxy against a direct loopback connection, in one run.

    python benchmarks/proxy_bench.py [--megabytes 200] [--pings 3000] [--output FILE]

Measures (JSON on stdout):
- throughput: a bulk transfer to a sink, through the proxy with no toxics vs direct
  (goal: proxy >= 0.5x direct);
- added latency: 1-byte echo round trips, p50/p99 through the proxy minus direct
  (goal: p50 <= 100 µs);
- toxic effect time: from the start of the API call that adds a 20 ms latency toxic to the
  first round trip it slows, on a connection that is busy the whole time (goal <= 5 ms).

It starts its own agent in a temporary state directory and stops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from chaos_tui.agent.client import AgentClient
from chaos_tui.settings import Settings

CHUNK = 64 * 1024


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
    sink_port, echo_port = json.loads(proc.stdout.readline())
    return sink_port, echo_port, proc


async def throughput(port: int, megabytes: int) -> float:
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
    return total / took / 1e6  # MB/s


async def pings(port: int, count: int) -> list[float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        writer.write(b"!")
        await writer.drain()
        await reader.readexactly(1)
        times.append((time.perf_counter() - started) * 1e6)
    writer.close()
    return times


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def busy_pinger(port: int, stop: threading.Event, log: list) -> None:
    """Round trips on a blocking socket in its own thread, so the timings are not bent by
    what the benchmark's event loop does meanwhile (the API call)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while not stop.is_set():
            started = time.perf_counter()
            sock.sendall(b"!")
            sock.recv(1)
            log.append((started, time.perf_counter() - started))


async def toxic_effect(client: AgentClient, proxy: str, port: int, tries: int) -> list[dict]:
    """From the start of the API call to the first round trip slowed by the new toxic."""
    results = []
    for _ in range(tries):
        log: list[tuple[float, float]] = []
        stop = threading.Event()
        pinger = threading.Thread(target=busy_pinger, args=(port, stop, log))
        pinger.start()
        await asyncio.sleep(0.2)
        called = time.perf_counter()
        lease = await client.create_lease(
            kind="proxy.toxic",
            ttl_s=30,
            params={"proxy": proxy, "type": "latency", "attributes": {"latency": 50}},
        )
        returned = time.perf_counter()
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.to_thread(pinger.join)
        await client.heal_lease(lease.id)
        # A round trip slowed by the toxic took >= 50 ms; the toxic acted when the proxy read
        # its byte, about when it was sent: the effect time is that send minus the call start.
        slowed = [start for start, took in log if took >= 0.049]
        first = min(slowed) if slowed else None
        results.append(
            {
                "api_call_ms": round((returned - called) * 1000, 3),
                "effect_ms": None if first is None else round((first - called) * 1000, 3),
            }
        )
    return results


async def main_async(args) -> dict:
    state = Path(tempfile.mkdtemp(prefix="chaos-tui-proxybench-", dir="/tmp"))
    client = AgentClient(Settings(state_dir=state))
    sink_port, echo_port, servers = start_servers()
    try:
        await client.ensure()
        sink_proxy = await client._ok(
            "POST", "/proxies", {"name": "sink", "upstream": f"127.0.0.1:{sink_port}"}
        )
        echo_proxy = await client._ok(
            "POST", "/proxies", {"name": "echo", "upstream": f"127.0.0.1:{echo_port}"}
        )
        sink_via = int(sink_proxy["listen"].rsplit(":", 1)[1])
        echo_via = int(echo_proxy["listen"].rsplit(":", 1)[1])

        await throughput(sink_port, 20)  # warm both paths up
        await throughput(sink_via, 20)
        direct_mbs = await throughput(sink_port, args.megabytes)
        proxy_mbs = await throughput(sink_via, args.megabytes)
        await pings(echo_port, 200)
        await pings(echo_via, 200)
        direct = await pings(echo_port, args.pings)
        via = await pings(echo_via, args.pings)
        effects = await toxic_effect(client, "echo", echo_via, args.toxic_tries)
        measured = [e["effect_ms"] for e in effects if e["effect_ms"] is not None]
        return {
            "benchmark": "proxy_bench",
            "throughput_mb_per_s": {
                "direct": round(direct_mbs, 1),
                "proxy": round(proxy_mbs, 1),
                "ratio": round(proxy_mbs / direct_mbs, 3),
                "goal_ratio": 0.5,
            },
            "round_trip_us": {
                "direct": {"p50": round(pct(direct, 50), 1), "p99": round(pct(direct, 99), 1)},
                "proxy": {"p50": round(pct(via, 50), 1), "p99": round(pct(via, 99), 1)},
                "added_p50": round(pct(via, 50) - pct(direct, 50), 1),
                "added_p99": round(pct(via, 99) - pct(direct, 99), 1),
                "goal_added_p50": 100,
            },
            "toxic_effect_ms": {
                "tries": effects,
                "worst": max(measured) if measured else None,
                "median": statistics.median(measured) if measured else None,
                "goal": 5,
            },
            "meets_goals": {
                "throughput": proxy_mbs / direct_mbs >= 0.5,
                "added_p50": pct(via, 50) - pct(direct, 50) <= 100,
                "toxic_effect": bool(measured) and max(measured) <= 5,
            },
        }
    finally:
        servers.stdin.close()  # our own child: it exits when its stdin closes
        servers.wait(10)
        client.stop_spawned()
        shutil.rmtree(state, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--pings", type=int, default=3000)
    parser.add_argument("--toxic-tries", type=int, default=5)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve_forever())
        return 0
    report = asyncio.run(main_async(args))
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
