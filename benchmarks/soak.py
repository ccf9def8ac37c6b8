"""The console over a long run: does its memory grow, does its CPU creep up, does anything queue?

    python benchmarks/soak.py [--minutes 20] [--rate 10] [--every 10] [--output FILE]

The scenario of tui_cost.py (eight probes at --rate Hz against a local server; console_pty.py)
with long phases: 45 % warm-up, 10 % of 50 ms latency on a proxy, 45 % recovery, --minutes in
all. The console runs it in a real pseudo-terminal (130x42), as a user would. Every --every
seconds the console process's resident memory and CPU seconds are read from /proc, and the
console itself appends its queue and buffer sizes to a file (CHAOS_CONSOLE_STATS, see
`ChaosApp.stats`): messages waiting on the app and on the screen, workers, the samples the run
holds for its result and those the screen holds, the log's and the event list's lines.

Figures (one run each: a soak is long; its samples are the readings over time):
- rss_growth_mb_per_hour: the slope of a least-squares line through RSS after the first two
  minutes (start-up, imports on first use and the first chart are not growth), times an
  hour. Goal under 10 MB. The note gives the slope over each half of those readings apart:
  growth that levels off makes the first steeper.
- cpu_flatness: the CPU share in the last quarter of the run over that in the second quarter;
  goal at most 1.2 (a console whose work grows with the run's length creeps up).
- message_backlog_max: the most messages waiting (app + screen) at any reading; goal at most
  100 (about a second of events at 10 Hz with 8 probes): the console keeps up.
- console_cpu_share, console_peak_rss_mb, and in the details every reading and the buffer
  sizes at the end, with their caps.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from console_pty import (
    ROOT,
    Server,
    cpu_seconds,
    peak_rss_mb,
    results,
    rss_mb,
    start_console_run,
    status_mb,
    write_scenario,
)
from figures import document, emit, figure

GOAL_GROWTH_MB_PER_HOUR = 10.0
GOAL_FLATNESS = 1.2
GOAL_BACKLOG = 100
SETTLE_S = 120.0  # readings before this are start-up, not growth


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value), per hour."""
    n = len(points)
    if n < 2:
        return float("nan")
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    return 3600 * sxy / sxx if sxx else float("nan")


def share_between(readings: list[dict], start: float, end: float) -> float:
    """CPU seconds per second between two moments (the readings nearest inside them)."""
    inside = [r for r in readings if start <= r["t"] <= end]
    if len(inside) < 2:
        return float("nan")
    first, last = inside[0], inside[-1]
    return (last["cpu_s"] - first["cpu_s"]) / (last["t"] - first["t"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="the run's length")
    parser.add_argument("--rate", type=float, default=10.0, help="probe rate in Hz")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between readings")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args()

    total_s = args.minutes * 60
    state = Path(tempfile.mkdtemp(prefix="chaos-tui-soak-", dir="/tmp"))  # 0700
    scenario_file = write_scenario(state, 0.45 * total_s, 0.10 * total_s, 0.45 * total_s)
    stats_file = state / "console-stats.jsonl"
    server = Server()
    readings: list[dict] = []
    try:
        before = results(state)
        term = start_console_run(
            ROOT, state, scenario_file, server.port, args.rate, {"CHAOS_CONSOLE_STATS": stats_file}
        )
        t0, cpu0 = time.monotonic(), cpu_seconds(term.pid)
        next_at = t0
        try:
            while results(state) == before:
                now = time.monotonic()
                if now >= next_at:
                    readings.append(
                        {
                            "t": round(now - t0, 2),
                            "rss_mb": round(rss_mb(term.pid), 2),
                            # Anonymous memory (the heap, Python's arenas) apart from pages
                            # of files mapped in (code first run late): only the first leaks.
                            "rss_anon_mb": round(status_mb(term.pid, "RssAnon"), 2),
                            "rss_file_mb": round(status_mb(term.pid, "RssFile"), 2),
                            "cpu_s": round(cpu_seconds(term.pid) - cpu0, 2),
                            "terminal_bytes": term.total,
                        }
                    )
                    next_at += args.every
                if now - t0 > total_s + 600:
                    raise TimeoutError("the run did not finish")
                time.sleep(0.2)
            run_s = time.monotonic() - t0
            cpu_total = cpu_seconds(term.pid) - cpu0
            peak = peak_rss_mb(term.pid)
        finally:
            term.type("q", pause=0)
            term.close()
        stats = [json.loads(line) for line in stats_file.read_text().splitlines() if line]
    finally:
        server.stop()
        shutil.rmtree(state, ignore_errors=True)

    settled = [(r["t"], r["rss_mb"]) for r in readings if r["t"] >= SETTLE_S]
    # Growth that levels off (caches filling, the screen's five minutes of samples, one-off
    # resizes) shows as a steeper first half; what goes on growing shows in the second.
    halfway = (SETTLE_S + run_s) / 2
    halves = [slope_per_hour([p for p in settled if (p[0] < halfway) == first]) for first in (1, 0)]
    quarter = run_s / 4
    second_q = share_between(readings, quarter, 2 * quarter)
    last_q = share_between(readings, 3 * quarter, run_s)
    backlog = [s["app_queue"] + s["screen_queue"] for s in stats]
    last = stats[-1] if stats else {}
    figures = [
        figure(
            "soak: console RSS growth per hour",
            [slope_per_hour(settled)],
            "MB/h",
            GOAL_GROWTH_MB_PER_HOUR,
            note=f"least squares over {len(settled)} readings after the first "
            f"{SETTLE_S:g} s of a {run_s / 60:.1f} min run, 8 probes at {args.rate:g} Hz; "
            f"{halves[0]:.1f} MB/h over its first half, {halves[1]:.1f} over its second",
        ),
        figure(
            "soak: CPU last quarter / second quarter",
            [last_q / second_q],
            "x",
            GOAL_FLATNESS,
            note=f"CPU share last quarter {last_q:.3f} / second quarter {second_q:.3f}",
        ),
        figure(
            "soak: largest message backlog",
            [max(backlog, default=0)],
            "messages",
            GOAL_BACKLOG,
            note=f"app + screen queues, {len(backlog)} readings",
        ),
        figure("soak: console CPU", [cpu_total / run_s], "cores"),
        figure("soak: console peak RSS", [peak], "MB"),
    ]
    doc = document(
        "soak",
        figures,
        minutes=args.minutes,
        probe_rate_hz=args.rate,
        run_s=round(run_s, 1),
        buffers_at_end=last,
        rss_growth_mb_per_hour_halves=[round(h, 2) for h in halves],
        readings=readings,
        console_stats=stats,
    )
    emit(doc, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
