"""The queue scenarios' jobs: each enqueued as a Dramatiq message on the primary the sentinels
name, with the time it was sent, and counted as acknowledged only once a replica has it too.

Why WAIT: Valkey replicates asynchronously, so a job the primary accepted a moment before a
SIGKILL may never reach the replica that takes over. That loss is the broker's documented
contract, not a worker's fault; the invariant judges the jobs a failover can keep (accepted
and replicated), and the jobs accepted but not replicated are still followed and reported.
"""

from __future__ import annotations

import asyncio
import queue
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chaos_tui.core.lazy import lazy
from chaos_tui.platform import jobs

if TYPE_CHECKING:
    import redis
else:
    redis = lazy("redis")  # loaded at its first use: the picker lists scenarios without it

WAIT_FOR_REPLICA_MS = 100  # how long an enqueue waits for a replica to have it
SOCKET_TIMEOUT_S = 1.0


@dataclass
class JobRecord:
    job_id: str
    actor: str
    sent_at: float  # epoch s, when the producer sent it (the job's own enqueue time)
    accepted: bool = False  # the primary took it
    replicated: bool = False  # ... and a replica had it within WAIT_FOR_REPLICA_MS
    answered_at: float | None = None
    error: str = ""


class _Enqueuer:
    """One connection to the node that is primary now (WAIT counts the writes of its own
    connection, so the enqueue and the WAIT must share one), and a broker that writes through
    it. The sentinels are asked when it is made; one that failed is dropped, and the next is
    made afresh, so enqueues follow a failover as soon as the sentinels do."""

    def __init__(self, sentinels: tuple[str, ...], master: str) -> None:
        host, _, port = jobs.primary_address(sentinels, master).rpartition(":")
        self.client = redis.Redis(
            host=host,
            port=int(port),
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            retry=jobs.no_retry(),
            single_connection_client=True,
        )
        self.broker = jobs.producer(self.client)

    def replicated(self) -> bool:
        """Whether a replica has every write of this connection so far (waits a little)."""
        return int(self.client.execute_command("WAIT", 1, WAIT_FOR_REPLICA_MS)) >= 1

    def close(self) -> None:
        self.client.close()


class JobProducer:
    """Sends the run's jobs; `submit(n)` sends job n (a load driver calls it on schedule) and
    raises when the broker refused it, so the driver counts the error by phase."""

    def __init__(
        self,
        sentinels: tuple[str, ...],
        master: str,
        run_id: str,
        work_ms: int,
        actors: tuple[str, ...] = (jobs.JOB_ACTOR,),
        max_in_flight: int = 8,
    ) -> None:
        self.sentinels = sentinels
        self.master = master
        self.run_id = run_id
        self.work_ms = work_ms
        self.actors = actors
        self.records: dict[str, JobRecord] = {}
        self._threads = ThreadPoolExecutor(max_in_flight, thread_name_prefix="job-producer")
        self._idle: queue.SimpleQueue[_Enqueuer] = queue.SimpleQueue()

    def enqueued_at(self, job_id: str) -> float | None:
        record = self.records.get(job_id)
        return record.sent_at if record is not None else None

    async def submit(self, n: int) -> None:
        job_id = str(n)
        record = JobRecord(job_id, self.actors[n % len(self.actors)], time.time())
        self.records[job_id] = record
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._threads, self._send, record)
        if not record.accepted:
            raise RuntimeError(record.error)

    def _send(self, record: JobRecord) -> None:
        enqueuer = None
        try:
            try:
                enqueuer = self._idle.get_nowait()
            except queue.Empty:
                enqueuer = _Enqueuer(self.sentinels, self.master)
            message = jobs.job_message(
                self.run_id, record.job_id, self.work_ms, record.actor, record.sent_at
            )
            enqueuer.broker.enqueue(message)
            record.accepted = True
            record.replicated = enqueuer.replicated()
        except (redis.RedisError, OSError) as exc:
            if not record.accepted:  # (taken but the WAIT broke: not known to be replicated)
                record.error = " ".join((str(exc) or type(exc).__name__).split())[:200]
            if enqueuer is not None:  # its node may be gone: the next one asks the sentinels
                enqueuer.close()
                enqueuer = None
        finally:
            record.answered_at = time.time()
            if enqueuer is not None:
                self._idle.put(enqueuer)

    def close(self) -> None:
        """Wait for the sends in flight, then close every connection."""
        self._threads.shutdown(wait=True)
        while not self._idle.empty():
            self._idle.get_nowait().close()

    # -- what the run's jobs came to --------------------------------------------------------

    @property
    def accepted(self) -> list[str]:
        return [r.job_id for r in self.records.values() if r.accepted]

    @property
    def acknowledged(self) -> list[str]:
        """Jobs a failover cannot lose: the primary took them and a replica had them."""
        return [r.job_id for r in self.records.values() if r.replicated]
