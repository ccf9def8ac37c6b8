"""Faults on a user's own container, named in their scenario file: not part of any compose
project of ours, found by its exact name (target `local`), and nothing else is touched. The
container runs from the offline test bed's image (no image can be pulled here)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from chaos_tui.agent.client import AgentRefused
from tests.conftest import build_testbed_image, why_no_testbed

DOCKER = Path(__file__).resolve().parents[1] / "infra" / "docker"


def _problem() -> str | None:
    if shutil.which("docker") is None:
        return "docker is not installed"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return "no Docker Engine answers"
    return why_no_testbed()


PROBLEM = _problem()
pytestmark = pytest.mark.skipif(PROBLEM is not None, reason=f"docker tests skipped: {PROBLEM}")


def docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def own_container():
    """A container of the user's (named, no compose labels), removed afterwards by its id."""
    image = build_testbed_image()
    name = f"chaos-t{os.getpid()}-own"
    cid = docker("run", "-d", "--name", name, "--init", image, "sleep", "3600")
    try:
        yield name
    finally:
        docker("rm", "-f", cid)


def state(name: str) -> str:
    return docker("inspect", "-f", "{{.State.Status}}", name)


async def test_pause_and_restart_of_a_named_container_heal(agent, own_container):
    lease = await agent.create_lease(
        kind="docker.pause", target="local", params={"container": own_container}, ttl_s=30
    )
    assert state(own_container) == "paused"
    assert await agent.heal_lease(lease.id)
    assert state(own_container) == "running"

    started = docker("inspect", "-f", "{{.State.StartedAt}}", own_container)
    lease = await agent.create_lease(
        kind="docker.kill", target="local", params={"container": own_container}, ttl_s=30
    )
    assert state(own_container) == "exited"
    assert await agent.heal_lease(lease.id)
    assert state(own_container) == "running"
    assert docker("inspect", "-f", "{{.State.StartedAt}}", own_container) != started


async def test_only_the_container_named_is_touched(agent, own_container):
    for params, needle in (
        ({"container": f"{own_container}-not-there"}, "no container named"),
        ({"container": own_container[:-1]}, "no container named"),  # a prefix is no name
        ({"container": own_container, "project": "x"}, "needs params"),
    ):
        with pytest.raises(AgentRefused, match=needle):
            await agent.create_lease(kind="docker.stop", target="local", params=params, ttl_s=10)
    with pytest.raises(AgentRefused, match="target 'local'"):
        await agent.create_lease(
            kind="docker.stop", target="docker", params={"container": own_container}, ttl_s=10
        )
    assert state(own_container) == "running"
