"""The platform scenarios end to end through the real CLI, on the real sandbox: each one
passes on a healthy platform, and each one fails when the promise it checks is really broken
(a fail-open gateway, a collector that does not retry, an origin too small for the cut)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos_tui.agent.client import AgentClient
from chaos_tui.core.exit_codes import ExitCode
from chaos_tui.sandbox import mesh
from chaos_tui.sandbox.processes import ProcessRecord, is_running
from chaos_tui.sandbox.services import SERVICES
from chaos_tui.sandbox.stack import Sandbox
from chaos_tui.scenarios import SCENARIOS
from chaos_tui.settings import Settings
from chaos_tui.targets.sandbox import PROFILE_PARTS
from tests.conftest import env_for, run_cli

pytestmark = pytest.mark.slow

# Short windows: the suite proves behaviour, the benchmarks measure it at length.
SHORT = {
    "postgres_restart_outbox": ["warmup_s=1", "down_s=2", "recover_s=2"],
    "opa_restart": ["warmup_s=1", "down_s=2", "recover_s=2"],
    "openobserve_stall": ["warmup_s=1", "stall_s=3", "recover_s=2"],
    "nats_partition_mesh": ["warmup_s=1", "cut_s=3", "recover_s=2"],
}


def run(scenario: str, env: dict, out: Path, *extra: str):
    args = ["--headless", "--scenario", scenario, "--output", str(out)]
    for item in [*SHORT[scenario], *extra]:  # KEY=VALUE parameters, or --flags
        args += [item] if item.startswith("--") else ["--set", item]
    proc = run_cli(args, env, timeout=240)
    result = json.loads(out.read_text()) if out.exists() else None
    return proc, result


def invariant(result: dict, name: str) -> dict:
    return next(i for i in result["invariants"] if i["name"] == name)


def test_every_scenario_passes_back_to_back_and_sandbox_down_leaves_nothing(
    fresh_state_dir, tmp_path
):
    env = env_for(fresh_state_dir)
    results = {}
    for name in SHORT:  # the job queue's scenarios: tests/test_queue_scenarios.py
        proc, result = run(
            name,
            env,
            tmp_path / f"{name}.json",
        )
        assert proc.returncode == ExitCode.PASS, f"{name}: {proc.stderr[-3000:]}"
        # Judged while the fault was live too: a passing run never shows a breach on the way.
        assert "BROKE" not in proc.stderr, f"{name}: {proc.stderr[-3000:]}"
        results[name] = result
        # Only the parts the scenario's profile runs, each read from the installed binary.
        assert set(result["versions"]) == set(PROFILE_PARTS[SCENARIOS[name].profile]), result
        assert all("unknown" not in v for v in result["versions"].values()), result

    opa = results["opa_restart"]["measurements"]
    down = opa["decisions while OPA down"]
    assert down["deny"] > 0 and down["allow"] == 0, opa
    assert (
        opa["decisions before fault"]["allow"] > 0 and opa["decisions after OPA back"]["allow"] > 0
    )

    observe = results["openobserve_stall"]
    assert observe["measurements"]["markers sent during the stall"] > 0
    assert observe["delivery"]["lost"] == 0 and observe["delivery"]["published"] > 0
    assert observe["measurements"]["all markers in after heal (s)"] is not None

    mesh = results["nats_partition_mesh"]
    assert mesh["measurements"]["messages published during cut"] > 0
    assert invariant(mesh, "partition_visible")["measured"] >= 1.0  # mirror.active grew
    assert mesh["measurements"]["mirror catch-up (s)"] <= 30
    assert mesh["delivery"]["lost"] == 0 and mesh["delivery"]["published"] > 0

    # Each run stopped what it started; one more sandbox up and down must leave nothing.
    up = run_cli(["sandbox", "up"], env)
    assert up.returncode == 0, up.stderr
    state = json.loads((fresh_state_dir / "sandbox.json").read_text())
    records = [ProcessRecord.from_json(d) for d in state["processes"].values()]
    assert len(records) == len(SERVICES) and all(is_running(r) for r in records)
    agent = json.loads((fresh_state_dir / "agent" / "agent.json").read_text())
    down = run_cli(["sandbox", "down"], env)
    assert down.returncode == 0, down.stderr
    assert not any(is_running(r) for r in records), "a sandbox process outlived sandbox down"
    assert not is_running(ProcessRecord("agent", agent["pid"], agent["start_ticks"], [], ""))


def test_opa_restart_catches_a_gateway_that_fails_open(fresh_state_dir, tmp_path):
    env = env_for(fresh_state_dir, CHAOS_SANDBOX__GATEWAY_TEST_FAIL_OPEN="true")
    proc, result = run("opa_restart", env, tmp_path / "r.json")
    assert proc.returncode == ExitCode.FAIL, proc.stderr[-3000:]
    closed = invariant(result, "fails_closed")
    assert not closed["passed"] and closed["measured"] > 0
    # Said while OPA was still down, once, not only in the verdict.
    broke = [line for line in proc.stderr.splitlines() if "BROKE" in line]
    assert len(broke) == 1 and "fails_closed" in broke[0], proc.stderr[-3000:]
    assert proc.stderr.index("BROKE") < proc.stderr.index("HEALED")
    window = result["injection_windows"][0]
    assert window["applied_at"] <= closed["broke_at"] < window["healed_at"]
    assert not invariant(result, "never_allows_denied")["passed"]
    assert result["measurements"]["decisions while OPA down"]["allow"] > 0
    assert result["runbook"] == "chaos_tui/runbooks/opa_restart.md"


def test_openobserve_stall_catches_a_collector_that_does_not_retry(fresh_state_dir, tmp_path):
    env = env_for(fresh_state_dir, CHAOS_SANDBOX__COLLECTOR_RETRIES="false")
    proc, result = run("openobserve_stall", env, tmp_path / "r.json", "arrival_limit_s=5")
    assert proc.returncode == ExitCode.FAIL, proc.stderr[-3000:]
    assert result["delivery"]["lost"] > 0
    assert not invariant(result, "no_lost_markers")["passed"]
    assert not invariant(result, "stalled_markers_arrive")["passed"]
    assert result["runbook"] == "chaos_tui/runbooks/openobserve_stall.md"


def test_nats_partition_mesh_catches_an_origin_too_small_for_the_cut(fresh_state_dir, tmp_path):
    # 20 msg/s for a 3 s cut is about 60 messages; an origin that keeps 20 drops most of them
    # before the mirror can read them.
    env = env_for(fresh_state_dir, CHAOS_SANDBOX__MESH_ORIGIN_MAX_MSGS="20")
    proc, result = run("nats_partition_mesh", env, tmp_path / "r.json")
    assert proc.returncode == ExitCode.FAIL, proc.stderr[-3000:]
    assert result["delivery"]["lost"] > 0
    assert not invariant(result, "no_lost_messages")["passed"]
    assert result["runbook"] == "chaos_tui/runbooks/nats_partition_mesh.md"


def test_one_node_cut_fails_over_and_a_kept_mesh_keeps_its_link(fresh_state_dir, tmp_path):
    env = env_for(fresh_state_dir)
    proc, result = run("nats_partition_mesh", env, tmp_path / "r.json", "scope=one-node")
    assert proc.returncode == ExitCode.PASS, proc.stderr[-3000:]
    assert result["injection_windows"][0]["fault"] == "cut_link:one-node"
    assert result["measurements"]["paths cut"] in ("mesh-link-1", "mesh-link-2")
    assert invariant(result, "mirror_keeps_flowing")["measured"] <= 5
    assert result["delivery"]["lost"] == 0

    # --keep-sandbox: the mesh stays, and so does the agent that carries its link.
    proc, result = run("nats_partition_mesh", env, tmp_path / "k.json", "--keep-sandbox")
    assert proc.returncode == ExitCode.PASS, proc.stderr[-3000:]
    sandbox = Sandbox(Settings(state_dir=fresh_state_dir))
    assert sandbox.is_up(["mesh"]) and AgentClient(sandbox.settings).info() is not None
    assert mesh.leafz(sandbox.ports["nats_a_monitor"]), "the kept mesh lost its link"
    down = run_cli(["sandbox", "down"], env)
    assert down.returncode == 0 and "agent" in down.stdout, down.stdout + down.stderr
    assert not sandbox.is_up(["mesh"]) and AgentClient(sandbox.settings).info() is None
