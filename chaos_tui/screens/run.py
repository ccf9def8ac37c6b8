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
from textual.widgets import Footer, RichLog, Static, TabbedContent, TabPane

from chaos_tui.core.report import invariant_measure, recovery_facts
from chaos_tui.live import LiveRun
from chaos_tui.screens.keys import KeyedLog, KeyedScroll
from chaos_tui.widgets.faults_panel import LiveFaultsPanel
from chaos_tui.widgets.painted import Painted
from chaos_tui.widgets.probe_panel import ProbePanel
from chaos_tui.widgets.recovery_chart import RecoveryChart
from chaos_tui.widgets.title_bar import TitleBar

REDRAW_HZ = 4
SLOW_EVERY = 4  # the chart (plotext) and the recovery metrics are redone once a second
# The smallest terminal (columns, rows) for the wide layout: below it the right-hand column
# would cut invariant names and the chart and the events would get a few rows each.
WIDE_AT = Size(120, 34)
PANES = {"probes": "1 probes", "checks": "2 checks", "recovery": "3 recovery"}


def is_compact(size: Size) -> bool:
    return size.width < WIDE_AT.width or size.height < WIDE_AT.height


def banner_text(live: LiveRun) -> Text:
    if live.injecting and not live.live_faults:
        what = f"injecting {live.injecting}"
    else:
        what = ", ".join(
            f"{w.fault} live {max(0.0, (live.now or w.injected_at) - w.injected_at):.1f}s"
            for w in live.live_faults
        )
    # The keys (h, ctrl+c) are in the footer: the banner is one line at any width (app.tcss).
    return Text(f"⚠ CHAOS MODE ⚠  {what}", style="bold")


def status_text(live: LiveRun) -> Text:
    elapsed = (live.now or 0) - (live.started_at or live.now or 0)
    text = Text()
    text.append(f" {live.scenario} ", style="bold reverse")
    # The detail last: on a narrow terminal it is what the line cuts (app.tcss).
    text.append(f"  {elapsed:.1f}s  on {live.target}  phase: ")
    text.append(live.phase, style="bold cyan")
    if live.phase_detail:
        text.append(f" ({live.phase_detail})", style="dim")
    return text


def invariant_table(live: LiveRun) -> Table:
    table = Table.grid(padding=(0, 1), expand=True)
    table.add_column(width=2)
    table.add_column(ratio=1)
    table.add_column(justify="right")
    checking = live.phase == "verify"
    for spec in live.invariant_specs:
        got = live.invariant_results.get(spec.name)
        if got is None:
            mark = Text("…" if checking else "○", style="yellow" if checking else "dim")
            limit = "" if spec.limit is None else f"{spec.comparison} {spec.limit:g} {spec.unit}"
            table.add_row(mark, Text(spec.name), Text(limit.strip(), style="dim"))
        else:
            mark = Text("✔", style="bold green") if got.passed else Text("✘", style="bold red")
            table.add_row(
                mark,
                Text(spec.name),
                Text(invariant_measure(got), style="" if got.passed else "red"),
            )
    return table


def invariant_state(live: LiveRun) -> tuple:
    return live.phase == "verify", tuple(sorted(live.invariant_results))


def metric_facts(live: LiveRun) -> tuple[tuple[str, str], ...]:
    """What is known so far; the delivery counts arrive with the result."""
    if not live.windows:
        return ()
    delivery = live.result.delivery if live.result else None
    return tuple(recovery_facts(live.recovery(), True, delivery))


def metrics_table(facts: tuple[tuple[str, str], ...]) -> Table:
    table = Table.grid(padding=(0, 1), expand=True)
    table.add_column(style="dim", ratio=1)
    table.add_column(justify="right")
    for label, value in facts:
        table.add_row(label, Text(value))
    if not facts:
        table.add_row("no fault injected yet", "")
    return table


class RunScreen(Screen):
    BINDINGS = [
        Binding("h", "app.halt", "Halt faults"),
        Binding("ctrl+c", "app.abort_run", "Abort + heal", priority=True),
        # The compact layout's tabs; check_action hides them in the wide one.
        Binding("1", "pane('probes')", "Panels", key_display="1-3"),
        Binding("2", "pane('checks')", "Checks", show=False),
        Binding("3", "pane('recovery')", "Recovery", show=False),
    ]
    AUTO_FOCUS = "#events"  # the pager keys scroll the log from the start (1-3 switch tabs)

    def __init__(self, live: LiveRun) -> None:
        super().__init__()
        self.live = live
        self.compact = False
        self._drawn_version = -1
        self._drawn_log = 0
        self._redraws = 0
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
    def _event_log() -> RichLog:
        log = KeyedLog(id="events", max_lines=500, markup=False, wrap=True, min_width=20)
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
            self._drawn_log = 0  # a new event log: written again from the LiveRun's lines
            self._boxes.clear()
            self._tab_labels = {}
            self.set_focus(self.query_one("#events"))  # where AUTO_FOCUS put the keys
        self.call_after_refresh(self.redraw, True)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pane":
            return self.compact  # no tabs in the wide layout: every panel is on screen
        return True

    def action_pane(self, name: str) -> None:
        self.query_one(TabbedContent).active = f"pane-{name}"

    def redraw(self, force: bool = False) -> None:
        live = self.live
        if self._recomposing or (live.version == self._drawn_version and not force):
            return
        self._drawn_version = live.version
        self._redraws += 1
        with self.app.batch_update():
            banner = self.query_one("#banner", Painted)
            banner.display = live.chaos_live
            if live.chaos_live:
                banner.paint(banner_text(live))
            self.query_one("#run-status", Painted).paint(status_text(live))
            self.query_one(LiveFaultsPanel).show(live)
            for panel in self.query(ProbePanel):
                panel.show(live)
            if force or self._redraws % SLOW_EVERY == 1 or live.finished:
                self.query_one(RecoveryChart).show(live)
                facts = metric_facts(live)
                self._box("#metrics", facts, lambda: metrics_table(facts))
            self._box("#invariants", invariant_state(live), lambda: invariant_table(live))
            self._mark_tabs(live)
            log = self.query_one(RichLog)
            new = min(live.log_total - self._drawn_log, len(live.log))
            for line in list(live.log)[len(live.log) - new :] if new > 0 else []:
                log.write(Text.from_markup(line))
            self._drawn_log = live.log_total

    def _mark_tabs(self, live: LiveRun) -> None:
        """Compact layout: a failing probe or a broken invariant counts on its tab's label,
        so what breaks behind another tab still shows."""
        if not self.compact:
            return
        failing = sum(live.probe_status(p.name) == "failing" for p in live.probes)
        broken = sum(not r.passed for r in live.invariant_results.values())
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
