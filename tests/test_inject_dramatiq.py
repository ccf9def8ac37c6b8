"""Worker injectors in real Dramatiq workers on a real Valkey, granted by a real agent: the
scope picks exactly the messages it says (a stable half of one actor, never another actor),
and delay, partial and crash each do what they say to real deliveries."""

from __future__ import annotations

import asyncio
import math
import time

import dramatiq
import pytest
import redis

from chaos_tui.inject import CRASH_EXIT_CODE, checkpoint
from chaos_tui.inject.core import percent_pick
from chaos_tui.inject.dramatiq import ChaosMiddleware
from tests.inject_support import (
    CRASH_ACTOR,
    Outcomes,
    broker_on,
    dramatiq_worker,
    grant,
    own_agent,
    until,
    valkey,
    worker_for,
    worker_process,
)

__all__ = ["own_agent"]  # a fixture


@pytest.fixture
def valkey_port():
    with valkey() as port:
        yield port


async def test_half_of_one_actor_by_message_id_within_a_binomial_bound(own_agent):
    lease = await grant(own_agent, {"kind": "fail", "scope": {"actor": "a", "percent": 50}})
    with worker_for(own_agent) as worker:
        await until(lambda: worker.live_count() == 1, 3, "the worker sees the injector")
        ids = [f"msg-{i:04d}" for i in range(1000)]
        hit_a = {m for m in ids if worker.decide("default", "a", m) is not None}
        hit_b = {m for m in ids if worker.decide("default", "b", m) is not None}
        again = {m for m in ids if worker.decide("default", "a", m) is not None}
    assert hit_b == set(), "another actor is never hit"
    sigma = math.sqrt(1000 * 0.5 * 0.5)  # ~15.8
    assert abs(len(hit_a) - 500) <= 4 * sigma, len(hit_a)
    assert again == hit_a, "the same messages on every delivery (a retry is picked again)"
    assert hit_a == {m for m in ids if percent_pick(lease.id, m) < 50}


async def test_a_real_worker_fails_exactly_the_picked_messages(own_agent, valkey_port):
    lease = await grant(own_agent, {"kind": "fail", "scope": {"actor": "a", "percent": 50}})
    outcomes = Outcomes()
    client = worker_for(own_agent)
    broker = broker_on(valkey_port, outcomes.middleware, ChaosMiddleware(client))
    ran: list[str] = []

    @dramatiq.actor(actor_name="a", broker=broker, max_retries=0)
    def a(i: int) -> None:
        ran.append(f"a{i}")

    @dramatiq.actor(actor_name="b", broker=broker, max_retries=0)
    def b(i: int) -> None:
        ran.append(f"b{i}")

    await until(lambda: client.live_count() == 1, 3, "the worker sees the injector")
    sent_a = [a.send(i).message_id for i in range(200)]
    for i in range(100):
        b.send(i)
    with dramatiq_worker(broker):
        await until(lambda: outcomes.count() == 300, 60, "300 deliveries", every=0.1)
    client.stop()
    picked = {m for m in sent_a if percent_pick(lease.id, m) < 50}
    assert outcomes.failed("a") == picked and outcomes.failed("b") == set()
    assert len(ran) == 300 - len(picked) and client.counts() == {"fail": len(picked)}
    dead = redis.Redis(port=valkey_port).zcard("dramatiq:default.XQ")
    assert dead == len(picked), "max_retries=0: each failure is dead-lettered once"


async def test_delay_holds_only_the_actor_in_scope(own_agent, valkey_port):
    await grant(own_agent, {"kind": "delay", "delay_ms": 400, "scope": {"actor": "slow"}})
    client = worker_for(own_agent)
    broker = broker_on(valkey_port, ChaosMiddleware(client))
    waited: dict[str, float] = {}

    @dramatiq.actor(actor_name="slow", broker=broker)
    def slow(sent: float) -> None:
        waited["slow"] = time.time() - sent

    @dramatiq.actor(actor_name="quick", broker=broker)
    def quick(sent: float) -> None:
        waited["quick"] = time.time() - sent

    await until(lambda: client.live_count() == 1, 3, "the worker sees the injector")
    with dramatiq_worker(broker):
        slow.send(time.time())
        quick.send(time.time())
        await until(lambda: len(waited) == 2, 10, "both ran")
    client.stop()
    assert waited["slow"] >= 0.4 and waited["quick"] < 0.4, waited
    assert client.counts() == {"delay": 1}


async def test_partial_stops_at_the_checkpoint_or_cuts_after_the_actor(own_agent, valkey_port):
    """then=fail: an actor that calls checkpoint() stops there; one that never does runs to
    its end and its delivery is failed anyway, so it is retried and its side effects repeat
    (what at-least-once means). Both end in the dead letters after their retries."""
    lease = await grant(own_agent, {"kind": "partial", "then": "fail"})
    outcomes = Outcomes()
    client = worker_for(own_agent)
    broker = broker_on(valkey_port, outcomes.middleware, ChaosMiddleware(client))
    marks: list[str] = []

    @dramatiq.actor(actor_name="halfway", broker=broker, max_retries=2)
    def halfway() -> None:
        marks.append("halfway started")
        checkpoint()
        marks.append("halfway finished")

    @dramatiq.actor(actor_name="oblivious", broker=broker, max_retries=2)
    def oblivious() -> None:
        marks.append("oblivious ran")

    await until(lambda: client.live_count() == 1, 3, "the worker sees the injector")
    halfway.send()
    oblivious.send()
    with dramatiq_worker(broker):
        await until(lambda: outcomes.count() == 6, 20, "3 deliveries each", every=0.05)
        assert sorted(marks) == ["halfway started"] * 3 + ["oblivious ran"] * 3
        assert len(outcomes.failed()) == 2 and client.counts() == {"partial": 6}
        # The outcome is recorded as the worker finishes a delivery; the broker moves the
        # message to the dead letters just after that: wait for both to land there.
        dead = redis.Redis(port=valkey_port)
        await until(lambda: dead.zcard("dramatiq:default.XQ") == 2, 5, "both dead-lettered")
        # Healed: the next deliveries run whole.
        assert await own_agent.heal_lease(lease.id)
        await until(lambda: client.live_count() == 0, 3, "the worker sees the heal")
        halfway.send()
        oblivious.send()
        await until(lambda: outcomes.count() == 8, 10, "two more deliveries", every=0.05)
    client.stop()
    assert marks.count("halfway finished") == 1 and marks.count("oblivious ran") == 4


async def test_partial_hang_holds_the_delivery_then_fails_it(own_agent, valkey_port):
    await grant(own_agent, {"kind": "partial", "then": "hang", "hang_ms": 300})
    outcomes = Outcomes()
    client = worker_for(own_agent)
    broker = broker_on(valkey_port, outcomes.middleware, ChaosMiddleware(client))
    began: list[float] = []

    @dramatiq.actor(actor_name="hangs", broker=broker, max_retries=0)
    def hangs() -> None:
        began.append(time.monotonic())
        checkpoint()

    await until(lambda: client.live_count() == 1, 3, "the worker sees the injector")
    hangs.send()
    with dramatiq_worker(broker):
        await until(lambda: outcomes.count() == 1, 10, "the delivery ended")
    ended = time.monotonic()
    client.stop()
    assert ended - began[0] >= 0.3 and len(outcomes.failed()) == 1


@pytest.mark.parametrize(
    "at, work_seen",
    [("start", set()), ("checkpoint", {"started"}), ("after", {"started", "finished"})],
)
async def test_crash_kills_the_worker_process_mid_job(own_agent, valkey_port, at, work_seen):
    """Before the actor, half-way through it (its checkpoint), or after its work and before
    the ack: the process dies there and the message is not acked."""
    await grant(own_agent, {"kind": "crash", "at": at, "scope": {"actor": CRASH_ACTOR}})
    worker, errors = worker_process("dramatiq", valkey_port, own_agent)
    try:
        assert worker.stdout.readline().strip() == "worker ready"
        await asyncio.sleep(0.6)  # its first polls
        broker = broker_on(valkey_port)
        job = dramatiq.actor(actor_name=CRASH_ACTOR, broker=broker)(lambda job: None)
        job.send("job-1")
        code = await asyncio.to_thread(worker.wait, 20)
        assert code == CRASH_EXIT_CODE, errors.read_text()[-2000:]
        assert "crash injector" in errors.read_text()
        marks = redis.Redis(port=valkey_port)
        seen = {name for name in ("started", "finished") if marks.smembers(name)}
        assert seen == work_seen, f"crash at {at}: the actor got to {seen}"
        # Not acked: the message stays with the dead worker until the broker requeues it.
        assert any(k.startswith(b"dramatiq:__acks__") for k in marks.keys("dramatiq:*"))
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(5)


async def test_real_workers_stop_injecting_at_the_ttl_with_the_agent_sigkilled(
    own_agent, valkey_port
):
    """Two real Dramatiq workers on Valkey fail every message of actor `a` under a 3 s
    injector; the agent and its guardian are SIGKILLed right after the grant. The worker that
    trusts its last answer (stale_s 30) keeps failing messages until the TTL, on its own
    clock, and not past it (1 s at most); the default one stops within a second of the kill.
    Each delivery's outcome and time come from the workers themselves."""
    from dramatiq.middleware import Middleware

    from tests.inject_support import kill_agent_and_watch

    class Timed(Middleware):
        def __init__(self) -> None:
            self.failed: list[float] = []
            self.done: list[float] = []

        def after_process_message(self, broker, message, *, result=None, exception=None):
            (self.failed if exception is not None else self.done).append(time.time())

    workers, records, actors = [], [], []
    for queue, stale_s in (("trusting", 30.0), ("default", 1.0)):
        client = worker_for(own_agent, stale_s=stale_s)
        timed = Timed()
        broker = broker_on(valkey_port, timed, ChaosMiddleware(client))
        actors.append(
            dramatiq.actor(actor_name="a", queue_name=queue, broker=broker, max_retries=0)(
                lambda i: None
            )
        )
        workers.append((client, broker))
        records.append(timed)
    fail_a = {"kind": "fail", "scope": {"actor": "a"}}
    lease = await grant(own_agent, fail_a, ttl_s=3, orphan_ok=True)
    with dramatiq_worker(workers[0][1], threads=2), dramatiq_worker(workers[1][1], threads=2):
        for client, _ in workers:
            await until(lambda c=client: c.live_count() == 1, 3, "the worker sees it")

        async def send_until(t: float) -> None:
            i = 0
            while time.time() < t:
                for actor in actors:
                    actor.send(i)
                i += 1
                await asyncio.sleep(0.05)

        sending = asyncio.create_task(send_until(lease.expires_at + 2.0))
        killed_at, _ = await kill_agent_and_watch(own_agent, [], time.time())
        await sending
        await until(
            lambda: all(r.done and r.done[-1] > lease.expires_at + 1.5 for r in records),
            5,
            "the last messages done",
        )
    trusting, default = records
    assert trusting.failed and max(trusting.failed) > killed_at + 1.5, "it trusted its answer"
    assert max(trusting.failed) <= lease.expires_at + 1.0, "the TTL holds on the worker's clock"
    assert max(default.failed) <= killed_at + 1.0 + 0.2, "no agent: off within stale_s"
    for client, _ in workers:
        client.stop()
    # A new agent heals the journalled lease before it serves (nothing left behind).
    await until(lambda: own_agent.info() is None, 5, "the agent gone", every=0.1)
    await own_agent.ensure()
    assert [r.id for r in (await own_agent.status()).recovered] == [lease.id]
