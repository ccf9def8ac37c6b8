"""Exit codes 7 (target not enabled) and 4 (heal failed), end to end from the real CLI.

Exit 7: a Docker run without CHAOS_ENABLED / --enable-chaos is refused in one line before
anything starts: no agent, no lease, and a container of the target project stays as it was.
Exit 4: a real heal failure, not a mock: PostgreSQL is hard-restarted and, while it is down,
its port is taken by a listener of this test, so the agent's restart cannot bind and the heal
fails. Then the sabotage is undone and `chaos-tui heal` brings PostgreSQL back."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import psycopg
import pytest

from chaos_tui.core.exit_codes import ExitCode
from chaos_tui.sandbox.stack import Sandbox
from chaos_tui.settings import Settings
from tests.conftest import CHAOS_TUI, env_for, run_cli
from tests.pty_console import PtyConsole

REFUSED = "set CHAOS_ENABLED=true or pass --enable-chaos"


def _nothing_started(state_dir) -> list[str]:
    """What a refused command must not have made: an agent (its folder, its pid) or a lease."""
    agent = state_dir / "agent"
    found = [f"lease {p.stem}" for p in agent.glob("leases/*.json")]
    if (agent / "agent.json").exists():
        found.append("agent.json")
    return found + [f"sandbox {p.name}" for p in state_dir.glob("sandbox.json")]


@pytest.mark.parametrize("enabled", [None, "false", "0"], ids=["unset", "false", "zero"])
def test_a_docker_run_not_enabled_exits_7_in_one_line(fresh_state_dir, enabled):
    env = env_for(fresh_state_dir) | ({} if enabled is None else {"CHAOS_ENABLED": enabled})
    proc = run_cli(
        ["--headless", "--scenario", "opa_restart", "--target", "docker"], env, timeout=60
    )
    assert proc.returncode == ExitCode.CHAOS_NOT_ENABLED, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and REFUSED in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout == ""
    assert _nothing_started(fresh_state_dir) == []


def _docker_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture
def decoy_opa():
    """A running container labelled as the `opa` service of a compose project of this test's
    own: what a refused opa_restart would otherwise find and kill."""
    if not _docker_answers():
        pytest.skip("no Docker Engine answers")
    images = subprocess.run(
        ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "chaos-tui-testbed"],
        capture_output=True,
        text=True,
    ).stdout.split()
    if not images:
        pytest.skip("no test-bed image here (tests/test_docker.py builds it)")
    project = f"chaos-t{os.getpid()}-refused"
    name = f"{project}_opa_1"
    subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--name",
            name,
            "--label",
            "chaos-tui.test=exit-7",
            "--label",
            f"com.docker.compose.project={project}",
            "--label",
            "com.docker.compose.service=opa",
            images[0],
            "sleep",
            "300",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield project, name
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def test_exit_7_leaves_the_target_containers_alone(fresh_state_dir, decoy_opa):
    project, name = decoy_opa
    inspect = [
        "docker",
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.StartedAt}} {{.RestartCount}}",
        name,
    ]
    before = subprocess.run(inspect, capture_output=True, text=True).stdout
    since = time.time()
    proc = run_cli(
        [
            "--headless",
            "--scenario",
            "opa_restart",
            "--target",
            "docker",
            "--set",
            "warmup_s=1",
            "--set",
            "down_s=2",
        ],
        env_for(fresh_state_dir, CHAOS_DOCKER__PROJECT=project),
        timeout=60,
    )
    until = time.time() + 0.5
    assert proc.returncode == ExitCode.CHAOS_NOT_ENABLED, proc.stderr
    assert subprocess.run(inspect, capture_output=True, text=True).stdout == before
    events = subprocess.run(
        [
            "docker",
            "events",
            "--since",
            f"{since:.3f}",
            "--until",
            f"{until:.3f}",
            "--filter",
            f"container={name}",
            "--format",
            "{{.Action}}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.split()
    assert events == [], f"the refused run touched the container: {events}"
    assert _nothing_started(fresh_state_dir) == []


def test_the_console_not_enabled_refuses_the_run(fresh_state_dir):
    """The console opens (it says why nothing can run) but asks no confirmation, starts no
    agent and injects nothing."""
    console = PtyConsole(
        ["--target", "docker", "--scenario", "opa_restart"], env_for(fresh_state_dir)
    )
    try:
        console.wait_for("LOCKED")
        console.wait_for("Run")
        console.type("r")
        console.wait_for("refused: nothing injected")
        assert "the scenario name, exactly" not in console.text()
        console.type("q")
        code = console.wait(30)
    finally:
        console.close()
    assert code == ExitCode.PASS  # nothing was run: quitting is a normal end
    assert REFUSED.split(" or ")[0] in console.text()
    assert _nothing_started(fresh_state_dir) == []


# -- exit 4 ------------------------------------------------------------------------------------


def _take_port(port: int, within: float = 5.0) -> socket.socket:
    """Listen on PostgreSQL's port as soon as the killed server lets go of it."""
    deadline = time.monotonic() + within
    while True:
        sock = socket.socket()
        # Past the killed server's connections in TIME_WAIT; a listener still excludes
        # PostgreSQL's own bind (it sets SO_REUSEADDR too, and Linux refuses it while we listen).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
            return sock
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _postgres_answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            return conn.execute("select 1").fetchone() == (1,)
    except psycopg.Error:
        return False


@pytest.mark.slow
def test_a_heal_that_fails_for_real_exits_4(fresh_state_dir, tmp_path):
    sandbox = Sandbox(Settings(state_dir=fresh_state_dir))
    sandbox.up(profiles=["chaos-outbox"])
    port = sandbox.ports["postgres"]
    out = tmp_path / "result.json"
    env = env_for(fresh_state_dir)
    run = subprocess.Popen(
        [
            *CHAOS_TUI,
            "--headless",
            "--scenario",
            "postgres_restart_outbox",
            "--set",
            "warmup_s=1",
            "--set",
            "down_s=3",
            "--set",
            "recover_s=1",
            "--invariant-budget",
            "5",
            "--output",
            str(out),
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    squatter = None
    try:
        narration = []
        for line in run.stderr:  # the run narrates on stderr; it ends if the run does
            narration.append(line)
            if "INJECTED" in line:
                squatter = _take_port(port)  # the restart at the heal now cannot bind
                break
        assert squatter is not None, "the fault never landed: " + "".join(narration)
        stdout, rest = run.communicate(timeout=120)
        narration.append(rest)
        summary = stdout + "".join(narration)

        assert run.returncode == ExitCode.HEAL_FAILED, summary[-3000:]
        assert "HEAL FAILED hard_restart:postgres" in summary and "heal: FAILED" in summary, (
            summary[-3000:]
        )
        result = json.loads(out.read_text())
        assert result["heal"]["ok"] is False
        assert [f["ok"] for f in result["heal"]["faults"]] == [False]
        live = json.loads(run_cli(["leases", "--json"], env, timeout=30).stdout)
        assert [lease["kind"] for lease in live] == ["sandbox.hard_restart"], live
    finally:
        if run.poll() is None:
            run.send_signal(signal.SIGKILL)
            run.wait(10)
        if squatter is not None:
            squatter.close()  # the sabotage undone
        # Now the heal works: `chaos-tui heal` restarts PostgreSQL and ends the lease (run
        # whatever happened above, so nothing stays broken).
        healed = run_cli(["heal"], env, timeout=120)
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert _postgres_answers(sandbox.postgres_url)
    assert json.loads(run_cli(["leases", "--json"], env, timeout=30).stdout) == []
