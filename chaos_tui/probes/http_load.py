"""Steady HTTP traffic through a fault: a scenario file's `load: - http_requests: {...}`.

Open loop: a request is sent every 1/rate_per_s seconds whatever the server does, each in
its own task, so a stalled server shows up as latency and timeouts rather than as fewer
requests. Every request sent leaves one `LoadRecord`; `summary` splits them by phase.

Memory: a record is about 120 bytes with its floats, so an hour at 1000 requests/s is over
400 MB. Scenarios run minutes at tens of requests per second, so the records stay
a plain list.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

import httpx
from pydantic import BaseModel

from chaos_tui.core.timeline import percentile
from chaos_tui.probes.http_probe import describe_codes

PHASES = ("before", "during", "after")
TOO_MANY_IN_FLIGHT = "too many requests in flight"
STOPPED = "stopped before a response"


@dataclass(frozen=True, slots=True)
class LoadRecord:
    t: float  # wall-clock time.time() when the request was sent
    ok: bool  # a response with an accepted status arrived in time
    latency_ms: float | None  # time to the full response; None when no response
    error: str | None = None  # one line: "HTTP 503", "timed out after 2s", ...


class LoadPhaseStats(BaseModel):
    requests: int = 0
    ok: int = 0
    errors: int = 0
    error_rate: float | None = None  # None when no request was sent in the phase
    latency_ms_p50: float | None = None  # latencies of ok requests only
    latency_ms_p95: float | None = None
    latency_ms_max: float | None = None
    last_error: str | None = None

    def as_measurement(self) -> dict[str, float | int | None]:
        """The numbers, for invariants and reports (the last error is text, not a number)."""
        return self.model_dump(exclude={"last_error"})


def phase_stats(records: list[LoadRecord]) -> LoadPhaseStats:
    if not records:
        return LoadPhaseStats()
    ok = sum(r.ok for r in records)
    latencies = sorted(r.latency_ms for r in records if r.ok and r.latency_ms is not None)
    # Records are appended when requests finish; the last error is the last one sent.
    failed = sorted((r for r in records if r.error), key=lambda r: r.t)
    stats = LoadPhaseStats(
        requests=len(records),
        ok=ok,
        errors=len(records) - ok,
        error_rate=round(1 - ok / len(records), 4),
        last_error=failed[-1].error if failed else None,
    )
    if latencies:
        stats.latency_ms_p50 = round(percentile(latencies, 50), 3)
        stats.latency_ms_p95 = round(percentile(latencies, 95), 3)
        stats.latency_ms_max = round(latencies[-1], 3)
    return stats


class HttpRequestLoad:
    """`rate_per_s` requests a second to one URL until `stop()`. `timeout_s` bounds each whole
    request, connection included. `expect_status` (a code or codes) replaces "below 400" as
    what counts as ok."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        method: str = "GET",
        body: str | None = None,
        headers: dict[str, str] | None = None,
        rate_per_s: float = 10.0,
        timeout_s: float = 2.0,
        max_in_flight: int = 256,
        expect_status: int | Collection[int] | None = None,
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError(f"rate_per_s must be positive, not {rate_per_s:g}")
        if timeout_s <= 0:
            raise ValueError(f"timeout must be positive, not {timeout_s:g}s")
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, not {max_in_flight}")
        self.name = name
        self.url = url
        self.method = method.upper()
        self.body = body
        self.headers = dict(headers or {})
        self.rate_per_s = rate_per_s
        self.timeout_s = timeout_s
        self.max_in_flight = max_in_flight
        self.expect: Collection[int] | None = (
            (expect_status,) if isinstance(expect_status, int) else expect_status
        )
        self.records: list[LoadRecord] = []
        self._client: httpx.AsyncClient | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    def describe(self) -> str:
        return f"{self.rate_per_s:g} {self.method}/s to {self.url}"

    @property
    def running(self) -> bool:
        return self._ticker is not None

    def start(self) -> None:
        """Begin sending (call inside the running loop); a second call does nothing."""
        if self._ticker is not None:
            return
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.timeout_s,
                # The in-flight cap is ours: a pool smaller than it would queue requests
                # inside httpx, where their waiting would look like server latency.
                limits=httpx.Limits(
                    max_connections=self.max_in_flight,
                    max_keepalive_connections=min(self.max_in_flight, 64),
                ),
            )
        self._ticker = asyncio.create_task(self._tick(), name=f"load {self.name}")

    async def stop(self) -> None:
        """Stop sending, give requests in flight up to timeout_s + 1 to finish, then cancel
        what is left and close the client. Safe when never started; if stop itself is
        cancelled, it still cancels and awaits every request task before it returns."""
        ticker, self._ticker = self._ticker, None
        try:
            if ticker is not None:
                ticker.cancel()
                await asyncio.gather(ticker, return_exceptions=True)
            if self._in_flight:
                await asyncio.wait(set(self._in_flight), timeout=self.timeout_s + 1)
        finally:
            left = [task for task in self._in_flight if not task.done()]
            for task in left:
                task.cancel()
            if left:
                await asyncio.gather(*left, return_exceptions=True)
            client, self._client = self._client, None
            if client is not None:
                await client.aclose()

    def summary(self, phase_of: Callable[[float], str]) -> dict[str, LoadPhaseStats]:
        """Stats per phase of the time each request was sent ("before", "during", "after"
        always present)."""
        by_phase: dict[str, list[LoadRecord]] = {phase: [] for phase in PHASES}
        for record in list(self.records):
            by_phase.setdefault(phase_of(record.t), []).append(record)
        return {phase: phase_stats(records) for phase, records in by_phase.items()}

    # -- sending --------------------------------------------------------------------------

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.rate_per_s
        due = loop.time()
        while True:
            self._send()
            due += interval
            delay = due - loop.time()
            if delay < 0:
                # Late (a busy loop): carry on from now rather than catch up in a burst.
                due, delay = loop.time(), 0.0
            await asyncio.sleep(delay)

    def _send(self) -> None:
        sent_at = time.time()
        if len(self._in_flight) >= self.max_in_flight:
            self.records.append(LoadRecord(sent_at, False, None, TOO_MANY_IN_FLIGHT))
            return
        task = asyncio.create_task(self._request(sent_at))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _request(self, sent_at: float) -> None:
        client = self._client
        assert client is not None  # made by start(), dropped only after every request ends
        clock = time.perf_counter()
        try:
            # httpx's timeout applies to each read and write; this bounds the whole request.
            async with asyncio.timeout(self.timeout_s):
                response = await client.request(
                    self.method, self.url, content=self.body, headers=self.headers
                )
        except asyncio.CancelledError:
            self.records.append(LoadRecord(sent_at, False, None, STOPPED))
            raise
        except Exception as exc:  # a failed request is data, never raised
            self.records.append(LoadRecord(sent_at, False, None, self._one_line(exc)))
            return
        latency_ms = round((time.perf_counter() - clock) * 1000.0, 3)
        status = response.status_code
        if self.expect is not None:
            ok = status in self.expect
            error = None if ok else f"HTTP {status}, expected {describe_codes(self.expect)}"
        else:
            ok = status < 400
            error = None if ok else f"HTTP {status}"
        self.records.append(LoadRecord(sent_at, ok, latency_ms, error))

    def _one_line(self, exc: Exception) -> str:
        if isinstance(exc, (TimeoutError, httpx.TimeoutException)):
            return f"timed out after {self.timeout_s:g}s"
        if _caused_by(exc, ConnectionRefusedError):
            return "connection refused"
        text = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, httpx.ConnectError):
            text = f"cannot connect: {text}"
        return text[:300]


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether `kind` is anywhere in the chain of causes (httpx wraps an OSError that
    wraps the real refusal)."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return True
        stack.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        stack.extend(getattr(current, "exceptions", ()))
    return False
