"""Probe latency over the run, drawn by plotext, with a vertical line at each inject and heal."""

from __future__ import annotations

import plotext as plt
from rich.text import Text

from chaos_tui.live import LiveRun
from chaos_tui.widgets.painted import Painted

COLOURS = ["cyan", "magenta", "yellow", "blue", "white", "orange"]
WINDOW_S = 180.0  # the chart follows the last three minutes of a long run


class RecoveryChart(Painted):
    DEFAULT_CSS = """
    RecoveryChart { border: round $panel-lighten-2; height: 1fr; min-height: 8; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "probe latency (ms); red line: inject, green line: heal"

    def show(self, live: LiveRun) -> None:
        width, height = self.content_size.width, self.content_size.height
        if width < 20 or height < 5 or live.started_at is None or live.now is None:
            return
        self.paint(Text.from_ansi(draw(live, width, height)))


def draw(live: LiveRun, width: int, height: int) -> str:
    origin = live.started_at or 0.0
    start = max(origin, (live.now or origin) - WINDOW_S)
    plt.clf()
    plt.plotsize(width, height)
    plt.theme("clear")
    plotted = False
    for i, probe in enumerate(live.probes):
        segments = ok_segments(live.timeline.since(probe.name, start), origin, width)
        for n, segment in enumerate(segments):
            plt.plot([p[0] for p in segment], [p[1] for p in segment],
                     label=probe.name if n == 0 else None, marker="braille",
                     color=COLOURS[i % len(COLOURS)])
            plotted = True
    for w in live.windows:
        if w.injected_at >= start:
            plt.vertical_line(w.injected_at - origin, color="red")
        if w.healed_at is not None and w.healed_at >= start:
            plt.vertical_line(w.healed_at - origin, color="green")
    if not plotted:
        plt.text("waiting for samples", x=0, y=0)
    plt.xlabel("seconds since the run started")
    return plt.build()


def ok_segments(samples, origin: float, width: int) -> list[list[tuple[float, float]]]:
    """Runs of passing samples as (seconds, latency) points. A failure breaks the line, so
    an outage shows as a gap instead of a slope drawn across it."""
    stride = max(1, len(samples) // width)  # no more points than the chart has columns
    segments: list[list[tuple[float, float]]] = [[]]
    for s in samples[::stride]:
        if s.ok and s.latency_ms is not None:
            segments[-1].append((s.t - origin, s.latency_ms))
        elif segments[-1]:
            segments.append([])
    return [seg for seg in segments if seg]
