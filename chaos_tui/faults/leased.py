"""Faults applied by the agent as leases: the agent journals each one before applying it and
heals it at its TTL, so a fault outlives neither its TTL nor a crash of the console."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from chaos_tui.agent.client import (
    AgentClient,
    AgentConnectionLost,
    AgentRefused,
    AgentUnavailable,
)
from chaos_tui.agent.protocol import INJECTOR_POLL_S, WORKER_INJECT
from chaos_tui.core.contracts import Fault, FaultLease, HealedElsewhere
from chaos_tui.core.injector_spec import InjectorSpec
from chaos_tui.core.platform_target import BrokerLinkParams

TTL_MARGIN_S = 10.0  # how long past its planned hold a lease may live if nobody heals it
# A worker polls every INJECTOR_POLL_S (a mirror copies as often): two polls and a margin.
WORKERS_SEE_A_HEAL_S = 2 * INJECTOR_POLL_S + 0.1


class LeasedFault(Fault):
    def __init__(
        self,
        agent: AgentClient,
        kind: str,
        params: dict,
        name: str,
        description: str,
        hold_s: float,
        verify=None,
        resolve=None,
    ) -> None:
        super().__init__(name, description)
        self.agent = agent
        self.kind = kind
        self.params = params
        self.hold_s = hold_s
        self.ttl_s = hold_s + TTL_MARGIN_S
        self._verify = verify  # async () -> bool: is the target whole again
        # async () -> dict: params known only at inject time (e.g. the path in use right now)
        self._resolve = resolve
        if kind == WORKER_INJECT:
            self.parts = injector_lines(params.get("injectors") or [])

    async def inject(self, lease: FaultLease) -> None:
        if self._resolve is not None:
            self.params = await self._resolve()
        # The runner's lease id is the agent's: a heal can name the lease even if this call
        # never returned.
        # This process owns the lease: if it dies, the agent heals the fault at once.
        try:
            created = await self.agent.create_lease(
                id=lease.lease_id,
                kind=self.kind,
                target=lease.target,
                params=self.params,
                ttl_s=lease.ttl_s,
                owner=f"chaos-tui pid {os.getpid()}",
                owner_pid=os.getpid(),
                run_id=lease.run_id,
            )
        except AgentUnavailable as exc:
            lease.data["never_landed"] = str(exc)  # the request was never sent
            raise
        except AgentRefused as exc:
            if exc.status < 500:  # refused: the agent applied nothing
                lease.data["never_landed"] = str(exc)
            raise
        lease.data.update(created.data)

    async def heal(self, lease: FaultLease) -> None:
        if "never_landed" in lease.data:
            return  # nothing to undo (and no reason to start an agent to hear so)
        await self._heal(lease)
        if self.kind == WORKER_INJECT:
            # A worker acts on what its last poll said until its next one: the fault is over
            # once they have all asked again, not when the agent ended the lease (else the
            # jobs of the first moments "after" the heal still meet it).
            await asyncio.sleep(WORKERS_SEE_A_HEAL_S)

    async def _heal(self, lease: FaultLease) -> None:
        try:
            healed = await self.agent.heal_lease(lease.lease_id)
        except (AgentUnavailable, AgentConnectionLost):
            # The agent died: a new one heals the journalled lease before it answers, and
            # then this lease is simply gone (404).
            await self.agent.ensure()
            healed = await self.agent.heal_lease(lease.lease_id)
        if not healed:  # someone else ended it first (its TTL, a halt, a new agent): when?
            try:
                ended = await self.agent.ended(lease.lease_id)
            except Exception:  # the record is a nicety; the heal itself is done
                ended = None
            if ended is not None and ended.ended_at is not None:
                lease.healed_elsewhere = HealedElsewhere(
                    started_at=ended.heal_started_at or ended.ended_at,
                    healed_at=ended.ended_at,
                    by=f"the agent ({ended.by})",
                )

    async def verify_healed(self, lease: FaultLease) -> bool:
        # A fault that never landed broke nothing: the target's health is not its to answer
        # for (another run's fault, or a service someone stopped, would read as a failed heal).
        if "never_landed" in lease.data or self._verify is None:
            return True
        return await self._verify()


def injector_lines(injectors: list) -> tuple[str, ...]:
    """A line per worker injector (kind, rate, scope) for the console, or none at all for a
    list the agent would refuse anyway (it says why; a plan is no place to guess)."""
    try:
        specs = [InjectorSpec.model_validate(i) for i in injectors]
    except ValidationError:
        return ()
    # describe() says "raise" for fail and "kill the worker process" for crash: name the kind
    return tuple(
        s.describe() if s.describe().startswith(s.kind) else f"{s.kind}: {s.describe()}"
        for s in specs
    )


def worker_inject_lease(injectors: Sequence[InjectorSpec], hold_s: float) -> dict[str, Any]:
    """What a worker-injector fault asks of the agent, the same on every target: one lease,
    named by its kinds, described with each injector's scope (the plan, the console and
    `leases` show it)."""
    return {
        "kind": WORKER_INJECT,
        "params": {"injectors": [spec.model_dump(mode="json") for spec in injectors]},
        "name": "worker_injectors:" + ",".join(spec.kind for spec in injectors),
        "description": f"worker injectors for {hold_s:g}s: "
        + "; ".join(f"{spec.kind}: {spec.describe()}" for spec in injectors),
        "hold_s": hold_s,
    }


def broker_link_lease(params: BrokerLinkParams, proxies: Sequence[str]) -> dict[str, Any]:
    """What a toxic on every path between the job workers and Valkey asks of the agent: one
    `proxy.toxic` lease over the proxies in front of each node (so it holds across a
    failover), the same on every target."""
    attributes = ", ".join(f"{k}={v:g}" for k, v in params.attributes.items())
    return {
        "kind": "proxy.toxic",
        "params": {
            "proxies": list(proxies),
            "type": params.type,
            "stream": params.stream,
            "toxicity": params.toxicity,
            "attributes": dict(params.attributes),
        },
        "name": f"broker_link:{params.type}",
        "description": (
            f"{params.type} ({attributes or 'defaults'}) on {params.toxicity:.0%} of the job "
            f"worker's Valkey connections ({', '.join(proxies)}, {params.stream}) for "
            f"{params.hold_s:g}s"
        ),
        "hold_s": params.hold_s,
    }
