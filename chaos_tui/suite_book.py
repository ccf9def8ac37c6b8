"""A suite as it runs, for either face: its schedule, a small record of each run, its report
and where the combined JSON is saved. The faces do the waiting, the running and the showing.
No Textual here."""

from __future__ import annotations

from pathlib import Path

from chaos_tui.core.exit_codes import ExitCode
from chaos_tui.core.journal import write_atomic
from chaos_tui.core.model import RunResult
from chaos_tui.core.plan import RunPlan, plan_run
from chaos_tui.core.suite import (
    PolicyFor,
    SuiteReport,
    SuiteRun,
    new_suite_id,
    run_record,
    suite_report,
    unplanned_record,
)
from chaos_tui.sandbox.usage import RunLock
from chaos_tui.session import exit_code_for, regressed
from chaos_tui.suite.schedule import NextRun, Schedule


class SuiteBook:
    def __init__(
        self,
        suite,
        steps,
        target_name: str,
        fail_on_regression: bool = False,
        policy_for: PolicyFor | None = None,
    ):
        self.suite, self.spec, self.steps = suite, suite.spec, steps
        self.target_name = target_name
        self.fail_on_regression = fail_on_regression
        self.policy_for = policy_for  # each scenario's regression rule, which trends use too
        self.schedule = Schedule(suite.spec)
        self.suite_id = new_suite_id(suite.spec.name, self.schedule.started_at)
        self.records: list[SuiteRun] = []
        self.interrupted = False  # a signal, or the operator, ended it

    @property
    def name(self) -> str:
        return self.spec.name

    def step_name(self, following: NextRun) -> str:
        return self.steps[following.step].scenario_cls.name

    def progress(self, following: NextRun) -> str:
        """`run 2/4, pass 1` (`run 7` when `for:` bounds the suite by time)."""
        total = self.schedule.total
        of = f"/{total}" if total else ""
        rep = f", pass {following.repetition}" if self.spec.passes != 1 else ""
        return f"run {following.index}{of}{rep}"

    def add(self, result: RunResult, following: NextRun, saved: Path | None) -> ExitCode:
        """A run's record; its exit code (a regression fails a pass with
        --fail-on-regression) goes to the schedule, which may stop the suite."""
        code = exit_code_for(result)
        if code == ExitCode.PASS and self.fail_on_regression and regressed(result):
            code = ExitCode.FAIL
        saved_text = str(saved) if saved else None
        record = run_record(result, following.index, following.repetition, int(code), saved_text)
        self.records.append(record)
        self.schedule.ended(code, following.index)
        return code

    def start(self, following: NextRun, target) -> RunPlan | None:
        """The next run begins: planned again (the target may have changed since the suite
        was planned and confirmed), or, when it cannot be, recorded as such (which ends the
        suite) and None."""
        self.schedule.starting(following)
        step = self.steps[following.step]
        try:
            return plan_run(step.scenario_cls(step.params), target)
        except Exception as exc:
            self.add_unplanned(following, str(exc))
            return None

    def add_unplanned(self, following: NextRun, reason: str) -> SuiteRun:
        record = unplanned_record(
            self.step_name(following),
            following.index,
            following.repetition,
            self.target_name,
            reason,
        )
        self.records.append(record)
        # The target is no longer what the suite was planned (and confirmed) against: going
        # on would fail the same way, run after run, as fast as the loop turns.
        self.schedule.ended(ExitCode.ERROR, following.index)
        self.schedule.stop(f"run {following.index} could not be planned: {reason}")
        return record

    def stop(self, why: str) -> None:
        self.interrupted = True
        self.schedule.stop(why)

    def report(self) -> SuiteReport:
        return suite_report(
            suite_id=self.suite_id,
            name=self.spec.name,
            description=self.spec.description,
            source=self.suite.source,
            target=self.target_name,
            started_at=self.schedule.started_at,
            runs=self.records,
            stopped=self.schedule.stopped,
            interrupted=self.interrupted,
            policy_for=self.policy_for,
        )


def report_json(report: SuiteReport) -> str:
    return report.model_dump_json(indent=2) + "\n"


def save_report(report: SuiteReport, state_dir: Path, text: str | None = None) -> Path:
    """The combined JSON (`text`, when the caller has it already) under `suites/` in the
    state directory (an OSError if it cannot be written)."""
    saved = Path(state_dir) / "suites" / f"{report.suite_id}.json"
    saved.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomic(saved, text if text is not None else report_json(report))
    return saved


def lock_profiles(state_dir: Path, steps, name: str) -> list[RunLock]:
    """One run lock per profile of the suite's steps, held until each is released: no other
    run of them sneaks in between the suite's runs. RunBusy (naming the holder) or an
    OSError, and then none is held."""
    locks: list[RunLock] = []
    try:
        for profile in dict.fromkeys(step.scenario_cls.profile for step in steps):
            lock = RunLock(Path(state_dir), profile)
            lock.acquire(f"suite {name}")
            locks.append(lock)
    except BaseException:
        for lock in locks:
            lock.release()
        raise
    return locks
