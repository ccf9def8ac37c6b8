"""Runs sent to the user's telemetry (CHAOS_OTLP_ENDPOINT) and written as JUnit XML (--junit),
through the real CLI against the sandbox's chaos-observe profile: the rotel collector takes
the export and passes it to the OTLP sink (OpenObserve's stand-in), where the run's spans and
log records are read back. openobserve_stall is the run: it is that profile's own scenario,
and a tiny `arrival_limit_s` makes it fail for real (markers sent during the stall are still
in rotel's retry when the limit is up).
"""

from __future__ import annotations

import json
import re
import socket
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from chaos_tui.core.exit_codes import ExitCode
from chaos_tui.otlp_export import check_endpoint, span_id, trace_id
from chaos_tui.sandbox.stack import Sandbox
from chaos_tui.settings import Settings
from tests.conftest import clean_state_dir, env_for, run_cli
from tests.test_junit import junit_schema

pytestmark = pytest.mark.timeout(120)

ORG = "default"
SHORT = ["--set", "warmup_s=1", "--set", "stall_s=1", "--set", "recover_s=1"]
WINDOW_TOLERANCE_NS = 50_000_000  # the 50 ms


@pytest.fixture(scope="module")
def observe():
    """The chaos-observe profile, up for the module: (state dir, collector URL, sink URL)."""
    with clean_state_dir("otlp") as state_dir:
        Sandbox(Settings(state_dir=state_dir)).up(profiles=["chaos-observe"])
        ports = json.loads((state_dir / "sandbox.json").read_text())["ports"]
        yield (
            state_dir,
            f"http://127.0.0.1:{ports['otlp_http']}",
            f"http://127.0.0.1:{ports['sink']}",
        )


def run_stall(state_dir: Path, endpoint: str, tmp_path: Path, *extra: str):
    out, junit = tmp_path / "result.json", tmp_path / "junit.xml"
    args = ["--headless", "--scenario", "openobserve_stall", *SHORT, *extra]
    args += ["--output", str(out), "--junit", str(junit)]
    proc = run_cli(args, env_for(state_dir, CHAOS_OTLP_ENDPOINT=endpoint), timeout=90)
    result = json.loads(out.read_text()) if out.exists() else None
    return proc, result, junit


def sink_records(sink: str, run_id: str, spans: int, logs: int) -> dict:
    """What the sink holds of the run, once it has the expected counts (rotel batches every
    100 ms; bounded wait)."""
    deadline = time.monotonic() + 10
    while True:
        found = httpx.get(f"{sink}/api/{ORG}/runs/{run_id}", timeout=2).json()
        if (len(found["spans"]) >= spans and len(found["logs"]) >= logs) or (
            time.monotonic() > deadline
        ):
            return found
        time.sleep(0.1)


def ns(t: float) -> int:
    return round(t * 1e9)


def test_a_run_arrives_in_the_sink_as_spans_and_logs_and_as_junit(observe, tmp_path):
    state_dir, collector, sink = observe
    proc, result, junit = run_stall(state_dir, collector, tmp_path)
    assert proc.returncode == ExitCode.PASS, proc.stderr[-3000:]
    assert "warning" not in proc.stderr, proc.stderr[-3000:]
    run_id, window = result["run_id"], result["injection_windows"][0]
    expected_logs = len(result["phases"]) + len(result["invariants"]) + 1  # + the verdict
    found = sink_records(sink, run_id, 2, expected_logs)

    spans = {s["span_id"]: s for s in found["spans"]}
    run = spans[span_id(run_id, "run")]
    assert run["trace_id"] == trace_id(run_id) and run["parent_span_id"] == ""
    assert run["attributes"]["chaos.scenario"] == "openobserve_stall"
    assert run["attributes"]["chaos.outcome"] == "pass"
    assert run["attributes"]["chaos.parameter.hold_s"] == 1.0
    assert abs(run["start_ns"] - ns(result["started_at"])) <= WINDOW_TOLERANCE_NS
    assert abs(run["end_ns"] - ns(result["finished_at"])) <= WINDOW_TOLERANCE_NS
    fault = next(s for s in found["spans"] if s["parent_span_id"] == run["span_id"])
    assert fault["trace_id"] == run["trace_id"]
    assert fault["attributes"]["chaos.run_id"] == run_id
    assert fault["attributes"]["chaos.lease_id"] == window["lease_id"]
    assert fault["attributes"]["chaos.fault"] == window["fault"]
    assert abs(fault["start_ns"] - ns(window["applied_at"])) <= WINDOW_TOLERANCE_NS
    assert abs(fault["end_ns"] - ns(window["healed_at"])) <= WINDOW_TOLERANCE_NS

    logs = found["logs"]
    assert all(r["attributes"]["chaos.run_id"] == run_id for r in logs)
    assert {r["attributes"].get("chaos.phase") for r in logs} >= set(result["phases"])
    verdicts = [r for r in logs if "chaos.invariant" in r["attributes"]]
    assert {r["attributes"]["chaos.invariant"] for r in verdicts} == {
        i["name"] for i in result["invariants"]
    }
    assert all(r["severity_number"] == 9 and r["attributes"]["chaos.passed"] for r in verdicts)

    junit_schema().validate(str(junit))
    suite = ET.parse(junit).getroot()
    assert suite.get("name") == "openobserve_stall" and suite.get("failures") == "0"
    assert suite.find(".//failure") is None and suite.find(".//error") is None
    names = [case.get("name") for case in suite.iter("testcase")]
    assert names == [i["name"] for i in result["invariants"]] + ["heal"]


def test_a_failing_run_is_a_junit_failure_and_a_dead_endpoint_one_warning(observe, tmp_path):
    state_dir, _, _ = observe
    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    proc, result, junit = run_stall(state_dir, dead, tmp_path, "--set", "arrival_limit_s=0.001")
    assert proc.returncode == ExitCode.FAIL, proc.stderr[-3000:]  # the run's, unchanged
    warnings = [line for line in proc.stderr.splitlines() if "CHAOS_OTLP_ENDPOINT" in line]
    assert len(warnings) == 1 and dead in warnings[0], proc.stderr[-3000:]

    junit_schema().validate(str(junit))
    suite = ET.parse(junit).getroot()
    broken = [i for i in result["invariants"] if not i["passed"]]
    assert broken and suite.get("failures") == str(len(broken))
    failed = {
        case.get("name"): case.find("failure")
        for case in suite.iter("testcase")
        if case.find("failure") is not None
    }
    assert set(failed) == {i["name"] for i in broken}
    arrival = failed["arrival_after_heal"]
    assert arrival is not None and "limit <= 1.00 ms" in arrival.get("message", "")


def test_a_bad_endpoint_is_refused_before_anything_starts(tmp_path):
    state_dir = tmp_path / "state"
    env = env_for(state_dir, CHAOS_OTLP_ENDPOINT="127.0.0.1:4318")  # no scheme
    proc = run_cli(["--headless", "--scenario", "openobserve_stall", *SHORT], env, timeout=30)
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "CHAOS_OTLP_ENDPOINT" in lines[0], proc.stderr
    assert not (state_dir / "sandbox.json").exists()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("127.0.0.1:4318", "is not an http(s) URL"),
        ("http://exa mple:4318", "a URL has no spaces"),
        ("http://127.0.0.1:99999", "the port is not a number"),
        ("http://127.0.0.1:4318/?x=1", "without ?query"),
    ],
)
def test_check_endpoint_names_what_is_wrong(url, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        check_endpoint(url)
    assert check_endpoint(" http://127.0.0.1:4318/ ") == "http://127.0.0.1:4318"
