"""postgres_restart_outbox end to end through the real CLI, on real PostgreSQL and NATS."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from chaos_tui.core.exit_codes import ExitCode
from tests.conftest import CHAOS_TUI, FAST, env_for, run_cli

SCENARIO = "postgres_restart_outbox"
pytestmark = pytest.mark.slow


def test_passes_with_numbers(sandbox, tmp_path):
    out = tmp_path / "result.json"
    proc = run_cli(["--headless", "--scenario", SCENARIO, "--output", str(out), *FAST], sandbox.env)
    assert proc.returncode == ExitCode.PASS, proc.stderr
    assert "verdict: PASS" in proc.stderr
    result = json.loads(out.read_text())

    assert result["scenario"] == SCENARIO and result["outcome"] == "pass"
    assert result["hypothesis"] and result["started_at"] < result["finished_at"]
    window = result["injection_windows"][0]
    assert window["fault"] == "hard_restart:postgres"
    assert window["healed_at"] - window["injected_at"] >= 2.0

    pg = result["probes"]["postgres"]
    assert pg["before"]["samples"] > 0 and pg["before"]["error_rate"] == 0
    assert pg["during"]["error_rate"] > 0.5, "the probe must have seen Postgres down"
    assert pg["after"]["samples"] > 0
    # 10 Hz by default: about ten samples a second of run
    assert len(pg["samples"]) >= 8 * (result["duration_s"] - 5)

    recovery = result["recovery"]
    assert recovery["time_to_detect_s"] is not None and recovery["time_to_detect_s"] < 1.0
    assert recovery["time_to_recover_s"] is not None
    assert recovery["backlog_peak"] is not None and recovery["backlog_peak"] > 0

    delivery = result["delivery"]
    assert delivery["acknowledged"] > 50
    assert delivery["published"] == delivery["acknowledged"]
    assert (delivery["lost"], delivery["duplicated"], delivery["unexpected"]) == (0, 0, 0)

    invariants = {i["name"]: i for i in result["invariants"]}
    assert set(invariants) == {
        "no_lost_events",
        "no_duplicate_events",
        "no_unexpected_events",
        "relay_resumes",
        "backlog_drains",
    }
    assert all(i["passed"] for i in invariants.values())
    assert invariants["relay_resumes"]["limit"] == 10
    assert 0 <= invariants["relay_resumes"]["measured"] <= 10
    assert result["heal"]["ok"] and result["heal"]["verified"]
    assert result["runbook"] is None, "a pass points to no runbook"
    # the run found the sandbox running and leaves it running
    assert sandbox.sandbox.is_up(["chaos-outbox"])


def test_lossy_relay_fails_with_lost_events(fresh_state_dir):
    """The invariant can fail: a relay that acknowledges rows it never publishes is caught."""
    env = env_for(fresh_state_dir, CHAOS_SANDBOX__RELAY_TEST_DROP_EVERY="7")
    proc = run_cli(["--headless", "--scenario", SCENARIO, *FAST], env)
    assert proc.returncode == ExitCode.FAIL, proc.stderr
    result = json.loads(proc.stdout)
    assert result["outcome"] == "fail"
    assert result["delivery"]["lost"] > 0
    lost = next(i for i in result["invariants"] if i["name"] == "no_lost_events")
    assert not lost["passed"] and lost["measured"] == result["delivery"]["lost"]
    assert result["heal"]["ok"]
    # the failure points to what to do about it, and that page exists
    assert result["runbook"] == "chaos_tui/runbooks/postgres_restart_outbox.md"
    assert (Path(__file__).parent.parent / result["runbook"]).is_file()
    assert f"runbook: {result['runbook']}" in proc.stderr
    # the run started this sandbox, so it stopped it again
    state = json.loads((fresh_state_dir / "sandbox.json").read_text())
    assert state["processes"] == {}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_fault_heals_and_exits_130(sandbox, tmp_path, sig):
    out = tmp_path / "result.json"
    args = [
        "--headless",
        "--scenario",
        SCENARIO,
        "--output",
        str(out),
        "--set",
        "warmup_s=1",
        "--set",
        "down_s=30",
    ]
    proc = subprocess.Popen(
        CHAOS_TUI + args,
        env=sandbox.env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if "INJECTED" in line or time.monotonic() > deadline:
                break
        assert any("INJECTED" in line for line in seen), "".join(seen)
        time.sleep(0.5)  # well inside the 30 s fault window
        assert not sandbox.sandbox.running("postgres"), "postgres should be down mid-fault"
        proc.send_signal(sig)
        rest = proc.stderr.read()
        code = proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == ExitCode.INTERRUPTED, rest
    result = json.loads(out.read_text())
    assert result["outcome"] == "interrupted"
    assert result["heal"]["ok"] and result["heal"]["verified"]
    assert (
        result["injection_windows"][0]["healed_at"] - result["injection_windows"][0]["injected_at"]
        < 20
    )
    assert sandbox.sandbox.running("postgres")
    with psycopg.connect(sandbox.sandbox.postgres_url, connect_timeout=3) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
