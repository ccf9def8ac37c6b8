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
import sys
from pathlib import Path

from rich.console import Console

from chaos_tui import status_line
from chaos_tui.core.exit_codes import ExitCode
from chaos_tui.core.journal import write_atomic
from chaos_tui.core.model import RunResult
from chaos_tui.core.regression import RegressionPolicy
from chaos_tui.core.report import duration_text
from chaos_tui.core.runner import Run, RunOptions
from chaos_tui.core.suite import SuiteReport
from chaos_tui.headless import Progress, _is_terminal, print_summary, start_up_frozen
from chaos_tui.otlp_export import RunExporter
from chaos_tui.session import RunSession
from chaos_tui.signals import say
from chaos_tui.suite.schedule import NextRun
from chaos_tui.suite_book import SuiteBook, report_json, save_report
from chaos_tui.suite_view import drift_lines, suite_table, verdict_line, why_lines


class SuiteSession(RunSession):
    """A run session whose exit code is the suite's (the worst run's), not the last run's."""

    code: ExitCode = ExitCode.PASS

    def exit_code(self) -> ExitCode:
        return self.code


class SuiteRunner:
    """Runs the steps as the book's schedule says (suite/schedule.py), one after another."""

    def __init__(self, book: SuiteBook, target, options: RunOptions, session, console):
        self.book, self.spec = book, book.spec
        self.target, self.options = target, options
        self.session, self.console = session, console
        self.junit_suites: list = []  # <testsuite> elements, when --junit asked for them
        self.keep_junit = False
        self._current: asyncio.Future | None = None

    @property
    def interrupted(self) -> bool:
        return self.book.interrupted

    def abort(self, name: str) -> None:
        """A signal: heal the run going on (the runner does), run nothing after it."""
        self.book.stop(f"{name} received")
        say(f"\n{name} received: healing, then ending the suite (no further run starts)")
        if self._current is not None:
            # After the task's first step, not before: a run cancelled before it began would
            # skip the runner's own handling of the abort (and its result), and the cancel
            # would escape the suite (as in headless.run_headless). A signal heard just as a
            # run was created lands here before that run has taken a step.
            asyncio.get_running_loop().call_soon(self._current.cancel)

    async def run(self) -> None:
        schedule = self.book.schedule
        while (following := schedule.next()) is not None:
            if following.wait_s > 0 and not await self._pause(following.wait_s):
                return
            if self.interrupted or not schedule.time_left():
                return
            await self._run_step(following)

    async def _pause(self, seconds: float) -> bool:
        """Wait between runs; False if a signal ended the suite meanwhile."""
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

    async def _run_step(self, following: NextRun) -> None:
        name = self.book.step_name(following)
        self.console.rule(
            f"[bold]{self.spec.name}[/bold]: {self.book.progress(following)}, {name}", style="dim"
        )
        plan = self.book.start(following, self.target)
        if plan is None:  # recorded, and the suite ends: the table says why
            record = self.book.records[-1]
            self.console.print(f"ERROR {name}: {record.reason}", highlight=False, markup=False)
            if self.keep_junit:
                from chaos_tui.core.junit import unplanned_testsuite

                suite = unplanned_testsuite(name, record.reason, record.started_at, _host())
                self._keep_junit(suite, following)
            return
        await asyncio.sleep(0)  # a signal heard while this one was planned: no run starts
        if self.interrupted:
            return
        narrate = Progress(self.console)
        run = Run(plan, self.target, narrate, self.options)
        with start_up_frozen():
            self._current = asyncio.ensure_future(run.execute())
            try:
                result: RunResult = await self._current
            finally:
                self._current = None
        narrate.flush()
        saved = self.session.save(result)
        self.session.export(result)
        print_summary(self.console, result, self.book.fail_on_regression)
        if saved is not None:
            self.console.print(f"result saved to {saved}", highlight=False, soft_wrap=True)
        if self.keep_junit:
            from chaos_tui.core.junit import testsuite

            self._keep_junit(testsuite(result, _host(), self.book.fail_on_regression), following)
        self.book.add(result, following, saved)

    def _keep_junit(self, element, following: NextRun) -> None:
        """A run's <testsuite>, named by its place in the suite: a scenario repeated gives
        each run its own name in CI's test report."""
        element.set("name", f"{element.get('name')} (run {following.index})")
        self.junit_suites.append(element)


def _host() -> str:
    import socket

    return socket.gethostname()


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
    book = SuiteBook(suite, steps, target.name, fail_on_regression, session.saver.policy_for)
    runner = SuiteRunner(book, target, options, session, console)
    runner.keep_junit = junit is not None
    session.install()

    async def body() -> None:
        await runner.run()
        return None  # each result is saved as its run ends

    def after(_result) -> None:
        report = book.report()
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
    text = report_json(report)
    try:
        saved = save_report(report, state_dir, text)
        console.print(f"suite result saved to {saved}", highlight=False, soft_wrap=True)
    except OSError as exc:
        console.print(f"[yellow]could not save the suite result in {state_dir}: {exc}[/yellow]")
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


def print_table(console: Console, report: SuiteReport) -> None:
    """One row per run, then each repeated scenario's trend, then the suite's verdict."""
    console.print()
    console.print(suite_table(report))
    for line in [*why_lines(report), *drift_lines(report), verdict_line(report)]:
        console.print(line, highlight=False, soft_wrap=True)
