"""One panel per probe: its state in colour, the current reading in its unit and its recovery
sparkline with its scale."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from chaos_tui.core.model import ProbeSample
from chaos_tui.live import LiveRun
from chaos_tui.widgets.painted import Painted
from chaos_tui.widgets.sparkline import WINDOW_BAND, render_sparkline, sample_metric

SPAN_S = 60.0  # the sparkline shows at most the last minute
MIN_SPAN_S = 10.0  # and at least ten seconds, so a short run fills the width
STATUS_STYLE = {"ok": "green", "degraded": "yellow", "failing": "red", "waiting": "grey50"}


class ProbePanel(Painted):
    """Redrawn by the run screen from a LiveRun; it holds no data of its own."""

    DEFAULT_CSS = """
    ProbePanel { height: 5; border: round $success; padding: 0 1; }
    ProbePanel.-degraded { border: round $warning; }
    ProbePanel.-failing { border: heavy $error; }
    ProbePanel.-waiting { border: round $panel-lighten-2; }
    """

    def __init__(self, probe: str, description: str, unit: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.probe = probe
        self.unit = unit
        self.border_title = probe
        self.border_subtitle = description
        self._status = ""

    def show(self, live: LiveRun) -> None:
        status = live.probe_status(self.probe)
        if status != self._status:
            for name in STATUS_STYLE:
                self.set_class(name == status, f"-{name}")
            self._status = status
        now = live.now or 0.0
        span = min(SPAN_S, max(MIN_SPAN_S, now - (live.started_at or now)))
        recent = live.timeline.since(self.probe, now - span)
        use_value = any(s.value is not None for s in recent)
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(f"{status.upper():<9}", style=f"bold {STATUS_STYLE[status]}")
        if recent:
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
        measure = (self.unit or "value") if use_value else "latency ms"
        low, high = (min(shown), max(shown)) if shown else (None, None)
        scale = "" if low is None else f" {low:g}" + (f"-{high:g}" if high != low else "")
        legend = Text(
            f"{measure}{scale}, last {span:.0f}s  ", style="dim", no_wrap=True, overflow="crop"
        )
        legend.append("  ", style=WINDOW_BAND)
        legend.append(" fault  ", style="dim")
        legend.append("✕", style="bold red")
        legend.append(" failed", style="dim")
        self.paint(Group(head, spark, legend))


def reading(last: ProbeSample, use_value: bool, unit: str) -> Text:
    """The latest sample in words: its value in its unit (the probe's own round trip beside
    it, dim), or the round trip alone for a probe that measures nothing else."""
    if not last.ok:
        return Text(last.error or "failed", style="red")
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
