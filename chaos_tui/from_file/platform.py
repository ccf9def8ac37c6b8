"""The seed's names for the platform's own probes and checks (`db_connection`,
`no_event_loss`, `decisions_during_outage: deny_all`...). Each belongs to a built-in scenario,
which a file scenario using them runs beside its own parts as its *companion*: the built-in's
probes and workload, and its judgement of the invariants the file names. One engine: the
numbers are the built-in's own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from chaos_tui.core.contracts import Scenario
from chaos_tui.core.errors import UsageError
from chaos_tui.from_file.actions import platform_part
from chaos_tui.scenario_file import model as m

OUTBOX, MESH, OPA, OBSERVE = (
    "postgres_restart_outbox",
    "nats_partition_mesh",
    "opa_restart",
    "openobserve_stall",
)
QUEUE_DROP, QUEUE_CRASH, QUEUE_FAILOVER = (
    "queue_latency_drop",
    "queue_worker_crash",
    "queue_broker_failover",
)
QUEUE = (QUEUE_DROP, QUEUE_CRASH, QUEUE_FAILOVER)  # one probe set, one producer, one account
# A probe kind -> (the built-ins whose probe it is, that probe's name).
NAMED_PROBES: dict[str, tuple[tuple[str, ...], str]] = {
    "db_connection": ((OUTBOX,), "postgres"),
    "outbox_queue_size_lt": ((OUTBOX,), "outbox_backlog"),
    "nats_messages_flowing": ((MESH,), "mirror_silence"),
    "opa_health": ((OPA,), "opa"),
    "policy_decisions_success_rate_gt": ((OPA,), "allow_path"),
    "queue_primary_up": (QUEUE, "queue_primary"),
    "queue_backlog_lt": (QUEUE, "backlog"),
}
# A load kind -> the built-ins whose workload it sets (`jobs:` is the queue's producer).
NAMED_LOADS: dict[str, tuple[str, ...]] = {"jobs": QUEUE}
# What of the built-in's parameters a `jobs:` load sets.
JOB_PARAMS = {"rate_per_s": "job_rate", "pattern": "pattern", "seed": "seed", "work_ms": "work_ms"}
# A check kind -> for each built-in that judges it, the invariants it stands for.
NAMED_CHECKS: dict[str, dict[str, tuple[str, ...]]] = {
    "no_event_loss": {
        OUTBOX: ("no_lost_events", "no_duplicate_events", "no_unexpected_events"),
        MESH: ("no_lost_messages", "no_duplicate_messages"),
        OBSERVE: ("no_lost_markers", "no_duplicate_markers"),
    },
    "nats_message_redelivery": {MESH: ("mirror_catches_up",)},
    "outbox_processing_resumes_within_seconds": {OUTBOX: ("relay_resumes",)},
    "decisions_during_outage": {OPA: ("fails_closed", "never_allows_denied")},
    "verify_outbox_drained": {OUTBOX: ("backlog_drains",)},
    "verify_opa_policies_loaded": {OPA: ("allow_resumes",)},
    # Judged by the file's own check on the built-in's probe (checks.py), not by the built-in.
    "verify_db_healthy": {OUTBOX: ()},
    "no_job_loss": dict.fromkeys(QUEUE, ("no_lost_jobs",)),
    "verify_queue_drained": dict.fromkeys(QUEUE, ("backlog_drains",)),
    "backlog_drains_within_seconds": dict.fromkeys(QUEUE, ("backlog_drains",)),
    "retries_bounded": {QUEUE_CRASH: ("retries_bounded",)},
    "dead_letter_share_max": {QUEUE_DROP: ("dead_letter_share",)},
    "failover_within_seconds": {QUEUE_FAILOVER: ("enqueue_resumes",)},
    "workers_resume_within_seconds": {QUEUE_FAILOVER: ("workers_resume",)},
}
NAMED_CHECKS["no_data_loss"] = NAMED_CHECKS["no_event_loss"]
# The built-in scenario around each part of the platform, when the file names none by check.
PART_SCENARIO = {
    "postgres": OUTBOX,
    "relay": OUTBOX,
    "nats": OUTBOX,
    "opa": OPA,
    "gateway": OPA,
    "sink": OBSERVE,
    "collector": OBSERVE,
    "queue_primary": QUEUE_FAILOVER,
    "job_worker": QUEUE_CRASH,
    "queue_link": QUEUE_DROP,  # a toxic on the broker link (platform_part of `target: valkey`)
}
# A named probe's ceiling in the steady state where the built-in has one of its own.
NAMED_CEILINGS = {"nats_messages_flowing": 5.0}
# A named probe whose value is the ceiling the file gives it.
CEILING_KINDS = ("outbox_queue_size_lt", "queue_backlog_lt")
# A named probe that does not fail while its part is broken -> the built-in's probe that does,
# read for the recovery timings and `recovery_time_max_seconds`: mirror_silence is a number
# that grows through a cut (it fails only when the mirror cannot be read), so "recovered" on
# it would be a vacuous 0 s; the link probe fails for as long as the cut lasts.
RECOVERY_PROBES = {"nats_messages_flowing": "link"}
# A named probe read for recovery only when it is the built-in's own recovery probe: which of
# the queue's probes shows a fault depends on the fault (the primary for a failover, the
# throughput for slow links and crashing workers), so the companion's choice is taken.
COMPANION_RECOVERY = ("queue_primary_up", "queue_backlog_lt")
# A limit a named check carries -> the built-in's parameter it sets.
CHECK_PARAMS = {
    "outbox_processing_resumes_within_seconds": "resume_limit_s",
    "backlog_drains_within_seconds": "drain_limit_s",
    "dead_letter_share_max": "max_dead_share",
    "failover_within_seconds": "failover_limit_s",
    "workers_resume_within_seconds": "resume_limit_s",
}


@dataclass
class Companion:
    """The built-in scenario a file scenario runs beside, and what of it the file uses."""

    scenario: Scenario[Any]
    probes: dict[str, str] = field(default_factory=dict)  # file probe name -> built-in's
    ceilings: dict[str, float | None] = field(default_factory=dict)  # built-in probe -> ceiling
    invariants: list[str] = field(default_factory=list)  # the built-in's, to judge


def part_scenario(action: m.ActionBase) -> str | None:
    """The built-in scenario around the platform part an action names."""
    part = platform_part(action)
    if part is None:
        return None
    if part == "nats" and isinstance(action, m.PartitionAction):
        return MESH  # the link between the mesh's domains
    if isinstance(action, m.WorkerInjectorAction):
        crash = any(spec.kind == "crash" for spec in action.injectors)
        return QUEUE_CRASH if crash else QUEUE_DROP
    return PART_SCENARIO[part]


def named_kinds(spec: m.FileScenario) -> list[str]:
    """The platform's named probes, loads and checks a file scenario uses, in file order."""
    kinds = [p.kind for p in spec.steady_state if p.kind in NAMED_PROBES]
    kinds += [entry.TAGS[0] for entry in spec.load if entry.TAGS[0] in NAMED_LOADS]
    kinds += [c.TAGS[0] for c in spec.validation if c.TAGS[0] in NAMED_CHECKS]
    kinds += [s.TAGS[0] for s in spec.cleanup if s.TAGS[0] in NAMED_CHECKS]
    return kinds


def owners(kind: str) -> set[str]:
    """The built-ins that serve a named probe, load or check."""
    if kind in NAMED_PROBES:
        return set(NAMED_PROBES[kind][0])
    if kind in NAMED_LOADS:
        return set(NAMED_LOADS[kind])
    return set(NAMED_CHECKS[kind])


def companion_name(spec: m.FileScenario) -> str | None:
    """The built-in the file's named probes and checks call for (None: it names none). Known
    from the file alone, so the scenario's class can take the built-in's recovery and backlog
    probes and its runbook."""
    named = named_kinds(spec)
    if not named:
        return None
    candidates: set[str] | None = None
    for kind in named:
        candidates = owners(kind) if candidates is None else candidates & owners(kind)
    by_action = [s for s in (part_scenario(a) for a in spec.actions) if s is not None]
    if not candidates:
        raise UsageError(
            f"{', '.join(dict.fromkeys(named))} are checked by different built-in scenarios: "
            "one scenario of the file can use the names of one of them"
        )
    return next((s for s in by_action if s in candidates), None) or sorted(candidates)[0]


def recovery_probe(spec: m.FileScenario, companion_recovery: str | None = None) -> str:
    """The probe the recovery timings read: the first steady-state probe (a named one as the
    built-in calls it, or the probe that shows its fault: for the queue's, the companion's
    own recovery probe, `companion_recovery`)."""
    first = spec.steady_state[0]
    if first.kind in COMPANION_RECOVERY and companion_recovery is not None:
        return companion_recovery
    if first.kind in NAMED_PROBES:
        return RECOVERY_PROBES.get(first.kind, NAMED_PROBES[first.kind][1])
    return first.probe_name


def companion_for(
    spec: m.FileScenario, builtins: dict[str, type[Scenario[Any]]], params: dict[str, Any]
) -> Companion | None:
    """The companion the file's named probes and checks call for, or None when it names none.
    `params` are the run's phases and hold, passed to the built-in's parameters."""
    chosen = companion_name(spec)
    if chosen is None:
        return None
    named = named_kinds(spec)
    cls = builtins[chosen]
    values = dict(params)
    for check in spec.validation:
        kind = check.TAGS[0]
        if kind in CHECK_PARAMS:
            values[CHECK_PARAMS[kind]] = getattr(check, kind)
    for entry in spec.load:
        if isinstance(entry, m.JobsLoad):
            given = entry.jobs.model_dump(exclude_none=True)
            values.update((JOB_PARAMS[k], v) for k, v in given.items())
    known = set(cls.Params.model_fields)
    try:
        built = cls(cls.Params(**{k: v for k, v in values.items() if k in known}))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise UsageError(
            f"{chosen} (which judges {', '.join(dict.fromkeys(named))}) refuses "
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
        ) from None
    companion = Companion(built)
    for probe in spec.steady_state:
        if probe.kind in NAMED_PROBES:
            ours = NAMED_PROBES[probe.kind][1]
            companion.probes[probe.probe_name] = ours
            ceiling = (
                getattr(probe, probe.kind)
                if probe.kind in CEILING_KINDS
                else NAMED_CEILINGS.get(probe.kind)
            )
            companion.ceilings[ours] = float(ceiling) if ceiling is not None else None
    for kind in named:
        if kind in NAMED_CHECKS:
            companion.invariants += [
                i for i in NAMED_CHECKS[kind][chosen] if i not in companion.invariants
            ]
    return companion
