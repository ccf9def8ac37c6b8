"""JetStream: stream state as a probe, and every message id of a subject for delivery checks."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chaos_tui.core.contracts import Probe
from chaos_tui.probes.nats_probe import connect

if TYPE_CHECKING:
    from chaos_tui.nats_client import QuietClient


class StreamProbe(Probe):
    """Stream info; the value is the stream's last sequence, which grows as events land."""

    def __init__(self, name: str, url: str, stream: str, domain: str | None = None) -> None:
        super().__init__(name, f"{stream} last sequence")
        self.url, self.stream, self.domain = url, stream, domain
        self._nc: QuietClient | None = None

    async def measure(self) -> float | None:
        if self._nc is None:
            self._nc = await connect(self.url, f"chaos-tui-{self.name}")
        if not self._nc.is_connected:
            raise self._nc.trouble()
        info = await self._nc.jetstream(domain=self.domain, timeout=self.timeout_s).stream_info(
            self.stream
        )
        return float(info.state.last_seq)

    async def close(self) -> None:
        if self._nc is not None:
            nc, self._nc = self._nc, None
            await nc.close()


@dataclass(frozen=True, slots=True)
class StoredMessage:
    seq: int
    msg_id: str | None  # the Nats-Msg-Id header
    timestamp: float  # when the server stored it (epoch seconds)


async def read_subject(
    url: str,
    stream: str,
    subject: str,
    domain: str | None = None,
    batch: int = 500,
    start_seq: int | None = None,
    timeout_s: float = 60.0,
) -> list[StoredMessage]:
    """Every message on `subject` in `stream` (from `start_seq` on, if given), oldest first,
    through an ephemeral consumer. A slow fetch does not end the read early: it ends when the
    consumer has nothing pending, or after `timeout_s`."""
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy  # at a read, not a listing

    nc = await connect(url, "chaos-tui-reader")
    try:
        js = nc.jetstream(domain=domain, timeout=5)
        info = await js.stream_info(stream)
        if info.state.messages == 0:
            return []
        sub = await js.pull_subscribe(
            subject,
            stream=stream,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE if start_seq else DeliverPolicy.ALL,
                opt_start_seq=start_seq or None,
                ack_policy=AckPolicy.NONE,
                inactive_threshold=30.0,
            ),
        )
        found: list[StoredMessage] = []
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    msgs = await sub.fetch(batch, timeout=1.0)
                except TimeoutError:
                    pending = (await sub.consumer_info()).num_pending
                    if not pending or time.monotonic() > deadline:
                        break
                    continue
                for msg in msgs:
                    meta = msg.metadata
                    found.append(
                        StoredMessage(
                            meta.sequence.stream,
                            (msg.headers or {}).get("Nats-Msg-Id"),
                            meta.timestamp.timestamp(),
                        )
                    )
                if msgs and msgs[-1].metadata.num_pending == 0:
                    break
        finally:
            await sub.unsubscribe()
        return found
    finally:
        await nc.close()
