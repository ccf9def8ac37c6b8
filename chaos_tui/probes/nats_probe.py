"""NATS probes. The client is kept open and reconnects by itself; a sample fails fast while
the connection is down instead of queueing behind the reconnect."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from chaos_tui.core.contracts import Probe

if TYPE_CHECKING:
    from chaos_tui.nats_client import QuietClient


async def connect(url: str, name: str) -> QuietClient:
    """A probe's connection: reconnects for ever, quietly (see chaos_tui.nats_client)."""
    # nats-py (some 25 ms to import) loads with the first connection, not with the picker.
    from chaos_tui import nats_client

    return await nats_client.connect(
        url,
        name=name,
        connect_timeout=1,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.2,
        pending_size=0,  # publish while disconnected fails at once rather than buffering
    )


class NatsProbe(Probe):
    """Request/reply round trip through the server to a responder on our own connection."""

    def __init__(self, name: str, url: str) -> None:
        super().__init__(name, "request/reply round trip (latency ms)")
        self.url = url
        self._nc: QuietClient | None = None
        self._subject = f"chaos.probe.ping.{uuid.uuid4().hex[:8]}"

    async def _client(self) -> QuietClient:
        if self._nc is None:
            nc = await connect(self.url, f"chaos-tui-{self.name}")

            async def pong(msg):
                await msg.respond(msg.data)

            try:
                await nc.subscribe(self._subject, cb=pong)
            except BaseException:
                await nc.close()
                raise
            self._nc = nc  # only a client with its responder in place is kept
        if not self._nc.is_connected:
            raise self._nc.trouble()
        return self._nc

    async def measure(self) -> float | None:
        nc = await self._client()
        await nc.request(self._subject, b"ping", timeout=self.timeout_s)
        return None

    async def close(self) -> None:
        if self._nc is not None:
            nc, self._nc = self._nc, None
            await nc.close()
