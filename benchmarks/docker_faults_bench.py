"""How long the agent's Docker faults take to land and to heal, on the offline test bed.

    python benchmarks/docker_faults_bench.py [--repeat 5] [--output FILE]

Brings up the chaos-opa profile and the NATS mesh from the test bed (`CHAOS_TESTBED=1 just
chaos-up ...`, compose projects chaos and chaos-mesh; it refuses to run if they exist), starts
its own agent in a temporary state directory, and for each fault kind takes a lease and heals
it, --repeat times:

- docker.restart / .kill / .stop / .pause on the opa container;
- docker.netcut of port 7522 on the three sea-a nodes (a sidecar on each, at once).

Measures (JSON on stdout): seconds from the lease request to its answer (the fault has
landed), and from the heal request to its answer (healed, and for a cut: the rules checked
gone), p50 and max per kind. Goal, from the scenario contract: every inject within 10 s.
Takes everything down again (`just chaos-down`) and stops its agent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from chaos_tui.agent.client import AgentClient
from chaos_tui.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
JUST = shutil.which("just") or str(Path(sys.executable).parent / "just")
INJECT_GOAL_S = 10.0


def ours_running() -> bool:
    return any(
        subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for project in ("chaos", "chaos-mesh")
    )


def just(env: dict, *args: str) -> None:
    subprocess.run(
        [JUST, *args],
        cwd=ROOT,
        env=env,
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def summary(seconds: list[float]) -> dict:
    return {
        "p50": round(statistics.median(seconds), 3),
        "max": round(max(seconds), 3),
        "tries": [round(s, 3) for s in seconds],
    }


async def measure(agent: AgentClient, kind: str, params: dict, repeat: int) -> dict:
    applied, healed = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        lease = await agent.create_lease(kind=kind, target="docker", params=params, ttl_s=60)
        applied.append(time.perf_counter() - started)
        started = time.perf_counter()
        assert await agent.heal_lease(lease.id), f"{kind}: the lease was gone before the heal"
        healed.append(time.perf_counter() - started)
    return {"apply_s": summary(applied), "heal_s": summary(healed)}


async def run(state_dir: Path, image: str, repeat: int) -> dict:
    # The agent is spawned with this environment: it must know the sidecar image.
    os.environ.update(CHAOS_STATE_DIR=str(state_dir), CHAOS_DOCKER__SIDECAR_IMAGE=image)
    agent = AgentClient(Settings(state_dir=state_dir))
    await agent.ensure()
    try:
        kinds = {}
        for kind in ("docker.restart", "docker.kill", "docker.stop", "docker.pause"):
            kinds[kind] = await measure(agent, kind, {"project": "chaos", "service": "opa"}, repeat)
        kinds["docker.netcut"] = await measure(
            agent,
            "docker.netcut",
            {
                "project": "chaos-mesh",
                "services": [f"sea-nats-a-{i}" for i in (1, 2, 3)],
                "port": 7522,
                "image": image,
            },
            repeat,
        )
        assert await agent.leases() == [], "a lease outlived its heal"
        return kinds
    finally:
        agent.stop_spawned()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="leases per fault kind (default 5)")
    parser.add_argument("--output", type=Path, help="write the JSON here as well")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if ours_running():
        sys.exit(
            "docker_faults_bench: compose projects chaos/chaos-mesh already exist here; "
            "take them down first (just chaos-down)"
        )
    built = subprocess.run(
        [sys.executable, str(ROOT / "infra/docker/testbed/build_testbed.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    image = built.strip().split("=", 1)[1]
    env = {**os.environ, "CHAOS_TESTBED": "1", "PYTHON": sys.executable}
    state_dir = Path(tempfile.mkdtemp(prefix="chaos-docker-bench-"))
    try:
        for profile in ("chaos-opa", "mesh"):
            just(env, "chaos-up", profile)
        time.sleep(2)  # let the mesh's leafnode links form before the first cut
        kinds = asyncio.run(run(state_dir, image, args.repeat))
    finally:
        just(env, "chaos-down")
        shutil.rmtree(state_dir, ignore_errors=True)
    worst = max(k["apply_s"]["max"] for k in kinds.values())
    result = {
        "benchmark": "docker_faults_bench",
        "repeat": args.repeat,
        "kinds": kinds,
        "worst_apply_s": worst,
        "goal_apply_s": INJECT_GOAL_S,
        "goal_met": worst <= INJECT_GOAL_S,
        "docker_server": subprocess.run(
            ["docker", "version", "-f", "{{.Server.Version}}"], capture_output=True, text=True
        ).stdout.strip(),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0 if result["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
