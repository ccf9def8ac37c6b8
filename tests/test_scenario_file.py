"""Scenario files (issue 14, first slice): `validate`, `list --file` and `init`, run as a user
would. A bad file is one line per problem, each with FILE:LINE:COL and the key path, exit 2,
and nothing started."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from chaos_tui.core.exit_codes import ExitCode
from chaos_tui.scenario_file.loader import ScenarioFileError, load_text
from tests.conftest import CHAOS_TUI, env_for, make_state_dir, run_cli

# The issue's example, as written there.
GOOD = """\
version: 1
safety:
  environment_check: true        # the production lockout (always on; false is an error)
  require_explicit_enable: true  # --enable-chaos or CHAOS_ENABLED=true for anything but the sandbox
scenarios:
  checkout_crash:
    hypothesis: "Checkout is back within 10 s of a crash and keeps its p95 under 300 ms after"
    steady_state:
      - http_200_from: http://127.0.0.1:8080/health
      - tcp_open: 127.0.0.1:5432
    load:
      - http_requests: {url: http://127.0.0.1:8080/checkout, method: POST, rate_per_s: 20}
    actions:
      - type: kill_process
        target: {listening_on: 8080}     # or {pid_file: /run/checkout.pid}
        duration_seconds: 3
        restart: "systemctl start checkout"   # optional: the heal; else its supervisor restarts it
    validation:
      - http_recovery_time_max_seconds: 10
      - error_rate_max: {probe: checkout, max: 0.5}
    cleanup:
      - verify_steady_state
"""

CHECKOUT = "scenarios.checkout_crash"


def broken(old: str, new: str) -> str:
    assert GOOD.count(old) == 1, old
    return GOOD.replace(old, new)


@pytest.fixture
def state_dir():
    path = make_state_dir("file")
    try:
        yield path
        # Reading a file starts nothing: no sandbox, no agent.
        assert not (path / "sandbox.json").exists(), "the sandbox was started"
        assert not (path / "agent" / "agent.json").exists(), "an agent was started"
    finally:
        shutil.rmtree(path, ignore_errors=True)


def validate(state_dir, text: str | None, name: str = "chaos.yaml"):
    path = state_dir / name
    if text is not None:
        path.write_text(text)
    return path, run_cli(["validate", str(path)], env_for(state_dir), timeout=60)


def error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert all(line.startswith("chaos-tui: ") for line in lines), stderr
    return [line.removeprefix("chaos-tui: ") for line in lines]


def test_the_issues_example_validates(state_dir):
    _, done = validate(state_dir, GOOD)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "checkout_crash: 2 probes, 1 action, hold 3 s\n"
    assert done.stderr == ""


# (file text, "LINE:COL: key.path: message start"): each must be the one line for its file.
BROKEN = {
    "yaml syntax": (
        broken("      - tcp_open", "     - tcp_open"),
        "10:6: YAML syntax: while parsing a block mapping; expected <block end>",
    ),
    "unknown top-level key": (
        broken("safety:", "saftey:"),
        "2:1: saftey: unknown key 'saftey' (did you mean 'safety'?)",
    ),
    "unknown scenario key": (
        broken("    cleanup:", "    clean_up:"),
        f"21:5: {CHECKOUT}.clean_up: unknown key 'clean_up' (did you mean 'cleanup'?)",
    ),
    "unknown action type": (
        broken("type: kill_process", "type: kill_proces"),
        f"14:15: {CHECKOUT}.actions[0].type: unknown action type 'kill_proces' (did you mean "
        "'kill_process'?); valid types: kill_process, terminate_process, pause_process, "
        "kill_container, stop_container, pause_container, restart_container, "
        "network_partition, latency, bandwidth, timeout, reset_peer, slicer, limit_data, down",
    ),
    "string for a duration": (
        broken("duration_seconds: 3", 'duration_seconds: "3s"'),
        f"16:27: {CHECKOUT}.actions[0].duration_seconds: Input should be a valid number "
        "(found the string '3s')",
    ),
    "negative duration": (
        broken("duration_seconds: 3", "duration_seconds: -3"),
        f"16:27: {CHECKOUT}.actions[0].duration_seconds: Input should be greater than 0",
    ),
    "absurd duration": (
        broken("duration_seconds: 3", "duration_seconds: 86400"),
        f"16:27: {CHECKOUT}.actions[0].duration_seconds: Input should be less than or equal "
        "to 3600",
    ),
    "ttl shorter than the hold": (
        broken("duration_seconds: 3\n", "duration_seconds: 3\n        ttl_seconds: 1\n"),
        f"17:22: {CHECKOUT}.actions[0].ttl_seconds: ttl_seconds (1) is shorter than "
        "duration_seconds (3)",
    ),
    "a URL that is not a URL": (
        broken("http_200_from: http://127.0.0.1:8080/health", "http_200_from: 127.0.0.1/health"),
        f"9:24: {CHECKOUT}.steady_state[0].http_200_from: '127.0.0.1/health' is not a URL",
    ),
    "HOST:PORT without a port": (
        broken("tcp_open: 127.0.0.1:5432", "tcp_open: 127.0.0.1"),
        f"10:19: {CHECKOUT}.steady_state[1].tcp_open: '127.0.0.1' is not HOST:PORT",
    ),
    "port 70000": (
        broken("{listening_on: 8080}", "{listening_on: 70000}"),
        f"15:32: {CHECKOUT}.actions[0].target.listening_on: Input should be less than or "
        "equal to 65535",
    ),
    "port 70000 in HOST:PORT": (
        broken("tcp_open: 127.0.0.1:5432", "tcp_open: 127.0.0.1:70000"),
        f"10:19: {CHECKOUT}.steady_state[1].tcp_open: '127.0.0.1:70000': port '70000' is not "
        "a port (1-65535)",
    ),
    "environment_check false": (
        broken("environment_check: true", "environment_check: false"),
        "3:22: safety.environment_check: the production lockout is always on",
    ),
    "version 2": (
        broken("version: 1", "version: 2"),
        "1:10: version: unsupported version 2: this chaos-tui reads version 1",
    ),
    "validation naming a probe that does not exist": (
        broken("{probe: checkout,", "{probe: checkuot,"),
        f"20:33: {CHECKOUT}.validation[1].error_rate_max.probe: no probe named 'checkuot' in "
        "this scenario (probes and loads: health, tcp_5432, checkout)",
    ),
    "missing hypothesis": (
        broken(
            '    hypothesis: "Checkout is back within 10 s of a crash and keeps its p95 under 300 '
            'ms after"\n',
            "",
        ),
        f"7:5: {CHECKOUT}.hypothesis: hypothesis is required",
    ),
    "an undefined variable": (
        broken('restart: "systemctl start checkout"', 'restart: "systemctl start ${unit}"'),
        f"17:18: {CHECKOUT}.actions[0].restart: undefined variable ${{unit}} "
        "(variables: none declared)",
    ),
    "unknown probe kind": (
        broken("- tcp_open:", "- tcp_opn:"),
        f"10:9: {CHECKOUT}.steady_state[1]: unknown steady_state probe 'tcp_opn' (did you "
        "mean 'tcp_open'?)",
    ),
    "a key given twice": (
        broken("duration_seconds: 3\n", "duration_seconds: 3\n        duration_seconds: 4\n"),
        f"17:9: {CHECKOUT}.actions[0].duration_seconds: 'duration_seconds' is given twice",
    ),
    "a process target naming both": (
        broken("{listening_on: 8080}", "{listening_on: 8080, pid_file: /run/c.pid}"),
        f"15:17: {CHECKOUT}.actions[0].target: a process target takes exactly one of "
        "listening_on, pid_file",
    ),
    "the action kind written as a key": (
        broken("- type: kill_process\n", "- kill_process: {}\n"),
        f"14:9: {CHECKOUT}.actions[0]: an action needs `type:`",
    ),
    "two probe kinds in one entry": (
        broken("      - tcp_open: 127.0.0.1:5432\n", "        tcp_open: 127.0.0.1:5432\n"),
        f"10:9: {CHECKOUT}.steady_state[0].tcp_open: one kind per entry: 'tcp_open' is a second "
        "one",
    ),
    "a scenario name that is not a name": (
        broken("  checkout_crash:", '  "checkout crash":'),
        "6:3: scenarios.checkout crash: 'checkout crash' is not a name",
    ),
    "an empty command": (
        broken('restart: "systemctl start checkout"', 'restart: ""'),
        f"17:18: {CHECKOUT}.actions[0].restart: must not be empty",
    ),
    "a file that is not a mapping": ("- a\n- b\n", "1:1: expected a mapping (version, safety, "),
    "restart on a pause": (
        broken("type: kill_process", "type: pause_process"),
        f"14:9: {CHECKOUT}.actions[0]: pause_process resumes the process (SIGCONT) at the heal: "
        "it takes no restart",
    ),
    "a load where only a probe will do": (
        broken(
            "http_recovery_time_max_seconds: 10",
            "recovery_time_max_seconds: {probe: checkout, max: 5}",
        ),
        f"19:44: {CHECKOUT}.validation[0].recovery_time_max_seconds.probe: no probe named "
        "'checkout' in this scenario (probes: health, tcp_5432)",
    ),
}


@pytest.mark.parametrize("text, expected", BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_file_is_one_line_with_its_position_and_key(state_dir, text, expected):
    path, done = validate(state_dir, text)
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert done.stdout == ""
    lines = error_lines(done.stderr)
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"{path}:{expected}"), f"{lines[0]}\nwanted {path}:{expected}"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
        (None, "no such file"),
    ],
    ids=["empty", "only a comment", "missing"],
)
def test_an_empty_or_missing_file_is_one_line(state_dir, text, expected):
    path, done = validate(state_dir, text)
    assert done.returncode == ExitCode.USAGE
    assert error_lines(done.stderr) == [
        f"{path}: {expected}"
        + ("; `chaos-tui init` writes an example" if "empty" in expected else "")
    ]


def test_every_error_is_reported_at_once_in_file_order(state_dir):
    text = (
        GOOD.replace("version: 1", "version: 3")
        .replace("tcp_open: 127.0.0.1:5432", "tcp_open: localhost")
        .replace("duration_seconds: 3", "duration_seconds: 0")
        .replace("{probe: checkout,", "{probe: nothing,")
        .replace("    cleanup:", "    cleanups:")
    )
    path, done = validate(state_dir, text)
    assert done.returncode == ExitCode.USAGE
    lines = error_lines(done.stderr)
    assert [line.split(": ")[0].removeprefix(f"{path}:") for line in lines] == [
        "1:10",
        "10:19",
        "16:27",
        "20:33",
        "21:5",
    ], done.stderr
    assert f"{CHECKOUT}.cleanups: unknown key 'cleanups' (did you mean 'cleanup'?)" in lines[-1]


def test_init_writes_a_file_that_validates_as_written(state_dir):
    env = env_for(state_dir)
    path = state_dir / "chaos-scenarios.yaml"
    done = run_cli(["init", str(path)], env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert path.read_text().count("#") > 10  # commented
    checked = run_cli(["validate", str(path)], env, timeout=60)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == "checkout_crash: 2 probes, 1 action, hold 3 s\n"


def test_init_defaults_to_chaos_scenarios_yaml_and_never_overwrites(state_dir):
    env = env_for(state_dir)

    def init():  # in the user's directory, no path given
        return subprocess.run(
            [*CHAOS_TUI, "init"], cwd=state_dir, env=env, capture_output=True, text=True, timeout=60
        )

    made = init()
    assert made.returncode == 0, made.stderr
    path = state_dir / "chaos-scenarios.yaml"
    path.write_text("mine\n")
    again = init()
    assert again.returncode == ExitCode.USAGE
    assert error_lines(again.stderr) == [
        "chaos-scenarios.yaml exists; not overwriting it (give another path)"
    ]
    assert path.read_text() == "mine\n"


def test_list_shows_file_scenarios_beside_the_built_ins(state_dir):
    path = state_dir / "mine.yaml"
    path.write_text(GOOD)
    env = env_for(state_dir)
    done = run_cli(["list", "--file", str(path)], env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "postgres_restart_outbox  (profile chaos-outbox, about 13.0 s a run)" in done.stdout
    assert f"checkout_crash  (from {path}, about " in done.stdout
    rows = json.loads(run_cli(["list", "--json", "--file", str(path)], env, timeout=60).stdout)
    mine = [row for row in rows if row["source"] == str(path)]
    assert [row["name"] for row in mine] == ["checkout_crash"]
    assert mine[0]["probes"] == ["health", "tcp_5432"]
    assert mine[0]["actions"] == ["kill_process"]
    assert {row["source"] for row in rows} == {"built-in", str(path)}


def test_list_with_a_bad_file_is_its_errors(state_dir):
    path = state_dir / "mine.yaml"
    path.write_text(broken("safety:", "saftey:"))
    done = run_cli(["list", "--file", str(path)], env_for(state_dir), timeout=60)
    assert done.returncode == ExitCode.USAGE
    assert error_lines(done.stderr) == [
        f"{path}:2:1: saftey: unknown key 'saftey' (did you mean 'safety'?)"
    ]


# In process: what the next slice builds on.


def test_variables_fill_strings_and_keep_a_whole_values_type():
    text = GOOD.replace("version: 1\n", "version: 1\nvariables:\n  port: 8080\n").replace(
        "{listening_on: 8080}", '{listening_on: "${port}"}'
    )
    parsed = load_text(text.replace("/health", "/health-${port}"), "f.yaml")
    scenario = parsed.scenarios["checkout_crash"]
    assert scenario.actions[0].target.listening_on == 8080
    assert scenario.probe_names == ["health-8080", "tcp_5432"]
    # --set gives text: it takes the declared default's type.
    overridden = load_text(text, "f.yaml", overrides={"port": "9090"})
    assert overridden.scenarios["checkout_crash"].actions[0].target.listening_on == 9090
    with pytest.raises(ScenarioFileError) as caught:
        load_text(
            text.replace("duration_seconds: 3", "duration_seconds: -3"),
            "f.yaml",
            overrides={"port": "eighty", "prot": "1"},
        )
    # A bad --set does not hide what is wrong in the file.
    assert caught.value.lines == [
        "f.yaml: --set port=eighty: port is a number (its default is 8080)",
        "f.yaml: --set prot=1: no variable 'prot' is declared (variables: port)",
        "f.yaml:18:27: scenarios.checkout_crash.actions[0].duration_seconds: "
        "Input should be greater than 0",
    ]


def test_the_seeds_keys_validate():
    seed = """\
safety:
  environment_check: true
  require_explicit_enable: true
isolation:
  docker_network: chaos-net
  docker_profile: chaos
scenarios:
  nats_partition_mesh:
    hypothesis: "System recovers from NATS network partition within 30s"
    steady_state:
      - http_200_from: http://localhost:8000/health
      - nats_messages_flowing: true
    actions:
      - type: network_partition
        target: nats
        duration_seconds: 15
    validation:
      - http_recovery_time_max_seconds: 30
      - nats_message_redelivery: true
      - no_data_loss: true
    cleanup:
      - restore_network
      - verify_steady_state
  postgres_restart_outbox:
    hypothesis: "Outbox pattern preserves events during DB restart"
    steady_state:
      - db_connection: true
      - outbox_queue_size_lt: 1000
    actions:
      - type: restart_container
        target: postgres
        graceful: false
    validation:
      - no_event_loss: true
      - outbox_processing_resumes_within_seconds: 10
    cleanup:
      - verify_db_healthy
      - verify_outbox_drained
  opa_restart:
    hypothesis: "Policy decisions fail-closed during OPA restart"
    steady_state:
      - opa_health: true
      - policy_decisions_success_rate_gt: 0.99
    actions:
      - type: restart_container
        target: opa
        duration_seconds: 5
    validation:
      - decisions_during_outage: deny_all
      - recovery_time_max_seconds: 10
    cleanup:
      - verify_opa_policies_loaded
"""
    parsed = load_text(seed, "seed.yaml")
    assert list(parsed.scenarios) == [
        "nats_partition_mesh",
        "postgres_restart_outbox",
        "opa_restart",
    ]
    assert parsed.scenarios["postgres_restart_outbox"].hold_s is None  # the run's default hold
    with pytest.raises(ScenarioFileError) as caught:
        load_text(seed.replace("deny_all", "allow_all"), "seed.yaml")
    assert caught.value.lines[0].startswith(
        "seed.yaml:49:34: scenarios.opa_restart.validation[0].decisions_during_outage:"
    )


def test_validate_loads_neither_the_built_ins_nor_the_sandbox_nor_textual(state_dir):
    path = state_dir / "mine.yaml"
    path.write_text(GOOD)
    done = subprocess.run(
        [*CHAOS_TUI[:1], "-X", "importtime", *CHAOS_TUI[1:], "validate", str(path)],
        env=env_for(state_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    loaded = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "chaos_tui.scenario_file.loader" in loaded  # the measurement works
    for heavy in ("textual", "chaos_tui.scenarios", "chaos_tui.sandbox", "chaos_tui.agent.server"):
        assert heavy not in loaded, heavy


def test_the_readme_example_validates():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## Your own system", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert block == GOOD
    assert list(load_text(block, "README.md").scenarios) == ["checkout_crash"]
