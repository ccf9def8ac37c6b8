"""One agent proxy carrying 1,000 concurrent low-rate connections, repeated in rounds.

    python benchmarks/connection_scale.py [--rounds 5] [--connections 1000] [--rate 1]
                                          [--phase-s 4] [--output FILE]

Each round opens the connections (to an echo server in a process of its own) directly and
through one proxy, and measures, direct and proxied in turn (the order alternating by round):
- added round trip p99 under that load: each connection sends a 1-byte echo `--rate` times a
  second at random moments for `--phase-s` seconds; the proxied p99 minus the direct p99 of the
  same round (goal < 2 ms);
- toxic effect on every connection: a 200 ms latency toxic added (AgentClient.create_lease)
  while all proxied connections ping; from the call's start to the moment after which no
  ping on any connection got through unslowed: the later of the last unslowed ping's send
  and the first slowed reply's arrival at the proxy (its end less 200 ms) (goal <= 50 ms);
- descriptor leak: the agent's open fds (/proc/PID/fd) before the round's connections and
  after they are all closed, half by the client and half by the server (goal 0).

It raises its own RLIMIT_NOFILE soft limit (the agent it starts inherits it), starts its own
agent in a temporary state directory, and stops everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from figures import document, emit, figure, percentile
from proxy_bench import make_proxy, stop_everything

from chaos_tui.agent.client import AgentClient
from chaos_tui.settings import Settings

TOXIC_LATENCY_S = 0.2
CLOSE = b"Q"  # asks the echo server to close the connection from its side
FDS_NEEDED = 8192


def fast_loop_run(main) -> object:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


async def serve_forever() -> None:
    """The echo server, in a process of its own: echoes, closes on CLOSE."""

    async def echo(reader, writer):
        try:
            while data := await reader.read(4096):
                if CLOSE in data:
                    break
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0, backlog=2048)
    print(json.dumps(server.sockets[0].getsockname()[1]), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until stdin closes


class Relayed(asyncio.Protocol):
    """The least a relay in Python can do: each read written to the other socket."""

    peer: asyncio.Transport | None = None

    def connection_made(self, transport):
        self.transport = transport
        self.early: list[bytes] = []  # read before upstream answered

    def data_received(self, data):
        if self.peer is not None:
            self.peer.write(data)
        else:
            self.early.append(data)

    def connection_lost(self, exc):
        if self.peer is not None:
            self.peer.close()


async def serve_minimal_relay(upstream_port: int) -> None:
    """The reference for the proxy's cost: a bare relay (no toxics, no API, no agent) in a
    process of its own, on the agent's loop (uvloop), one protocol pair per connection."""
    loop = asyncio.get_running_loop()

    class Client(Relayed):
        def connection_made(self, transport):
            super().connection_made(transport)
            self.dialling = loop.create_task(self.dial())

        async def dial(self):
            _, server = await loop.create_connection(Relayed, "127.0.0.1", upstream_port)
            server.peer, self.peer = self.transport, server.transport
            for data in self.early:
                self.peer.write(data)

    relay = await loop.create_server(Client, "127.0.0.1", 0, backlog=2048)
    print(json.dumps(relay.sockets[0].getsockname()[1]), flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until stdin closes


def start_server(*serve: str) -> tuple[int, subprocess.Popen]:
    """The echo server (or with "--relay PORT" the minimal relay) in a process of its own."""
    proc = subprocess.Popen(
        [sys.executable, __file__, *(serve or ["--serve"])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    return int(json.loads(proc.stdout.readline())), proc


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = FDS_NEEDED if hard == resource.RLIM_INFINITY else min(FDS_NEEDED, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Pingers:
    """`count` connections to one port, each pinging at random moments while `active`."""

    def __init__(self, port: int, count: int, rate: float) -> None:
        self.port = port
        self.count = count
        self.period = 1 / rate
        self.conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.log: list[tuple[int, float, float]] = []  # (connection, start, end)
        self.active = False
        self.tasks: list[asyncio.Task] = []

    async def open(self) -> None:
        async def one():
            return await asyncio.open_connection("127.0.0.1", self.port)

        for at in range(0, self.count, 100):  # in batches: a burst of SYNs is not the point
            self.conns += await asyncio.gather(
                *(one() for _ in range(at, min(self.count, at + 100)))
            )
        self.tasks = [asyncio.create_task(self._ping(i)) for i in range(len(self.conns))]

    async def _ping(self, i: int) -> None:
        reader, writer = self.conns[i]
        await asyncio.sleep(random.uniform(0, self.period))
        while True:
            if self.active:
                started = time.perf_counter()
                writer.write(b"!")
                await reader.readexactly(1)
                self.log.append((i, started, time.perf_counter()))
            await asyncio.sleep(random.uniform(0.5, 1.5) * self.period)

    async def phase(self, seconds: float) -> list[tuple[int, float, float]]:
        self.log = []
        self.active = True
        await asyncio.sleep(seconds)
        self.active = False
        await asyncio.sleep(0.3)  # the pings in flight come back
        return self.log

    async def close(self) -> None:
        """Half closed by us, half by the server (we then close on its EOF)."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for i, (_, writer) in enumerate(self.conns):
            if i % 2:
                writer.write(CLOSE)
            else:
                writer.close()
        for i, (reader, writer) in enumerate(self.conns):
            if i % 2:
                try:
                    await asyncio.wait_for(reader.read(), 5)
                except (TimeoutError, ConnectionError):
                    pass
                writer.close()
        self.conns = []


def round_trips(log: list[tuple[int, float, float]]) -> list[float]:
    return [(end - start) * 1000 for _, start, end in log]


async def toxic_effect(client: AgentClient, proxy: str, pingers: Pingers) -> tuple[float, float]:
    """(ms from the API call's start until no ping on any connection got through unslowed,
    ms the API call took)."""
    pingers.log = []
    pingers.active = True
    await asyncio.sleep(1.0)
    called = time.perf_counter()
    lease = await client.create_lease(
        kind="proxy.toxic",
        ttl_s=30,
        params={
            "proxy": proxy,
            "type": "latency",
            "attributes": {"latency": TOXIC_LATENCY_S * 1000},
        },
    )
    returned = time.perf_counter()
    await asyncio.sleep(2 * TOXIC_LATENCY_S + 1.0)
    pingers.active = False
    await asyncio.sleep(TOXIC_LATENCY_S + 0.3)
    await client.heal_lease(lease.id)
    log = pingers.log
    # A reply passes the proxy between its ping's send and its receipt. One that got
    # through unslowed was sent before the toxic acted on its connection: the last such send
    # (over all connections, about a thousand a second) bounds when it acted on every one; a
    # reply the client read late (its loop busy) does not bend that. The first slowed reply
    # reached the proxy at its end less the latency: it bounds when the toxic first acted.
    slowed = [
        end - TOXIC_LATENCY_S for _, start, end in log if end - start >= TOXIC_LATENCY_S * 0.98
    ]
    unslowed = [start for _, start, end in log if end - start < TOXIC_LATENCY_S * 0.98]
    if not slowed:
        raise RuntimeError("no round trip was slowed by the toxic")
    last_unslowed = max((start for start in unslowed if start >= called), default=called)
    return (max(min(slowed), last_unslowed) - called) * 1000, (returned - called) * 1000


async def wait_closed(client: AgentClient, proxy: str, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (await client._ok("GET", f"/proxies/{proxy}"))["connections"] == 0:
            return
        await asyncio.sleep(0.1)


async def main_async(args) -> dict:
    raise_fd_limit()
    state = Path(tempfile.mkdtemp(prefix="chaos-tui-connscale-", dir="/tmp"))
    client = AgentClient(Settings(state_dir=state))
    echo_port, server = start_server()
    minimal_port, minimal = start_server("--relay", str(echo_port))
    try:
        await client.ensure()
        info = client.info()
        assert info is not None
        agent_pid = int(info["pid"])
        via = await make_proxy(client, "scale", echo_port)
        added, effects, calls, leaks = [], [], [], []
        p99s: dict[str, list[float]] = {"direct": [], "proxy": [], "minimal": []}
        added_minimal: list[float] = []
        for round_no in range(args.rounds):
            await asyncio.sleep(0.5)  # the API connections of the last round are gone
            fds_before = open_fds(agent_pid)
            pingers = {
                "direct": Pingers(echo_port, args.connections, args.rate),
                "proxy": Pingers(via, args.connections, args.rate),
                "minimal": Pingers(minimal_port, args.connections, args.rate),
            }
            for each in pingers.values():
                await each.open()
            await asyncio.sleep(1.0)  # steady state: not the burst of dials that opened them
            order = ["direct", "proxy", "minimal"]
            order = order[round_no % 3 :] + order[: round_no % 3]
            for case in order:
                p99s[case].append(
                    percentile(round_trips(await pingers[case].phase(args.phase_s)), 99)
                )
            added.append(p99s["proxy"][-1] - p99s["direct"][-1])
            added_minimal.append(p99s["minimal"][-1] - p99s["direct"][-1])
            effect, call = await toxic_effect(client, "scale", pingers["proxy"])
            effects.append(effect)
            calls.append(call)
            for each in pingers.values():
                await each.close()
            await wait_closed(client, "scale")
            await asyncio.sleep(0.5)
            leaks.append(open_fds(agent_pid) - fds_before)
        load = f"{args.connections} connections, {args.rate:g} pings/s each"
        return document(
            "connection_scale",
            [
                figure(
                    "proxy added round trip p99 at scale",
                    added,
                    "ms",
                    goal=2,
                    note=f"{load}, proxied p99 minus direct p99 of the same round",
                ),
                figure(
                    "proxy toxic effect on every connection",
                    effects,
                    "ms",
                    goal=50,
                    note=f"{load}: API call start until no reply got through unslowed",
                ),
                figure(
                    "minimal relay added round trip p99 at scale",
                    added_minimal,
                    "ms",
                    note=f"{load}: a bare uvloop relay in a process of its own (the limit), "
                    "no goal",
                ),
                figure("proxy toxic API call at scale", calls, "ms", note=f"{load}, no goal"),
                figure(
                    "proxy fds leaked after closing",
                    leaks,
                    "fds",
                    goal=0,
                    note=f"agent's open fds after minus before {args.connections} connections "
                    "(half closed by the client, half by the server)",
                ),
            ],
            rounds=args.rounds,
            connections=args.connections,
            round_trip_p99_ms={k: [round(v, 3) for v in vs] for k, vs in p99s.items()},
        )
    finally:
        assert minimal.stdin is not None
        minimal.stdin.close()
        minimal.wait(10)
        stop_everything(server, client, state)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=1.0, help="pings per second per connection")
    parser.add_argument("--phase-s", type=float, default=4.0)
    parser.add_argument("--output", type=Path, help="write the JSON here as well")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--relay", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        fast_loop_run(serve_forever())
        return 0
    if args.relay:
        fast_loop_run(serve_minimal_relay(args.relay))
        return 0
    emit(fast_loop_run(main_async(args)), args.output)  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
