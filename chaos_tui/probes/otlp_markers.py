"""Marker logs for the openobserve_stall scenario: send numbered logs to the collector, then
count them at the backend.

`MarkerSender` posts one OTLP/HTTP log export per tick, each holding one log record whose
attribute `chaos.marker` is `{run_id}-{n:06d}`, and writes down per marker when it was sent
and what the collector said: accepted (2xx) or how it pushed back (status, connection error,
timeout). Sends keep their schedule while the collector is slow: a stalled POST does not hold
up the next one (up to MAX_IN_FLIGHT at once), so a stall shows up as pushback, not as fewer
markers. `fetch_markers` asks the backend (OpenObserve, or the sink standing in for it) how
often each marker arrived.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chaos_tui.core.lazy import lazy

if TYPE_CHECKING:
    import httpx
else:
    httpx = lazy("httpx")  # loaded at its first use: the picker lists this without it

MARKER_ATTRIBUTE = "chaos.marker"
POST_TIMEOUT_S = 2.0
MAX_IN_FLIGHT = 64  # at 10 Hz and a 2 s timeout about 20 are ever open
STOP_TIMEOUT_S = POST_TIMEOUT_S + 1.0
ACCEPTED = "accepted"
CANCELLED = "cancelled (sender stopped)"  # our own doing at stop(), not the collector's


@dataclass
class MarkerSend:
    marker: str
    sent_at: float  # wall clock (time.time()), like the runner's injection windows
    outcome: str | None = None  # None while in flight; ACCEPTED or the pushback reason
    status: int | None = None
    latency_s: float | None = None


def export_request(marker: str, body: str, now_ns: int) -> bytes:
    """One OTLP log export with one record carrying the marker."""
    # protobuf and the OTLP messages (some 25 ms to import) load with the first marker sent,
    # not with the scenario list.
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    attr = resource_logs.resource.attributes.add()
    attr.key, attr.value.string_value = "service.name", "chaos-tui"
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "chaos_tui.probes.otlp_markers"
    record = scope_logs.log_records.add()
    record.time_unix_nano = now_ns
    record.observed_time_unix_nano = now_ns
    record.severity_number = 9  # SEVERITY_NUMBER_INFO
    record.severity_text = "INFO"
    record.body.string_value = body
    attr = record.attributes.add()
    attr.key, attr.value.string_value = MARKER_ATTRIBUTE, marker
    return request.SerializeToString()


class MarkerSender:
    def __init__(
        self,
        collector_http_url: str,
        run_id: str,
        rate_hz: float = 10.0,
        post_timeout_s: float = POST_TIMEOUT_S,
    ) -> None:
        if rate_hz <= 0:
            raise ValueError("rate_hz must be positive")
        self.url = collector_http_url.rstrip("/") + "/v1/logs"
        self.run_id = run_id
        self.interval_s = 1.0 / rate_hz
        self.post_timeout_s = post_timeout_s
        self.sends: list[MarkerSend] = []  # in send order
        self._task: asyncio.Task | None = None
        self._posts: set[asyncio.Task] = set()
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._client: httpx.AsyncClient | None = None

    @property
    def prefix(self) -> str:
        return f"{self.run_id}-"

    # -- what happened ------------------------------------------------------------------

    @property
    def attempted(self) -> list[str]:
        return [s.marker for s in self.sends]

    @property
    def accepted(self) -> list[str]:
        return [s.marker for s in self.sends if s.outcome == ACCEPTED]

    @property
    def rejected(self) -> dict[str, int]:
        """Pushback reason -> how many markers got it (in-flight ones, and ones the sender
        itself cancelled when it stopped, are not the collector's pushback)."""
        return dict(
            Counter(s.outcome for s in self.sends if s.outcome not in (None, ACCEPTED, CANCELLED))
        )

    def sent_between(self, start: float, end: float) -> list[MarkerSend]:
        """The sends whose POST started in [start, end) (wall clock seconds)."""
        return [s for s in self.sends if start <= s.sent_at < end]

    # -- running ------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("sender already started")
        self._client = httpx.AsyncClient(timeout=self.post_timeout_s)
        self._task = asyncio.create_task(self._run(), name=f"marker-sender-{self.run_id}")

    async def stop(self) -> None:
        """Stop ticking and wait (bounded) for the POSTs still open to finish."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._posts:
            await asyncio.wait(set(self._posts), timeout=STOP_TIMEOUT_S)
        for post in list(self._posts):
            post.cancel()  # the client timeout should have ended them; never hang here
        if self._posts:
            await asyncio.wait(set(self._posts), timeout=1.0)
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        n = 0
        while True:
            await self._slots.acquire()  # only blocks if MAX_IN_FLIGHT POSTs hang
            n += 1
            send = MarkerSend(f"{self.run_id}-{n:06d}", time.time())
            self.sends.append(send)
            post = asyncio.create_task(self._post(send))
            self._posts.add(post)
            post.add_done_callback(self._posts.discard)
            next_tick += self.interval_s
            # Fixed schedule; after a long hiccup, resume from now instead of bursting.
            next_tick = max(next_tick, loop.time() - self.interval_s)
            await asyncio.sleep(max(0.0, next_tick - loop.time()))

    async def _post(self, send: MarkerSend) -> None:
        clock = time.perf_counter()
        try:
            client = self._client
            if client is None:  # stopped before this POST began: nothing to send it with
                send.outcome = CANCELLED
                return
            body = export_request(send.marker, f"chaos marker {send.marker}", time.time_ns())
            response = await client.post(
                self.url, content=body, headers={"Content-Type": "application/x-protobuf"}
            )
            send.status = response.status_code
            send.outcome = (
                ACCEPTED if 200 <= response.status_code < 300 else f"http {response.status_code}"
            )
        except httpx.TimeoutException as exc:
            send.outcome = f"timeout ({type(exc).__name__})"
        except httpx.ConnectError:
            send.outcome = "connection refused or reset"
        except httpx.TransportError as exc:
            send.outcome = f"transport error ({type(exc).__name__})"
        except asyncio.CancelledError:
            send.outcome = CANCELLED
            raise
        finally:
            send.latency_s = time.perf_counter() - clock
            self._slots.release()


def marker_count_sql(prefix: str, stream: str = "default") -> str:
    """How often each marker with this prefix arrived, in OpenObserve's SQL (it flattens the
    attribute `chaos.marker` to the column `chaos_marker`)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", prefix):
        raise ValueError(f"marker prefix {prefix!r} must be letters, digits, - or _")
    return (
        f'SELECT chaos_marker, count(*) AS n FROM "{stream}" '
        f"WHERE chaos_marker LIKE '{prefix}%' GROUP BY chaos_marker"
    )


async def fetch_markers(
    sink_url: str,
    org: str,
    prefix: str,
    timeout_s: float = POST_TIMEOUT_S,
    client: httpx.AsyncClient | None = None,
    auth: tuple[str, str] | None = None,
) -> dict[str, int]:
    """marker -> times the backend received it, for the markers starting with `prefix`,
    through OpenObserve's search API (our sink answers the same query). Pass a client to
    reuse it (a probe asks ten times a second)."""
    if client is None:
        async with httpx.AsyncClient(timeout=timeout_s) as own:
            return await fetch_markers(sink_url, org, prefix, timeout_s, own, auth)
    now_us = int(time.time() * 1e6)
    body = {
        "query": {
            "sql": marker_count_sql(prefix),
            "start_time": now_us - 86_400_000_000,
            "end_time": now_us + 60_000_000,
            "from": 0,
            "size": 100_000,
        }
    }
    # No auth given: the client's own (none, for the clients passed here).
    response = await client.post(
        f"{sink_url.rstrip('/')}/api/{org}/_search",
        json=body,
        timeout=timeout_s,
        auth=httpx.USE_CLIENT_DEFAULT if auth is None else auth,
    )
    response.raise_for_status()
    return {str(h["chaos_marker"]): int(h["n"]) for h in response.json()["hits"]}


def received_ids(counts: dict[str, int]) -> list[str]:
    """Counts as a list with repeats, the shape core.delivery.check_delivery reads."""
    return list(Counter(counts).elements())
