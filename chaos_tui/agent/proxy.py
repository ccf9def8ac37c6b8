"""A TCP fault proxy in asyncio, with Toxiproxy's vocabulary of toxics.

A proxy listens on loopback and relays to an upstream. Toxics sit on one direction
("upstream": client to server, "downstream": server to client) and apply to each connection
with probability `toxicity`. The relay reads the toxic list for every chunk, so adding or
removing a toxic takes effect on live connections at once; removing never waits on a lock or
on the traffic it slowed.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

CHUNK = 64 * 1024
STREAMS = ("upstream", "downstream")

# type -> {attribute: default}; an attribute not listed here is refused.
TOXIC_TYPES: dict[str, dict[str, float]] = {
    "latency": {"latency": 0, "jitter": 0},  # ms added to every chunk, +- jitter
    "bandwidth": {"rate": 0},  # KB/s
    "slow_close": {"delay": 0},  # ms before a close is passed on
    "timeout": {"timeout": 0},  # drop all data; close after timeout ms (0: never)
    "reset_peer": {"timeout": 0},  # reset (RST) the connection after timeout ms
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},  # bytes, bytes, µs
    "limit_data": {"bytes": 0},  # close once this many bytes went through
}


class ProxyProblem(Exception):
    """A bad proxy or toxic request: one line for the API's 400."""


@dataclass
class Toxic:
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, float]

    @classmethod
    def build(cls, name: str, type: str, stream: str = "downstream", toxicity: float = 1.0,
              attributes: dict[str, Any] | None = None) -> "Toxic":
        if type not in TOXIC_TYPES:
            raise ProxyProblem(f"unknown toxic type {type!r} (known: {', '.join(TOXIC_TYPES)})")
        if stream not in STREAMS:
            raise ProxyProblem(f"stream must be upstream or downstream, not {stream!r}")
        if not 0 <= float(toxicity) <= 1:
            raise ProxyProblem(f"toxicity must be between 0 and 1, not {toxicity!r}")
        attrs = dict(TOXIC_TYPES[type])
        for key, value in (attributes or {}).items():
            if key not in attrs:
                raise ProxyProblem(f"{type} has no attribute {key!r} (has: {', '.join(attrs)})")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ProxyProblem(f"{type}.{key} must be a number >= 0, not {value!r}")
            attrs[key] = float(value)
        return cls(name, type, stream, float(toxicity), attrs)

    def to_json(self) -> dict:
        return {"name": self.name, "type": self.type, "stream": self.stream,
                "toxicity": self.toxicity, "attributes": self.attributes}


@dataclass(eq=False)
class Connection:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    passed: int = 0  # bytes relayed, both ways (limit_data)
    rolls: dict[str, bool] = field(default_factory=dict)  # toxic name -> applies here
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)

    def affected(self, toxic: Toxic) -> bool:
        if toxic.name not in self.rolls:
            self.rolls[toxic.name] = random.random() < toxic.toxicity
        return self.rolls[toxic.name]

    def close(self, reset: bool = False) -> None:
        for timer in self.timers.values():
            timer.cancel()
        for writer in (self.client, self.server):
            if reset:  # SO_LINGER 0: the peer gets a RST instead of a FIN
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        struct.pack("ii", 1, 0))
                    except OSError:
                        pass
            writer.close()


class Proxy:
    def __init__(self, name: str, listen_host: str, listen_port: int, upstream_host: str,
                 upstream_port: int) -> None:
        self.name = name
        self.listen = (listen_host, listen_port)
        self.upstream = (upstream_host, upstream_port)
        self.enabled = True
        self.toxics: dict[str, Toxic] = {}
        self.connections: set[Connection] = set()
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(self._accept, *self.listen)
        except OSError as exc:
            raise ProxyProblem(f"cannot listen on {self.listen[0]}:{self.listen[1]}: "
                               f"{exc.strerror}") from None
        self.listen = self._server.sockets[0].getsockname()[:2]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close()
        self.connections.clear()

    def to_json(self) -> dict:
        return {"name": self.name, "listen": f"{self.listen[0]}:{self.listen[1]}",
                "upstream": f"{self.upstream[0]}:{self.upstream[1]}", "enabled": self.enabled,
                "connections": len(self.connections),
                "toxics": [t.to_json() for t in self.toxics.values()]}

    # -- toxics -------------------------------------------------------------------------------

    def add_toxic(self, toxic: Toxic) -> None:
        if toxic.name in self.toxics:
            raise ProxyProblem(f"proxy {self.name} already has a toxic named {toxic.name!r}")
        self.toxics[toxic.name] = toxic
        for conn in list(self.connections):
            self._arm(conn, toxic)

    def remove_toxic(self, name: str) -> bool:
        toxic = self.toxics.pop(name, None)
        for conn in self.connections:
            timer = conn.timers.pop(name, None)
            if timer is not None:
                timer.cancel()
        return toxic is not None

    def set_enabled(self, enabled: bool) -> None:
        """down: a disabled proxy drops its connections and refuses new ones."""
        self.enabled = enabled
        if not enabled:
            for conn in list(self.connections):
                conn.close()

    def _arm(self, conn: Connection, toxic: Toxic) -> None:
        """Toxics that act on a clock rather than on data: reset_peer, and timeout's close."""
        delay = toxic.attributes.get("timeout", 0) / 1000
        if toxic.type == "reset_peer" and conn.affected(toxic):
            conn.timers[toxic.name] = asyncio.get_running_loop().call_later(
                delay, self._drop, conn, True)
        elif toxic.type == "timeout" and delay > 0 and conn.affected(toxic):
            conn.timers[toxic.name] = asyncio.get_running_loop().call_later(
                delay, self._drop, conn, False)

    def _drop(self, conn: Connection, reset: bool) -> None:
        conn.close(reset=reset)
        self.connections.discard(conn)

    # -- relaying -----------------------------------------------------------------------------

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if not self.enabled:
            client_w.close()
            return
        try:
            server_r, server_w = await asyncio.wait_for(asyncio.open_connection(*self.upstream), 5)
        except (OSError, asyncio.TimeoutError):
            client_w.close()
            return
        for writer in (client_w, server_w):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Connection(client_w, server_w)
        self.connections.add(conn)
        for toxic in list(self.toxics.values()):
            self._arm(conn, toxic)
        try:
            await asyncio.gather(self._relay(client_r, server_w, "upstream", conn),
                                 self._relay(server_r, client_w, "downstream", conn))
        finally:
            self.connections.discard(conn)
            conn.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     stream: str, conn: Connection) -> None:
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    await self._slow_close(stream, conn)
                    break
                if not await self._through(data, writer, stream, conn):
                    break
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            try:
                if writer.can_write_eof():
                    writer.write_eof()
            except (OSError, RuntimeError):
                pass

    def _active(self, stream: str, conn: Connection, kind: str) -> list[Toxic]:
        return [t for t in self.toxics.values()
                if t.type == kind and t.stream == stream and conn.affected(t)]

    async def _through(self, data: bytes, writer: asyncio.StreamWriter, stream: str,
                       conn: Connection) -> bool:
        """Pass one chunk through the toxics of this direction; False ends the connection."""
        if self._active(stream, conn, "timeout"):
            return True  # a black hole: nothing gets through while it lasts

        for toxic in self._active(stream, conn, "latency"):
            a = toxic.attributes
            delay = a["latency"] + random.uniform(-a["jitter"], a["jitter"])
            await asyncio.sleep(max(0.0, delay) / 1000)
        for toxic in self._active(stream, conn, "limit_data"):
            room = int(toxic.attributes["bytes"]) - conn.passed
            if room <= len(data):
                writer.write(data[:max(0, room)])
                await writer.drain()
                conn.passed += max(0, room)
                self._drop(conn, False)
                return False
        slicers = self._active(stream, conn, "slicer")
        pieces = _slices(data, slicers[0].attributes) if slicers else [data]
        rate = min((t.attributes["rate"] for t in self._active(stream, conn, "bandwidth")
                    if t.attributes["rate"] > 0), default=None)
        for i, piece in enumerate(pieces):
            if i and slicers:
                await asyncio.sleep(slicers[0].attributes["delay"] / 1e6)
            writer.write(piece)
            await writer.drain()
            if rate is not None:
                await asyncio.sleep(len(piece) / (rate * 1024))
        conn.passed += len(data)
        return True

    async def _slow_close(self, stream: str, conn: Connection) -> None:
        delays = [t.attributes["delay"] for t in self._active(stream, conn, "slow_close")]
        if delays:
            await asyncio.sleep(max(delays) / 1000)


def _slices(data: bytes, attributes: dict[str, float]) -> list[bytes]:
    size = int(attributes["average_size"]) or len(data)
    spread = int(attributes["size_variation"])
    pieces, at = [], 0
    while at < len(data):
        step = max(1, size + random.randint(-spread, spread))
        pieces.append(data[at:at + step])
        at += step
    return pieces


class ProxyManager:
    """Every proxy of one agent, by name."""

    def __init__(self) -> None:
        self.proxies: dict[str, Proxy] = {}

    async def create(self, name: str, listen: str, upstream: str) -> Proxy:
        if name in self.proxies:
            raise ProxyProblem(f"a proxy named {name!r} exists")
        proxy = Proxy(name, *_address(listen, "listen"), *_address(upstream, "upstream"))
        if proxy.listen[0] not in ("127.0.0.1", "localhost", "::1"):
            raise ProxyProblem(f"proxies listen on loopback only, not {proxy.listen[0]}")
        await proxy.start()
        self.proxies[name] = proxy
        return proxy

    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ProxyProblem(f"no proxy named {name!r}")
        return proxy

    async def delete(self, name: str) -> bool:
        proxy = self.proxies.pop(name, None)
        if proxy is not None:
            await proxy.stop()
        return proxy is not None

    async def stop_all(self) -> None:
        for name in list(self.proxies):
            await self.delete(name)


def _address(text: str, what: str) -> tuple[str, int]:
    host, sep, port = str(text).rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise ProxyProblem(f"{what} must be HOST:PORT, not {text!r}")
    return host.strip("[]"), int(port)
