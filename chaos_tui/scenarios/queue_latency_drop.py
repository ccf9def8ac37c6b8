"""queue_latency_drop: the request's story. Under patterned load, the link between the
workers and Valkey gets slow and drops connections while the workers fail a share of their
jobs: retries absorb what they can, poison jobs go to the dead letters, no job is lost, and
the backlog drains once it is over."""

from __future__ import annotations

from pydantic import Field

from chaos_tui.core.contracts import Fault, RunContext, hold_s_field
from chaos_tui.core.injector_spec import InjectorScope, InjectorSpec
from chaos_tui.core.model import InvariantResult, InvariantSpec
from chaos_tui.core.platform_target import BrokerLinkParams, PlatformTarget, WorkerInjectorParams
from chaos_tui.platform import jobs
from chaos_tui.scenarios.queue_base import JobAccount, PatternName, QueueParams, QueueScenario


class QueueLatencyDropParams(QueueParams):
    pattern: PatternName = Field("sine", description="how the job rate moves over the run")
    hold_s: float = hold_s_field(
        300.0, 600, "how long the faults last, all at once (also --set duration_s)"
    )
    latency_ms: float = Field(100.0, ge=0, le=10_000, description="added on the broker link")
    jitter_ms: float = Field(50.0, ge=0, le=10_000, description="spread of that latency")
    drop_share: float = Field(
        0.2, ge=0, le=1, description="share of broker connections reset (drops)"
    )
    drop_after_ms: float = Field(
        2_000.0, ge=0, le=60_000, description="how long a connection to be dropped lives first"
    )
    fail_rate: float = Field(0.2, ge=0, le=1, description="chance a worker fails a delivery")
    max_dead_share: float = Field(
        0.01, ge=0, le=1, description="share of the run's jobs the dead letters may take"
    )


Params = QueueLatencyDropParams


class QueueLatencyDrop(QueueScenario):
    name = "queue_latency_drop"
    order = 40
    hypothesis = (
        "When the broker link gets slow and drops connections while workers fail a share of "
        "their jobs, retries absorb the failures, no job is lost, and the backlog drains "
        "within 30 s of the heal."
    )
    runbook = "chaos_tui/runbooks/queue_latency_drop.md"
    Params = QueueLatencyDropParams
    params: QueueLatencyDropParams
    faults_together = True  # the note's story: slow link, drops and failing workers at once

    def steady_state(self) -> dict[str, float | None]:
        return {"queue_primary": None, "backlog": 1000}

    def faults(self, target: PlatformTarget) -> list[Fault]:
        p = self.params
        faults = []
        if p.latency_ms or p.jitter_ms:
            faults.append(
                target.broker_link(
                    BrokerLinkParams(
                        hold_s=p.hold_s,
                        type="latency",
                        attributes={"latency": p.latency_ms, "jitter": p.jitter_ms},
                    )
                )
            )
        if p.drop_share:
            faults.append(
                target.broker_link(
                    BrokerLinkParams(
                        hold_s=p.hold_s,
                        type="reset_peer",
                        attributes={"timeout": p.drop_after_ms},
                        toxicity=p.drop_share,
                    )
                )
            )
        if p.fail_rate:
            faults.append(
                target.worker_injectors(
                    WorkerInjectorParams(
                        hold_s=p.hold_s,
                        injectors=(
                            InjectorSpec(
                                kind="fail",
                                rate=p.fail_rate,
                                scope=InjectorScope(queue=jobs.QUEUE),
                            ),
                        ),
                    )
                )
            )
        return faults

    def invariants(self) -> list[InvariantSpec]:
        return [
            *super().invariants(),
            InvariantSpec(
                name="dead_letter_share",
                description="share of the run's jobs that ended in the dead letters",
                limit=self.params.max_dead_share,
            ),
        ]

    def judge_more(self, ctx: RunContext, account: JobAccount) -> list[InvariantResult]:
        acknowledged = max(account.delivery.acknowledged, 1)
        dlq = self.measurements.get("dead letters") or {}
        growth = ", ".join(
            f"{k} +{v:g}" for k, v in dlq.items() if isinstance(v, float) and k.startswith("growth")
        )
        return [
            self.judge(
                "dead_letter_share",
                round(account.dead / acknowledged, 4),
                f"{account.dead} of {account.delivery.acknowledged} jobs dead-lettered"
                + (f" (DLQ {growth})" if growth else ""),
            )
        ]
