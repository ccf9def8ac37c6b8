"""PatternedLoad: sends on a pattern's schedule through any `submit(n)`, open loop.

Open loop: each send runs in its own task at its scheduled time whatever earlier sends are
doing, so a stalled system shows up as latency, timeouts and skipped sends rather than as a
lower rate. What a send is, is the caller's: an HTTP request, a job enqueued. `submit(n)` gets
the send's index; it returns when the send is done and raises when it failed. Raising
`BadAnswer` says the system answered and the answer is a failure (an HTTP 503): that send has a
latency. Any other exception (a timeout, a refused connection) means no answer came.

Every send leaves one `SendRecord` (index, scheduled, started and finished times, ok, error,
phase): `records`, bounded by `max_records` (past it records are counted in
`records_dropped`, not kept). `summary()` gives `PhaseStats` per phase.

The clock starts at `start()`: send k is due at start + its offset in the schedule. A loop
that falls behind (a blocked event loop) by more than `late_s` carries on from now, shifting
the rest of the schedule (`lag_s` says by how much in all), rather than sending what it
missed in one burst.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from pydantic import BaseModel

from chaos_tui.core.timeline import percentile
from chaos_tui.load.patterns import PatternBase, check_bounded, iter_arrivals

Submit = Callable[[int], Awaitable[None]]
PhaseOf = Callable[[float], str]

SKIPPED_AT_CAP = "too many requests in flight"
STOPPED = "stopped before a response"
DEFAULT_MAX_RECORDS = 200_000


class BadAnswer(Exception):
    """Raised by a submit whose send was answered with a failure: counted as an error, with
    its latency (an HTTP 503 is slow or fast; a timeout has no latency)."""


@dataclass(frozen=True, slots=True)
class SendRecord:
    index: int  # the send's place in the schedule, from 0
    scheduled_at: float  # wall clock (time.time()) when it was due by the schedule
    started_at: float | None  # when submit was called; None: skipped at the in-flight cap
    finished_at: float | None  # when an answer came (ok or BadAnswer); None: no answer
    ok: bool
    error: str | None = None  # one line: "HTTP 503", "timed out after 2s", ...
    phase: str | None = None  # the driver's phase_at callback at send time, if it has one

    @property
    def t(self) -> float:
        """When it was sent (when it was due, for a send skipped at the cap)."""
        return self.started_at if self.started_at is not None else self.scheduled_at

    @property
    def latency_ms(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at) * 1000.0, 3)


class Outcome(Protocol):
    """What stats read of a record: SendRecord has it, and so may a record written by hand."""

    @property
    def t(self) -> float: ...
    @property
    def ok(self) -> bool: ...
    @property
    def latency_ms(self) -> float | None: ...
    @property
    def error(self) -> str | None: ...


R = TypeVar("R", bound=Outcome)


class PhaseStats(BaseModel):
    requests: int = 0
    ok: int = 0
    errors: int = 0  # skipped sends included
    skipped: int = 0  # not sent: the in-flight cap was reached
    error_rate: float | None = None  # None when nothing was sent in the phase
    latency_ms_p50: float | None = None  # latencies of ok sends only
    latency_ms_p95: float | None = None
    latency_ms_p99: float | None = None
    latency_ms_max: float | None = None
    last_error: str | None = None

    def as_measurement(self) -> dict[str, float | int | None]:
        """The numbers, for invariants and reports (the last error is text, not a number)."""
        return self.model_dump(exclude={"last_error"})


def phase_stats(records: Sequence[Outcome]) -> PhaseStats:
    if not records:
        return PhaseStats()
    ok = sum(r.ok for r in records)
    latencies = sorted(r.latency_ms for r in records if r.ok and r.latency_ms is not None)
    # Records are appended as sends finish; the last error is the last one sent.
    failed = sorted((r for r in records if r.error), key=lambda r: r.t)
    stats = PhaseStats(
        requests=len(records),
        ok=ok,
        errors=len(records) - ok,
        skipped=sum(r.error == SKIPPED_AT_CAP for r in records),
        error_rate=round(1 - ok / len(records), 4),
        last_error=failed[-1].error if failed else None,
    )
    if latencies:
        stats.latency_ms_p50 = round(percentile(latencies, 50), 3)
        stats.latency_ms_p95 = round(percentile(latencies, 95), 3)
        stats.latency_ms_p99 = round(percentile(latencies, 99), 3)
        stats.latency_ms_max = round(latencies[-1], 3)
    return stats


def summarize(
    records: Iterable[Outcome], phase_of: PhaseOf, phases: Sequence[str] = ()
) -> dict[str, PhaseStats]:
    """Stats per phase_of(record.t); every name in `phases` is present, even if empty."""
    return _group(records, lambda record: phase_of(record.t), phases)


def _group(
    records: Iterable[R], key: Callable[[R], str], phases: Sequence[str]
) -> dict[str, PhaseStats]:
    by_phase: dict[str, list[R]] = {phase: [] for phase in phases}
    for record in records:
        by_phase.setdefault(key(record), []).append(record)
    return {phase: phase_stats(rs) for phase, rs in by_phase.items()}


def _one_line(exc: BaseException) -> str:
    return (" ".join(str(exc).split()) or type(exc).__name__)[:300]


class PatternedLoad:
    """Sends on `pattern`'s schedule (even, or Poisson from `seed`) through `submit` until
    `stop()`, or until `duration_s` if given (checked against the arrivals cap at once).

    - `max_in_flight`: a send due while that many are unfinished is skipped and recorded as
      such (error SKIPPED_AT_CAP), so a stalled system cannot pile up tasks without bound.
    - `timeout_s`: bounds each submit (error "timed out after Xs"); None: the submit's own.
    - `drain_s`: how long stop() lets unfinished sends run before it cancels them (STOPPED).
    - `phase_at(wall_time)`: called at each send; its answer is the record's `phase`.
    - `describe_error(exc)`: one line for a failed submit (default: the exception's text).
    """

    def __init__(
        self,
        pattern: PatternBase,
        submit: Submit,
        *,
        name: str = "load",
        seed: int = 0,
        poisson: bool = False,
        duration_s: float | None = None,
        max_in_flight: int = 256,
        timeout_s: float | None = None,
        drain_s: float = 5.0,
        late_s: float = 0.05,
        max_records: int = DEFAULT_MAX_RECORDS,
        phase_at: PhaseOf | None = None,
        describe_error: Callable[[Exception], str] = _one_line,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, not {max_in_flight}")
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"timeout must be positive, not {timeout_s:g}s")
        if max_records < 0:
            raise ValueError(f"max_records must be 0 or more, not {max_records}")
        if duration_s is not None:
            check_bounded(pattern, duration_s)
        self.pattern = pattern
        self.submit = submit
        self.name = name
        self.seed = seed
        self.poisson = poisson
        self.duration_s = duration_s
        self.max_in_flight = max_in_flight
        self.timeout_s = timeout_s
        self.drain_s = drain_s
        self.late_s = late_s
        self.max_records = max_records
        self.phase_at = phase_at
        self.describe_error = describe_error
        self.records: list[SendRecord] = []
        self.records_dropped = 0
        self.sent = 0  # sends due so far, skipped ones included
        self.lag_s = 0.0  # how far the schedule was shifted because the loop fell behind
        self.started_wall: float | None = None  # time.time() at start()
        self._ticker: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> bool:
        return self._ticker is not None and not self._ticker.done()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def schedule(self) -> Iterator[float]:
        """The send offsets in seconds from the start: the same every time for one pattern,
        seed and mode."""
        times = iter_arrivals(self.pattern, self.seed, self.poisson)
        return times if self.duration_s is None else _until(times, self.duration_s)

    def start(self) -> None:
        """Start the clock and begin sending (call inside the running loop); a second call
        while running does nothing."""
        if self._ticker is not None:
            return
        self._ticker = asyncio.create_task(self._tick(), name=self.name)

    async def wait(self) -> None:
        """Until the schedule is over (a `duration_s`, or a pattern that ends) or stop()."""
        ticker = self._ticker
        if ticker is not None:
            await asyncio.gather(ticker, return_exceptions=True)

    async def stop(self) -> None:
        """Stop sending, give unfinished sends up to drain_s, then cancel what is left (each
        recorded as STOPPED). Safe when never started and twice; if stop itself is cancelled,
        it still cancels and awaits every send before it returns."""
        ticker, self._ticker = self._ticker, None
        try:
            if ticker is not None:
                ticker.cancel()
                await asyncio.gather(ticker, return_exceptions=True)
            if self._in_flight:
                await asyncio.wait(set(self._in_flight), timeout=self.drain_s)
        finally:
            left = [task for task in self._in_flight if not task.done()]
            for task in left:
                task.cancel()
            if left:
                await asyncio.gather(*left, return_exceptions=True)

    def summary(
        self, phase_of: PhaseOf | None = None, phases: Sequence[str] = ()
    ) -> dict[str, PhaseStats]:
        """Stats per phase: by `phase_of(send time)` if given (a timeline's, after the run),
        else by the phase each record got at send time ("run" when it got none)."""
        if phase_of is not None:
            return summarize(list(self.records), phase_of, phases)
        return _group(list(self.records), lambda record: record.phase or "run", phases)

    # -- sending --------------------------------------------------------------------------

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        self.started_wall = time.time()
        start = loop.time()
        self.lag_s = 0.0
        for index, offset in enumerate(self.schedule()):
            due = start + offset + self.lag_s
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif -delay > self.late_s:
                # Behind (a blocked loop): carry on from now rather than catch up in a burst.
                self.lag_s += -delay
            self.sent += 1
            self._send(index, self.started_wall + offset)

    def _send(self, index: int, scheduled_at: float) -> None:
        now = time.time()
        phase = self.phase_at(now) if self.phase_at is not None else None
        if len(self._in_flight) >= self.max_in_flight:
            self._keep(SendRecord(index, scheduled_at, None, None, False, SKIPPED_AT_CAP, phase))
            return
        task = asyncio.create_task(self._run(index, scheduled_at, phase))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _run(self, index: int, scheduled_at: float, phase: str | None) -> None:
        # Wall-clock stamps from one monotonic clock: a latency never jumps with NTP.
        wall0, mono0 = time.time(), time.perf_counter()

        def wall() -> float:
            return wall0 + (time.perf_counter() - mono0)

        ok, error, finished = True, None, None
        try:
            if self.timeout_s is None:
                await self.submit(index)
            else:
                async with asyncio.timeout(self.timeout_s):
                    await self.submit(index)
            finished = wall()
        except asyncio.CancelledError:
            self._keep(SendRecord(index, scheduled_at, wall0, None, False, STOPPED, phase))
            raise
        except TimeoutError as exc:
            ok = False
            error = (
                f"timed out after {self.timeout_s:g}s"
                if self.timeout_s is not None
                else self.describe_error(exc)
            )
        except BadAnswer as exc:
            ok, error, finished = False, _one_line(exc), wall()
        except Exception as exc:  # a failed send is data, never raised
            ok, error = False, self.describe_error(exc)
        self._keep(SendRecord(index, scheduled_at, wall0, finished, ok, error, phase))

    def _keep(self, record: SendRecord) -> None:
        if len(self.records) < self.max_records:
            self.records.append(record)
        else:
            self.records_dropped += 1


def _until(times: Iterator[float], end: float) -> Iterator[float]:
    for t in times:
        if t >= end:
            return
        yield t
