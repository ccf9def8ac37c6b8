"""openobserve_stall: a stalled telemetry backend loses no telemetry. The collector keeps
accepting, retries, and every marker sent during the stall arrives once the backend is back."""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar, Literal

from pydantic import Field

from chaos_tui.core.contracts import Fault, Presets, Probe, RunContext, ScenarioParams, hold_s_field
from chaos_tui.core.delivery import check_delivery, examples
from chaos_tui.core.model import InjectionWindow, InvariantResult, InvariantSpec
from chaos_tui.core.platform_target import Endpoints, PlatformTarget, ServiceFaultParams
from chaos_tui.platform.telemetry import ORG
from chaos_tui.probes import collector_evidence
from chaos_tui.probes.collector_evidence import CollectorMetricsProbe
from chaos_tui.probes.http_probe import HttpClientProbe, HttpProbe
from chaos_tui.probes.otlp_markers import MarkerSender, fetch_markers, received_ids
from chaos_tui.probes.tcp_probe import TcpProbe
from chaos_tui.scenarios.base import PlatformScenario


class OpenObserveStallParams(ScenarioParams):
    marker_rate: float = Field(10.0, gt=0, le=500, description="marker logs per second")
    hold_s: float = hold_s_field(5.0, 120, "how long the backend is out")
    # stop: the backend refuses connections, so nothing half-sent can be counted twice.
    # pause: it hangs (SIGSTOP); exports time out, and a retried export can then arrive twice.
    mode: Literal["stop", "pause"] = Field("stop", description="stop or freeze the backend")
    recover_s: float = Field(3.0, ge=0, le=600, description="load after the heal")
    arrival_limit_s: float = Field(
        60.0,
        gt=0,
        le=170,
        description="stalled markers must arrive within this long after the heal",
    )


Params = OpenObserveStallParams  # the name tests and callers import


COLLECTOR_EVIDENCE = InvariantSpec(
    name="collector_evidence",
    description="by the collector's own health endpoint and exporter metrics, where it "
    "serves them: health up throughout, backlog held during the stall, no send failed, sent "
    "caught up after",
    limit=0,
    unit="checks failed",
)


def evidence_urls(at: Endpoints) -> tuple[str, str] | None:
    """The collector's health and metrics URLs, where the target names them."""
    if at.collector_health_url and at.collector_metrics_url:
        return at.collector_health_url, at.collector_metrics_url
    return None


class ArrivalProbe(HttpClientProbe):
    """Markers the collector accepted that the backend has not shown yet; it notes when each
    marker was first seen, so delivery delays are measured, not guessed."""

    def __init__(
        self,
        name: str,
        sink_url: str,
        scenario: OpenObserveStall,
        auth: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(name, "markers accepted by the collector, not yet at the backend")
        self.sink_url = sink_url
        self.auth = auth
        self.scenario = scenario
        self.first_seen: dict[str, float] = {}
        self.twice: dict[str, float] = {}  # marker -> when it was first seen received twice

    async def measure(self) -> float | None:
        sender = self.scenario.sender
        if sender is None:
            return 0.0
        counts = await fetch_markers(
            self.sink_url, ORG, sender.prefix, self.timeout_s, self.http, self.auth
        )
        now = time.time()
        for marker, n in counts.items():
            if n > 1:  # the backend keeps what it got: received twice stays twice
                self.twice.setdefault(marker, now)
        for marker in counts:
            self.first_seen.setdefault(marker, now)
        return float(sum(1 for m in sender.accepted if m not in counts))


class OpenObserveStall(PlatformScenario):
    name = "openobserve_stall"
    order = 20
    hypothesis = (
        "When the telemetry backend stalls, no telemetry is lost: the collector keeps "
        "accepting OTLP, and every marker sent during the stall reaches the backend once it "
        "is back, each exactly once."
    )
    profile = "chaos-observe"
    presets: ClassVar[Presets] = {"plan": {}}  # the plan gives no hold: its defaults are the plan's
    invariant_budget_s = 180.0
    runbook = "chaos_tui/runbooks/openobserve_stall.md"
    Params = OpenObserveStallParams
    params: OpenObserveStallParams
    recovery_probe = "backend"
    backlog_probe = "markers_pending"

    def __init__(self, params: OpenObserveStallParams | None = None) -> None:
        super().__init__(params)
        self.sender: MarkerSender | None = None  # the workload's, made by start_workload

    def probes(self, target: PlatformTarget) -> list[Probe]:
        at = target.endpoints(self.profile)
        probes: list[Probe] = [
            HttpProbe("backend", at.sink_url + "/healthz"),
            TcpProbe("collector", at.collector_host, at.collector_port),
            ArrivalProbe("markers_pending", at.sink_url, self, at.sink_auth),
        ]
        if evidence_urls(at):
            probes += [
                HttpProbe("collector_health", at.collector_health_url),
                CollectorMetricsProbe("collector_exporter", at.collector_metrics_url),
            ]
        return probes

    def steady_state(self) -> dict[str, float | None]:
        return {"backend": None, "collector": None}

    def faults(self, target: PlatformTarget) -> list[Fault]:
        fault = target.stop if self.params.mode == "stop" else target.pause
        return [fault(ServiceFaultParams(service="sink", hold_s=self.params.hold_s))]

    def workload(self) -> str:
        return f"{self.params.marker_rate:g} marker logs/s to the collector, each to arrive once"

    async def start_workload(self, ctx: RunContext) -> None:
        self.sender = MarkerSender(
            self.endpoints(ctx).collector_url, ctx.run_id, self.params.marker_rate
        )
        self.sender.start()
        ctx.note(f"sending {self.params.marker_rate:g} marker logs/s to the collector")

    async def stop_workload(self, ctx: RunContext) -> None:
        if self.sender is not None:
            await self.sender.stop()

    def invariants(self) -> list[InvariantSpec]:
        return [
            InvariantSpec(
                name="collector_keeps_accepting",
                description="the collector refused no marker (no error, timeout or refusal)",
                limit=0,
                unit="markers",
            ),
            InvariantSpec(
                name="stalled_markers_arrive",
                description="markers sent during the stall that never reached the backend",
                limit=0,
                unit="markers",
            ),
            InvariantSpec(
                name="arrival_after_heal",
                description="from heal until the backend held every marker sent before it",
                limit=self.params.arrival_limit_s,
                unit="s",
            ),
            InvariantSpec(
                name="no_lost_markers",
                description="sent = received, by marker id",
                limit=0,
                unit="markers",
            ),
            InvariantSpec(
                name="no_duplicate_markers",
                description="no marker received twice",
                limit=0,
                unit="markers",
            ),
        ]

    def invariants_on(self, target: PlatformTarget) -> list[InvariantSpec]:
        """Where the target names the collector's health and metrics endpoints (Docker),
        the collector is judged by them as well."""
        evidence = [COLLECTOR_EVIDENCE] if evidence_urls(target.endpoints(self.profile)) else []
        return [*self.invariants(), *evidence]

    async def judge_live(self, ctx: RunContext) -> list[InvariantResult]:
        """What cannot be undone: a marker the collector refused stays refused, and one the
        backend holds twice stays doubled. A marker not at the backend yet is late, not lost:
        no_lost_markers and stalled_markers_arrive wait for the verdict."""
        sender = self.sender
        if sender is None:
            return []
        rejected = sender.rejected
        pushback = ", ".join(f"{n} {why}" for why, n in rejected.items())
        refused = self.judge("collector_keeps_accepting", sum(rejected.values()), pushback)
        if rejected:
            refused.broke_at = min(
                s.sent_at + (s.latency_s or 0.0) for s in sender.sends if s.outcome in rejected
            )
        arrivals = ctx.plan.probe("markers_pending")
        twice = arrivals.twice if isinstance(arrivals, ArrivalProbe) else {}
        doubled = self.judge(
            "no_duplicate_markers", len(twice), examples(sorted(twice)) if twice else ""
        )
        if twice:
            doubled.broke_at = min(twice.values())
        return [refused, doubled]

    async def check_invariants(self, ctx: RunContext) -> list[InvariantResult]:
        sender = self.sender
        assert sender is not None, "check_invariants before start_workload"
        arrivals = ctx.plan.probe("markers_pending")
        assert isinstance(arrivals, ArrivalProbe)
        window = ctx.timeline.windows[0] if ctx.timeline.windows else None
        healed_at = window.healed_at if window else None
        accepted = set(sender.accepted)
        counts = await self._wait_for_arrivals(ctx, sender, arrivals, accepted, healed_at)
        self.delivery = d = check_delivery(sender.attempted, accepted, received_ids(counts))

        stalled = [
            s.marker
            for s in sender.sends
            if window and window.contains(s.sent_at) and s.marker in accepted
        ]
        missing_stalled = [m for m in stalled if m not in counts]
        before_heal = [
            s.marker
            for s in sender.sends
            if healed_at and s.sent_at < healed_at and s.marker in accepted
        ]
        arrival = arrival_s(arrivals.first_seen, before_heal, healed_at)
        rejected = sender.rejected
        self.measurements.update(
            {
                "markers sent": len(sender.attempted),
                "markers accepted by the collector": len(accepted),
                "collector pushback": rejected,
                "markers sent during the stall": len(stalled),
                "markers received by the backend": d.received,
                "all markers in after heal (s)": arrival,
            }
        )
        ctx.note(
            f"markers: {len(sender.attempted)} sent, {len(accepted)} accepted, "
            f"{d.published} received, {d.lost} lost, {len(stalled)} during the stall"
        )
        pushback = ", ".join(f"{n} {why}" for why, n in rejected.items())
        evidence = await self._collector_evidence(ctx, sender, window)
        return [
            self.judge("collector_keeps_accepting", sum(rejected.values()), pushback),
            self.judge(
                "stalled_markers_arrive",
                len(missing_stalled) if stalled else None,
                examples(missing_stalled) if stalled else "no marker was sent during the stall",
            ),
            self.judge(
                "arrival_after_heal",
                arrival,
                "" if arrival is not None else "not every marker arrived",
            ),
            self.judge("no_lost_markers", d.lost, examples(d.lost_sample)),
            self.judge("no_duplicate_markers", d.duplicated, examples(d.duplicated_sample)),
            *evidence,
        ]

    async def _collector_evidence(
        self, ctx: RunContext, sender: MarkerSender, window: InjectionWindow | None
    ) -> list[InvariantResult]:
        """The collector judged by its own endpoints where the target says it serves them,
        and, either way, a line in the result saying which evidence judged it."""
        backend_only = (
            "judged instead by its OTLP answers (the TCP check on its OTLP/HTTP port, the "
            "pushback) and the marker counts at the backend"
        )
        urls = evidence_urls(self.endpoints(ctx))
        if urls is None:
            self.measurements["collector evidence"] = (
                f"not available on target {ctx.target.name}, which names no health or metrics "
                f"endpoint of its collector: {collector_evidence.NOT_SERVED}; {backend_only}"
            )
            return []
        metrics = ctx.plan.probe("collector_exporter")
        assert isinstance(metrics, CollectorMetricsProbe)
        try:
            final = await metrics.read()
        except Exception:
            final = None
        accepted = set(sender.accepted)
        evidence = collector_evidence.judge(
            ctx.timeline.samples("collector_health"),
            metrics.readings,
            final,
            (window.injected_at, window.healed_at or time.time()) if window else None,
            [s.sent_at for s in sender.sends if s.marker in accepted],
            urls,
        )
        self.measurements.update(evidence.figures)
        if evidence.failed is None:
            self.measurements["collector evidence"] = f"{evidence.used}; {backend_only}"
            ctx.note(f"collector evidence {evidence.used}")
            return []  # nothing to judge it by: said so, neither failed nor passed
        self.measurements["collector evidence"] = f"used: {evidence.used}"
        return [COLLECTOR_EVIDENCE.judge(evidence.failed, evidence.used)]

    async def _wait_for_arrivals(
        self,
        ctx: RunContext,
        sender: MarkerSender,
        arrivals: ArrivalProbe,
        accepted: set[str],
        healed_at: float | None,
    ) -> dict[str, int]:
        """Poll the backend until every accepted marker is there or the arrival limit since
        the heal has passed; the collector's retries need that long at most."""
        deadline = (healed_at or time.time()) + self.params.arrival_limit_s
        counts: dict[str, int] = {}
        at = self.endpoints(ctx)
        while True:
            try:
                counts = await fetch_markers(at.sink_url, ORG, sender.prefix, auth=at.sink_auth)
            except Exception:
                pass
            now = time.time()
            for marker in counts:
                arrivals.first_seen.setdefault(marker, now)
            if accepted <= counts.keys() or now > deadline:
                return counts
            await asyncio.sleep(0.2)


def arrival_s(seen: dict[str, float], markers: list[str], healed_at: float | None) -> float | None:
    """Seconds from the heal until the last of these markers was first seen."""
    if healed_at is None or not markers:
        return None
    if any(m not in seen for m in markers):
        return None
    return round(max(0.0, max(seen[m] for m in markers) - healed_at), 3)
