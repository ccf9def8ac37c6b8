"""Reading the injectors a run mirrors into a Valkey/Redis key (agent.protocol's
INJECTOR_MIRROR_KEY), for a worker that cannot reach the agent, which listens on its host's
loopback only (a container of the compose stack's job queue).

Two commands in one round trip, PTTL then GET: the key's age is `expires_ms - PTTL` by the
key store's own clock, so no clock of the writer's is trusted. Should a new value land between
the two, the PTTL is the older value's and the age comes out too large: deadlines come early,
never late. Plain RESP over a socket: a worker's library loads no client for it.
"""

from __future__ import annotations

import socket
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from pydantic import ValidationError

from chaos_tui.agent.protocol import INJECTOR_MIRROR_KEY, LiveInjectors, MirroredInjectors

MAX_VALUE = 1 << 20


class MirrorProblem(ConnectionError):
    """The mirror cannot be read, or holds nothing a worker may trust."""


def command(*words: str) -> bytes:
    parts = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class MirrorReader:
    """One connection to the key store named by a `redis://[:password@]host[:port][/db]` URL,
    made on first use and dropped after any failure (the caller's next poll dials again)."""

    def __init__(self, url: str, timeout_s: float, key: str = INJECTOR_MIRROR_KEY) -> None:
        parts = urlsplit(url)
        if parts.scheme != "redis" or not parts.hostname:
            raise ValueError(f"injector mirror {url!r} is not redis://HOST[:PORT][/DB]")
        self.address = (parts.hostname, parts.port or 6379)
        self.password = unquote(parts.password) if parts.password else None
        self.db = parts.path.strip("/") or "0"
        self.key = key
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._file: BinaryIO | None = None

    def read(self) -> tuple[LiveInjectors, float]:
        """The injectors, and how many seconds old they are (0 when no key: none live)."""
        try:
            self._connect()
            self._send(command("PTTL", self.key) + command("GET", self.key))
            pttl = self._reply()
            body = self._reply()
        except OSError:
            self.close()
            raise
        if pttl == -2 or body is None:
            return LiveInjectors(injectors=[]), 0.0
        if not isinstance(pttl, int) or pttl < 0 or not isinstance(body, bytes):
            raise MirrorProblem("the injector mirror has no expiry: not trusted")
        try:
            value = MirroredInjectors.model_validate_json(body)
        except ValidationError as exc:
            raise MirrorProblem(f"the injector mirror holds no injectors ({exc})") from None
        age_s = max(0, value.expires_ms - pttl) / 1000 + value.polled_ago_s
        return value.live, age_s

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = self._file = None

    def _connect(self) -> None:
        if self._sock is not None:
            return
        self._sock = socket.create_connection(self.address, timeout=self.timeout_s)
        self._file = self._sock.makefile("rb")
        hello = [command("AUTH", self.password)] if self.password else []
        hello += [command("SELECT", self.db)] if self.db != "0" else []
        if hello:
            self._send(b"".join(hello))
            for _ in hello:
                self._reply()

    def _send(self, data: bytes) -> None:
        assert self._sock is not None
        self._sock.sendall(data)

    def _reply(self) -> int | bytes | str | None:
        assert self._file is not None
        line = self._file.readline(MAX_VALUE)
        if not line.endswith(b"\r\n"):
            raise MirrorProblem("the injector mirror's store closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            if size > MAX_VALUE:
                raise MirrorProblem("the injector mirror's value is too large")
            data = self._file.read(size + 2)
            if len(data) != size + 2:
                raise MirrorProblem("the injector mirror's store closed the connection")
            return data[:-2]
        if kind == b"-":
            raise MirrorProblem(f"the injector mirror's store said {rest.decode(errors='replace')}")
        raise MirrorProblem(f"the injector mirror's store answered {line[:40]!r}")
