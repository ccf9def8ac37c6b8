"""Job-queue probes: is there a primary, how deep is the queue, how full the dead letters,
and what the run's completions say (throughput, job latency), each sampled like any probe.

Everything asks the sentinels for the primary first, as a worker would, so a failover shows
as a failing sample until the sentinels name the new one.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from chaos_tui.core.contracts import Probe
from chaos_tui.platform import jobs

if TYPE_CHECKING:  # redis-py loads with the first client, not with the scenario list
    from redis.asyncio import Redis
    from redis.asyncio.sentinel import Sentinel

SOCKET_TIMEOUT_S = 0.5


def sentinel_of(sentinels: tuple[str, ...]) -> Sentinel:
    """A sentinel client for "host:port" addresses, with short timeouts on every socket."""
    hosts = []
    for address in sentinels:
        host, _, port = address.rpartition(":")
        hosts.append((host, int(port)))
    from redis.asyncio.sentinel import Sentinel

    short = {"socket_timeout": SOCKET_TIMEOUT_S, "socket_connect_timeout": SOCKET_TIMEOUT_S}
    return Sentinel(hosts, sentinel_kwargs=short, **short)


class QueueProbe(Probe):
    """A probe of the queue's current primary, over one client the sentinels keep pointed at
    it (the pool finds the new primary after a failover)."""

    def __init__(self, name: str, description: str, sentinels: tuple[str, ...], master: str):
        super().__init__(name, description)
        self.sentinels = sentinels
        self.master = master
        self._client: Redis | None = None
        self._sentinel: Sentinel | None = None

    @property
    def sentinel(self) -> Sentinel:
        if self._sentinel is None:
            self._sentinel = sentinel_of(self.sentinels)
        return self._sentinel

    @property
    def client(self) -> Redis:
        if self._client is None:
            self._client = self.sentinel.master_for(self.master)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


class QueuePrimaryProbe(QueueProbe):
    """PING the primary the sentinels name; the value is its port, so a failover shows as
    a change of value as well as the failing samples between."""

    def __init__(self, name: str, sentinels: tuple[str, ...], master: str) -> None:
        super().__init__(name, "PING the sentinels' primary (value: its port)", sentinels, master)

    async def measure(self) -> float | None:
        _, port = await self.sentinel.discover_master(self.master)
        await self.client.ping()
        return float(port)


class QueueBacklogProbe(QueueProbe):
    """Messages waiting or being worked on: the queue's bodies plus those waiting out a retry
    backoff (the delayed queue)."""

    unit = "jobs"

    def __init__(self, name: str, sentinels: tuple[str, ...], master: str) -> None:
        super().__init__(name, "jobs queued, in flight or waiting to retry", sentinels, master)

    async def measure(self) -> float | None:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hlen(jobs.messages_key())
            pipe.hlen(jobs.delayed_key() + ".msgs")
            ready, delayed = await pipe.execute()
        return float(ready + delayed)


class RetryingProbe(QueueProbe):
    """Jobs waiting out a retry backoff (Dramatiq's delayed queue): failures being retried."""

    unit = "jobs"

    def __init__(self, name: str, sentinels: tuple[str, ...], master: str) -> None:
        super().__init__(name, "jobs waiting to be retried", sentinels, master)

    async def measure(self) -> float | None:
        return float(await self.client.hlen(jobs.delayed_key() + ".msgs"))


class DeadLetterProbe(QueueProbe):
    """Size of the dead-letter queue (every run's: it is what an operator would see)."""

    unit = "jobs"

    def __init__(self, name: str, sentinels: tuple[str, ...], master: str) -> None:
        super().__init__(name, "jobs in the dead-letter queue", sentinels, master)

    async def measure(self) -> float | None:
        return float(await self.client.zcard(jobs.dead_key()))


class LedgerProbe(Probe):
    """Reads the run's new completions from the ledger at each sample and turns them into a
    number: completions per second, or the median job latency of the new ones."""

    def __init__(
        self,
        name: str,
        description: str,
        ledger_url: str,
        run_id: Callable[[], str | None],
    ) -> None:
        super().__init__(name, description)
        self.ledger_url = ledger_url
        self.run_id = run_id
        self.read = 0  # entries of the run's ledger read so far
        self._client: Redis | None = None

    async def new_entries(self) -> list[tuple[str, str, int, float]]:
        run_id = self.run_id()
        if run_id is None:  # the workload has not started: nothing to read yet
            return []
        if self._client is None:
            from redis.asyncio import Redis

            self._client = Redis.from_url(
                self.ledger_url,
                socket_timeout=SOCKET_TIMEOUT_S,
                socket_connect_timeout=SOCKET_TIMEOUT_S,
                decode_responses=True,
            )
        raw = await self._client.lrange(jobs.ledger_key(run_id), self.read, self.read + 9_999)
        self.read += len(raw)
        return [jobs.parse_ledger_entry(str(entry)) for entry in raw]

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


class ThroughputProbe(LedgerProbe):
    unit = "jobs/s"

    def __init__(self, name: str, ledger_url: str, run_id: Callable[[], str | None]) -> None:
        super().__init__(name, "jobs completed per second", ledger_url, run_id)
        self._last: float | None = None

    async def measure(self) -> float | None:
        done = len(await self.new_entries())
        now = time.monotonic()
        last, self._last = self._last, now
        return None if last is None else round(done / max(now - last, 1e-3), 2)


class JobLatencyProbe(LedgerProbe):
    """Median end-to-end latency (enqueue to completion, ms) of the jobs completed in the
    last WINDOW_S. Above `slo_ms` the sample fails, so the run's recovery timings say when
    jobs got slow and when they were fast again. With no completion in the window there is
    nothing new to say: the last answer stands (a stall that was failing still fails)."""

    WINDOW_S = 1.0

    unit = "ms"

    def __init__(
        self,
        name: str,
        ledger_url: str,
        run_id: Callable[[], str | None],
        enqueued_at: Callable[[str], float | None],
        slo_ms: float | None = None,
    ) -> None:
        within = f", fails above {slo_ms:g} ms" if slo_ms else ""
        super().__init__(
            name, f"median job latency over 1 s, enqueue to done (ms{within})", ledger_url, run_id
        )
        self.enqueued_at = enqueued_at
        self.slo_ms = slo_ms
        self.recent: deque[tuple[float, float]] = deque()  # (finished at, latency ms)
        self.last: float | str | None = None  # the last value, or the last failure's text

    async def measure(self) -> float | None:
        for job_id, _, _, finished in await self.new_entries():
            sent = self.enqueued_at(job_id)
            if sent is not None:
                self.recent.append((finished, (finished - sent) * 1000.0))
        horizon = time.time() - self.WINDOW_S
        while self.recent and self.recent[0][0] < horizon:
            self.recent.popleft()
        if self.recent:
            latencies = sorted(latency for _, latency in self.recent)
            median = round(latencies[len(latencies) // 2], 1)
            self.last = median
            if self.slo_ms and median > self.slo_ms:
                self.last = f"median job latency {median:g} ms, over {self.slo_ms:g} ms"
        if isinstance(self.last, str):
            raise RuntimeError(self.last)
        return self.last
