"""What a headless run costs beyond its fault and its load: start-up, prepare and teardown.

    python benchmarks/run_overhead.py [--runs 5] [--modes warm,cold] [--code LABEL=DIR ...]
                                      [--output FILE]

The same short scenario (postgres_restart_outbox, 1 s warm-up, 1 s fault, 1 s recovery) runs
N times headless on the embedded sandbox; its overhead is the wall time of the process minus
(warm-up + hold + recovery). The run's own phase timestamps (the result JSON) split it:

- startup: process start to the `prepare` phase (interpreter, imports, settings, checks);
- prepare: `prepare` to `steady_state` (target versions, sandbox ensure_up, the fault agent,
  probes opened);
- steady_state: the first good samples before the load starts;
- fault: inject to heal done, beyond the hold (the kill and the restart of PostgreSQL);
- warmup / recover: beyond their sleeps (should be ~0);
- verify: checking the invariants; final_heal: the always-heal and closing the probes;
- teardown: the run's end to the process's exit (stop what it started, save, exit).

And first_line: process start to the first byte on its stderr, which is a terminal (a pty)
as a user's is, so the status line shown while the scenarios load counts (goal: 0.5 s).

Two modes, interleaved with each other and with a bare `python -c pass` (for scale):
"warm" has the sandbox up already (`sandbox up --profile chaos-outbox` in its own state dir,
which keeps the fault agent up with the services), so a run starts and stops nothing; "cold"
has it down, so each run starts the services and the agent and stops them at its end; "hot"
(not run by default) starts an agent after `sandbox up`: the same as warm since `sandbox up`
keeps the agent, and "warm" of code older than that. Medians are reported, with min and max: the
machine may be shared, so single timings are noisy. The code measured is this checkout's
(its root leads PYTHONPATH), or with `--code before=DIR --code after=DIR` two versions,
interleaved run by run: on a busy machine only such a side-by-side comparison is fair. Each
mode (and version) uses a state directory of its own, and everything started is stopped.

Figures: the overhead per mode and the first line per mode, each the median of its --runs
runs (goals: warm overhead <= 1.3 s, every mode's first line <= 0.5 s), and the bare start-up;
with several --code, those of the last one given carry the goals and the others are listed
with their label. The defaults are what run_all runs: 108 s on the 2-core machine (load 3-5).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from figures import RESULTS, document, emit, figure

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = "postgres_restart_outbox"
PROFILE = "chaos-outbox"
GOAL_WARM_S = 1.3  # the goal: no more than Chaos Toolkit's runner on the same fault
GOAL_FIRST_LINE_S = 0.5  # a new user sees something within half a second
PARTS = (
    "startup",
    "prepare",
    "steady_state",
    "warmup",
    "fault",
    "recover",
    "verify",
    "final_heal",
    "teardown",
    "first_line",
)


def cli() -> list[str]:
    exe = Path(sys.executable).with_name("chaos-tui")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "chaos_tui"]


def environment(state: Path, code: Path) -> dict[str, str]:
    """Every child runs in its state dir (cwd): `python -m` puts the working directory first
    on sys.path, where a checkout would shadow the code under test, and the agent a run
    spawns inherits it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAOS_")}
    env["CHAOS_STATE_DIR"] = str(state)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), env.get("PYTHONPATH")]))
    return env


def sandbox(command: str, env: dict[str, str]) -> None:
    extra = ["--profile", PROFILE] if command == "up" else []
    subprocess.run(
        [*cli(), "sandbox", command, *extra],
        env=env,
        cwd=env["CHAOS_STATE_DIR"],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )


def start_agent(env: dict[str, str]) -> None:
    """A fault agent left running in that state dir (`sandbox down` stops it)."""
    code = "import asyncio; from chaos_tui.agent.client import AgentClient; "
    code += "from chaos_tui.settings import load_settings; "
    code += "asyncio.run(AgentClient(load_settings()).ensure())"
    subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=env["CHAOS_STATE_DIR"],
        check=True,
        stdin=subprocess.DEVNULL,
    )


def bare_python() -> float:
    started = time.time()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.time() - started


def run_arguments(args, output: Path) -> list[str]:
    """The short headless run every measurement makes, its JSON result into `output`."""
    return [
        "--headless",
        "--scenario",
        SCENARIO,
        "--set",
        f"warmup_s={args.warmup:g}",
        "--set",
        f"{args.hold_name}={args.hold:g}",
        "--set",
        f"recover_s={args.recover:g}",
        "--output",
        str(output),
    ]


def one_run(env: dict[str, str], state: Path, args, keep: bool) -> dict:
    """One headless run; its overhead and the breakdown, in seconds."""
    output = state / "run.json"
    output.unlink(missing_ok=True)
    command = [*cli(), *run_arguments(args, output)]
    if keep:
        command.append("--keep-sandbox")
    master, slave = os.openpty()  # stderr a terminal, as a user's: the status line shows
    started = time.time()
    proc = subprocess.Popen(
        command,
        env=env,
        cwd=state,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    said = bytearray()
    first_byte: float | None = None
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the process closed its side
            break
        if not chunk:
            break
        if first_byte is None:
            first_byte = time.time()
        said += chunk
    code = proc.wait()
    ended = time.time()
    os.close(master)
    if code != 0 or not output.exists():
        raise RuntimeError(f"run failed (exit {code}):\n{said[-3000:].decode(errors='replace')}")
    result = json.loads(output.read_text())
    p = result["phases"]
    hold = args.hold
    wall = ended - started
    parts = {
        "startup": p["prepare"] - started,
        "prepare": p["steady_state"] - p["prepare"],
        "steady_state": p["warmup"] - p["steady_state"],
        "warmup": p["inject"] - p["warmup"] - args.warmup,
        "fault": p["recover"] - p["inject"] - hold,
        "recover": p["verify"] - p["recover"] - args.recover,
        "verify": p["heal"] - p["verify"],
        "final_heal": result["finished_at"] - p["heal"],
        "teardown": ended - result["finished_at"],
        "first_line": (first_byte or ended) - started,
    }
    return {
        "wall": wall,
        "overhead": wall - (args.warmup + hold + args.recover),
        "outcome": result["outcome"],
        **parts,
    }


def left_running(state: Path) -> list[str]:
    """Services or an agent still running from this state dir (there should be none)."""
    from chaos_tui.agent.client import AgentClient
    from chaos_tui.sandbox.stack import Sandbox
    from chaos_tui.settings import load_settings

    os.environ["CHAOS_STATE_DIR"] = str(state)
    settings = load_settings()
    sb = Sandbox(settings)
    running = [name for name, s in sb.status()["services"].items() if s["running"]]
    return running + (["agent"] if AgentClient(settings).info() is not None else [])


def stats(values: list[float]) -> dict:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "all": [round(v, 3) for v in values],
    }


def summarise(runs: list[dict], bare: float) -> dict:
    summary = {
        "runs": len(runs),
        "outcomes": sorted({r["outcome"] for r in runs}),
        "overhead_s": stats([r["overhead"] for r in runs]),
        "wall_s": stats([r["wall"] for r in runs]),
        "breakdown_median_s": {k: round(statistics.median(r[k] for r in runs), 3) for k in PARTS},
        "each_run_s": [
            {k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()} for r in runs
        ],
    }
    summary["ratio_to_bare_python"] = round(summary["overhead_s"]["median"] / bare, 1)
    return summary


def import_costs(env: dict[str, str], state: Path, args) -> dict:
    """`-X importtime` for `--help` and for one warm headless run: what the CLI loads."""
    found = {}
    for label, extra in (
        ("help", ["--help"]),
        (
            "headless_run",
            [*run_arguments(args, state / "importtime.json"), "--keep-sandbox"],
        ),
    ):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "chaos_tui", *extra],
            check=False,
            env=env,
            cwd=state,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        rows = []
        for line in proc.stderr.splitlines():
            fields = line[len("import time:") :].split("|")
            if line.startswith("import time:") and len(fields) == 3 and fields[1].strip().isdigit():
                rows.append((fields[2].rstrip(), int(fields[1])))
        top = [(n.strip(), us) for n, us in rows if not n.startswith("  ")]
        modules = {n.strip() for n, _ in rows}
        found[label] = {
            "modules": len(modules),
            "top_level_ms": round(sum(us for _, us in top) / 1000, 1),
            "heaviest_top_level_ms": {
                n: round(us / 1000, 1) for n, us in sorted(top, key=lambda r: -r[1])[:8]
            },
            "loads": {
                m: m in modules
                for m in ("textual", "fastapi", "uvicorn", "psycopg", "nats", "google.protobuf")
            },
        }
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per mode (default 5)")
    parser.add_argument(
        "--modes", default="warm,cold", help="any of warm, cold, hot (default warm,cold)"
    )
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--hold", type=float, default=1.0, help="how long the fault is held")
    parser.add_argument(
        "--hold-name",
        default="hold_s",
        help="the scenario's parameter for the hold (default hold_s; older code: down_s)",
    )
    parser.add_argument("--recover", type=float, default=1.0)
    parser.add_argument("--no-imports", action="store_true", help="skip the -X importtime pass")
    parser.add_argument("--label", default="", help="a note stored with the result")
    parser.add_argument("--output", type=Path, default=RESULTS / "run_overhead.json")
    parser.add_argument(
        "--code",
        action="append",
        metavar="LABEL=DIR",
        help="measure the chaos_tui under DIR (repeatable: the versions are interleaved, "
        "which is the fair way to compare them on a busy machine); default: this checkout",
    )
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if not modes or set(modes) - {"warm", "cold", "hot"}:
        parser.error("--modes takes warm, cold and/or hot, comma-separated")
    codes: dict[str, Path] = {}
    for item in args.code or [f"this={ROOT}"]:
        label, sep, folder = item.partition("=")
        if not sep or not (Path(folder) / "chaos_tui").is_dir():
            parser.error(f"--code {item}: give LABEL=DIR, DIR holding a chaos_tui package")
        codes[label] = Path(folder).resolve()
    cases = [(c, m) for c in codes for m in modes]

    states = {
        case: Path(tempfile.mkdtemp(prefix=f"chaos-overhead-{case[0]}-{case[1]}-", dir="/tmp"))
        for case in cases
    }
    envs = {case: environment(states[case], codes[case[0]]) for case in cases}
    runs: dict[tuple[str, str], list[dict]] = {case: [] for case in cases}
    bare: list[float] = []
    leftovers: list[str] = []
    load_start = [round(x, 2) for x in os.getloadavg()]
    report: dict = {
        "scenario": SCENARIO,
        "label": args.label,
        "commit": subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            check=False,
            capture_output=True,
            text=True,
        ).stdout.strip(),
        "code": {label: str(folder) for label, folder in codes.items()},
        "nominal_s": {"warmup": args.warmup, "hold": args.hold, "recover": args.recover},
    }
    try:
        for case in cases:
            # Either way the data exists before the first timed run (no initdb in a timing);
            # warm leaves the services up, cold takes them down again.
            sandbox("up", envs[case])
            if case[1] == "cold":
                sandbox("down", envs[case])
            if case[1] == "hot":
                start_agent(envs[case])
        for case in cases:  # the first run of each warms the caches: not counted
            one_run(envs[case], states[case], args, case[1] != "cold")
        order: list = ["bare", *cases]
        for i in range(args.runs):
            shift = i % len(order)
            for case in order[shift:] + order[:shift]:  # rotate the order
                if case == "bare":
                    bare.append(bare_python())
                    continue
                runs[case].append(one_run(envs[case], states[case], args, case[1] != "cold"))
                if case[1] == "cold":
                    leftovers.extend(f"{case[0]}: {x}" for x in left_running(states[case]))
        if not args.no_imports:
            report["imports"] = {
                label: import_costs(envs[(label, modes[0])], states[(label, modes[0])], args)
                for label in codes
            }
    finally:
        for case in cases:
            subprocess.run(
                [*cli(), "sandbox", "down"],
                check=False,
                env=envs[case],
                cwd=states[case],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
            from chaos_tui.sandbox import postgres

            postgres.remove_home(states[case] / "pg")  # as root, its data lives outside the dir
            shutil.rmtree(states[case], ignore_errors=True)
    bare_median = statistics.median(bare)
    report["bare_python_startup_s"] = stats(bare)
    primary = list(codes)[-1]  # the last code given is the one reported at the top
    for m in modes:
        report[m] = summarise(runs[(primary, m)], bare_median)
    if len(codes) > 1:
        report["by_code"] = {
            label: {m: summarise(runs[(label, m)], bare_median) for m in modes} for label in codes
        }
    report["left_running_after_cold_runs"] = leftovers
    report["load_avg"] = {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]}
    # (figure, what each run measured, its goal on the primary code, note)
    measured = [
        ("overhead", "overhead", {"warm": GOAL_WARM_S}, "wall - (warm-up + hold + recovery)"),
        (
            "first line",
            "first_line",
            dict.fromkeys(modes, GOAL_FIRST_LINE_S),
            "process start to the first byte on its stderr (a pty)",
        ),
    ]
    figures = []
    for label in reversed(codes):  # the primary's first: it carries the goals
        tag = "" if label == primary else f" [{label}]"
        for title, key, goals, note in measured:
            figures += [
                figure(
                    f"{m} {title}{tag}",
                    [r[key] for r in runs[(label, m)]],
                    "s",
                    goal=goals.get(m) if label == primary else None,
                    note=note,
                )
                for m in modes
            ]
    figures.append(figure("bare python -c pass", bare, "s", note="for scale"))
    emit(document("run_overhead", figures, **report), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
