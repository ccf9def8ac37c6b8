"""The embedded sandbox as a target: addresses, blast radius and service control."""

from __future__ import annotations

import asyncio

from chaos_tui.core.contracts import Target
from chaos_tui.sandbox.stack import SERVICES, Sandbox
from chaos_tui.settings import Settings


class SandboxTarget(Target):
    name = "sandbox"
    is_sandbox = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sandbox = Sandbox(settings)
        self.started: list[str] = []  # services this target started (so its owner can stop them)

    async def ensure_up(self) -> None:
        # Filled in as each service starts, so a failed or interrupted start is still undone.
        await asyncio.to_thread(self.sandbox.up, self.started)

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

    # -- service control, used by process faults ----------------------------------------

    def describe(self, service: str) -> str:
        rec = self.sandbox.record(service)
        return f"sandbox {service}" + (f" (pid {rec.pid})" if rec else "")

    async def kill_service(self, service: str) -> dict:
        rec = self.sandbox.record(service)
        await asyncio.to_thread(self.sandbox.kill, service)
        return {"service": service, "pid": rec.pid if rec else None}

    async def start_service(self, service: str) -> None:
        await asyncio.to_thread(self.sandbox.start, service)

    async def service_healthy(self, service: str) -> bool:
        return await asyncio.to_thread(self.sandbox.healthy, service)
