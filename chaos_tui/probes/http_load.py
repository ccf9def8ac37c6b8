"""HTTP traffic through a fault: a scenario file's `load: - http_requests: {...}`.

A `PatternedLoad` (chaos_tui/load/driver.py) does the sending: open loop, a constant
`rate_per_s` by default or any pattern (ramp, step, spike, sine, burst), evenly spaced or
Poisson from a seed. This module says what one send is (one request, its status judged) and
keeps the names the file's checks and results use: `records`, `summary(phase_of)` split into
"before", "during" and "after", and `LoadPhaseStats`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import httpx

from chaos_tui.load.driver import (
    SKIPPED_AT_CAP,
    STOPPED,
    BadAnswer,
    PatternedLoad,
    PhaseStats,
    SendRecord,
)
from chaos_tui.load.patterns import Constant, PatternBase, describe_mode
from chaos_tui.probes.http_probe import describe_codes

PHASES = ("before", "during", "after")
TOO_MANY_IN_FLIGHT = SKIPPED_AT_CAP
LoadPhaseStats = PhaseStats
__all__ = [
    "PHASES",
    "STOPPED",
    "TOO_MANY_IN_FLIGHT",
    "HttpRequestLoad",
    "LoadPhaseStats",
    "LoadRecord",
]


@dataclass(frozen=True, slots=True)
class LoadRecord:
    """A request's outcome given by hand (what `summary` reads of the driver's records)."""

    t: float  # wall-clock time.time() when the request was sent
    ok: bool  # a response with an accepted status arrived in time
    latency_ms: float | None  # time to the full response; None when no response
    error: str | None = None  # one line: "HTTP 503", "timed out after 2s", ...


class HttpRequestLoad:
    """Requests to one URL on a pattern (default: `rate_per_s` a second, evenly spaced) until
    `stop()`. `timeout_s` bounds each whole request, connection included. `expect_status` (a
    code or codes) replaces "below 400" as what counts as ok."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        method: str = "GET",
        body: str | None = None,
        headers: dict[str, str] | None = None,
        rate_per_s: float = 10.0,
        pattern: PatternBase | None = None,
        seed: int = 0,
        poisson: bool = False,
        timeout_s: float = 2.0,
        max_in_flight: int = 256,
        expect_status: int | Collection[int] | None = None,
    ) -> None:
        if pattern is None:
            if rate_per_s <= 0:
                raise ValueError(f"rate_per_s must be positive, not {rate_per_s:g}")
            pattern = Constant(rate_per_s=rate_per_s)
        if timeout_s <= 0:
            raise ValueError(f"timeout must be positive, not {timeout_s:g}s")
        self.name = name
        self.url = url
        self.method = method.upper()
        self.body = body
        self.headers = dict(headers or {})
        self.pattern = pattern
        self.timeout_s = timeout_s
        self.max_in_flight = max_in_flight
        self.expect: Collection[int] | None = (
            (expect_status,) if isinstance(expect_status, int) else expect_status
        )
        self.driver = PatternedLoad(
            pattern,
            self._request,
            name=f"load {name}",
            seed=seed,
            poisson=poisson,
            max_in_flight=max_in_flight,
            timeout_s=timeout_s,  # httpx's applies to each read and write; this to the whole
            drain_s=timeout_s + 1,
            describe_error=self._one_line,
        )
        self._client: httpx.AsyncClient | None = None

    def describe(self) -> str:
        pattern, driver = self.pattern, self.driver
        if isinstance(pattern, Constant) and not driver.poisson:
            return f"{pattern.rate_per_s:g} {self.method}/s to {self.url}"
        mode = describe_mode(driver.poisson, driver.seed)
        return f"{self.method} to {self.url}: {pattern.describe()} ({mode})"

    @property
    def records(self) -> list[SendRecord]:
        """The driver's: a record per request, in the order they ended."""
        return self.driver.records

    @records.setter
    def records(self, records: list[SendRecord]) -> None:
        self.driver.records = records

    @property
    def running(self) -> bool:
        return self.driver.running

    def start(self) -> None:
        """Begin sending (call inside the running loop); a second call does nothing."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.timeout_s,
                # The in-flight cap is the driver's: a pool smaller than it would queue
                # requests inside httpx, where their waiting would look like server latency.
                limits=httpx.Limits(
                    max_connections=self.max_in_flight,
                    max_keepalive_connections=min(self.max_in_flight, 64),
                ),
            )
        self.driver.start()

    async def stop(self) -> None:
        """Stop sending, give requests in flight up to timeout_s + 1 to finish, then cancel
        what is left and close the client. Safe when never started; if stop itself is
        cancelled, it still cancels and awaits every request task before it returns."""
        try:
            await self.driver.stop()
        finally:
            client, self._client = self._client, None
            if client is not None:
                await client.aclose()

    def summary(self, phase_of: Callable[[float], str]) -> dict[str, LoadPhaseStats]:
        """Stats per phase of the time each request was sent ("before", "during", "after"
        always present)."""
        return self.driver.summary(phase_of, PHASES)

    # -- one request ----------------------------------------------------------------------

    async def _request(self, _index: int) -> None:
        client = self._client
        assert client is not None  # made by start(), dropped only after every request ends
        response = await client.request(
            self.method, self.url, content=self.body, headers=self.headers
        )
        status = response.status_code
        if self.expect is not None:
            if status not in self.expect:
                raise BadAnswer(f"HTTP {status}, expected {describe_codes(self.expect)}")
        elif status >= 400:
            raise BadAnswer(f"HTTP {status}")

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
