"""What the worker injectors cost a Dramatiq worker when no injector is live, in one run.

    python benchmarks/queue_bench.py [--rounds 7] [--path-messages 20000]
                                     [--worker-messages 1500] [--output FILE]

Both cases use the same broker set-up (a RedisBroker on a Valkey of our own, Dramatiq's default
middleware) and differ only by ChaosMiddleware, whose InjectorClient polls a real agent (its
own temporary state dir) holding no lease: the poll thread runs, as in production. The two
cases are interleaved round by round (the order alternates), and each figure is the median of
the rounds, with the spread (min-max).

- message_path: Dramatiq's per-message path run in this process, as Worker.process_message
  runs it (emit_before process_message, the actor call, emit_after), over real messages
  built by the actor (no network: the number isolates what the middleware adds); each round
  alternates the two cases in 20 short chunks and keeps each case's median chunk;
- worker: a real dramatiq.Worker (1 worker thread) consuming pre-enqueued messages from
  Valkey, timed from the first actor call to the last (network and Valkey included, so it is
  noisier: the difference there is reported, the goal is judged on message_path).

- decide_alone_ns: InjectorClient.decide() alone with nothing live (5 timings).

Goal: under 20 µs per message added (no injector live), judged on the median over the rounds
of message_path's per-round difference (with minus without, the pair measured under the same
load). The defaults are what run_all runs: 96 s on the 2-core machine (load 1-2).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dramatiq  # noqa: E402
from dramatiq.broker import MessageProxy  # noqa: E402
from dramatiq.brokers.redis import RedisBroker  # noqa: E402
from figures import RESULTS, document, emit, figure  # noqa: E402

from chaos_tui.agent.client import AgentClient  # noqa: E402
from chaos_tui.inject.core import InjectorClient  # noqa: E402
from chaos_tui.inject.dramatiq import ChaosMiddleware  # noqa: E402
from chaos_tui.settings import Settings  # noqa: E402
from tests.inject_support import valkey  # noqa: E402

GOAL_US = 20.0
CHUNKS = 20  # per round, alternating


def make_broker(port: int, client: InjectorClient | None) -> tuple[RedisBroker, dramatiq.Actor]:
    broker = RedisBroker(url=f"redis://127.0.0.1:{port}/0")
    if client is not None:
        broker.add_middleware(ChaosMiddleware(client))
    done = {"n": 0, "first": 0.0, "last": 0.0}

    @dramatiq.actor(actor_name="bench", broker=broker, max_retries=0)
    def bench(i: int) -> None:
        now = time.perf_counter()
        if done["n"] == 0:
            done["first"] = now
        done["n"] += 1
        done["last"] = now

    bench.done = done  # type: ignore[attr-defined]
    return broker, bench


def path_us(broker: RedisBroker, actor: dramatiq.Actor, messages: int) -> float:
    """µs per message through emit_before / actor / emit_after, as the worker calls them."""
    proxies = [MessageProxy(actor.message(i)) for i in range(messages)]
    start = time.perf_counter()
    for message in proxies:
        broker.emit_before("process_message", message)
        result = actor(*message.args, **message.kwargs)
        broker.emit_after("process_message", message, result=result)
    return (time.perf_counter() - start) / messages * 1e6


def worker_us(port: int, client: InjectorClient | None, messages: int) -> float:
    """µs per message for a real worker draining Valkey, first actor call to last. A broker
    of its own: a Worker adds its middleware to the broker for good."""
    broker, actor = make_broker(port, client)
    broker.flush_all()
    actor.done.update(n=0, first=0.0, last=0.0)  # type: ignore[attr-defined]
    pipe = [actor.message(i) for i in range(messages)]
    for message in pipe:
        broker.enqueue(message)
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while actor.done["n"] < messages:  # type: ignore[attr-defined]
            if time.monotonic() > deadline:
                raise RuntimeError("the worker did not drain its queue in 120 s")
            time.sleep(0.01)
    finally:
        worker.stop(timeout=5000)
        broker.close()
    done = actor.done  # type: ignore[attr-defined]
    return (done["last"] - done["first"]) / (messages - 1) * 1e6


def decide_cost_ns(client: InjectorClient, calls: int = 200_000) -> list[float]:
    """ns per InjectorClient.decide() with nothing live, 5 timings."""
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            client.decide("default", "bench", "m")
        timings.append((time.perf_counter() - start) / calls * 1e9)
    return timings


def added(samples: dict[str, list[float]]) -> list[float]:
    """Per round: with minus without, the two measured back to back."""
    return [c - p for c, p in zip(samples["with"], samples["without"], strict=True)]


def summary(samples: dict[str, list[float]]) -> dict:
    plain, chaos = samples["without"], samples["with"]
    diffs = added(samples)
    return {
        "us_per_message_without": round(statistics.median(plain), 3),
        "us_per_message_with": round(statistics.median(chaos), 3),
        "us_added_per_message": round(statistics.median(diffs), 3),
        "rounds": len(plain),
    }


def run(args: argparse.Namespace) -> dict:
    load_start = [round(x, 2) for x in os.getloadavg()]
    state = Path(tempfile.mkdtemp(prefix="chaos-tui-queue-bench-"))
    agent = AgentClient(Settings(state_dir=state))
    try:
        asyncio.run(agent.ensure())
        client = InjectorClient.from_env({"CHAOS_STATE_DIR": str(state)})
        time.sleep(0.5)  # its first polls: the agent answers, nothing is live
        assert client.live_count() == 0 and client._reachable, "the client reaches the agent"
        with valkey() as port:
            clients = {"without": None, "with": client}
            cases = {name: make_broker(port, c) for name, c in clients.items()}
            path: dict[str, list[float]] = {"without": [], "with": []}
            real: dict[str, list[float]] = {"without": [], "with": []}
            for broker, actor in cases.values():  # warm-up, not counted
                path_us(broker, actor, 2000)
            for r in range(args.rounds):
                order = ["without", "with"] if r % 2 == 0 else ["with", "without"]
                # The path in short alternating chunks: the machine's load drifts slower than
                # a chunk takes, so each pair is compared under the same load.
                chunks: dict[str, list[float]] = {"without": [], "with": []}
                for c in range(CHUNKS):
                    for name in order if c % 2 == 0 else order[::-1]:
                        chunks[name].append(path_us(*cases[name], args.path_messages // CHUNKS))
                for name in order:
                    path[name].append(statistics.median(chunks[name]))
                for name in order:
                    real[name].append(worker_us(port, clients[name], args.worker_messages))
            for broker, _ in cases.values():
                broker.close()
        decide_ns = decide_cost_ns(client)
        client.stop()
        assert client.counts() == {}, "nothing was injected"
    finally:
        agent.stop_spawned()
        shutil.rmtree(state, ignore_errors=True)
    figures = [
        figure(
            "added per message, message path",
            added(path),
            "µs",
            goal=GOAL_US,
            note="ChaosMiddleware polling an agent, nothing live; per-round with - without",
        ),
        figure("message path without middleware", path["without"], "µs"),
        figure("message path with middleware", path["with"], "µs"),
        figure(
            "added per message, real worker",
            added(real),
            "µs",
            note="through Valkey: noisy, not judged",
        ),
        figure("real worker per message without", real["without"], "µs"),
        figure("real worker per message with", real["with"], "µs"),
        figure("InjectorClient.decide() alone", decide_ns, "ns"),
    ]
    return document(
        "queue",
        figures,
        what="worker injector overhead per Dramatiq message with no injector live",
        message_path={**summary(path), "messages_per_round": args.path_messages},
        worker={**summary(real), "messages_per_round": args.worker_messages},
        threads_alive=threading.active_count(),
        load_avg={"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]},
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (7)")
    parser.add_argument("--path-messages", type=int, default=20000)
    parser.add_argument("--worker-messages", type=int, default=1500)
    parser.add_argument("--output", type=Path, default=RESULTS / "queue.json")
    args = parser.parse_args()
    emit(run(args), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
