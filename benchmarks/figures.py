"""What every benchmark shares: repeated, interleaved measurement and one figure format.

A single run on a noisy 2-core machine cannot tell a regression from noise, so a benchmark
measures each figure several times, interleaves the cases it compares (direct, proxied,
direct, proxied...) so that a burst of load from elsewhere hits both, and reports the
median with its spread. A figure "meets" its goal only when its median does.

A benchmark's JSON document has a "figures" list of `figure(...)` entries; `run_all.py`
reads only that list, whatever else the document holds.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, Literal

Better = Literal["lower", "higher"]
RESULTS = Path(__file__).resolve().parent / "results"
# Read when a benchmark imports this module, i.e. before it measures anything: the load at
# the end says little about the load the figures were taken under.
LOAD_AT_START = os.getloadavg()[0]


def figure(
    name: str,
    samples: Iterable[float],
    unit: str,
    goal: float | None = None,
    better: Better = "lower",
    note: str = "",
) -> dict[str, Any]:
    """One measured figure: median, spread (min, max, relative), the goal and whether the
    median meets it. `better` says which side of the goal passes. The samples are kept in
    the order given (the order they were taken in, for a benchmark that interleaves)."""
    taken = [float(v) for v in samples]
    values = sorted(taken)
    if not values:
        raise ValueError(f"figure {name!r} has no samples")
    median = statistics.median(values)
    meets = None
    if goal is not None:
        meets = median <= goal if better == "lower" else median >= goal
    return {
        "figure": name,
        "unit": unit,
        "median": round(median, 4),
        "min": round(values[0], 4),
        "max": round(values[-1], 4),
        "spread_pct": round(100 * (values[-1] - values[0]) / abs(median), 1) if median else None,
        "runs": len(values),
        "goal": goal,
        "better": better,
        "meets": meets,
        "note": note,
        "samples": [round(v, 4) for v in taken],
    }


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def interleaved(cases: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Each case once per round, in turn, `rounds` times: samples per case."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, measure in cases.items():
            samples[name].append(measure())
    return samples


async def interleaved_async(
    cases: dict[str, Callable[[], Awaitable[float]]], rounds: int
) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, measure in cases.items():
            samples[name].append(await measure())
    return samples


def machine() -> dict[str, Any]:
    """Where the figures came from: they only travel together with this."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "load_1m_at_start": round(LOAD_AT_START, 2),
        "load_1m_at_end": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def document(benchmark: str, figures: list[dict[str, Any]], **details: Any) -> dict[str, Any]:
    return {
        "benchmark": benchmark,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "figures": figures,
        **details,
    }


def emit(doc: dict[str, Any], output: Path | None) -> None:
    """The JSON on stdout, and in `output` when given."""
    text = json.dumps(doc, indent=2)
    print(text)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n")


def number(value: float) -> str:
    """Three significant digits, never an exponent: 1.99, 32.5, 0.691, 1610."""
    if value == 0 or abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def cells(f: dict[str, Any], markdown: bool = False) -> tuple[str, str, str, str, str]:
    """One figure's row: figure, median, spread, goal, meets (in words a table shows)."""
    goal = ""
    if f.get("goal") is not None:
        lower, higher = ("≤", "≥") if markdown else ("<=", ">=")
        side = lower if f.get("better") == "lower" else higher
        goal = f"{side} {number(f['goal'])} {f['unit']}"
    meets = {True: "yes", False: "**no**" if markdown else "NO", None: "" if markdown else "-"}
    spread = f"{number(f['min'])}..{number(f['max'])}" if f.get("runs", 1) > 1 else "1 run"
    median = f"{number(f['median'])} {f['unit']}"
    return f["figure"], median, spread, goal, meets[f.get("meets")]


def table(figures: list[dict[str, Any]]) -> str:
    """Figure, median, spread, goal, meets: one line each, for a terminal."""
    rows = [("figure", "median", "spread", "goal", "meets")] + [cells(f) for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(figures: list[dict[str, Any]]) -> str:
    """The same table in Markdown (the README's Performance section is made with it)."""
    lines = ["| figure | median | spread | goal | meets |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(cells(f, markdown=True)) + " |" for f in figures]
    return "\n".join(lines)


# A saved result as a table: python benchmarks/figures.py [--markdown] FILE...
if __name__ == "__main__":
    as_markdown = "--markdown" in sys.argv[1:]
    for path in (a for a in sys.argv[1:] if a != "--markdown"):
        shown = json.loads(Path(path).read_text())["figures"]
        print(markdown(shown) if as_markdown else table(shown))
