"""What the agent knows how to break and mend. Each kind checks its parameters up front,
applies, and heals; a heal must be safe to repeat and safe on a fault that never landed."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from chaos_tui.sandbox.stack import SERVICES, Sandbox


class Injector(Protocol):
    description: str

    def check(self, target: str, params: dict[str, Any]) -> str | None: ...
    async def apply(self, params: dict[str, Any]) -> dict[str, Any]: ...
    async def heal(self, params: dict[str, Any], data: dict[str, Any]) -> None: ...


class SandboxHardRestart:
    """SIGKILL a sandbox service and its children; the heal starts it again."""

    description = "SIGKILL a sandbox service (postgres, nats, relay); heal starts it again"

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def check(self, target: str, params: dict[str, Any]) -> str | None:
        if target != "sandbox":
            return f"sandbox.hard_restart works on target 'sandbox', not {target!r}"
        if params.get("service") not in SERVICES or set(params) != {"service"}:
            return f"sandbox.hard_restart needs params {{\"service\": one of {', '.join(SERVICES)}}}"
        return None

    async def apply(self, params: dict[str, Any]) -> dict[str, Any]:
        service = params["service"]
        record = self.sandbox.record(service)
        await asyncio.to_thread(self.sandbox.kill, service)
        return {"killed_pid": record.pid if record else None}

    async def heal(self, params: dict[str, Any], data: dict[str, Any]) -> None:
        await asyncio.to_thread(self.sandbox.start, params["service"])


def injectors_for(sandbox: Sandbox) -> dict[str, Injector]:
    return {"sandbox.hard_restart": SandboxHardRestart(sandbox)}
