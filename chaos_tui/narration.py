"""Run events as one-line stories, shared by the headless progress and the console's event log.

Samples are only told when a probe changes state (ok <-> failing); at 10 Hz per probe
anything more would drown the lines that matter. A probe that fails before it ever passed is
starting up, not failing: neither that nor its first pass is told.

Events do not arrive in the order they happened: a fault's window is sent once its inject
returns, stamped with when the inject began, after the samples that already saw the fault.
`OrderedLog` keeps lines by their own time (the console), and `InOrder` holds a stream's lines
while a fault is being applied (headless stderr, which cannot take a line back).
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass

from rich.markup import escape

from chaos_tui.core.events import (
    FaultHealed,
    FaultInjected,
    InvariantChecked,
    LiveJudgement,
    Note,
    PhaseChanged,
    RunEvent,
    SampleTaken,
)
from chaos_tui.core.report import duration_text, invariant_measure

NOTE_STYLES = {"warning": "yellow", "error": "red", "operator": "bold magenta"}
HOLD_AT_MOST_S = 5.0  # a slow inject does not silence a stream for longer than this


@dataclass(frozen=True, slots=True)
class LogLine:
    t: float  # when it happened, by the event's own clock
    text: str  # Rich markup, without the time

    @property
    def stamp(self) -> str:
        return dt.datetime.fromtimestamp(self.t).strftime("%H:%M:%S.%f")[:-3]

    def stamped(self) -> str:
        return f"[dim]{self.stamp}[/dim] {self.text}"


class Narrator:
    """Call with each event; returns a Rich-markup line, or None when there is nothing to say.
    `tell` gives the same as a LogLine, its time apart."""

    def __init__(self) -> None:
        self._probe_ok: dict[str, bool] = {}
        self._passed: set[str] = set()  # probes that have passed at least once
        self._last_t = 0.0  # events without a time of their own are told at the latest one
        self._broke: set[str] = set()  # invariants already told as broken while live

    def __call__(self, event: RunEvent) -> str | None:
        line = self.tell(event)
        return None if line is None else line.stamped()

    def tell(self, event: RunEvent) -> LogLine | None:
        told = self._tell(event)
        if told is None:
            return None
        t, text = told
        self._last_t = max(self._last_t, t)
        return LogLine(t, text)

    def _tell(self, event: RunEvent) -> tuple[float, str] | None:
        if isinstance(event, SampleTaken):
            s = event.sample
            self._last_t = max(self._last_t, s.t)
            before = self._probe_ok.get(s.probe)
            self._probe_ok[s.probe] = s.ok
            starting = s.probe not in self._passed
            if s.ok:
                self._passed.add(s.probe)
            if before is None or before == s.ok or starting:
                return None  # no news, or a probe starting up: its first pass is no recovery
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
                after = duration_text(took)
                return (
                    w.healed_at,
                    f"[bold green]HEALED[/bold green] {escape(w.fault)} after {after}{by}",
                )
            when = w.heal_started_at or w.injected_at  # a failed heal leaves the window open
            failed = f"{escape(w.fault)}: {escape(event.error or '')}"
            return when, f"[bold red]HEAL FAILED[/bold red] {failed}"
        if isinstance(event, LiveJudgement):
            # Told once, the moment it breaks; how it stands later shows in the console's
            # panel, and the verdict at verify is told as usual.
            fresh = [r for r in event.results if not r.passed and r.name not in self._broke]
            if not fresh:
                return None
            self._broke.update(r.name for r in fresh)
            told = "; ".join(
                f"{escape(r.name)}: {escape(invariant_measure(r))} so far"
                + (f" ({escape(r.detail)})" if r.detail else "")
                for r in fresh
            )
            when = min(r.broke_at or event.t for r in fresh)
            return when, f"[bold red]BROKE[/bold red] {told}"
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


class OrderedLog:
    """The last `maxlen` lines in the order they happened, whatever order they came in.
    `total` counts every line ever added; `reordered_at` is the `total` at which a line last
    went in before the end, so a view that has shown lines up to some total knows whether it
    can append the new ones or must redraw."""

    def __init__(self, maxlen: int) -> None:
        self.maxlen = maxlen
        self._lines: list[LogLine] = []
        self._keys: list[tuple[float, int]] = []  # (t, arrival): equal times keep arrival order
        self.total = 0
        self.reordered_at = 0

    def add(self, line: LogLine) -> None:
        self.total += 1
        key = (line.t, self.total)
        at = bisect_right(self._keys, key)
        if at < len(self._keys):
            self.reordered_at = self.total
        self._keys.insert(at, key)
        self._lines.insert(at, line)
        if len(self._lines) > self.maxlen:  # the oldest by time goes
            del self._keys[0], self._lines[0]

    def __len__(self) -> int:
        return len(self._lines)

    def __getitem__(self, index: int) -> LogLine:
        return self._lines[index]

    def __iter__(self) -> Iterator[LogLine]:
        return iter(self._lines)


class InOrder:
    """Narration for a stream that cannot take a line back. From the moment a fault starts
    being applied until its window (or its heal) arrives, lines are held, then told in time
    order together with it; so `INJECTED` comes before the probe failures it caused."""

    def __init__(self, narrator: Narrator | None = None) -> None:
        self._narrate = narrator or Narrator()
        self._held: list[LogLine] | None = None
        self._held_since = 0.0

    def __call__(self, event: RunEvent) -> list[str]:
        line = self._narrate.tell(event)
        if isinstance(event, PhaseChanged) and event.phase == "inject":
            out = self._release()
            self._held, self._held_since = [], event.t
            return out + ([line.stamped()] if line else [])
        if self._held is None:
            return [line.stamped()] if line else []
        if line is not None:
            self._held.append(line)
        if isinstance(event, SampleTaken):
            too_long = event.sample.t - self._held_since > HOLD_AT_MOST_S
        elif isinstance(event, Note):
            too_long = event.t - self._held_since > HOLD_AT_MOST_S
        else:  # the window, the heal, a phase: what was held can be told
            too_long = True
        return self._release() if too_long else []

    def _release(self) -> list[str]:
        held, self._held = self._held or [], None
        return [line.stamped() for line in sorted(held, key=lambda line: line.t)]

    def flush(self) -> list[str]:
        """Whatever is still held, when the stream ends."""
        return self._release()
