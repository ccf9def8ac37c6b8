"""What the job-queue scenarios share: the probes, the patterned job load, and the
Jepsen-style count of what became of every job (completed, dead-lettered, lost, duplicated),
with the numbers a game day asks for: backlog drain, error rate and job latency by phase,
retries, and the dead-letter queue before, during and after the fault.

At-least-once is the honest contract of a queue with retries and redelivery: a job may run
twice (a worker dies after the work, before the ack). Duplicates are counted and reported;
a lost job fails the run.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import TYPE_CHECKING, Literal, cast

from pydantic import Field

from chaos_tui.core.contracts import Probe, RunContext, ScenarioParams
from chaos_tui.core.delivery import check_delivery, examples
from chaos_tui.core.lazy import lazy
from chaos_tui.core.model import InvariantResult, InvariantSpec
from chaos_tui.core.platform_target import Endpoints, PlatformTarget
from chaos_tui.core.timeline import percentile
from chaos_tui.load.driver import PatternedLoad
from chaos_tui.load.patterns import Burst, Constant, PatternBase, Ramp, Sine, Spike, Step
from chaos_tui.platform import jobs
from chaos_tui.probes.queue_probe import (
    DeadLetterProbe,
    JobLatencyProbe,
    QueueBacklogProbe,
    QueuePrimaryProbe,
    RetryingProbe,
    ThroughputProbe,
)
from chaos_tui.scenarios.base import PlatformScenario
from chaos_tui.scenarios.job_producer import JobProducer

if TYPE_CHECKING:
    import redis
else:
    redis = lazy("redis")  # loaded at its first use: the picker lists scenarios without it

PHASES = ("before", "during", "after")
CONTRACT = (
    "at-least-once: a job whose worker died after the work and before the ack runs again, so "
    "duplicates are counted and reported, not failed; a lost job fails the run"
)
MAX_IN_FLIGHT = 8  # enqueues waiting on the broker at once; more are skipped (and counted)
PatternName = Literal["constant", "ramp", "step", "spike", "sine", "burst"]


class QueueParams(ScenarioParams):
    job_rate: float = Field(20.0, gt=0, le=300, description="jobs per second (the pattern's mean)")
    pattern: PatternName = Field("constant", description="how the job rate moves over the run")
    seed: int = Field(1, ge=0, description="the load's seed: the same seed, the same run")
    work_ms: float = Field(20.0, ge=0, le=10_000, description="each job's own work")
    drain_timeout_s: float = Field(
        60.0, gt=0, le=170, description="longest wait for the job backlog to drain"
    )
    drain_limit_s: float = Field(
        30.0, gt=0, description="the backlog must drain within this long of the heal"
    )
    latency_slo_ms: float = Field(
        500.0, gt=0, description="a job slower than this (median) counts as degraded"
    )


class QueueScenario(PlatformScenario):
    """A scenario of the job queue (no `name`: not listed itself)."""

    profile = "chaos-queue"
    Params = QueueParams
    params: QueueParams
    backlog_probe = "backlog"
    recovery_probe = "job_latency"
    invariant_budget_s = 150.0

    def __init__(self, params: QueueParams | None = None) -> None:
        super().__init__(params)
        self.producer: JobProducer | None = None
        self.load: PatternedLoad | None = None
        self.run_id: str | None = None
        self.restarts_before: int | None = None  # the worker restart count when the load began

    # -- plan -------------------------------------------------------------------------------

    def probes(self, target: PlatformTarget) -> list[Probe]:
        at = target.endpoints(self.profile)
        sentinels, master = at.queue_sentinels, at.queue_master
        return [
            QueuePrimaryProbe("queue_primary", sentinels, master),
            QueueBacklogProbe("backlog", sentinels, master),
            RetryingProbe("retrying", sentinels, master),
            DeadLetterProbe("dead_letters", sentinels, master),
            ThroughputProbe("throughput", at.queue_ledger_url, lambda: self.run_id),
            JobLatencyProbe(
                "job_latency",
                at.queue_ledger_url,
                lambda: self.run_id,
                self._enqueued_at,
                self.params.latency_slo_ms,
            ),
        ]

    def steady_state(self) -> dict[str, float | None]:
        return {"queue_primary": None, "backlog": 1000}

    def pattern(self) -> PatternBase:
        p = self.params
        return pattern_of(p.pattern, p.job_rate, self.expected_duration_s())

    def workload(self) -> str:
        p = self.params
        return (
            f"{p.job_rate:g} jobs/s ({p.pattern}, seed {p.seed}), {p.work_ms:g} ms of work "
            f"each; every job followed to completion or the dead letters"
        )

    def _enqueued_at(self, job_id: str) -> float | None:
        return self.producer.enqueued_at(job_id) if self.producer is not None else None

    # -- run --------------------------------------------------------------------------------

    async def start_workload(self, ctx: RunContext) -> None:
        at = self.endpoints(ctx)
        self.run_id = ctx.run_id
        self.producer = JobProducer(
            at.queue_sentinels, at.queue_master, ctx.run_id, round(self.params.work_ms)
        )
        self.load = PatternedLoad(
            self.pattern(),
            self.producer.submit,
            name="jobs",
            seed=self.params.seed,
            poisson=True,  # arrivals as real traffic has them, and the same for one seed
            max_in_flight=MAX_IN_FLIGHT,
            drain_s=3.0,
        )
        self.restarts_before = await asyncio.to_thread(read_restarts, at)
        self.load.start()
        ctx.note(f"enqueueing {self.workload()}")

    async def stop_workload(self, ctx: RunContext) -> None:
        if self.load is not None:
            await self.load.stop()
        if self.producer is not None:
            await asyncio.to_thread(self.producer.close)

    # -- verdict ----------------------------------------------------------------------------

    def invariants(self) -> list[InvariantSpec]:
        p = self.params
        return [
            InvariantSpec(
                name="no_lost_jobs",
                description="every acknowledged job completed or reached the dead letters",
                limit=0,
                unit="jobs",
            ),
            InvariantSpec(
                name="backlog_drains",
                description="the backlog is back to its level before the fault after the heal",
                limit=p.drain_limit_s,
                unit="s",
            ),
        ]

    async def check_invariants(self, ctx: RunContext) -> list[InvariantResult]:
        account = await self.account(ctx)
        d = account.delivery
        ctx.note(
            f"jobs: {d.acknowledged} acknowledged, {account.completed} completed, "
            f"{account.dead} dead-lettered, {d.lost} lost, {d.duplicated} duplicated"
        )
        drain = ctx.timeline.recovery(None, self.backlog_probe).backlog_drain_s
        if drain is None and account.left == 0:
            drain = 0.0  # the backlog never rose above its level before the fault
        return [
            self.judge("no_lost_jobs", d.lost, examples(d.lost_sample)),
            self.judge(
                "backlog_drains",
                drain,
                "" if drain is not None else f"{account.left} jobs still queued",
            ),
            *self.judge_more(ctx, account),
        ]

    def judge_more(self, ctx: RunContext, account: JobAccount) -> list[InvariantResult]:
        """A scenario's own invariants, from the same account."""
        return []

    def acknowledged(self, ctx: RunContext, producer: JobProducer) -> list[str]:
        """The jobs no fault of this run may lose: those a replica had (WAIT 1)."""
        return producer.acknowledged

    async def account(self, ctx: RunContext) -> JobAccount:
        """Wait (bounded) until every acknowledged job is accounted for and nothing is left
        queued, then count what became of each job and record the measurements."""
        producer = self.producer
        assert producer is not None, "account before start_workload"
        at = self.endpoints(ctx)
        deadline = time.monotonic() + self.params.drain_timeout_s
        wanted = set(self.acknowledged(ctx, producer))
        while True:
            done, dead, left = await asyncio.to_thread(read_jobs, at, ctx.run_id)
            seen = {job_id for job_id, _, _, _ in done} | set(dead)
            if (left == 0 and wanted <= seen) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        account = JobAccount(producer, done, dead, left, sorted(wanted))
        account.deliveries = await asyncio.to_thread(read_deliveries, at, ctx.run_id)
        self.delivery = account.delivery
        self.measurements.update(account.measurements(ctx))
        restarts = await asyncio.to_thread(read_restarts, at)
        if restarts is not None and self.restarts_before is not None:
            self.measurements["worker restarts"] = restarts - self.restarts_before
        return account


def read_restarts(at: Endpoints) -> int | None:
    """How often the job worker was restarted so far (None: the ledger did not answer)."""
    ledger = jobs.ledger_client(at.queue_ledger_url)
    try:
        return jobs.worker_restarts(ledger)
    except redis.RedisError:
        return None
    finally:
        ledger.close()


def read_jobs(
    at: Endpoints, run_id: str
) -> tuple[list[tuple[str, str, int, float]], list[str], int | None]:
    """A run's completions (from the ledger), its dead-lettered job ids and the jobs still
    queued, in flight or waiting to retry (None when no primary answered: ask again)."""
    ledger = jobs.ledger_client(at.queue_ledger_url)
    try:
        done = jobs.ledger_entries(ledger, run_id)
    finally:
        ledger.close()
    return done, *read_queue(at, run_id)


def read_deliveries(at: Endpoints, run_id: str) -> dict[str, int]:
    """How often a worker began each of the run's jobs."""
    ledger = jobs.ledger_client(at.queue_ledger_url)
    try:
        raw = cast("dict[str, str]", ledger.hgetall(jobs.deliveries_key(run_id)))
    except redis.RedisError:
        return {}
    finally:
        ledger.close()
    return {job_id: int(count) for job_id, count in raw.items()}


def read_queue(at: Endpoints, run_id: str) -> tuple[list[str], int | None]:
    """The run's dead-lettered job ids and the jobs still queued, in flight or waiting to
    retry (None when no primary answered)."""
    try:
        primary = jobs.primary_client(at.queue_sentinels, at.queue_master)
    except redis.RedisError:
        return [], None
    try:
        depths = jobs.queue_depths(primary)
        bodies = primary.hvals(jobs.dead_key() + ".msgs")
    except redis.RedisError:  # a primary still switching: asked again on the next round
        return [], None
    finally:
        primary.close()
    dead = []
    for body in bodies:
        try:
            args = json.loads(body).get("args") or []
        except ValueError:
            continue
        if len(args) >= 2 and args[0] == run_id:
            dead.append(str(args[1]))
    return dead, depths["ready"] + depths["in_flight"] + depths["delayed"]


def pattern_of(name: str, rate: float, duration_s: float) -> PatternBase:
    """The pattern of this name whose mean over the run is about `rate` jobs/s: the shape
    is the parameter, the scale stays the one the user gave."""
    third = max(duration_s / 3, 1.0)
    if name == "ramp":
        return Ramp(kind="ramp", start_per_s=rate / 2, end_per_s=rate * 1.5, over_s=duration_s)
    if name == "step":
        return Step(kind="step", rates_per_s=[rate / 2, rate, rate * 1.5], every_s=third)
    if name == "spike":  # three times the rate for a tenth of the run, in its middle
        width = max(duration_s / 10, 1.0)
        return Spike(
            kind="spike", base_per_s=rate, peak_per_s=rate * 3, at_s=duration_s / 2, for_s=width
        )
    if name == "sine":
        period = min(max(duration_s / 2, 2.0), 60.0)
        return Sine(kind="sine", mean_per_s=rate, amplitude_per_s=rate / 2, period_s=period)
    if name == "burst":  # bursts of three times the rate, 2 s of every 10
        return Burst(
            kind="burst", base_per_s=rate / 2, burst_per_s=rate * 3, every_s=10.0, for_s=2.0
        )
    return Constant(kind="constant", rate_per_s=rate)


class JobAccount:
    """What became of the run's jobs, and the numbers the result carries."""

    def __init__(
        self,
        producer: JobProducer,
        done: list[tuple[str, str, int, float]],
        dead: list[str],
        left: int | None,
        acknowledged: list[str],
    ) -> None:
        self.producer = producer
        self.done = done
        self.dead_ids = dead
        self.left = left
        ids = [job_id for job_id, _, _, _ in done]
        self.completions = Counter(ids)
        self.completed = len(self.completions)
        self.dead = len(set(dead))
        # Dead-lettered jobs are accounted for (the queue kept them): seen once each.
        self.delivery = check_delivery(producer.accepted, acknowledged, ids + sorted(set(dead)))
        self.deliveries: dict[str, int] = {}  # job id -> how often a worker began it
        self.first_done: dict[str, float] = {}  # job id -> its first completion
        for job_id, _, _, finished in done:
            self.first_done[job_id] = min(finished, self.first_done.get(job_id, finished))
        seen = set(ids) | set(dead)
        self.unreplicated_lost = sorted(set(producer.accepted) - set(acknowledged) - seen)

    def measurements(self, ctx: RunContext) -> dict[str, object]:
        records = self.producer.records.values()
        phase_of = ctx.timeline.phase_of
        first_done = self.first_done
        out: dict[str, object] = {
            "delivery contract": CONTRACT,
            "jobs": {
                "sent": len(self.producer.records),
                "acknowledged": self.delivery.acknowledged,
                "completed": self.completed,
                "dead_lettered": self.dead,
                "lost": self.delivery.lost,
                "duplicated": self.delivery.duplicated,
                "lost_unreplicated": len(self.unreplicated_lost),
            },
        }
        sent_by_phase = Counter(phase_of(r.sent_at) for r in records)
        failed_by_phase = Counter(phase_of(r.sent_at) for r in records if not r.accepted)
        out["enqueue error rate"] = {
            phase: round(failed_by_phase[phase] / sent_by_phase[phase], 4)
            for phase in PHASES
            if sent_by_phase[phase]
        }
        # Deliveries that failed, by the phase the job was sent in: every completion's earlier
        # attempts, and every try of a dead-lettered job.
        attempts: Counter[str] = Counter()
        failed: Counter[str] = Counter()
        sent_at = {r.job_id: r.sent_at for r in records}
        for job_id, _, attempt, _ in self.done:
            if job_id in sent_at:
                phase = phase_of(sent_at[job_id])
                attempts[phase] += attempt
                failed[phase] += attempt - 1
        for job_id in set(self.dead_ids):
            if job_id in sent_at:
                phase = phase_of(sent_at[job_id])
                attempts[phase] += jobs.MAX_RETRIES + 1
                failed[phase] += jobs.MAX_RETRIES + 1
        out["job attempts failed"] = {
            phase: round(failed[phase] / attempts[phase], 4) for phase in PHASES if attempts[phase]
        }
        for phase in PHASES:
            latencies = sorted(
                (first_done[r.job_id] - r.sent_at) * 1000.0
                for r in records
                if r.job_id in first_done and phase_of(r.sent_at) == phase
            )
            if latencies:
                out[f"job latency ms ({phase})"] = {
                    f"p{pct}": round(percentile(latencies, pct), 1) for pct in (50, 95, 99)
                }
        retries = [attempt - 1 for _, _, attempt, _ in self.done if attempt > 1]  # 1: first try
        out["retries"] = {"completed after a retry": len(retries), "most": max(retries, default=0)}
        runs = self.deliveries.values()
        out["deliveries"] = {
            "most of one job": max(runs, default=0),
            "jobs begun more than once": sum(n > 1 for n in runs),
        }
        out["dead letters"] = dead_letters_by_phase(ctx)
        return out


def dead_letters_by_phase(ctx: RunContext) -> dict[str, float]:
    """The dead-letter queue's size when the fault began, when it was healed and at the end,
    from the probe's samples: its growth during and after the fault is the DLQ impact."""
    samples = [s for s in ctx.timeline.samples("dead_letters") if s.ok and s.value is not None]
    if not samples or not ctx.timeline.windows:
        return {}
    windows = ctx.timeline.windows
    began = min(w.injected_at for w in windows)
    healed = [w.healed_at for w in windows]
    ended = None if None in healed else max(h for h in healed if h is not None)

    def last_before(t: float | None) -> float | None:
        values = [s.value for s in samples if t is None or s.t <= t]
        return values[-1] if values else None

    at_start = last_before(began)  # when the first fault went in
    at_heal = last_before(ended) if ended is not None else None  # the last one healed
    at_end = last_before(None)
    sizes = {"before": at_start, "at heal": at_heal, "after": at_end}
    out = {k: v for k, v in sizes.items() if v is not None}
    if at_start is not None and at_heal is not None:
        out["growth during"] = at_heal - at_start
    if at_heal is not None and at_end is not None:
        out["growth after"] = at_end - at_heal
    return out
