"""A soak suite headless: does the tool's memory stay flat while a scenario repeats for ten
minutes?

    python benchmarks/suite_soak.py [--minutes 10] [--scenario opa_restart] [--every 5]
                                    [--output FILE]

A suite file (`for: --minutes`, a 1 s pause between runs) repeats one scenario with short
windows (1 s of warm-up, 2 s held, 2 s of recovery) on the embedded sandbox, 8 probes at the
default 10 Hz. Every --every seconds the chaos-tui process's resident memory (and its
anonymous part) is read from /proc; the sandbox's services are other processes and are not
counted.

Figures (one soak: its samples are the readings over time):
- rss growth over the soak: the least-squares line through RSS after the first run and the
  first two minutes (imports on first use, the first result saved), its rise from then to
  the end. Goal under 10 MB (issue 19: "a soak of 10 minutes keeps RSS growth under 10 MB").
- the same slope per hour, for comparison with the console soak (benchmarks/soak.py).
- runs done, and how many passed (a soak whose runs fail measures something else).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from console_pty import ROOT, chaos_tui, rss_mb, status_mb
from figures import document, emit, figure
from soak import slope_per_hour

GOAL_GROWTH_MB = 10.0
SETTLE_S = 120.0


def suite_text(scenario: str, minutes: float) -> str:
    return (
        f"name: soak-{scenario}\n"
        f"for: {minutes * 60:g}s\n"
        "pause: 1s\n"
        "runs:\n"
        f"  - scenario: {scenario}\n"
        "    set: {warmup_s: 1, hold_s: 2, recover_s: 2}\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="the soak's length")
    parser.add_argument("--scenario", default="opa_restart", help="the scenario repeated")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between readings")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="chaos-tui-suite-soak-", dir="/tmp"))  # 0700
    suite = state / "soak.yaml"
    suite.write_text(suite_text(args.scenario, args.minutes))
    out = state / "suite.json"
    env = {"CHAOS_STATE_DIR": str(state), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    readings: list[dict] = []
    try:
        with open(state / "stderr.log", "w") as log:
            proc = subprocess.Popen(
                [*chaos_tui(), "--headless", "--suite", str(suite), "--output", str(out)],
                env=env,
                cwd=state,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
            t0 = time.monotonic()
            try:
                while proc.poll() is None:
                    now = time.monotonic() - t0
                    try:
                        readings.append(
                            {
                                "t": round(now, 1),
                                "rss_mb": round(rss_mb(proc.pid), 2),
                                "rss_anon_mb": round(status_mb(proc.pid, "RssAnon"), 2),
                            }
                        )
                    except (OSError, ValueError):
                        break  # it ended between poll() and the read
                    if now > args.minutes * 60 + 600:
                        raise TimeoutError("the soak did not end")
                    time.sleep(args.every)
            finally:
                if proc.poll() is None:
                    proc.terminate()  # ours, by its pid: it heals, then exits
                    proc.wait(timeout=120)
        run_s = time.monotonic() - t0
        if proc.returncode != 0:
            tail = (state / "stderr.log").read_text()[-2000:]
            raise SystemExit(f"suite_soak: the suite exited {proc.returncode}:\n{tail}")
        report = json.loads(out.read_text())
    finally:
        subprocess.run(
            [*chaos_tui(), "sandbox", "down"], env=env, cwd=state, capture_output=True, timeout=120
        )
        shutil.rmtree(state, ignore_errors=True)

    settled = [(r["t"], r["rss_mb"]) for r in readings if r["t"] >= SETTLE_S]
    per_hour = slope_per_hour(settled)
    span_h = (settled[-1][0] - settled[0][0]) / 3600 if len(settled) > 1 else float("nan")
    runs = report["runs"]
    passed = sum(r["outcome"] == "pass" for r in runs)
    figures = [
        figure(
            "suite soak: RSS growth over the soak",
            [per_hour * span_h],
            "MB",
            GOAL_GROWTH_MB,
            note=f"least squares over {len(settled)} readings after the first {SETTLE_S:g} s "
            f"of a {run_s / 60:.1f} min soak, {len(runs)} runs of {args.scenario}",
        ),
        figure("suite soak: RSS growth per hour", [per_hour], "MB/h"),
        figure("suite soak: runs passed", [passed], "runs", len(runs), better="higher"),
        figure("suite soak: peak RSS", [max(r["rss_mb"] for r in readings)], "MB"),
    ]
    trends = [
        {k: d[k] for k in ("name", "values", "slope_per_run", "worsening")} for d in report["drift"]
    ]
    doc = document(
        "suite_soak",
        figures,
        minutes=args.minutes,
        scenario=args.scenario,
        run_s=round(run_s, 1),
        runs=len(runs),
        trends=trends,
        readings=readings,
    )
    emit(doc, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
