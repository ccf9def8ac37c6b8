"""A queue_latency_drop run for the console's tests: fixed times, fixed samples, the three faults
of the scenario (broker latency, broker drops, a worker failure rate) live together.

The events are those a real run emits (windows carrying their planned heal, TTL and, for the
worker injectors, a line per injector), written out by hand so a screenshot is the same on every
machine. The runner holds one fault at a time today; the three overlap here on purpose, as the
most the panels must show at once.
"""

from __future__ import annotations

import tui_data
from chaos_tui.core.events import (
    FaultHealed,
    FaultInjected,
    Note,
    PhaseChanged,
    RunEvent,
    SampleTaken,
)
from chaos_tui.core.injector_spec import InjectorScope, InjectorSpec
from chaos_tui.core.model import (
    DeliveryCounts,
    FaultHealReport,
    HealReport,
    InjectionWindow,
    ProbeSample,
    RunResult,
)
from chaos_tui.faults.leased import injector_lines
from chaos_tui.live import LiveRun, ProbeInfo
from chaos_tui.scenarios.queue_latency_drop import QueueLatencyDrop

T0 = 1_764_200_000.0  # 2025-11-26 23:33:20 UTC
RATE = 10
INJECT_AT, HOLD_S, TTL_S, END_AT = 6.0, 8.0, 18.0, 24.0  # seconds; the TTL is hold + 10 s
HEAL_AT = INJECT_AT + HOLD_S
PROBES = [
    ProbeInfo("queue_primary", "PING the sentinels' primary (value: its port)"),
    ProbeInfo("backlog", "jobs queued, in flight or waiting to retry", "jobs"),
    ProbeInfo("retrying", "jobs waiting to be retried", "jobs"),
    ProbeInfo("dead_letters", "jobs in the dead-letter queue", "jobs"),
    ProbeInfo("throughput", "jobs completed per second", "jobs/s"),
    ProbeInfo("job_latency", "median job latency, enqueue to done (ms)", "ms"),
]
FAIL = InjectorSpec(kind="fail", rate=0.2, scope=InjectorScope(queue="chaos_jobs"))
SLOW = InjectorSpec(
    kind="delay", delay_ms=50, scope=InjectorScope(actor="do_job", percent=25, worker="w1")
)
# (fault, description, parts, seconds after INJECT_AT it was taken)
FAULTS = [
    (
        "broker_link:latency",
        "latency (latency=100, jitter=50) on 100% of the job worker's Valkey connections "
        "(queue-proxy-1, queue-proxy-2, downstream) for 8s",
        (),
        0.0,
    ),
    (
        "broker_link:reset_peer",
        "reset_peer (timeout=2000) on 20% of the job worker's Valkey connections "
        "(queue-proxy-1, queue-proxy-2, downstream) for 8s",
        (),
        0.1,
    ),
    (
        "worker_injectors:fail,delay",
        "2 worker injector(s) (fail, delay) for 8s",
        injector_lines([FAIL.model_dump(mode="json"), SLOW.model_dump(mode="json")]),
        0.2,
    ),
]


def windows(healed: bool = True) -> list[InjectionWindow]:
    out = []
    for i, (fault, description, parts, offset) in enumerate(FAULTS):
        injected = T0 + INJECT_AT + offset
        applied = injected + 0.05
        out.append(
            InjectionWindow(
                fault=fault,
                lease_id=f"queuelease{i:02d}",
                description=description,
                injected_at=injected,
                applied_at=applied,
                planned_heal_at=applied + HOLD_S,
                expires_at=injected + TTL_S,
                parts=list(parts),
                heal_started_at=applied + HOLD_S if healed else None,
                healed_at=applied + HOLD_S + 0.1 if healed else None,
            )
        )
    return out


def sample(probe: str, i: int) -> ProbeSample:
    """Probe `probe` at tick i (10 Hz): the backlog and retries rise under the faults and drain
    after, the dead letters grow by 12 during and 3 after, throughput dips, latency rises."""
    t = T0 + i / RATE
    s = t - T0
    during = INJECT_AT <= s < HEAL_AT
    after = max(0.0, s - HEAL_AT)
    latency = 0.8 + (i % 5) * 0.2
    if probe == "queue_primary":
        return ProbeSample(probe, t, True, latency, 6380.0)
    if probe == "backlog":
        if during and i % 23 == 0:  # a dropped connection, now and then
            return ProbeSample(probe, t, False, None, None, "Connection reset by peer")
        if during:
            value = 3 + (s - INJECT_AT) * 7
        else:
            value = max(3.0, 3 + HOLD_S * 7 - after * 25) if after else 3.0 + i % 3
        return ProbeSample(probe, t, True, latency, float(round(value)))
    if probe == "retrying":
        value = 2 + (i % 9) if during else max(0, 6 - round(after * 3)) if after else 0
        return ProbeSample(probe, t, True, latency, float(value))
    if probe == "dead_letters":
        if during:
            value = round((s - INJECT_AT) * 1.5)
        else:
            value = min(15, 12 + round(after)) if after else 0
        return ProbeSample(probe, t, True, latency, float(value))
    if probe == "throughput":
        value = 20 + (i % 4) - (8 if during else 0) + (14 if 0 < after < 3 else 0)
        return ProbeSample(probe, t, True, latency, float(value))
    value = 300.0 + (i % 6) * 20 if during else 45.0 + (i % 5) * 3  # job_latency, ms
    return ProbeSample(probe, t, True, latency + 1.0, None if i % 10 == 5 else value)


def events(until_s: float = END_AT, healed: bool = True) -> list[RunEvent]:
    out: list[RunEvent] = [
        PhaseChanged("prepare", T0, "target sandbox"),
        PhaseChanged("steady_state", T0 + 0.5),
        PhaseChanged("warmup", T0 + 2.0, "4s of load before the fault"),
        Note("enqueueing 20 jobs/s (sine, seed 1), 20 ms of work each", T0 + 2.0),
    ]
    taken = windows(healed=False)
    done = windows()
    for i in range(int(until_s * RATE) + 1):
        t = T0 + i / RATE
        for live, closed in zip(taken, done, strict=True):
            if live.injected_at <= t < live.injected_at + 1 / RATE:
                out.append(PhaseChanged("inject", live.injected_at, live.fault))
                out.append(FaultInjected(live))
            if healed and closed.healed_at and closed.healed_at <= t < closed.healed_at + 1 / RATE:
                out.append(FaultHealed(closed, True))
        if healed and abs(t - (T0 + HEAL_AT + 0.5)) < 1e-9:
            out.append(PhaseChanged("recover", t, "6s of load after the heal"))
        for p in PROBES:
            out.append(SampleTaken(sample(p.name, i)))
    return out


def live_run(until_s: float = END_AT, healed: bool = True) -> LiveRun:
    return tui_data.replay(QueueLatencyDrop(), PROBES, events(until_s, healed))


def result() -> RunResult:
    """The result such a run ends with: the core's own timeline and the measurements the
    queue scenarios record (their keys and shapes)."""
    timeline = tui_data.timeline_of(PROBES, events(), windows())
    scenario = QueueLatencyDrop()
    spec = {i.name: i for i in scenario.invariants()}
    recovery = timeline.recovery(scenario.recovery_probe, scenario.backlog_probe)
    return RunResult(
        run_id="fixedqueue01",
        scenario=scenario.name,
        hypothesis=scenario.hypothesis,
        target="sandbox",
        outcome="fail",
        reason="invariant(s) broken: dead_letter_share",
        started_at=T0,
        finished_at=T0 + 31.0,
        duration_s=31.0,
        phases={"prepare": T0, "inject": T0 + INJECT_AT, "verify": T0 + END_AT},
        parameters={"hold_s": HOLD_S, "job_rate": 20.0, "fail_rate": 0.2},
        probe_rate_hz=RATE,
        injection_windows=windows(),
        invariants=[
            spec["no_lost_jobs"].judge(0),
            spec["backlog_drains"].judge(recovery.backlog_drain_s),
            spec["dead_letter_share"].judge(
                0.0313, "15 of 480 jobs dead-lettered (DLQ growth during +12, growth after +3)"
            ),
        ],
        recovery=recovery,
        delivery=DeliveryCounts(
            attempted=482,
            acknowledged=480,
            received=482,
            published=480,
            lost=0,
            duplicated=2,
            unexpected=0,
            recovered=0,
        ),
        measurements={
            "jobs": {
                "sent": 482,
                "acknowledged": 480,
                "completed": 465,
                "dead_lettered": 15,
                "lost": 0,
                "duplicated": 2,
                "lost_unreplicated": 0,
            },
            "enqueue error rate": {"before": 0.0, "during": 0.0125, "after": 0.0},
            "job latency ms (before)": {"p50": 46.0, "p95": 57.0, "p99": 61.0},
            "job latency ms (during)": {"p50": 352.0, "p95": 410.0, "p99": 433.5},
            "job latency ms (after)": {"p50": 58.0, "p95": 121.0, "p99": 160.0},
            "retries": {"completed after a retry": 88, "most": 3},
            "dead letters": {
                "before": 0.0,
                "at heal": 12.0,
                "after": 15.0,
                "growth during": 12.0,
                "growth after": 3.0,
            },
        },
        probes={p.name: timeline.report(p.name, T0) for p in PROBES},
        heal=HealReport(
            faults=[FaultHealReport(fault=w.fault, lease_id=w.lease_id, ok=True) for w in windows()]
        ),
        runbook=scenario.runbook,
    )
