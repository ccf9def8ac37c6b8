"""The sandbox against real processes: ports reported, kill and restart, nothing left behind."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg

from chaos_tui.sandbox.processes import is_running
from chaos_tui.sandbox.services import PROFILES
from tests.conftest import env_for, run_cli

SERVICES = PROFILES["chaos-outbox"]


def test_up_status_down_leaves_nothing_running(fresh_state_dir):
    env = env_for(fresh_state_dir)
    up = run_cli(["sandbox", "up", "--profile", "chaos-outbox"], env)
    assert up.returncode == 0, up.stderr
    assert "started: postgres, nats, relay, agent" in up.stdout

    status = json.loads(run_cli(["sandbox", "status", "--json"], env).stdout)
    assert all(status["services"][s]["running"] for s in SERVICES)
    assert set(status["ports"]) == {"postgres", "nats", "nats_monitor"}
    # The agent comes up with a sandbox kept up (runs on it then neither start nor stop it)
    # and goes with `sandbox down`.
    agent_pid = json.loads((fresh_state_dir / "agent" / "agent.json").read_text())["pid"]
    assert _alive(agent_pid)
    with psycopg.connect(status["urls"]["postgres"], connect_timeout=3) as conn:
        assert (
            conn.execute("SELECT to_regclass('outbox_events')::text").fetchone()[0]
            == "outbox_events"
        )

    again = run_cli(["sandbox", "up", "--profile", "chaos-outbox"], env)
    assert "already running" in again.stdout

    state = json.loads((fresh_state_dir / "sandbox.json").read_text())
    pids = {s: state["processes"][s]["pid"] for s in SERVICES}
    down = run_cli(["sandbox", "down"], env)
    assert down.returncode == 0, down.stderr
    for service, pid in {**pids, "agent": agent_pid}.items():
        assert not _alive(pid), f"{service} (pid {pid}) still runs after sandbox down"
    status = json.loads(run_cli(["sandbox", "status", "--json"], env).stdout)
    assert not any(status["services"][s]["running"] for s in SERVICES)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_hard_kill_takes_backends_too_and_start_brings_it_back(sandbox):
    sb = sandbox.sandbox
    rec = sb.record("postgres")
    conn = psycopg.connect(sb.postgres_url, autocommit=True, connect_timeout=3)
    backend_pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    sb.kill("postgres")
    assert not is_running(rec)
    assert not _alive(backend_pid), "a backend outlived the hard kill"
    try:
        conn.execute("SELECT 1")
        raise AssertionError("the old connection still works after a hard kill")
    except psycopg.OperationalError:
        pass
    started = time.monotonic()
    assert sb.start("postgres") is True
    assert time.monotonic() - started < 30
    with psycopg.connect(sb.postgres_url, connect_timeout=3) as again:
        assert again.execute("SELECT 1").fetchone() == (1,)
    assert sb.start("postgres") is False  # already running: nothing to do


def test_down_only_stops_the_named_services(fresh_state_dir):
    from chaos_tui.sandbox.stack import Sandbox
    from chaos_tui.settings import Settings

    sb = Sandbox(Settings(state_dir=fresh_state_dir))
    started: list[str] = []
    sb.up(started, ["chaos-outbox"])
    assert started == list(SERVICES)
    assert sb.down(only=["relay"]) == ["relay"]
    assert not sb.running("relay")
    assert sb.running("postgres") and sb.running("nats")
    assert sb.healthy("postgres") and sb.healthy("nats") and not sb.healthy("relay")


def test_restart_one_service_leaves_the_others_alone(sandbox):
    before = {s: sandbox.sandbox.record(s).pid for s in SERVICES}
    proc = run_cli(["sandbox", "restart", "relay"], sandbox.env)
    assert proc.returncode == 0, proc.stderr
    assert f"restarted relay (pid {sandbox.sandbox.record('relay').pid})" in proc.stdout
    assert sandbox.sandbox.record("relay").pid != before["relay"]
    assert {s: sandbox.sandbox.record(s).pid for s in ("postgres", "nats")} == {
        s: before[s] for s in ("postgres", "nats")
    }
    assert sandbox.sandbox.healthy("relay")
    bad = run_cli(["sandbox", "restart", "kafka"], sandbox.env)
    assert bad.returncode == 2 and "unknown service 'kafka'" in bad.stderr


def test_sandbox_up_keeps_what_a_run_ending_meanwhile_handed_over(fresh_state_dir):
    """A run that ends while `sandbox up` is starting things hands its services over to the
    last user; `sandbox up` takes them back, so they stay up rather than go with the next
    run to end."""
    from chaos_tui.sandbox.usage import Users
    from chaos_tui.settings import Settings
    from chaos_tui.targets.sandbox import SandboxTarget

    up = SandboxTarget(Settings(state_dir=fresh_state_dir))
    up._join(["chaos-outbox"])  # `sandbox up`, while it starts the services
    run = Users(fresh_state_dir, "chaos-outbox")
    run.join()
    with run.leaving({"postgres": 4242}) as to_stop:
        assert to_stop is None  # not the last user: handed over
    up.keep_up()
    later = Users(fresh_state_dir, "chaos-outbox")
    later.join()
    with later.leaving({}) as to_stop:
        assert to_stop == {}, "what `sandbox up` kept up would be stopped by the next run"


def test_sandbox_up_during_a_run_keeps_what_the_run_started(fresh_state_dir):
    """`sandbox up` while a run is starting the same services finds them "already running"
    and promises they stay up: the run, ending later, must not stop them."""
    import subprocess

    from tests.conftest import CHAOS_TUI, FAST

    env = env_for(fresh_state_dir)
    run = subprocess.Popen(
        [*CHAOS_TUI, "--headless", "--scenario", "postgres_restart_outbox", *FAST],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        sandbox_json = fresh_state_dir / "sandbox.json"
        deadline = time.monotonic() + 60
        while not (sandbox_json.exists() and "relay" in sandbox_json.read_text()):
            assert time.monotonic() < deadline and run.poll() is None, "the run started nothing"
            time.sleep(0.1)
        up = run_cli(["sandbox", "up", "--profile", "chaos-outbox"], env)
        assert up.returncode == 0, up.stderr
        assert run.wait(120) == 0, run.stderr.read()
        status = json.loads(run_cli(["sandbox", "status", "--json"], env).stdout)
        assert all(status["services"][s]["running"] for s in SERVICES), status["services"]
        agent_pid = json.loads((fresh_state_dir / "agent" / "agent.json").read_text())["pid"]
        assert _alive(agent_pid)
    finally:
        run.kill()
        run.wait(10)
    down = run_cli(["sandbox", "down"], env)
    assert down.returncode == 0, down.stderr
    assert not _alive(agent_pid)
