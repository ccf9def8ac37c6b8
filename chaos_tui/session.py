"""One run session: the shell around the runs of a face (headless or console), from the first
signal handler to the exit code.

Both faces had their own copy of this and they drifted (the console exited 0 after a FAIL).
What is the same for both lives here:
- signals: `CleanupSignals` installed for the whole session, handed to the loop while it runs;
- the always-heal on the way out: the face's body returns only once its runs are healed
  (the runner heals before it returns; the console's `settle` awaits a run still going);
- saving: each result once (`ResultSaver`, keyed by run id), whoever asks first, with its
  comparison with the baseline (core/baseline.py) attached just before it is written;
- stopping what the runs started (`target.stop_what_we_started`), unless forced by signals;
- the exit code, from the last result's outcome (core/exit_codes.OUTCOME_EXIT_CODES).

No Textual here: headless imports this, and CI must not pay for (or depend on) Textual.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

from chaos_tui.core.exit_codes import OUTCOME_EXIT_CODES, ExitCode
from chaos_tui.core.journal import save_result
from chaos_tui.core.model import RunResult
from chaos_tui.core.regression import RegressionPolicy
from chaos_tui.core.results_index import index_saved
from chaos_tui.otlp_export import RunExporter
from chaos_tui.signals import CleanupSignals, say

PolicyFor = Callable[[str], RegressionPolicy]  # scenario name -> its regression rule


def regression_policy(settings, scenario_cls=None) -> RegressionPolicy:
    """The rule a scenario's runs are judged by: the global default (settings), with a
    scenario file's `regression:` block over it."""
    base = getattr(settings, "regression", None) or RegressionPolicy()
    block = getattr(getattr(scenario_cls, "spec", None), "regression", None)
    return block.over(base) if block is not None else base


class ResultSaver:
    """Saves each run's result under `results_dir` once: a second call for the same run
    returns the first call's path (or its error again) without writing. Before the first
    write the result gets its comparison with the baseline (`policy_for` gives the rule)."""

    def __init__(
        self,
        results_dir: Path,
        policy_for: PolicyFor | None = None,
        tell: Callable[[str], None] = say,
    ) -> None:
        self.results_dir = results_dir
        self.baselines_dir = results_dir.parent / "baselines"  # pinned baselines
        self.policy_for = policy_for
        self.tell = tell
        self.saves = 0  # files written: one per run
        self._saved: dict[str, Path | OSError] = {}
        self._lock = threading.Lock()  # the console saves from a worker thread

    def compare(self, result: RunResult) -> None:
        """Attach the comparison; a failure to compare never fails the save (a line, and the
        comparison stays None)."""
        try:
            from chaos_tui.core.baseline import compare, load_pins

            policy = self.policy_for(result.scenario) if self.policy_for else RegressionPolicy()
            pins = load_pins(self.baselines_dir, result.scenario, result.target)
            result.comparison = compare(result, self.results_dir, pins, policy)
        except Exception as exc:  # a comparison is a courtesy: the result must be saved
            result.comparison = None
            self.tell(f"could not compare with the baseline: {exc}")

    def save(self, result: RunResult) -> Path:
        with self._lock:
            known = self._saved.get(result.run_id)
            if known is None:
                self.compare(result)
                try:
                    known = save_result(self.results_dir, result)
                    self.saves += 1
                    index_saved(self.results_dir, known)  # never raises: the index is a cache
                except OSError as exc:
                    known = exc
                self._saved[result.run_id] = known
        if isinstance(known, OSError):
            raise known
        return known


def exit_code_for(result: RunResult | None, *, signalled: bool = False) -> ExitCode:
    """A failed heal first (the target needs a look now), then a signal that ended the face
    (when it counts as one), then the outcome of the last run; no run at all is 0."""
    if result is not None and not result.heal.ok:
        return ExitCode.HEAL_FAILED
    if signalled:
        return ExitCode.INTERRUPTED
    if result is None:
        return ExitCode.PASS
    return OUTCOME_EXIT_CODES[result.outcome]


def regressed(result: RunResult | None) -> bool:
    """Whether a saved result's comparison flagged a regression."""
    return bool(result is not None and result.comparison and result.comparison.regressions)


class RunSession:
    """The session of one face. `run(body)` runs the face's body on a loop of its own (the
    body returns the last result, healed, or None), then stops what was started and saves
    that result, and returns the exit code (or exits at once if signals forced it)."""

    def __init__(
        self,
        target,
        results_dir: Path,
        *,
        who: str,
        abort: Callable[[str], None],
        repeat: Callable[[str], None] | None = None,
        keep_sandbox: bool = False,
        tell: Callable[[str], None] = say,
        signal_is_interrupt: bool = False,
        saver: ResultSaver | None = None,
        exporter: RunExporter | None = None,
        policy: RegressionPolicy | None = None,
        fail_on_regression: bool = False,
    ) -> None:
        self.target = target
        self.who = who  # "this run", "the console"
        self.keep_sandbox = keep_sandbox
        self.tell = tell
        # The console: any signal (the terminal gone, SIGTERM while idle) ends it as 130.
        # Headless: a signal during the run already makes its outcome "interrupted", and one
        # during the cleanup after a verdict does not change that verdict.
        self.signal_is_interrupt = signal_is_interrupt
        self.saver = saver or ResultSaver(  # the console's app saves through it too
            results_dir, (lambda _name: policy) if policy is not None else None, tell
        )
        # --fail-on-regression: a passing run with a flagged regression exits 1 (CI).
        self.fail_on_regression = fail_on_regression
        self.guard = CleanupSignals(abort, who=who, repeat=repeat)
        self.result: RunResult | None = None
        self.saved_path: Path | None = None
        self.stopped: list[str] = []
        # Sends each saved result to the user's telemetry (CHAOS_OTLP_ENDPOINT), or None.
        self.exporter: RunExporter | None = exporter

    def install(self) -> None:
        """Signal handlers, kept until the process exits: install before anything starts."""
        self.guard.install()

    def run(
        self,
        body: Callable[[], Awaitable[RunResult | None]],
        after: Callable[[RunResult | None], None] | None = None,
    ) -> int:
        """`after` is called once everything is stopped and saved (headless prints its
        summary and the result there)."""
        runner = asyncio.Runner()  # its loop leaves our signal handlers alone
        try:
            runner.run(self._main(body, after))
        finally:
            self.guard.relay.loop = None
            if not self.guard.forced.is_set():  # else a stop still runs in a thread
                runner.close()
            self.guard.enter("done")
        code = int(self.exit_code())
        if self.guard.forced.is_set():
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)  # do not wait for the stop left running in its thread
        return code

    def exit_code(self) -> ExitCode:
        code = exit_code_for(
            self.result, signalled=self.signal_is_interrupt and self.guard.signalled
        )
        if code == ExitCode.PASS and self.fail_on_regression and regressed(self.result):
            return ExitCode.FAIL
        return code

    async def _main(self, body, after) -> None:
        self.guard.relay.loop = asyncio.get_running_loop()
        try:
            self.result = await body()
        finally:
            # However the body ended (a bug included): what was started is stopped, and the
            # last result, healed, is saved.
            self.guard.enter("stopping")
            stopping = asyncio.ensure_future(asyncio.to_thread(self._stop))
            await self.guard.unless_forced(stopping)
            self.guard.enter("saving")
            if self.result is not None:
                await asyncio.to_thread(self._save_last, self.result)
        if after is not None:
            await asyncio.to_thread(after, self.result)

    def save(self, result: RunResult) -> Path | None:
        """Save a run's result (once); a failure is told, not raised: the run is over."""
        try:
            return self.saver.save(result)
        except OSError as exc:
            self.tell(f"could not save the result to {self.saver.results_dir}: {exc}")
            return None

    def _save_last(self, result: RunResult) -> None:
        self.saved_path = self.save(result)
        self.export(result)

    def export(self, result: RunResult) -> None:
        """Send the result to the user's telemetry once it is saved; bounded, and a failure is
        one line that changes nothing else (the exit code least of all)."""
        if self.exporter is None:
            return
        problem = self.exporter.export(result)
        if problem:
            self.tell(problem)

    def _stop(self) -> None:
        try:
            self.stopped = self.target.stop_what_we_started(keep_sandbox=self.keep_sandbox)
        except Exception as exc:  # the heal is done; this is worth a line, not a traceback
            self.tell(f"could not stop what {self.who} started: {exc}")
            return
        if self.stopped:
            self.tell(f"stopped what {self.who} started: {', '.join(self.stopped)}")
        left = getattr(self.target, "left_in_use", [])
        if left:
            self.tell(f"left running (kept up, or in use by another run): {', '.join(left)}")
