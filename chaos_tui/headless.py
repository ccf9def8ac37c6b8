"""The headless face: runs one scenario, progress on stderr, the JSON result on stdout or a file.

No Textual anywhere in here; CI imports only this and the core.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from rich.console import Console

from chaos_tui.core.events import RunEvent, RunFinished
from chaos_tui.core.journal import result_json, save_result, write_atomic
from chaos_tui.core.model import RunResult
from chaos_tui.core.report import result_facts, verdict_line
from chaos_tui.core.runner import Run, RunOptions
from chaos_tui.exit_codes import OUTCOME_EXIT_CODES, ExitCode
from chaos_tui.narration import Narrator


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


async def _run_with_signals(run: Run) -> RunResult:
    """SIGINT / SIGTERM cancel the run once; the runner heals before it returns."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(run.execute())
    cancelled = False

    def interrupt(signame: str) -> None:
        nonlocal cancelled
        if not cancelled:
            cancelled = True
            print(f"\n{signame} received: healing before exit", file=sys.stderr, flush=True)
            task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt, sig.name)
    try:
        return await task
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


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
    run = Run(scenario, target, Progress(console), options)
    try:
        result = asyncio.run(_run_with_signals(run))
    finally:
        try:
            stopped = target.stop_what_we_started(keep_sandbox=not stop_sandbox_after)
            if stopped:
                console.print(f"stopped what this run started: {', '.join(stopped)}")
        except Exception as exc:
            console.print(f"[red]could not stop what this run started: {exc}[/red]")
    try:
        saved = save_result(results_dir, result)
        console.print(f"result saved to {saved}", highlight=False)
    except OSError as exc:
        console.print(f"[yellow]could not save the result to {results_dir}: {exc}[/yellow]")
    if output is not None:
        write_atomic(output, result_json(result))
        console.print(f"result written to {output}", highlight=False)
    else:
        sys.stdout.write(result_json(result))
        sys.stdout.flush()
    return int(exit_code_for(result))
