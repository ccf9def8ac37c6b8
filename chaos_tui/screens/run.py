"""The live run: CHAOS MODE banner, probe panels with sparklines, the latency chart, the
live faults with their time left, the invariant checklist, recovery metrics as they become
known, and the event log.

Everything is redrawn from a LiveRun on a timer, a few times a second, whatever the probe
rate; events only update the LiveRun.

Two layouts, chosen by the terminal's size. Wide (at least WIDE_AT): the probes and the chart
on the left, the live faults, invariants, recovery and events on the right. Compact (anything
smaller, down to 80x24): the probes, the checks (live faults and invariants) and the recovery
facts become tabs across the full width (keys 1-3), with the chart and the event log always
shown side by side below them. Crossing the line recomposes the screen; nothing is lost, since
every widget is drawn from the LiveRun. The screen also carries `-narrow` and `-short` classes
for the CSS (app.tcss).
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.geometry import Size
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane

from chaos_tui.core.model import InvariantResult
from chaos_tui.core.report import (
    broke_text,
    duration_text,
    invariant_measure,
    landed_at,
    measurement_facts,
    recovery_facts,
)
from chaos_tui.live import LiveRun
from chaos_tui.screens.keys import KeyedScroll
from chaos_tui.widgets.event_log import EventLog
from chaos_tui.widgets.faults_panel import LiveFaultsPanel
from chaos_tui.widgets.painted import Painted
from chaos_tui.widgets.probe_panel import ProbePanel
from chaos_tui.widgets.recovery_chart import RecoveryChart
from chaos_tui.widgets.title_bar import TitleBar

# At the rate a person reads, not the probe rate. The screen looks twice a second; it
# redraws at once what a person must see at once (a phase, a probe's state, a fault coming or
# going, an invariant breaking, the end), and otherwise once a second: the clocks, readings
# and sparklines. The chart (plotext, its x axis spanning minutes) and the recovery metrics
# every CHART_EVERY seconds, and at once when a fault comes, lands or heals. A widget whose
# content did not change is not repainted at all (widgets/painted.py): each repaint makes
# Textual re-render every widget on the rows it spans.
REDRAW_HZ = 2
CHART_EVERY = 2
# The smallest terminal (columns, rows) for the wide layout: below it the right-hand column
# would cut invariant names and the chart and the events would get a few rows each.
WIDE_AT = Size(120, 34)
PANES = {"probes": "1 probes", "checks": "2 checks", "recovery": "3 recovery"}


def is_compact(size: Size) -> bool:
    return size.width < WIDE_AT.width or size.height < WIDE_AT.height


def broke_words(live: LiveRun) -> str:
    """What broke, as the report words it: 'fails_closed broke at +2.10 s' (counted from the
    first fault landing), 'allow_resumes failed' for one broken only at verify."""
    landed = landed_at(live.windows)
    return ", ".join(broke_text(r, landed) for r in live.broken)


def banner_text(live: LiveRun) -> Text:
    if live.injecting and not live.live_faults:
        what = f"injecting {live.injecting}"
    else:
        what = ", ".join(
            f"{w.fault} live {duration_text(max(0.0, (live.now or w.injected_at) - w.injected_at))}"
            for w in live.live_faults
        )
    # The keys (h, ctrl+c) are in the footer: the banner is one line at any width (app.tcss).
    text = Text(f"⚠ CHAOS MODE ⚠  {what}", style="bold")
    broke = broke_words(live)
    if broke:  # the moment an invariant breaks, not after the run (reversed: red on red hides)
        text.append("  ")
        text.append(f" ✘ {broke} ", style="bold reverse")
    return text


def status_text(live: LiveRun) -> Text:
    elapsed = (live.now or 0) - (live.started_at or live.now or 0)
    text = Text()
    if live.suite:  # where the run stands in its suite: `platform run 2/4`
        text.append(f" {live.suite} ", style="reverse")
        text.append(" ")
    text.append(f" {live.scenario} ", style="bold reverse")
    text.append(f"  {duration_text(elapsed)}")
    # What broke before the phase: on a narrow terminal the line is cut from the end, and
    # the phase's detail is what may go (app.tcss).
    broke = broke_words(live)
    if live.result is not None:
        outcome = live.result.outcome
        colour = {"pass": "green", "fail": "red", "interrupted": "yellow"}.get(outcome, "red")
        text.append(f"  {outcome.upper()}", style=f"bold {colour}")
        if broke:
            text.append(f": {broke}", style=colour)
    elif broke:
        text.append(f"  ✘ {broke}", style="bold red")
    text.append(f"  on {live.target}  phase: ")
    text.append(live.phase, style="bold cyan")
    if live.phase_detail:
        text.append(f" ({live.phase_detail})", style="dim")
    return text


HOLDING = "◑"  # holding so far, while the fault is live: neither a pass nor unjudged


def invariant_table(live: LiveRun) -> Table:
    """Each invariant as it stands: its verdict (✔ / ✘), or while the fault is live broken
    so far (✘, red, with the measured value) or holding so far (◑), else not judged yet (○,
    or … while verify checks it)."""
    table = Table.grid(padding=(0, 1), expand=True)
    table.add_column(width=2)
    # A name is never cut: the value beside it wraps instead.
    longest = max((len(spec.name) for spec in live.invariant_specs), default=0)
    table.add_column(no_wrap=True, min_width=longest)
    table.add_column(justify="right", ratio=1, overflow="fold")
    checking = live.phase == "verify"
    for spec in live.invariant_specs:
        got, final = live.verdict(spec.name)
        if got is None:
            mark = Text("…" if checking else "○", style="yellow" if checking else "dim")
            limit = "" if spec.limit is None else f"{spec.comparison} {spec.limit:g} {spec.unit}"
            table.add_row(mark, Text(spec.name), Text(limit.strip(), style="dim"))
        elif final:
            mark = Text("✔", style="bold green") if got.passed else Text("✘", style="bold red")
            table.add_row(
                mark,
                Text(spec.name),
                Text(invariant_measure(got), style="" if got.passed else "red"),
            )
        elif got.passed:
            table.add_row(
                Text(HOLDING, style="green"),
                Text(spec.name),
                Text(so_far_text(got), style="dim green"),
            )
        else:
            table.add_row(
                Text("✘", style="bold red"),
                Text(spec.name, style="red"),
                Text(so_far_text(got), style="bold red"),
            )
    return table


def so_far_text(r: InvariantResult) -> str:
    """A value judged while the fault is live, short enough for the panel: '18 decisions so
    far' (its limit is the one the unjudged row showed; the verdict shows both)."""
    measured = "unmeasured" if r.measured is None else f"{r.measured:g}{r.unit and ' ' + r.unit}"
    return f"{measured} so far"


def invariant_state(live: LiveRun) -> tuple:
    so_far = tuple((n, r.passed, r.measured) for n, r in sorted(live.live_results.items()))
    return live.phase == "verify", tuple(sorted(live.invariant_results)), so_far


def urgent_state(live: LiveRun) -> tuple:
    """What a person must see within the tick it changes in; the rest waits for the second."""
    return (
        live.phase,
        live.chaos_live,
        live.finished,
        windows_state(live),
        tuple(live.probe_status(p.name) for p in live.probes),
        tuple(r.name for r in live.broken),
        tuple(sorted(live.invariant_results)),
        live.log.total,  # a line in the event log: something happened
    )


def windows_state(live: LiveRun) -> tuple:
    """What the chart's bands are drawn from: a fault coming, landing or healing."""
    return tuple((w.lease_id, w.applied_at, w.healed_at) for w in live.windows)


def metric_facts(live: LiveRun) -> tuple[tuple[str, str], ...]:
    """What is known so far, in the report's words: the recovery timings, the error rate of
    every probe that failed during the fault, and the scenario's own numbers as far as they
    are known while the fault is live; the delivery counts arrive with the result."""
    if not live.windows:
        return ()
    delivery = live.result.delivery if live.result else None
    measurements = live.result.measurements if live.result else live.live_measurements
    return tuple(recovery_facts(live.recovery(), True, delivery) + measurement_facts(measurements))


def metrics_table(facts: tuple[tuple[str, str], ...]) -> Table:
    table = Table.grid(padding=(0, 1), expand=True)
    # Both wrap, the label keeps the larger share: a long value (the delivery counts, the
    # decisions so far) must not squeeze every label down to "…".
    table.add_column(style="dim", ratio=3, min_width=12)
    table.add_column(justify="right", ratio=2)
    for label, value in facts:
        table.add_row(label, Text(value))
    if not facts:
        table.add_row("no fault injected yet", "")
    return table


class RunScreen(Screen):
    BINDINGS = [
        Binding("h", "app.halt", "Halt faults"),
        Binding("n", "app.note", "Note"),
        Binding("u", "next_plot", "Next chart unit", show=False),
        Binding("ctrl+c", "app.abort_run", "Abort + heal", priority=True),
        # The compact layout's tabs; check_action hides them in the wide one.
        Binding("1", "pane('probes')", "Panels", key_display="1-3"),
        Binding("2", "pane('checks')", "Checks", show=False),
        Binding("3", "pane('recovery')", "Recovery", show=False),
    ]
    AUTO_FOCUS = "#event-lines"  # j/k move in the log from the start (1-3 switch tabs)

    def __init__(self, live: LiveRun) -> None:
        super().__init__()
        self.live = live
        self.compact = False
        self._drawn_version = -1
        self._drawn_windows: tuple = ()  # the fault windows as the chart last drew them
        self._redraws = 0
        self._ticks = 0  # timer ticks that found something new
        self._urgent: tuple = ()  # urgent_state() as last drawn
        self._boxes: dict[str, object] = {}  # what each auto-sized box shows now
        self._tab_labels: dict[str, str] = {}
        self._recomposing = False

    def compose(self) -> ComposeResult:
        self.compact = is_compact(self.app.size)
        yield TitleBar()
        yield Painted(id="banner")
        yield Painted(id="run-status")
        if self.compact:
            # Each tab scrolls (tab focuses it, then the pager keys): six probes or three
            # live faults are taller than a tab at 80x24.
            with TabbedContent(id="panes", initial="pane-probes"):
                with TabPane(PANES["probes"], id="pane-probes"), KeyedScroll():
                    yield from self._probe_grid()
                with TabPane(PANES["checks"], id="pane-checks"), KeyedScroll():
                    yield LiveFaultsPanel(id="live-faults")
                    yield self._titled("invariants")
                with TabPane(PANES["recovery"], id="pane-recovery"), KeyedScroll():
                    yield self._titled("metrics", "recovery")
            with Horizontal(id="run-bottom"):
                yield RecoveryChart(id="chart")
                yield self._event_log()
        else:
            with Horizontal(id="run-body"):
                with Vertical(id="run-left"):
                    yield from self._probe_grid()
                    yield RecoveryChart(id="chart")
                with Vertical(id="run-right"):
                    # The checks scroll above the event log, which keeps its rows however
                    # many numbers the recovery panel grows to while the fault is live.
                    with KeyedScroll(id="run-checks"):
                        yield LiveFaultsPanel(id="live-faults")
                        yield self._titled("invariants")
                        yield self._titled("metrics", "recovery")
                    yield self._event_log()
        yield Footer()

    def _probe_grid(self) -> ComposeResult:
        with Grid(id="probe-grid"):
            for probe in self.live.probes:
                yield ProbePanel(
                    probe.name, probe.description, probe.unit, id=f"probe-{probe.name}"
                )

    @staticmethod
    def _titled(name: str, title: str | None = None) -> Static:
        box = Static(id=name, classes="box")
        box.border_title = title or name
        return box

    @staticmethod
    def _event_log() -> EventLog:
        log = EventLog(id="events")
        log.border_title = "events"
        return log

    def on_mount(self) -> None:
        self._size_classes()
        self.redraw()
        self.set_interval(1 / REDRAW_HZ, self.redraw)

    def _size_classes(self) -> None:
        size = self.app.size
        self.set_class(size.width < WIDE_AT.width, "-narrow")
        self.set_class(size.height < WIDE_AT.height, "-short")

    async def on_resize(self) -> None:
        self._size_classes()
        if is_compact(self.app.size) != self.compact:
            self._recomposing = True  # the timer's redraws wait: the widgets come and go
            try:
                await self.recompose()
            finally:
                self._recomposing = False
            self._boxes.clear()
            self._tab_labels = {}
            self.set_focus(self.query_one("#event-lines"))  # where AUTO_FOCUS put the keys
        self.call_after_refresh(self.redraw, True)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pane":
            return self.compact  # no tabs in the wide layout: every panel is on screen
        return True

    def action_next_plot(self) -> None:
        """`u` from anywhere on the run screen, not only with the chart focused."""
        self.query_one(RecoveryChart).action_next_plot()

    def action_pane(self, name: str) -> None:
        self.query_one(TabbedContent).active = f"pane-{name}"

    def redraw(self, force: bool = False) -> None:
        live = self.live
        if self._recomposing or (live.version == self._drawn_version and not force):
            return
        self._ticks += 1
        urgent = urgent_state(live)
        if not (force or urgent != self._urgent or self._ticks % REDRAW_HZ == 1):
            return  # the version moved, but only the clocks and readings: next second
        self._urgent = urgent
        self._drawn_version = live.version
        self._redraws += 1
        with self.app.batch_update():
            banner = self.query_one("#banner", Painted)
            if banner.display != live.chaos_live:
                banner.display = live.chaos_live
            if live.chaos_live:
                banner.paint(banner_text(live))
            self.query_one("#run-status", Painted).paint(status_text(live))
            self.query_one(LiveFaultsPanel).show(live)
            for panel in self.query(ProbePanel):
                panel.show(live)
            windows = windows_state(live)
            if (
                force
                or self._redraws % CHART_EVERY == 1
                or live.finished
                or windows != self._drawn_windows
            ):
                self._drawn_windows = windows
                self.query_one(RecoveryChart).show(live)
                facts = metric_facts(live)
                self._box("#metrics", facts, lambda: metrics_table(facts))
            self._box("#invariants", invariant_state(live), lambda: invariant_table(live))
            self._mark_tabs(live)
            self.query_one(EventLog).show(live.log)

    def event_lines(self) -> int:
        """Lines in the event list now (ChaosApp.stats): it mirrors the capped log."""
        return len(self.query_one(EventLog).lines)

    def _mark_tabs(self, live: LiveRun) -> None:
        """Compact layout: a failing probe or a broken invariant counts on its tab's label,
        so what breaks behind another tab still shows."""
        if not self.compact:
            return
        failing = sum(live.probe_status(p.name) == "failing" for p in live.probes)
        broken = len(live.broken)  # broken so far while the fault is live, then the verdict
        labels = {
            "probes": PANES["probes"] + (f" ✘{failing}" if failing else ""),
            "checks": PANES["checks"] + (f" ✘{broken}" if broken else ""),
        }
        if labels != self._tab_labels:
            self._tab_labels = labels
            tabs = self.query_one(TabbedContent)
            for name, label in labels.items():
                tabs.get_tab(f"pane-{name}").label = label

    def _box(self, selector: str, state: object, render) -> None:
        """Auto-sized boxes are updated (a layout pass) only when what they show changed."""
        if self._boxes.get(selector) != state:
            self._boxes[selector] = state
            self.query_one(selector, Static).update(render())
