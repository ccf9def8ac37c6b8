"""Bad input: one line on stderr, a distinct exit code, and nothing started."""

import json
import shutil

import pytest

from chaos_tui.exit_codes import ExitCode
from tests.conftest import env_for, make_state_dir, run_cli

SCENARIO = "postgres_restart_outbox"


@pytest.fixture
def state_dir():
    path = make_state_dir("cli")
    try:
        yield path
        assert not (path / "sandbox.json").exists(), "a refused command must not start the sandbox"
    finally:
        shutil.rmtree(path, ignore_errors=True)


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize(
    "args, code, needle",
    [
        (["--headless", "--scenario", "nope"], ExitCode.USAGE, "unknown scenario 'nope'"),
        (["--headless", "--bogus-flag"], ExitCode.USAGE, "No such option"),
        (["--headless"], ExitCode.USAGE, "needs --scenario"),
        (["--headless", "--scenario", SCENARIO, "--output", "/nonexistent-dir/r.json"],
         ExitCode.USAGE, "does not exist"),
        (["--headless", "--scenario", SCENARIO, "--output", "/"], ExitCode.USAGE, "directory"),
        (["--headless", "--scenario", SCENARIO, "--set", "down_s=soon"], ExitCode.USAGE, "down_s"),
        (["--headless", "--scenario", SCENARIO, "--set", "nonsense=1"], ExitCode.USAGE, "nonsense"),
        (["--headless", "--scenario", SCENARIO, "--target", "mars"], ExitCode.USAGE, "unknown target"),
        (["--headless", "--scenario", SCENARIO, "--rate", "0"], ExitCode.USAGE, "--rate"),
        (["--headless", "--scenario", "nats_partition_mesh", "--set", "scope=half"],
         ExitCode.USAGE, "'full' or 'one-node'"),
        (["--headless", "--scenario", "openobserve_stall", "--set", "mode=melt"],
         ExitCode.USAGE, "'stop' or 'pause'"),
        (["--headless", "--scenario", "opa_restart", "--set", "decision_rate=0"],
         ExitCode.USAGE, "decision_rate"),
        (["sandbox", "up", "--profile", "chaos-everything"], ExitCode.USAGE,
         "unknown profile 'chaos-everything'"),
        # The console: run_cli has no terminal, so it must say so rather than draw into a pipe.
        ([], ExitCode.USAGE, "needs a terminal"),
        (["--scenario", "nope"], ExitCode.USAGE, "unknown scenario 'nope'"),
        (["--set", "down_s=1"], ExitCode.USAGE, "--set needs --scenario"),
        (["--scenario", SCENARIO, "--output", "r.json"], ExitCode.USAGE, "--output goes with --headless"),
    ],
)
def test_bad_input_is_one_clear_line(state_dir, args, code, needle):
    proc = run_cli(args, env_for(state_dir))
    assert proc.returncode == code
    assert needle in one_line(proc.stderr)
    assert proc.stdout == ""


def test_unwritable_output_file(state_dir):
    # /sys refuses new files even to root: a real unwritable place on any Linux machine.
    proc = run_cli(["--headless", "--scenario", SCENARIO, "--output", "/sys/chaos-result.json"],
                   env_for(state_dir))
    assert proc.returncode == ExitCode.USAGE
    assert "not writable" in one_line(proc.stderr)


@pytest.mark.parametrize("value", ["production", "PRODUCTION"])
def test_production_refuses_whatever_the_flags(state_dir, value):
    proc = run_cli(
        ["--headless", "--scenario", SCENARIO, "--enable-chaos"],
        env_for(state_dir, ENVIRONMENT=value, CHAOS_ENABLED="true"),
    )
    assert proc.returncode == ExitCode.PRODUCTION_LOCKOUT
    assert "production" in one_line(proc.stderr)


def test_production_refuses_sandbox_up_too(state_dir):
    proc = run_cli(["sandbox", "up"], env_for(state_dir, ENVIRONMENT="production"))
    assert proc.returncode == ExitCode.PRODUCTION_LOCKOUT
    one_line(proc.stderr)


def test_bad_setting_is_one_line(state_dir):
    proc = run_cli(["--headless", "--scenario", SCENARIO], env_for(state_dir, CHAOS_PROBE_RATE_HZ="fast"))
    assert proc.returncode == ExitCode.USAGE
    assert "CHAOS_PROBE_RATE_HZ" in one_line(proc.stderr)


def test_list_shows_every_scenario_with_its_hypothesis_and_profile(state_dir):
    proc = run_cli(["list", "--json"], env_for(state_dir))
    assert proc.returncode == 0
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert {n: r["profile"] for n, r in rows.items()} == {
        SCENARIO: "chaos-outbox", "opa_restart": "chaos-opa",
        "openobserve_stall": "chaos-observe", "nats_partition_mesh": "mesh"}
    assert all(r["hypothesis"].endswith(".") for r in rows.values())
    assert rows[SCENARIO]["parameters"]["down_s"] == 3.0
    assert rows["nats_partition_mesh"]["parameters"]["scope"] == "full"
    text = run_cli(["list"], env_for(state_dir)).stdout
    assert "opa_restart  (profile chaos-opa)" in text
