"""Probe latency over the run, drawn by plotext, with a vertical line at each inject and heal.

The points are picked on the event loop (a cheap copy); plotext draws them in a thread, so the
probes' timing is not held up by the 20-30 ms a chart takes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import plotext as plt
from rich.text import Text

from chaos_tui.core.model import ProbeSample
from chaos_tui.live import LiveRun
from chaos_tui.widgets.painted import Painted

COLOURS = ["cyan", "magenta", "yellow", "blue", "white", "orange"]
WINDOW_S = 180.0  # the chart follows the last three minutes of a long run

Segment = list[tuple[float, float]]


@dataclass
class ChartData:
    series: list[tuple[str, list[Segment]]] = field(default_factory=list)
    injects: list[float] = field(default_factory=list)
    heals: list[float] = field(default_factory=list)


class RecoveryChart(Painted):
    DEFAULT_CSS = """
    RecoveryChart { border: round $panel-lighten-2; height: 1fr; min-height: 8; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "probe latency (ms); red line: inject, green line: heal"
        self._drawing = False

    def show(self, live: LiveRun) -> None:
        """Start a redraw unless one is still being drawn."""
        width, height = self.content_size.width, self.content_size.height
        if self._drawing or width < 20 or height < 5 or live.started_at is None or live.now is None:
            return
        self._drawing = True
        self.run_worker(self._draw(chart_data(live, width), width, height), group="chart")

    async def _draw(self, data: ChartData, width: int, height: int) -> None:
        try:
            self.paint(Text.from_ansi(await asyncio.to_thread(render, data, width, height)))
        finally:
            self._drawing = False


def chart_data(live: LiveRun, width: int) -> ChartData:
    origin = live.started_at or 0.0
    start = max(origin, (live.now or origin) - WINDOW_S)
    data = ChartData()
    for probe in live.probes:
        data.series.append(
            (probe.name, ok_segments(live.timeline.since(probe.name, start), origin, width))
        )
    for w in live.windows:
        if w.injected_at >= start:
            data.injects.append(w.injected_at - origin)
        if w.healed_at is not None and w.healed_at >= start:
            data.heals.append(w.healed_at - origin)
    return data


def render(data: ChartData, width: int, height: int) -> str:
    """plotext keeps one global figure: only one thread may call this at a time."""
    plt.clf()
    plt.plotsize(width, height)
    plt.theme("clear")
    plotted = False
    for i, (name, segments) in enumerate(data.series):
        for n, segment in enumerate(segments):
            plt.plot(
                [p[0] for p in segment],
                [p[1] for p in segment],
                label=name if n == 0 else None,
                marker="braille",
                color=COLOURS[i % len(COLOURS)],
            )
            plotted = True
    for x in data.injects:
        plt.vertical_line(x, color="red")
    for x in data.heals:
        plt.vertical_line(x, color="green")
    if not plotted:
        plt.text("waiting for samples", x=0, y=0)
    plt.xlabel("seconds since the run started")
    return plt.build()


def ok_segments(samples: list[ProbeSample], origin: float, width: int) -> list[Segment]:
    """Runs of passing samples as (seconds, latency) points, at most about one per column.
    Every failure breaks the line, kept or not, so an outage shows as a gap instead of a
    slope drawn across it."""
    stride = max(1, len(samples) // width)
    segments: list[Segment] = [[]]
    for i, s in enumerate(samples):
        if not s.ok or s.latency_ms is None:
            if segments[-1]:
                segments.append([])
        elif i % stride == 0 or not segments[-1]:
            segments[-1].append((s.t - origin, s.latency_ms))
    return [seg for seg in segments if seg]
