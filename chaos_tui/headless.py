"""The headless face: runs one scenario, progress on stderr, the JSON result on stdout or a file.

No Textual anywhere in here; CI imports only this and the core.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from rich.console import Console

from chaos_tui.core.events import RunEvent, RunFinished
from chaos_tui.core.journal import result_json, save_result, write_atomic
from chaos_tui.core.model import RunResult
from chaos_tui.core.report import result_facts, verdict_line
from chaos_tui.core.runner import Run, RunOptions
from chaos_tui.core.exit_codes import OUTCOME_EXIT_CODES, ExitCode
from chaos_tui.narration import Narrator
from chaos_tui.signals import CleanupSignals, say


class Progress:
    """Prints the narration of a run on stderr, then the summary."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._narrate = Narrator()

    def __call__(self, event: RunEvent) -> None:
        line = self._narrate(event)
        if line is not None:
            self.console.print(line, highlight=False)
        if isinstance(event, RunFinished):
            print_summary(self.console, event.result)


def print_summary(console: Console, result: RunResult) -> None:
    colour = {"pass": "green", "fail": "red", "interrupted": "yellow"}.get(result.outcome, "red")
    verdict, _, rest = verdict_line(result).partition(" ")
    console.print(f"\n[bold {colour}]verdict: {verdict}[/bold {colour}] {rest}", highlight=False)
    for label, value in result_facts(result):
        console.print(f"{label}: {value}", highlight=False, markup=False)


def check_output_path(path: Path) -> None:
    """Fail before the run, not after it: the result must have somewhere to go."""
    if path.is_dir():
        raise OSError(f"--output {path} is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OSError(f"--output {path}: directory {parent} does not exist")
    existed = path.exists()
    try:
        with open(path, "a"):
            pass
    except OSError as exc:
        raise OSError(f"--output {path} is not writable: {exc.strerror}") from None
    if not existed:
        path.unlink(missing_ok=True)


def exit_code_for(result: RunResult) -> ExitCode:
    if not result.heal.ok:
        return ExitCode.HEAL_FAILED
    return OUTCOME_EXIT_CODES[result.outcome]


def run_headless(
    scenario,
    target,
    *,
    options: RunOptions,
    results_dir: Path,
    output: Path | None,
    stop_sandbox_after: bool,
) -> int:
    # Not a terminal (CI logs): no wrapping, so each event stays one greppable line.
    console = Console(stderr=True, highlight=False, soft_wrap=not sys.stderr.isatty())
    task: asyncio.Task | None = None

    def abort(name: str) -> None:
        say(f"\n{name} received: healing before exit")
        if task is not None:
            task.cancel()

    guard = CleanupSignals(abort, who="this run")
    guard.install()
    progress = Progress(console)

    def emit(event: RunEvent) -> None:
        progress(event)
        if isinstance(event, RunFinished):
            guard.enter("stopping")  # the heal is done: the run returns at once

    run = Run(scenario, target, emit, options)

    async def run_and_finish() -> RunResult:
        nonlocal task
        task = asyncio.ensure_future(run.execute())
        guard.relay.loop = asyncio.get_running_loop()
        if guard.aborted_at is not None:  # a signal came while the run was being set up
            guard.enter("healing")
            # Once the run has begun (a task cancelled before its first step would skip the
            # runner's own handling of the abort).
            asyncio.get_running_loop().call_soon(task.cancel)
        result = await task  # an abort is caught by the runner, which heals, then returns
        guard.enter("stopping")
        await guard.unless_forced(asyncio.ensure_future(asyncio.to_thread(
            _stop_what_we_started, target, console, not stop_sandbox_after)))
        guard.enter("saving")
        await asyncio.to_thread(_save, result, results_dir, output, console)
        guard.enter("done")
        return result

    runner = asyncio.Runner()  # its loop leaves our signal handlers alone
    try:
        result = runner.run(run_and_finish())
    finally:
        guard.relay.loop = None
        if not guard.forced.is_set():  # else a stop still runs in a thread: do not wait for it
            runner.close()
    code = int(exit_code_for(result))
    if guard.forced.is_set():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # do not wait for the stop left running in its thread
    return code


def _stop_what_we_started(target, console: Console, keep_sandbox: bool) -> None:
    try:
        stopped = target.stop_what_we_started(keep_sandbox=keep_sandbox)
        if stopped:
            console.print(f"stopped what this run started: {', '.join(stopped)}")
        left = getattr(target, "left_in_use", [])
        if left:
            console.print(f"left running, another run uses them: {', '.join(left)}")
    except Exception as exc:
        console.print(f"[red]could not stop what this run started: {exc}[/red]")


def _save(result: RunResult, results_dir: Path, output: Path | None, console: Console) -> None:
    try:
        saved = save_result(results_dir, result)
        console.print(f"result saved to {saved}", highlight=False)
    except OSError as exc:
        console.print(f"[yellow]could not save the result to {results_dir}: {exc}[/yellow]")
    if output is not None:
        try:
            write_atomic(output, result_json(result))
            console.print(f"result written to {output}", highlight=False)
            return
        except OSError as exc:  # checked before the run, yet gone now: stdout still has it
            console.print(f"[yellow]could not write {output}: {exc}; the result follows on "
                          "stdout[/yellow]")
    sys.stdout.write(result_json(result))
    sys.stdout.flush()
