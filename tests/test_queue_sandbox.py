"""The sandbox's job queue (profile chaos-queue) with real processes: Valkey primary and
replica under three sentinels, the ledger, the Dramatiq job worker behind the agent's
proxies. One sandbox for the module, brought up and down through the CLI; the tests run in
order (up, a job, a failover, a latency toxic, down)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid

import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from chaos_tui.core.contracts import FaultLease
from chaos_tui.core.platform_target import BrokerLinkParams, ServiceFaultParams
from chaos_tui.platform import jobs
from chaos_tui.sandbox import valkey
from chaos_tui.sandbox.processes import descendants
from chaos_tui.sandbox.services import PROFILES
from chaos_tui.settings import Settings
from chaos_tui.targets.sandbox import SandboxTarget
from tests.conftest import clean_state_dir, env_for, run_cli

QUEUE_SERVICES = PROFILES["chaos-queue"]


class Queue:
    def __init__(self, state_dir) -> None:
        self.state_dir = state_dir
        self.env = env_for(state_dir)
        self.target = SandboxTarget(Settings(state_dir=state_dir))
        self.endpoints = self.target.endpoints()
        self.ledger = jobs.ledger_client(self.endpoints.queue_ledger_url)
        self.up = None

    def enqueue(self, count: int, work_ms: int = 5) -> str:
        """`count` jobs of one new run on the primary the sentinels name now."""
        run_id = uuid.uuid4().hex[:8]
        broker = jobs.producer(jobs.primary_client(self.endpoints.queue_sentinels))
        for i in range(count):
            broker.enqueue(jobs.job_message(run_id, f"job-{i}", work_ms))
        return run_id

    def completed(self, run_id: str, count: int, timeout_s: float = 20.0) -> list:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            entries = jobs.ledger_entries(self.ledger, run_id)
            if len(entries) >= count:
                return entries
            time.sleep(0.05)
        return jobs.ledger_entries(self.ledger, run_id)

    def latency(self, run_id: str, count: int, work_ms: int = 1) -> float:
        """The median time from enqueue to completion of `count` jobs, one after another."""
        broker = jobs.producer(jobs.primary_client(self.endpoints.queue_sentinels))
        took = []
        for i in range(count):
            started = time.time()
            broker.enqueue(jobs.job_message(run_id, f"job-{i}", work_ms, enqueued_at=started))
            entries = self.completed(run_id, i + 1)
            assert len(entries) == i + 1, f"job {i} was not done"
            took.append(entries[-1][3] - started)
        return sorted(took)[len(took) // 2]


@pytest.fixture(scope="module")
def queue():
    with clean_state_dir("queue") as state_dir:
        handle = Queue(state_dir)
        handle.up = run_cli(["sandbox", "up", "--profile", "chaos-queue"], handle.env)
        handle.endpoints = handle.target.endpoints()  # the ports are picked now
        handle.ledger = jobs.ledger_client(handle.endpoints.queue_ledger_url)
        try:
            yield handle
        finally:
            run_cli(["sandbox", "down"], handle.env)


async def test_up_starts_the_queue_and_status_lists_it(queue):
    assert queue.up.returncode == 0, queue.up.stderr
    status = json.loads(run_cli(["sandbox", "status", "--json"], queue.env).stdout)
    running = {name for name, s in status["services"].items() if s["running"]}
    assert running == set(QUEUE_SERVICES)
    assert len(QUEUE_SERVICES) == 7
    ports = status["ports"]
    assert valkey.role(ports["valkey_1"]) == "master"
    assert valkey.role(ports["valkey_2"]) == "slave"
    assert status["urls"]["sentinel_1"].startswith("redis://127.0.0.1:")
    assert len(queue.endpoints.queue_sentinels) == 3
    assert jobs.primary_address(queue.endpoints.queue_sentinels) == f"127.0.0.1:{ports['valkey_1']}"
    # The worker's connections run through the agent's proxies, one per node.
    proxies = {p.name: p for p in await queue.target.agent.proxies()}
    for i, node in enumerate(("valkey_1", "valkey_2"), start=1):
        proxy = proxies[f"queue-valkey-{i}"]
        assert proxy.upstream == f"127.0.0.1:{ports[node]}"
        assert proxy.listen == f"127.0.0.1:{ports[f'queue_proxy_{i}']}"
    assert proxies["queue-valkey-1"].connections, "the worker reaches the primary elsewhere"


def test_a_job_is_done_once_and_recorded_in_the_ledger(queue):
    run_id = queue.enqueue(20)
    entries = queue.completed(run_id, 20)
    done = sorted(job for job, *_ in entries)
    assert done == sorted(f"job-{i}" for i in range(20)), "lost or duplicated jobs"
    assert {worker for _, worker, _, _ in entries} == {"job_worker"}
    assert all(attempt == 1 for _, _, attempt, _ in entries)
    time.sleep(0.3)  # the last acks
    depths = jobs.queue_depths(jobs.primary_client(queue.endpoints.queue_sentinels))
    assert depths == {"ready": 0, "in_flight": 0, "delayed": 0, "dead": 0}
    assert jobs.worker_restarts(queue.ledger) == 0


async def test_a_primary_killed_fails_over_and_the_worker_resumes(queue):
    ports = queue.target.sandbox.ports
    sentinels = queue.endpoints.queue_sentinels
    old = queue.target.queue_primary()
    other = next(n for n in ("valkey_1", "valkey_2") if n != old)
    before = queue.enqueue(10)
    assert len(queue.completed(before, 10)) == 10

    fault = queue.target.hard_restart(ServiceFaultParams(service="queue_primary", hold_s=6))
    lease = FaultLease(fault.name, "sandbox", fault.ttl_s)
    killed_at = time.monotonic()
    await fault.inject(lease)
    assert fault.params == {"service": old}, "the role resolves to the primary at inject time"
    promoted = None
    while time.monotonic() - killed_at < 15:
        try:
            if jobs.primary_address(sentinels) == f"127.0.0.1:{ports[other]}":
                promoted = time.monotonic() - killed_at
                break
        except redis.ConnectionError:
            pass  # the sentinels take the old primary for down before they promote
        time.sleep(0.05)
    assert promoted is not None, "no sentinel promoted the replica"
    print(f"failover took {promoted:.2f}s")
    assert valkey.role(ports[other]) == "master"

    after = queue.enqueue(10)  # on the new primary
    resumed = queue.completed(after, 10, timeout_s=15)
    assert len(resumed) == 10, "the worker did not resume on the new primary"
    print(f"worker resumed {time.monotonic() - killed_at:.2f}s after the kill")

    await fault.heal(lease)
    assert await fault.verify_healed(lease)
    # The old primary is back as a replica of the new one, holding its data, not its own.
    assert valkey.role(ports[old]) == "slave"
    assert jobs.primary_address(sentinels) == f"127.0.0.1:{ports[other]}"
    replica = valkey.client(ports[old])
    assert replica.info("replication")["master_port"] == ports[other]
    assert sorted(j for j, *_ in queue.completed(after, 10)) == sorted(
        f"job-{i}" for i in range(10)
    )


async def test_latency_on_the_broker_link_slows_the_jobs(queue):
    baseline = queue.latency(uuid.uuid4().hex[:8], 5)
    fault = queue.target.broker_link(
        BrokerLinkParams(type="latency", attributes={"latency": 300}, hold_s=30)
    )
    lease = FaultLease(fault.name, "sandbox", fault.ttl_s)
    await fault.inject(lease)
    try:
        slowed = queue.latency(uuid.uuid4().hex[:8], 5)
    finally:
        await fault.heal(lease)
    assert await fault.verify_healed(lease)
    print(f"job latency {baseline:.3f}s, with 300 ms on the broker link {slowed:.3f}s")
    assert slowed >= baseline + 0.3
    assert queue.latency(uuid.uuid4().hex[:8], 3) < slowed  # healed: fast again


async def test_a_workers_own_enqueue_outlasts_dropped_connections(queue):
    """The worker re-enqueues retries itself and acks the original right after: an enqueue
    that fails on a dropped connection must be tried again, or the job is lost. Every
    connection through the proxies is reset at once while the toxic lives; the stock broker
    gives up, the worker's DurableBroker lands the job once the link is back."""
    from chaos_tui.sandbox.job_worker import DurableBroker
    from chaos_tui.sandbox.services import QUEUE_NODES, queue_proxy_ports

    primary = jobs.primary_address(queue.endpoints.queue_sentinels)
    ports = queue.target.sandbox.ports
    node = next(n for n in QUEUE_NODES if primary.endswith(f":{ports[n]}"))
    proxy = ports[queue_proxy_ports()[QUEUE_NODES.index(node)]]

    def through_proxy(kind):
        client = redis.Redis(port=proxy, socket_timeout=1, retry=jobs.no_retry())
        return kind(client=client, namespace=jobs.NAMESPACE, middleware=[])

    fault = queue.target.broker_link(
        BrokerLinkParams(type="reset_peer", attributes={"timeout": 0}, hold_s=30)
    )
    lease = FaultLease(fault.name, "sandbox", fault.ttl_s)
    run_id = uuid.uuid4().hex[:8]
    await fault.inject(lease)
    try:
        with pytest.raises((redis.ConnectionError, ConnectionError)):
            await asyncio.to_thread(
                through_proxy(RedisBroker).enqueue, jobs.job_message(run_id, "x", 1)
            )
        durable = asyncio.create_task(
            asyncio.to_thread(
                through_proxy(DurableBroker).enqueue, jobs.job_message(run_id, "j", 1)
            )
        )
        await asyncio.sleep(1.0)
        assert not durable.done(), "it cannot have landed while every connection is reset"
    finally:
        await fault.heal(lease)
    await asyncio.wait_for(durable, 15)
    assert [entry[0] for entry in queue.completed(run_id, 1)] == ["j"]


def test_a_worker_that_dies_mid_job_is_replaced_and_its_jobs_requeued(queue):
    """The supervisor starts a new worker and counts it; what the dead one had taken comes
    back to the queue once its heartbeat is old (HEARTBEAT_TIMEOUT_MS), so nothing is lost."""
    ready = queue.state_dir / "job_worker.ready"
    first = int(ready.read_text())
    run_id = queue.enqueue(4, work_ms=1_500)  # one per thread, each running when it dies
    deadline = time.monotonic() + 5
    while jobs.queue_depths(jobs.primary_client(queue.endpoints.queue_sentinels))["ready"]:
        assert time.monotonic() < deadline, "the worker took nothing"
        time.sleep(0.05)
    os.kill(first, signal.SIGKILL)  # what a crash injector does: no shutdown, no requeue
    killed_at = time.monotonic()
    entries = queue.completed(run_id, 4, timeout_s=20)
    print(f"jobs of the dead worker done {time.monotonic() - killed_at:.2f}s after its death")
    assert sorted(j for j, *_ in entries) == [f"job-{i}" for i in range(4)]
    assert jobs.worker_restarts(queue.ledger) == 1
    assert int(ready.read_text()) != first


def test_a_job_stranded_in_a_live_workers_acks_is_put_back(queue):
    """A fetch whose reply is lost leaves the job's id in the live worker's ack set, where
    stock Dramatiq leaves it until that worker dies. Made here as the broker's fetch script
    makes it (the body in the queue's hash, the id in the worker's acks, not in the queue):
    the worker's sweeper must put it back, and the job is then done once."""
    primary = jobs.primary_client(queue.endpoints.queue_sentinels)
    workers = primary.zrange(f"{jobs.NAMESPACE}:__heartbeats__", 0, -1)
    assert len(workers) == 1, workers  # the one live job worker process
    run_id = uuid.uuid4().hex[:8]
    message = jobs.job_message(run_id, "stranded", 1)
    message = message.copy(options={"redis_message_id": "stranded-" + run_id})
    primary.hset(jobs.messages_key(), "stranded-" + run_id, message.encode())
    primary.sadd(f"{jobs.NAMESPACE}:__acks__.{workers[0]}.{jobs.QUEUE}", "stranded-" + run_id)
    done = queue.completed(run_id, 1, timeout_s=15)
    assert [entry[0] for entry in done] == ["stranded"], done


def test_sandbox_down_stops_every_process(queue):
    records = [queue.target.sandbox.record(s) for s in QUEUE_SERVICES]
    pids = [r.pid for r in records if r] + [
        pid for r in records if r for pid, _ in descendants(r.pid)
    ]
    assert len(pids) > len(QUEUE_SERVICES), "the worker's supervisor has a worker below it"
    down = run_cli(["sandbox", "down"], queue.env)
    assert down.returncode == 0, down.stderr
    assert set(QUEUE_SERVICES) <= set(down.stdout.replace(",", " ").split())
    time.sleep(0.2)
    alive = [pid for pid in pids if _alive(pid)]
    assert not alive, f"left running: {alive}"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[1].split()[0] != "Z"
    except OSError:
        return False


async def test_a_toxic_on_several_proxies_checks_its_params():
    """proxy.toxic takes {"proxy": NAME} (as before) or {"proxies": [NAME, ...]}: a bad list
    is refused up front (the agent answers 400), and one toxic lands on every proxy named."""
    from chaos_tui.agent.injectors import ProxyToxic
    from chaos_tui.agent.protocol import Lease
    from chaos_tui.agent.proxy import ProxyManager

    manager = ProxyManager()
    for name in ("a", "b"):
        await manager.create(name, "127.0.0.1:0", "127.0.0.1:9")
    kind = ProxyToxic(manager)
    latency = {"type": "latency", "attributes": {"latency": 10}}
    try:
        assert kind.check("sandbox", {"proxy": "a", **latency}) is None
        assert kind.check("sandbox", {"proxies": ["a", "b"], **latency}) is None
        for bad in ([], ["a", "a"], ["a", 3], "a"):
            assert "proxy.toxic needs" in kind.check("sandbox", {"proxies": bad, **latency})
        assert "proxy.toxic needs" in kind.check(
            "sandbox", {"proxy": "a", "proxies": ["b"], **latency}
        )
        assert "c" in kind.check("sandbox", {"proxies": ["a", "c"], **latency})
        now = time.time()
        lease = Lease(
            id="l1",
            kind="proxy.toxic",
            params={"proxies": ["a", "b"], **latency},
            ttl_s=5,
            created_at=now,
            expires_at=now + 5,
        )
        lease.data = await kind.apply(lease)
        assert all(len(manager.get(n).toxics) == 1 for n in ("a", "b"))
        await kind.heal(lease)
        assert all(not manager.get(n).toxics for n in ("a", "b"))
    finally:
        await manager.stop_all()
