"""Screenshots of the run screen judging invariants while the fault is live: a fail-open
gateway during an OPA outage (fails_closed broken so far, in red, and said in the banner), and
the same run after its verdict. Fixed data, as in test_tui_snapshots.py (whose fixtures these
use); update with `--snapshot-update` and look at the SVGs."""

from __future__ import annotations

import pytest

import tui_data
from chaos_tui.core.events import (
    FaultInjected,
    InvariantChecked,
    LiveJudgement,
    PhaseChanged,
    RunEvent,
    RunFinished,
    SampleTaken,
)
from chaos_tui.core.model import ProbeSample
from chaos_tui.live import ProbeInfo
from chaos_tui.scenarios.opa_restart import OpaRestart
from chaos_tui.screens.run import RunScreen
from tests.test_tui_snapshots import SIZE, app, fixed_clock_zone, showing  # noqa: F401

T0, RATE, INJECT_AT = tui_data.T0, tui_data.RATE, tui_data.INJECT_AT
PROBES = [
    ProbeInfo("opa", "GET /health"),
    ProbeInfo("gateway", "GET /health"),
    ProbeInfo("allow_path", "gateway allows a request the policy allows"),
]


def opa_sample(probe: str, i: int) -> ProbeSample:
    """OPA is down from 8.1 s; the gateway fails open, so allow_path keeps passing."""
    t = T0 + i / RATE
    if probe == "opa" and t >= T0 + INJECT_AT + 0.1:
        return ProbeSample(probe, t, False, None, None, "connection refused")
    return ProbeSample(probe, t, True, 1.5 + (i % 5) * 0.2, 1.0 if probe == "allow_path" else None)


def fail_open_events(until_s: float) -> list[RunEvent]:
    scenario = OpaRestart()
    window = tui_data.window(healed=False)
    window.fault = "hard_restart:opa"
    window.description = "SIGKILL sandbox opa and its children, down 3s, start again"
    out: list[RunEvent] = [
        PhaseChanged("prepare", T0, "target sandbox"),
        PhaseChanged("steady_state", T0 + 0.5),
        PhaseChanged("warmup", T0 + 2.0, "3s of load before the fault"),
    ]
    for i in range(int(until_s * RATE) + 1):
        t = T0 + i / RATE
        if abs(t - (T0 + INJECT_AT)) < 1e-9:
            out += [PhaseChanged("inject", t, "hard_restart:opa"), FaultInjected(window)]
        if abs(t - (T0 + INJECT_AT + 1.0)) < 1e-9:  # the first live judgement after the kill
            closed = scenario.judge(
                "fails_closed", 18, "18 decisions while OPA was down: 18 allowed, 0 unanswered"
            )
            closed.broke_at = T0 + INJECT_AT + 0.15
            denied = scenario.judge("never_allows_denied", 0)
            decisions = {"allow": 18, "deny": 0, "error": 0}
            out.append(LiveJudgement(t, (closed, denied), {"decisions while OPA down": decisions}))
        out += [SampleTaken(opa_sample(p.name, i)) for p in PROBES]
    return out


def test_run_screen_with_fails_closed_broken_while_the_fault_is_live(snap_compare, app):  # noqa: F811
    live = tui_data.replay(OpaRestart(), PROBES, fail_open_events(10.5))
    assert snap_compare(app, run_before=showing(lambda: RunScreen(live)), terminal_size=SIZE)


@pytest.mark.parametrize("size", [(80, 24)], ids=["80x24"])
def test_run_screen_with_a_live_breach_on_a_small_terminal(snap_compare, app, size):  # noqa: F811
    live = tui_data.replay(OpaRestart(), PROBES, fail_open_events(10.5))
    assert snap_compare(app, run_before=showing(lambda: RunScreen(live)), terminal_size=size)


def test_run_screen_after_a_failing_verdict(snap_compare, app):  # noqa: F811
    live = tui_data.replay(OpaRestart(), PROBES, fail_open_events(10.5))
    scenario = OpaRestart()
    final = [
        live.live_results["fails_closed"],
        scenario.judge("never_allows_denied", 9, "e.g. an editor writing to globex allowed"),
        scenario.judge("allow_resumes", 0.05),
    ]
    for result in final:
        live.apply(InvariantChecked(result))
    done = tui_data.result().model_copy(
        update={
            "scenario": scenario.name,
            "outcome": "fail",
            "reason": "invariant(s) broken: fails_closed, never_allows_denied",
            "invariants": final,
            "recovery": live.timeline.recovery("allow_path", None),
            "delivery": None,
            "measurements": {"decisions while OPA down": {"allow": 60, "deny": 0, "error": 0}},
        }
    )
    live.apply(RunFinished(done))
    assert snap_compare(app, run_before=showing(lambda: RunScreen(live)), terminal_size=SIZE)
