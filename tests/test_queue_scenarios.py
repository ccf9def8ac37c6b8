"""The job-queue scenarios end to end through the real CLI, on the real sandbox (Valkey
primary + replica + three sentinels, the Dramatiq reference worker, the fault agent): each
passes on a healthy queue with every job accounted for, and the latency+drop story fails,
saying by how much the dead letters grew, when the failure rate is above the retry budget.

One sandbox (kept up by `sandbox up --profile chaos-queue`) serves every run of the module,
as a game day would run scenarios back to back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos_tui.core.exit_codes import ExitCode
from tests.conftest import clean_state_dir, env_for, run_cli

pytestmark = pytest.mark.slow

# Short windows: the suite proves behaviour, the benchmarks measure it at length.
SHORT = ["warmup_s=2", "recover_s=2", "drain_timeout_s=40"]


@pytest.fixture(scope="module")
def queue_env():
    with clean_state_dir("queue") as state_dir:
        env = env_for(state_dir)
        up = run_cli(["sandbox", "up", "--profile", "chaos-queue"], env)
        assert up.returncode == 0, up.stderr
        try:
            yield env
        finally:
            run_cli(["sandbox", "down"], env)


def run(scenario: str, env: dict, out: Path, *settings: str):
    args = ["--headless", "--scenario", scenario, "--output", str(out)]
    for item in [*SHORT, *settings]:
        args += ["--set", item]
    proc = run_cli(args, env, timeout=240)
    result = json.loads(out.read_text()) if out.exists() else None
    return proc, result


def invariant(result: dict, name: str) -> dict:
    return next(i for i in result["invariants"] if i["name"] == name)


def test_latency_drop_story_loses_nothing_and_reports_the_numbers(queue_env, tmp_path):
    proc, result = run(
        "queue_latency_drop", queue_env, tmp_path / "r.json", "duration_s=5", "job_rate=20"
    )
    assert proc.returncode == ExitCode.PASS, proc.stderr[-3000:]
    m = result["measurements"]
    jobs = m["jobs"]
    assert jobs["lost"] == 0 and jobs["acknowledged"] > 100, jobs
    assert jobs["completed"] + jobs["dead_lettered"] >= jobs["acknowledged"], jobs
    assert set(m["enqueue error rate"]) == {"before", "during", "after"}
    for phase in ("before", "during", "after"):
        assert m[f"job latency ms ({phase})"]["p50"] > 0
    # The broker link's latency (100 ms) shows in the jobs done while it lasted.
    assert m["job latency ms (during)"]["p50"] > m["job latency ms (before)"]["p50"]
    assert {"before", "at heal", "after"} <= set(m["dead letters"])
    assert result["recovery"]["backlog_drain_s"] is not None
    assert invariant(result, "no_lost_jobs")["passed"]
    assert "backlog drain" in proc.stderr and "dead letters" in proc.stderr
    assert "\nDLQ impact: +" in proc.stderr  # the impact first, right under the verdict


def test_a_failure_rate_above_the_retry_budget_fills_the_dead_letters(queue_env, tmp_path):
    proc, result = run(
        "queue_latency_drop",
        queue_env,
        tmp_path / "r.json",
        "duration_s=4",
        "latency_ms=0",
        "jitter_ms=0",
        "drop_share=0",
        "fail_rate=0.9",
    )
    assert proc.returncode == ExitCode.FAIL, proc.stderr[-3000:]
    share = invariant(result, "dead_letter_share")
    assert not share["passed"] and share["measured"] > 0.05, share
    assert "dead-lettered" in share["detail"] and "DLQ growth" in share["detail"]
    assert result["measurements"]["dead letters"]["growth during"] > 0
    assert result["measurements"]["jobs"]["lost"] == 0


def test_worker_crashes_lose_no_job_and_count_duplicates(queue_env, tmp_path):
    proc, result = run(
        "queue_worker_crash",
        queue_env,
        tmp_path / "r.json",
        "duration_s=6",
        "crash_rate=0.05",
        "crash_after_rate=0.2",
    )
    assert proc.returncode == ExitCode.PASS, proc.stderr[-3000:]
    m = result["measurements"]
    jobs = m["jobs"]
    assert jobs["lost"] == 0 and jobs["acknowledged"] > 30, jobs
    # A worker that died after the work, before the ack: that job ran again. At-least-once:
    # counted, reported, and said so; and the worker counted each beginning.
    assert jobs["duplicated"] >= 1, jobs
    assert m["deliveries"]["most of one job"] >= 2, m["deliveries"]
    assert result["delivery"]["duplicated_sample"], result["delivery"]
    assert result["measurements"]["delivery contract"].startswith("at-least-once")
    assert m["worker restarts"] >= 1
    bounded = invariant(result, "retries_bounded")
    assert bounded["passed"] and bounded["measured"] >= 2, bounded


def test_broker_failover_promotes_the_replica_and_loses_nothing(queue_env, tmp_path):
    proc, result = run("queue_broker_failover", queue_env, tmp_path / "r.json", "duration_s=6")
    assert proc.returncode == ExitCode.PASS, proc.stderr[-3000:]
    m = result["measurements"]
    assert m["jobs"]["lost"] == 0 and m["jobs"]["acknowledged"] > 30, m["jobs"]
    # Judged: every job the new primary took, not only those a replica had before the kill.
    refused = m["enqueue errors during failover"]
    assert m["jobs"]["acknowledged"] + refused >= 0.9 * m["jobs"]["sent"], m["jobs"]
    assert invariant(result, "enqueue_resumes")["measured"] > 0
    assert invariant(result, "workers_resume")["measured"] is not None
    # The primary moved: the sentinels named another node after the run than before it, and
    # the probe's value (the primary's port on the sandbox) changed with it.
    moved = m["primary"]
    assert moved["before"] and moved["after"] and moved["before"] != moved["after"], moved
    primary = result["probes"]["queue_primary"]
    assert primary["before"]["value_last"] != primary["after"]["value_last"], primary
