"""postgres_restart_outbox: a hard Postgres restart must not lose or double an outbox event."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from chaos_tui.core.contracts import Fault, Presets, Probe, RunContext, ScenarioParams, hold_s_field
from chaos_tui.core.delivery import check_delivery, examples
from chaos_tui.core.lazy import lazy
from chaos_tui.core.model import InvariantResult, InvariantSpec
from chaos_tui.core.platform_target import PlatformTarget, ServiceFaultParams
from chaos_tui.core.report import duration_text
from chaos_tui.platform.outbox import UNPUBLISHED_OF_SUBJECT
from chaos_tui.platform.streams import EVENTS_STREAM
from chaos_tui.probes.db_probe import OutboxBacklogProbe, PostgresProbe
from chaos_tui.probes.jetstream_probe import StreamProbe, read_subject
from chaos_tui.probes.nats_probe import NatsProbe
from chaos_tui.scenarios.base import PlatformScenario
from chaos_tui.scenarios.outbox_writer import OutboxWriter

if TYPE_CHECKING:
    import psycopg
else:
    psycopg = lazy("psycopg")  # loaded at its first use: the picker lists this without it

SUBJECT_PREFIX = "sea.event.outbox_probe"


class PostgresRestartParams(ScenarioParams):
    write_rate: float = Field(20.0, gt=0, le=1000, description="outbox rows per second")
    hold_s: float = hold_s_field(3.0, 60, "how long Postgres stays dead")
    resume_limit_s: float = Field(
        10.0,
        gt=0,
        description="the relay must publish again within this long of Postgres being back",
    )
    drain_timeout_s: float = Field(
        60.0, gt=0, le=170, description="longest wait for the outbox backlog to drain"
    )


Params = PostgresRestartParams  # the name tests and callers import


class PostgresRestartOutbox(PlatformScenario):
    name = "postgres_restart_outbox"
    presets: ClassVar[Presets] = {"plan": {}}  # the plan gives no hold: its defaults are the plan's
    order = 0  # the main job: listed first
    hypothesis = (
        "A hard Postgres restart loses no outbox event and doubles none: every row written "
        "before, during and after it reaches SEA_EVENTS exactly once, and the relay resumes "
        "within 10 s of Postgres accepting connections again."
    )
    invariant_budget_s = 120.0
    runbook = "chaos_tui/runbooks/postgres_restart_outbox.md"
    Params = PostgresRestartParams
    params: PostgresRestartParams
    recovery_probe = "postgres"
    backlog_probe = "outbox_backlog"

    def __init__(self, params: PostgresRestartParams | None = None) -> None:
        super().__init__(params)
        self.writer: OutboxWriter | None = None
        self.subject = ""

    def probes(self, target: PlatformTarget) -> list[Probe]:
        at = target.endpoints(self.profile)
        return [
            PostgresProbe("postgres", at.postgres_url),
            OutboxBacklogProbe("outbox_backlog", at.postgres_url),
            NatsProbe("nats", at.nats_url),
            StreamProbe("sea_events", at.nats_url, EVENTS_STREAM),
        ]

    def steady_state(self) -> dict[str, float | None]:
        return {"postgres": None, "nats": None, "sea_events": None, "outbox_backlog": 1000}

    def faults(self, target: PlatformTarget) -> list[Fault]:
        return [
            target.hard_restart(ServiceFaultParams(service="postgres", hold_s=self.params.hold_s))
        ]

    def workload(self) -> str:
        return f"{self.params.write_rate:g} outbox rows/s, each to reach {EVENTS_STREAM} once"

    async def start_workload(self, ctx: RunContext) -> None:
        self.subject = f"{SUBJECT_PREFIX}.{ctx.run_id}"
        dsn = self.endpoints(ctx).postgres_url
        self.writer = OutboxWriter(dsn, self.subject, self.params.write_rate)
        self.writer.start()
        ctx.note(f"writing {self.params.write_rate:g} outbox rows/s on {self.subject}")

    async def stop_workload(self, ctx: RunContext) -> None:
        if self.writer is not None:
            await self.writer.stop()

    async def check_invariants(self, ctx: RunContext) -> list[InvariantResult]:
        p = self.params
        writer = self.writer
        assert writer is not None, "check_invariants before start_workload"
        at = self.endpoints(ctx)
        backlog = await self._wait_for_drain(at.postgres_url, p.drain_timeout_s)
        stored = await read_subject(at.nats_url, EVENTS_STREAM, self.subject)
        self.delivery = check_delivery(
            writer.attempted, writer.acknowledged, [m.msg_id or "" for m in stored]
        )
        d = self.delivery
        ctx.note(
            f"delivery: {d.acknowledged} written, {d.published} published, {d.lost} lost, "
            f"{d.duplicated} duplicated, {d.unexpected} unexpected"
        )
        back_at = postgres_back_at(ctx)
        resume = relay_resume_s(back_at, [m.timestamp for m in stored])
        return [
            self.judge("no_lost_events", d.lost, examples(d.lost_sample)),
            self.judge("no_duplicate_events", d.duplicated, examples(d.duplicated_sample)),
            self.judge("no_unexpected_events", d.unexpected),
            self.judge(
                "relay_resumes",
                resume,
                # Said beside the number: it counts from Postgres taking connections again,
                # not from the heal that "time to recover" counts from.
                "no event published after Postgres came back"
                if resume is None
                else "from Postgres taking connections to the relay's next publish",
            ),
            self.judge(
                "backlog_drains", backlog, f"waited up to {duration_text(p.drain_timeout_s)}"
            ),
        ]

    def invariants(self) -> list[InvariantSpec]:
        p = self.params
        return [
            InvariantSpec(
                name="no_lost_events",
                description="every written outbox row reached SEA_EVENTS",
                limit=0,
                unit="events",
            ),
            InvariantSpec(
                name="no_duplicate_events",
                description="no outbox id appears twice in SEA_EVENTS",
                limit=0,
                unit="events",
            ),
            InvariantSpec(
                name="no_unexpected_events",
                description="SEA_EVENTS holds no id this run did not write",
                limit=0,
                unit="events",
            ),
            InvariantSpec(
                name="relay_resumes",
                description="the relay publishes again, counted from Postgres taking connections",
                limit=p.resume_limit_s,
                unit="s",
            ),
            InvariantSpec(
                name="backlog_drains",
                description="no unpublished outbox row is left once the load stops",
                limit=0,
                unit="rows",
            ),
        ]

    async def _wait_for_drain(self, dsn: str, timeout_s: float) -> float | None:
        """Unpublished rows of this run, polled until zero or the timeout."""
        deadline = time.monotonic() + timeout_s
        left: float | None = None
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    dsn, autocommit=True, connect_timeout=2
                ) as conn:
                    cur = await conn.execute(UNPUBLISHED_OF_SUBJECT, (self.subject,))
                    row = await cur.fetchone()  # count(*) always answers one row
                    left = float(row[0]) if row is not None else None
            except (psycopg.Error, OSError):
                left = None
            if left == 0 or time.monotonic() > deadline:
                return left
            await asyncio.sleep(0.05)  # the relay looks every 50 ms: the last rows go soon


def postgres_back_at(ctx: RunContext) -> float | None:
    """When Postgres accepted connections again: the first passing probe after a failing one
    (the heal time if the probe never saw it down)."""
    _, back = ctx.timeline.outage("postgres")
    if back is None and ctx.timeline.windows:
        return ctx.timeline.windows[0].healed_at
    return back


def relay_resume_s(back_at: float | None, stored_at: list[float]) -> float | None:
    """Seconds from Postgres being back to the first event the relay published after that."""
    if back_at is None:
        return None
    later = [t for t in stored_at if t >= back_at]
    return round(min(later) - back_at, 3) if later else None
