"""How long a warm `chaos-tui sandbox up --profile P` takes, for each profile.

    python benchmarks/sandbox_start.py [--profiles chaos-outbox,...] [--rounds 5]
                                       [--output FILE]

"Warm", precisely: each profile has a state directory of its own (under /tmp, made by this
benchmark) in which `sandbox up --profile P` has already run once and been followed by
`sandbox down`, untimed. So everything a first start makes is in place and kept: the
PostgreSQL cluster (initdb done, migrations applied), the JetStream stores, the Valkey and
mesh configurations, the chosen ports, the agent's token. Nothing of the sandbox runs: every
service and the fault agent were stopped by the `sandbox down` before each timed start.
The OS page cache is not dropped (the binaries were read moments ago, as they would be by a
developer who starts the sandbox again), and Python's bytecode caches are on: the commands
run without PYTHONDONTWRITEBYTECODE even if this process has it, so the first start writes
the __pycache__ files an installed package has anyway (pip compiles them at install); without
them every Python process of the sandbox (the command, the agent, its guardian, the relay)
compiles our modules from source again, about 0.2 s each.

The time is the wall time of the whole command, from spawning `python -m chaos_tui sandbox
up --profile P` to its exit with status 0: Python start-up and imports, every service of the
profile started and ready by its own readiness check (not a live PID: Postgres accepts a
query on the migrated schema, NATS answers healthz with JetStream and has its stream, the
relay has written its ready file...), and the fault agent started and answering. After each
timed start, `sandbox down` (untimed) stops it all again.

Profiles are interleaved in each round, the order rotated round by round, --rounds times.
Goal: chaos-outbox's median under 2 s. The other profiles are reported without a goal.
Everything started is stopped, and the state directories (and, as root, PostgreSQL's home
outside them) removed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from figures import document, emit, figure

from chaos_tui.core.guard import ENVIRONMENT_VARIABLES
from chaos_tui.profiles import PROFILE_NAMES

GOALS_S = {"chaos-outbox": 2.0}
COMMAND_TIMEOUT_S = 300.0


def env_for(state_dir: Path) -> dict[str, str]:
    """This machine's environment without our settings or a deploy variable the production
    lockout reads: the sandbox here is a clean one."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CHAOS_")
        and k not in ENVIRONMENT_VARIABLES
        and k != "PYTHONDONTWRITEBYTECODE"
    }
    env["CHAOS_STATE_DIR"] = str(state_dir)
    return env


def sandbox(env: dict[str, str], *args: str) -> float:
    """Run `chaos-tui sandbox ARGS`; its wall time in seconds. Raises if it fails."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "chaos_tui", "sandbox", *args],
        env=env,
        cwd="/",
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"sandbox {' '.join(args)} exited {done.returncode}: "
            f"{(done.stderr or done.stdout).strip()[-500:]}"
        )
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", default=",".join(PROFILE_NAMES), help="comma-separated")
    parser.add_argument("--rounds", type=int, default=5, help="timed starts per profile")
    parser.add_argument("--output", type=Path, help="write the JSON here as well")
    args = parser.parse_args()
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    unknown = [p for p in profiles if p not in PROFILE_NAMES]
    if unknown or not profiles or args.rounds < 1:
        parser.error(f"profiles are among {', '.join(PROFILE_NAMES)}; rounds at least 1")
    states = {p: Path(tempfile.mkdtemp(prefix=f"chaos-start-{p}-", dir="/tmp")) for p in profiles}
    envs = {p: env_for(states[p]) for p in profiles}
    first_up: dict[str, float] = {}
    samples: dict[str, list[float]] = {p: [] for p in profiles}
    try:
        for profile in profiles:  # the first start makes what the warm ones find in place
            first_up[profile] = round(sandbox(envs[profile], "up", "--profile", profile), 3)
            sandbox(envs[profile], "down")
        for turn in range(args.rounds):
            shift = turn % len(profiles)
            for profile in profiles[shift:] + profiles[:shift]:
                samples[profile].append(sandbox(envs[profile], "up", "--profile", profile))
                sandbox(envs[profile], "down")
                print(
                    f"sandbox_start: round {turn + 1} {profile}: {samples[profile][-1]:.3f} s",
                    file=sys.stderr,
                )
    finally:
        from chaos_tui.sandbox import postgres

        for profile in profiles:
            subprocess.run(
                [sys.executable, "-m", "chaos_tui", "sandbox", "down"],
                env=envs[profile],
                cwd="/",
                stdin=subprocess.DEVNULL,
                capture_output=True,
                check=False,
            )
            postgres.remove_home(states[profile] / "pg")  # as root it lives outside the dir
            shutil.rmtree(states[profile], ignore_errors=True)
    figures = [
        figure(
            f"warm sandbox up --profile {profile}",
            samples[profile],
            "s",
            goal=GOALS_S.get(profile),
            note="whole command, every service ready and the agent up",
        )
        for profile in profiles
    ]
    emit(
        document(
            "sandbox_start",
            figures,
            rounds=args.rounds,
            first_up_s=first_up,
            as_root=os.geteuid() == 0,
        ),
        args.output,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
