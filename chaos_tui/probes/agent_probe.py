"""The fault agent as a probe: it answers, and how many leases it holds (the value)."""

from __future__ import annotations

from chaos_tui.agent.client import AgentClient
from chaos_tui.core.contracts import Probe


class AgentProbe(Probe):
    def __init__(self, name: str, agent: AgentClient) -> None:
        super().__init__(name, "fault agent health (value: live leases)")
        self.agent = agent

    async def measure(self) -> float | None:
        health = await self.agent.status()
        if not health.ok:
            raise RuntimeError("the agent says it is not ok")
        if health.halted:
            raise RuntimeError("the agent is halted: it refuses new leases")
        return float(health.leases)
