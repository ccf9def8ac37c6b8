"""Parameters people can discover, and numbers that agree (issue 16): one duration formatter,
parameters worded from their model, what a run changed said beside its verdict, the expected
duration refined by saved runs, `chaos-tui list` with meanings and durations, and versions of
only the parts a scenario's profile runs. Real models, real files, the real command."""

from __future__ import annotations

import io
import shutil
import time

import pytest
from rich.console import Console

from chaos_tui.catalog import RUN_OVERHEAD_S, expected_duration
from chaos_tui.core.journal import save_result
from chaos_tui.core.model import RunResult
from chaos_tui.core.params import changed_text, check_values, param_infos
from chaos_tui.core.report import duration_text, markdown_report, parameters_text, verdict_line
from chaos_tui.headless import print_summary
from chaos_tui.scenarios import SCENARIOS
from chaos_tui.targets.sandbox import sandbox_versions
from tests.conftest import env_for, make_state_dir, run_cli


@pytest.mark.parametrize(
    "seconds, shown",
    [
        (None, "n/a"),
        (0, "0 ms"),
        (0.0005, "0.500 ms"),
        (0.03, "30.0 ms"),
        (0.0304, "30.4 ms"),
        (0.308, "308 ms"),
        (0.99949, "999 ms"),
        (0.9996, "1.00 s"),  # rounds up into seconds, never "1000 ms"
        (1, "1.00 s"),
        (1.93, "1.93 s"),
        (13.24, "13.2 s"),
        (99.96, "100 s"),
        (128.4, "128 s"),
        (1234.5, "1234 s"),
        (-0.2, "-200 ms"),
    ],
)
def test_one_duration_formatter(seconds, shown):
    assert duration_text(seconds) == shown


def test_every_builtin_parameter_has_a_meaning_and_says_what_it_takes():
    for cls in SCENARIOS.values():
        for info in param_infos(cls.Params):
            assert info.meaning, f"{cls.name}.{info.name} has no description"
    infos = {i.name: i for i in param_infos(SCENARIOS["openobserve_stall"].Params)}
    assert infos["mode"].allowed == "stop|pause" and infos["mode"].default == "stop"
    assert infos["hold_s"].allowed == "0-120 s"
    mesh = {i.name: i for i in param_infos(SCENARIOS["nats_partition_mesh"].Params)}
    assert mesh["scope"].allowed == "full|one-node"


@pytest.mark.parametrize(
    "values, key, words",
    [
        (
            {"nope": "1"},
            "nope",
            "unknown parameter nope for openobserve_stall; it takes warmup_s, hold_s, "
            "recover_s, marker_rate, mode (stop|pause), arrival_limit_s",
        ),
        ({"hold_s": "100000"}, "hold_s", "hold_s must be between 0 and 120 seconds, got 100000"),
        ({"down_s": "soon"}, "hold_s", "down_s must be a number of seconds, got 'soon'"),
        ({"mode": "melt"}, "mode", "mode must be one of stop, pause, got 'melt'"),
        (
            {"marker_rate": "0"},
            "marker_rate",
            "marker_rate must be more than 0 and at most 500, got 0",
        ),
    ],
)
def test_bad_values_are_said_in_plain_words(values, key, words):
    params, errors = check_values(
        SCENARIOS["openobserve_stall"].Params, values, "openobserve_stall"
    )
    assert params is None
    assert errors == {key: words}


def a_result(scenario: str, duration_s: float, **params) -> RunResult:
    cls = SCENARIOS[scenario]
    chosen = cls.Params(**params)
    defaults = cls.Params().model_dump()
    now = time.time()
    return RunResult(
        run_id=f"r{int(duration_s * 1000)}",
        scenario=scenario,
        hypothesis=cls.hypothesis,
        target="sandbox",
        outcome="pass",
        started_at=now - duration_s,
        finished_at=now,
        duration_s=duration_s,
        parameters=chosen.model_dump(),
        parameter_defaults=defaults,
        probe_rate_hz=10,
    )


def test_what_a_run_changed_is_said_beside_its_verdict():
    result = a_result("openobserve_stall", 21.234, hold_s=10, mode="pause")
    changed = "hold_s=10 (default 5), mode=pause (default stop)"
    assert parameters_text(result) == changed
    assert verdict_line(result) == "PASS openobserve_stall on sandbox in 21.2 s"
    assert f"- Parameters changed: {changed}" in markdown_report(result)
    out = io.StringIO()
    print_summary(Console(file=out, width=200), result)
    assert f"parameters: {changed}" in out.getvalue()
    # A run with the defaults says nothing more; a result saved before the defaults were
    # kept cannot tell, and says nothing either.
    assert parameters_text(a_result("openobserve_stall", 12)) is None
    assert changed_text({"hold_s": 3.0}, {"hold_s": 3.0}) == "all at their defaults"


def test_expected_duration_from_the_plan_then_from_saved_runs(tmp_path):
    cls = SCENARIOS["postgres_restart_outbox"]
    nominal = 3 + 3 + 5
    assert expected_duration(cls, None, tmp_path) == nominal + RUN_OVERHEAD_S
    # Runs with other parameters teach the overhead beyond their own load and holds...
    save_result(tmp_path, a_result(cls.name, 17 + 1, hold_s=9))  # 17 s of load and hold
    save_result(tmp_path, a_result(cls.name, 18 + 3, hold_s=10))  # 18 s of load and hold
    assert expected_duration(cls, None, tmp_path) == pytest.approx(nominal + 2)
    # ...and runs with the same ones give their median.
    for took in (13.5, 14.5, 20.0):
        save_result(tmp_path, a_result(cls.name, took))
    assert expected_duration(cls, None, tmp_path) == pytest.approx(14.5)


def test_a_default_that_depends_on_the_target_matches_what_runs_recorded(tmp_path):
    # opa_restart's mode=auto is recorded as the mode that ran (restart on Docker, kill on
    # the sandbox): those runs are runs with these parameters.
    cls = SCENARIOS["opa_restart"]
    for took in (18.0, 18.2):  # 17 s of load and hold: overheads of 1 s and 1.2 s
        save_result(tmp_path, a_result(cls.name, took, hold_s=9, mode="restart"))
    for took in (15.0, 16.0, 30.0):
        save_result(tmp_path, a_result(cls.name, took, mode="restart"))
    assert expected_duration(cls, None, tmp_path) == pytest.approx(16.0)  # their median
    # Asked for a kill, no run is alike: the nominal 11 s plus the median overhead (4 s).
    assert expected_duration(cls, cls.Params(mode="kill"), tmp_path) == pytest.approx(15.0)


def test_versions_only_of_the_parts_a_profile_runs():
    assert set(sandbox_versions("chaos-opa")) == {"policy engine"}
    assert set(sandbox_versions("chaos-outbox")) == {"postgres", "nats"}
    observe = sandbox_versions("chaos-observe")
    assert set(observe) == {"collector"}
    # The wheel's own version (the pin), with what its agent binary calls itself.
    assert observe["collector"].startswith("rotel 0.0.1a"), observe
    assert "rotel-agent" in observe["collector"]


def test_list_shows_meaning_allowed_values_default_and_duration():
    state_dir = make_state_dir("list")
    try:
        proc = run_cli(["list"], env_for(state_dir))
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "openobserve_stall  (profile chaos-observe, about 13.0 s a run)" in out
    assert "mode=stop" in out and "stop or freeze the backend (stop|pause)" in out
    assert "hold_s=3" in out and "how long Postgres stays dead (0-60 s)" in out
    assert "full|one-node" in out


def test_a_recovery_probe_that_never_failed_reads_never_failed_not_zero():
    """A gateway failing open: its allow path passes all through the fault. The timeline
    keeps 0 s as its time to recover; the report must not show that as an instant recovery."""
    from chaos_tui.core.model import RecoveryMetrics
    from chaos_tui.core.report import recovery_facts

    quiet = RecoveryMetrics(probe="allow_path", time_to_recover_s=0.0, error_rate_during_fault=0.0)
    facts = dict(recovery_facts(quiet, True))
    assert facts["time to recover (allow_path), from the heal's start"] == "never failed"
    assert facts["time to detect (allow_path), from the fault"] == "never failed"
    assert "0 ms" not in facts.values()
    failed = RecoveryMetrics(
        probe="allow_path", time_to_detect_s=0.05, outage_s=1.2, time_to_recover_s=0.0
    )
    assert (
        dict(recovery_facts(failed, True))["time to recover (allow_path), from the heal's start"]
        == "0 ms"
    )  # it failed and was back as the heal began: a real 0
