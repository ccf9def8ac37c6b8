"""A one-line recovery sparkline in which the injection windows stand out.

Each column is a slice of time. Columns inside a fault window get a dark red band behind
them, orange bars and an underline, so the fault and the recovery after it read at a glance,
in colour or without (the underline is for a colour-blind eye or a monochrome terminal); a
column with a failed sample is a red cross, whatever its band.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from chaos_tui.core.model import InjectionWindow, ProbeSample

BARS = "▁▂▃▄▅▆▇█"
FAILED = "✕"
WINDOW_BAND = "underline on #5f0000"
WINDOW_BARS = "orange1"  # bars inside a window change colour too: a full bar hides its band


def sample_metric(sample: ProbeSample, use_value: bool) -> float | None:
    return sample.value if use_value else sample.latency_ms


def render_sparkline(
    samples: Sequence[ProbeSample],
    windows: Sequence[InjectionWindow],
    *,
    width: int,
    end: float,
    span_s: float,
    use_value: bool,
    colour: str = "green",
) -> Text:
    """Samples over [end - span_s, end], one column per span_s / width seconds."""
    width = max(1, width)
    start = end - span_s
    step = span_s / width
    highest: list[float | None] = [None] * width
    failed = [False] * width
    seen = [False] * width
    for s in samples:
        if s.t < start or s.t > end:
            continue
        col = min(width - 1, int((s.t - start) / step))
        seen[col] = True
        if not s.ok:
            failed[col] = True
            continue
        metric = sample_metric(s, use_value)
        current = highest[col]
        if metric is not None and (current is None or metric > current):
            highest[col] = metric
    known = [v for v in highest if v is not None]
    low, high = (min(known), max(known)) if known else (0.0, 0.0)
    spread = high - low
    line = Text(no_wrap=True, overflow="crop")
    for col in range(width):
        col_start = start + col * step
        band = (
            WINDOW_BAND
            if any(_overlaps(w, col_start, col_start + step, end) for w in windows)
            else ""
        )
        if failed[col]:
            line.append(FAILED, style=f"bold red {band}".strip())
        elif (value := highest[col]) is not None:
            level = 0 if spread <= 0 else round((value - low) / spread * (len(BARS) - 1))
            line.append(BARS[level], style=f"{WINDOW_BARS} {band}" if band else colour)
        else:
            line.append("·" if seen[col] else " ", style=f"dim {band}".strip())
    return line


def _overlaps(window: InjectionWindow, col_start: float, col_end: float, end: float) -> bool:
    """True when the window covers part of [col_start, col_end); an unhealed window runs up
    to `end`. A column that only touches the window's edge is not part of it."""
    close = window.healed_at if window.healed_at is not None else end
    return col_start < close and col_end > window.injected_at
