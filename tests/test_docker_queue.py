"""The job queue on the Docker target, for real: the compose profile chaos-queue (Valkey
primary + replica, three sentinels, the ledger, the Dramatiq job worker) run from the offline
test bed's image, and the three queue scenarios headless through the CLI with `--target
docker`: each passes with every acknowledged job accounted for, its faults having landed (the
primary killed and replaced, the worker's injectors read from the run's mirror in the ledger,
the broker link's toxics on the agent's proxies). `just chaos-down` leaves nothing of ours.

Under a compose project and host ports of this session's own, like tests/test_docker.py.
Skipped, with the reason, where no Docker Engine answers or no test bed can be built."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from chaos_tui.core.exit_codes import ExitCode
from chaos_tui.targets.docker import PROFILE_SERVICES
from tests.conftest import CHAOS_TUI, why_no_testbed
from tests.test_docker import (
    COMPOSE,
    DOCKER,
    PROBLEM,
    _container_id,
    _free_ports,
    stack_from_testbed,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(PROBLEM is not None, reason=f"docker tests skipped: {PROBLEM}"),
]

PROJECT = f"chaos-q{os.getpid()}"
SHORT = ["warmup_s=2", "recover_s=2", "duration_s=5", "drain_timeout_s=40"]


@pytest.mark.parametrize("generation", sorted(COMPOSE))
def test_the_queue_profile_is_what_the_target_looks_for(generation):
    """Exactly the services DockerTarget finds by label, on chaos-net, published on 127.0.0.1
    only, with no fixed name and no restart policy; the test bed runs each from its image."""
    for files in (
        ["docker-compose.chaos.yml"],
        ["docker-compose.chaos.yml"] + ["docker-compose.testbed.yml"],
    ):
        args = COMPOSE[generation].split() + [a for f in files for a in ("-f", str(DOCKER / f))]
        out = subprocess.run(
            [*args, "--profile", "chaos-queue", "config"],
            capture_output=True,
            text=True,
            env={**os.environ, "CHAOS_TESTBED_IMAGE": "chaos-tui-testbed:check"},
        )
        assert out.returncode == 0, out.stderr
        services = yaml.safe_load(out.stdout)["services"]
        chosen = {n for n, s in services.items() if "chaos-queue" in s.get("profiles", [])}
        assert chosen == set(PROFILE_SERVICES["chaos-queue"])
        for name in chosen:
            service = services[name]
            assert "chaos-net" in service["networks"], name
            assert "container_name" not in service and "restart" not in service, name
            for port in service.get("ports", []):
                host_ip = port.get("host_ip") if isinstance(port, dict) else port.split(":")[0]
                assert host_ip == "127.0.0.1", (name, port)
            if "docker-compose.testbed.yml" in files:
                assert service["image"] == "chaos-tui-testbed:check", name
            elif name.startswith(("valkey", "sentinel", "ledger")):
                assert service["image"].startswith("valkey/valkey"), name


def _ours() -> list[str]:
    """Containers, networks and volumes of this session's queue project, by label."""
    found = []
    for kind in ("container", "network", "volume"):
        flags = ["-a"] if kind == "container" else []
        out = subprocess.run(
            ["docker", kind, "ls", *flags, "-q", "--filter"]
            + [f"label=com.docker.compose.project={PROJECT}"],
            capture_output=True,
            text=True,
        ).stdout.split()
        found += [f"{kind} {x}" for x in out]
    return found


@pytest.fixture(scope="module")
def queue_stack():
    """chaos-queue up from the test bed (built once, cached by hash), on this session's
    project and ports; afterwards `just chaos-down`, which must leave nothing of ours."""
    assert not _ours(), f"this session's project is already in use: {_ours()}"
    if problem := why_no_testbed():
        pytest.skip(problem)
    s1, s2, s3, ledger, proxy1, proxy2 = _free_ports(6)
    with stack_from_testbed(
        "docker-queue",
        next(iter(COMPOSE.values())),
        ["chaos-queue"],
        _ours,
        CHAOS_DOCKER__PROJECT=PROJECT,
        CHAOS_DOCKER__MESH_PROJECT=f"{PROJECT}-mesh",
        CHAOS_PLATFORM__QUEUE_SENTINEL_1_PORT=str(s1),
        CHAOS_PLATFORM__QUEUE_SENTINEL_2_PORT=str(s2),
        CHAOS_PLATFORM__QUEUE_SENTINEL_3_PORT=str(s3),
        CHAOS_PLATFORM__QUEUE_LEDGER_PORT=str(ledger),
        CHAOS_PLATFORM__QUEUE_PROXY_1_PORT=str(proxy1),
        CHAOS_PLATFORM__QUEUE_PROXY_2_PORT=str(proxy2),
    ) as env:
        yield env


def run(scenario: str, env: dict, out: Path) -> tuple[subprocess.CompletedProcess, dict]:
    args = [*CHAOS_TUI, "--headless", "--scenario", scenario, "--target", "docker"]
    args += ["--enable-chaos", "--output", str(out)]
    # Crashes at 20 %: at the default 5 % a 5 s hold may see none (the assertion below).
    extra = ["crash_rate=0.2"] if scenario == "queue_worker_crash" else []
    for item in [*SHORT, *extra]:
        args += ["--set", item]
    proc = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL
    )
    assert out.exists(), proc.stderr[-3000:]
    return proc, json.loads(out.read_text())


def _container_started_at(service: str) -> str:
    return subprocess.run(
        ["docker", "inspect", "-f", "{{.State.StartedAt}}", _container_id(PROJECT, service)],
        capture_output=True,
        text=True,
    ).stdout.strip()


def _worker_log() -> str:
    logs = subprocess.run(
        ["docker", "logs", _container_id(PROJECT, "job-worker")], capture_output=True, text=True
    )
    return logs.stdout + logs.stderr


@pytest.mark.parametrize(
    "scenario", ["queue_broker_failover", "queue_latency_drop", "queue_worker_crash"]
)
def test_a_queue_scenario_passes_on_the_containers(queue_stack, scenario, tmp_path):
    nodes_before = {n: _container_started_at(n) for n in ("valkey-1", "valkey-2")}
    proc, result = run(scenario, queue_stack, tmp_path / "r.json")
    assert proc.returncode == ExitCode.PASS, proc.stderr[-3000:]
    assert result["target"] == "docker" and result["heal"]["ok"] and result["heal"]["verified"]
    assert any("chaos-tui-testbed" in v for v in result["versions"].values())
    jobs = result["measurements"]["jobs"]
    assert jobs["lost"] == 0 and jobs["acknowledged"] > 0, jobs
    print(f"{scenario}: {json.dumps(result['measurements'], default=str)[:1500]}")
    if scenario == "queue_broker_failover":
        # The primary was killed and started again (one node's start time moved) and the
        # enqueues saw it: refused for a while, then taken by the new primary.
        moved = [n for n, at in nodes_before.items() if _container_started_at(n) != at]
        assert len(moved) == 1, (nodes_before, moved)
        assert result["measurements"]["enqueue errors during failover"] > 0
        moved_to = result["measurements"]["primary"]  # the sentinels name the other node now
        assert moved_to["before"] != moved_to["after"], moved_to
    if scenario == "queue_latency_drop":
        # The fail injector acted: some job was retried. (At 20 % a second retry of one job
        # is a few-percent event in a 5 s hold: `>= 2` failed one CI run in four.)
        assert result["measurements"]["retries"]["most"] >= 1
    if scenario == "queue_worker_crash":
        assert "crash injector of lease" in _worker_log()  # read from the mirror, acted on
