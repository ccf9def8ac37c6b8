"""Issue 14's acceptance: the seed's config (examples/seed-config.yaml) passes on the sandbox,
run as a user runs it: `chaos-tui --headless --file ... --scenario NAME --json`, with the file's
duration variable shortened by --set. Each seed scenario runs beside the built-in of its part
(its probes, load and delivery checks), so the result must carry the invariants the seed names
judged by that built-in, the file's own checks, and a fault that really landed and healed."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from chaos_tui.core.exit_codes import ExitCode
from chaos_tui.core.model import InjectionWindow, ProbeSample
from chaos_tui.core.timeline import Timeline
from chaos_tui.from_file.checks import Judging
from chaos_tui.from_file.load import load_scenarios
from chaos_tui.scenarios import SCENARIOS
from tests.conftest import clean_state_dir, env_for, leftovers, run_cli

SEED = Path(__file__).resolve().parents[1] / "examples" / "seed-config.yaml"
# Each scenario's duration variable, shortened (the mesh's built-in holds a cut 2 s at least).
HOLDS = {
    "nats_partition_mesh": ("partition_seconds", 3.0),
    "postgres_restart_outbox": ("db_down_seconds", 2.0),
    "opa_restart": ("opa_down_seconds", 2.0),
}
# What each seed scenario must report: the built-in's invariants its named checks stand for,
# then the file's own checks; the fault the action became; the probe its recovery is read on.
EXPECTED = {
    "nats_partition_mesh": {
        "builtin": ["no_lost_messages", "no_duplicate_messages", "mirror_catches_up"],
        # The seed's probe (mirror silence) never fails in a cut: recovery is read on the link.
        "own": ["recovery_time(link)", "cleanup_steady_state"],
        "fault": "cut_link:full",
        "recovery_probe": "link",
        "delivery": True,
    },
    "postgres_restart_outbox": {
        "builtin": [
            "no_lost_events",
            "no_duplicate_events",
            "no_unexpected_events",
            "relay_resumes",
            "backlog_drains",
        ],
        "own": ["cleanup_db_healthy"],
        "fault": "hard_restart:postgres",  # graceful: false
        "recovery_probe": "postgres",
        "delivery": True,
    },
    "opa_restart": {
        "builtin": ["fails_closed", "never_allows_denied", "allow_resumes"],
        "own": ["recovery_time(opa)"],
        "fault": "stop:opa",  # a graceful restart: SIGTERM, down for the duration, started
        "recovery_probe": "opa",
        "delivery": False,  # the built-in counts decisions, not deliveries
    },
}


@pytest.fixture(scope="module")
def seed_state_dir():
    """One state dir for the three runs (each starts and stops its own profile); afterwards
    nothing of ours may be left running in it."""
    with clean_state_dir("seed") as state_dir:
        yield state_dir


def seed_args(name: str, *extra: str) -> list[str]:
    variable, hold = HOLDS[name]
    return [
        "--file",
        str(SEED),
        "--scenario",
        name,
        "--set",
        "warmup_s=1",
        "--set",
        "recover_s=2",
        "--set",
        f"{variable}={hold:g}",
        *extra,
    ]


def run_seed(name: str, env: dict, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    proc = run_cli(["--headless", "--json", *seed_args(name, *extra)], env, timeout=240)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"{name}: no JSON result (exit {proc.returncode}): {proc.stderr[-3000:]}")
    return proc, result


def by_name(result: dict) -> dict[str, dict]:
    return {i["name"]: i for i in result["invariants"]}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXPECTED))
def test_seed_scenario_passes_on_the_sandbox(name, seed_state_dir):
    want = EXPECTED[name]
    proc, result = run_seed(name, env_for(seed_state_dir))
    assert proc.returncode == ExitCode.PASS, proc.stderr[-3000:]
    assert result["outcome"] == "pass", result["reason"]
    # The file's scenario ran, not the built-in of the same name.
    assert result["scenario"] == name and result["target"] == "sandbox"
    assert result["hypothesis"] != SCENARIOS[name].hypothesis

    invariants = by_name(result)
    assert list(invariants) == want["builtin"] + want["own"]
    # Judged by the built-in: its own descriptions and limits, and a measured value each.
    builtin = {spec.name: spec for spec in SCENARIOS[name]().invariants()}
    for inv_name in want["builtin"]:
        inv = invariants[inv_name]
        assert inv["description"] == builtin[inv_name].description
        assert inv["passed"] and inv["measured"] is not None, inv
    for inv_name in want["own"]:
        inv = invariants[inv_name]
        assert inv["passed"] and inv["measured"] is not None, inv

    # The action landed on the platform's part, for the file's duration, and was healed.
    (window,) = result["injection_windows"]
    assert window["fault"] == want["fault"]
    assert window["applied_at"] is not None and window["healed_by"] == "the run"
    held = window["heal_started_at"] - window["applied_at"]
    hold = HOLDS[name][1]
    assert hold - 0.2 <= held <= hold + 1.5, f"held {held:.2f} s for a {hold:g} s duration"
    assert result["heal"]["ok"] and result["heal"]["verified"], result["heal"]
    assert [f["fault"] for f in result["heal"]["faults"]] == [want["fault"]]
    # ...and was seen: the recovery probe failed during it and passed again.
    recovery = result["recovery"]
    assert recovery["probe"] == want["recovery_probe"]
    assert recovery["time_to_detect_s"] is not None and recovery["outage_s"] > 0, recovery

    delivery = result["delivery"]
    if want["delivery"]:
        assert delivery["published"] > 0 and delivery["lost"] == 0, delivery
        assert delivery["duplicated"] == 0 and delivery["published"] == delivery["acknowledged"]
    else:
        assert delivery is None
    _check_specifics(name, result, invariants)


def _check_specifics(name: str, result: dict, invariants: dict[str, dict]) -> None:
    """What each seed key asked for beyond the common shape."""
    measurements = result["measurements"]
    if name == "postgres_restart_outbox":
        # outbox_processing_resumes_within_seconds: 10 is the built-in's limit here.
        assert invariants["relay_resumes"]["limit"] == 10
        assert result["recovery"]["backlog_probe"] == "outbox_backlog"
    elif name == "opa_restart":
        down = measurements["decisions while OPA down"]
        assert down["deny"] > 0 and down["allow"] == 0, measurements  # deny_all
        assert measurements["decisions after OPA back"]["allow"] > 0
        assert invariants["recovery_time(opa)"]["limit"] == 10
    else:
        assert measurements["messages published during cut"] > 0
        assert measurements["paths cut"] == "mesh-link-1, mesh-link-2"
        assert invariants["recovery_time(link)"]["limit"] == 30
        assert result["recovery"]["backlog_probe"] == "mirror_lag"


@pytest.mark.slow
def test_a_fail_open_gateway_fails_the_seeds_deny_all(fresh_state_dir):
    """The seed's `decisions_during_outage: deny_all` is really checked: a gateway that
    allows when OPA is down fails it, with the built-in's runbook."""
    env = env_for(fresh_state_dir, CHAOS_SANDBOX__GATEWAY_TEST_FAIL_OPEN="true")
    proc, result = run_seed("opa_restart", env)
    assert proc.returncode == ExitCode.FAIL, proc.stderr[-3000:]
    invariants = by_name(result)
    closed = invariants["fails_closed"]
    assert not closed["passed"] and closed["measured"] > 0, closed
    assert not invariants["never_allows_denied"]["passed"]
    assert result["measurements"]["decisions while OPA down"]["allow"] > 0
    assert result["runbook"] == "chaos_tui/runbooks/opa_restart.md"
    assert result["heal"]["ok"]


BLAST = {
    "nats_partition_mesh": ["sandbox process nats_a", "sandbox process nats_b", "mesh-link-1"],
    "postgres_restart_outbox": ["sandbox process postgres", "sandbox process relay"],
    "opa_restart": ["sandbox process opa", "sandbox process gateway"],
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_dry_run_shows_the_sandbox_blast_radius_and_starts_nothing(name, fresh_state_dir):
    proc = run_cli(["--dry-run", *seed_args(name)], env_for(fresh_state_dir), timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"{name} on target sandbox (dry run: nothing injected)" in out
    assert EXPECTED[name]["fault"] in out
    radius = out.split("blast radius:", 1)[1]
    for line in BLAST[name]:
        assert line in radius, out
    assert "(not started yet)" in radius
    # Nothing was started: no sandbox record, no agent, nothing left running.
    assert not (fresh_state_dir / "sandbox.json").exists()
    assert not (fresh_state_dir / "agent" / "agent.json").exists()
    assert leftovers(fresh_state_dir) == []


@pytest.mark.parametrize(
    ("mode", "names"),
    [("--headless", list(EXPECTED)), ("--dry-run", ["postgres_restart_outbox"])],
)
def test_a_seed_scenario_on_target_local_is_refused_in_one_line(mode, names, fresh_state_dir):
    """The seed's scenarios break the platform's parts: on --target local they are refused
    before anything is resolved there (on local `target: postgres` would name a container of
    the user's own), and before the question of --enable-chaos (a usage error, not a refusal
    to break things)."""
    for name in names:
        args = [mode, "--target", "local", *seed_args(name)]
        proc = run_cli(args, env_for(fresh_state_dir), timeout=60)
        assert proc.returncode == ExitCode.USAGE, proc.stderr
        assert proc.stdout == ""
        refusal = [
            line
            for line in proc.stderr.splitlines()
            if "(a built-in has the same name)" not in line
        ]
        assert len(refusal) == 1, proc.stderr
        assert refusal[0] == (
            f"chaos-tui: {name} breaks parts of the platform: it runs on sandbox or docker, "
            "not local"
        )
    assert not (fresh_state_dir / "agent" / "agent.json").exists()


@pytest.mark.parametrize(("silence", "passes"), [(1.0, True), (7.0, False)])
async def test_verify_steady_state_holds_the_builtins_ceiling_after_the_heal(silence, passes):
    """`verify_steady_state` is the steady state as it was checked before the fault: on the
    mesh, mirror silence passing but above the built-in's 5 s ceiling is not steady."""
    scenario = load_scenarios(SEED)["nats_partition_mesh"]()
    assert scenario.steady_state() == {"mirror_silence": 5.0}
    (check,) = [c for c in scenario.checks if c.spec.name == "cleanup_steady_state"]
    timeline = Timeline()
    healed = time.time() - check.spec.limit - 5  # long enough ago: judged at once
    timeline.windows.append(
        InjectionWindow(
            fault="cut_link:full",
            lease_id="x",
            description="",
            injected_at=healed - 3,
            heal_started_at=healed - 0.1,
            healed_at=healed,
        )
    )
    for i in range(5):
        timeline.add(ProbeSample("mirror_silence", healed + 0.1 * (i + 1), True, 1.0, silence))
    judging = Judging(
        SimpleNamespace(timeline=timeline),  # all a check reads of the run
        {},
        scenario.steady_state(),
        {"nats_messages_flowing": "mirror_silence"},
    )
    result = await check.judge(judging)
    assert result.passed is passes, result
    if not passes:
        assert "mirror_silence: value 7 above 5" in result.detail
