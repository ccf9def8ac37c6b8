"""The headless face: runs one scenario, progress on stderr, the JSON result on stdout or a file.

No Textual anywhere in here; CI imports only this and the core.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import sys
from pathlib import Path

from rich.console import Console

from chaos_tui.core.events import (
    FaultHealed,
    FaultInjected,
    InvariantChecked,
    Note,
    PhaseChanged,
    RunEvent,
    RunFinished,
    SampleTaken,
)
from chaos_tui.core.journal import result_json, save_result, write_atomic
from chaos_tui.core.model import RunResult
from chaos_tui.core.runner import Run, RunOptions
from chaos_tui.exit_codes import OUTCOME_EXIT_CODES, ExitCode


class Progress:
    """Turns run events into short lines. Samples are shown only when a probe changes state."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._probe_ok: dict[str, bool] = {}

    def _line(self, t: float, text: str) -> None:
        stamp = dt.datetime.fromtimestamp(t).strftime("%H:%M:%S.%f")[:-3]
        self.console.print(f"[dim]{stamp}[/dim] {text}", highlight=False)

    def __call__(self, event: RunEvent) -> None:
        if isinstance(event, SampleTaken):
            s = event.sample
            before = self._probe_ok.get(s.probe)
            self._probe_ok[s.probe] = s.ok
            if before is None or before == s.ok:
                return
            if s.ok:
                self._line(s.t, f"[green]probe {s.probe} ok again[/green]")
            else:
                self._line(s.t, f"[yellow]probe {s.probe} failing: {s.error}[/yellow]")
        elif isinstance(event, PhaseChanged):
            detail = f" ({event.detail})" if event.detail else ""
            self._line(event.t, f"[bold]{event.phase}[/bold]{detail}")
        elif isinstance(event, FaultInjected):
            w = event.window
            self._line(w.injected_at, f"[bold red]INJECTED[/bold red] {w.fault}: {w.description}")
        elif isinstance(event, FaultHealed):
            w = event.window
            took = (w.healed_at or 0) - w.injected_at
            if event.ok:
                self._line(w.healed_at, f"[bold green]HEALED[/bold green] {w.fault} after {took:.1f}s")
            else:
                self._line(w.healed_at, f"[bold red]HEAL FAILED[/bold red] {w.fault}: {event.error}")
        elif isinstance(event, InvariantChecked):
            r = event.result
            mark = "[green]PASS[/green]" if r.passed else "[red]FAIL[/red]"
            measured = "unmeasured" if r.measured is None else f"{r.measured:g}{r.unit and ' ' + r.unit}"
            limit = "" if r.limit is None else f" (limit {r.comparison} {r.limit:g})"
            self._line(dt.datetime.now().timestamp(), f"{mark} {r.name}: {measured}{limit} {r.detail}")
        elif isinstance(event, Note):
            style = {"warning": "yellow", "error": "red"}.get(event.level, "cyan")
            self._line(event.t, f"[{style}]{event.text}[/{style}]")
        elif isinstance(event, RunFinished):
            print_summary(self.console, event.result)


def print_summary(console: Console, result: RunResult) -> None:
    colour = {"pass": "green", "fail": "red", "interrupted": "yellow"}.get(result.outcome, "red")
    console.print(
        f"\n[bold {colour}]verdict: {result.outcome.upper()}[/bold {colour}] "
        f"{result.scenario} on {result.target} in {result.duration_s:.1f}s"
        + (f" - {result.reason}" if result.reason else ""),
        highlight=False,
    )
    r = result.recovery
    def fmt(v, unit="s"):
        return "n/a" if v is None else f"{v:g}{unit}"
    if result.injection_windows:
        console.print(
            f"recovery ({r.probe}): detected in {fmt(r.time_to_detect_s)}, recovered "
            f"{fmt(r.time_to_recover_s)} after heal, outage {fmt(r.outage_s)}, error rate "
            f"during fault {fmt(None if r.error_rate_during_fault is None else round(r.error_rate_during_fault * 100, 1), '%')}",
            highlight=False,
        )
    if r.backlog_probe and r.backlog_peak is not None:
        console.print(
            f"backlog ({r.backlog_probe}): peak {r.backlog_peak:g}, drained "
            f"{fmt(r.backlog_drain_s)} after heal",
            highlight=False,
        )
    if result.delivery is not None:
        d = result.delivery
        console.print(
            f"delivery: written {d.acknowledged}, published {d.published}, lost {d.lost}, "
            f"duplicated {d.duplicated}, unexpected {d.unexpected}",
            highlight=False,
        )
    heal = "ok" if result.heal.ok else "FAILED"
    console.print(f"heal: {heal} ({len(result.heal.faults)} fault(s) undone, verified={result.heal.verified})", highlight=False)


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
        started = getattr(target, "started", [])
        if stop_sandbox_after and started:
            console.print(f"stopping the sandbox this run started ({', '.join(started)})")
            try:
                target.sandbox.down(only=started)
            except Exception as exc:
                console.print(f"[red]could not stop the sandbox: {exc}[/red]")
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
