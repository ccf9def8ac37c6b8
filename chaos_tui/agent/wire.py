"""One HTTP/1.1 exchange with the agent: a connection, a request, its answer, closed.

The agent serves plain HTTP on loopback, one small JSON body each way, so this speaks h11 (the
parser uvicorn serves it with) over an asyncio connection and nothing more. httpx, used before,
cost 3 to 4 ms a call in its own Python on a 2-core machine, against 0.6 ms of the agent's; a
fault took effect that much later, and 1,000 leases paid it 1,000 times.

A connection per request, never kept alive: no stale socket to retry a POST on, nothing to close
when an event loop ends. The failures say whether the request can have reached the agent:
`AgentUnavailable` when no connection was made (nothing was sent), `AgentConnectionLost` when it
broke or went silent after (the request may have been applied).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import h11

from chaos_tui.core.errors import AgentError, AgentUnavailable

READ_SIZE = 65536


class AgentConnectionLost(AgentError):
    """The connection to the agent broke, or it did not answer in time, after the request was
    sent: whether it was applied is unknown."""


@dataclass(frozen=True)
class Answer:
    """The agent's answer: status, headers (names in lower case) and body."""

    status_code: int
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


async def exchange(
    url: str,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout_s: float = 70.0,
) -> Answer:
    """Send one request to the agent at `url` (http://host:port) and read its answer."""
    where = urlsplit(url)
    host, port = where.hostname or "127.0.0.1", where.port or 80
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError) as exc:
        errno = getattr(exc, "errno", None)  # asyncio's own strerror names no reason
        why = os.strerror(errno) if errno else "no connection in time"
        raise AgentUnavailable(f"cannot reach the agent at {url}: {why}") from None
    conn = h11.Connection(h11.CLIENT)
    try:
        async with asyncio.timeout(timeout_s):
            writer.write(_request(conn, where.netloc, method, path, body, headers or {}))
            return await _answer(conn, reader)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, h11.ProtocolError) as exc:
        timed_out = isinstance(exc, TimeoutError)
        why = "no answer in time" if timed_out else f"{type(exc).__name__} {exc}".strip()
        raise AgentConnectionLost(
            f"the agent at {url} did not answer {method} {path}: {why}"
        ) from None
    finally:
        writer.close()
        # Closed before the caller's loop may end: a transport left to the collector warns.
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def _request(
    conn: h11.Connection, host: str, method: str, path: str, body: Any, headers: dict
) -> bytes:
    """The request's bytes, JSON body and all."""
    content = b"" if body is None else json.dumps(body).encode()
    fields = [("Host", host), ("Connection", "close"), *headers.items()]
    fields.append(("Content-Length", str(len(content))))
    if body is not None:
        fields.append(("Content-Type", "application/json"))
    parts = [conn.send(h11.Request(method=method, target=path, headers=fields))]
    if content:
        parts.append(conn.send(h11.Data(data=content)))
    parts.append(conn.send(h11.EndOfMessage()))
    return b"".join(part or b"" for part in parts)


async def _answer(conn: h11.Connection, reader: asyncio.StreamReader) -> Answer:
    """Read until the answer is whole; a connection that ends before is IncompleteReadError."""
    head: h11.Response | None = None
    chunks: list[bytes] = []
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            # b"" at the end: h11 then says whether the answer was whole.
            conn.receive_data(await reader.read(READ_SIZE))
        elif isinstance(event, h11.Response):
            head = event
        elif isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            assert head is not None
            # Header values are latin-1 on the wire (Starlette writes them so): a warning that
            # names a path under /home/josé must read back, not raise.
            headers = {
                name.decode().lower(): value.decode("latin-1") for name, value in head.headers
            }
            return Answer(head.status_code, b"".join(chunks), headers)
        elif isinstance(event, h11.ConnectionClosed):
            raise asyncio.IncompleteReadError(b"", None)
