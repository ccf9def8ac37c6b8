"""Invariants judged while the fault is live, and time to detect counted from the applied time.

The runner tests use the marker-file fault of test_runner.py: the fault and its heal are real
(a file created and removed), so is the runner with its timeline and its live judgement; only
the target is the file system. The console half feeds the same events to a LiveRun, as the
console does.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

from rich.console import Console

import tui_data
from chaos_tui.core.contracts import FaultLease, RunContext
from chaos_tui.core.events import (
    FaultHealed,
    InvariantChecked,
    LiveJudgement,
    RunFinished,
)
from chaos_tui.core.model import InvariantResult, InvariantSpec, ProbeSample
from chaos_tui.core.report import markdown_report
from chaos_tui.core.runner import Run, RunOptions
from chaos_tui.core.timeline import Timeline
from chaos_tui.from_file.checks import Judging, _detect, _phase_stat
from chaos_tui.narration import Narrator
from chaos_tui.screens.run import banner_text, invariant_table, metric_facts, status_text
from tests.test_runner import DirTarget, FileFault, FileScenario

T0 = tui_data.T0


class LateFault(FileFault):
    """Its inject takes 200 ms before the fault is in place, as an agent that takes 200 ms to
    apply a lease. No agent is needed to show the difference: the runner stamps applied_at
    when `inject` returns, whoever does the applying, and a LeasedFault's inject returns when
    the agent answers that the lease is applied; this fault returns once its marker is there."""

    async def inject(self, lease: FaultLease) -> None:
        await asyncio.sleep(0.2)
        self.path.write_text(lease.lease_id)


def run(scenario, root: Path, **opts):
    events: list = []
    options = RunOptions(rate_hz=50, live_judge_every_s=0.1, **opts)
    result = asyncio.run(Run(scenario, DirTarget(root), events.append, options).execute())
    return result, events


def test_time_to_detect_counts_from_the_moment_the_fault_was_applied(tmp_path):
    fault = LateFault(tmp_path / "marker", hold_s=0.5)
    result, _ = run(FileScenario(tmp_path, fault), tmp_path)
    window = result.injection_windows[0]
    assert window.applied_at - window.injected_at >= 0.2  # both stamps are kept
    first_fail = (
        next(t for t, ok, _, _ in result.probes["file_absent"].samples if not ok)
        + result.started_at
    )
    # From the lease request the probe took 200 ms more than it did from the fault landing.
    assert first_fail - window.injected_at >= 0.2
    assert result.recovery.detect_from == "applied"
    assert result.recovery.time_to_detect_s is not None
    # Counted from the lease request it would be 200 ms longer (no wall-clock bound here: a
    # loaded machine samples late, and that is not what this test is about).
    from_request = first_fail - window.injected_at
    assert result.recovery.time_to_detect_s <= from_request - 0.2 + 0.002, result.recovery
    assert abs(result.recovery.time_to_detect_s - (first_fail - window.applied_at)) < 0.002


def test_without_an_applied_time_detection_counts_from_the_lease_request():
    timeline = Timeline()
    timeline.add(ProbeSample("p", 10.0, True, 1.0))
    timeline.add(ProbeSample("p", 10.3, False, None, None, "down"))
    window = tui_data.window()
    window.injected_at, window.applied_at, window.heal_started_at, window.healed_at = (
        10.0,
        None,
        11.0,
        11.1,
    )
    timeline.windows.append(window)
    metrics = timeline.recovery("p", None)
    assert metrics.detect_from == "injected" and metrics.time_to_detect_s == 0.3
    window.applied_at = 10.2
    metrics = timeline.recovery("p", None)
    assert metrics.detect_from == "applied" and metrics.time_to_detect_s == 0.1
    window.applied_at = 10.5  # the probe saw it land before the inject call returned
    assert timeline.recovery("p", None).time_to_detect_s == 0.0


SEEN = InvariantSpec(
    name="marker_never_seen", description="the probe never sees the marker", limit=0
)


class LiveScenario(FileScenario):
    """Judges live how many samples saw the marker since the fault went in: one breaks it."""

    def invariants(self):
        return [SEEN]

    async def judge_live(self, ctx: RunContext) -> list[InvariantResult]:
        if not ctx.timeline.windows:
            return []
        since = ctx.timeline.since("file_absent", ctx.timeline.windows[0].injected_at)
        seen = [s for s in since if not s.ok]
        result = SEEN.judge(len(seen), f"{len(since)} samples since the fault")
        if seen:
            result.broke_at = seen[0].t
        return [result]

    async def check_invariants(self, ctx: RunContext) -> list[InvariantResult]:
        return await self.judge_live(ctx)


def test_a_live_breach_is_emitted_before_the_heal_and_kept_in_the_verdict(tmp_path):
    fault = FileFault(tmp_path / "marker", hold_s=1.0)
    result, events = run(LiveScenario(tmp_path, fault), tmp_path)
    kinds = [type(e) for e in events]
    healed = kinds.index(FaultHealed)
    live = [(i, e) for i, e in enumerate(events) if isinstance(e, LiveJudgement)]
    breaches = [(i, e) for i, e in live if not e.results[0].passed]
    assert breaches, "the breach was never told while the fault was live"
    first, event = breaches[0]
    assert first < healed, "the breach was told only after the heal"
    broke = event.results[0]
    window = result.injection_windows[0]
    assert window.injected_at <= broke.broke_at < window.healed_at
    # Told only when it changed: no two live judgements in a row say the same thing.
    said = [tuple((r.passed, r.measured) for r in e.results) for _, e in live]
    assert all(a != b for a, b in itertools.pairwise(said))
    # The verdict decides, and keeps when it broke; the report says so.
    final = result.invariants[0]
    assert result.outcome == "fail" and not final.passed and final.broke_at == broke.broke_at
    assert "broke at +" in markdown_report(result)
    checked = [e for e in events if isinstance(e, InvariantChecked)]
    assert kinds.index(InvariantChecked) > healed and checked[0].result.broke_at is not None
    # The progress lines say it once, however often it is judged again.
    tell = Narrator()
    lines = [line for e in events if (line := tell(e)) is not None]
    assert sum("BROKE" in line for line in lines) == 1


class HoldingScenario(FileScenario):
    """Judges live something that holds: the marker file's parent directory exists."""

    def invariants(self):
        return [SEEN.model_copy(update={"name": "dir_kept"})]

    async def judge_live(self, ctx: RunContext) -> list[InvariantResult]:
        return [self.judge("dir_kept", float(not self.root.exists()))]


def test_a_passing_run_never_shows_a_live_breach(tmp_path):
    fault = FileFault(tmp_path / "marker", hold_s=0.6)
    result, events = run(HoldingScenario(tmp_path, fault), tmp_path)
    live = [e for e in events if isinstance(e, LiveJudgement)]
    assert live, "nothing was judged while the fault was live"
    assert all(r.passed for e in live for r in e.results)
    assert len(live) == 1, "told again although nothing changed"
    assert result.outcome == "pass" and result.invariants[0].broke_at is None
    replayed = tui_data.replay(HoldingScenario(tmp_path, fault), [], events)
    assert replayed.broken == [] and "✘" not in rendered(invariant_table(replayed))
    assert not any("BROKE" in line.text for line in replayed.log)


def test_a_failing_live_judgement_is_a_note_not_an_error(tmp_path):
    class Broken(FileScenario):
        async def judge_live(self, ctx):
            raise RuntimeError("cannot read")

    fault = FileFault(tmp_path / "marker", hold_s=0.5)
    result, events = run(Broken(tmp_path, fault), tmp_path)
    assert result.outcome == "pass"
    notes = [e.text for e in events if type(e).__name__ == "Note" and "live" in e.text]
    assert len(notes) == 1 and "cannot read" in notes[0]


# -- the console ----------------------------------------------------------------------------


def rendered(renderable) -> str:
    console = Console(width=120, record=True, file=None, color_system=None)
    with console.capture() as capture:
        console.print(renderable)
    return capture.get()


def fails_closed_live(measured: float, broke_at: float | None) -> LiveJudgement:
    from chaos_tui.scenarios.opa_restart import OpaRestart

    scenario = OpaRestart()
    results = [scenario.judge("fails_closed", measured, "12 decisions while OPA was down")]
    results[0].broke_at = broke_at
    results.append(scenario.judge("never_allows_denied", 0))
    measurements = {"decisions while OPA down": {"allow": int(measured), "deny": 0, "error": 0}}
    return LiveJudgement(T0 + 10.0, tuple(results), measurements)


def opa_live_run(until_s: float = 10.0):
    from chaos_tui.scenarios.opa_restart import OpaRestart

    return tui_data.replay(
        OpaRestart(), tui_data.PROBES, tui_data.events(until_s=until_s, healed=False)
    )


def test_the_console_shows_a_live_breach_in_red_and_holding_apart_from_unjudged():
    live = opa_live_run()
    table = rendered(invariant_table(live))
    assert "✘" not in table and "○" in table  # nothing judged yet
    live.apply(fails_closed_live(12, T0 + 8.15))
    table = rendered(invariant_table(live))
    row = next(line for line in table.splitlines() if "fails_closed" in line)
    assert "✘" in row and "12 decisions" in row and "so far" in row
    holding = next(line for line in table.splitlines() if "never_allows_denied" in line)
    assert "◑" in holding and "so far" in holding and "✔" not in holding
    unjudged = next(line for line in table.splitlines() if "allow_resumes" in line)
    assert "○" in unjudged
    # Red: the row's measured value is styled red as soon as it breaks.
    table_obj = invariant_table(live)
    cells = [c for c in table_obj.columns[2].cells]
    assert "red" in str(cells[0].style)
    # The banner says what broke, counted from the fault landing (applied at +8.05 s).
    assert "fails_closed broke at +100 ms" in banner_text(live).plain
    assert "fails_closed broke at +100 ms" in status_text(live).plain
    # The recovery panel: the numbers so far in the report's words, never a lone 0%.
    facts = dict(metric_facts(live))
    assert facts["decisions while OPA down"] == "allow 12, deny 0, error 0"
    assert facts["error rate during fault (postgres)"] == "95.2%"  # failing from 8.1 s of 8.0-10.0
    assert "error rate during fault (nats)" not in facts  # only the probes that failed


def test_the_status_line_after_a_failing_run_says_what_broke():
    live = opa_live_run()
    live.apply(fails_closed_live(12, T0 + 8.15))
    final = live.live_results["fails_closed"].model_copy()
    live.apply(InvariantChecked(final))
    result = tui_data.result().model_copy(
        update={"outcome": "fail", "scenario": "opa_restart", "invariants": [final]}
    )
    live.apply(RunFinished(result))
    status = status_text(live).plain
    assert "FAIL: fails_closed broke at +100 ms" in status
    passing = opa_live_run(until_s=20)
    passing.apply(RunFinished(tui_data.result()))
    assert "PASS" in status_text(passing).plain and "broke" not in status_text(passing).plain


def test_a_verdict_replaces_how_it_stood_so_far():
    live = opa_live_run()
    live.apply(fails_closed_live(0, None))
    assert "◑" in rendered(invariant_table(live))
    spec = {i.name: i for i in live.invariant_specs}
    live.apply(InvariantChecked(spec["fails_closed"].judge(0)))
    row = next(line for line in rendered(invariant_table(live)).splitlines() if "fails_cl" in line)
    assert "✔" in row and "so far" not in row


# -- file checks judged live ----------------------------------------------------------------


def judging(timeline: Timeline) -> Judging:
    ctx = RunContext("r", DirTarget(Path("/nonexistent")), timeline, lambda *a: None, None)  # type: ignore[arg-type]
    return Judging(ctx, {}, {}, {})


def test_file_checks_read_so_far_while_the_fault_is_live():
    now = time.time()
    timeline = Timeline()
    for i in range(20):
        t = now - 2.0 + i * 0.1
        timeline.add(ProbeSample("api", t, i < 10 or i % 2 == 0, 1.0 if i < 10 else None))
    window = tui_data.window(healed=False)
    window.injected_at, window.applied_at = now - 1.05, now - 1.0
    rate = _phase_stat("error_rate(api)", "", 0.1, "", "api", "during", lambda s: s.error_rate)
    detect = _detect("api", 0.5)
    quiet = _detect("quiet", 0.5)
    timeline.add(ProbeSample("quiet", now - 0.1, True, 1.0))
    j = judging(timeline)
    assert rate.judge_live(j) is None and detect.judge_live(j) is None  # no fault yet
    timeline.windows.append(window)
    so_far = rate.judge_live(j)
    assert so_far is not None and not so_far.passed and "so far" in so_far.detail
    noticed = detect.judge_live(j)
    assert noticed is not None and noticed.passed  # failed 0.05 s after it landed
    late = quiet.judge_live(j)
    assert late is not None and not late.passed and "not noticed" in late.detail
    after = _phase_stat("v", "", 1, "", "api", "after", lambda s: s.value_max)
    assert after.judge_live(j) is None  # "after" the fault cannot be read before it ends
