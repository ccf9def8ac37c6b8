"""Hard restart of a service: SIGKILL (no shutdown, no goodbye), hold, then start it again."""

from __future__ import annotations

from typing import Protocol

from chaos_tui.core.contracts import Fault, FaultLease


class ServiceControl(Protocol):
    def describe(self, service: str) -> str: ...
    async def kill_service(self, service: str) -> dict: ...
    async def start_service(self, service: str) -> None: ...
    async def service_healthy(self, service: str) -> bool: ...


class HardRestart(Fault):
    def __init__(self, control: ServiceControl, service: str, hold_s: float, ttl_s: float = 120.0):
        super().__init__(
            f"hard_restart:{service}",
            f"SIGKILL {control.describe(service)} and its children, down {hold_s:g}s, start again",
        )
        self.control = control
        self.service = service
        self.hold_s = hold_s
        self.ttl_s = ttl_s

    async def inject(self, lease: FaultLease) -> None:
        lease.data.update(await self.control.kill_service(self.service))

    async def heal(self, lease: FaultLease) -> None:
        # Starting waits until the service is ready, so a heal that returns has worked.
        await self.control.start_service(self.service)

    async def verify_healed(self, lease: FaultLease) -> bool:
        return await self.control.service_healthy(self.service)
