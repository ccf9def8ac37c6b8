"""How the agent copes with many live leases: heal lateness, API latency and memory.

    python benchmarks/lease_scale.py [--sizes 10,100,500,1000] [--rounds 3]
                                     [--window 10] [--output FILE]

One run ("a size") is: a fresh agent in its own temporary state directory, one agent proxy
(listening on loopback, relaying to port 9, never connected to), and N leases of kind
`proxy.toxic` (a 1 ms latency toxic on that proxy), created by 4 concurrent callers, owned
by this process (so the agent's dead man's switch watches them, as it does for the
console's). The toxic is the lightest real fault: adding and removing it is a dict operation
in the agent, it needs no root and touches nothing outside the benchmark.

Each lease gets a random TTL: its expiry is drawn uniformly from a window of --window
seconds that opens once all N should exist (2 s + 10 ms a lease after the first create), and
its TTL is the time from its create to that expiry (at least 1 s). So all N are live at once
(`peak_live` in the details says whether they were), then fall due at N per window: 100 a
second at 1,000. The agent heals each by itself.

While leases live, a poller calls GET /leases and GET /status in turn every 50 ms.

Measured per run:
- heal lateness: from the agent's own history (history.jsonl, written as each heal ends),
  `ended_at - expires_at` of every lease it healed at its TTL (`by: ttl`); p99 per run.
  Goal at 1,000 leases: p99 at most 100 ms;
- API latency: p99 of GET /leases, GET /status and POST /leases (the creates), timed by
  one client with kept-alive connections. Goal at 1,000 leases: p99 under 50 ms each;
- memory: the agent's peak RSS (VmHWM) at the end of the run. Goal at 1,000: under 150 MB.

Sizes are interleaved (10, 100, 500, 1000, 10, 100, ...) for --rounds rounds; each figure
is the median over the rounds of the per-run value, with its spread. Only the largest size
carries the goals; the smaller ones draw the curve. The defaults take about 4 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from figures import document, emit, figure, percentile

from chaos_tui.agent import protocol as p
from chaos_tui.agent.client import AgentClient
from chaos_tui.settings import Settings

HEAL_LATENESS_GOAL_MS = 100.0
API_P99_GOAL_MS = 50.0
RSS_GOAL_MB = 150.0
POLL_EVERY_S = 0.05
SETTLE_S = 30.0  # past the last expiry, how long we wait for the last heals before giving up
CREATORS = 4  # concurrent POST /leases callers
WINDOW_OPENS_S = 2.0  # the expiry window opens this long after the first create...
WINDOW_OPENS_PER_LEASE_S = 0.01  # ...and this much later for each lease to create
MIN_TTL_S = 1.0


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


async def timed(calls: list[float], request) -> httpx.Response:
    started = time.perf_counter()
    response = await request
    calls.append((time.perf_counter() - started) * 1000)
    response.raise_for_status()
    return response


async def poll(http: httpx.AsyncClient, lists: list[float], statuses: list[float], stop) -> None:
    """GET /leases and GET /status in turn, every POLL_EVERY_S, until told to stop."""
    turn = 0
    while not stop.is_set():
        if turn % 2 == 0:
            await timed(lists, http.get(p.LEASES))
        else:
            await timed(statuses, http.get(p.STATUS))
        turn += 1
        try:
            await asyncio.wait_for(stop.wait(), POLL_EVERY_S)
        except TimeoutError:
            pass


async def create(http: httpx.AsyncClient, expiries: list[float], creates: list[float]) -> None:
    """Create leases until `expiries` is used up, each falling due at the time drawn for
    it (its TTL counted from now; at least MIN_TTL_S if creating took longer than planned)."""
    while expiries:
        due = expiries.pop()
        body = {
            "kind": "proxy.toxic",
            "target": "proxy",
            "params": {"proxy": "bench", "type": "latency", "attributes": {"latency": 1}},
            "ttl_s": round(max(MIN_TTL_S, due - time.time()), 3),
            "owner_pid": os.getpid(),
            "owner": "lease_scale benchmark",
        }
        await timed(creates, http.post(p.LEASES, json=body))


async def one_run(size: int, window_s: float, rng: random.Random) -> dict[str, Any]:
    state_dir = Path(tempfile.mkdtemp(prefix="chaos-lease-scale-"))
    agent = AgentClient(Settings(state_dir=state_dir))
    await agent.ensure()
    try:
        info = agent.info()
        assert info is not None
        headers = {"Authorization": f"Bearer {agent.token()}"}
        async with httpx.AsyncClient(base_url=info["url"], headers=headers, timeout=60) as http:
            made = await http.post(
                p.PROXIES, json={"name": "bench", "upstream": "127.0.0.1:9"}
            )  # port 9 (discard): never dialled, nothing there is touched
            made.raise_for_status()
            lists: list[float] = []
            statuses: list[float] = []
            creates: list[float] = []
            stop = asyncio.Event()
            poller = asyncio.create_task(poll(http, lists, statuses, stop))
            started = time.time()
            # Expiries fall uniformly in a window that opens once every lease should exist,
            # so all N are live together and then fall due at N per window.
            opens = started + WINDOW_OPENS_S + size * WINDOW_OPENS_PER_LEASE_S
            expiries = [opens + rng.uniform(0, window_s) for _ in range(size)]
            last_expiry = max(expiries)
            await asyncio.gather(*(create(http, expiries, creates) for _ in range(CREATORS)))
            create_s = time.time() - started
            peak_live = 0
            deadline = last_expiry + SETTLE_S
            while time.time() < deadline:
                live = (await http.get(p.STATUS)).json()["leases"]
                peak_live = max(peak_live, live)
                if live == 0 and time.time() > last_expiry:
                    break
                await asyncio.sleep(0.25)
            stop.set()
            await poller
            rss = peak_rss_mb(info["pid"])
        ended = agent.ended_since(started)
    finally:
        agent.stop_spawned()
        shutil.rmtree(state_dir, ignore_errors=True)
    late = [(e.ended_at - e.expires_at) * 1000 for e in ended.values() if e.by == "ttl"]
    others = sum(1 for e in ended.values() if e.by != "ttl")
    if len(late) != size:
        print(
            f"lease_scale: {size} leases, {len(late)} healed at their TTL, {others} otherwise",
            file=sys.stderr,
        )
    return {
        "size": size,
        "healed_at_ttl": len(late),
        "ended_otherwise": others,
        "heal_late_p50_ms": round(percentile(late, 50), 2) if late else None,
        "heal_late_p99_ms": round(percentile(late, 99), 2) if late else None,
        "heal_late_max_ms": round(max(late), 2) if late else None,
        "list_p50_ms": round(percentile(lists, 50), 2),
        "list_p99_ms": round(percentile(lists, 99), 2),
        "status_p50_ms": round(percentile(statuses, 50), 2),
        "status_p99_ms": round(percentile(statuses, 99), 2),
        "create_p50_ms": round(percentile(creates, 50), 2),
        "create_p99_ms": round(percentile(creates, 99), 2),
        "api_calls": len(lists) + len(statuses) + len(creates),
        "create_all_s": round(create_s, 2),
        "peak_live": peak_live,
        "peak_rss_mb": round(rss, 1),
    }


# What each run reports, as figures: (run key, label, unit, goal at the largest size, note).
MEASURES = (
    (
        "heal_late_p99_ms",
        "heal lateness p99",
        "ms",
        HEAL_LATENESS_GOAL_MS,
        "history ended_at - expires_at, leases healed at their TTL; p99 per run",
    ),
    ("list_p99_ms", "GET /leases p99", "ms", API_P99_GOAL_MS, "while the leases live"),
    ("status_p99_ms", "GET /status p99", "ms", API_P99_GOAL_MS, "while the leases live"),
    ("create_p99_ms", "POST /leases p99", "ms", API_P99_GOAL_MS, "journalled, applied"),
    ("peak_rss_mb", "agent peak RSS", "MB", RSS_GOAL_MB, "VmHWM at the end of the run"),
)


def figures_for(runs: list[dict[str, Any]], sizes: list[int]) -> list[dict[str, Any]]:
    """Each measure at each size, over the rounds; the goals only at the largest size."""
    made = []
    for size in sizes:
        mine = [r for r in runs if r["size"] == size]
        for key, label, unit, goal, note in MEASURES:
            values = [r[key] for r in mine if r[key] is not None]
            if values:
                made.append(
                    figure(
                        f"{label} at {size} leases",
                        values,
                        unit,
                        goal=goal if size == max(sizes) else None,
                        note=note,
                    )
                )
    return made


async def run(sizes: list[int], rounds: int, window_s: float, seed: int) -> list[dict]:
    rng = random.Random(seed)
    runs = []
    for turn in range(rounds):
        for size in sizes:  # interleaved: a burst of load from elsewhere hits every size
            result = await one_run(size, window_s, rng)
            print(f"lease_scale: round {turn + 1}: {json.dumps(result)}", file=sys.stderr)
            runs.append(result)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,500,1000", help="lease counts to run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each size (default 3)")
    parser.add_argument(
        "--window", type=float, default=10.0, help="seconds over which the leases expire"
    )
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--output", type=Path, help="write the JSON here as well")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not sizes or min(sizes) < 1 or args.rounds < 1 or args.window <= 0:
        parser.error("sizes and rounds must be at least 1, the window above 0")
    runs = asyncio.run(run(sizes, args.rounds, args.window, args.seed))
    doc = document(
        "lease_scale",
        figures_for(runs, sizes),
        sizes=sizes,
        rounds=args.rounds,
        window_s=args.window,
        creators=CREATORS,
        fault="proxy.toxic latency 1 ms on an idle agent proxy, owner_pid = this process",
        runs=runs,
    )
    emit(doc, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
