"""The headless face of a suite: its runs one after another in one run session (one set of
signal handlers, one stop of what was started, at the end), each run narrated and summed up as
a single run is, then one table, the drift of each repeated scenario, one combined JSON and the
worst run's exit code.

A signal during a run heals it and ends the suite; during a pause it ends the suite at once.
A failed heal always ends it: the next fault would land on a target not yet whole. Memory
stays flat over a long soak: a run's result is saved and dropped, the suite keeps a small
record of it (core/suite.py).

No Textual anywhere in here.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from chaos_tui import status_line
from chaos_tui.core.exit_codes import ExitCode
from chaos_tui.core.journal import write_atomic
from chaos_tui.core.model import RunResult
from chaos_tui.core.plan import plan_run
from chaos_tui.core.regression import RegressionPolicy
from chaos_tui.core.report import duration_text
from chaos_tui.core.runner import Run, RunOptions
from chaos_tui.core.suite import (
    SuiteReport,
    SuiteRun,
    drift,
    outcome_word,
    run_record,
    suite_id,
    worst_exit_code,
)
from chaos_tui.headless import Progress, _is_terminal, print_summary
from chaos_tui.otlp_export import RunExporter
from chaos_tui.session import RunSession, exit_code_for, regressed
from chaos_tui.signals import say
from chaos_tui.suite.model import pause_rng, pause_s


class SuiteSession(RunSession):
    """A run session whose exit code is the suite's (the worst run's), not the last run's."""

    code: ExitCode = ExitCode.PASS

    def exit_code(self) -> ExitCode:
        return self.code


class SuiteRunner:
    """Runs the steps in order, pass after pass, within `repeat` and `for`; keeps records."""

    def __init__(self, suite, steps, target, options: RunOptions, session: SuiteSession, console):
        self.suite, self.spec, self.steps = suite, suite.spec, steps
        self.target, self.options = target, options
        self.session, self.console = session, console
        self.records: list[SuiteRun] = []
        self.junit_suites: list = []  # <testsuite> elements, when --junit asked for them
        self.keep_junit = False
        self.fail_on_regression = False
        self.stopped = ""  # why the suite ended before its list did
        self.interrupted = False
        self._current: asyncio.Future | None = None
        self.started_at = time.time()

    def abort(self, name: str) -> None:
        """A signal: heal the run going on (the runner does), run nothing after it."""
        self.interrupted = True
        self.stopped = f"{name} received"
        say(f"\n{name} received: healing, then ending the suite (no further run starts)")
        if self._current is not None:
            self._current.cancel()

    async def run(self) -> None:
        rng = pause_rng(self.spec)
        deadline = self.started_at + self.spec.for_s if self.spec.for_s else None
        passes = self.spec.passes
        repetition, last_start, pause = 0, None, None
        while passes is None or repetition < passes:
            repetition += 1
            for step in self.steps:
                if last_start is not None:
                    wait = self._wait_s(last_start, pause, rng)
                    if wait > 0 and not await self._pause(wait, deadline):
                        return
                if self.interrupted:
                    return
                if deadline is not None and time.time() >= deadline:
                    return  # `for:` is over: its end is the suite's, not a stop
                last_start = time.monotonic()
                pause = step.pause
                code = await self._run_step(step, repetition)
                if self.interrupted:
                    return
                if code == ExitCode.HEAL_FAILED:
                    self.stopped = "a heal failed: the target needs a look before any more faults"
                    return
                if code != ExitCode.PASS and self.spec.on_failure == "stop":
                    self.stopped = f"on_failure: stop, and run {len(self.records)} did not pass"
                    return

    def _wait_s(self, last_start: float, step_pause, rng) -> float:
        if self.spec.every is not None:  # start to start
            return last_start + self.spec.every - time.monotonic()
        return pause_s(step_pause if step_pause is not None else self.spec.pause, rng)

    async def _pause(self, seconds: float, deadline: float | None) -> bool:
        """Wait between runs (not past `for:`'s end); False if the suite ended meanwhile."""
        if deadline is not None:
            seconds = min(seconds, max(0.0, deadline - time.time()))
        self.console.print(f"pause {duration_text(seconds)} before the next run", highlight=False)
        self._current = asyncio.ensure_future(asyncio.sleep(seconds))
        try:
            await self._current
        except asyncio.CancelledError:
            if not self.interrupted:
                raise
        finally:
            self._current = None
        return not self.interrupted

    async def _run_step(self, step, repetition: int) -> ExitCode:
        index = len(self.records) + 1
        total = self._planned_total()
        of = f"/{total}" if total else ""
        rep = f", pass {repetition}" if self.spec.passes != 1 else ""
        self.console.rule(
            f"[bold]{self.spec.name}[/bold]: run {index}{of}, {step.scenario_cls.name}{rep}",
            style="dim",
        )
        started = time.time()
        try:
            plan = plan_run(step.scenario_cls(step.params), self.target)
        except Exception as exc:  # planned fine at the start; the target changed since
            record = SuiteRun(
                index=index,
                repetition=repetition,
                scenario=step.scenario_cls.name,
                outcome="error",
                exit_code=int(ExitCode.ERROR),
                reason=f"could not plan the run: {exc}",
                target=self.target.name,
                started_at=started,
                duration_s=0.0,
            )
            self.records.append(record)
            self.console.print(f"ERROR {record.scenario}: {record.reason}", highlight=False)
            return ExitCode.ERROR
        narrate = Progress(self.console)
        run = Run(plan, self.target, narrate, self.options)
        gc.collect()  # see headless.run_headless: start-up's objects out of the collector's way
        gc.freeze()
        try:
            self._current = asyncio.ensure_future(run.execute())
            try:
                result: RunResult = await self._current
            finally:
                self._current = None
        finally:
            gc.unfreeze()
        narrate.flush()
        return self._record(result, index, repetition)

    def _record(self, result: RunResult, index: int, repetition: int) -> ExitCode:
        saved = self.session.save(result)
        self.session.export(result)
        code = exit_code_for(result)
        if code == ExitCode.PASS and self.fail_on_regression and regressed(result):
            code = ExitCode.FAIL
        print_summary(self.console, result, self.fail_on_regression)
        if saved is not None:
            self.console.print(f"result saved to {saved}", highlight=False, soft_wrap=True)
        if self.keep_junit:
            import socket

            from chaos_tui.core.junit import testsuite

            self.junit_suites.append(
                testsuite(result, socket.gethostname(), self.fail_on_regression)
            )
        record = run_record(result, index, repetition, int(code), str(saved) if saved else None)
        self.records.append(record)
        return code

    def _planned_total(self) -> int | None:
        passes = self.spec.passes
        return None if passes is None else passes * len(self.steps)

    def report(self, policy: RegressionPolicy | None = None) -> SuiteReport:
        finished = time.time()
        worst = worst_exit_code([r.exit_code for r in self.records])
        if self.interrupted and worst != ExitCode.HEAL_FAILED:
            worst = ExitCode.INTERRUPTED
        return SuiteReport(
            suite_id=suite_id(self.spec.name, self.started_at),
            suite=self.spec.name,
            description=self.spec.description,
            source=self.suite.source,
            target=self.target.name,
            started_at=self.started_at,
            finished_at=finished,
            duration_s=finished - self.started_at,
            outcome=outcome_word(worst),
            exit_code=int(worst),
            stopped=self.stopped,
            runs=self.records,
            drift=drift(self.records, policy),
        )


def run_suite(
    suite,
    steps,
    target,
    *,
    options: RunOptions,
    state_dir: Path,
    output: Path | None,
    stop_sandbox_after: bool,
    json_to_stdout: bool | None = None,
    junit: Path | None = None,
    exporter: RunExporter | None = None,
    policies: dict[str, RegressionPolicy] | None = None,
    fail_on_regression: bool = False,
) -> int:
    """Every run of the suite; then the table, the drift and the combined JSON (stdout when it
    is not a terminal, or --json; --output; and always saved under suites/)."""
    if json_to_stdout is None:
        json_to_stdout = output is None and not _is_terminal(sys.stdout)
    status_line.erase()
    console = Console(stderr=True, highlight=False, soft_wrap=not sys.stderr.isatty())
    policies = policies or {}
    runner: SuiteRunner | None = None
    session = SuiteSession(
        target,
        state_dir / "results",
        who="this suite",
        abort=lambda name: runner.abort(name) if runner is not None else None,
        keep_sandbox=not stop_sandbox_after,
        tell=lambda line: console.print(line, highlight=False, markup=False),
        exporter=exporter,
    )
    session.saver.policy_for = lambda name: policies.get(name, RegressionPolicy())
    runner = SuiteRunner(suite, steps, target, options, session, console)
    runner.keep_junit = junit is not None
    runner.fail_on_regression = fail_on_regression
    session.install()

    async def body() -> None:
        await runner.run()
        return None  # each result is saved as its run ends

    def after(_result) -> None:
        report = runner.report()
        session.code = ExitCode(report.exit_code)
        _deliver(report, state_dir, output, json_to_stdout, console)
        if junit is not None:
            from chaos_tui.core.junit import junit_suites_xml

            try:
                write_atomic(junit, junit_suites_xml(runner.junit_suites, report.suite), 0o644)
                console.print(f"JUnit report written to {junit}", highlight=False)
            except OSError as exc:
                console.print(f"[yellow]could not write the JUnit report {junit}: {exc}[/yellow]")

    return session.run(body, after)


def _deliver(
    report: SuiteReport,
    state_dir: Path,
    output: Path | None,
    json_to_stdout: bool,
    console: Console,
) -> None:
    print_table(console, report)
    text = report.model_dump_json(indent=2) + "\n"
    saved = state_dir / "suites" / f"{report.suite_id}.json"
    try:
        saved.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(saved, text)
        console.print(f"suite result saved to {saved}", highlight=False, soft_wrap=True)
    except OSError as exc:
        console.print(f"[yellow]could not save the suite result to {saved}: {exc}[/yellow]")
    if output is not None:
        try:
            write_atomic(output, text)
            console.print(f"suite result written to {output}", highlight=False)
        except OSError as exc:
            console.print(f"[yellow]could not write {output}: {exc}; it follows on stdout[/yellow]")
            json_to_stdout = True
    if json_to_stdout:
        sys.stdout.write(text)
        sys.stdout.flush()


HEADLINE_FIGURES = ("time_to_recover_s", "backlog_peak", "backlog_drain_s", "dlq_growth")
COLOURS = {"pass": "green", "fail": "red", "interrupted": "yellow", "aborted": "yellow"}


def print_table(console: Console, report: SuiteReport) -> None:
    """One row per run, then each repeated scenario's trend, then the suite's verdict."""
    table = Table(title=f"suite {report.suite}", title_justify="left", show_edge=False)
    for name, justify in (
        ("#", "right"),
        ("scenario", "left"),
        ("verdict", "left"),
        ("recovered in", "right"),
        ("duration", "right"),
        ("run", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=name != "verdict")  # type: ignore[arg-type]
    for run in report.runs:
        colour = COLOURS.get(run.outcome, "red")
        verdict = f"[{colour}]{run.outcome.upper()}[/{colour}]"
        if not run.heal_ok:
            verdict += " [bold red]heal FAILED[/bold red]"
        if run.regressions:
            verdict += f" (regressed: {', '.join(run.regressions)})"
        recovered = run.metrics.get("time_to_recover_s")
        table.add_row(
            str(run.index),
            run.scenario,
            verdict,
            duration_text(recovered.value) if recovered else "-",
            duration_text(run.duration_s),
            run.run_id or "-",
        )
    console.print()
    console.print(table)
    for line in drift_lines(report):
        console.print(line, highlight=False, soft_wrap=True)
    colour = COLOURS.get(report.outcome, "red")
    passed = sum(r.outcome == "pass" for r in report.runs)
    tail = f"; ended early: {report.stopped}" if report.stopped else ""
    console.print(
        f"[bold {colour}]suite {report.suite}: {report.outcome.upper()}[/bold {colour}] "
        f"{passed} of {len(report.runs)} runs passed in {duration_text(report.duration_s)}"
        f" (exit {report.exit_code}){tail}",
        highlight=False,
        soft_wrap=True,
    )


def drift_lines(report: SuiteReport) -> list[str]:
    """`trend opa_restart time to recover: 1.10, 1.32, 1.95 s (+0.43 s/run, worsening)`."""
    out = []
    for d in report.drift:
        if d.name not in HEADLINE_FIGURES and not d.worsening:
            continue  # the headline figures always; the others only when they drift
        unit = f" {d.unit}" if d.unit and d.unit != "%" else d.unit
        values = ", ".join(f"{v:.3g}" for v in d.values)
        sign = "+" if d.slope_per_run >= 0 else ""
        mark = "[bold red]worsening[/bold red]" if d.worsening else "steady"
        out.append(
            f"trend {d.scenario} {d.label}: {values}{unit} "
            f"({sign}{d.slope_per_run:.3g}{unit}/run, {mark})"
        )
    return out
