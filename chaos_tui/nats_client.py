"""Every NATS connection the tool opens is made here, so that none of them prints.

nats-py reports connection trouble through callbacks. Without an `error_cb` it logs every
failed reconnect with its traceback, and with no logging set up Python prints that on stderr:
one run whose NATS was stopped under it printed 1,527 of them. Here the callbacks are quiet
and the client keeps its last error instead, for whoever watches it (a probe puts it in the
failing sample, the relay writes one line to its log).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client


async def _nothing(*_: Any) -> None:
    return None


class QuietClient(Client):
    """A nats-py client that keeps its connection trouble to itself."""

    # Not `last_error`: that is nats-py's own property (an Exception), which this must not shadow.
    last_trouble: str | None = None

    async def _keep_error(self, exc: Exception) -> None:
        self.last_trouble = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

    async def _forget_error(self) -> None:
        self.last_trouble = None  # back: an old cause must not explain a later outage

    def trouble(self, what: str = "not connected to NATS") -> ConnectionError:
        """The error a caller raises while the client is down, naming the last cause."""
        return ConnectionError(f"{what} ({self.last_trouble})" if self.last_trouble else what)


async def connect(url: str, **options: Any) -> QuietClient:
    """nats.connect with quiet callbacks; a caller's own callbacks (given as options) win."""
    nc = QuietClient()
    callbacks: dict[str, Callable[..., Awaitable[None]]] = {
        "error_cb": nc._keep_error,
        "disconnected_cb": _nothing,
        "reconnected_cb": nc._forget_error,
        "closed_cb": _nothing,
    }
    await nc.connect(url, **{**callbacks, **options})
    return nc
