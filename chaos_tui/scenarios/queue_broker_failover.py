"""queue_broker_failover: the Valkey primary is SIGKILLed under load; the sentinels promote
the replica. Enqueues fail for a while (the window is measured), the workers move to the new
primary (the resume time is measured), and no acknowledged job is lost."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, NamedTuple

from pydantic import Field

from chaos_tui.core.contracts import Fault, RunContext, hold_s_field
from chaos_tui.core.lazy import lazy
from chaos_tui.core.model import InvariantResult, InvariantSpec
from chaos_tui.core.platform_target import Endpoints, PlatformTarget, ServiceFaultParams
from chaos_tui.platform import jobs
from chaos_tui.scenarios.job_producer import JobProducer, JobRecord
from chaos_tui.scenarios.queue_base import JobAccount, QueueParams, QueueScenario

if TYPE_CHECKING:
    import redis
else:
    redis = lazy("redis")  # loaded at its first use: the picker lists scenarios without it


class QueueBrokerFailoverParams(QueueParams):
    hold_s: float = hold_s_field(8.0, 120, "how long the old primary stays dead", ge=4)
    failover_limit_s: float = Field(
        15.0,
        gt=0,
        description="enqueues must succeed again (a new primary) within this long of the kill",
    )
    resume_limit_s: float = Field(
        10.0,
        gt=0,
        description="workers must complete a job on the new primary within this long of it",
    )


Params = QueueBrokerFailoverParams


class Switch(NamedTuple):
    """A failover as the job producer saw it."""

    killed_at: float | None
    after: list[JobRecord]  # the sends from the kill on, in order
    refused: list[JobRecord]  # of those, the ones no primary took
    at: JobRecord | None  # the first the new primary took


def primary_now(at: Endpoints) -> str | None:
    """The node the sentinels call primary now (host:port), None when none is named."""
    try:
        return jobs.primary_address(at.queue_sentinels, at.queue_master)
    except redis.RedisError:
        return None


class QueueBrokerFailover(QueueScenario):
    name = "queue_broker_failover"
    order = 42
    hypothesis = (
        "When the Valkey primary dies, the sentinels promote the replica: enqueues succeed "
        "again within 15 s, workers consume from the new primary within 10 s of that, and no "
        "acknowledged job is lost."
    )
    runbook = "chaos_tui/runbooks/queue_broker_failover.md"
    Params = QueueBrokerFailoverParams
    params: QueueBrokerFailoverParams
    recovery_probe = "queue_primary"
    primary_before: str | None = None  # the node the sentinels named when the load began

    async def start_workload(self, ctx: RunContext) -> None:
        at = self.endpoints(ctx)
        self.primary_before = await asyncio.to_thread(primary_now, at)
        await super().start_workload(ctx)

    def faults(self, target: PlatformTarget) -> list[Fault]:
        return [
            target.hard_restart(
                ServiceFaultParams(service="queue_primary", hold_s=self.params.hold_s)
            )
        ]

    def invariants(self) -> list[InvariantSpec]:
        p = self.params
        return [
            *super().invariants(),
            InvariantSpec(
                name="enqueue_resumes",
                description="from the kill to the first enqueue the new primary takes",
                limit=p.failover_limit_s,
                unit="s",
            ),
            InvariantSpec(
                name="workers_resume",
                description="from the new primary taking jobs to the workers completing one",
                limit=p.resume_limit_s,
                unit="s",
            ),
        ]

    def acknowledged(self, ctx: RunContext, producer: JobProducer) -> list[str]:
        """Jobs a replica had, and every job the new primary took once it took over: no
        failover of this run can lose those (the old node comes back as its replica)."""
        switch = self.switch(ctx, producer)
        taken_after = (
            [r.job_id for r in switch.after if r.accepted and r.sent_at >= switch.at.sent_at]
            if switch.at is not None
            else []
        )
        return sorted(set(producer.acknowledged) | set(taken_after))

    @staticmethod
    def switch(ctx: RunContext, producer: JobProducer) -> Switch:
        """The sends after the kill, those refused, and the first one the new primary took:
        the first accepted after the last refusal (after the kill, when none was refused)."""
        windows = ctx.timeline.windows
        if not windows:
            return Switch(None, [], [], None)
        killed_at = windows[0].injected_at
        after = sorted(
            (r for r in producer.records.values() if r.sent_at >= killed_at),
            key=lambda r: r.sent_at,
        )
        refused = [r for r in after if not r.accepted and r.answered_at is not None]
        since = refused[-1].sent_at if refused else killed_at
        taken = next((r for r in after if r.accepted and r.sent_at >= since), None)
        return Switch(killed_at, after, refused, taken)

    async def judge_live(self, ctx: RunContext) -> list[InvariantResult]:
        """enqueue_resumes so far: past its limit with no enqueue taken since the kill it is
        broken for good (measured: the time waited so far); an enqueue taken in time holds
        so far (a later refusal could still move the switch). The rest waits for the
        verdict: jobs still queued are late, not lost."""
        producer = self.producer
        if producer is None:
            return []
        switch = self.switch(ctx, producer)
        if switch.killed_at is None:
            return []
        limit = self.params.failover_limit_s
        # Before a refusal, an enqueue taken may still be the old primary's (the kill lands
        # a moment after the lease): only one taken after a refusal shows the switch.
        if switch.refused and switch.at is not None and switch.at.answered_at is not None:
            took = round(switch.at.answered_at - switch.killed_at, 3)
            return [self.judge("enqueue_resumes", took, f"{len(switch.refused)} enqueues refused")]
        waited = time.time() - switch.killed_at
        if switch.at is not None or waited <= limit:
            return []  # not taken yet, and still in time: nothing to say
        broken = self.judge(
            "enqueue_resumes",
            round(waited, 3),
            f"no enqueue taken since the kill yet ({len(switch.refused)} refused)",
        )
        broken.broke_at = switch.killed_at + limit
        return [broken]

    def judge_more(self, ctx: RunContext, account: JobAccount) -> list[InvariantResult]:
        switch = self.switch(ctx, account.producer)
        if switch.killed_at is None:
            return [self.judge("enqueue_resumes", None), self.judge("workers_resume", None)]
        killed_at, after, refused, switched = (
            switch.killed_at,
            switch.after,
            switch.refused,
            switch.at,
        )
        enqueue_s = resume_s = None
        if switched is not None and switched.answered_at is not None:
            enqueue_s = round(switched.answered_at - killed_at, 3)
            done_after = [
                account.first_done[r.job_id]
                for r in after
                if r.sent_at >= switched.sent_at and r.job_id in account.first_done
            ]
            if done_after:
                resume_s = round(max(0.0, min(done_after) - switched.answered_at), 3)
        if refused:  # from the first refused send to the last refusal
            last = max(r.answered_at or r.sent_at for r in refused)
            self.measurements["enqueue error window s"] = round(last - refused[0].sent_at, 3)
        self.measurements["enqueue errors during failover"] = len(refused)
        now = primary_now(self.endpoints(ctx))
        self.measurements["primary"] = {"before": self.primary_before, "after": now}
        return [
            self.judge(
                "enqueue_resumes",
                enqueue_s,
                f"{len(refused)} enqueues refused"
                if enqueue_s is not None
                else "no enqueue was taken after the kill",
            ),
            self.judge(
                "workers_resume",
                resume_s,
                "" if resume_s is not None else "no job sent after the switch was completed",
            ),
        ]
