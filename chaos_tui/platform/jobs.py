"""The job queue's names: what the reference worker, the job producer and the queue scenarios
agree on, on every target (the sandbox's Valkey, the compose stack's).

Jobs are Dramatiq messages on a Redis-protocol broker (Valkey). Dramatiq keeps, under its
namespace: the queue `NS:Q` (a list of message ids) with the bodies in `NS:Q.msgs`, the
delayed queue `NS:Q.DQ` (retries wait there through their backoff) with `NS:Q.DQ.msgs`, and
the dead letters `NS:Q.XQ` (a sorted set by time of death) with `NS:Q.XQ.msgs`.

Each completion is recorded by the worker in the ledger (a Valkey the faults never touch, so
it is the test's observer, like Jepsen's client history): one list per run, one entry per
completion, `job_id worker attempt finished_at`, so a job done twice shows twice.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from chaos_tui.core.lazy import lazy

# redis-py and Dramatiq (some 100 ms to import together) load when a run first talks to
# the queue, not when the scenario list imports this module.
if TYPE_CHECKING:
    import redis
    from dramatiq import Message
    from dramatiq.brokers.redis import RedisBroker
    from redis.retry import Retry
else:
    redis = lazy("redis")

NAMESPACE = "dramatiq"
QUEUE = "chaos_jobs"
JOB_ACTOR = "chaos_job"  # args: run_id, job_id, work_ms, enqueued_at (epoch s)
SIDE_ACTOR = "chaos_side_job"  # the same work under another name (for scoped injectors)
MAX_RETRIES = 3  # the reference worker's retry budget: 1 try + 3 retries, then dead letters
MIN_BACKOFF_MS = 100
MAX_BACKOFF_MS = 1_000
SENTINEL_MASTER = "chaos-queue"


def queue_key(queue: str = QUEUE) -> str:
    return f"{NAMESPACE}:{queue}"


def messages_key(queue: str = QUEUE) -> str:
    return f"{NAMESPACE}:{queue}.msgs"


def delayed_key(queue: str = QUEUE) -> str:
    return f"{NAMESPACE}:{queue}.DQ"


def dead_key(queue: str = QUEUE) -> str:
    return f"{NAMESPACE}:{queue}.XQ"


def ledger_key(run_id: str) -> str:
    """The list of completions of one run's jobs."""
    return f"chaos:done:{run_id}"


def deliveries_key(run_id: str) -> str:
    """A hash of one run's jobs: how often a worker began each (a retry, a redelivery after
    a worker died, a duplicate all count)."""
    return f"chaos:deliveries:{run_id}"


def ledger_entry(job_id: str, worker: str, attempt: int, finished_at: float) -> str:
    """`attempt` counts deliveries from 1 (the first try); a retry adds one."""
    return f"{job_id} {worker} {attempt} {finished_at:.6f}"


def parse_ledger_entry(entry: str) -> tuple[str, str, int, float]:
    job_id, worker, attempt, finished_at = entry.split(" ")
    return job_id, worker, int(attempt), float(finished_at)


RESTARTS_KEY = "chaos:worker_restarts"  # in the ledger: how often a job worker was restarted

SENTINEL_TIMEOUT_S = 0.5
CLIENT_TIMEOUT_S = 2.0


def no_retry() -> Retry:
    """For clients that ask once (probes, the sandbox's checks): redis-py's default retries
    a refused connection three times with backoff, seconds per question."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return Retry(NoBackoff(), 0)


def _address(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


def primary_address(sentinels: Sequence[str], master: str = SENTINEL_MASTER) -> str:
    """`host:port` of the primary as the first sentinel that answers says, unless it takes
    that primary for down (each sentinel asked directly, never through a proxy). Raises
    redis.ConnectionError when none answers so."""
    errors = []
    for sentinel in sentinels:
        ask = _client(sentinel, SENTINEL_TIMEOUT_S)
        try:
            state = cast("dict[str, Any]", ask.sentinel_master(master))
        except redis.RedisError as exc:
            errors.append(f"{sentinel}: {exc}")
            continue
        finally:
            ask.close()
        if state.get("is_master") and not (state.get("is_sdown") or state.get("is_odown")):
            return f"{state['ip']}:{state['port']}"
        errors.append(f"{sentinel}: primary {state.get('ip')}:{state.get('port')} is down")
    raise redis.ConnectionError(f"no sentinel names a live primary ({'; '.join(errors)})")


def primary_client(
    sentinels: Sequence[str], master: str = SENTINEL_MASTER, timeout_s: float = CLIENT_TIMEOUT_S
) -> redis.Redis:
    """A client of the node that is primary now (asked once: after a failover, ask again)."""
    return _client(primary_address(sentinels, master), timeout_s)


def _client(address: str, timeout_s: float) -> redis.Redis:
    host, port = _address(address)
    return redis.Redis(
        host=host,
        port=port,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        decode_responses=True,
        retry=no_retry(),
    )


def ledger_client(url: str, timeout_s: float = CLIENT_TIMEOUT_S) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        decode_responses=True,
        retry=no_retry(),
    )


def queue_depths(client: redis.Redis, queue: str = QUEUE) -> dict[str, int]:
    """Jobs waiting (`ready`), taken by a worker and not yet acknowledged (`in_flight`),
    waiting out a retry's backoff (`delayed`: a worker holds them in memory until due, their
    bodies stay in the delayed queue's hash) and dead-lettered (`dead`), in one round trip."""
    with client.pipeline(transaction=False) as pipe:
        pipe.llen(queue_key(queue))
        pipe.hlen(messages_key(queue))
        pipe.hlen(f"{delayed_key(queue)}.msgs")
        pipe.zcard(dead_key(queue))
        ready, bodies, delayed, dead = pipe.execute()
    return {
        "ready": int(ready),
        "in_flight": max(int(bodies) - int(ready), 0),
        "delayed": int(delayed),
        "dead": int(dead),
    }


def ledger_entries(ledger: redis.Redis, run_id: str) -> list[tuple[str, str, int, float]]:
    """A run's completions, in the order they were recorded (a job done twice shows twice)."""
    raw = ledger.lrange(ledger_key(run_id), 0, -1)
    return [parse_ledger_entry(e.decode() if isinstance(e, bytes) else e) for e in raw]


def worker_restarts(ledger: redis.Redis) -> int:
    """How often the job worker's supervisor has started a new worker after one died."""
    return int(ledger.get(RESTARTS_KEY) or 0)


def job_message(
    run_id: str, job_id: str, work_ms: int, actor: str = JOB_ACTOR, enqueued_at: float = 0.0
) -> Message[Any]:
    """A job as the reference worker's actors take it (enqueued_at: now, unless given)."""
    from dramatiq import Message

    return Message(
        queue_name=QUEUE,
        actor_name=actor,
        args=(run_id, job_id, work_ms, enqueued_at or time.time()),
        kwargs={},
        options={},
    )


def producer(client: redis.Redis) -> RedisBroker:
    """A broker to enqueue jobs with (`.enqueue(job_message(...))`) on this client's node:
    no middleware, no actors (the worker has those)."""
    from dramatiq.brokers.redis import RedisBroker

    return RedisBroker(  # type: ignore[no-untyped-call]  # Dramatiq leaves it unannotated
        client=client, namespace=NAMESPACE, middleware=[]
    )
