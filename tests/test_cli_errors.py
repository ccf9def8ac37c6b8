"""Bad input: one line on stderr, a distinct exit code, and nothing started."""

import json
import shutil
import signal
import subprocess
import time

import pytest

from chaos_tui.core.exit_codes import ExitCode
from tests.conftest import CHAOS_TUI, env_for, make_state_dir, run_cli

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
        (
            ["--headless", "--scenario", SCENARIO, "--output", "/nonexistent-dir/r.json"],
            ExitCode.USAGE,
            "does not exist",
        ),
        (["--headless", "--scenario", SCENARIO, "--output", "/"], ExitCode.USAGE, "directory"),
        (
            ["--headless", "--scenario", SCENARIO, "--set", "down_s=soon"],
            ExitCode.USAGE,
            "down_s must be a number of seconds, got 'soon'",
        ),
        (["--headless", "--scenario", SCENARIO, "--set", "nonsense=1"], ExitCode.USAGE, "nonsense"),
        # Parameters said in plain words: the key, and what it accepts (no library wording).
        (
            ["--headless", "--scenario", SCENARIO, "--set", "down_s", "10"],
            ExitCode.USAGE,
            "--set down_s: expected KEY=VALUE, e.g. --set down_s=10",
        ),
        (
            ["--headless", "--scenario", "openobserve_stall", "--set", "nope=1"],
            ExitCode.USAGE,
            "unknown parameter nope for openobserve_stall; it takes warmup_s, hold_s, recover_s, "
            "marker_rate, mode (stop|pause), arrival_limit_s",
        ),
        (
            ["--headless", "--scenario", SCENARIO, "--set", "hold_s=1000"],
            ExitCode.USAGE,
            "hold_s must be between 0 and 60 seconds, got 1000",
        ),
        (
            ["--headless", "--scenario", SCENARIO, "--set", "hold_s=5", "--set", "down_s=10"],
            ExitCode.USAGE,
            "--set hold_s and down_s name the same parameter (hold_s): give one",
        ),
        (
            ["--headless", "--scenario", SCENARIO, "--target", "mars"],
            ExitCode.USAGE,
            "unknown target",
        ),
        (["--headless", "--scenario", SCENARIO, "--rate", "0"], ExitCode.USAGE, "--rate"),
        (
            ["--headless", "--scenario", "nats_partition_mesh", "--set", "scope=half"],
            ExitCode.USAGE,
            "scope must be one of full, one-node, got 'half'",
        ),
        (
            ["--headless", "--scenario", "openobserve_stall", "--set", "mode=melt"],
            ExitCode.USAGE,
            "mode must be one of stop, pause, got 'melt'",
        ),
        (
            ["--headless", "--scenario", "opa_restart", "--set", "decision_rate=0"],
            ExitCode.USAGE,
            "decision_rate",
        ),
        (
            ["sandbox", "up", "--profile", "chaos-everything"],
            ExitCode.USAGE,
            "unknown profile 'chaos-everything'",
        ),
        # The console: run_cli has no terminal, so it must say so rather than draw into a pipe.
        ([], ExitCode.USAGE, "needs a terminal"),
        (["--scenario", "nope"], ExitCode.USAGE, "unknown scenario 'nope'"),
        (["--set", "down_s=1"], ExitCode.USAGE, "--set needs --scenario"),
        (
            ["--scenario", SCENARIO, "--output", "r.json"],
            ExitCode.USAGE,
            "--output goes with --headless",
        ),
    ],
)
def test_bad_input_is_one_clear_line(state_dir, args, code, needle):
    proc = run_cli(args, env_for(state_dir))
    assert proc.returncode == code
    assert needle in one_line(proc.stderr)
    assert proc.stdout == ""


def test_unwritable_output_file(state_dir):
    # /sys refuses new files even to root: a real unwritable place on any Linux machine.
    proc = run_cli(
        ["--headless", "--scenario", SCENARIO, "--output", "/sys/chaos-result.json"],
        env_for(state_dir),
    )
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
    proc = run_cli(
        ["--headless", "--scenario", SCENARIO], env_for(state_dir, CHAOS_PROBE_RATE_HZ="fast")
    )
    assert proc.returncode == ExitCode.USAGE
    assert "CHAOS_PROBE_RATE_HZ" in one_line(proc.stderr)


def test_list_shows_every_scenario_with_its_hypothesis_and_profile(state_dir):
    proc = run_cli(["list", "--json"], env_for(state_dir))
    assert proc.returncode == 0
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert {n: r["profile"] for n, r in rows.items()} == {
        SCENARIO: "chaos-outbox",
        "opa_restart": "chaos-opa",
        "openobserve_stall": "chaos-observe",
        "nats_partition_mesh": "mesh",
        "queue_latency_drop": "chaos-queue",
        "queue_worker_crash": "chaos-queue",
        "queue_broker_failover": "chaos-queue",
    }
    assert all(r["hypothesis"].endswith(".") for r in rows.values())
    assert (
        rows[SCENARIO]["parameters"]["hold_s"] == 3.0
    )  # one name for every scenario (down_s is an alias)
    assert rows["nats_partition_mesh"]["parameters"]["scope"] == "full"
    text = run_cli(["list"], env_for(state_dir)).stdout
    assert "opa_restart  (profile chaos-opa, about 13.0 s a run)" in text


# -- issue 12, point 8: a production lockout that cannot be talked out of --------------------


def nothing_started(state_dir):
    assert not (state_dir / "sandbox.json").exists(), "the sandbox was started"
    assert not (state_dir / "agent" / "agent.json").exists(), "an agent was started"


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"ENVIRONMENT": "production"}, "ENVIRONMENT"),
        ({"ENVIRONMENT": "", "CHAOS_ENVIRONMENT": "production"}, "CHAOS_ENVIRONMENT"),
        ({"ENVIRONMENT": "staging", "CHAOS_ENVIRONMENT": "production"}, "CHAOS_ENVIRONMENT"),
        ({"ENV": "prod"}, "ENV"),
        ({"APP_ENV": "production"}, "APP_ENV"),
        ({"NODE_ENV": "production"}, "NODE_ENV"),
        ({"RAILS_ENV": "production"}, "RAILS_ENV"),
        ({"DEPLOY_ENV": "eu-prod"}, "DEPLOY_ENV"),
        ({"ENVIRONMENT": "production-eu"}, "ENVIRONMENT"),
        ({"ENVIRONMENT": "prd"}, "ENVIRONMENT"),
        ({"ENVIRONMENT": "PROD"}, "ENVIRONMENT"),
        ({"ENVIRONMENT": "production", "CHAOS_PRODUCTION_MARKERS": "[]"}, "ENVIRONMENT"),
        ({"ENVIRONMENT": "production", "CHAOS_PRODUCTION_MARKERS": "garbage"}, "ENVIRONMENT"),
        ({"APP_ENV": "live", "CHAOS_PRODUCTION_MARKERS": '["live"]'}, "APP_ENV"),
    ],
)
def test_the_agent_refuses_in_production(state_dir, env, variable):
    # On main the agent started and served here: the short timeout turns that into a failure.
    proc = run_cli(["agent"], env_for(state_dir, **env), timeout=30)
    assert proc.returncode == ExitCode.PRODUCTION_LOCKOUT, proc.stderr
    line = one_line(proc.stderr)
    assert f"{variable}={env[variable]!r}" in line and "production" in line
    assert not (state_dir / "agent").exists(), "the agent made its folder before refusing"


@pytest.mark.parametrize(
    "args",
    [
        ["--headless", "--scenario", SCENARIO],
        ["sandbox", "up", "--profile", "chaos-outbox"],
        ["sandbox", "restart", "postgres"],
        ["heal"],  # no agent runs: healing would start one
        ["halt"],
        ["agent"],
    ],
)
def test_every_command_that_starts_something_refuses(fresh_state_dir, args):
    proc = run_cli(args, env_for(fresh_state_dir, ENV="prod"), timeout=60)
    assert proc.returncode == ExitCode.PRODUCTION_LOCKOUT, proc.stderr
    assert "ENV='prod'" in one_line(proc.stderr)
    nothing_started(fresh_state_dir)


@pytest.mark.parametrize("markers", ["[1]", "[unclosed", '{"prod": true}'])
def test_unreadable_markers_are_one_line(state_dir, markers):
    proc = run_cli(["agent"], env_for(state_dir, CHAOS_PRODUCTION_MARKERS=markers), timeout=30)
    assert proc.returncode == ExitCode.USAGE
    assert "CHAOS_PRODUCTION_MARKERS" in one_line(proc.stderr)
    nothing_started(state_dir)


@pytest.fixture
def running_agent(state_dir):
    """A real agent in the foreground, as `chaos-tui agent` runs it; stopped (and resumed
    first, should a test have stopped it) whatever the test did."""
    proc = subprocess.Popen(
        CHAOS_TUI + ["agent"],
        env=env_for(state_dir),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (state_dir / "agent" / "agent.json").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the agent did not start"
            time.sleep(0.1)
        yield proc
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        proc.wait(timeout=60)


def test_in_production_sandbox_down_stops_but_starts_no_agent(state_dir):
    status = run_cli(["sandbox", "status"], env_for(state_dir, ENV="prod"))
    assert status.returncode == 0 and status.stderr == ""  # reading is not refused
    leases = state_dir / "agent" / "leases"
    leases.mkdir(parents=True, mode=0o700)
    (leases / "left-1.json").write_text("{}")  # a dead agent's lease: healing needs an agent
    proc = run_cli(["sandbox", "down"], env_for(state_dir, ENV="prod"), timeout=60)
    assert proc.returncode == ExitCode.PRODUCTION_LOCKOUT
    assert "ENV='prod'" in one_line(proc.stderr)
    nothing_started(state_dir)
    assert (leases / "left-1.json").exists()


def test_an_agent_already_running_still_heals_in_production(state_dir, running_agent):
    proc = run_cli(["heal"], env_for(state_dir, ENVIRONMENT="production"), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "no live lease"


# -- issue 12, point 13: one line, never a traceback ------------------------------------------


@pytest.fixture
def read_only_state_dir(state_dir):
    """`chattr +i`: not even root may create anything inside (root ignores mode bits)."""
    if subprocess.run(["chattr", "+i", str(state_dir)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        yield state_dir
    finally:
        subprocess.run(["chattr", "-i", str(state_dir)], check=True)


@pytest.mark.parametrize("args", [["agent"], ["heal"]])
def test_a_read_only_state_dir_is_one_line(read_only_state_dir, args):
    proc = run_cli(args, env_for(read_only_state_dir), timeout=60)
    assert proc.returncode == ExitCode.ERROR
    assert f"{read_only_state_dir}/agent" in one_line(proc.stderr)
    nothing_started(read_only_state_dir)


def test_leases_on_a_read_only_state_dir_just_lists(read_only_state_dir):
    proc = run_cli(["leases"], env_for(read_only_state_dir), timeout=60)
    assert (proc.returncode, proc.stdout.strip(), proc.stderr) == (0, "no live lease", "")


@pytest.mark.parametrize("token", ["missing", "dangling symlink"])
def test_agent_status_without_a_readable_token(state_dir, running_agent, token):
    path = state_dir / "agent" / "token"
    saved = path.read_bytes()
    path.unlink()
    if token == "dangling symlink":
        path.symlink_to(state_dir / "nowhere")
    try:
        proc = run_cli(["agent", "status"], env_for(state_dir), timeout=60)
    finally:
        path.unlink(missing_ok=True)
        path.write_bytes(saved)
        path.chmod(0o600)
    # missing: 5 (the agent cannot be asked); a link: 2 (the state dir check refuses links)
    assert proc.returncode in (ExitCode.ERROR, ExitCode.USAGE)
    assert "token" in one_line(proc.stderr)


@pytest.mark.parametrize("args", [["agent", "status"], ["leases"]])
def test_a_hung_agent_is_one_line_within_seconds(state_dir, running_agent, args):
    running_agent.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        proc = run_cli(args, env_for(state_dir), timeout=40)  # main waited 71 s, then a traceback
        took = time.monotonic() - started
    finally:
        running_agent.send_signal(signal.SIGCONT)
    assert proc.returncode == ExitCode.ERROR
    assert f"kill -CONT {running_agent.pid}" in one_line(proc.stderr)
    assert took < 15, f"took {took:.1f}s"  # 5 s of patience plus start-up; measured 5.9 s


@pytest.mark.parametrize(
    "variable", ["CHAOS_AGENT", "CHAOS_PLATFORM", "CHAOS_SANDBOX", "CHAOS_DOCKER"]
)
def test_bad_json_in_a_settings_group_is_one_line(state_dir, variable):
    proc = run_cli(["agent", "status"], env_for(state_dir, **{variable: "{not json"}))
    assert proc.returncode == ExitCode.USAGE
    assert f"bad setting {variable}: not valid JSON" in one_line(proc.stderr)


def test_a_dangling_token_symlink_is_one_line(state_dir):
    (state_dir / "agent").mkdir(mode=0o700)
    (state_dir / "agent" / "token").symlink_to(state_dir / "nowhere")
    proc = run_cli(["agent"], env_for(state_dir), timeout=30)
    assert proc.returncode != 0
    assert "token" in one_line(proc.stderr)
    nothing_started(state_dir)


def test_sandbox_down_says_which_leftover_heals_failed(state_dir):
    """Three leases of a dead agent that no injector can heal (a kind this version does not
    know): the agent logged it, and `sandbox down` exited 0; now it names each and exits 4."""
    leases = state_dir / "agent" / "leases"
    leases.mkdir(parents=True, mode=0o700)
    ids = ["left-1", "left-2", "left-3"]
    for lease_id in ids:
        (leases / f"{lease_id}.json").write_text(
            json.dumps(
                {
                    "id": lease_id,
                    "kind": "retired.kind",
                    "ttl_s": 5,
                    "created_at": 1.0,
                    "expires_at": 2.0,
                    "state": "applied",
                }
            )
        )
    proc = run_cli(["sandbox", "down"], env_for(state_dir), timeout=120)
    assert proc.returncode == ExitCode.HEAL_FAILED, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()  # one line per lease that is still broken
    assert [i for i in ids for line in lines if i in line and "heal FAILED" in line] == ids
    assert len(lines) == 3 and proc.stdout.strip() == "stopped: agent"
    nothing_started(state_dir)  # the agent that tried is gone again


def test_unknown_chaos_variables_are_named(state_dir):
    proc = run_cli(["agent", "status"], env_for(state_dir, CHAOS_PROBE_HZ="oops"))
    assert proc.returncode == 0 and proc.stdout.strip() == "no agent running"
    assert one_line(proc.stderr) == (
        "chaos-tui: warning: unknown setting CHAOS_PROBE_HZ (did you mean CHAOS_PROBE_RATE_HZ?)"
    )


def test_variables_the_tool_reads_are_not_warned_about(state_dir):
    env = env_for(
        state_dir,
        CHAOS_TESTBED="1",
        CHAOS_TESTBED_IMAGE="x",
        CHAOS_NATS_IMAGE="x",
        CHAOS_AGENT__PORT="0",
        CHAOS_ENVIRONMENT="dev",
        CHAOS_NATS_A_URL="nats://x:1",
        CHAOS_PRODUCTION_MARKERS="live",
    )
    proc = run_cli(["agent", "status"], env)
    assert (proc.returncode, proc.stderr) == (0, "")


# Files in the state dir that no run or agent of ours wrote (torn by a crash, edited by
# hand, another tool's): each used to end `chaos-tui leases` (and every other command, a
# headless run too, since each reports killed runs first) in a traceback.
DAMAGED = {
    "run record that is a list": {"runs/a.json": "[]"},
    "run record without its run id": {"runs/a.json": "{}"},
    "run record without a scenario": {"runs/x.json": '{"pid": 999999, "run_id": "x"}'},
    "run records with a text start time": {
        "runs/x.json": '{"pid":999999,"run_id":"x","scenario":"s","started_at":"z"}',
        "runs/y.json": '{"pid":999998,"run_id":"y","scenario":"s","started_at":1}',
    },
    "history lines that are not records": {
        "runs/x.json": '{"pid":999999,"run_id":"x","scenario":"s","started_at":1}',
        "agent/history.jsonl": '5\n[1]\n{"run_id":"x","id":"q","ended_at":"soon"}\n',
    },
    "lease file that is a list": {
        "runs/x.json": '{"pid":999999,"run_id":"x","scenario":"s","started_at":1}',
        "agent/leases/q.json": "[]",
    },
    "agent.json without a pid": {"agent/agent.json": "{}"},
    "agent.json that is a list": {"agent/agent.json": "[1]"},
    "run id that climbs out of runs/": {  # its report used to be written to /tmp
        "runs/a.json": '{"pid":999999,"run_id":"../../ESCAPED","scenario":"s","started_at":1}'
    },
}


@pytest.mark.parametrize("files", DAMAGED.values(), ids=DAMAGED.keys())
def test_damaged_state_files_are_no_traceback(state_dir, files):
    escaped = state_dir.parent / f"{state_dir.name}.killed.json"
    for name, text in files.items():
        path = state_dir / name
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.write_text(text.replace("ESCAPED", state_dir.name))
    done = run_cli(["leases"], env_for(state_dir), timeout=60)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0 and "no live lease" in done.stdout, done.stdout + done.stderr
    assert not escaped.exists(), "a report was written outside the state dir"


def test_heal_says_failed_when_a_lease_file_stays_unhealed(state_dir):
    """A torn lease file (a crash mid-write, by hand) cannot be healed by any agent: `heal`
    said "heal FAILED" for it and then exited 0, so a script took the fault as gone."""
    leases = state_dir / "agent" / "leases"
    leases.mkdir(mode=0o700, parents=True)
    (leases / "torn.json").write_text('{"id": "torn", "kind": "sandbox.pa')
    done = run_cli(["heal"], env_for(state_dir), timeout=60)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == ExitCode.HEAL_FAILED, done.stdout + done.stderr
    assert "lease torn: heal FAILED" in done.stdout + done.stderr


def test_a_runs_options_before_a_command_and_one_file_for_two_outputs_are_refused(state_dir):
    """`chaos-tui --junit j.xml results` would write nothing and say nothing; `--junit` and
    `--output` on one file would keep only the JUnit XML there: both refused, nothing run."""
    env = env_for(state_dir)
    done = run_cli(["--junit", "j.xml", "--fail-on-regression", "results"], env)
    assert done.returncode == ExitCode.USAGE
    assert done.stderr == (
        "chaos-tui: --junit and --fail-on-regression go with a run, not with `results`\n"
    )
    same = str(state_dir.parent / "same.xml")
    args = ["--headless", "--scenario", "opa_restart", "--junit", same, "--output", same]
    done = run_cli(args, env)
    assert done.returncode == ExitCode.USAGE
    assert done.stderr == f"chaos-tui: --junit {same} is also --output's file: give each its own\n"
    assert not (state_dir / "sandbox.json").exists()
