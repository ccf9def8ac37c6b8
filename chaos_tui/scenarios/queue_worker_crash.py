"""queue_worker_crash: workers die mid-job and are restarted. No job may be lost; a job may
run twice (at-least-once is the honest contract: a worker that dies after the work and
before the ack leaves it to be done again), so duplicates are counted and reported, and no
job is retried beyond the retry budget."""

from __future__ import annotations

from pydantic import Field

from chaos_tui.core.contracts import Fault, RunContext, hold_s_field
from chaos_tui.core.injector_spec import InjectorScope, InjectorSpec
from chaos_tui.core.model import InvariantResult, InvariantSpec
from chaos_tui.core.platform_target import PlatformTarget, WorkerInjectorParams
from chaos_tui.platform import jobs
from chaos_tui.scenarios.queue_base import JobAccount, QueueParams, QueueScenario


class QueueWorkerCrashParams(QueueParams):
    job_rate: float = Field(10.0, gt=0, le=300, description="jobs per second (the pattern's mean)")
    work_ms: float = Field(200.0, ge=0, le=10_000, description="each job's own work")
    hold_s: float = hold_s_field(10.0, 600, "how long workers keep crashing")
    crash_rate: float = Field(
        0.05, gt=0, le=1, description="chance a worker process dies on a delivery"
    )


Params = QueueWorkerCrashParams


class QueueWorkerCrash(QueueScenario):
    name = "queue_worker_crash"
    order = 41
    hypothesis = (
        "When workers die mid-job and restart, no job is lost and none is retried beyond the "
        "retry budget; jobs the dead workers held are redelivered (duplicates are counted: "
        "at-least-once), and the backlog drains within 30 s of the heal."
    )
    runbook = "docs/runbooks/queue_worker_crash.md"
    Params = QueueWorkerCrashParams
    params: QueueWorkerCrashParams

    def faults(self, target: PlatformTarget) -> list[Fault]:
        p = self.params
        crash = InjectorSpec(kind="crash", rate=p.crash_rate, scope=InjectorScope(queue=jobs.QUEUE))
        return [target.worker_injectors(WorkerInjectorParams(hold_s=p.hold_s, injectors=(crash,)))]

    def invariants(self) -> list[InvariantSpec]:
        return [
            *super().invariants(),
            InvariantSpec(
                name="retries_bounded",
                description="no job completed after more retries than the budget",
                limit=jobs.MAX_RETRIES,
                unit="retries",
            ),
        ]

    def judge_more(self, ctx: RunContext, account: JobAccount) -> list[InvariantResult]:
        most = max((attempt - 1 for _, _, attempt, _ in account.done), default=0)  # 1: first try
        d = account.delivery
        return [
            self.judge(
                "retries_bounded",
                most,
                f"{d.duplicated} jobs ran more than once (at-least-once: counted, allowed)",
            )
        ]
