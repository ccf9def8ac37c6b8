"""A scenario file's `slo:` block: refused at validate time when it is wrong (one line per
problem, FILE:LINE:COL and the key path), and judged per phase in a real run against a real
HTTP service of the test's, slowed by a real latency toxic (target local: the agent's proxy).
A miss in a counted phase fails the run naming the SLO; a miss only while the fault is live
is reported and does not."""

from __future__ import annotations

import json

import pytest

from chaos_tui.core.model import RunResult
from chaos_tui.core.report import markdown_report, slo_facts
from chaos_tui.scenario_file.loader import ScenarioFileError, load_text
from tests.conftest import env_for, run_cli
from tests.test_process_faults import free_port, server  # noqa: F401 - the fixture, by name

FILE = """\
version: 1
variables:
  port: 8080
  proxy_port: 18080
scenarios:
  slowed:
    hypothesis: "Callers slow down while the link is slow and are fast again after"
    warmup_seconds: 1.5
    recover_seconds: 1.5
    steady_state:
      - http_200_from: "http://127.0.0.1:${port}/"
        name: service
    load:
      - http_requests: {url: "http://127.0.0.1:${proxy_port}/", rate_per_s: 20, timeout_ms: 3000}
        name: callers
    actions:
      - type: latency
        proxy: {listen: "127.0.0.1:${proxy_port}", upstream: "127.0.0.1:${port}"}
        latency: 300
        duration_seconds: 1.5
    slo:
      callers:
        p95_latency_ms: 150
        max_error_rate: 0.05
SLO_EXTRA
"""


def scenario_text(extra: str = "") -> str:
    return FILE.replace("SLO_EXTRA\n", extra)


def problems(text: str) -> list[str]:
    with pytest.raises(ScenarioFileError) as caught:
        load_text(text, "f.yaml")
    return caught.value.lines


def test_the_block_validates_with_its_default_phases():
    parsed = load_text(scenario_text(), "f.yaml")
    slo = parsed.scenarios["slowed"].slo["callers"]
    assert slo.objectives == {"p95_latency_ms": 150, "max_error_rate": 0.05}
    assert slo.phases == ["before", "after"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "      nobody:\n        max_error_rate: 0.1\n",
            "f.yaml:25:7: scenarios.slowed.slo.nobody: no probe or load named 'nobody' in this "
            "scenario (probes and loads: service, callers)",
        ),
        (
            "      service:\n        p95_latency_ms: -5\n",
            "f.yaml:26:25: scenarios.slowed.slo.service.p95_latency_ms: Input should be greater "
            "than 0",
        ),
        (
            "      service:\n        p95_latency: 100\n",
            "f.yaml:26:9: scenarios.slowed.slo.service.p95_latency: unknown key 'p95_latency' "
            "(did you mean 'p95_latency_ms'?)",
        ),
        (
            "      service:\n        max_error_rate: 0.1\n        phases: [before, durin]\n",
            "f.yaml:27:26: scenarios.slowed.slo.service.phases[1]: Input should be 'before', "
            "'during' or 'after'",
        ),
        (
            "      service:\n        min_throughput_rps: 5\n",
            "f.yaml:26:9: scenarios.slowed.slo.service.min_throughput_rps: service is a probe: "
            "a throughput is a load's",
        ),
        (
            "      service:\n        phases: [after]\n",
            "f.yaml:26:9: scenarios.slowed.slo.service: an slo needs at least one of",
        ),
    ],
    ids=["unknown name", "negative limit", "unknown key", "unknown phase", "probe throughput",
         "no objective"],
)  # fmt: skip
def test_a_bad_slo_is_refused_with_its_place(extra, expected):
    (line,) = problems(scenario_text(extra))
    assert line.startswith(expected), line


def test_validate_says_it_and_exits_2(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(scenario_text("      nobody:\n        max_error_rate: 0.1\n"))
    done = run_cli(["validate", str(path)], env_for(tmp_path), timeout=60)
    assert done.returncode == 2
    assert f"{path}:25:7: scenarios.slowed.slo.nobody: no probe or load named 'nobody'" in (
        done.stderr
    )


def run(path, port: int, state_dir) -> tuple[RunResult, str]:
    args = ["--headless", "--file", str(path), "--scenario", "slowed", "--json",
            "--set", f"port={port}", "--set", f"proxy_port={free_port()}"]  # fmt: skip
    done = run_cli(args, env_for(state_dir, CHAOS_ENABLED="true"), timeout=120)
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return RunResult.model_validate(json.loads(done.stdout)), done.stderr


def by_phase(result: RunResult, objective: str) -> dict[str, tuple[float | None, bool, bool]]:
    return {
        r.phase: (r.measured, r.passed, r.counts)
        for r in result.slos
        if r.subject == "callers" and r.objective == objective
    }


def test_a_miss_only_during_the_fault_passes_and_a_counted_miss_fails(
    server,  # noqa: F811 - the imported fixture, by name
    fresh_state_dir,
    tmp_path,
):
    port, _ = server
    path = tmp_path / "slo.yaml"

    # The toxic's 300 ms breaks the 150 ms p95 only while it is on: reported, not counted.
    path.write_text(scenario_text())
    result, summary = run(path, port, fresh_state_dir)
    p95 = by_phase(result, "p95_latency_ms")
    print(f"p95 per phase: {p95}")
    assert result.outcome == "pass", (result.reason, result.slos)
    measured, passed, counts = p95["during"]
    assert measured is not None and measured > 150 and not passed and not counts
    assert p95["before"][1:] == (True, True) and p95["after"][1:] == (True, True)
    assert {r.name for r in result.invariants} == {
        "slo.p95_latency_ms(callers)",
        "slo.max_error_rate(callers)",
    }
    assert all(r.phase in ("before", "during", "after") for r in result.slos)
    assert len(result.slos) == 6  # two objectives, three phases each
    facts = slo_facts(result)
    assert any("during" in value and "missed (not counted)" in value for _, value in facts), facts
    assert "## SLOs" in markdown_report(result)
    # The headless summary: a line per objective, its three phases side by side.
    (line,) = [x for x in summary.splitlines() if x.startswith("SLO callers p95 latency")]
    assert "during" in line and "missed (not counted)" in line and "after" in line, line

    # Counted during too, and an absurd throughput: both missed, the run fails naming them.
    path.write_text(
        scenario_text("        phases: [before, during, after]\n")
        + "      service:\n        p50_latency_ms: 1000\n"
    )
    path.write_text(
        path.read_text().replace(
            "        max_error_rate: 0.05\n",
            "        max_error_rate: 0.05\n        min_throughput_rps: 500\n",
        )
    )
    result, _ = run(path, port, fresh_state_dir)
    assert result.outcome == "fail"
    assert "slo.p95_latency_ms(callers)" in result.reason
    assert "slo.min_throughput_rps(callers)" in result.reason
    assert "slo.max_error_rate(callers)" not in result.reason
    assert "slo.p50_latency_ms(service)" not in result.reason
    throughput = by_phase(result, "min_throughput_rps")
    print(f"throughput per phase: {throughput}")
    for measured, passed, counts in throughput.values():
        # 20 a second are sent: about 20 answered a second in every phase, never 500.
        assert measured is not None and 5 < measured < 40 and not passed and counts
    assert by_phase(result, "p95_latency_ms")["during"][1:] == (False, True)


SANDBOX_FILE = """\
version: 1
scenarios:
  opa_blip:
    hypothesis: "Decisions keep answering before and after an OPA restart"
    warmup_seconds: 1
    recover_seconds: 2
    steady_state:
      - opa_health: true
    actions:
      - type: restart_container
        target: opa
        duration_seconds: 1
    slo:
      opa_health:
        max_error_rate: 0.25
"""


def test_on_the_sandbox_a_platform_probes_slo_is_judged_per_phase(fresh_state_dir, tmp_path):
    """The seed's named probe (`opa_health`, the built-in's `opa` probe) on the sandbox: OPA is
    down for the hold, so its error rate misses the SLO during the fault only, which is not
    counted: the run passes and the result says so."""
    path = tmp_path / "opa.yaml"
    path.write_text(SANDBOX_FILE)
    args = ["--headless", "--file", str(path), "--scenario", "opa_blip", "--json"]
    done = run_cli(args, env_for(fresh_state_dir), timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    result = RunResult.model_validate(json.loads(done.stdout))
    rates = {r.phase: r for r in result.slos if r.objective == "max_error_rate"}
    print({phase: (r.measured, r.passed, r.counts) for phase, r in rates.items()})
    assert result.outcome == "pass", result.reason
    assert rates["during"].measured is not None and rates["during"].measured > 0.25
    assert not rates["during"].passed and not rates["during"].counts
    assert rates["before"].passed and rates["after"].passed
    (slo,) = [i for i in result.invariants if i.name.startswith("slo.")]
    assert slo.name == "slo.max_error_rate(opa_health)" and slo.passed
