"""The headless face: runs one scenario, progress on stderr, the JSON result on stdout or a file.

No Textual anywhere in here; CI imports only this and the core.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from rich.console import Console

from chaos_tui.core.events import RunEvent, RunFinished
from chaos_tui.core.journal import result_json, save_result, write_atomic
from chaos_tui.core.model import RunResult
from chaos_tui.core.report import result_facts, verdict_line
from chaos_tui.core.runner import Run, RunOptions
from chaos_tui.exit_codes import OUTCOME_EXIT_CODES, ExitCode
from chaos_tui.narration import Narrator
from chaos_tui.signals import SignalRelay, say


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


FORCE_WINDOW_S = 2.0  # a third signal this soon after the one before may force the exit


class SignalGuard:
    """SIGINT, SIGTERM and SIGHUP from the start of a run to the process's exit.

    The first aborts the run (the runner heals before it returns). Any later one is reported
    and ignored: the heal, stopping what the run started and saving the result all finish
    first. Once the heal is done, a third signal within FORCE_WINDOW_S of the one before
    gives up waiting for the services to stop; the result is still saved and printed.
    """

    def __init__(self) -> None:
        self.stage = "starting"  # then running, healing, stopping, saving, done
        self.task: asyncio.Task | None = None
        self.abort_at: float | None = None
        self.forced = asyncio.Event()
        self._signals: list[float] = []
        self.relay = SignalRelay(self.received)

    def start(self, task: asyncio.Task) -> None:
        self.task, self.stage = task, "running"
        self.relay.loop = loop = asyncio.get_running_loop()
        if self.abort_at is not None:  # a signal came while the run was being set up
            self.stage = "healing"
            # Once the run has begun (a task cancelled before its first step would skip the
            # runner's own handling of the abort).
            loop.call_soon(task.cancel)

    def received(self, name: str) -> None:
        now = time.monotonic()
        self._signals.append(now)
        if self.abort_at is None and self.stage in ("starting", "running"):
            self.abort_at = now
            self.stage = "healing" if self.task is not None else self.stage
            say(f"\n{name} received: healing before exit")
            if self.task is not None:
                self.task.cancel()
            return
        if self.stage in ("starting", "running", "healing"):
            since = now - (self.abort_at or now)
            say(f"{name} received: still healing, {since:.0f} s; the run exits once the "
                "heal is done and its result saved")
        elif self.stage == "stopping":
            if len(self._signals) >= 3 and now - self._signals[-2] <= FORCE_WINDOW_S:
                say(f"{name} received again: not waiting for what this run started to stop "
                    "(`chaos-tui sandbox down` stops it); saving the result")
                self.forced.set()
            else:
                say(f"{name} received: stopping what this run started, then saving the "
                    f"result (a third signal within {FORCE_WINDOW_S:g} s skips the wait)")
        elif self.stage == "saving":
            say(f"{name} received: saving the result, then exiting")
        else:
            say(f"{name} received: exiting")


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
    guard = SignalGuard()
    guard.relay.install()  # kept until the process exits
    progress = Progress(console)

    def emit(event: RunEvent) -> None:
        progress(event)
        if isinstance(event, RunFinished):
            guard.stage = "stopping"  # the heal is done: the run returns at once

    run = Run(scenario, target, emit, options)

    async def run_and_finish() -> RunResult:
        task = asyncio.ensure_future(run.execute())
        guard.start(task)
        result = await task  # an abort is caught by the runner, which heals, then returns
        guard.stage = "stopping"
        stopping = asyncio.ensure_future(asyncio.to_thread(
            _stop_what_we_started, target, console, not stop_sandbox_after))
        forced = asyncio.ensure_future(guard.forced.wait())
        await asyncio.wait([stopping, forced], return_when=asyncio.FIRST_COMPLETED)
        forced.cancel()
        guard.stage = "saving"
        await asyncio.to_thread(_save, result, results_dir, output, console)
        guard.stage = "done"
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
