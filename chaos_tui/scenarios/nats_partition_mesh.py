"""nats_partition_mesh: cutting the link between domains sea-a and sea-b loses no event; the
mirror in sea-b catches up after the heal, and the cut is visible while it lasts."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from chaos_tui.core.contracts import Fault, Presets, Probe, RunContext, ScenarioParams, hold_s_field
from chaos_tui.core.delivery import check_delivery, examples
from chaos_tui.core.model import InvariantResult, InvariantSpec
from chaos_tui.core.platform_target import LinkCutParams, PlatformTarget
from chaos_tui.platform.streams import MIRROR_STREAM, PROBE_SUBJECT, mirror_state, origin_last_seq
from chaos_tui.probes.http_probe import HttpClientProbe
from chaos_tui.probes.jetstream_probe import read_subject
from chaos_tui.probes.nats_probe import connect
from chaos_tui.scenarios.base import PlatformScenario
from chaos_tui.scenarios.load import SteadyLoad

if TYPE_CHECKING:  # nats-py loads with the first connection, not with the scenario list
    from nats.aio.client import Client


class NatsPartitionParams(ScenarioParams):
    # At least 2/s: the mirror must hear from the origin often enough that a cut stands out.
    publish_rate: float = Field(20.0, ge=2, le=1000, description="probe messages per second")
    hold_s: float = hold_s_field(5.0, 300, "how long the link stays cut", ge=2)
    recover_s: float = Field(3.0, ge=0, le=600, description="load after the heal")
    scope: Literal["full", "one-node"] = Field("full", description="cut every path, or one")
    catchup_limit_s: float = Field(
        30.0, gt=0, le=150, description="the mirror must catch up within this long of the heal"
    )
    flow_limit_s: float = Field(
        5.0, gt=0, description="scope one-node: the longest the mirror may go silent"
    )


Params = NatsPartitionParams  # the name tests and callers import


class MeshPublisher(SteadyLoad):
    """Publishes to SEA_EVENTS in sea-a, one Nats-Msg-Id per message; keeps what was acked."""

    def __init__(self, url: str, run_id: str, rate_per_s: float) -> None:
        super().__init__(rate_per_s, "mesh-publisher")
        self.url = url
        self.run_id = run_id
        self.attempted: list[str] = []
        self.acknowledged: set[str] = set()
        self.sent_at: dict[str, float] = {}
        self.failures = 0
        self._nc: Client | None = None

    async def tick(self, n: int) -> None:
        msg_id = f"{self.run_id}-{n:06d}"
        self.attempted.append(msg_id)
        self.sent_at[msg_id] = time.time()
        try:
            if self._nc is None:
                self._nc = await connect(self.url, "chaos-tui-mesh-publisher")
            js = self._nc.jetstream(timeout=2)
            await js.publish(PROBE_SUBJECT, msg_id.encode(), headers={"Nats-Msg-Id": msg_id})
            self.acknowledged.add(msg_id)
        except Exception:  # an unacked publish is data: it may or may not have landed
            self.failures += 1

    async def stop(self) -> None:
        try:
            await super().stop()
        finally:
            if self._nc is not None:
                nc, self._nc = self._nc, None
                await nc.close()


@dataclass(frozen=True, slots=True)
class MirrorReading:
    t: float
    origin_seq: int
    mirror_seq: int
    silent_s: float | None  # mirror.active: time since sea-b last heard from the origin


class MirrorProbe(Probe):
    """How far SEA_EVENTS_MIRROR trails SEA_EVENTS (messages), read from both domains; every
    reading is kept, so catch-up and the cut's visibility are read off them afterwards."""

    def __init__(self, name: str, a_url: str, b_url: str) -> None:
        super().__init__(name, "messages the mirror in sea-b trails the origin in sea-a")
        self.a_url, self.b_url = a_url, b_url
        self.readings: list[MirrorReading] = []
        self._a: Client | None = None
        self._b: Client | None = None

    async def measure(self) -> float | None:
        if self._a is None:
            self._a = await connect(self.a_url, "chaos-tui-mirror-probe-a")
        if self._b is None:
            self._b = await connect(self.b_url, "chaos-tui-mirror-probe-b")
        origin = await origin_last_seq(self._a)
        mirror = await mirror_state(self._b)
        self.readings.append(
            MirrorReading(time.time(), origin, mirror["last_seq"], mirror["active_s"])
        )
        return float(max(0, origin - mirror["last_seq"]))

    async def close(self) -> None:
        clients, self._a, self._b = (self._a, self._b), None, None
        for nc in clients:
            if nc is not None:
                try:
                    await nc.close()
                except Exception:
                    pass  # the other one must still be closed


class MirrorSilenceProbe(Probe):
    """Seconds since sea-b last heard from the origin (mirror.active): it grows through a
    cut, while the mirror's lag figure goes stale."""

    def __init__(self, name: str, mirror: MirrorProbe) -> None:
        super().__init__(name, "seconds since the mirror last heard from sea-a")
        self.mirror = mirror

    async def measure(self) -> float | None:
        readings = self.mirror.readings
        if not readings or time.time() - readings[-1].t > 1.0:
            raise RuntimeError("no fresh mirror reading")
        if readings[-1].silent_s is None:
            raise RuntimeError("the mirror has not reached the origin yet")
        return round(readings[-1].silent_s, 3)


class LinkProbe(HttpClientProbe):
    """Passes while sea-b has its leafnode connection to sea-a (its /leafz monitor page)."""

    def __init__(self, name: str, monitor_url: str) -> None:
        super().__init__(name, "sea-b has its leafnode to sea-a")
        self.url = monitor_url + "/leafz"

    async def measure(self) -> float | None:
        leafs = (await self.http.get(self.url)).json().get("leafs") or []
        if not leafs:
            raise RuntimeError("no leafnode connection")
        return float(len(leafs))


def cut_paths(fault: Fault | None) -> list[str]:
    """What the cut took down, as the target named it when it landed: link proxies on the
    sandbox, sea-a nodes on Docker."""
    params = getattr(fault, "params", {})
    return list(params.get("proxies") or params.get("services") or [])


class NatsPartitionMesh(PlatformScenario):
    name = "nats_partition_mesh"
    order = 30
    hypothesis = (
        "Cutting the leafnode link between domains sea-a and sea-b loses and doubles no event: "
        "every message published to SEA_EVENTS appears exactly once in SEA_EVENTS_MIRROR "
        "after the heal, and the mirror catches up within 30 s."
    )
    profile = "mesh"
    presets: ClassVar[Presets] = {
        "plan": {"hold_s": 15.0}
    }  # the platform plan cuts the link for 15 s
    invariant_budget_s = 180.0  # the catch-up limit (at most 150 s) and the read-back
    runbook = "chaos_tui/runbooks/nats_partition_mesh.md"
    Params = NatsPartitionParams
    params: NatsPartitionParams
    recovery_probe = "link"
    backlog_probe = "mirror_lag"

    def __init__(self, params: NatsPartitionParams | None = None) -> None:
        super().__init__(params)
        # The workload's, made by start_workload.
        self.publisher: MeshPublisher | None = None
        self.start_seq = 0

    def probes(self, target: PlatformTarget) -> list[Probe]:
        at = target.endpoints(self.profile)
        mirror = MirrorProbe("mirror_lag", at.nats_a_url, at.nats_b_url)
        return [
            LinkProbe("link", at.link_monitor_url),
            mirror,
            MirrorSilenceProbe("mirror_silence", mirror),
        ]

    def steady_state(self) -> dict[str, float | None]:
        # The mirror must be in touch with the origin before the cut, or nothing is tested.
        return {"link": None, "mirror_lag": 1000, "mirror_silence": 5.0}

    def faults(self, target: PlatformTarget) -> list[Fault]:
        return [target.cut_link(LinkCutParams(scope=self.params.scope, hold_s=self.params.hold_s))]

    def workload(self) -> str:
        return (
            f"{self.params.publish_rate:g} msg/s to {PROBE_SUBJECT} in sea-a, each to be "
            f"mirrored once into {MIRROR_STREAM}"
        )

    async def start_workload(self, ctx: RunContext) -> None:
        at = self.endpoints(ctx)
        # Only what comes after this is read back: the mirror keeps every earlier run too.
        self.start_seq = await origin_last_seq(at.nats_a_url)
        self.publisher = MeshPublisher(at.nats_a_url, ctx.run_id, self.params.publish_rate)
        self.publisher.start()
        ctx.note(
            f"publishing {self.params.publish_rate:g} msg/s to {PROBE_SUBJECT} in {at.domain_a}"
        )

    async def stop_workload(self, ctx: RunContext) -> None:
        if self.publisher is not None:
            await self.publisher.stop()

    def invariants(self) -> list[InvariantSpec]:
        p = self.params
        specs = [
            InvariantSpec(
                name="no_lost_messages",
                description="every acked message reached SEA_EVENTS_MIRROR",
                limit=0,
                unit="messages",
            ),
            InvariantSpec(
                name="no_duplicate_messages",
                description="no message id twice in SEA_EVENTS_MIRROR",
                limit=0,
                unit="messages",
            ),
            InvariantSpec(
                name="mirror_catches_up",
                description="from heal to the mirror holding everything published before it",
                limit=p.catchup_limit_s,
                unit="s",
            ),
        ]
        if p.scope == "full":
            specs.append(
                InvariantSpec(
                    name="partition_visible",
                    description="the mirror went silent during the cut (mirror.active grew)",
                    limit=min(2.0, p.hold_s / 2),
                    comparison=">=",
                    unit="s",
                )
            )
        else:
            specs.append(
                InvariantSpec(
                    name="mirror_keeps_flowing",
                    description="with one path cut the mirror is never silent for long",
                    limit=p.flow_limit_s,
                    unit="s",
                )
            )
        return specs

    async def judge_live(self, ctx: RunContext) -> list[InvariantResult]:
        """The mirror's silence during the cut so far: one-node, a silence over the limit
        breaks mirror_keeps_flowing for good; full, a silence that reached its limit makes the
        cut visible (until then it is not judged: it may yet grow). Messages not mirrored yet
        are late, not lost: the delivery invariants wait for the read-back."""
        mirror = ctx.plan.probe("mirror_lag")
        window = ctx.timeline.windows[0] if ctx.timeline.windows else None
        if not isinstance(mirror, MirrorProbe) or window is None:
            return []
        longest, at = longest_silence(mirror.readings, window.injected_at, window.healed_at)
        if longest is None:
            return []
        if self.params.scope == "full":
            visible = self.judge("partition_visible", longest)
            return [visible] if visible.passed else []
        flowing = self.judge("mirror_keeps_flowing", longest)
        if not flowing.passed and at is not None:  # when the silence went past the limit
            flowing.broke_at = at - (longest - self.params.flow_limit_s)
        return [flowing]

    async def check_invariants(self, ctx: RunContext) -> list[InvariantResult]:
        p = self.params
        mirror = ctx.plan.probe("mirror_lag")
        assert isinstance(mirror, MirrorProbe)
        cut = ctx.plan.faults[0].fault if ctx.plan.faults else None
        window = ctx.timeline.windows[0] if ctx.timeline.windows else None
        healed_at = window.healed_at if window else None
        # One deadline for both waits; the probe goes on reading the mirror meanwhile.
        deadline = (healed_at or time.time()) + p.catchup_limit_s
        catch_up = await catch_up_s(mirror, healed_at, deadline)
        await wait_settled(mirror, time.time(), deadline)

        publisher = self.publisher
        assert publisher is not None, "check_invariants before start_workload"
        stored = await read_subject(
            self.endpoints(ctx).nats_b_url,
            MIRROR_STREAM,
            PROBE_SUBJECT,
            start_seq=self.start_seq + 1,
        )
        ours = [m.msg_id or "" for m in stored if (m.msg_id or "").startswith(ctx.run_id)]
        self.delivery = d = check_delivery(publisher.attempted, publisher.acknowledged, ours)
        ctx.note(
            f"mirror: {d.acknowledged} published, {d.published} mirrored, {d.lost} lost, "
            f"{d.duplicated} duplicated"
        )

        longest, _ = (
            longest_silence(mirror.readings, window.injected_at, healed_at)
            if window
            else (None, None)
        )
        self.measurements.update(
            {
                "mirror catch-up (s)": catch_up,
                "longest mirror silence during cut (s)": longest,
                "messages published during cut": sum(
                    1 for t in publisher.sent_at.values() if window and window.contains(t)
                ),
                "scope": p.scope,
                "paths cut": ", ".join(cut_paths(cut)) or None,
            }
        )
        results = [
            self.judge("no_lost_messages", d.lost, examples(d.lost_sample)),
            self.judge("no_duplicate_messages", d.duplicated, examples(d.duplicated_sample)),
            self.judge(
                "mirror_catches_up",
                catch_up,
                ""
                if catch_up is not None
                else f"not caught up {p.catchup_limit_s:g}s after the heal",
            ),
        ]
        if p.scope == "full":
            results.append(self.judge("partition_visible", longest))
        else:
            results.append(self.judge("mirror_keeps_flowing", longest))
        return results


def longest_silence(
    readings: list[MirrorReading], start: float, end: float | None
) -> tuple[float | None, float | None]:
    """The longest the mirror went without hearing from the origin during [start, end] (end
    None: the cut goes on), and when that was read; (None, None) without a reading."""
    silent = [
        (r.silent_s, r.t)
        for r in list(readings)
        if r.silent_s is not None and start <= r.t <= (end or float("inf"))
    ]
    if not silent:
        return None, None
    longest, at = max(silent)
    return round(longest, 3), at


async def catch_up_s(mirror: MirrorProbe, healed_at: float | None, deadline: float) -> float | None:
    """Seconds from the heal until the mirror held what the origin held at the first
    reading after the heal, read off the mirror probe (which keeps sampling)."""
    if healed_at is None:
        return None
    while True:
        after = [r for r in mirror.readings if r.t >= healed_at]
        if after:
            goal = after[0].origin_seq
            done = next((r for r in after if r.mirror_seq >= goal), None)
            if done is not None:
                return round(done.t - healed_at, 3)
        if time.time() > deadline:
            return None
        await asyncio.sleep(0.1)


async def wait_settled(mirror: MirrorProbe, since: float, deadline: float) -> None:
    """Before reading the mirror back (the load has stopped): wait, up to the deadline,
    for a reading in which the mirror holds the origin's last message."""
    while time.time() <= deadline:
        if any(r.t >= since and r.mirror_seq >= r.origin_seq for r in mirror.readings):
            return
        await asyncio.sleep(0.1)
