"""Run events as one-line stories, shared by the headless progress and the console's event log.

Samples are only told when a probe changes state (ok <-> failing); at 10 Hz per probe
anything more would drown the lines that matter.
"""

from __future__ import annotations

import datetime as dt

from rich.markup import escape

from chaos_tui.core.events import (
    FaultHealed,
    FaultInjected,
    InvariantChecked,
    Note,
    PhaseChanged,
    RunEvent,
    SampleTaken,
)
from chaos_tui.core.report import invariant_measure

NOTE_STYLES = {"warning": "yellow", "error": "red", "operator": "bold magenta"}


class Narrator:
    """Call with each event; returns a Rich-markup line, or None when there is nothing to say."""

    def __init__(self) -> None:
        self._probe_ok: dict[str, bool] = {}
        self._last_t = 0.0  # events without a time of their own are told at the latest one

    def __call__(self, event: RunEvent) -> str | None:
        told = self._tell(event)
        if told is None:
            return None
        t, text = told
        self._last_t = max(self._last_t, t)
        stamp = dt.datetime.fromtimestamp(t).strftime("%H:%M:%S.%f")[:-3]
        return f"[dim]{stamp}[/dim] {text}"

    def _tell(self, event: RunEvent) -> tuple[float, str] | None:
        if isinstance(event, SampleTaken):
            s = event.sample
            self._last_t = max(self._last_t, s.t)
            before = self._probe_ok.get(s.probe)
            self._probe_ok[s.probe] = s.ok
            if before is None or before == s.ok:
                return None
            if s.ok:
                return s.t, f"[green]probe {escape(s.probe)} ok again[/green]"
            return (
                s.t,
                f"[yellow]probe {escape(s.probe)} failing: {escape(s.error or '')}[/yellow]",
            )
        if isinstance(event, PhaseChanged):
            detail = f" ({escape(event.detail)})" if event.detail else ""
            return event.t, f"[bold]{event.phase}[/bold]{detail}"
        if isinstance(event, FaultInjected):
            w = event.window
            return (
                w.injected_at,
                f"[bold red]INJECTED[/bold red] {escape(w.fault)}: {escape(w.description)}",
            )
        if isinstance(event, FaultHealed):
            w = event.window
            if event.ok and w.healed_at is not None:
                took = w.healed_at - w.injected_at
                by = f" (by {w.healed_by})" if w.healed_by != "the run" else ""
                if w.applied_at is None:  # refused, or cut short: it may never have landed
                    by += " (its inject never completed)"
                return (
                    w.healed_at,
                    f"[bold green]HEALED[/bold green] {escape(w.fault)} after {took:.1f}s{by}",
                )
            when = w.heal_started_at or w.injected_at  # a failed heal leaves the window open
            failed = f"{escape(w.fault)}: {escape(event.error or '')}"
            return when, f"[bold red]HEAL FAILED[/bold red] {failed}"
        if isinstance(event, InvariantChecked):
            r = event.result
            mark = "[green]PASS[/green]" if r.passed else "[red]FAIL[/red]"
            return (
                self._last_t,
                f"{mark} {escape(r.name)}: {escape(invariant_measure(r))} {escape(r.detail)}",
            )
        if isinstance(event, Note):
            style = NOTE_STYLES.get(event.level, "cyan")
            said = f"NOTE {event.text}" if event.level == "operator" else event.text
            return event.t, f"[{style}]{escape(said)}[/{style}]"
        return None
