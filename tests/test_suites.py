"""Suites (issue 19): several scenarios in one go, one table, one combined JSON, the worst exit
code; repeats with their trend; bad suites refused before anything starts. The runs are real
sandbox runs with short windows; the drift rule is checked on records built by hand, since a
real trend cannot be ordered up."""

from __future__ import annotations

import json
import signal
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from chaos_tui.core.exit_codes import ExitCode
from chaos_tui.core.suite import Figure, SuiteRun, drift, worst_exit_code
from chaos_tui.suite.load import BUILTIN_SUITES, load_suite
from chaos_tui.suite.model import parse_duration
from tests.cli_support import Watched
from tests.conftest import env_for, run_cli

SHORT = ["--set", "warmup_s=1", "--set", "hold_s=2", "--set", "recover_s=2"]


# --- the suite file, the rules: no sandbox ---------------------------------------------------


def test_durations_read_as_people_write_them():
    assert parse_duration("90s") == 90
    assert parse_duration("1h30m") == 5400
    assert parse_duration("500ms") == 0.5
    assert parse_duration(12) == 12
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("10 minutes")


def test_a_bad_suite_file_names_every_problem_at_its_line(tmp_path, fresh_state_dir):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        textwrap.dedent(
            """\
            name: gameday
            repeat: 0
            pause: soon
            on_failure: panic
            runz: []
            """
        )
    )
    proc = run_cli(["--headless", "--suite", str(bad)], env_for(fresh_state_dir))
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert f"{bad}:1:1: runs: runs is required" in proc.stderr
    assert any(line.endswith("(did you mean 'runs'?)") and ":5:1:" in line for line in lines)
    assert f"{bad}:2:9: repeat:" in proc.stderr
    assert f"{bad}:3:8: pause: 'soon' is not a duration" in proc.stderr
    assert f"{bad}:4:13: on_failure:" in proc.stderr
    assert not (fresh_state_dir / "results").exists()  # nothing ran
    assert not (fresh_state_dir / "sandbox").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--suite", "nope"], "unknown suite 'nope': no such file, and not built in"),
        (["--scenario", "opa_restart,,x"], "an empty name in the list"),
        (["--scenario", "opa_restart,nope"], "unknown scenario 'nope'"),
        (["--suite", "queue", "--preset", "plan"], "queue_latency_drop has no preset 'plan'"),
        (
            ["--scenario", "opa_restart,postgres_restart_outbox", "--set", "zzz=1"],
            "--set zzz=1: no scenario of the suite has it",
        ),
        (
            ["--scenario", "opa_restart,postgres_restart_outbox", "--set", "hold_s=100"],
            "opa_restart: hold_s must be between 0 and 60",
        ),
        (["--suite", "platform", "--scenario", "opa_restart"], "give --suite or --scenario"),
        (["--scenario", "opa_restart", "--repeat", "0"], "--repeat must be between 1 and"),
        (["--scenario", "opa_restart", "--stop-on-failure"], "--stop-on-failure goes with a suite"),
    ],
)
def test_bad_suite_input_is_one_line_and_starts_nothing(args, words, fresh_state_dir):
    """One line per problem: a step's own problem is said for each step that has it."""
    proc = run_cli(["--headless", *args], env_for(fresh_state_dir))
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    assert words in proc.stderr
    steps = {"queue": 3, "opa_restart,postgres_restart_outbox": 2}
    each = "preset" in words or "hold_s" in words
    expected = next((n for k, n in steps.items() if k in args), 1) if each else 1
    assert len(proc.stderr.strip().splitlines()) == expected, proc.stderr
    assert not (fresh_state_dir / "sandbox").exists()


def test_a_suite_in_the_console_without_a_terminal_says_to_run_it_headless(fresh_state_dir):
    proc = run_cli(["--suite", "platform"], env_for(fresh_state_dir))
    assert proc.returncode == ExitCode.USAGE
    assert "without one use --headless --suite NAME" in proc.stderr


def test_the_platform_suite_dry_run_shows_the_plans_hold_times(fresh_state_dir):
    proc = run_cli(["--dry-run", "--suite", "platform"], env_for(fresh_state_dir))
    assert proc.returncode == 0, proc.stderr
    head, _, rest = proc.stdout.partition("\n")
    assert head.startswith("suite platform: postgres_restart_outbox → opa_restart")
    plans = rest.split(" (dry run: nothing injected)")
    assert [p.splitlines()[-1].split(" on target")[0] for p in plans[:-1]] == [
        "postgres_restart_outbox",
        "opa_restart",
        "openobserve_stall",
        "nats_partition_mesh",
    ]
    assert "hold_s=5 (default 3)" in plans[2]  # opa_restart at the plan's 5 s
    assert "hold_s=15 (default 5)" in plans[4]  # the partition at the plan's 15 s


def test_builtin_suites_read_as_files_do():
    for name in BUILTIN_SUITES:
        suite = load_suite(name)
        assert suite.name == name and suite.spec.runs


def _run(scenario: str, outcome: str, recover: float, code: int = 0) -> SuiteRun:
    figure = Figure(label="time to recover", unit="s", better="lower", value=recover)
    return SuiteRun(
        index=1,
        repetition=1,
        scenario=scenario,
        outcome=outcome,
        exit_code=code,
        started_at=0.0,
        duration_s=10.0,
        metrics={"time_to_recover_s": figure},
    )


def test_drift_flags_a_recovery_that_keeps_getting_slower_not_noise():
    slower = [_run("opa_restart", "pass", s) for s in (1.0, 2.0, 3.5, 5.0)]
    (trend,) = drift(slower)
    assert trend.worsening and trend.values == [1.0, 2.0, 3.5, 5.0]
    assert trend.slope_per_run == pytest.approx(1.35)

    noisy = [_run("opa_restart", "pass", s) for s in (1.0, 1.4, 0.9, 1.3)]  # under the 1 s floor
    assert not drift(noisy)[0].worsening
    faster = [_run("opa_restart", "pass", s) for s in (5.0, 3.5, 2.0, 1.0)]
    assert not drift(faster)[0].worsening
    two = [_run("opa_restart", "pass", s) for s in (1.0, 9.0)]  # two points: a line through noise
    assert not drift(two)[0].worsening
    # A failed run measures something else: left out of the trend.
    mixed = slower[:2] + [_run("opa_restart", "fail", 60.0, 1)] + slower[2:]
    assert drift(mixed)[0].values == [1.0, 2.0, 3.5, 5.0]


def test_the_worst_exit_code_wins():
    assert worst_exit_code([]) == ExitCode.PASS
    assert worst_exit_code([0, 3, 1, 0]) == ExitCode.FAIL
    assert worst_exit_code([1, 130]) == ExitCode.INTERRUPTED
    assert worst_exit_code([130, 4, 1]) == ExitCode.HEAL_FAILED
    assert worst_exit_code([0, 5, 3]) == ExitCode.ERROR


# --- real runs on the sandbox ----------------------------------------------------------------


@pytest.mark.slow
def test_two_scenarios_one_table_then_a_failing_one_goes_on(fresh_state_dir, tmp_path):
    """The issue's acceptance: both run, one table, exit 0; with the fail-open gateway the
    first fails (exit 1) and the second still runs; --stop-on-failure stops there."""
    both = ["--headless", "--scenario", "opa_restart,postgres_restart_outbox", *SHORT]
    out = tmp_path / "suite.json"
    junit = tmp_path / "suite.xml"
    env = env_for(fresh_state_dir)
    proc = run_cli([*both, "--output", str(out), "--junit", str(junit)], env, timeout=300)
    assert proc.returncode == ExitCode.PASS, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [(r["scenario"], r["outcome"]) for r in report["runs"]] == [
        ("opa_restart", "pass"),
        ("postgres_restart_outbox", "pass"),
    ]
    assert report["exit_code"] == 0 and report["outcome"] == "pass"
    for run in report["runs"]:  # each run saved as any run is
        saved = json.loads(Path(run["saved"]).read_text())
        assert saved["run_id"] == run["run_id"] and saved["parameters"]["hold_s"] == 2
    verdict = "suite gameday (opa_restart, postgres_restart_outbox): PASS 2 of 2 runs passed"
    assert proc.stderr.count(verdict) == 1
    assert proc.stderr.count("│ opa_restart") == 1  # one table, a row per run
    assert list((fresh_state_dir / "suites").glob("*.json"))
    suites = ET.parse(junit).getroot()
    assert suites.tag == "testsuites" and [s.get("name") for s in suites] == [
        "opa_restart (run 1)",
        "postgres_restart_outbox (run 2)",
    ]

    fail_open = env_for(fresh_state_dir, CHAOS_SANDBOX__GATEWAY_TEST_FAIL_OPEN="true")
    run_cli(["sandbox", "down"], env)  # the gateway restarts in its test mode
    proc = run_cli([*both, "--output", str(out)], fail_open, timeout=300)
    assert proc.returncode == ExitCode.FAIL, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [(r["scenario"], r["outcome"]) for r in report["runs"]] == [
        ("opa_restart", "fail"),
        ("postgres_restart_outbox", "pass"),
    ]
    assert "1 of 2 runs passed" in proc.stderr

    proc = run_cli([*both, "--output", str(out), "--stop-on-failure"], fail_open, timeout=300)
    assert proc.returncode == ExitCode.FAIL, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [r["scenario"] for r in report["runs"]] == ["opa_restart"]
    assert "did not pass" in report["stopped"]


@pytest.mark.slow
def test_a_suite_file_repeated_three_times_reports_its_trend(fresh_state_dir, tmp_path):
    suite = tmp_path / "soak.yaml"
    suite.write_text(
        textwrap.dedent(
            """\
            name: opa-soak
            repeat: 3
            pause: {between: [0.2s, 0.5s], seed: 7}
            runs:
              - scenario: opa_restart
                set: {warmup_s: 1, hold_s: 2, recover_s: 2}
            """
        )
    )
    out = tmp_path / "soak.json"
    proc = run_cli(
        ["--headless", "--suite", str(suite), "--output", str(out)],
        env_for(fresh_state_dir),
        timeout=300,
    )
    assert proc.returncode == ExitCode.PASS, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [(r["index"], r["repetition"]) for r in report["runs"]] == [(1, 1), (2, 2), (3, 3)]
    (trend,) = [d for d in report["drift"] if d["name"] == "time_to_recover_s"]
    measured = [r["metrics"]["time_to_recover_s"]["value"] for r in report["runs"]]
    assert trend["values"] == measured and len(measured) == 3
    assert "trend opa_restart time to recover" in proc.stderr
    assert proc.stderr.count("pause ") == 2  # between runs, not after the last


@pytest.mark.slow
def test_a_signal_in_a_pause_ends_the_suite_at_once(fresh_state_dir, tmp_path):
    """SIGINT while the suite waits between runs: no further run, exit 130, the run kept."""
    suite = tmp_path / "slow.yaml"
    suite.write_text(
        "name: slow\npause: 10m\nruns:\n"
        "  - {scenario: opa_restart, set: {warmup_s: 1, hold_s: 2, recover_s: 2}}\n"
        "  - opa_restart\n"
    )
    watched = Watched(["--headless", "--suite", str(suite), "--json"], env_for(fresh_state_dir))
    watched.wait_for("pause 600 s before the next run", timeout=180)
    watched.proc.send_signal(signal.SIGINT)
    code = watched.finish(timeout=60)
    assert code == ExitCode.INTERRUPTED, watched.stderr[-3000:]
    report = json.loads(watched.stdout)
    assert [r["outcome"] for r in report["runs"]] == ["pass"]
    assert report["stopped"] == "SIGINT received" and report["outcome"] == "interrupted"
    assert "run 2/2" not in watched.stderr


@pytest.mark.slow
def test_a_signal_in_a_run_heals_it_and_no_further_run_starts(fresh_state_dir):
    watched = Watched(
        ["--headless", "--scenario", "opa_restart", "--repeat", "3", *SHORT, "--json"],
        env_for(fresh_state_dir),
    )
    watched.wait_for("run 2/3", timeout=180)
    watched.wait_for("inject", timeout=60)
    watched.proc.send_signal(signal.SIGINT)
    code = watched.finish(timeout=120)
    assert code == ExitCode.INTERRUPTED, watched.stderr[-3000:]
    report = json.loads(watched.stdout)
    assert [r["outcome"] for r in report["runs"]] == ["pass", "interrupted"]
    assert report["stopped"] == "SIGINT received" and report["exit_code"] == 130
    assert "run 3/3" not in watched.stderr
    assert all(r["heal_ok"] for r in report["runs"])


def _schedule(text: str):
    from chaos_tui.suite.load import read_suite
    from chaos_tui.suite.schedule import Schedule

    return Schedule(read_suite(text, "test.yaml"))


def _drain(schedule, code=ExitCode.PASS) -> list[tuple[int, int, float]]:
    order = []
    while (following := schedule.next()) is not None and len(order) < 50:
        schedule.starting(following)
        order.append((following.step, following.repetition, following.wait_s))
        schedule.ended(code, following.index)
    return order


def test_the_schedule_runs_the_list_repeat_times_with_its_pauses():
    order = _drain(_schedule("name: s\nrepeat: 2\npause: 3s\nruns: [a, {scenario: b, pause: 9}]\n"))
    # The pause before a run is the one after the run before it: the step's own, else the suite's.
    assert order == [(0, 1, 0.0), (1, 1, 3.0), (0, 2, 9.0), (1, 2, 3.0)]


def test_random_pauses_replay_from_their_seed_within_bounds():
    text = "name: s\nrepeat: 5\npause: {between: [1m, 2m], seed: 11}\nruns: [a]\n"
    first = [w for _, _, w in _drain(_schedule(text))][1:]
    assert first == [w for _, _, w in _drain(_schedule(text))][1:]
    assert len(set(first)) == 4 and all(60 <= w <= 120 for w in first)


def test_a_failure_stops_only_when_the_suite_says_so_a_failed_heal_always():
    assert len(_drain(_schedule("name: s\nruns: [a, b, c]\n"), ExitCode.FAIL)) == 3
    stopping = _schedule("name: s\non_failure: stop\nruns: [a, b, c]\n")
    assert len(_drain(stopping, ExitCode.FAIL)) == 1
    assert stopping.stopped == "on_failure: stop, and run 1 did not pass"
    healing = _schedule("name: s\nruns: [a, b, c]\n")
    assert len(_drain(healing, ExitCode.HEAL_FAILED)) == 1
    assert "a heal failed" in healing.stopped


def test_for_bounds_the_suite_by_time_and_every_counts_start_to_start():
    import time

    timed = _schedule("name: s\nfor: 0.3s\nruns: [a]\n")
    assert timed.total is None
    first = timed.next()
    timed.starting(first)
    time.sleep(0.35)
    assert timed.next() is None and timed.stopped == ""  # over, not stopped
    every = _schedule("name: s\nevery: 10s\nrepeat: 2\nruns: [a]\n")
    every.starting(every.next())
    time.sleep(0.2)
    wait = every.next().wait_s
    assert 9.5 < wait < 9.85


def test_the_table_says_none_for_a_probe_that_never_failed_and_why_a_run_did_not_pass():
    from chaos_tui.core.suite import suite_report
    from chaos_tui.suite_view import recovered_text, why_lines

    steady = _run("opa_restart", "pass", 0.0)  # recovered "in 0 s": it never failed
    slow = _run("opa_restart", "pass", 1.5)
    slow.metrics["outage_s"] = Figure(label="outage", unit="s", better="lower", value=2.0)
    assert recovered_text(steady) == "none" and recovered_text(slow) == "1.50 s"
    broken = _run("opa_restart", "error", 0.0, 5)
    broken.reason = "TargetError: docker: opa of compose project 'x' not running"
    report = suite_report(
        suite_id="s", name="s", description="", source="s", target="docker",
        started_at=0.0, runs=[steady, broken],
    )  # fmt: skip
    assert [line.plain for line in why_lines(report)] == [f"run 1 opa_restart: {broken.reason}"]


def test_chaos_scenario_names_the_run_when_no_flag_does(fresh_state_dir):
    """As the request's `CHAOS_SCENARIO=NAME just chaos` has it; --scenario still wins."""
    env = env_for(fresh_state_dir, CHAOS_SCENARIO="opa_restart")
    proc = run_cli(["--dry-run"], env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("opa_restart on target sandbox")
    proc = run_cli(["--dry-run", "--scenario", "postgres_restart_outbox"], env)
    assert proc.stdout.startswith("postgres_restart_outbox on target sandbox")
    listed = run_cli(["--dry-run"], env_for(fresh_state_dir, CHAOS_SCENARIO="opa_restart,nope"))
    assert listed.returncode == ExitCode.USAGE and "unknown scenario 'nope'" in listed.stderr
