"""One panel per probe: its state in colour, the current reading in its unit and its recovery
sparkline with its scale."""

from __future__ import annotations

import re

from rich.console import Group
from rich.text import Text

from chaos_tui.core.model import ProbeSample
from chaos_tui.core.report import duration_text, short_number
from chaos_tui.live import LiveRun
from chaos_tui.widgets.painted import Painted
from chaos_tui.widgets.series import SeriesChoice, measure_label
from chaos_tui.widgets.sparkline import WINDOW_BAND, render_sparkline, sample_metric

# The sparkline spans the first of these that covers the run so far: a caption that moves in
# steps ("last 10s", "last 30s", "last 60s") instead of counting up with the clock.
SPANS_S = (10.0, 30.0, 60.0)
STATUS_STYLE = {"ok": "green", "degraded": "yellow", "failing": "red", "waiting": "grey50"}

# The words that say what went wrong, looked for anywhere in a driver's long error: a panel
# shows these rather than the first words ("connection failed: connection to…").
ERROR_GISTS = [
    (re.compile(r"connection refused", re.I), "connection refused"),
    (re.compile(r"connection reset", re.I), "connection reset"),
    (re.compile(r"timed? ?out|timeout", re.I), "timed out"),
    (re.compile(r"no route to host", re.I), "no route to host"),
    (re.compile(r"name or service not known|nodename nor servname", re.I), "unknown host"),
    (re.compile(r"\bHTTP \d{3}\b"), ""),  # kept as written: "HTTP 503"
    (re.compile(r"no responders", re.I), "no responders"),
    (re.compile(r"broken pipe", re.I), "broken pipe"),
]


def span_for(elapsed_s: float) -> float:
    return next((span for span in SPANS_S if elapsed_s <= span), SPANS_S[-1])


def short_error(error: str | None) -> str:
    """The gist of a probe's error in a few words: a known phrase found anywhere in it, or
    its last clause (drivers put the cause last: "...: Connection refused")."""
    text = " ".join((error or "failed").split())
    for pattern, gist in ERROR_GISTS:
        if found := pattern.search(text):
            return gist or found.group(0)
    return text.rsplit(": ", 1)[-1] or text


class ProbePanel(Painted):
    """Redrawn by the run screen from a LiveRun; it holds no data of its own but the start of
    the probe's current outage, kept up as samples arrive."""

    DEFAULT_CSS = """
    ProbePanel { height: 5; border: round $success; padding: 0 1; }
    ProbePanel.-degraded { border: round $warning; }
    ProbePanel.-failing { border: heavy $error; }
    ProbePanel.-waiting { border: round $panel-lighten-2; }
    """

    def __init__(self, probe: str, description: str, unit: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.probe = probe
        self.description = description
        self.unit = unit
        self.border_title = probe
        self.border_subtitle = description
        self._status = ""
        self._choice = SeriesChoice()
        self._seen_until: float | None = None  # the newest sample read into _down_since
        self._down_since: float | None = None  # the first failure of the current outage

    @property
    def status(self) -> str:
        """The state it shows: waiting, ok, degraded or failing ("" before its first show)."""
        return self._status

    def show(self, live: LiveRun) -> None:
        status = live.probe_status(self.probe)
        if status != self._status:
            for name in STATUS_STYLE:
                self.set_class(name == status, f"-{name}")
            self._status = status
        now = live.now or 0.0
        span = span_for(now - (live.started_at or now))
        recent = live.timeline.since(self.probe, now - span)
        self._follow_outage(live)
        measure = self._choice.measure(self.probe, self.unit, self.description, recent)
        use_value = measure == "value"
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(f"{status.upper():<9}", style=f"bold {STATUS_STYLE[status]}")
        if recent and not recent[-1].ok:
            head.append_text(outage_words(recent[-1], self._down_since, now))
        elif recent:
            head.append_text(reading(recent[-1], use_value, self.unit))
        width = max(10, self.content_size.width or 40)
        spark = render_sparkline(
            recent,
            live.windows,
            width=width,
            end=now,
            span_s=span,
            use_value=use_value,
            colour=STATUS_STYLE["ok"],
        )
        shown = [m for s in recent if s.ok and (m := sample_metric(s, use_value)) is not None]
        scale = ""
        if shown:
            low, high = short_number(min(shown)), short_number(max(shown))
            scale = f" {low}" + (f"-{high}" if high != low else "")
        legend = Text(
            f"{measure_label(measure, self.unit)}{scale}, last {span:.0f} s",
            style="dim",
            no_wrap=True,
            overflow="ellipsis",
        )
        # The key to the band and the cross, only where it fits whole (the chart's legend
        # says the same): a caption cut to "last 1" or "faul" misleads.
        key = Text()
        key.append("  ")
        key.append("  ", style=WINDOW_BAND)
        key.append(" fault  ", style="dim")
        key.append("✕", style="bold red")
        key.append(" failed", style="dim")
        if legend.cell_len + key.cell_len <= width:
            legend.append_text(key)
        self.paint(Group(head, spark, legend), key=(head, spark, legend))

    def _follow_outage(self, live: LiveRun) -> None:
        """Reads only the samples that arrived since the last redraw."""
        since = self._seen_until if self._seen_until is not None else float("-inf")
        for s in live.timeline.since(self.probe, since):
            if self._seen_until is not None and s.t <= self._seen_until:
                continue
            if s.ok:
                self._down_since = None
            elif self._down_since is None:
                self._down_since = s.t
            self._seen_until = s.t


def outage_words(last: ProbeSample, down_since: float | None, now: float) -> Text:
    """A failing probe's line: for how long it has been down and why, in short."""
    text = Text()
    if down_since is not None:
        text.append(f"down {duration_text(max(0.0, now - down_since))}", style="bold red")
        text.append(" · ", style="dim")
    text.append(short_error(last.error), style="red")
    return text


def reading(last: ProbeSample, use_value: bool, unit: str) -> Text:
    """The latest sample in words: its value in its unit (the probe's own round trip beside
    it, dim), or the round trip alone for a probe that measures nothing else."""
    if not last.ok:
        return Text(short_error(last.error), style="red")
    text = Text()
    if use_value:
        if last.value is None:
            text.append("no value", style="dim")
        else:
            text.append(f"{last.value:g}{unit and ' ' + unit}", style="bold")
        if last.latency_ms is not None:
            text.append(f"  probe {last.latency_ms:.1f} ms", style="dim")
    elif last.latency_ms is not None:
        text.append(f"{last.latency_ms:.1f} ms")
    return text
