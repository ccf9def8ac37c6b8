"""Baselines and regressions (issue 17): a run against the last passing runs of its scenario,
target and parameter set, or a pinned one.

The floors are checked on a recorded series (tests/data/postgres_restart_outbox_series.json:
ten real sandbox runs with the default parameters and one with --set down_s=8): no normal run
is flagged against the nine others, the down_s=8 run is (outage). Real CLI runs then check
--fail-on-regression against baselines made of result files written here."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from chaos_tui.core.baseline import compare, load_pins, pin_run
from chaos_tui.core.exit_codes import ExitCode
from chaos_tui.core.journal import save_result
from chaos_tui.core.model import FIRST_PASS, RecoveryMetrics, RunResult
from chaos_tui.core.regression import RegressionPolicy
from chaos_tui.core.report import comparison_facts, markdown_report
from chaos_tui.scenario_file.loader import ScenarioFileError, load_text
from chaos_tui.session import regression_policy
from chaos_tui.settings import Settings
from tests.conftest import run_cli
from tests.test_scenario_file import GOOD

SCENARIO = "postgres_restart_outbox"
SERIES = json.loads((Path(__file__).parent / "data" / f"{SCENARIO}_series.json").read_text())


def as_result(run: dict, **changes) -> RunResult:
    """A result file's worth of a recorded run (its recovery figures, parameters, outcome)."""
    fields = {
        "run_id": run["run_id"],
        "scenario": SCENARIO,
        "hypothesis": "recorded",
        "target": "sandbox",
        "outcome": run["outcome"],
        "started_at": run["started_at"],
        "finished_at": run["started_at"] + run["duration_s"],
        "duration_s": run["duration_s"],
        "probe_rate_hz": 10.0,
        "parameters": run["parameters"],
        "parameter_defaults": run["parameter_defaults"],
        "recovery": RecoveryMetrics(**run["recovery"]),
    }
    return RunResult(**(fields | changes))


@pytest.fixture
def results_dir(tmp_path) -> Path:
    folder = tmp_path / "results"
    for run in SERIES["normal"]:
        save_result(folder, as_result(run))
    return folder


def test_no_normal_run_is_flagged_against_the_nine_others(results_dir):
    for run in SERIES["normal"]:
        c = compare(as_result(run), results_dir)  # the run itself is left out of its baseline
        assert c.source == "recent" and len(c.runs) == 9 and run["run_id"] not in c.runs
        assert c.metrics and not c.regressions, (run["recovery"], c.regressions)


@pytest.mark.parametrize("series", range(3))
def test_no_normal_run_is_flagged_against_the_runs_before_it(tmp_path, series):
    """As runs come in a CI job: each one compared with those before it (a baseline once 5
    have passed). Thirty real runs with nothing changed: not one false alarm. The down_s=8
    run, after any of the three series, is flagged for its outage."""
    runs = ([SERIES["normal"]] + SERIES["more_normal"])[series]
    folder = tmp_path / "results"
    for i, run in enumerate(runs):
        c = compare(as_result(run), folder)
        assert (c.source == "recent") == (i >= 5), (i, c.note)
        assert not c.regressions, (i, [(m.name, m.value, m.limit) for m in c.regressions])
        save_result(folder, as_result(run))
    late = compare(as_result(SERIES["down_s_8"]), folder)
    assert "outage_s" in [m.name for m in late.regressions]


def test_the_down_s_8_run_is_flagged_for_its_outage_against_the_default_parameters(results_dir):
    result = as_result(SERIES["down_s_8"])
    assert result.parameters["hold_s"] == 8.0  # --set down_s=8 is stored under its new name
    c = compare(result, results_dir)
    # No run of its own parameter set: the scenario's default set is the baseline.
    assert c.source == "recent" and len(c.runs) == 10
    assert c.parameters_differ == {"hold_s": [3.0, 8.0]}
    assert [m.name for m in c.regressions] == ["outage_s"]
    outage = c.regressions[0]
    assert outage.threshold_pct == 20 and outage.noise == 2.5 and outage.floor == 1.0
    median, p95 = outage.baseline_median, outage.baseline_p95
    assert median is not None and p95 is not None and outage.limit is not None
    # The outage varies from run to run: its spread decides, not +20 % nor the floor.
    assert outage.limit == pytest.approx(median + 2.5 * (p95 - median), abs=1e-3)
    assert outage.limit > median * 1.2 and outage.limit > median + 1.0
    assert outage.value is not None and outage.value > outage.limit
    result.comparison = c
    facts = dict(comparison_facts(result))
    line = facts["REGRESSION outage (postgres)"]
    assert (
        "vs baseline median" in line
        and "limit" in line
        and "+20 %, 2.5x the spread, at least 1.00 s worse" in line
    )
    assert "hold_s 3.0 \u2192 8.0" in facts["baseline"]
    assert "REGRESSION outage (postgres)" in markdown_report(result)
    # The same outage, measured by its own parameter set's runs, is no regression.
    for i, run in enumerate(SERIES["normal"][:5]):
        again = as_result(SERIES["down_s_8"], run_id=f"eight{i}", started_at=run["started_at"])
        save_result(results_dir, again)
    c = compare(result, results_dir)
    assert len(c.runs) == 5 and not c.parameters_differ and not c.regressions


@pytest.mark.parametrize("outcome", ["error", "aborted", "interrupted"])
def test_a_run_with_no_verdict_is_not_compared(results_dir, outcome):
    """Its figures (none, or cut short) say nothing of recovery: never "nothing regressed"."""
    result = as_result(SERIES["normal"][0], run_id="broken", outcome=outcome)
    c = compare(result, results_dir)
    assert c.source == "none" and not c.metrics and not c.runs
    assert c.note == f"not compared: the run ended as {outcome}, with no verdict"
    result.comparison = c
    assert comparison_facts(result) == [("baseline", c.note)]


def test_a_steady_metric_is_caught_when_it_moves_however_noisy_the_others(results_dir):
    """Time to detect was 0-24 ms in all ten runs: a 2 s detect is a regression, though the
    outage's spread is seconds; 0.09 s -> 0.12 s is not (the floor)."""
    run = SERIES["normal"][0]
    slow = as_result(
        run,
        run_id="slowdetect",
        recovery=RecoveryMetrics(**(run["recovery"] | {"time_to_detect_s": 2.0})),
    )
    assert [m.name for m in compare(slow, results_dir).regressions] == ["time_to_detect_s"]
    fine = as_result(
        run,
        run_id="finedetect",
        recovery=RecoveryMetrics(**(run["recovery"] | {"time_to_detect_s": 0.12})),
    )
    assert compare(fine, results_dir).regressions == []


def test_too_few_runs_is_no_baseline_and_says_so(tmp_path):
    folder = tmp_path / "results"
    runs = SERIES["normal"]
    for run in runs[:2]:
        save_result(folder, as_result(run))
    save_result(folder, as_result(runs[2], outcome="fail"))  # a failed run never counts
    c = compare(as_result(runs[3]), folder)
    assert c.source == "none" and not c.metrics
    assert c.note == "no baseline yet: 2 passing runs of this parameter set, 5 needed"
    assert comparison_facts(as_result(runs[3], comparison=c)) == [("baseline", c.note)]
    assert comparison_facts(as_result(runs[3])) == []  # a result from before baselines


def test_only_the_very_first_passing_run_says_nothing_of_its_baseline(tmp_path):
    """Other parameters than any past run's still say why there is no baseline: a user who
    asked for --fail-on-regression must see that nothing could be compared."""
    folder = tmp_path / "results"
    first = as_result(SERIES["normal"][0])
    c = compare(first, folder)
    assert c.source == "none" and c.note == FIRST_PASS
    assert comparison_facts(first.model_copy(update={"comparison": c})) == []
    save_result(folder, first)
    other = as_result(SERIES["down_s_8"])  # hold_s=8: no run of its own, 1 of the defaults
    c = compare(other, folder)
    assert c.note.startswith("no baseline yet: 0 passing runs of this parameter set")
    assert comparison_facts(other.model_copy(update={"comparison": c})) == [("baseline", c.note)]


def test_a_pinned_baseline_comes_first_and_a_failed_run_cannot_be_pinned(results_dir, tmp_path):
    pins_dir = tmp_path / "baselines"
    fastest = min(SERIES["normal"], key=lambda r: r["recovery"]["outage_s"])
    pin_run(pins_dir, as_result(fastest))
    pins = load_pins(pins_dir, SCENARIO, "sandbox")
    slowest = max(SERIES["normal"], key=lambda r: r["recovery"]["outage_s"])
    c = compare(as_result(slowest), results_dir, pins, RegressionPolicy(floor_s=1.0))
    assert c.source == "pinned" and c.runs == [fastest["run_id"]]
    assert "outage_s" in [m.name for m in c.regressions]  # 5.60 s against 3.20 s
    with pytest.raises(ValueError, match="did not pass"):
        pin_run(pins_dir, as_result(fastest, outcome="fail"))


def test_policy_from_settings_and_a_scenario_files_regression_block(monkeypatch):
    monkeypatch.setenv("CHAOS_REGRESSION__FLOOR_S", "0.5")
    settings = Settings()
    assert regression_policy(settings).floor_s == 0.5
    text = GOOD.replace("    cleanup:\n", "    regression:\n      time_pct: 50\n    cleanup:\n")
    spec = load_text(text, "chaos.yaml").scenarios["checkout_crash"]

    class FromFile:  # what from_file.scenario_class keeps of the file: its spec
        pass

    FromFile.spec = spec  # type: ignore[attr-defined]
    policy = regression_policy(settings, FromFile)
    assert (policy.time_pct, policy.floor_s, policy.throughput_pct) == (50, 0.5, 15)


def test_baseline_show_takes_the_files_rule_and_refuses_an_unknown_scenario(tmp_path):
    state = tmp_path / "state"
    file = tmp_path / "chaos.yaml"
    file.write_text(
        GOOD.replace("    cleanup:\n", "    regression:\n      floor_s: 7\n    cleanup:\n")
    )
    env = {"CHAOS_STATE_DIR": str(state)}
    # Three passing runs of the file's scenario on its target make a baseline to show.
    for i, run in enumerate(SERIES["normal"][:5]):
        save_result(
            state / "results",
            as_result(run, scenario="checkout_crash", target="local", run_id=f"file{i}"),
        )
    shown = run_cli(["baseline", "show", "--scenario", "checkout_crash", "--file", str(file)], env)
    assert shown.returncode == 0, shown.stderr
    assert "at least 7.00 s worse" in shown.stdout  # the file's floor, not the default
    plain = run_cli(["baseline", "show", "--scenario", "checkout_crash"], env)
    assert "at least 1.00 s worse" in plain.stdout
    for words in (["show", "--scenario", "nope"], ["reset", "--scenario", "nope"]):
        done = run_cli(["baseline", *words], env)
        assert done.returncode == ExitCode.USAGE
        assert done.stderr.strip() == (
            "chaos-tui: unknown scenario 'nope': not built in, and no run or pin of it here"
        )
    done = run_cli(["baseline", "show", "--file", str(tmp_path / "none.yaml")], env)
    assert done.returncode == ExitCode.USAGE and "no such file" in done.stderr


@pytest.mark.parametrize(
    ("block", "error"),
    [
        ("      time_pct: -5\n", "22:17: scenarios.checkout_crash.regression.time_pct: Input "),
        ("      floor_s: '2'\n", "22:16: scenarios.checkout_crash.regression.floor_s: Input "),
        ("      tim_pct: 5\n", "22:7: scenarios.checkout_crash.regression.tim_pct: unknown key"),
        ("      runs: 3\n      min_runs: 5\n", "min_runs (5) is more than runs (3)"),
    ],
)
def test_bad_regression_values_are_refused_with_file_and_line(block, error):
    text = GOOD.replace("    cleanup:\n", "    regression:\n" + block + "    cleanup:\n")
    with pytest.raises(ScenarioFileError) as caught:
        load_text(text, "chaos.yaml")
    assert len(caught.value.lines) == 1
    assert caught.value.lines[0].startswith("chaos.yaml:2") and error in caught.value.lines[0]


# --- the CLI, with real runs ------------------------------------------------------------------

SHORT = {"warmup_s": 1.0, "hold_s": 1.0, "recover_s": 1.0, "resume_limit_s": 10.0}
DEFAULTS = {
    "warmup_s": 3.0,
    "hold_s": 3.0,
    "recover_s": 5.0,
    "write_rate": 20.0,
    "resume_limit_s": 10.0,
    "drain_timeout_s": 60.0,
}


def written(state_dir: Path, parameters: dict, outage_s: float, outcome: str = "pass") -> str:
    """A result file of a past run (synthetic: only its figures matter here); its id."""
    run_id = "synth" + uuid.uuid4().hex[:8]
    run = {
        "run_id": run_id,
        "started_at": time.time() - 3600,
        "duration_s": 10.0,
        "outcome": outcome,
        "parameters": parameters,
        "parameter_defaults": DEFAULTS,
        "recovery": {"probe": "postgres", "outage_s": outage_s, "time_to_recover_s": outage_s},
    }
    save_result(state_dir / "results", as_result(run))
    return run_id


def run_short(sandbox, parameters: dict, *extra: str):
    sets = [arg for k, v in parameters.items() for arg in ("--set", f"{k}={v:g}")]
    args = ["--headless", "--scenario", SCENARIO, "--keep-sandbox", *sets, *extra]
    return run_cli(args, sandbox.env | {"CHAOS_REGRESSION__FLOOR_S": "0.2"}, timeout=120)


def test_fail_on_regression_against_a_pinned_run_then_nothing_regressed(sandbox):
    # Parameter sets of their own (write_rate): the shared sandbox's other runs stay out.
    pinned_set = DEFAULTS | SHORT | {"write_rate": 17.0}
    failed = written(sandbox.state_dir, pinned_set, 0.01, outcome="fail")
    done = run_cli(["baseline", "set", failed], sandbox.env)
    assert done.returncode == ExitCode.USAGE
    assert f"run {failed} did not pass (fail)" in done.stderr
    fast = written(sandbox.state_dir, pinned_set, 0.01)  # an outage no real restart has
    done = run_cli(["baseline", "set", fast[:9]], sandbox.env)
    assert done.returncode == 0, done.stderr
    assert f"pinned run {fast} as the baseline of {SCENARIO} on sandbox" in done.stdout
    try:
        done = run_short(sandbox, pinned_set, "--fail-on-regression")
        assert done.returncode == ExitCode.FAIL, done.stderr[-3000:]
        assert "verdict: PASS" in done.stderr
        assert "REGRESSION outage (postgres): " in done.stderr
        assert "vs baseline median 10.0 ms" in done.stderr
        why = next(line for line in done.stderr.splitlines() if line.startswith("exit 1: "))
        assert why.startswith("exit 1: --fail-on-regression, and ") and "outage (postgres)" in why
        saved = json.loads(done.stdout)
        assert saved["comparison"]["source"] == "pinned" and saved["comparison"]["runs"] == [fast]

        shown = run_cli(["baseline", "show", "--scenario", SCENARIO, "--json"], sandbox.env)
        rows = [r for r in json.loads(shown.stdout) if r["parameters"]["write_rate"] == 17.0]
        assert [r["source"] for r in rows] == ["pinned"]
        outage = rows[0]["metrics"]["outage_s"]
        # One pinned run has no spread: the default floor decides (`baseline show` runs
        # without the run's CHAOS_REGRESSION__FLOOR_S).
        assert outage["limit"] == pytest.approx(1.01)
        assert outage["rule"] == "+20 %, 2.5x the spread, at least 1.00 s worse"
    finally:
        done = run_cli(["baseline", "reset", "--scenario", SCENARIO], sandbox.env)
    assert done.returncode == 0 and "unpinned 1 baseline of" in done.stdout

    # Five slow past runs: the real one is no worse, and the flag changes nothing.
    slow_set = DEFAULTS | SHORT | {"write_rate": 19.0}
    for _ in range(5):
        written(sandbox.state_dir, slow_set, 30.0)
    done = run_short(sandbox, slow_set, "--fail-on-regression")
    assert done.returncode == ExitCode.PASS, done.stderr[-3000:]
    assert "baseline: 5 runs, nothing regressed" in done.stderr


def test_a_files_variables_are_recorded_with_the_parameters(tmp_path):
    """`--set toxic_latency_ms=1500` (a scenario file's variable) is part of what a run
    changed: the result's parameters carry it, so its runs are a baseline of their own."""
    from chaos_tui.from_file.load import load_scenarios

    example = Path(__file__).resolve().parent.parent / "examples" / "own-service.yaml"
    cls = load_scenarios(example, {"toxic_latency_ms": "1500"})["slow_network"]
    assert cls.extra_parameters["toxic_latency_ms"] == 1500
    assert cls.extra_parameter_defaults["toxic_latency_ms"] == 300
    args = ["--dry-run", "--file", str(example), "--scenario", "slow_network"]
    done = run_cli([*args, "--set", "toxic_latency_ms=1500"], {"CHAOS_STATE_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "parameters: toxic_latency_ms=1500 (default 300)" in done.stdout


def test_pinning_a_run_that_had_regressed_says_so(tmp_path):
    state = tmp_path / "state"
    result = as_result(SERIES["down_s_8"])
    for run in SERIES["normal"]:
        save_result(state / "results", as_result(run))
    result.comparison = compare(result, state / "results")
    save_result(state / "results", result)
    done = run_cli(["baseline", "set", result.run_id], {"CHAOS_STATE_DIR": str(state)})
    assert done.returncode == 0, done.stderr
    note = done.stderr.strip()
    assert note.startswith(f"note: run {result.run_id} had regressed against its own baseline (")
    assert "outage (postgres)" in note and note.endswith("; it is the yardstick now")
    assert f"pinned run {result.run_id}" in done.stdout
