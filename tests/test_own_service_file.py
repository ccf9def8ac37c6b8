"""A scenario file against the user's own service, run as a new user would run it: a real HTTP
server the test starts, `chaos-tui --headless --file FILE --scenario NAME --enable-chaos`, the
real agent killing it by its port, and the verdict read from the JSON result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from chaos_tui.core.procinfo import listeners
from tests.conftest import CHAOS_TUI, env_for, run_cli
from tests.test_process_faults import (
    SERVER,
    free_port,
    restart_command,
    server,  # noqa: F401 - the fixture `unsupervised` stands on
    stop_listeners,
    wait_listening,
)


def scenario_file(
    tmp_path: Path, port: int, *, restart: str | None = None, extra: str = ""
) -> Path:
    restart_line = f"        restart: {json.dumps(restart)}\n" if restart else ""
    text = f"""\
version: 1
scenarios:
  own_crash:
    hypothesis: "the service answers again within 5 s of a crash"
    warmup_seconds: 1
    recover_seconds: 1.5
    steady_state:
      - http_200_from: http://127.0.0.1:{port}/
        name: service
    load:
      - http_requests: {{url: "http://127.0.0.1:{port}/", rate_per_s: 20}}
        name: traffic
    actions:
      - type: kill_process
        target: {{listening_on: {port}}}
        duration_seconds: 1
{restart_line}    validation:
      - http_recovery_time_max_seconds: 5
      - error_rate_max: {{load: traffic, max: 1.0}}
{extra}"""
    path = tmp_path / "own.yaml"
    path.write_text(text)
    return path


def run_file(path: Path, state_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return run_cli(
        ["--headless", "--file", str(path), "--scenario", "own_crash", "--json", *args],
        env_for(state_dir, CHAOS_ENABLED="true"),
    )


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def invariant(result: dict, prefix: str) -> dict:
    return next(i for i in result["invariants"] if i["name"].startswith(prefix))


@pytest.fixture
def supervised():
    """The server under a shell loop that starts it again whenever it dies."""
    port = free_port()
    loop = subprocess.Popen(
        ["/bin/sh", "-c", f"while :; do {SERVER.format(port=port)} 2>/dev/null; sleep 0.2; done"],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_listening(port)
    yield port
    os.killpg(loop.pid, signal.SIGKILL)  # the loop's own group: the loop and its server
    loop.wait(5)
    stop_listeners(port)


@pytest.fixture
def unsupervised(server):  # noqa: F811 - the imported fixture, by name
    """The server alone: nothing starts it again but a `restart:` in the file."""
    return server


def test_a_supervised_service_killed_by_its_port_passes_with_its_recovery(
    supervised, tmp_path, fresh_state_dir
):
    port = supervised
    before = listeners(port)
    done = run_file(scenario_file(tmp_path, port), fresh_state_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["outcome"] == "pass"
    assert result["target"] == "local"
    assert listeners(port) and listeners(port) != before, "killed, and started again by its loop"
    recovery = invariant(result, "recovery_time")
    assert recovery["passed"] and recovery["measured"] is not None and recovery["measured"] < 5
    assert result["recovery"]["probe"] == "service"
    assert result["recovery"]["time_to_recover_s"] is not None
    # The load ran through every phase and was counted per phase.
    assert result["measurements"]["load.traffic.before"]["requests"] > 5
    assert result["measurements"]["load.traffic.during"]["errors"] >= 1


def test_an_unsupervised_service_with_restart_in_the_file_passes(
    unsupervised, tmp_path, fresh_state_dir
):
    port, proc = unsupervised
    path = scenario_file(tmp_path, port, restart=restart_command(port))
    done = run_file(path, fresh_state_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    assert proc.poll() is not None, "the service the file named was killed"
    assert answers(port), "the file's restart command brought it back"
    assert json.loads(done.stdout)["outcome"] == "pass"


def test_an_unsupervised_service_without_restart_fails_naming_the_probe_and_the_wait(
    unsupervised, tmp_path, fresh_state_dir
):
    port, _ = unsupervised
    done = run_file(scenario_file(tmp_path, port), fresh_state_dir)
    assert done.returncode == 1, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["outcome"] == "fail"
    recovery = invariant(result, "recovery_time")
    assert not recovery["passed"] and recovery["measured"] is None
    assert "service did not pass again: waited" in recovery["detail"]
    assert not answers(port)


def test_sigkill_of_the_run_mid_fault_still_restarts_the_service(
    unsupervised, tmp_path, fresh_state_dir
):
    port, proc = unsupervised
    path = scenario_file(tmp_path, port, restart=restart_command(port)).read_text()
    path_long = tmp_path / "long.yaml"
    path_long.write_text(path.replace("duration_seconds: 1", "duration_seconds: 30"))
    env = env_for(fresh_state_dir, CHAOS_ENABLED="true")
    run = subprocess.Popen(
        [*CHAOS_TUI, "--headless", "--file", str(path_long), "--scenario", "own_crash"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None:  # the fault has landed once the service is dead
            assert time.monotonic() < deadline, "the fault never landed"
            time.sleep(0.05)
        run.send_signal(signal.SIGKILL)
        run.wait(5)
        deadline = time.monotonic() + 10
        while not answers(port):  # no command typed: the agent heals for the dead owner
            assert time.monotonic() < deadline, "the service never came back"
            time.sleep(0.1)
    finally:
        if run.poll() is None:
            run.kill()
        # What the killed run left: its agent (by the pid file, as `agent stop` would).
        subprocess.run([*CHAOS_TUI, "agent", "stop"], env=env, capture_output=True, timeout=30)


def test_dry_run_names_the_exact_process_and_injects_nothing(
    unsupervised, tmp_path, fresh_state_dir
):
    port, proc = unsupervised
    path = scenario_file(tmp_path, port, restart=restart_command(port))
    done = run_cli(
        ["--dry-run", "--file", str(path), "--scenario", "own_crash"], env_for(fresh_state_dir)
    )
    assert done.returncode == 0, done.stderr
    assert f"process {proc.pid}: {sys.executable}" in done.stdout
    assert "command run by the agent at the heal" in done.stdout
    assert "nothing injected" in done.stdout
    assert proc.poll() is None and answers(port)


@pytest.mark.parametrize(
    ("change", "args", "expected"),
    [
        ("port", [], "nothing listens on port"),
        ("restart", [], "is not an executable program on PATH"),
        ("relative", [], "as an absolute path"),
        ("none", ["--target", "sandbox"], "runs on --target local, not sandbox"),
        ("none", [], "--enable-chaos"),
    ],
)
def test_bad_input_is_one_line_and_nothing_injected(
    unsupervised, tmp_path, fresh_state_dir, change, args, expected
):
    port, proc = unsupervised
    restart = {
        "restart": "no-such-program-xyz --now",
        "relative": "bin/start-it",
    }.get(change)
    path = scenario_file(tmp_path, free_port() if change == "port" else port, restart=restart)
    env = (
        env_for(fresh_state_dir)
        if expected == "--enable-chaos"
        else env_for(fresh_state_dir, CHAOS_ENABLED="true")
    )
    done = run_cli(["--headless", "--file", str(path), "--scenario", "own_crash", *args], env)
    # 7: chaos not enabled for a target outside the sandbox; 2: bad input.
    assert done.returncode == (7 if expected == "--enable-chaos" else 2), done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], done.stderr
    assert proc.poll() is None and answers(port), "nothing was injected"


def test_a_built_in_scenario_is_refused_on_the_local_target(fresh_state_dir):
    done = run_cli(
        ["--headless", "--scenario", "opa_restart", "--target", "local"],
        env_for(fresh_state_dir, CHAOS_ENABLED="true"),
    )
    assert done.returncode == 2
    assert "runs on sandbox or docker, not local" in done.stderr


def test_a_probe_named_like_the_targets_own_is_one_line(tmp_path, fresh_state_dir):
    path = tmp_path / "clash.yaml"
    path.write_text(
        """\
version: 1
scenarios:
  clash:
    hypothesis: "a probe may not take the fault agent's name"
    steady_state:
      - tcp_open: 127.0.0.1:1
        name: agent
    actions:
      - type: latency
        proxy: {listen: "127.0.0.1:1", upstream: "127.0.0.1:2"}
        latency: 10
"""
    )
    done = run_cli(
        ["--dry-run", "--file", str(path), "--scenario", "clash"], env_for(fresh_state_dir)
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "chaos-tui: clash: steady_state probe name 'agent' is taken by the target's own probe: "
        "give it another `name:`"
    ]


def test_the_examples_service_crash_passes_as_written(unsupervised, fresh_state_dir):
    """examples/own-service.yaml, with only its variables set, as its header says to run it."""
    port, proc = unsupervised
    example = Path(__file__).parent.parent / "examples" / "own-service.yaml"
    done = run_cli(
        [
            "--headless",
            *("--file", str(example), "--scenario", "service_crash", "--json"),
            *("--set", f"port={port}", "--set", f"restart_command={restart_command(port)}"),
            "--enable-chaos",
        ],
        env_for(fresh_state_dir),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["outcome"] == "pass"
    assert proc.poll() is not None and answers(port), "killed, and started again by the file"
    assert {i["name"] for i in result["invariants"]} == {
        "detect_time(service)",
        "recovery_time(service)",
        "cleanup_steady_state",
    }
