"""A second adversarial pass over the suite fixes of tests/test_suite_findings.py: each test is
one problem found with the real CLI on the embedded sandbox, written failing, then fixed.
Short windows."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from chaos_tui.core.exit_codes import ExitCode
from tests.cli_support import Watched
from tests.conftest import env_for, run_cli

SHORT = "{scenario: opa_restart, set: {warmup_s: 1, hold_s: 2, recover_s: 2}}"


def three_runs(folder: Path, pause: str = "3s") -> Path:
    suite = folder / "three.yaml"
    suite.write_text(f"name: three\npause: {pause}\nruns:\n" + f"  - {SHORT}\n" * 3)
    return suite


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_as_a_run_is_planned_still_ends_the_suite_with_its_report(
    fresh_state_dir, tmp_path, sig
):
    """A signal that lands while run 2 is planned (sent as its `three: run 2/3` rule is
    printed): SuiteRunner.abort cancels the run's task before it took its first step, so
    Run.execute never gets to handle the cancellation; CancelledError escapes run_suite as a
    traceback, exit 1, and neither the suite's JSON nor its saved report exists (run 1 passed
    and is lost from the suite). Expected: exit 130, the JSON with run 1 and why it stopped."""
    env = env_for(fresh_state_dir)
    watched = Watched(["--headless", "--suite", str(three_runs(tmp_path)), "--json"], env)
    watched.wait_for("three: run 2/3", timeout=120)
    watched.proc.send_signal(sig)
    code = watched.finish(timeout=120)
    assert "CancelledError" not in watched.stderr, watched.stderr[-1500:]
    assert code == ExitCode.INTERRUPTED, watched.stderr[-1500:]
    report = json.loads(watched.stdout)
    assert report["runs"] and report["runs"][0]["outcome"] == "pass"
    assert report["stopped"] == f"{sig.name} received"
    assert list((fresh_state_dir / "suites").glob("*.json"))
    leases = run_cli(["leases"], env)
    assert "no live lease" in leases.stdout, leases.stdout


@pytest.mark.slow
def test_a_signal_as_a_run_ends_in_a_suite_without_pause_ends_it_with_its_report(
    fresh_state_dir,
):
    """The same escape, wider: with no pause (`--scenario a,b`, or a `for:` soak), a signal
    that arrives as run 1 ends (here on its `result saved to` line) is only heard once run 2's
    task exists, before it started: traceback, exit 1, no JSON. Expected: exit 130 and the
    JSON with run 1."""
    short = ["--set", "warmup_s=1", "--set", "hold_s=2", "--set", "recover_s=2"]
    args = ["--headless", "--scenario", "opa_restart,opa_restart", *short, "--json"]
    watched = Watched(args, env_for(fresh_state_dir))
    watched.wait_for("result saved to", timeout=120)
    watched.proc.send_signal(signal.SIGINT)
    code = watched.finish(timeout=120)
    assert "CancelledError" not in watched.stderr, watched.stderr[-1500:]
    assert code == ExitCode.INTERRUPTED, watched.stderr[-1500:]
    report = json.loads(watched.stdout)
    assert [r["outcome"] for r in report["runs"]] == ["pass"]
    assert report["stopped"] == "SIGINT received"
