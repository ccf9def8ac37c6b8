"""The probes over the run, one plot per unit, with the fault window shaded across each.

- Each probe is drawn by the measure that means something for it (`series.SeriesChoice`):
  latency for health checks, the value for counters. Latencies (and values in ms) share one
  plot; every other unit, or a unitless probe, gets a plot of its own, so a backlog count and
  a latency in ms never share a y axis. As many plots as fit are stacked; when not all fit,
  `u` (or a click) brings the next one up.
- The fault window is a band shaded behind the data (a dark red background and `░` in its
  empty cells, so it shows without colour too), with a red edge at the inject and a green one
  at the heal. Probe colours come from the Okabe-Ito set without its red and its green, so no
  probe looks like the fault or the heal, and none is white.
- The y scale is the 99th percentile of what is shown, raised to cover everything inside a
  fault window and just after it: a start-up outlier is cut off at the top instead of
  flattening the fault. Failed samples are `✕` marks on a row of their own along the bottom,
  in the probe's colour, so an outage is drawn rather than left as a gap.
- The legend is a line of our own above each plot, never over the data.

The points are picked on the event loop (a cheap copy); plotext draws them in a thread, so the
probes' timing is not held up by the 20-30 ms a chart takes.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field

import plotext as plt
from rich.console import Group
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.events import Click

from chaos_tui.core.model import ProbeSample
from chaos_tui.core.report import short_number
from chaos_tui.live import LiveRun
from chaos_tui.widgets.painted import Painted
from chaos_tui.widgets.series import Measure, SeriesChoice, metric

# Okabe-Ito, less vermillion (reads as the fault's red) and bluish green (the heal's green),
# with a light grey as the one near-white. Told apart by colour-blind eyes too.
PROBE_COLOURS: list[tuple[int, int, int]] = [
    (86, 180, 233),  # sky blue
    (230, 159, 0),  # orange
    (240, 228, 66),  # yellow
    (204, 121, 167),  # reddish purple
    (0, 114, 178),  # blue
    (190, 190, 190),  # light grey
]
BAND_BACKGROUND = "#3a0000"
BAND_GLYPH = "░"
BAND_GLYPH_STYLE = Style(color="#6f2020", bgcolor=BAND_BACKGROUND)
INJECT_EDGE = Style(color="red", bold=True)
HEAL_EDGE = Style(color="green", bold=True)
EDGE_GLYPH = "│"
FAILED_MARK = "✕"

WINDOW_S = 180.0  # the chart follows the last three minutes of a long run
PERCENTILE = 0.99
HEADROOM = 1.15
AFTER_HEAL_S = 5.0  # a recovery spike just after the heal is part of the fault's story
# (and a second before the inject's stamp: what the fault did as it landed)
PLOT_MIN_ROWS = 6  # a plot below this is unreadable: fewer plots are stacked instead
LATENCY_KEY = "latency ms"
Y_LABELS_WIDTH = 8  # about what plotext's tick labels and frame take of the width

Point = tuple[float, float]
Segment = list[Point]


@dataclass
class Series:
    probe: str
    colour: tuple[int, int, int]
    segments: list[Segment] = field(default_factory=list)
    failures: list[float] = field(default_factory=list)  # x of each column with a failure


@dataclass
class Plot:
    title: str  # its unit, or the probe it belongs to
    series: list[Series] = field(default_factory=list)
    top: float = 1.0  # the y scale's upper end


@dataclass
class ChartData:
    plots: list[Plot] = field(default_factory=list)
    x0: float = 0.0  # seconds since the run started, left and right edges
    x1: float = 1.0
    windows: list[tuple[float, float]] = field(default_factory=list)  # (inject, heal or now)
    healed: list[bool] = field(default_factory=list)


class RecoveryChart(Painted):
    DEFAULT_CSS = """
    RecoveryChart { border: round $panel-lighten-2; height: 1fr; min-height: 7; }
    RecoveryChart:focus { border: round $accent; }
    """
    BINDINGS = [Binding("u", "next_plot", "Next chart unit")]
    can_focus = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "probes over time (s since start)"
        self._drawing = False
        self._choice = SeriesChoice()
        self._first_plot = 0  # which plot leads when not all of them fit
        self._live: LiveRun | None = None
        self._all_fit = True  # every plot is shown: `u` has nothing to bring up

    def show(self, live: LiveRun) -> None:
        """Start a redraw unless one is still being drawn."""
        self._live = live
        width, height = self.content_size.width, self.content_size.height
        if self._drawing or width < 20 or height < 4 or live.started_at is None or live.now is None:
            return
        self._drawing = True
        data = chart_data(live, width, self._choice)
        first = self._first_plot
        all_fit = plots_that_fit(len(data.plots), height) >= len(data.plots)
        if all_fit != self._all_fit:
            self._all_fit = all_fit
            self.refresh_bindings()
        self.run_worker(self._draw(data, width, height, first), group="chart")

    async def _draw(self, data: ChartData, width: int, height: int, first: int) -> None:
        try:
            self.paint(await asyncio.to_thread(render, data, width, height, first))
        finally:
            self._drawing = False

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action == "next_plot" and self._all_fit)

    def action_next_plot(self) -> None:
        if self._all_fit:  # a click on a chart that shows everything changes nothing
            return
        self._first_plot += 1
        if self._live is not None:
            self.show(self._live)

    def on_click(self, event: Click) -> None:
        self.action_next_plot()


# -- the data: picked on the event loop ----------------------------------------------------


def chart_data(live: LiveRun, width: int, choice: SeriesChoice | None = None) -> ChartData:
    choice = choice or SeriesChoice()
    origin = live.started_at or 0.0
    now = live.now or origin
    start = max(origin, now - WINDOW_S)
    data = ChartData(x0=start - origin, x1=max(now - origin, start - origin + 1.0))
    # Faults that overlap (several at once) make one band: their union, healed when all are.
    for w in sorted(live.windows, key=lambda w: w.injected_at):
        end = w.healed_at if w.healed_at is not None else now
        if end < start:
            continue
        a, b = w.injected_at - origin, end - origin
        if data.windows and a <= data.windows[-1][1]:
            data.windows[-1] = (data.windows[-1][0], max(b, data.windows[-1][1]))
            data.healed[-1] = data.healed[-1] and w.healed_at is not None
        else:
            data.windows.append((a, b))
            data.healed.append(w.healed_at is not None)
    column_s = (data.x1 - data.x0) / max(1, width - Y_LABELS_WIDTH)
    plots: dict[str, Plot] = {}
    for probe in live.probes:
        # Nothing past the right edge: a sample newer than the last event would be drawn
        # beyond the plot's frame.
        samples = [s for s in live.timeline.since(probe.name, start) if s.t <= now]
        measure = choice.measure(probe.name, probe.unit, probe.description, samples)
        key = plot_key(measure, probe.unit, probe.name)
        plot = plots.setdefault(key, Plot(key))
        colour = PROBE_COLOURS[len(plot.series) % len(PROBE_COLOURS)]
        series = Series(probe.name, colour)
        series.segments, series.failures = by_column(samples, measure, origin, column_s)
        plot.series.append(series)
    # Latency first: it is what most probes say; then the others in the probes' order.
    data.plots = sorted(plots.values(), key=lambda p: p.title != LATENCY_KEY)
    for plot in data.plots:
        plot.top = robust_top(plot, data.windows)
    return data


def plot_key(measure: Measure, unit: str, probe: str) -> str:
    if measure == "latency" or unit == "ms":
        return LATENCY_KEY
    return unit or probe


def by_column(
    samples: list[ProbeSample], measure: Measure, origin: float, column_s: float
) -> tuple[list[Segment], list[float]]:
    """Runs of passing samples as (seconds, reading) points, one per column (its highest, so
    a spike survives the thinning), and the columns with a failure. Every failure breaks the
    line, so an outage is never drawn over with a slope."""
    segments: list[Segment] = [[]]
    failures: list[float] = []
    for s in samples:
        x = s.t - origin
        col = math.floor(x / column_s) if column_s > 0 else 0
        reading = metric(s, measure)
        if not s.ok or reading is None:
            if not s.ok and (not failures or x - failures[-1] >= column_s / 2):
                failures.append(x)
            if segments[-1]:
                segments.append([])
            continue
        line = segments[-1]
        if line and math.floor(line[-1][0] / column_s) == col:
            if reading > line[-1][1]:
                line[-1] = (line[-1][0], reading)
        else:
            line.append((x, reading))
    return [seg for seg in segments if seg], failures


def robust_top(plot: Plot, windows: list[tuple[float, float]]) -> float:
    """The 99th percentile of the plot's readings (a floor index: with a handful of points
    the single highest is still left out), or the highest reading in a fault window or just
    after it, or the latest reading of a series (what it reads now is never off the chart:
    a counter's newest value is its highest), whichever is higher; with some headroom."""
    readings = sorted(y for s in plot.series for seg in s.segments for _, y in seg)
    if not readings:
        return 1.0
    top = readings[int(PERCENTILE * (len(readings) - 1))]
    for s in plot.series:
        for seg in s.segments:
            for x, y in seg:
                if y > top and any(a - 1.0 <= x <= b + AFTER_HEAL_S for a, b in windows):
                    top = y
        latest = [seg[-1] for seg in s.segments if seg]
        if latest:
            top = max(top, max(latest)[1])
    return max(top * HEADROOM, 1e-9 if top > 0 else 1.0)


# -- the drawing: in a thread --------------------------------------------------------------


def plots_that_fit(count: int, height: int) -> int:
    """Each plot needs a legend line and PLOT_MIN_ROWS; at least one is always drawn."""
    return max(1, min(count, height // (PLOT_MIN_ROWS + 1)))


def render(data: ChartData, width: int, height: int, first: int = 0) -> Group:
    """plotext keeps one global figure: only one thread may call this at a time."""
    if not data.plots or not any(s.segments or s.failures for p in data.plots for s in p.series):
        return Group(Text("waiting for samples", style="dim"))
    fit = plots_that_fit(len(data.plots), height)
    order = [data.plots[(first + i) % len(data.plots)] for i in range(fit)]
    hidden = len(data.plots) - fit
    parts: list[Text] = []
    rows_left = height
    for n, plot in enumerate(order):
        rows = rows_left // (fit - n)  # the last plots take the rounding
        rows_left -= rows
        where = f" {(first + n) % len(data.plots) + 1}/{len(data.plots)}, u: next" if hidden else ""
        parts.append(legend(plot, width, where))
        parts.extend(draw_plot(plot, data, width, rows - 1))
    return Group(*parts)


def legend(plot: Plot, width: int, hint: str) -> Text:
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(plot.title, style="bold")
    if hint:  # before the keys: a narrow chart cuts those, never the way to the other plots
        line.append(f" ({hint.strip()})", style="dim italic")
    for s in plot.series:
        line.append("  ━ ", style=Style(color=_rgb(s.colour)))
        line.append(s.probe)
    line.append("  ")
    line.append(" ", style=Style(bgcolor=BAND_BACKGROUND))
    line.append(BAND_GLYPH, style=BAND_GLYPH_STYLE)
    line.append(" fault ", style="dim")
    line.append(FAILED_MARK, style="bold")
    line.append(" failed", style="dim")
    line.truncate(width, overflow="ellipsis")
    return line


def draw_plot(plot: Plot, data: ChartData, width: int, rows: int) -> list[Text]:
    rows = max(3, rows)
    plt.clf()
    # The box gives the size, not the terminal plotext sees (none, under a test or a pipe).
    plt.limitsize(False, False)
    plt.plotsize(width, rows)
    plt.theme("clear")
    canvas_rows = max(2, rows - 3)  # the frame's top and bottom, and the tick labels
    # The bottom row is the failures' own: plotext maps y onto 4 braille dots a row, so 0
    # lands on the second row when the axis starts this far below it.
    below = plot.top * 4 / (4 * canvas_rows - 5) * 1.02
    plt.xlim(data.x0, data.x1)
    plt.ylim(-below, plot.top)
    plt.yticks(*_ticks(plot.top, canvas_rows))
    for s in plot.series:
        for seg in s.segments:
            plt.plot(
                [x for x, _ in seg],
                [min(y, plot.top) for _, y in seg],  # above the scale: drawn along the top
                marker="braille",
                color=s.colour,
            )
    for s in plot.series:
        if s.failures:
            plt.scatter(s.failures, [-below] * len(s.failures), marker=FAILED_MARK, color=s.colour)
    lines = Text.from_ansi(plt.build()).split("\n", allow_blank=True)
    return shade_windows([line for line in lines if line.plain.strip()], data)


def _ticks(top: float, canvas_rows: int) -> tuple[list[float], list[str]]:
    count = max(2, min(5, canvas_rows // 2 + 1))
    values = [top / HEADROOM * i / (count - 1) for i in range(count)]
    return values, [short_number(v) for v in values]


def shade_windows(lines: list[Text], data: ChartData) -> list[Text]:
    """Shade the fault windows across the plot's canvas, found by its frame (the `┌` and `┐`
    of its top line), with an edge at each inject and heal. Only empty cells get a glyph;
    the data stays on top."""
    if not data.windows or not lines:
        return lines
    top = lines[0].plain
    left, right = top.find("┌"), top.rfind("┐")
    if left < 0 or right <= left + 1:
        return lines
    first, last = left + 1, right - 1  # the canvas columns

    def column(x: float) -> int:
        share = (x - data.x0) / max(1e-9, data.x1 - data.x0)
        return first + round(share * (last - first))

    spans = [
        (max(first, column(a)), min(last, column(b)), healed)
        for (a, b), healed in zip(data.windows, data.healed, strict=True)
        if b >= data.x0 and a <= data.x1
    ]
    bottom = next((i for i, line in enumerate(lines) if "└" in line.plain), len(lines))
    shaded: list[Text] = list(lines)
    for i in range(1, bottom):
        line = lines[i]
        plain = line.plain
        if len(plain) <= last:
            continue
        chars = list(plain)
        edges: list[tuple[int, Style]] = []
        for a, b, healed in spans:
            for col in range(a, b + 1):
                if chars[col] == " ":
                    chars[col] = BAND_GLYPH
            for col, style in ((a, INJECT_EDGE), (b, HEAL_EDGE if healed else None)):
                if style is not None and chars[col] in (" ", BAND_GLYPH):
                    chars[col] = EDGE_GLYPH
                    edges.append((col, style))
        new = Text("".join(chars), style=line.style, spans=list(line.spans))
        for a, b, _ in spans:
            new.stylize(Style(bgcolor=BAND_BACKGROUND), a, b + 1)
            col = a
            while col <= b:  # one span per run of shading, not one per cell
                if chars[col] != BAND_GLYPH:
                    col += 1
                    continue
                run = col
                while run <= b and chars[run] == BAND_GLYPH:
                    run += 1
                new.stylize(BAND_GLYPH_STYLE, col, run)
                col = run
        for col, style in edges:
            new.stylize(style, col, col + 1)
        shaded[i] = new
    return shaded


def _rgb(colour: tuple[int, int, int]) -> str:
    return "rgb({},{},{})".format(*colour)
