"""The OpenTelemetry collector's own evidence of a backend stall, where it serves it: its
health endpoint (the contrib collector's `health_check` extension, :13133) and its exporter
metrics (its Prometheus text on :8888: `otelcol_exporter_queue_size`,
`otelcol_exporter_sent_*`, `otelcol_exporter_send_failed_*`).

The health endpoint does not reflect a backend outage (it says the collector runs), so a stall
is read from the exporter: requests queue up (or nothing is sent) while the backend is out, no
send fails for good (a failed send is data dropped after its retries), and what was sent
catches up once the backend is back. rotel (the sandbox's and the offline test bed's
collector) serves neither endpoint; `judge` then says the evidence is not available and why.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from chaos_tui.core.model import ProbeSample
from chaos_tui.probes.http_probe import HttpClientProbe
from chaos_tui.probes.prom_text import parse_exposition

QUEUE_SIZE = "otelcol_exporter_queue_size"
SENT = "otelcol_exporter_sent_"  # _log_records, _spans, _metric_points (a _total suffix or not)
SEND_FAILED = "otelcol_exporter_send_failed_"
MAX_READINGS = 100_000  # about 3 h at 10 Hz; older readings are dropped past it
NOT_SERVED = (
    "rotel, the collector of the sandbox and of the offline test bed, has no health endpoint "
    "and no exporter metrics (the contrib collector of docker-compose.chaos.yml serves both)"
)


@dataclass(frozen=True, slots=True)
class ExporterReading:
    """One read of the collector's exporter metrics, summed over its exporters and signals."""

    t: float
    queue_size: float | None  # None: no sending queue is configured
    sent: float
    send_failed: float


def exporter_reading(text: str, t: float) -> ExporterReading:
    """The exporter metrics in one Prometheus text page; ValueError when there are none."""
    queue: float | None = None
    sent = failed = 0.0
    seen = False
    for sample in parse_exposition(text):
        if sample.name == QUEUE_SIZE:
            queue = (queue or 0.0) + sample.value
            seen = True
        elif sample.name.startswith(SENT):
            sent += sample.value
            seen = True
        elif sample.name.startswith(SEND_FAILED):
            failed += sample.value
            seen = True
    if not seen:
        raise ValueError("no otelcol_exporter_* metric on the page")
    return ExporterReading(t, queue, sent, failed)


class CollectorMetricsProbe(HttpClientProbe):
    """The collector's exporter queue size (value), each read kept for the verdict."""

    def __init__(self, name: str, url: str) -> None:
        super().__init__(name, "collector exporter queue (otelcol_exporter_queue_size)")
        self.url = url
        self.readings: list[ExporterReading] = []

    async def read(self) -> ExporterReading:
        response = await self.get_ok(self.url)
        return exporter_reading(response.text, time.time())

    async def measure(self) -> float | None:
        reading = await self.read()
        self.readings.append(reading)
        if len(self.readings) > MAX_READINGS:
            del self.readings[: len(self.readings) - MAX_READINGS]
        return reading.queue_size


@dataclass(frozen=True)
class Evidence:
    """What the collector's own endpoints said about a run: `failed` checks (None: there was
    no evidence to judge), a line saying which evidence was used and what it showed (or why
    there was none), and figures for the result."""

    failed: int | None
    used: str
    figures: dict[str, float | int | str | None]


def judge(
    health: Sequence[ProbeSample],
    readings: Sequence[ExporterReading],
    final: ExporterReading | None,
    stall: tuple[float, float] | None,
    accepted_at: Sequence[float],
    urls: tuple[str, str],
) -> Evidence:
    """Judge the collector by its health samples and exporter readings.

    `stall` is (injected, healed) of the backend's fault; `accepted_at` when each marker the
    collector accepted was sent; `final` a read after the markers were waited for. Checks:
    the health endpoint, once it answered, never failed; during the stall the exporter held
    the backlog (its queue grew, or it sent fewer records than the collector accepted); no
    send failed for good; afterwards it sent at least every marker accepted since its first
    reading and its queue was back to its level before the stall."""
    health_url, metrics_url = urls
    answered = [s for s in health if s.ok]
    last = final or (readings[-1] if readings else None)
    if not answered and last is None:
        return Evidence(
            None,
            f"not available: nothing answered at {health_url} ({_first_error(health)}) nor "
            f"at {metrics_url}: {NOT_SERVED}",
            {},
        )
    failed = 0
    parts: list[str] = []
    figures: dict[str, float | int | str | None] = {}
    if answered:
        since = [s for s in health if s.t >= answered[0].t]
        down = sum(not s.ok for s in since)
        failed += down > 0
        parts.append(f"health endpoint {health_url}: {down} of {len(since)} checks failed")
        figures["collector health checks failed"] = down
    else:
        parts.append(f"health endpoint {health_url}: not available ({_first_error(health)})")
    if last is None:
        parts.append(f"exporter metrics {metrics_url}: not available")
        return Evidence(failed, "; ".join(parts), figures)
    first = readings[0] if readings else last
    before = [r for r in readings if stall is None or r.t < stall[0]]
    during = [r for r in readings if stall is not None and stall[0] <= r.t <= stall[1]]
    queue_before = max((r.queue_size or 0.0 for r in before), default=0.0)
    queue_peak = max((r.queue_size or 0.0 for r in during), default=None)
    sent_during = (during[-1].sent - during[0].sent) if len(during) > 1 else None
    accepted_during = sum(1 for t in accepted_at if stall and stall[0] <= t <= stall[1])
    held = (queue_peak is not None and queue_peak > queue_before) or (
        sent_during is not None and sent_during < accepted_during
    )
    dropped = last.send_failed - first.send_failed
    accepted_since = sum(1 for t in accepted_at if t >= first.t)
    sent = last.sent - first.sent
    drained = (last.queue_size or 0.0) <= queue_before
    caught_up = sent >= accepted_since and drained
    failed += (not held) + (dropped > 0) + (not caught_up)
    figures.update(
        {
            "collector queue before the stall": queue_before,
            "collector queue peak during the stall": queue_peak,
            "collector records sent during the stall": sent_during,
            "collector send failures": dropped,
            "collector records sent": sent,
            "collector queue at the end": last.queue_size,
        }
    )
    parts.append(
        f"exporter metrics {metrics_url}: queue {queue_before:g} before, peak "
        f"{_num(queue_peak)} during the stall, {_num(last.queue_size)} at the end; "
        f"{_num(sent_during)} records sent during the stall of {accepted_during} accepted"
        f" ({'held the backlog' if held else 'no backlog seen: did the stall land?'}); "
        f"{dropped:g} send failures; {sent:g} records sent of {accepted_since} markers "
        f"accepted since the first read ({'caught up' if caught_up else 'NOT caught up'})"
    )
    return Evidence(failed, "; ".join(parts), figures)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g}"


def _first_error(samples: Sequence[ProbeSample]) -> str:
    return next((s.error for s in samples if not s.ok and s.error), "no answer")
