"""The headless face: runs one scenario, progress on stderr; the JSON result on stdout (a pipe,
or --json), in a file (--output), or for a terminal only the path of the saved result.

No Textual anywhere in here; CI imports only this and the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

from chaos_tui import status_line
from chaos_tui.core.events import RunEvent, RunFinished
from chaos_tui.core.journal import result_json, write_atomic
from chaos_tui.core.model import RunResult
from chaos_tui.core.regression import RegressionPolicy
from chaos_tui.core.report import (
    comparison_facts,
    impact_facts,
    parameters_text,
    result_facts,
    slo_facts,
    verdict_line,
)
from chaos_tui.core.runner import Run, RunOptions
from chaos_tui.narration import InOrder
from chaos_tui.otlp_export import RunExporter
from chaos_tui.session import RunSession, regressed
from chaos_tui.signals import say


class Progress:
    """Prints the narration of a run on stderr (the summary comes once all is stopped and
    saved, so that it ends the output)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._narrate = InOrder()  # lines told during an inject come out in time order

    def __call__(self, event: RunEvent) -> None:
        for line in self._narrate(event):
            self._print(line)

    def flush(self) -> None:
        for line in self._narrate.flush():
            self._print(line)

    def _print(self, line: str) -> None:
        if self.console.is_terminal:  # one row per event, cut to the width: the run fits a screen
            self.console.print(line, highlight=False, no_wrap=True, overflow="ellipsis")
        else:  # a log keeps every line whole, however long (a probe's error, say)
            self.console.print(line, highlight=False, soft_wrap=True)


def print_summary(console: Console, result: RunResult, fail_on_regression: bool = False) -> None:
    colour = {"pass": "green", "fail": "red", "interrupted": "yellow"}.get(result.outcome, "red")
    verdict, _, rest = verdict_line(result).partition(" ")
    console.print(
        f"\n[bold {colour}]verdict: {verdict}[/bold {colour}] {rest}",
        highlight=False,
        soft_wrap=True,
    )
    changed = parameters_text(result)
    if changed:
        console.print(f"parameters: {changed}", highlight=False, markup=False, soft_wrap=True)
    # A job queue's impact first (DLQ growth, drain, what became of the jobs), as the console
    # and the Markdown report put it; then every fact.
    for label, value in impact_facts(result) + result_facts(result) + comparison_facts(result):
        console.print(f"{label}: {value}", highlight=False, markup=False, soft_wrap=True)
    # The scenario file's SLOs, an objective a line with its three phases side by side.
    for label, value in slo_facts(result):
        console.print(f"{label}: {value}", highlight=False, markup=False, soft_wrap=True)
    if fail_on_regression and regressed(result) and result.outcome == "pass":
        names = ", ".join(m.label for m in result.comparison.regressions)  # type: ignore[union-attr]
        console.print(
            f"[bold red]exit 1: --fail-on-regression, and {names} regressed[/bold red]",
            highlight=False,
            soft_wrap=True,
        )


def check_distinct(outputs: list[tuple[Path, str]]) -> None:
    """Two flags naming one file would leave only the last one written there: refused."""
    seen: dict[Path, str] = {}
    for path, flag in outputs:
        where = path.resolve()
        if where in seen:
            raise OSError(f"{flag} {path} is also {seen[where]}'s file: give each its own")
        seen[where] = flag


def check_output_path(path: Path, flag: str = "--output") -> None:
    """Fail before the run, not after it: the result must have somewhere to go."""
    if path.is_dir():
        raise OSError(f"{flag} {path} is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OSError(f"{flag} {path}: directory {parent} does not exist")
    existed = path.exists()
    try:
        with open(path, "a"):
            pass
    except OSError as exc:
        raise OSError(f"{flag} {path} is not writable: {exc.strerror}") from None
    if not existed:
        path.unlink(missing_ok=True)


def run_headless(
    scenario,
    target,
    *,
    options: RunOptions,
    results_dir: Path,
    output: Path | None,
    stop_sandbox_after: bool,
    json_to_stdout: bool | None = None,
    junit: Path | None = None,
    exporter: RunExporter | None = None,
    policy: RegressionPolicy | None = None,
    fail_on_regression: bool = False,
) -> int:
    """One run: progress on stderr; at the end the summary, and the JSON result on stdout
    (`json_to_stdout`; by default when stdout is not a terminal) or in `output`. A terminal
    gets the path of the saved result instead: 4,000 lines of JSON would push the verdict
    off the screen."""
    if json_to_stdout is None:
        json_to_stdout = output is None and not _is_terminal(sys.stdout)
    status_line.erase()  # "preparing ...": the run's own lines take over from here
    # Not a terminal (CI logs): no wrapping, so each event stays one greppable line.
    console = Console(stderr=True, highlight=False, soft_wrap=not sys.stderr.isatty())
    task: asyncio.Task | None = None

    def abort(name: str) -> None:
        say(f"\n{name} received: healing before exit")
        if task is not None:
            task.cancel()

    session = RunSession(
        target,
        results_dir,
        who="this run",
        abort=abort,
        keep_sandbox=not stop_sandbox_after,
        tell=lambda line: console.print(line, highlight=False, markup=False),
        exporter=exporter,
        policy=policy,
        fail_on_regression=fail_on_regression,
    )
    session.install()
    guard = session.guard
    narrate = Progress(console)

    def emit(event: RunEvent) -> None:
        narrate(event)
        if isinstance(event, RunFinished):
            guard.enter("stopping")  # the heal is done: the run returns at once

    run = Run(scenario, target, emit, options)

    async def body() -> RunResult:
        nonlocal task
        _say_if_starting(target, scenario.profile, console)
        task = asyncio.ensure_future(run.execute())
        if guard.aborted_at is not None:  # a signal came while the run was being set up
            guard.enter("healing")
            # Once the run has begun (a task cancelled before its first step would skip the
            # runner's own handling of the abort).
            asyncio.get_running_loop().call_soon(task.cancel)
        return await task  # an abort is caught by the runner, which heals, then returns

    def after(result: RunResult | None) -> None:
        narrate.flush()  # a run cut short in the middle of an inject
        if result is not None:
            _deliver(
                result, session.saved_path, output, json_to_stdout, console, fail_on_regression
            )
            if junit is not None:
                _write_junit(result, junit, console, fail_on_regression)

    with start_up_frozen():
        return session.run(body, after)


@contextlib.contextmanager
def start_up_frozen() -> Iterator[None]:
    """What start-up made (modules, settings, the scenario, its probes) lives as long as the
    run: out of the garbage collector's sight meanwhile. Its full passes would otherwise walk
    all of it every few seconds while probes sample, a 40-100 ms stall each time at 100
    probes. Given back afterwards, so a caller that runs again in this process (a suite's
    next run) loses nothing."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _say_if_starting(target, profile: str, console: Console) -> None:
    """The first start of a sandbox takes seconds with nothing to show: say so before it."""
    sandbox = getattr(target, "sandbox", None)
    try:
        starting = sandbox is not None and not sandbox.is_up([profile])
    except Exception:  # only a courtesy line: the run itself will say what is wrong
        return
    if starting:
        console.print(f"starting the sandbox ({profile})\u2026", highlight=False)


def _deliver(
    result: RunResult,
    saved: Path | None,
    output: Path | None,
    json_to_stdout: bool,
    console: Console,
    fail_on_regression: bool = False,
) -> None:
    """The summary last on stderr, the result's path under it; the JSON where it was asked."""
    print_summary(console, result, fail_on_regression)
    if output is not None:
        try:
            write_atomic(output, result_json(result))
            console.print(f"result written to {output}", highlight=False)
        except OSError as exc:  # checked before the run, yet gone now: stdout still has it
            console.print(
                f"[yellow]could not write {output}: {exc}; the result follows on stdout[/yellow]"
            )
            json_to_stdout = True
    if saved is not None:
        # Not wrapped by Rich: a path split over two lines cannot be copied.
        console.print(f"result saved to {saved}", highlight=False, markup=False, soft_wrap=True)
    if json_to_stdout or (saved is None and output is None):  # else it would be nowhere
        sys.stdout.write(result_json(result))
        sys.stdout.flush()


def _write_junit(result: RunResult, path: Path, console: Console, fail_on_regression: bool) -> None:
    """The verdict as JUnit XML for CI; the exit code stays the run's whatever happens here."""
    import socket

    from chaos_tui.core.junit import junit_xml

    try:
        xml = junit_xml(result, socket.gethostname(), fail_on_regression)
        write_atomic(path, xml, mode=0o644)
    except OSError as exc:  # checked before the run, yet gone now
        console.print(f"[yellow]could not write the JUnit report {path}: {exc}[/yellow]")
        return
    console.print(f"JUnit report written to {path}", highlight=False, markup=False, soft_wrap=True)
