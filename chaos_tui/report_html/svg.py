"""Charts as inline SVG, drawn from a result's numbers: a probe's series over the run with its
injection windows shaded, and a metric's trend over past runs.

No colour is written here: every mark carries a class, and the page's CSS colours the classes
with variables that follow the light or dark scheme (and print). Coordinates are rounded to a
tenth of a pixel so a chart of a long run stays small.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from chaos_tui.core.report import short_number

WIDTH = 760  # the viewBox; the page scales it to its column
PLOT_LEFT, PLOT_RIGHT = 56, 12  # room for the y labels on the left
PLOT_TOP, PLOT_BOTTOM = 22, 30  # room for the window labels above and the x labels below
FAIL_STRIP = 6  # the row of failing-sample marks under the plot


def _n(value: float) -> str:
    return f"{round(value, 1):g}"


@dataclass(frozen=True)
class Scale:
    """A linear map from data to pixels."""

    lo: float
    hi: float
    start: float  # pixel of lo
    end: float  # pixel of hi

    def __call__(self, value: float) -> float:
        span = self.hi - self.lo or 1.0
        return self.start + (value - self.lo) / span * (self.end - self.start)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round values from lo to hi, about `count` of them (1, 2 or 5 times a power of ten)."""
    span = hi - lo
    if span <= 0 or not math.isfinite(span):
        return [lo]
    raw = span / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _text(x: float, y: float, text: str, cls: str, anchor: str = "middle") -> str:
    return (
        f'<text x="{_n(x)}" y="{_n(y)}" class="{cls}" text-anchor="{anchor}">{escape(text)}</text>'
    )


def _y_axis(scale: Scale, x0: float, x1: float, fmt: Callable[[float], str]) -> list[str]:
    out = []
    for tick in nice_ticks(scale.lo, scale.hi, 4):
        y = scale(tick)
        out.append(f'<line class="grid" x1="{_n(x0)}" x2="{_n(x1)}" y1="{_n(y)}" y2="{_n(y)}"/>')
        out.append(_text(x0 - 6, y + 4, fmt(tick), "tick", "end"))
    return out


@dataclass(frozen=True)
class Window:
    """An injection window on a chart's time axis, in seconds since the run started. `landed`
    and `heal` are the edges drawn as lines (the fault in place, the heal begun)."""

    label: str
    start_s: float
    end_s: float
    landed_s: float
    heal_s: float | None


@dataclass(frozen=True)
class Point:
    t: float  # seconds since the run started
    ok: bool
    y: float | None  # None: no reading (a failed request has no latency)


def _thin(points: Sequence[Point], columns: int) -> list[Point]:
    """At most about two points per pixel column: a column keeps its first failure, else its
    highest reading, so a spike or a failure is never thinned away."""
    if len(points) <= columns * 2:
        return list(points)
    lo, hi = points[0].t, points[-1].t
    span = (hi - lo) or 1.0
    kept: dict[int, Point] = {}
    for p in points:
        col = int((p.t - lo) / span * columns)
        old = kept.get(col)
        if old is None or (old.ok and not p.ok) or (old.ok == p.ok and (p.y or 0) > (old.y or 0)):
            kept[col] = p
    return [kept[c] for c in sorted(kept)]


def series_chart(
    points: Sequence[Point],
    windows: Sequence[Window],
    span_s: float,
    unit: str,
    title: str,
    height: int = 190,
) -> str:
    """One probe's readings over the run: a line (broken where there is no reading), each
    failing sample marked in a strip under the plot (and on the line where it has a reading),
    each injection window shaded with its fault-in-place and heal edges drawn."""
    x = Scale(0.0, max(span_s, 1e-3), PLOT_LEFT, WIDTH - PLOT_RIGHT)
    plot_bottom = height - PLOT_BOTTOM - FAIL_STRIP - 4
    values = [p.y for p in points if p.y is not None]
    top = max(values) if values else 1.0
    top = top * 1.08 if top > 0 else 1.0
    y = Scale(0.0, top, plot_bottom, PLOT_TOP)
    fmt = (lambda v: f"{short_number(v)} {unit}".strip()) if unit else short_number
    parts = [
        f'<svg class="chart series" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'data-x-left="{_n(x.start)}" data-x-right="{_n(x.end)}" data-span-s="{span_s:g}" '
        f'aria-label="{escape(title, quote=True)}">',
        f"<title>{escape(title)}</title>",
    ]
    for w in windows:  # behind everything else
        x0, x1 = x(max(0.0, w.start_s)), x(min(span_s, w.end_s))
        parts.append(
            f'<rect class="window" x="{_n(x0)}" y="{PLOT_TOP}" width="{_n(max(0.5, x1 - x0))}" '
            f'height="{_n(plot_bottom - PLOT_TOP)}" data-start-s="{w.start_s:.3f}" '
            f'data-end-s="{w.end_s:.3f}"><title>{escape(w.label)}</title></rect>'
        )
    parts += _y_axis(y, PLOT_LEFT, WIDTH - PLOT_RIGHT, fmt)
    for w in windows:
        edges = [("inject", w.landed_s)] + ([("heal", w.heal_s)] if w.heal_s is not None else [])
        for name, at in edges:
            ex = x(min(span_s, max(0.0, at)))
            parts.append(
                f'<line class="edge {name}" x1="{_n(ex)}" x2="{_n(ex)}" y1="{PLOT_TOP - 4}" '
                f'y2="{_n(plot_bottom)}" data-at-s="{at:.3f}"/>'
            )
            anchor = "end" if name == "inject" else "start"
            shift = -3 if name == "inject" else 3
            parts.append(_text(ex + shift, PLOT_TOP - 8, name, f"edge-label {name}", anchor))
    # The x axis: seconds since the run started.
    for tick in nice_ticks(0.0, span_s, 8):
        tx = x(tick)
        parts.append(_text(tx, height - 10, f"{tick:g} s", "tick"))
    parts.append(
        f'<line class="axis" x1="{PLOT_LEFT}" x2="{WIDTH - PLOT_RIGHT}" '
        f'y1="{_n(plot_bottom)}" y2="{_n(plot_bottom)}"/>'
    )
    thinned = _thin(points, int(x.end - x.start))
    path, pen_down = [], False
    for p in thinned:
        if p.y is None:
            pen_down = False
            continue
        path.append(f"{'L' if pen_down else 'M'}{_n(x(p.t))} {_n(y(p.y))}")
        pen_down = True
    if path:
        parts.append(f'<path class="line" d="{" ".join(path)}"/>')
    strip_y = plot_bottom + 4
    failed = [p for p in thinned if not p.ok]
    for p in failed:
        parts.append(
            f'<rect class="fail" x="{_n(x(p.t) - 1)}" y="{_n(strip_y)}" width="2.4" '
            f'height="{FAIL_STRIP}"/>'
        )
        if p.y is not None:
            parts.append(f'<circle class="fail" cx="{_n(x(p.t))}" cy="{_n(y(p.y))}" r="2.2"/>')
    if not points:
        parts.append(_text(WIDTH / 2, height / 2, "no samples", "empty"))
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class TrendPoint:
    """One past run on a trend chart."""

    label: str  # the run's id and time, shown on hover
    value: float | None
    passed: bool
    regressed: bool = False
    params: str = ""  # the parameters it changed from the defaults ("" = all at the defaults)


def _run_mark(cx: float, cy: float, p: TrendPoint, tip: str) -> str:
    """A run's dot: a circle at the default parameters, a diamond with other parameters (the
    reader must not take hold_s=6's outage for a regression of hold_s=3's); filled for a
    pass, hollow for anything else. Its centre is in data-x/data-y whatever its shape."""
    cls = ("run pass" if p.passed else "run fail") + (" other" if p.params else "")
    at = f'data-x="{_n(cx)}" data-y="{_n(cy)}"'
    title = f"<title>{escape(tip)}</title>"
    if not p.params:
        return f'<circle class="{cls}" cx="{_n(cx)}" cy="{_n(cy)}" r="3.6" {at}>{title}</circle>'
    r = 5.0
    d = f"M{_n(cx)} {_n(cy - r)}L{_n(cx + r)} {_n(cy)}L{_n(cx)} {_n(cy + r)}L{_n(cx - r)} {_n(cy)}Z"
    return f'<path class="{cls}" d="{d}" {at}>{title}</path>'


def trend_chart(
    points: Sequence[TrendPoint],
    fmt: Callable[[float], str],
    title: str,
    width: int = 470,
    height: int = 170,
) -> str:
    """A metric over past runs, oldest on the left, one run per step: a line per parameter set
    through its runs that have the figure (dashed for a set other than the defaults), a dot
    per run (a diamond with other parameters; hollow red for anything but a pass), a ring
    around a run its comparison flagged as a regression."""
    count = len(points)
    x = Scale(0.0, max(1, count - 1), PLOT_LEFT + 8, width - PLOT_RIGHT - 8)
    plot_bottom = height - PLOT_BOTTOM
    values = [p.value for p in points if p.value is not None]
    top = max(values) if values else 1.0
    top = top * 1.1 if top > 0 else 1.0
    y = Scale(0.0, top, plot_bottom, PLOT_TOP)
    parts = [
        f'<svg class="chart trend" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title, quote=True)}">',
        f"<title>{escape(title)}</title>",
    ]
    parts += _y_axis(y, PLOT_LEFT, width - PLOT_RIGHT, fmt)
    parts.append(
        f'<line class="axis" x1="{PLOT_LEFT}" x2="{width - PLOT_RIGHT}" '
        f'y1="{plot_bottom}" y2="{plot_bottom}"/>'
    )
    # A few run numbers under the axis, so "the 7th run from the left" can be found.
    for i in nice_ticks(0, max(1, count - 1), min(6, max(1, count - 1))):
        if i == int(i) and i < count:
            parts.append(_text(x(i), height - 10, f"#{int(i) + 1}", "tick"))
    # One line per parameter set: runs held 1 s and 6 s are not one trend.
    sets: dict[str, list[str]] = {}
    for i, p in enumerate(points):
        if p.value is not None:
            path = sets.setdefault(p.params, [])
            path.append(f"{'L' if path else 'M'}{_n(x(i))} {_n(y(p.value))}")
    for params, path in sets.items():
        cls = "line other" if params else "line"
        data = f' data-params="{escape(params, quote=True)}"' if params else ""
        parts.append(f'<path class="{cls}"{data} d="{"".join(path)}"/>')
    for i, p in enumerate(points):
        if p.value is None:
            continue
        cx, cy = x(i), y(p.value)
        if p.regressed:
            parts.append(f'<circle class="regressed" cx="{_n(cx)}" cy="{_n(cy)}" r="7"/>')
        tip = f"{p.label}: {fmt(p.value)}" + (f" ({p.params})" if p.params else "")
        parts.append(_run_mark(cx, cy, p, tip))
    if not values:
        parts.append(_text(width / 2, height / 2, "no run has this figure", "empty"))
    parts.append("</svg>")
    return "".join(parts)
