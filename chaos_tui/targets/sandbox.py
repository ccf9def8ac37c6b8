"""The embedded sandbox as a target: addresses, blast radius and service control."""

from __future__ import annotations

import asyncio

from chaos_tui.agent.client import AgentClient
from chaos_tui.core.contracts import Fault, Probe, Target
from chaos_tui.faults.leased import LeasedFault
from chaos_tui.probes.agent_probe import AgentProbe
from chaos_tui.sandbox.stack import SERVICES, Sandbox
from chaos_tui.settings import Settings


class SandboxTarget(Target):
    name = "sandbox"
    is_sandbox = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sandbox = Sandbox(settings)
        self.agent = AgentClient(settings)
        self.started: list[str] = []  # services this target started (so its owner can stop them)
        self.agent_started = False  # whether this target spawned the fault agent

    async def ensure_up(self) -> None:
        # Filled in as each service starts, so a failed or interrupted start is still undone.
        await asyncio.to_thread(self.sandbox.up, self.started)
        self.agent_started = await self.agent.ensure() or self.agent_started

    def probes(self) -> list[Probe]:
        return [AgentProbe("agent", self.agent)]

    def stop_what_we_started(self, keep_sandbox: bool) -> list[str]:
        """The agent this target spawned (it heals any lease left first), then the services
        it started, unless the sandbox is to be kept. Returns what was stopped."""
        stopped = []
        if self.agent_started and self.agent.stop_spawned():
            stopped.append("agent")
        self.agent_started = False
        if self.started and not keep_sandbox:
            stopped += self.sandbox.down(only=self.started)
            self.started.clear()
        return stopped

    @property
    def postgres_url(self) -> str:
        return self.sandbox.postgres_url

    @property
    def nats_url(self) -> str:
        return self.sandbox.nats_url

    def blast_radius(self) -> list[str]:
        lines = []
        for service in SERVICES:
            rec = self.sandbox.record(service)
            where = f"pid {rec.pid}" if rec else "not started yet"
            lines.append(f"sandbox process {service} ({where}) under {self.sandbox.root}")
        return lines

    # -- faults, applied by the agent -------------------------------------------------------

    def describe(self, service: str) -> str:
        rec = self.sandbox.record(service)
        return f"sandbox {service}" + (f" (pid {rec.pid})" if rec else "")

    def hard_restart(self, service: str, hold_s: float) -> Fault:
        """SIGKILL a service and its children (no shutdown, like a power cut), start it again
        at heal time; the agent holds it as a lease."""
        return LeasedFault(
            self.agent, "sandbox.hard_restart", {"service": service},
            name=f"hard_restart:{service}",
            description=f"SIGKILL {self.describe(service)} and its children, down {hold_s:g}s, "
                        "start again",
            hold_s=hold_s,
            verify=lambda: self.service_healthy(service),
        )

    async def service_healthy(self, service: str) -> bool:
        return await asyncio.to_thread(self.sandbox.healthy, service)
