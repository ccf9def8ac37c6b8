"""The reference job worker: Dramatiq on the sandbox's Valkey, under a supervisor.

`python -m chaos_tui.sandbox.job_worker --sentinels ... --through ... --ledger-url ...` runs
the supervisor, the one process the sandbox records. It runs one Dramatiq worker process (the
same module with `--child`) with N threads, and starts it again whenever it dies (a crash
injector ends it with os._exit), counting each restart in the ledger (jobs.RESTARTS_KEY).

The worker finds the primary by asking the sentinels directly (their traffic is never
proxied, so a latency toxic cannot cause a false failover), then connects to the agent proxy
in front of that node (`--through NODE=PROXY,...`): every broker fault is a toxic there.
Each new connection asks again, so after a failover new connections reach the new primary.

Jobs (jobs.JOB_ACTOR and jobs.SIDE_ACTOR) hash for `work_ms`, pass a checkpoint half-way
(where a `partial` injector acts) and, as their last step, record the completion in the
ledger. Dramatiq's Retries middleware retries a failed job with backoff and, past the budget,
its dead-letter queue keeps it.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

# Dramatiq reads these when imported. A consumer that lost its connection (a failover, a
# dropped link) starts again after this delay, not the default 3 s.
os.environ.setdefault("dramatiq_restart_delay", "300")

import dramatiq
import redis
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker
from dramatiq.errors import BrokerConnectionError
from dramatiq.middleware import AgeLimit, CurrentMessage, Middleware, Retries, TimeLimit
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from redis.sentinel import (
    Sentinel,
    SentinelConnectionPool,
    SentinelManagedConnection,
)

from chaos_tui.platform import jobs


def _injectors(name: str):
    """A module of the worker injectors, or None while they are not installed: the worker
    then runs without them (imported by name: the package may not exist where this runs)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


checkpoint: Callable[[], None] = getattr(_injectors("chaos_tui.inject"), "checkpoint", None) or (
    lambda: None
)


log = logging.getLogger("job_worker")

# A crashed worker's fetched-but-unacked jobs go back to the queue once its heartbeat is this
# old and a live worker's next broker call runs maintenance. A live worker heartbeats with
# every fetch (about once a second when idle, from its delay-queue consumer even when all its
# threads are busy), so 5 s leaves room for a second or two of injected broker latency
# without a live worker's jobs being taken for a dead one's.
HEARTBEAT_TIMEOUT_MS = 5_000
# Every broker call runs that maintenance (two range reads on a small queue): requeueing
# does not wait on a one-in-a-thousand chance, Dramatiq's default.
MAINTENANCE_CHANCE = MAINTENANCE_SCALE
# How long an idle consumer waits between fetches, at most: a job sent to a quiet queue waits
# up to this before a worker sees it, so it is kept short (job latency is a measured number).
WORKER_TIMEOUT_MS = 100
ENQUEUE_GIVE_UP_S = 30.0  # a worker's own enqueue (a retry, a backoff over) is tried this long
SWEEP_EVERY_S = 2.0  # how often a worker looks for jobs stranded in its own ack set
TIME_LIMIT_MS = 60_000  # a job running longer is interrupted (and retried)
BROKER_TIMEOUT_S = 5.0  # a broker call answering slower than this counts as a lost connection
SENTINEL_TIMEOUT_S = 0.5
RESTART_PAUSE_S = 0.2  # between a worker's death and its replacement
STOP_GRACE_S = 10.0


# -- the broker connection: sentinels asked directly, the primary reached through a proxy -------


def parse_through(spec: str) -> dict[tuple[str, int], tuple[str, int]]:
    """`h:p=h:p,...` -> {node address: proxy address}."""
    pairs = {}
    for item in filter(None, spec.split(",")):
        node, proxy = item.split("=")
        pairs[address(node)] = address(proxy)
    return pairs


def address(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


class ThroughProxy(SentinelManagedConnection):
    """A sentinel-managed connection that dials the proxy in front of the node the sentinels
    name. A broker call that times out counts as a lost connection (a ConnectionError), the
    one error Dramatiq's consumer and its ack retry loop recover from."""

    through: ClassVar[dict[tuple[str, int], tuple[str, int]]] = {}  # node -> proxy, per pool

    def connect_to(self, address):
        super().connect_to(self.through.get(normal(address), address))

    def read_response(self, *args, **kwargs):
        try:
            return super().read_response(*args, **kwargs)
        except redis.TimeoutError as exc:
            self.disconnect()
            raise redis.ConnectionError(f"broker timed out: {exc}") from exc


class ThroughPool(SentinelConnectionPool):
    """The sentinels' pool, for connections made through the proxies: a connection belongs
    to the pool while it goes to the proxy of the current primary (the stock check compares
    it with the primary's own address, and would drop every connection after one use)."""

    def __init__(self, master, manager, through, **kwargs) -> None:
        self.through = through
        connection = type("ThroughProxyConnection", (ThroughProxy,), {"through": through})
        super().__init__(master, manager, connection_class=connection, **kwargs)

    def owns_connection(self, connection) -> bool:
        primary = self.master_address
        proxy = self.through.get(normal(primary), primary) if primary else None
        return proxy == (connection.host, connection.port) and connection.pid == self.pid


def normal(address) -> tuple[str, int]:
    host, port = address
    return str(host), int(port)


def broker_client(
    sentinels: list[tuple[str, int]],
    master: str,
    through: dict[tuple[str, int], tuple[str, int]],
) -> redis.Redis:
    manager = Sentinel(
        sentinels,
        sentinel_kwargs={
            "socket_timeout": SENTINEL_TIMEOUT_S,
            "socket_connect_timeout": SENTINEL_TIMEOUT_S,
            "retry": jobs.no_retry(),
        },
    )
    pool = ThroughPool(
        master,
        manager,
        through,
        socket_timeout=BROKER_TIMEOUT_S,
        socket_connect_timeout=BROKER_TIMEOUT_S,
        # Dramatiq recovers from a lost connection itself (its consumer starts again, an ack
        # is retried). redis-py's own retry would run a fetch script twice, and back off for
        # seconds after a failover.
        retry=jobs.no_retry(),
    )
    return redis.Redis(connection_pool=pool)


# -- the jobs -------------------------------------------------------------------------------


def hash_for(seconds: float) -> None:
    """Real CPU work for about this long (hashlib releases the GIL on large buffers)."""
    block = os.urandom(4096)
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        block = hashlib.sha256(block).digest() * 128


def make_job(ledger: redis.Redis, worker_id: str) -> Callable[[str, str, int, float], None]:
    def job(run_id: str, job_id: str, work_ms: int, enqueued_at: float) -> None:
        # The first step: every delivery that began counts, whatever ends it (Dramatiq's
        # retry count misses a redelivery after a worker died).
        ledger.hincrby(jobs.deliveries_key(run_id), job_id, 1)
        hash_for(work_ms / 2000)
        checkpoint()  # where a `partial` injector fails or hangs: half the work done
        hash_for(work_ms / 2000)
        message = CurrentMessage.get_current_message()
        attempt = (message.options.get("retries", 0) if message else 0) + 1
        # The last step: a job that fails before here is not done, and one done twice (a
        # crash after this line, before the ack) shows twice.
        ledger.rpush(
            jobs.ledger_key(run_id), jobs.ledger_entry(job_id, worker_id, attempt, time.time())
        )

    return job


class DurableBroker(RedisBroker):
    """The worker's broker: an enqueue that meets a dropped connection is tried again.

    A worker enqueues in two places, and both ack the message they came from right after:
    the Retries middleware puts a failed job back (with its backoff), and the delayed-queue
    consumer moves a job whose backoff is over to its queue. Stock Dramatiq logs a failed
    enqueue there and acks anyway, so the job is gone: a queue_latency_drop run (drops and
    failures together) lost one that way. Tried again here until it lands or ENQUEUE_GIVE_UP_S
    passes. A reply lost after the enqueue landed makes a second copy: a duplicate, counted
    by the run, which at-least-once allows; a loss is not."""

    def enqueue(self, message, *, delay=None):
        give_up = time.monotonic() + ENQUEUE_GIVE_UP_S
        pause = 0.05
        while True:
            try:
                return super().enqueue(message, delay=delay)
            except (redis.ConnectionError, redis.TimeoutError, BrokerConnectionError) as exc:
                if time.monotonic() > give_up:
                    raise
                log.warning("enqueue of %s failed (%s): trying again", message.message_id, exc)
                time.sleep(pause)
                pause = min(pause * 2, 1.0)


def make_broker(client: redis.Redis, settling: Settling) -> RedisBroker:
    middleware = [
        settling,
        AgeLimit(),
        TimeLimit(time_limit=TIME_LIMIT_MS),
        CurrentMessage(),
        Retries(
            max_retries=jobs.MAX_RETRIES,
            min_backoff=jobs.MIN_BACKOFF_MS,
            max_backoff=jobs.MAX_BACKOFF_MS,
        ),
    ]
    chaos = _injectors("chaos_tui.inject.dramatiq")
    if chaos is not None:  # it learns its injectors from the agent of CHAOS_STATE_DIR
        middleware.append(chaos.ChaosMiddleware.from_env())
    else:
        log.info("no worker injectors (chaos_tui.inject.dramatiq is not installed)")
    return DurableBroker(
        client=client,
        namespace=jobs.NAMESPACE,
        middleware=middleware,
        heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
        maintenance_chance=MAINTENANCE_CHANCE,
    )


def declare_actors(broker: RedisBroker, ledger: redis.Redis, worker_id: str) -> None:
    for name in (jobs.JOB_ACTOR, jobs.SIDE_ACTOR):
        dramatiq.actor(
            actor_name=name,
            queue_name=jobs.QUEUE,
            broker=broker,
            max_retries=jobs.MAX_RETRIES,
            min_backoff=jobs.MIN_BACKOFF_MS,
            max_backoff=jobs.MAX_BACKOFF_MS,
        )(make_job(ledger, worker_id))


# -- jobs stranded by a lost fetch reply -----------------------------------------------------


class Settling(Middleware):
    """The jobs whose ack (or nack) is under way: a consumer lets go of a job before its ack
    lands, and retries an ack that met a dropped connection, so for a while the job is in the
    ack set and held by no consumer. The sweeper must not take that for a stranded job (it
    would run twice)."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.lock = threading.Lock()

    def _begin(self, broker, message) -> None:
        with self.lock:
            self.ids.add(message.message_id)

    def _end(self, broker, message) -> None:
        with self.lock:
            self.ids.discard(message.message_id)

    before_ack = before_nack = _begin
    after_ack = after_nack = _end

    def now(self) -> set[str]:
        with self.lock:
            return set(self.ids)


class StrandedSweeper:
    """Puts back jobs stranded in this worker's own ack set.

    Dramatiq's Redis broker fetches with a script that moves each job's id into the worker's
    ack set on the server, then returns the jobs. When that reply is lost (a broker connection
    dropped mid-fetch), the jobs sit in the ack set of a worker that never got them, and
    nothing requeues them while that worker lives: only a dead worker's acks are swept. Stock
    Dramatiq would hold them until the worker restarts; a queue scenario would count them as
    lost. So every SWEEP_EVERY_S this worker lists its ack sets, and an id whose job it does
    not hold (not queued in a consumer, not cached from a fetch) in two sweeps running goes
    back to its queue."""

    def __init__(self, broker: RedisBroker, worker: dramatiq.Worker, settling: Settling) -> None:
        self.broker = broker
        self.worker = worker
        self.settling = settling
        self.suspects: set[str] = set()
        self.requeued = 0

    def held(self) -> set[str]:
        """Message ids of the jobs this worker's consumers hold now, or are acking."""
        ids = self.settling.now()
        for thread in list(self.worker.consumers.values()):
            consumer = getattr(thread, "consumer", None)
            if consumer is None:
                continue
            ids |= set(getattr(consumer, "queued_message_ids", ()))
            for data in list(getattr(consumer, "message_cache", ())):
                try:
                    ids.add(dramatiq.Message.decode(data).message_id)
                except Exception:  # a body we cannot read is not one we hold
                    continue
        return ids

    def sweep(self) -> None:
        client = self.broker.client
        held = self.held()
        stranded: dict[str, list[str]] = {}
        for queue in (jobs.QUEUE, f"{jobs.QUEUE}.DQ"):
            acks = f"{jobs.NAMESPACE}:__acks__.{self.broker.broker_id}.{queue}"
            ids = [i.decode() if isinstance(i, bytes) else i for i in client.smembers(acks)]
            if not ids:
                continue
            bodies = client.hmget(f"{jobs.NAMESPACE}:{queue}.msgs", ids)
            for redis_id, body in zip(ids, bodies, strict=True):
                if body is None:
                    continue  # acked or dead-lettered meanwhile
                if dramatiq.Message.decode(body).message_id not in held:
                    stranded.setdefault(queue, []).append(redis_id)
        found = {i for ids in stranded.values() for i in ids}
        for queue, ids in stranded.items():
            confirmed = [i for i in ids if i in self.suspects]
            if confirmed:
                self.broker.do_requeue(queue, *confirmed)
                self.requeued += len(confirmed)
                log.warning("requeued %d job(s) stranded in this worker's acks", len(confirmed))
        self.suspects = found - {i for ids in stranded.values() for i in ids if i in self.suspects}

    def run(self, stopping: threading.Event) -> None:
        while not stopping.wait(SWEEP_EVERY_S):
            try:
                self.sweep()
            except redis.RedisError:
                continue  # the broker is away: the next sweep looks again


# -- the worker process ---------------------------------------------------------------------


def run_worker(args: argparse.Namespace) -> int:
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    _die_with_parent()
    client = broker_client(
        [address(s) for s in args.sentinels.split(",")], args.master, parse_through(args.through)
    )
    # Retried briefly: a completion must land (the ledger is never faulted).
    ledger = redis.Redis.from_url(
        args.ledger_url,
        socket_timeout=BROKER_TIMEOUT_S,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 5),
    )
    settling = Settling()
    broker = make_broker(client, settling)
    declare_actors(broker, ledger, args.worker_id)
    worker = dramatiq.Worker(broker, worker_threads=args.threads, worker_timeout=WORKER_TIMEOUT_MS)
    worker.start()
    sweeper = StrandedSweeper(broker, worker, settling)
    threading.Thread(target=sweeper.run, args=(stopping,), daemon=True, name="sweeper").start()
    # Ready once the primary answers through its proxy: from then on jobs are consumed.
    while not stopping.is_set():
        try:
            client.ping()
            Path(args.ready_file).write_text(str(os.getpid()))
            break
        except redis.RedisError as exc:
            log.info("broker not reachable yet: %s", exc)
            stopping.wait(0.2)
    stopping.wait()
    worker.stop(timeout=int(STOP_GRACE_S * 1000))
    return 0


def _die_with_parent() -> None:
    """The worker ends when its supervisor does (a SIGKILL of the supervisor alone would
    otherwise leave it consuming, unrecorded)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


# -- the supervisor -------------------------------------------------------------------------


def supervise(args: argparse.Namespace, argv: list[str]) -> int:
    stopping = threading.Event()
    child: subprocess.Popen | None = None

    def stop(*_) -> None:
        stopping.set()
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    ready = Path(args.ready_file)
    ledger = redis.Redis.from_url(args.ledger_url, socket_timeout=BROKER_TIMEOUT_S)
    env = {**os.environ, "CHAOS_STATE_DIR": args.state_dir, "CHAOS_WORKER_ID": args.worker_id}
    while not stopping.is_set():
        child = subprocess.Popen(
            [sys.executable, "-P", "-m", "chaos_tui.sandbox.job_worker", "--child", *argv],
            env=env,
        )
        code = child.wait()
        if stopping.is_set():
            break
        ready.unlink(missing_ok=True)  # not serving until the new worker is
        log.warning("worker pid %d exited with %s; starting another", child.pid, code)
        try:
            ledger.incr(jobs.RESTARTS_KEY)
        except redis.RedisError as exc:  # the ledger is never faulted; say so if it is gone
            log.error("could not count the restart in the ledger: %s", exc)
        stopping.wait(RESTART_PAUSE_S)
    if child is not None:
        try:
            child.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentinels", required=True, help="host:port,... of the sentinels")
    parser.add_argument("--master", default=jobs.SENTINEL_MASTER)
    parser.add_argument("--through", default="", help="node=proxy,... (host:port each)")
    parser.add_argument("--ledger-url", required=True)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--worker-id", default="job_worker")
    parser.add_argument("--state-dir", default=os.environ.get("CHAOS_STATE_DIR", ""))
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
    )
    return run_worker(args) if args.child else supervise(args, argv)


if __name__ == "__main__":
    sys.exit(main())
