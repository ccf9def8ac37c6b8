"""What the console costs beyond the run it shows: CPU against headless, start-up, memory.

    python benchmarks/tui_cost.py [--rounds 3] [--run-seconds 45] [--rate 10]
                                  [--startup-tries 5] [--code LABEL=DIR ...] [--output FILE]

The scenario (console_pty.py) samples eight probes at the probe rate (default 10 Hz) through
a warm-up, 50 ms of latency on a proxy, and a recovery, a third of --run-seconds each. Each
round runs it once in the console, in a real pseudo-terminal (130x42) that a thread reads as
a user's terminal would, and once headless, one after the other, so a burst of load from
elsewhere hits both. A run is measured from the moment it starts (the typed name's Enter, or
headless's `prepare` line) to its result being saved.

Figures (median over the rounds):
- cpu_ratio_console_to_headless: the console's CPU seconds over headless's in the same round;
  goal at most 1.5. The ratio travels between machines; an absolute share does not.
- console_cpu_share, headless_cpu_share: CPU seconds per second of the run (1.0 = one core).
- warm_startup_s: from exec of `chaos-tui` (no arguments, a state directory already used
  once) to the picker being drawn: the bytes of the first scenario's name on the terminal.
  Goal under 0.5 s. The first start of the benchmark warms the caches and is not counted.
- import_app_cpu_s: CPU seconds of `import chaos_tui.app` in a fresh interpreter, less a bare
  one's: steadier than wall time on a busy machine.
- console_overhead_cores: the console's CPU share less headless's, same round.
- console_peak_rss_mb: the console's peak resident memory over its run.

`--code before=/path/to/old/checkout --code after=.` measures two versions, interleaved run
by run (each round: before's console, before's headless, after's console, after's headless):
on a busy machine only such a side-by-side comparison is fair. Each version's figures carry
its label. The code measured is each DIR's (its root leads PYTHONPATH). Everything runs in a
temporary state directory, and everything started is stopped.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from console_pty import (
    ROOT,
    SCENARIO,
    Server,
    Terminal,
    chaos_tui,
    code_env,
    cpu_seconds,
    peak_rss_mb,
    results,
    run_args,
    start_console_run,
    write_scenario,
)
from figures import document, emit, figure

GOAL_RATIO = 1.5
GOAL_STARTUP_S = 0.5
PICKER_SHOWS = b"postgres_restart_outbox"  # the first scenario the picker lists


def measure_startup(code: Path, state: Path, rate: float) -> float:
    started = time.monotonic()
    term = Terminal(chaos_tui(), code_env(code, state, rate), state)
    try:
        term.wait_for(PICKER_SHOWS, 30)
        return time.monotonic() - started
    finally:
        term.type("q", pause=0)
        term.close()


def measure_import(code: Path, state: Path, rate: float) -> float:
    """CPU seconds (user + system) of `import chaos_tui.app`, less a bare interpreter's: on
    a busy machine CPU time holds still where wall time does not."""
    env = code_env(code, state, rate)

    def cpu(statement: str) -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", statement], env=env, cwd=state, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    bare = cpu("pass")
    return max(0.0, cpu("import chaos_tui.app") - bare)


def wait_for_result(state: Path, before: set[Path], limit_s: float) -> None:
    started = time.monotonic()
    while results(state) == before:
        if time.monotonic() - started > limit_s:
            raise TimeoutError("the run did not finish")
        time.sleep(0.05)


def measure_console(
    code: Path, state: Path, scenario_file: Path, port: int, rate: float, limit_s: float
) -> dict:
    before = results(state)
    term = start_console_run(code, state, scenario_file, port, rate)
    cpu0, t0, drawn0 = cpu_seconds(term.pid), time.monotonic(), term.total
    try:
        wait_for_result(state, before, limit_s)
        cpu1, t1, drawn = cpu_seconds(term.pid), time.monotonic(), term.total - drawn0
        rss = peak_rss_mb(term.pid)
    finally:
        term.type("q", pause=0)
        term.close()
    return {
        "run_s": round(t1 - t0, 2),
        "cpu_s": round(cpu1 - cpu0, 3),
        "cpu_share": (cpu1 - cpu0) / (t1 - t0),
        "peak_rss_mb": round(rss, 1),
        "terminal_bytes_per_s": round(drawn / (t1 - t0)),
        "outcome": outcome(state, before),
    }


def measure_headless(
    code: Path, state: Path, scenario_file: Path, port: int, rate: float, limit_s: float
) -> dict:
    before = results(state)
    proc = subprocess.Popen(
        [*chaos_tui(), "--headless", *run_args(scenario_file, port)],
        env=code_env(code, state, rate),
        cwd=state,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    cpu0 = t0 = None
    started = time.monotonic()
    for line in proc.stderr:  # the run begins with its "prepare" line
        if cpu0 is None and " prepare" in line:
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        if "result saved" in line or time.monotonic() - started > limit_s:
            break
    if cpu0 is None or t0 is None:
        raise RuntimeError("the headless run never reached prepare")
    cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
    rss = peak_rss_mb(proc.pid)
    proc.stderr.read()
    proc.wait(60)
    return {
        "run_s": round(t1 - t0, 2),
        "cpu_s": round(cpu1 - cpu0, 3),
        "cpu_share": (cpu1 - cpu0) / (t1 - t0),
        "peak_rss_mb": round(rss, 1),
        "outcome": outcome(state, before),
    }


def outcome(state: Path, before: set[Path]) -> str:
    new = results(state) - before
    if not new:
        return "no result"
    return json.loads(max(new, key=lambda p: p.stat().st_mtime).read_text())["outcome"]


def parse_code(items: list[str]) -> dict[str, Path]:
    if not items:
        return {"": ROOT}
    codes = {}
    for item in items:
        label, _, where = item.partition("=")
        if not where:
            raise SystemExit(f"tui_cost: --code takes LABEL=DIR, not {item!r}")
        codes[label] = Path(where).resolve()
    return codes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--run-seconds", type=float, default=45.0, help="warm-up + fault + recovery, in thirds"
    )
    parser.add_argument("--rate", type=float, default=10.0, help="probe rate in Hz")
    parser.add_argument("--startup-tries", type=int, default=5)
    parser.add_argument(
        "--code", action="append", default=[], help="LABEL=DIR: a version to measure"
    )
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    codes = parse_code(args.code)

    state = Path(tempfile.mkdtemp(prefix="chaos-tui-cost-", dir="/tmp"))  # 0700
    third = args.run_seconds / 3
    scenario_file = write_scenario(state, third, third, third)
    limit_s = args.run_seconds + 120
    server = Server()
    runs: dict[str, dict[str, list[dict]]] = {c: {"console": [], "headless": []} for c in codes}
    startup: dict[str, list[float]] = {c: [] for c in codes}
    imports: dict[str, list[float]] = {c: [] for c in codes}
    try:
        for code in codes.values():  # warms the caches (and each version's bytecode)
            measure_startup(code, state, args.rate)
        for _ in range(args.startup_tries):
            for label, code in codes.items():
                startup[label].append(measure_startup(code, state, args.rate))
                imports[label].append(measure_import(code, state, args.rate))
        for n in range(args.rounds):
            for label, code in codes.items():
                for kind, measure in (("console", measure_console), ("headless", measure_headless)):
                    got = measure(code, state, scenario_file, server.port, args.rate, limit_s)
                    runs[label][kind].append(got)
                    print(
                        f"tui_cost: round {n + 1} {label or 'this'} {kind}: "
                        f"{got['cpu_share']:.3f} of a core, {got['outcome']}",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        server.stop()
        shutil.rmtree(state, ignore_errors=True)

    figures = []
    for label in codes:
        suffix = f" [{label}]" if label else ""
        console, headless = runs[label]["console"], runs[label]["headless"]
        ratios = [c["cpu_s"] / h["cpu_s"] for c, h in zip(console, headless, strict=True)]
        figures += [
            figure(
                "console warm start-up (exec to picker drawn)" + suffix,
                startup[label],
                "s",
                GOAL_STARTUP_S,
                note="exec of chaos-tui to the picker drawn (its first scenario's name)",
            ),
            figure(
                "CPU to import chaos_tui.app" + suffix,
                imports[label],
                "s",
                note="CPU seconds of import chaos_tui.app, less a bare python's",
            ),
        ]
        if not console:  # --rounds 0: start-up only
            continue
        figures += [
            figure(
                "console CPU / headless CPU, same run" + suffix,
                ratios,
                "x",
                GOAL_RATIO,
                note=f"{SCENARIO}: 8 probes at {args.rate:g} Hz, {args.run_seconds:g} s runs; "
                "console CPU seconds / headless CPU seconds, same round",
            ),
            figure("console CPU" + suffix, [c["cpu_share"] for c in console], "cores"),
            figure("headless CPU" + suffix, [h["cpu_share"] for h in headless], "cores"),
            figure(
                "console CPU beyond headless" + suffix,
                [c["cpu_share"] - h["cpu_share"] for c, h in zip(console, headless, strict=True)],
                "cores",
                note="console CPU share less headless's, same round",
            ),
            figure("console peak RSS" + suffix, [c["peak_rss_mb"] for c in console], "MB"),
        ]
    doc = document(
        "tui_cost",
        figures,
        scenario=SCENARIO,
        probes=8,
        probe_rate_hz=args.rate,
        run_seconds=args.run_seconds,
        terminal="130x42",
        code={label or "this": str(path) for label, path in codes.items()},
        runs={label or "this": got for label, got in runs.items()},
    )
    emit(doc, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
