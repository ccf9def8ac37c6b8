"""queue_worker_crash: workers die mid-job and are restarted. No job may be lost; a job may
run twice (at-least-once is the honest contract: a worker that dies after the work and
before the ack leaves it to be done again), so duplicates are counted and reported, and no
job is retried beyond the retry budget."""

from __future__ import annotations

import asyncio

from pydantic import Field

from chaos_tui.core.contracts import Fault, RunContext, hold_s_field
from chaos_tui.core.injector_spec import InjectorScope, InjectorSpec
from chaos_tui.core.model import InvariantResult, InvariantSpec
from chaos_tui.core.platform_target import PlatformTarget, WorkerInjectorParams
from chaos_tui.platform import jobs
from chaos_tui.scenarios.queue_base import (
    JobAccount,
    QueueParams,
    QueueScenario,
    read_deliveries,
)


class QueueWorkerCrashParams(QueueParams):
    job_rate: float = Field(10.0, gt=0, le=300, description="jobs per second (the pattern's mean)")
    work_ms: float = Field(200.0, ge=0, le=10_000, description="each job's own work")
    hold_s: float = hold_s_field(10.0, 600, "how long workers keep crashing")
    crash_rate: float = Field(
        0.05, gt=0, le=1, description="chance a worker dies half-way through a job"
    )
    crash_after_rate: float = Field(
        0.02, ge=0, le=1, description="chance a worker dies after a job's work, before its ack"
    )
    max_redeliveries: int = Field(
        2, ge=0, le=100, description="redeliveries after a crash one job may take"
    )


Params = QueueWorkerCrashParams


class QueueWorkerCrash(QueueScenario):
    name = "queue_worker_crash"
    order = 41
    hypothesis = (
        "When workers die mid-job and restart, no job is lost and none runs more often than "
        "its retries and a few redeliveries allow; jobs the dead workers held are redelivered "
        "(duplicates are counted: at-least-once), and the backlog drains within 30 s of the "
        "heal."
    )
    runbook = "chaos_tui/runbooks/queue_worker_crash.md"
    Params = QueueWorkerCrashParams
    params: QueueWorkerCrashParams

    def faults(self, target: PlatformTarget) -> list[Fault]:
        p = self.params
        scope = InjectorScope(queue=jobs.QUEUE)
        # Mid-job (at the worker's checkpoint: half the work done, nothing recorded), and
        # after the work before the ack: that job runs again, the at-least-once duplicate.
        crashes = [InjectorSpec(kind="crash", rate=p.crash_rate, scope=scope, at="checkpoint")]
        if p.crash_after_rate:
            crashes.append(
                InjectorSpec(kind="crash", rate=p.crash_after_rate, scope=scope, at="after")
            )
        params = WorkerInjectorParams(hold_s=p.hold_s, injectors=tuple(crashes))
        return [target.worker_injectors(params)]

    def invariants(self) -> list[InvariantSpec]:
        return [
            *super().invariants(),
            InvariantSpec(
                name="retries_bounded",
                description=(
                    f"no job began more often than 1 try, {jobs.MAX_RETRIES} retries and "
                    f"{self.params.max_redeliveries} redeliveries after a crash"
                ),
                limit=1 + jobs.MAX_RETRIES + self.params.max_redeliveries,
                unit="runs",
            ),
        ]

    async def judge_live(self, ctx: RunContext) -> list[InvariantResult]:
        """retries_bounded from the ledger's count of deliveries so far: a job begun more
        often than allowed stays so. Lost jobs wait for the verdict (a job not done yet may
        be late, or waiting for a retry)."""
        if self.run_id is None:
            return []
        runs = await asyncio.to_thread(read_deliveries, self.endpoints(ctx), self.run_id)
        if not runs:
            return []
        self.measurements["deliveries"] = {
            "most of one job": max(runs.values()),
            "jobs begun more than once": sum(n > 1 for n in runs.values()),
        }
        return [self.judge("retries_bounded", max(runs.values()), "deliveries so far")]

    def judge_more(self, ctx: RunContext, account: JobAccount) -> list[InvariantResult]:
        most = max(account.deliveries.values(), default=None)
        d = account.delivery
        return [
            self.judge(
                "retries_bounded",
                most,
                f"{d.duplicated} jobs completed more than once (at-least-once: counted, allowed)",
            )
        ]
