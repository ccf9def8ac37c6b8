"""The job-queue scenarios written as a scenario file (examples/queue.yaml): worker injectors
validated by their own model, toxics on the broker link, the queue's named probes and checks
judged by the built-in queue scenario beside the file (its companion). Checked through the
real CLI, as a user runs it; one short run on the real sandbox (Valkey, sentinels, the
Dramatiq worker, the fault agent)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chaos_tui.core.exit_codes import ExitCode
from tests.conftest import env_for, run_cli

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "queue.yaml"
POSITIONED = re.compile(r"^chaos-tui: (?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<rest>.+)$")

BAD_SCOPE = """\
version: 1
scenarios:
  crash_some:
    hypothesis: "No job is lost when some workers crash"
    steady_state:
      - queue_primary_up: true
    actions:
      - type: worker_injector
        injectors:
          - kind: fail
            rate: 0.5
            scope: {actor: chaos_job, %s}
        duration_seconds: 2
    validation:
      - no_job_loss
"""


def test_the_example_validates_with_its_loads_and_injectors(fresh_state_dir):
    proc = run_cli(["validate", str(EXAMPLE)], env_for(fresh_state_dir), timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "queue_latency_drop: 2 probes, 3 actions, hold 300 s"  # 5 minutes
    assert "  load jobs: the job queue's producer (rate_per_s 20, pattern sine, seed 1, " in (
        proc.stdout
    )
    assert (
        "  injector fail: raise at 20%, every message (queue chaos_jobs, actor chaos_job)" in lines
    )
    assert "queue_worker_crash: 2 probes, 1 action, hold 10 s" in lines
    assert (
        "  injector crash: kill the worker process mid-job at 5%, every message (queue chaos_jobs)"
        in (lines)
    )
    assert "queue_broker_failover: 1 probe, 1 action, hold 8 s" in lines


@pytest.mark.parametrize(
    ("scope", "at", "where", "message"),
    [
        # A bad value is placed at the value, an unknown key at the key.
        ("percent: 150", "150", "scope.percent", "less than or equal to 100"),
        ("precent: 50", "precent", "scope.precent", "unknown key 'precent' (did you mean"),
    ],
)
def test_a_bad_injector_scope_is_one_positioned_line_and_nothing_starts(
    scope, at, where, message, fresh_state_dir, tmp_path
):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_SCOPE % scope)
    env = env_for(fresh_state_dir)
    col = (BAD_SCOPE % scope).splitlines()[11].index(at) + 1
    for args in (
        ["validate", str(bad)],
        ["--headless", "--file", str(bad), "--scenario", "crash_some"],
        ["--dry-run", "--file", str(bad), "--scenario", "crash_some"],
    ):
        proc = run_cli(args, env, timeout=60)
        assert proc.returncode == ExitCode.USAGE, (args, proc.stderr)
        errors = [line for line in proc.stderr.splitlines() if line.startswith("chaos-tui:")]
        assert len(errors) == 1, proc.stderr
        found = POSITIONED.match(errors[0])
        assert found, errors[0]
        assert (found["file"], found["line"], found["col"]) == (str(bad), "12", str(col))
        assert found["rest"].startswith(f"scenarios.crash_some.actions[0].injectors[0].{where}:")
        assert message in found["rest"]
        assert proc.stdout == ""
    # Nothing was started: no agent, no sandbox service, no lease, no result.
    assert not (fresh_state_dir / "agent").exists()
    assert not (fresh_state_dir / "results").exists()
    assert not list(fresh_state_dir.glob("**/*.pid"))


def dry_run(state_dir: Path, scenario: str) -> str:
    """The example's plan for one scenario, as `--dry-run` prints it (nothing started)."""
    proc = run_cli(
        ["--dry-run", "--file", str(EXAMPLE), "--scenario", scenario],
        env_for(state_dir),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert not (state_dir / "agent").exists()
    return proc.stdout


def test_dry_run_shows_the_injectors_with_their_scope_and_the_broker_link(fresh_state_dir):
    out = dry_run(fresh_state_dir, "queue_latency_drop")
    assert out.startswith("queue_latency_drop on target sandbox (dry run: nothing injected)")
    faults = out.split("  faults:\n", 1)[1].split("  load:", 1)[0].splitlines()
    assert [f.split(":", 2)[:2] for f in faults] == [
        ["    broker_link", "latency"],
        ["    broker_link", "reset_peer"],
        ["    worker_injectors", "fail"],
    ]
    assert "latency=100, jitter=50" in faults[0] and "(TTL 310 s)" in faults[0]
    # `together: true`: the three are held at once, 5 minutes, not one after another.
    assert "  expected duration: 308 s of load and holds" in out
    assert "reset_peer (timeout=2000) on 20% of the job worker's Valkey connections" in faults[1]
    assert (
        "fail: raise at 20%, every message (queue chaos_jobs, actor chaos_job) (TTL 310 s)"
        in faults[2]
    )
    # The companion's probes and load; the invariants the file names, with the file's limits.
    assert "    backlog: jobs queued, in flight or waiting to retry [steady state, max 1000]" in out
    assert "  load: 20 jobs/s (sine, seed 1), 20 ms of work each" in out
    invariants = out.split("  invariants:\n", 1)[1].split("  blast radius:", 1)[0]
    names = [line.split()[0] for line in invariants.splitlines()]
    assert names == ["no_lost_jobs", "backlog_drains", "dead_letter_share", "cleanup_steady_state"]
    assert "backlog_drains (<= 30 s)" in invariants and "dead_letter_share (<= 0.01)" in invariants
    radius = out.split("  blast radius:\n", 1)[1]
    assert "sandbox process job_worker" in radius and "queue-valkey-1" in radius


def test_dry_run_of_the_failover_kills_the_primary_role(fresh_state_dir):
    out = dry_run(fresh_state_dir, "queue_broker_failover")
    assert "    hard_restart:queue_primary: SIGKILL the Valkey node the sentinels call" in out
    assert "enqueue_resumes (<= 15 s)" in out and "workers_resume (<= 10 s)" in out


def test_checks_of_two_queue_built_ins_are_refused_before_anything_starts(
    fresh_state_dir, tmp_path
):
    mixed = tmp_path / "mixed.yaml"
    text = BAD_SCOPE % "percent: 50"
    mixed.write_text(text + "      - retries_bounded\n      - failover_within_seconds: 10\n")
    proc = run_cli(
        ["--dry-run", "--file", str(mixed), "--scenario", "crash_some"],
        env_for(fresh_state_dir),
        timeout=60,
    )
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    assert "retries_bounded, failover_within_seconds are checked by different built-in" in (
        proc.stderr
    )


@pytest.mark.slow
def test_the_worker_crash_file_scenario_runs_on_the_sandbox_and_loses_no_job(
    fresh_state_dir, tmp_path
):
    out = tmp_path / "result.json"
    args = ["--headless", "--file", str(EXAMPLE), "--scenario", "queue_worker_crash"]
    for item in ("crash_seconds=4", "warmup_s=2", "recover_s=2"):
        args += ["--set", item]
    env = env_for(fresh_state_dir)
    try:
        proc = run_cli([*args, "--output", str(out)], env, timeout=300)
    finally:
        run_cli(["sandbox", "down"], env, timeout=120)
    assert out.exists(), proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert proc.returncode == ExitCode.PASS, proc.stderr[-3000:]
    assert result["outcome"] == "pass", result["reason"]
    assert result["scenario"] == "queue_worker_crash" and result["target"] == "sandbox"
    invariants = {i["name"]: i for i in result["invariants"]}
    assert list(invariants) == ["no_lost_jobs", "backlog_drains", "retries_bounded"]
    assert all(i["passed"] and i["measured"] is not None for i in invariants.values())
    # The companion's account: every acknowledged job accounted for.
    jobs = result["measurements"]["jobs"]
    assert jobs["lost"] == 0 and jobs["acknowledged"] > 20, jobs
    assert result["delivery"]["lost"] == 0
    (window,) = result["injection_windows"]
    assert window["fault"] == "worker_injectors:crash" and window["healed_by"] == "the run"
    assert result["heal"]["ok"], result["heal"]
