"""Run every benchmark and write one summary: figure, median, spread, goal, meets.

    python benchmarks/run_all.py [--only NAME,...] [--skip NAME,...] [--output FILE]

Each benchmark runs as a process of its own (its own temporary state directory, everything it
starts stopped at its end) and writes its JSON to benchmarks/results/NAME.json; the summary
(default benchmarks/results/summary.json) gathers their "figures". A benchmark left out with
--skip or --only still shows in the summary with the figures of its last saved result, marked
as such, so the table is always whole. The soaks take 20 and 10 minutes: `--skip
soak,suite_soak` for a quick pass. Benchmarks run with Python's bytecode cache written
(PYTHONDONTWRITEBYTECODE is dropped from their environment): a real install has its .pyc files,
and without them every process the benchmarks start compiles the package again, 0.2 s or more
of start-up.
Exit 0 when every figure with a goal meets it, 1 when one does not, 2 when a benchmark failed
to run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from figures import RESULTS, document, table

HERE = Path(__file__).resolve().parent

# name: (script, extra arguments for the summary run). In the order they run: the short ones
# first, so a broken set-up shows early.
BENCHMARKS: dict[str, tuple[str, list[str]]] = {
    "sandbox_start": ("sandbox_start.py", []),
    "proxy": ("proxy_bench.py", []),
    "connection_scale": ("connection_scale.py", []),
    "lease_scale": ("lease_scale.py", []),
    "probe_scale": ("probe_scale.py", []),
    "tui_cost": ("tui_cost.py", []),
    "soak": ("soak.py", []),
    "suite_soak": ("suite_soak.py", []),
    "run_overhead": ("run_overhead.py", []),
    "queue": ("queue_bench.py", []),
    "results": ("results_bench.py", []),
    "docker_faults": ("docker_faults_bench.py", []),
}


def names(text: str | None) -> list[str]:
    if not text:
        return []
    chosen = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(
            f"run_all: unknown benchmark {', '.join(unknown)} (known: {', '.join(BENCHMARKS)})"
        )
    return chosen


def saved(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def run_one(name: str) -> tuple[dict[str, Any] | None, str]:
    script, extra = BENCHMARKS[name]
    output = RESULTS / f"{name}.json"
    started = time.monotonic()
    print(f"run_all: {name} ...", file=sys.stderr, flush=True)
    done = subprocess.run(
        [sys.executable, str(HERE / script), "--output", str(output), *extra],
        stdout=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    )
    took = time.monotonic() - started
    if done.returncode != 0:
        return None, f"{name} failed (exit {done.returncode}) after {took:.0f} s"
    print(f"run_all: {name} done in {took:.0f} s", file=sys.stderr, flush=True)
    return saved(name), ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run only these (comma-separated); the rest from saved")
    parser.add_argument("--skip", help="do not run these (comma-separated); shown from saved")
    parser.add_argument("--output", type=Path, default=RESULTS / "summary.json")
    args = parser.parse_args()
    only, skip = names(args.only), names(args.skip)
    figures: list[dict[str, Any]] = []
    failures: list[str] = []
    sources: dict[str, str] = {}
    for name in BENCHMARKS:
        if (only and name not in only) or name in skip:
            result, sources[name] = saved(name), "saved"
            if result is None:
                sources[name] = "missing: never run"
                continue
        else:
            result, failure = run_one(name)
            if result is None:
                failures.append(failure)
                sources[name] = failure
                continue
            sources[name] = "run now"
        for item in result.get("figures", []):
            mark = "" if sources[name] == "run now" else f" (saved {result.get('at', '?')})"
            figures.append({**item, "benchmark": name, "figure": item["figure"] + mark})
    summary = document("run_all", figures, sources=sources, failures=failures)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2) + "\n")
    print(table(figures))
    for failure in failures:
        print(f"run_all: {failure}", file=sys.stderr)
    if failures:
        return 2
    return 0 if all(f["meets"] is not False for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
