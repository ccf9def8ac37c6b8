"""The --junit report: results of every kind become JUnit XML that validates against the schema
CI parsers expect, and a bad --junit path is refused before anything starts. The real runs
(a pass, a failing invariant) are in tests/test_otlp_export.py, on the sandbox they share.

The schema is tests/data/junit.xsd, our own (see its header): no installable package ships the
Jenkins or Ant one.
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from chaos_tui.core.exit_codes import ExitCode
from chaos_tui.core.junit import junit_xml
from chaos_tui.core.model import (
    BaselineComparison,
    FaultHealReport,
    HealReport,
    InvariantResult,
    MetricComparison,
    RunResult,
    SloResult,
)
from tests.conftest import env_for, run_cli

SCHEMA = Path(__file__).parent / "data" / "junit.xsd"


@functools.cache
def junit_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(SCHEMA))


def result(**fields) -> RunResult:
    base = {
        "run_id": "abc123",
        "scenario": "opa_restart",
        "hypothesis": "the gateway fails closed",
        "target": "sandbox",
        "outcome": "pass",
        "started_at": 1_700_000_000.0,
        "finished_at": 1_700_000_012.5,
        "duration_s": 12.5,
        "probe_rate_hz": 10.0,
        "parameters": {"hold_s": 1.0},
    }
    return RunResult(**(base | fields))


def parsed(run: RunResult, fail_on_regression: bool = True) -> ET.Element:
    text = junit_xml(run, hostname="ci-runner", fail_on_regression=fail_on_regression)
    junit_schema().validate(text)
    return ET.fromstring(text)


def test_a_run_that_reached_no_verdict_is_an_error_ci_shows():
    suite = parsed(result(outcome="aborted", reason="steady state failed: gateway down"))
    error = suite.find("testcase[@name='run']/error")
    assert error is not None and error.get("type") == "aborted"
    assert "steady state failed" in (error.get("message") or "")
    assert suite.get("errors") == "1" and suite.get("failures") == "0"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["run_id"] == "abc123" and props["outcome"] == "aborted"
    assert props["parameter.hold_s"] == "1.0" and props["target"] == "sandbox"


def test_slos_regressions_and_a_failed_heal_are_testcases_too():
    run = result(
        outcome="fail",
        invariants=[
            InvariantResult(
                name="fails_closed",
                description="no request allowed while OPA is down",
                passed=False,
                measured=3,
                limit=0,
                unit="requests",
            )
        ],
        heal=HealReport(
            ok=False, faults=[FaultHealReport(fault="kill:opa", lease_id="l1", ok=False)]
        ),
        slos=[
            SloResult(
                subject="gateway",
                phase="during",
                objective="p95_latency_ms",
                measured=480.0,
                limit=250.0,
                unit="ms",
                passed=False,
            ),
            SloResult(
                subject="gateway",
                phase="before",
                objective="max_error_rate",
                measured=0.0,
                limit=0.01,
                passed=True,
            ),
        ],
        comparison=BaselineComparison(
            scenario="opa_restart",
            target="sandbox",
            metrics=[
                MetricComparison(
                    name="outage_s",
                    label="outage (gateway)",
                    unit="s",
                    value=8.0,
                    baseline_median=2.0,
                    limit=2.4,
                    regressed=True,
                )
            ],
        ),
    )
    suite = parsed(run)
    failures = {
        case.get("name"): case.find("failure")
        for case in suite.iter("testcase")
        if case.find("failure") is not None
    }
    assert set(failures) == {
        "fails_closed",
        "heal",
        "slo gateway during p95_latency_ms",
        "regression outage (gateway)",
    }
    assert failures["fails_closed"].get("message") == "3 requests (limit <= 0 requests)"
    assert "480" in failures["slo gateway during p95_latency_ms"].get("message", "")
    assert suite.get("tests") == "5" and suite.get("failures") == "4"
    # Without --fail-on-regression a regression fails nothing (the exit code neither): it
    # is reported in the testcase's output, so CI stays green for a run that passed.
    suite = parsed(run, fail_on_regression=False)
    case = suite.find("testcase[@name='regression outage (gateway)']")
    assert case is not None and case.find("failure") is None
    assert (case.findtext("system-out") or "").startswith("regressed (not failed): 8.00 s")
    assert suite.get("failures") == "3"


def test_no_slos_and_no_comparison_add_nothing():
    suite = parsed(result())
    assert [c.get("name") for c in suite.iter("testcase")] == ["heal"]
    assert suite.get("hostname") == "ci-runner" and suite.get("time") == "12.500"


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--headless", "--junit", "/"], "is a directory"),
        (["--headless", "--junit", "/nonexistent-dir/j.xml"], "does not exist"),
        (["--junit", "j.xml"], "--junit goes with --headless"),
    ],
)
def test_a_bad_junit_path_is_refused_before_the_run(tmp_path, extra, words):
    state_dir = tmp_path / "state"
    proc = run_cli(["--scenario", "opa_restart", *extra], env_for(state_dir), timeout=30)
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], proc.stderr
    assert not (state_dir / "sandbox.json").exists()
