"""Deterministic runs for the console's snapshot and unit tests: fixed times, fixed samples.

Nothing here is a stand-in for a service: these are the events a real run emits, written
out by hand so a screenshot of them is the same on every machine.
"""

from __future__ import annotations

from chaos_tui.core.contracts import Scenario
from chaos_tui.core.events import (
    FaultHealed,
    FaultInjected,
    InvariantChecked,
    Note,
    PhaseChanged,
    RunEvent,
    SampleTaken,
)
from chaos_tui.core.model import (
    DeliveryCounts,
    FaultHealReport,
    HealReport,
    InjectionWindow,
    ProbeSample,
    RunResult,
)
from chaos_tui.core.timeline import Timeline
from chaos_tui.live import LiveRun, ProbeInfo
from chaos_tui.scenarios.postgres_restart_outbox import PostgresRestartOutbox

T0 = 1_764_100_000.0  # a fixed start: 2025-11-25 19:46:40 UTC
RATE = 10
INJECT_AT, HEAL_AT, END_AT = 8.0, 11.0, 20.0  # seconds after T0
PROBES = [
    ProbeInfo("postgres", "connect + SELECT 1 (latency ms)"),
    ProbeInfo("outbox_backlog", "unpublished outbox rows"),
    ProbeInfo("nats", "request/reply round trip (latency ms)"),
    ProbeInfo("sea_events", "SEA_EVENTS last sequence"),
]


def window(healed: bool = True) -> InjectionWindow:
    return InjectionWindow(
        fault="hard_restart:postgres",
        lease_id="lease0000001",
        description="SIGKILL sandbox postgres (pid 4242) and its children, down 3s, start again",
        injected_at=T0 + INJECT_AT,
        applied_at=T0 + INJECT_AT + 0.05,  # the inject completed, as in every run that held it
        planned_heal_at=T0 + INJECT_AT + 0.05 + 3.0,  # its hold: 3 s
        expires_at=T0 + INJECT_AT + 13.0,  # its lease's TTL: the hold and 10 s
        heal_started_at=T0 + HEAL_AT if healed else None,
        healed_at=T0 + HEAL_AT + 0.4 if healed else None,
    )


def sample(probe: str, i: int) -> ProbeSample:
    """Probe `probe` at tick i (10 Hz). Postgres and the backlog fail while Postgres is down."""
    t = T0 + i / RATE
    down = T0 + INJECT_AT + 0.1 <= t < T0 + HEAL_AT + 0.2
    if probe in ("postgres", "outbox_backlog") and down:
        return ProbeSample(probe, t, False, None, None, "connection refused")
    latency = 2.0 + (i % 7) * 0.3 + (25.0 if probe == "postgres" and 140 <= i < 146 else 0.0)
    if probe == "outbox_backlog":
        backlog = 1.0 if t < T0 + INJECT_AT else min(80.0, max(0.0, 80.0 - (t - T0 - HEAL_AT) * 50))
        return ProbeSample(probe, t, True, latency, backlog)
    if probe == "sea_events":
        published = i * 2 if t < T0 + INJECT_AT else INJECT_AT * RATE * 2 + max(0, i - 115) * 3
        return ProbeSample(probe, t, True, latency, float(published))
    return ProbeSample(probe, t, True, latency, None)


def events(until_s: float = END_AT, healed: bool = True) -> list[RunEvent]:
    """The events of a postgres_restart_outbox run from its start up to `until_s`."""
    out: list[RunEvent] = [
        PhaseChanged("prepare", T0, "target sandbox"),
        PhaseChanged("steady_state", T0 + 0.5),
        PhaseChanged("warmup", T0 + 2.0, "3s of load before the fault"),
        Note("writing 20 outbox rows/s on sea.event.outbox_probe.fixed", T0 + 2.0),
    ]
    ticks = int(until_s * RATE)
    for i in range(ticks + 1):
        t = T0 + i / RATE
        if abs(t - (T0 + INJECT_AT)) < 1e-9:
            out.append(PhaseChanged("inject", t, "hard_restart:postgres"))
            out.append(FaultInjected(window(healed=False)))
        if healed and abs(t - (T0 + HEAL_AT + 0.4)) < 1e-9:
            out.append(FaultHealed(window(), True))
            out.append(PhaseChanged("recover", t, "5s of load after the heal"))
        for p in PROBES:
            out.append(SampleTaken(sample(p.name, i)))
    return out


def replay(scenario: Scenario, probes: list[ProbeInfo], run: list[RunEvent]) -> LiveRun:
    """A LiveRun of this scenario fed these events, as the console feeds it."""
    live = LiveRun(
        scenario.name,
        "sandbox",
        probes,
        scenario.invariants(),
        scenario.recovery_probe,
        scenario.backlog_probe,
    )
    for event in run:
        live.apply(event)
    return live


def timeline_of(
    probes: list[ProbeInfo], run: list[RunEvent], windows: list[InjectionWindow]
) -> Timeline:
    """The core's timeline of a whole run: what its result's numbers are computed from."""
    timeline = Timeline()
    for p in probes:
        timeline.register(p.name, p.description)
    for event in run:
        if isinstance(event, SampleTaken):
            timeline.add(event.sample)
    timeline.windows.extend(windows)
    return timeline


def live_run(until_s: float = END_AT, healed: bool = True) -> LiveRun:
    return replay(PostgresRestartOutbox(), PROBES, events(until_s, healed))


def result() -> RunResult:
    """The RunResult such a run ends with, built by the core's own timeline and invariants."""
    timeline = timeline_of(PROBES, events(), [window()])
    scenario = PostgresRestartOutbox()
    spec = {i.name: i for i in scenario.invariants()}
    invariants = [
        spec["no_lost_events"].judge(0),
        spec["no_duplicate_events"].judge(0),
        spec["no_unexpected_events"].judge(0),
        spec["relay_resumes"].judge(1.05),
        spec["backlog_drains"].judge(0, "waited up to 60s"),
    ]
    return RunResult(
        run_id="fixedrun0001",
        scenario=scenario.name,
        hypothesis=scenario.hypothesis,
        target="sandbox",
        outcome="pass",
        started_at=T0,
        finished_at=T0 + 24.5,
        duration_s=24.5,
        phases={"prepare": T0, "inject": T0 + INJECT_AT, "verify": T0 + END_AT},
        parameters=scenario.params.model_dump(),
        probe_rate_hz=RATE,
        injection_windows=[window()],
        invariants=invariants,
        recovery=timeline.recovery(scenario.recovery_probe, scenario.backlog_probe),
        delivery=DeliveryCounts(
            attempted=301,
            acknowledged=301,
            received=301,
            published=301,
            lost=0,
            duplicated=0,
            unexpected=0,
            recovered=0,
        ),
        probes={p.name: timeline.report(p.name, T0) for p in PROBES},
        heal=HealReport(
            faults=[
                FaultHealReport(fault="hard_restart:postgres", lease_id="lease0000001", ok=True)
            ]
        ),
    )


def invariant_events() -> list[RunEvent]:
    return [InvariantChecked(i) for i in result().invariants]


def judged(name: str, measured: float | None, detail: str = ""):
    spec = {i.name: i for i in PostgresRestartOutbox().invariants()}
    return spec[name].judge(measured, detail)


def live_run_with_verdicts() -> LiveRun:
    """Mid-fault, with two invariants already judged: one held, one broke. What live
    judgement shows while Postgres is down (the layout must fit every name beside its value)."""
    run = events(until_s=10.5, healed=False)
    run += [
        InvariantChecked(judged("no_duplicate_events", 0)),
        InvariantChecked(judged("no_unexpected_events", 3, "3 rows not written by this run")),
    ]
    return replay(PostgresRestartOutbox(), PROBES, run)


def failed_result() -> RunResult:
    """A run whose relay came back late and lost rows: FAIL, with the reason the runner gives."""
    base = result()
    invariants = [
        judged("no_lost_events", 7, "7 of 301 acknowledged rows never reached SEA_EVENTS"),
        judged("no_duplicate_events", 0),
        judged("no_unexpected_events", 0),
        judged("relay_resumes", 14.2),
        judged("backlog_drains", 0, "waited up to 60s"),
    ]
    broken = [i.name for i in invariants if not i.passed]
    assert base.delivery is not None
    return base.model_copy(
        update={
            "run_id": "fixedrun0002",
            "outcome": "fail",
            "reason": f"invariant(s) broken: {', '.join(broken)}",
            "invariants": invariants,
            "delivery": base.delivery.model_copy(
                update={"received": 294, "published": 294, "lost": 7}
            ),
        }
    )


def heal_failed_result() -> RunResult:
    """Aborted during the fault, and Postgres never came back: the window stays open, the heal
    report says FAILED with the error, as the runner writes it."""
    base = result()
    open_window = window(healed=False)
    return base.model_copy(
        update={
            "run_id": "fixedrun0003",
            "outcome": "interrupted",
            "reason": "interrupted (signal or abort); heal FAILED",
            "finished_at": T0 + 75.0,
            "duration_s": 75.0,
            "injection_windows": [open_window],
            "invariants": [],
            "heal": HealReport(
                ok=False,
                verified=False,
                faults=[
                    FaultHealReport(
                        fault="hard_restart:postgres",
                        lease_id="lease0000001",
                        ok=False,
                        error="postgres did not accept connections within 60s of its restart",
                    )
                ],
            ),
        }
    )
