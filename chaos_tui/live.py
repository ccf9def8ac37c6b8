"""What the console shows of a run, rebuilt from the run's events alone.

Textual-free: the run screen redraws from this a few times a second, whatever the probe rate,
and the tests and snapshots feed it events directly. Every buffer is bounded: the samples to
the last KEEP_S seconds, the log to LOG_LINES_KEPT lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median

from chaos_tui.core.events import (
    FaultHealed,
    FaultInjected,
    InvariantChecked,
    LiveJudgement,
    PhaseChanged,
    RunEvent,
    RunFinished,
    SampleTaken,
)
from chaos_tui.core.model import (
    InjectionWindow,
    InvariantResult,
    InvariantSpec,
    Measurement,
    ProbeSample,
    RecoveryMetrics,
    RunResult,
)
from chaos_tui.core.timeline import Timeline
from chaos_tui.narration import Narrator, OrderedLog

# The screen draws the last minutes only (the chart 3, a sparkline 1): samples older than
# KEEP_S are dropped as the run goes (every FORGET_EVERY samples), and no probe holds more
# than SAMPLES_KEPT whatever its rate. The saved result has the full series: the run's own
# timeline keeps it, and the recovery metrics are read from there when the app passes it.
KEEP_S = 300.0
FORGET_EVERY = 500
SAMPLES_KEPT = 36_000
LOG_LINES_KEPT = 500
RECENT = 10  # samples that decide "degraded": any failure among them
SLOW_FACTOR = 3.0  # latency this many times the pre-fault median counts as degraded


@dataclass(frozen=True)
class ProbeInfo:
    name: str
    description: str
    unit: str = ""  # what its value counts, e.g. "jobs/s"


@dataclass(frozen=True)
class Countdown:
    """Seconds from the latest event until a live fault's planned heal (the end of its hold)
    and until its lease's TTL runs out; None where the events have not said yet (applying,
    or a result saved before windows carried these). Below 0: overdue."""

    heal_in_s: float | None
    expires_in_s: float | None


class LiveRun:
    def __init__(
        self,
        scenario: str,
        target: str,
        probes: list[ProbeInfo],
        invariants: list[InvariantSpec],
        recovery_probe: str | None = None,
        backlog_probe: str | None = None,
        recovery_from: Timeline | None = None,
    ) -> None:
        self.scenario = scenario
        self.target = target
        self.suite: str | None = None  # a suite's progress, `platform run 2/4`, when in one
        self.probes = probes
        self.invariant_specs = invariants
        self.recovery_probe = recovery_probe
        self.backlog_probe = backlog_probe
        self.timeline = Timeline(max_samples=SAMPLES_KEPT)
        # The run's whole timeline, for metrics that look back past KEEP_S (a long fault);
        # without it (tests, snapshots) this LiveRun's own, which is the same for a short run.
        # Read as the samples come (a watch reads only what came since it last looked), so
        # a redraw costs the same twenty minutes into a fault as two seconds in.
        self._recovery = (recovery_from or self.timeline).watch()
        self._added = 0
        for p in probes:
            self.timeline.register(p.name, p.description)
        self.phase = "prepare"
        self.phase_detail = ""
        self.started_at: float | None = None
        self.now: float | None = None  # the time of the latest event: redraws never read a clock
        self.injecting: str | None = None  # a fault being applied right now
        self.invariant_results: dict[str, InvariantResult] = {}  # the verdicts at verify
        # Judged while the fault is live, as they stand so far (provisional), and the
        # scenario's own numbers so far; the verdicts above win once they come.
        self.live_results: dict[str, InvariantResult] = {}
        self.live_measurements: dict[str, Measurement] = {}
        self.result: RunResult | None = None
        # By each event's own time: a fault's window arrives after the failures it caused.
        self.log = OrderedLog(LOG_LINES_KEPT)
        self.version = 0  # bumped by every event, so a redraw can be skipped when nothing changed
        self._narrate = Narrator()
        self._calm: dict[str, float | None] = {}

    # -- events -------------------------------------------------------------------------------

    def apply(self, event: RunEvent) -> None:
        self.version += 1
        line = self._narrate.tell(event)
        if line is not None:
            self.log.add(line)
        if isinstance(event, SampleTaken):
            self.timeline.add(event.sample)
            self._tick(event.sample.t)
            self._added += 1
            if self._added % FORGET_EVERY == 0 and self.now is not None:
                self.timeline.forget_before(self.now - KEEP_S)
        elif isinstance(event, PhaseChanged):
            self.phase, self.phase_detail = event.phase, event.detail
            if self.started_at is None:
                self.started_at = event.t
            if event.phase == "inject":
                # Until its window arrives (or its heal, if the inject failed), the fault
                # counts as live: it may be half applied.
                self.injecting = event.detail
            self._tick(event.t)
        elif isinstance(event, (FaultInjected, FaultHealed)):
            self.injecting = None
            self._upsert(event.window)
            w = event.window
            self._tick(w.healed_at or w.heal_started_at or w.applied_at or w.injected_at)
        elif isinstance(event, LiveJudgement):
            self.live_results = {r.name: r for r in event.results}
            self.live_measurements = dict(event.measurements)
            self._tick(event.t)
        elif isinstance(event, InvariantChecked):
            self.invariant_results[event.result.name] = event.result
        elif isinstance(event, RunFinished):
            self.result = event.result
            self.injecting = None
            for inv in event.result.invariants:
                self.invariant_results[inv.name] = inv

    def _tick(self, t: float) -> None:
        self.now = t if self.now is None else max(self.now, t)

    def _upsert(self, window: InjectionWindow) -> None:
        """One window per lease, as the latest event told it. A failed heal leaves its
        healed_at empty, so the fault stays live here too."""
        windows = self.timeline.windows
        for i, w in enumerate(windows):
            if w.lease_id == window.lease_id:
                windows[i] = window
                return
        windows.append(window)

    # -- what the screen asks ---------------------------------------------------------------

    @property
    def windows(self) -> list[InjectionWindow]:
        return self.timeline.windows

    @property
    def live_faults(self) -> list[InjectionWindow]:
        return [w for w in self.windows if w.healed_at is None]

    def countdown(self, window: InjectionWindow) -> Countdown:
        now = self.now if self.now is not None else window.injected_at
        return Countdown(
            None if window.planned_heal_at is None else window.planned_heal_at - now,
            None if window.expires_at is None else window.expires_at - now,
        )

    @property
    def chaos_live(self) -> bool:
        """A fault is being applied or is in place: the console shows its CHAOS MODE banner."""
        return bool(self.injecting or self.live_faults) and self.result is None

    @property
    def finished(self) -> bool:
        return self.result is not None

    def verdict(self, name: str) -> tuple[InvariantResult | None, bool]:
        """An invariant as it stands: its verdict (final: True), or how it stands so far while
        the fault is live (final: False), or (None, False) when nothing is judged yet."""
        if name in self.invariant_results:
            return self.invariant_results[name], True
        return self.live_results.get(name), False

    @property
    def broken(self) -> list[InvariantResult]:
        """What broke, in the order declared: the verdict where one came, else what broke
        live so far (a live breach that held up at verify is gone once the verdict says so)."""
        broken = []
        for spec in self.invariant_specs:
            result, _ = self.verdict(spec.name)
            if result is not None and not result.passed:
                broken.append(result)
        if self.result is not None:  # a verdict on something the plan did not list
            known = {spec.name for spec in self.invariant_specs}
            broken += [r for r in self.result.invariants if not r.passed and r.name not in known]
        return broken

    def samples(self, probe: str) -> list[ProbeSample]:
        return self.timeline.samples(probe)

    def recovery(self) -> RecoveryMetrics:
        if self.result is not None:
            return self.result.recovery
        return self._recovery.read(self.recovery_probe, self.backlog_probe)

    def probe_status(self, probe: str) -> str:
        """waiting, ok, degraded (recent failures or slow) or failing (the last sample failed)."""
        recent = self.timeline.recent(probe, RECENT)
        if not recent:
            return "waiting"
        if not recent[-1].ok:
            return "failing"
        if any(not s.ok for s in recent):
            return "degraded"
        calm = self._calm_latency(probe)
        last = recent[-1].latency_ms
        if calm is not None and last is not None and last > SLOW_FACTOR * max(calm, 1.0):
            return "degraded"
        return "ok"

    def _calm_latency(self, probe: str) -> float | None:
        """Median latency over the ten seconds before the first fault, worked out once."""
        if probe in self._calm:
            return self._calm[probe]
        if not self.windows:
            return None
        injected = self.windows[0].injected_at
        before = [
            s.latency_ms
            for s in self.timeline.since(probe, injected - 10.0)
            if s.t < injected and s.ok and s.latency_ms is not None
        ]
        self._calm[probe] = median(before) if len(before) >= RECENT else None
        return self._calm[probe]
