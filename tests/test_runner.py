"""The runner's promises, on a fault whose effect is real and easy to see: a marker file.

FileFault creates a file (the "fault") and removes it (the heal); FileAbsentProbe fails while
the file exists. Nothing here is mocked: the runner, timeline, budgets and heal run as in a
real scenario; only the target is the file system instead of a database.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from chaos_tui.core.contracts import Fault, FaultLease, Probe, Scenario, ScenarioParams, Target
from chaos_tui.core.events import FaultHealed, FaultInjected, RunFinished, RunPlanned
from chaos_tui.core.model import InvariantResult, ProbeSample
from chaos_tui.core.runner import Run, RunOptions


class DirTarget(Target):
    name = "tmpdir"

    def __init__(self, root: Path) -> None:
        self.root = root

    async def ensure_up(self, profile: str | None = None) -> None:
        self.root.mkdir(exist_ok=True)


class FileFault(Fault):
    def __init__(self, path: Path, hold_s: float = 0.3, inject_delay_s: float = 0.0):
        super().__init__("file_fault", f"create {path}")
        self.path, self.hold_s, self.inject_delay_s = path, hold_s, inject_delay_s
        self.heals = 0

    async def inject(self, lease: FaultLease) -> None:
        self.path.write_text(lease.lease_id)
        await asyncio.sleep(self.inject_delay_s)

    async def heal(self, lease: FaultLease) -> None:
        self.heals += 1
        self.path.unlink(missing_ok=True)

    async def verify_healed(self, lease: FaultLease) -> bool:
        return not self.path.exists()


class FileAbsentProbe(Probe):
    def __init__(self, path: Path):
        super().__init__("file_absent", "marker file absent")
        self.path = path

    async def measure(self):
        if self.path.exists():
            raise RuntimeError("marker present")
        return None


class Params(ScenarioParams):
    warmup_s: float = 0.2
    recover_s: float = 0.3


class FileScenario(Scenario):
    name = "file_scenario"
    hypothesis = "the marker goes away after heal"
    Params = Params
    recovery_probe = "file_absent"

    def __init__(self, root: Path, fault: FileFault, check=None):
        super().__init__()
        self.root, self.fault, self.check = root, fault, check

    def probes(self, target):
        return [FileAbsentProbe(self.fault.path)]

    def faults(self, target):
        return [self.fault]

    async def check_invariants(self, ctx):
        if self.check is not None:
            return await self.check(ctx)
        return [
            InvariantResult(
                name="healed",
                description="",
                passed=not self.fault.path.exists(),
                measured=float(self.fault.path.exists()),
                limit=0,
            )
        ]


def run(scenario, root, **opts):
    events = []
    result = asyncio.run(
        Run(scenario, DirTarget(root), events.append, RunOptions(rate_hz=50, **opts)).execute()
    )
    return result, events


def test_pass_measures_the_window_and_recovery(tmp_path):
    fault = FileFault(tmp_path / "marker")
    result, events = run(FileScenario(tmp_path, fault), tmp_path)
    assert result.outcome == "pass" and result.heal.ok
    window = result.injection_windows[0]
    assert window.healed_at - window.injected_at >= 0.3
    assert result.recovery.time_to_detect_s is not None and result.recovery.time_to_detect_s < 0.2
    assert result.recovery.time_to_recover_s is not None
    assert result.probes["file_absent"].during.ok < result.probes["file_absent"].during.samples
    assert result.probes["file_absent"].before.error_rate == 0
    kinds = [type(e) for e in events]
    assert kinds.index(FaultInjected) < kinds.index(FaultHealed) < kinds.index(RunFinished)


def test_the_injected_window_says_when_the_fault_ends_and_what_it_does(tmp_path):
    """The console counts down from these: the planned heal (end of the hold, from when the
    inject returned), the lease's TTL, and a line per thing the fault does."""
    fault = FileFault(tmp_path / "marker", hold_s=0.3)
    fault.ttl_s = 5.0
    fault.parts = ("create the marker", "and keep it")
    result, events = run(FileScenario(tmp_path, fault), tmp_path)
    injected = next(e.window for e in events if isinstance(e, FaultInjected))
    assert injected.healed_at is None and injected.applied_at is not None
    assert injected.planned_heal_at == pytest.approx(injected.applied_at + 0.3)
    assert injected.expires_at is not None
    assert 4.9 < injected.expires_at - injected.injected_at <= 5.0
    assert injected.parts == ["create the marker", "and keep it"]
    saved = result.injection_windows[0]
    assert saved.planned_heal_at == injected.planned_heal_at and saved.healed_at is not None
    assert saved.healed_at - saved.injected_at < saved.expires_at - saved.injected_at


def test_steady_state_failure_aborts_with_nothing_injected(tmp_path):
    marker = tmp_path / "marker"
    marker.write_text("already broken")
    fault = FileFault(tmp_path / "other")
    scenario = FileScenario(tmp_path, fault)
    scenario.probes = lambda target: [FileAbsentProbe(marker)]
    result, events = run(scenario, tmp_path, steady_state_timeout_s=0.5)
    assert result.outcome == "aborted"
    assert "marker present" in result.reason
    assert result.injection_windows == []
    assert not any(isinstance(e, FaultInjected) for e in events)
    assert fault.heals == 0


def test_blown_inject_budget_is_an_error_and_still_heals(tmp_path):
    fault = FileFault(tmp_path / "marker", inject_delay_s=5)
    result, _ = run(FileScenario(tmp_path, fault), tmp_path, inject_budget_s=0.3)
    assert result.outcome == "error" and "longer than 0.3s" in result.reason
    assert fault.heals == 1 and not fault.path.exists() and result.heal.ok


def test_blown_invariant_budget_is_an_error(tmp_path):
    async def slow(ctx):
        await asyncio.sleep(5)
        return []

    fault = FileFault(tmp_path / "marker")
    result, _ = run(FileScenario(tmp_path, fault, check=slow), tmp_path, invariant_budget_s=0.3)
    assert result.outcome == "error" and "invariants" in result.reason
    assert result.heal.ok


def test_exception_mid_run_heals(tmp_path):
    async def broken(ctx):
        raise RuntimeError("checker exploded")

    fault = FileFault(tmp_path / "marker")
    result, _ = run(FileScenario(tmp_path, fault, check=broken), tmp_path)
    assert result.outcome == "error" and "checker exploded" in result.reason
    assert not fault.path.exists()


def test_failed_invariant_is_fail(tmp_path):
    async def failing(ctx):
        return [InvariantResult(name="x", description="", passed=False, measured=3, limit=0)]

    fault = FileFault(tmp_path / "marker")
    result, _ = run(FileScenario(tmp_path, fault, check=failing), tmp_path)
    assert result.outcome == "fail" and "x" in result.reason and result.heal.ok


def test_cancel_during_fault_heals_and_says_interrupted(tmp_path):
    fault = FileFault(tmp_path / "marker", hold_s=10)

    async def main():
        run_ = Run(
            FileScenario(tmp_path, fault),
            DirTarget(tmp_path),
            lambda e: None,
            RunOptions(rate_hz=50),
        )
        task = asyncio.ensure_future(run_.execute())
        for _ in range(200):
            if fault.path.exists():
                break
            await asyncio.sleep(0.02)
        assert fault.path.exists(), "fault never landed"
        task.cancel()
        return await task

    result = asyncio.run(main())
    assert result.outcome == "interrupted" and result.heal.ok
    assert not fault.path.exists()
    assert result.injection_windows[0].healed_at is not None


def test_a_broken_event_callback_does_not_stop_the_heal(tmp_path):
    def explode(event):
        raise RuntimeError("ui crashed")

    fault = FileFault(tmp_path / "marker")
    result = asyncio.run(Run(FileScenario(tmp_path, fault), DirTarget(tmp_path), explode).execute())
    assert result.outcome == "pass" and not fault.path.exists()


def test_halt_heals_at_once_and_injects_nothing_more(tmp_path):
    first = FileFault(tmp_path / "first", hold_s=30)
    second = FileFault(tmp_path / "second", hold_s=30)
    scenario = FileScenario(tmp_path, first)
    scenario.faults = lambda target: [first, second]

    async def main():
        events = []
        run = Run(scenario, DirTarget(tmp_path), events.append, RunOptions(rate_hz=50))
        task = asyncio.ensure_future(run.execute())
        while not first.path.exists():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        assert [w.fault for w in run.live_faults] == ["file_fault"]
        reports = await run.halt()
        assert [r.ok for r in reports] == [True] and not first.path.exists()
        assert run.live_faults == []
        return await asyncio.wait_for(task, 10), events

    result, events = asyncio.run(main())
    window = result.injection_windows[0]
    assert window.healed_at - window.injected_at < 5, "halt did not cut the 30 s hold short"
    assert len(result.injection_windows) == 1, "a fault was injected after the halt"
    assert not second.path.exists() and first.heals == 1
    assert result.outcome == "pass" and result.heal.ok
    assert sum(isinstance(e, FaultHealed) for e in events) == 1, "one heal, reported once"


class FlakyHealFault(FileFault):
    """Its first heal fails, as a service that will not start at once; later ones work."""

    async def heal(self, lease: FaultLease) -> None:
        self.heals += 1
        await asyncio.sleep(0.1)
        if self.heals == 1:
            raise RuntimeError("would not start")
        self.path.unlink(missing_ok=True)


def test_a_heal_attempt_shared_by_the_operator_and_the_run_is_reported_once(tmp_path):
    fault = FlakyHealFault(tmp_path / "marker", hold_s=30)

    async def main():
        events = []
        run = Run(
            FileScenario(tmp_path, fault),
            DirTarget(tmp_path),
            events.append,
            RunOptions(rate_hz=50),
        )
        task = asyncio.ensure_future(run.execute())
        while not fault.path.exists():
            await asyncio.sleep(0.01)
        reports = await run.heal_now()  # the run loop wakes and waits on the same attempt
        assert [r.ok for r in reports] == [False] and run.live_faults, "failed: still live"
        return await asyncio.wait_for(task, 10), events

    result, events = asyncio.run(main())
    healed = [e for e in events if isinstance(e, FaultHealed)]
    assert [e.ok for e in healed] == [False, True], "one report per attempt"
    assert healed[0].window.healed_at is None, "a failed heal must leave the window open"
    assert result.heal.ok and not fault.path.exists() and fault.heals == 2


def test_halt_before_any_fault_is_aborted_not_pass(tmp_path):
    fault = FileFault(tmp_path / "marker")
    scenario = FileScenario(tmp_path, fault)
    scenario.params.warmup_s = 1.0

    async def main():
        run = Run(scenario, DirTarget(tmp_path), lambda e: None, RunOptions(rate_hz=50))
        task = asyncio.ensure_future(run.execute())
        await asyncio.sleep(0.5)  # steady state or warm-up: nothing injected yet
        await run.halt()
        return await asyncio.wait_for(task, 10)

    result = asyncio.run(main())
    assert result.outcome == "aborted" and "before any fault" in result.reason
    assert result.injection_windows == [] and not fault.path.exists()


class CancelSwallowingProbe(FileAbsentProbe):
    """What Python 3.11's wait_for can do when a cancel lands as the inner call finishes:
    the cancel is lost and the sample comes back normally."""

    async def sample(self):
        try:
            await asyncio.sleep(0.2)  # most of the time is spent here, where cancels land
            return await super().sample()
        except asyncio.CancelledError:
            return ProbeSample(self.name, time.time(), True, 1.0)


def test_a_probe_that_loses_its_cancel_does_not_hang_the_run(tmp_path):
    fault = FileFault(tmp_path / "marker")
    scenario = FileScenario(tmp_path, fault)
    scenario.probes = lambda target: [CancelSwallowingProbe(fault.path)]
    started = time.monotonic()
    result, _ = run(scenario, tmp_path)
    assert result.outcome == "pass" and time.monotonic() - started < 10


class CountingScenario(FileScenario):
    """Counts each hook call: a run plans once and executes that plan."""

    def __init__(self, root: Path, fault: FileFault) -> None:
        super().__init__(root, fault)
        self.calls = {"probes": 0, "faults": 0, "steady_state": 0, "invariants": 0}

    def probes(self, target):
        self.calls["probes"] += 1
        return super().probes(target)

    def faults(self, target):
        self.calls["faults"] += 1
        return super().faults(target)

    def steady_state(self):
        self.calls["steady_state"] += 1
        return super().steady_state()

    def invariants(self):
        self.calls["invariants"] += 1
        return super().invariants()


def test_a_run_asks_each_hook_once_and_announces_its_plan(tmp_path):
    scenario = CountingScenario(tmp_path, FileFault(tmp_path / "marker"))
    result, events = run(scenario, tmp_path)
    assert result.outcome == "pass"
    assert scenario.calls == {"probes": 1, "faults": 1, "steady_state": 1, "invariants": 1}
    assert isinstance(events[0], RunPlanned), "the plan is the first thing a run tells"
    plan = events[0].plan
    assert [p.name for p in plan.probes] == ["file_absent"]
    assert [(f.name, f.hold_s) for f in plan.faults] == [("file_fault", 0.3)]
    assert plan.expected_duration_s == 0.2 + 0.3 + 0.3


class TwoFaultScenario(FileScenario):
    """Two faults: in turn by default, at once when `faults_together`."""

    def __init__(self, root: Path, first: FileFault, second: FileFault, together: bool):
        super().__init__(root, first)
        self.second = second
        self.faults_together = together  # type: ignore[misc]  # per instance, for the test

    def faults(self, target):
        return [self.fault, self.second]


@pytest.mark.parametrize("together", [False, True])
def test_faults_run_in_turn_or_together_and_heal_in_reverse(tmp_path, together):
    first = FileFault(tmp_path / "first", hold_s=0.3)
    second = FileFault(tmp_path / "second", hold_s=0.5)
    scenario = TwoFaultScenario(tmp_path, first, second, together)
    result, _ = run(scenario, tmp_path)
    assert result.outcome == "pass" and result.heal.ok and first.heals and second.heals
    a, b = result.injection_windows
    if together:  # both live at once, held for the longer hold, the later one healed first
        assert b.injected_at < a.healed_at
        assert b.healed_at <= a.healed_at
        assert a.healed_at - a.injected_at >= 0.5
    else:  # the second goes in after the first was healed
        assert a.healed_at <= b.injected_at
