"""A run's end that nothing can cut short, and runs that share a state dir without harming
each other (issue 12, points 9 and 11). Real sandbox processes, real signals, short windows."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from chaos_tui.core.exit_codes import ExitCode
from chaos_tui.sandbox.stack import Sandbox
from chaos_tui.settings import Settings
from tests.cli_support import Watched
from tests.conftest import env_for, leftovers, run_cli

SCENARIO = "postgres_restart_outbox"
OUTBOX = ("postgres", "nats", "relay")
pytestmark = pytest.mark.slow


def running_services(state_dir: Path) -> list[str]:
    status = Sandbox(Settings(state_dir=state_dir)).status()
    return [name for name, info in status["services"].items() if info["running"]]


def saved_results(state_dir: Path) -> list[Path]:
    return sorted((state_dir / "results").rglob("*.json"))


# -- point 9: a second signal during cleanup -------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_during_cleanup_is_reported_and_the_result_kept(fresh_state_dir, sig):
    """Signal after INJECTED, then again while the run stops what it started: the second one
    is reported and ignored; the result is printed and saved, exit 130, nothing left running."""
    run = Watched(
        [
            "--headless",
            "--scenario",
            SCENARIO,
            "--set",
            "warmup_s=1",
            "--set",
            "down_s=30",
            "--set",
            "recover_s=1",
        ],
        env_for(fresh_state_dir),
    )
    try:
        run.wait_for("INJECTED", 120)
        run.proc.send_signal(sig)
        run.wait_for("done (interrupted)", 60)  # the heal is done: the run is stopping now
        time.sleep(0.2)
        run.proc.send_signal(sig)
        code = run.finish(90)
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
    assert code == ExitCode.INTERRUPTED, run.stderr
    assert "interrupted before anything was started" not in run.stderr
    assert f"{sig.name} received: stopping what this run started" in run.stderr, run.stderr
    result = json.loads(run.stdout)
    assert result["outcome"] == "interrupted" and result["heal"]["ok"]
    saved = saved_results(fresh_state_dir)
    assert len(saved) == 1 and json.loads(saved[0].read_text())["run_id"] == result["run_id"]
    assert running_services(fresh_state_dir) == []
    assert leftovers(fresh_state_dir) == []  # no agent, no lease


def test_a_third_quick_signal_after_the_heal_skips_the_wait_but_keeps_the_result(fresh_state_dir):
    """Abort, then two more signals within 2 s once the heal is done: the run stops waiting
    for its services to stop, yet prints and saves the result and exits 130."""
    run = Watched(
        [
            "--headless",
            "--scenario",
            SCENARIO,
            "--set",
            "warmup_s=1",
            "--set",
            "down_s=30",
            "--set",
            "recover_s=1",
        ],
        env_for(fresh_state_dir),
    )
    try:
        run.wait_for("INJECTED", 120)
        run.proc.send_signal(signal.SIGINT)
        run.wait_for("done (interrupted)", 60)  # the heal is done
        time.sleep(0.2)
        run.proc.send_signal(signal.SIGINT)
        time.sleep(0.1)
        run.proc.send_signal(signal.SIGINT)
        code = run.finish(60)
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
        leftovers(fresh_state_dir)  # a forced exit may leave the agent to `sandbox down`
    assert code == ExitCode.INTERRUPTED, run.stderr
    assert "not waiting for what this run started to stop" in run.stderr, run.stderr
    result = json.loads(run.stdout)
    assert result["outcome"] == "interrupted" and result["heal"]["ok"]
    assert len(saved_results(fresh_state_dir)) == 1


def test_signals_during_the_heal_are_reported_and_ignored(fresh_state_dir):
    """Three quick SIGINTs while the heal runs: each is reported, none cuts the heal short
    (a forced exit is allowed only once the heal is done)."""
    run = Watched(
        [
            "--headless",
            "--scenario",
            SCENARIO,
            "--set",
            "warmup_s=1",
            "--set",
            "down_s=30",
            "--set",
            "recover_s=1",
        ],
        env_for(fresh_state_dir),
    )
    try:
        run.wait_for("INJECTED", 120)
        run.proc.send_signal(signal.SIGINT)
        run.wait_for("healing before exit", 10)
        for _ in range(3):
            run.proc.send_signal(signal.SIGINT)
            run.wait_for("still healing", 10)
        code = run.finish(90)
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
    assert code == ExitCode.INTERRUPTED, run.stderr
    result = json.loads(run.stdout)
    assert (
        result["outcome"] == "interrupted" and result["heal"]["ok"] and result["heal"]["verified"]
    )
    assert len(saved_results(fresh_state_dir)) == 1
    assert running_services(fresh_state_dir) == []


# -- point 11: runs sharing a state dir -------------------------------------------------------


def test_a_second_run_of_the_same_profile_is_refused(fresh_state_dir):
    env = env_for(fresh_state_dir)
    first = Watched(
        [
            "--headless",
            "--scenario",
            SCENARIO,
            "--set",
            "warmup_s=1",
            "--set",
            "down_s=4",
            "--set",
            "recover_s=2",
        ],
        env,
    )
    try:
        first.wait_for("INJECTED", 120)
        started = time.monotonic()
        second = run_cli(
            ["--headless", "--scenario", SCENARIO, "--set", "down_s=2"], env, timeout=60
        )
        refused_in = time.monotonic() - started
        first_code = first.finish(120)
    finally:
        if first.proc.poll() is None:
            first.proc.kill()
    assert second.returncode == ExitCode.USAGE, second.stderr
    line = second.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "another run uses profile chaos-outbox" in line and f"pid {first.proc.pid}" in line
    assert refused_in < 10, refused_in
    assert second.stdout == ""
    assert first_code == ExitCode.PASS, first.stderr
    assert json.loads(first.stdout)["outcome"] == "pass"
    assert running_services(fresh_state_dir) == []  # the first stopped what it started


USER = textwrap.dedent(f"""
    import asyncio, sys
    from chaos_tui.settings import Settings
    from chaos_tui.targets.sandbox import SandboxTarget
    target = SandboxTarget(Settings())
    asyncio.run(target.ensure_up("chaos-outbox"))
    print("up", target.started, flush=True)
    sys.stdin.readline()  # until the test says so
    print("healthy", all(target.sandbox.healthy(s) for s in {OUTBOX!r}), flush=True)
    print("stopped", target.stop_what_we_started(keep_sandbox=False), flush=True)
""")


def test_no_run_stops_what_another_still_uses(fresh_state_dir):
    """A run stops the services it started only when no one else uses them: another user (a
    second SandboxTarget in its own process, as a console holds one) keeps them running; the
    last one out stops them."""
    env = env_for(fresh_state_dir)
    run = Watched(
        [
            "--headless",
            "--scenario",
            SCENARIO,
            "--set",
            "warmup_s=1",
            "--set",
            "down_s=2",
            "--set",
            "recover_s=8",
        ],
        env,
    )  # time to join
    user = None
    try:
        run.wait_for("HEALED", 120)  # the run started the services; another user joins now
        user = subprocess.Popen(
            [sys.executable, "-c", USER],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert user.stdout.readline().startswith("up []")  # it started nothing itself
        code = run.finish(90)
        assert code == ExitCode.PASS, run.stderr
        left = next(line for line in run.lines if line.startswith("left running"))
        assert set(left.split(": ")[1].strip().split(", ")) == {*OUTBOX, "agent"}, left
        assert sorted(running_services(fresh_state_dir)) == sorted(OUTBOX)
        user.stdin.write("go\n")
        user.stdin.flush()
        out, err = user.communicate(timeout=60)
    finally:
        for proc in (run.proc, user):
            if proc is not None and proc.poll() is None:
                proc.kill()
    healthy, stopped = out.splitlines()[:2]
    assert healthy == "healthy True", out + err
    # the last one out stops what the run handed over to it
    assert set(eval(stopped.removeprefix("stopped "))) == {*OUTBOX, "agent"}, out + err
    assert running_services(fresh_state_dir) == []


def test_sandbox_down_during_a_run_ends_it_promptly_and_quietly(fresh_state_dir):
    env = env_for(fresh_state_dir)
    run = Watched(
        [
            "--headless",
            "--scenario",
            SCENARIO,
            "--set",
            "warmup_s=1",
            "--set",
            "down_s=20",
            "--set",
            "recover_s=2",
        ],
        env,
    )
    try:
        run.wait_for("INJECTED", 120)
        down = run_cli(["sandbox", "down"], env, timeout=120)
        started = time.monotonic()
        code = run.finish(60)
        ended_in = time.monotonic() - started
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
    assert down.returncode == 0, down.stderr
    assert code == ExitCode.ERROR, run.stderr[-3000:]
    assert ended_in < 30, ended_in
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert len(run.lines) < 300, len(run.lines)
    result = json.loads(run.stdout)
    assert result["outcome"] == "error" and "sandbox down" in result["reason"]
    assert result["heal"]["ok"], result["heal"]
    assert running_services(fresh_state_dir) == []
    assert leftovers(fresh_state_dir) == []


def test_a_fault_that_never_landed_is_not_a_failed_heal(fresh_state_dir):
    """Why run B exited 4 in the issue: run A, ending, stopped the agent and the services B
    used; B's inject then never reached an agent, and B 'verified the heal' of that fault
    against a Postgres that A had stopped. Here the agent and Postgres are stopped during the
    warm-up: the run ends as an error (5) with its heal ok, not as a failed heal (4)."""
    env = env_for(fresh_state_dir)
    run = Watched(
        [
            "--headless",
            "--scenario",
            SCENARIO,
            "--set",
            "warmup_s=6",
            "--set",
            "down_s=2",
            "--set",
            "recover_s=1",
        ],
        env,
    )
    try:
        run.wait_for("warmup (", 120)
        assert run_cli(["agent", "stop"], env, timeout=60).returncode == 0
        Sandbox(Settings(state_dir=fresh_state_dir)).down(only=["postgres"])
        code = run.finish(120)
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
    result = json.loads(run.stdout)
    assert result["outcome"] == "error" and "AgentUnavailable" in result["reason"], result["reason"]
    assert result["heal"]["ok"], result["heal"]
    assert code == ExitCode.ERROR, run.stderr[-2000:]


def test_nats_stopped_under_a_run_fails_samples_not_stderr(fresh_state_dir):
    """Another process stops NATS for a few seconds under a run (as run B did to run A in the
    issue): the run's probes record the failure, and nats-py prints no reconnect tracebacks."""
    env = env_for(fresh_state_dir)
    sandbox = Sandbox(Settings(state_dir=fresh_state_dir))
    run = Watched(
        [
            "--headless",
            "--scenario",
            SCENARIO,
            "--set",
            "warmup_s=1",
            "--set",
            "down_s=6",
            "--set",
            "recover_s=2",
        ],
        env,
    )
    try:
        run.wait_for("INJECTED", 120)
        sandbox.down(only=["nats"])
        time.sleep(4)  # nats-py retries every 0.2 s: about 20 attempts per connection
        sandbox.start("nats")
        run.finish(180)
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert len(run.lines) < 300, len(run.lines)
    # The first failing sample says "not connected", or, when the stop caught a request in
    # flight, that it timed out: either way a sample, not a traceback.
    assert any(
        line.split(" ", 1)[-1].startswith(
            ("probe nats failing: not connected to NATS", "probe nats failing: timed out")
        )
        for line in run.lines
    ), run.stderr[-3000:]
    result = json.loads(run.stdout)
    assert any(not ok for _, ok, _, _ in result["probes"]["nats"]["samples"])


@pytest.mark.parametrize("delay_s", [0.3, 0.8])
def test_a_signal_while_the_sandbox_starts_leaves_nothing_running(fresh_state_dir, delay_s):
    """SIGINT while the run starts its services: the start went on in its thread after the
    cancel, so the run stopped nothing (it knew of nothing yet) and postgres, nats and the
    relay stayed up after exit 130. Now the run waits for that start, then stops it all."""
    run = Watched(
        [
            "--headless",
            "--scenario",
            SCENARIO,
            "--set",
            "warmup_s=1",
            "--set",
            "down_s=2",
            "--set",
            "recover_s=1",
        ],
        env_for(fresh_state_dir),
    )
    try:
        run.wait_for("prepare (", 60)
        time.sleep(delay_s)
        run.proc.send_signal(signal.SIGINT)
        code = run.finish(90)
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
    assert code == ExitCode.INTERRUPTED, run.stderr
    assert len(saved_results(fresh_state_dir)) == 1
    assert running_services(fresh_state_dir) == [], run.stderr
    assert leftovers(fresh_state_dir) == []
