"""How long the agent's Docker faults take to land and to heal, on the offline test bed.

    python benchmarks/docker_faults_bench.py [--repeat 5] [--output FILE]

Brings up the chaos-opa profile and the NATS mesh from the test bed (`CHAOS_TESTBED=1 just
chaos-up ...`, compose projects chaos and chaos-mesh; it refuses to run if they exist), starts
its own agent in a temporary state directory, and takes a lease of each fault kind and heals
it, one kind after another in each round (interleaved, so a burst of load hits them alike),
--repeat rounds:

- docker.restart / .kill / .stop / .pause on the opa container;
- docker.netcut of port 7522 on the three sea-a nodes (a sidecar on each, at once).

Figures per kind: seconds from the lease request to its answer (the fault has landed; goal,
from the scenario contract: inject within 10 s, judged on the median over the rounds, the worst
try kept as worst_apply_s), and from the heal request to its answer (healed, and for a cut:
the rules checked gone). Takes everything down again (`just chaos-down`) and stops its agent.

The defaults are what run_all runs: 44 s on the 2-core machine (load about 4) once the
test-bed image exists; building it the first time (debootstrap and the wheels) took 2 min more.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from figures import RESULTS, document, emit, figure

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


KINDS = ("docker.restart", "docker.kill", "docker.stop", "docker.pause", "docker.netcut")


def params(kind: str, image: str) -> dict:
    if kind == "docker.netcut":
        return {
            "project": "chaos-mesh",
            "services": [f"sea-nats-a-{i}" for i in (1, 2, 3)],
            "port": 7522,
            "image": image,
        }
    return {"project": "chaos", "service": "opa"}


async def lease_and_heal(agent: AgentClient, kind: str, image: str) -> tuple[float, float]:
    """Seconds to the fault in place, then to healed."""
    started = time.perf_counter()
    lease = await agent.create_lease(
        kind=kind, target="docker", params=params(kind, image), ttl_s=60
    )
    applied = time.perf_counter() - started
    started = time.perf_counter()
    assert await agent.heal_lease(lease.id), f"{kind}: the lease was gone before the heal"
    return applied, time.perf_counter() - started


async def run(state_dir: Path, image: str, repeat: int) -> dict[str, dict[str, list[float]]]:
    # The agent is spawned with this environment: it must know the sidecar image.
    os.environ.update(CHAOS_STATE_DIR=str(state_dir), CHAOS_DOCKER__SIDECAR_IMAGE=image)
    agent = AgentClient(Settings(state_dir=state_dir))
    await agent.ensure()
    try:
        kinds: dict[str, dict[str, list[float]]] = {k: {"apply_s": [], "heal_s": []} for k in KINDS}
        for _ in range(repeat):
            for kind in KINDS:
                applied, healed = await lease_and_heal(agent, kind, image)
                kinds[kind]["apply_s"].append(applied)
                kinds[kind]["heal_s"].append(healed)
        assert await agent.leases() == [], "a lease outlived its heal"
        return kinds
    finally:
        agent.stop_spawned()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds: leases per kind (5)")
    parser.add_argument("--output", type=Path, default=RESULTS / "docker_faults.json")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    load_start = [round(x, 2) for x in os.getloadavg()]
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
    worst = max(max(k["apply_s"]) for k in kinds.values())
    figures = [
        figure(
            f"{kind} inject",
            kinds[kind]["apply_s"],
            "s",
            goal=INJECT_GOAL_S,
            note="lease request to its answer: the fault in place",
        )
        for kind in KINDS
    ] + [
        figure(f"{kind} heal", kinds[kind]["heal_s"], "s", note="heal request to healed")
        for kind in KINDS
    ]
    doc = document(
        "docker_faults",
        figures,
        repeat=args.repeat,
        worst_apply_s=round(worst, 3),
        worst_apply_meets_goal=worst <= INJECT_GOAL_S,
        tries_in_order={
            kind: {part: [round(v, 3) for v in values] for part, values in parts.items()}
            for kind, parts in kinds.items()
        },
        docker_server=subprocess.run(
            ["docker", "version", "-f", "{{.Server.Version}}"], capture_output=True, text=True
        ).stdout.strip(),
        load_avg={"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]},
    )
    emit(doc, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
