"""The live run: CHAOS MODE banner, probe panels with sparklines, the latency chart, the
live faults with their time left, the invariant checklist, recovery metrics as they become
known, and the event log.

Everything is redrawn from a LiveRun on a timer, a few times a second, whatever the probe
rate; events only update the LiveRun.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, RichLog, Static

from chaos_tui.core.report import invariant_measure, recovery_facts
from chaos_tui.live import LiveRun
from chaos_tui.widgets.faults_panel import LiveFaultsPanel
from chaos_tui.widgets.painted import Painted
from chaos_tui.widgets.probe_panel import ProbePanel
from chaos_tui.widgets.recovery_chart import RecoveryChart
from chaos_tui.widgets.title_bar import TitleBar

REDRAW_HZ = 4
SLOW_EVERY = 4  # the chart (plotext) and the recovery metrics are redone once a second


def banner_text(live: LiveRun) -> Text:
    if live.injecting and not live.live_faults:
        what = f"injecting {live.injecting}"
    else:
        what = ", ".join(
            f"{w.fault} live {max(0.0, (live.now or w.injected_at) - w.injected_at):.1f}s"
            for w in live.live_faults
        )
    return Text(f"⚠  CHAOS MODE  ⚠   {what}   (h: halt and heal · ctrl+c: abort)", style="bold")


def status_text(live: LiveRun) -> Text:
    elapsed = (live.now or 0) - (live.started_at or live.now or 0)
    text = Text()
    text.append(f" {live.scenario} ", style="bold reverse")
    text.append(f"  on {live.target}   phase: ")
    text.append(live.phase, style="bold cyan")
    if live.phase_detail:
        text.append(f" ({live.phase_detail})", style="dim")
    text.append(f"   {elapsed:.1f}s")
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
        Binding("n", "app.note", "Note"),
        Binding("ctrl+c", "app.abort_run", "Abort + heal", priority=True),
    ]

    def __init__(self, live: LiveRun) -> None:
        super().__init__()
        self.live = live
        self._drawn_version = -1
        self._drawn_log = 0
        self._redraws = 0
        self._boxes: dict[str, object] = {}  # what each auto-sized box shows now

    def compose(self) -> ComposeResult:
        yield TitleBar()
        yield Painted(id="banner")
        yield Painted(id="run-status")
        with Horizontal(id="run-body"):
            with Vertical(id="run-left"):
                with Grid(id="probe-grid"):
                    for probe in self.live.probes:
                        yield ProbePanel(
                            probe.name, probe.description, probe.unit, id=f"probe-{probe.name}"
                        )
                yield RecoveryChart(id="chart")
            with Vertical(id="run-right"):
                yield LiveFaultsPanel(id="live-faults")
                yield Static(id="invariants", classes="box")
                yield Static(id="metrics", classes="box")
                yield RichLog(id="events", max_lines=500, markup=False, wrap=True, min_width=20)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#invariants").border_title = "invariants"
        self.query_one("#metrics").border_title = "recovery"
        self.query_one("#events").border_title = "events"
        self.redraw()
        self.set_interval(1 / REDRAW_HZ, self.redraw)

    def redraw(self, force: bool = False) -> None:
        live = self.live
        if live.version == self._drawn_version and not force:
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
            log = self.query_one(RichLog)
            new = min(live.log_total - self._drawn_log, len(live.log))
            for line in list(live.log)[len(live.log) - new :] if new > 0 else []:
                log.write(Text.from_markup(line))
            self._drawn_log = live.log_total

    def _box(self, selector: str, state: object, render) -> None:
        """Auto-sized boxes are updated (a layout pass) only when what they show changed."""
        if self._boxes.get(selector) != state:
            self._boxes[selector] = state
            self.query_one(selector, Static).update(render())

    def on_resize(self) -> None:
        self.call_after_refresh(self.redraw, True)
