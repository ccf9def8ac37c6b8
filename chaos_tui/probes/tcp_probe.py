"""TCP probe: does a port accept connections (for servers with no health endpoint)."""

from __future__ import annotations

import asyncio

from chaos_tui.core.contracts import Probe


class TcpProbe(Probe):
    def __init__(self, name: str, host: str, port: int) -> None:
        super().__init__(name, "accepts TCP connections (latency ms)")
        self.host, self.port = host, port

    async def measure(self) -> float | None:
        _, writer = await asyncio.open_connection(self.host, self.port)
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
        return None
