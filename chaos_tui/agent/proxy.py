"""A TCP fault proxy in asyncio, with Toxiproxy's vocabulary of toxics.

A proxy listens on loopback and relays to an upstream. Toxics sit on one direction
("upstream": client to server, "downstream": server to client) and apply to each connection
with probability `toxicity`. A direction no toxic acts on relays in the read callback itself
(relay.py); adding a toxic holds it from its next byte on, and a held direction reads the
toxic list for every chunk, so adding or removing a toxic takes effect on live connections at
once; removing never waits on a lock or on the traffic it slowed. A latency delays each chunk
from the time it arrived (each held chunk is stamped), so a reply written in several pieces is
late by the latency once, not once per piece.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import random
import re
import resource
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chaos_tui.agent import relay
from chaos_tui.core.errors import AgentError
from chaos_tui.core.exit_codes import ExitCode

STREAMS = ("upstream", "downstream")
BACKLOG = 1024  # connects queued before accept: a burst of a thousand must not wait on SYN retries

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
# Toxics that act on a direction's bytes (or its end): while one does, the direction is held
# (relay.py). reset_peer acts on a clock only and leaves the data path fast.
DATA_TOXICS = frozenset(TOXIC_TYPES) - {"reset_peer"}


MAX_ATTRIBUTE = 1e12  # no attribute beyond this (an hour is 3.6e6 ms; a TB is 1e12 bytes)
MAX_CONNECTIONS = 1024  # per proxy: beyond it new connections are refused (and counted)
FD_RESERVE = 256  # fds the agent keeps for its API, journal and heals whatever the proxies do
RESOLVE_TIMEOUT_S = 2.0
HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_-]{1,63})*\.?$"
)


def fd_budget() -> int:
    """Relayed connections all proxies together may hold: two fds each, within the process's
    fd limit less a reserve, so a flood (or a loop) can never starve the agent itself."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(16, (soft - FD_RESERVE) // 2)


class ProxyProblem(AgentError):
    """A bad proxy or toxic request: one line for the API's 400 (the caller's fault)."""

    exit_code = ExitCode.USAGE


@dataclass
class Toxic:
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, float]
    removed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    async def sleep(self, seconds: float) -> None:
        """Sleep, unless the toxic is removed first: data held by it goes on at once."""
        if seconds > 0 and not self.removed.is_set():
            try:
                await asyncio.wait_for(self.removed.wait(), seconds)
            except TimeoutError:
                pass

    @classmethod
    def build(
        cls,
        name: str,
        type: str,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: dict[str, Any] | None = None,
    ) -> Toxic:
        if type not in TOXIC_TYPES:
            raise ProxyProblem(f"unknown toxic type {type!r} (known: {', '.join(TOXIC_TYPES)})")
        if stream not in STREAMS:
            raise ProxyProblem(f"stream must be upstream or downstream, not {stream!r}")
        if (
            isinstance(toxicity, bool)
            or not isinstance(toxicity, (int, float))
            or not 0 <= toxicity <= 1
        ):
            raise ProxyProblem(f"toxicity must be a number between 0 and 1, not {toxicity!r}")
        if not isinstance(attributes or {}, dict):
            raise ProxyProblem(f"attributes must be an object, not {attributes!r}")
        attrs = dict(TOXIC_TYPES[type])
        for key, value in (attributes or {}).items():
            if key not in attrs:
                raise ProxyProblem(f"{type} has no attribute {key!r} (has: {', '.join(attrs)})")
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or not 0 <= value <= MAX_ATTRIBUTE
            ):
                raise ProxyProblem(
                    f"{type}.{key} must be a number from 0 to {MAX_ATTRIBUTE:g}, not {value!r}"
                )
            attrs[key] = float(value)
        return cls(name, type, stream, float(toxicity), attrs)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": self.attributes,
        }


class Connection(relay.Connection):
    """A relayed connection and what its toxics decided about it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_closed: Callable[[], None]) -> None:
        super().__init__(loop, on_closed)
        self.rolls: dict[int, bool] = {}  # id(toxic) -> applies here
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.lost_data = False  # a timeout toxic dropped bytes: the stream is no longer whole
        self.dial: asyncio.Task[None] | None = None

    def affected(self, toxic: Toxic) -> bool:
        """Rolled once per connection and toxic (a toxic added again rolls again)."""
        key = id(toxic)
        if key not in self.rolls:
            self.rolls[key] = random.random() < toxic.toxicity
        return self.rolls[key]

    def close(self, reset: bool = False) -> None:
        for timer in self.timers.values():
            timer.cancel()
        if self.dial is not None and self.dial is not asyncio.current_task():
            self.dial.cancel()
        super().close(reset)


class Budget:
    """Connections open across every proxy of one agent, against the fd budget."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.taken = 0


class Proxy:
    def __init__(
        self,
        name: str,
        listen_host: str,
        listen_port: int,
        upstream_host: str,
        upstream_port: int,
        max_connections: int = MAX_CONNECTIONS,
        budget: Budget | None = None,
    ) -> None:
        self.name = name
        self.listen = (listen_host, listen_port)
        self.upstream = (upstream_host, upstream_port)
        self.enabled = True
        self.downs = 0  # live proxy.down leases
        self.toxics: dict[str, Toxic] = {}
        self.connections: set[Connection] = set()
        # Admitted, still dialling upstream: a stop or a down closes these too, at once,
        # rather than when their dial ends (up to its 5 s timeout).
        self.dialling: set[Connection] = set()
        self.max_connections = max_connections
        self.budget = budget or Budget(fd_budget())
        self.open = 0  # accepted and not yet closed, including those still dialling upstream
        self.refused = 0  # turned away at a cap
        self.forbidden: set[int] = set()  # local ports it must never dial (itself, the agent)
        self._server: asyncio.base_events.Server | None = None
        self.stopped = False

    async def start(self) -> None:
        try:
            self._server = await asyncio.get_running_loop().create_server(
                self._accept, *self.listen, backlog=BACKLOG
            )
        except OSError as exc:
            raise ProxyProblem(
                f"cannot listen on {self.listen[0]}:{self.listen[1]}: {exc.strerror}"
            ) from None
        self.listen = self._server.sockets[0].getsockname()[:2]

    async def stop(self) -> None:
        self.stopped = True  # a connection still dialling upstream is closed when it gets there
        if self._server is not None:
            self._server.close()
        for conn in [*self.connections, *self.dialling]:
            conn.close()
        self.connections.clear()
        self.dialling.clear()

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "listen": _show(*self.listen),
            "upstream": _show(*self.upstream),
            "enabled": self.enabled,
            "listening": self._server is not None,
            "connections": len(self.connections),
            "refused": self.refused,
            "toxics": [t.to_json() for t in self.toxics.values()],
        }

    # -- toxics -------------------------------------------------------------------------------

    def add_toxic(self, toxic: Toxic) -> None:
        if toxic.name in self.toxics:
            raise ProxyProblem(f"proxy {self.name} already has a toxic named {toxic.name!r}")
        self.toxics[toxic.name] = toxic
        for conn in list(self.connections):
            self._arm(conn, toxic)
            for direction in conn.directions:
                direction.retune()  # held from its next byte on, if it acts on data

    def remove_toxic(self, name: str) -> bool:
        toxic = self.toxics.pop(name, None)
        if toxic is None:
            return False
        toxic.removed.set()  # wakes every relay it holds
        for conn in list(self.connections):
            timer = conn.timers.pop(name, None)
            if timer is not None:
                timer.cancel()
            if toxic.type == "timeout" and conn.lost_data:
                self._drop(conn, False)  # bytes went missing: a whole stream must not resume
            else:
                for direction in conn.directions:
                    direction.retune()  # fast again once what it holds has gone on
        return True

    async def set_enabled(self, enabled: bool) -> None:
        """down: the listener closes (connects are refused) and connections drop; up again,
        it listens on the same port."""
        if enabled == self.enabled:
            return
        if enabled:
            await self.start()  # enabled only once it listens again: a failed start can retry
            self.enabled = True
            return
        self.enabled = False
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in list(self.dialling):
            conn.close()
        for conn in list(self.connections):
            self._drop(conn, False)

    def _arm(self, conn: Connection, toxic: Toxic) -> None:
        """Toxics that act on a clock rather than on data: reset_peer, and timeout's close."""
        delay = toxic.attributes.get("timeout", 0) / 1000
        if toxic.type == "reset_peer" and conn.affected(toxic):
            conn.timers[toxic.name] = asyncio.get_running_loop().call_later(
                delay, self._drop, conn, True
            )
        elif toxic.type == "timeout" and delay > 0 and conn.affected(toxic):
            conn.timers[toxic.name] = asyncio.get_running_loop().call_later(
                delay, self._drop, conn, False
            )

    def _drop(self, conn: Connection, reset: bool) -> None:
        conn.close(reset=reset)
        self.connections.discard(conn)

    # -- relaying -----------------------------------------------------------------------------

    def _accept(self) -> relay.Side:
        """A client connects: its protocol (admitted once its socket is made)."""
        conn = Connection(asyncio.get_running_loop(), lambda: None)
        conn.client.on_made = lambda: self._admit(conn)
        return conn.client

    def _admit(self, conn: Connection) -> None:
        if not self.enabled:
            conn.close()
            return
        if self.open >= self.max_connections or self.budget.taken >= self.budget.limit:
            self.refused += 1  # a flood or a loop: turned away before it costs another fd
            conn.close()
            return
        self.open += 1
        self.budget.taken += 1
        conn.on_closed = lambda: self._closed(conn)
        conn.client.transport.pause_reading()  # nothing is read before upstream answers
        self.dialling.add(conn)
        conn.dial = asyncio.get_running_loop().create_task(self._dial(conn))

    def _closed(self, conn: Connection) -> None:
        self.open -= 1
        self.budget.taken -= 1
        self.connections.discard(conn)

    async def _dial(self, conn: Connection) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await asyncio.wait_for(
                loop.create_connection(conn.upstream_side, *self.upstream), 5
            )
        except (TimeoutError, OSError, ValueError):  # ValueError: a name IDNA refuses
            conn.server = None
            conn.close()
            return
        finally:
            conn.dial = None
            self.dialling.discard(conn)
        peer = transport.get_extra_info("peername")
        if peer is not None and peer[1] in self.forbidden and _is_local(peer[0]):
            # The name resolved to ourselves after all (it changed since the proxy was made).
            self.refused += 1
            conn.close()
            return
        if not self.enabled or self.stopped or conn.closing:  # went down while we dialled
            conn.close()
            return
        self.connections.add(conn)
        for toxic in list(self.toxics.values()):
            self._arm(conn, toxic)
        conn.start(self)

    # What relay.Direction asks: does a toxic act on this direction's data, pass a chunk
    # (False ends the connection), pass its end.

    def holds(self, direction: relay.Direction) -> bool:
        conn = direction.conn
        assert isinstance(conn, Connection)
        return any(
            t.stream == direction.stream and t.type in DATA_TOXICS and conn.affected(t)
            for t in self.toxics.values()
        )

    async def through(self, direction: relay.Direction, data: bytes, arrived: float) -> bool:
        assert isinstance(direction.conn, Connection)
        return await self._through(data, direction, direction.stream, direction.conn, arrived)

    async def closing(self, direction: relay.Direction) -> None:
        assert isinstance(direction.conn, Connection)
        await self._slow_close(direction.stream, direction.conn)

    def _active(self, stream: str, conn: Connection, kind: str) -> list[Toxic]:
        return [
            t
            for t in self.toxics.values()
            if t.type == kind and t.stream == stream and conn.affected(t)
        ]

    async def _through(
        self,
        data: bytes,
        writer: relay.Direction,
        stream: str,
        conn: Connection,
        arrived: float,
    ) -> bool:
        """Pass one chunk (arrived at loop time `arrived`) through the toxics of this
        direction; False ends the connection."""
        if self._active(stream, conn, "timeout"):
            conn.lost_data = True
            return True  # a black hole: nothing gets through while it lasts
        due = arrived  # latencies add up from the chunk's arrival, not from the last write
        for toxic in self._active(stream, conn, "latency"):
            a = toxic.attributes
            delay = max(0.0, a["latency"] + random.uniform(-a["jitter"], a["jitter"])) / 1000
            due += delay
            await toxic.sleep(due - asyncio.get_running_loop().time())
            if toxic.removed.is_set():
                due -= delay  # removed while holding it: its share is no longer owed
        for toxic in self._active(stream, conn, "limit_data"):
            room = int(toxic.attributes["bytes"]) - writer.passed
            if room <= len(data):
                writer.write(data[: max(0, room)])
                await writer.drain()
                self._drop(conn, False)
                return False
        at = 0
        while at < len(data):  # toxics are looked up again for every piece
            piece, pause = self._next_piece(data, at, stream, conn)
            writer.write(piece)
            await writer.drain()
            at += len(piece)
            if pause is not None:
                toxic, why, seconds = pause
                if why == "rate" or at < len(data):  # a slicer waits only between pieces
                    await toxic.sleep(seconds)
        return True

    def _next_piece(self, data: bytes, at: int, stream: str, conn: Connection):
        """The next piece to write and what to wait after it: (toxic, why, seconds) or None.
        slicer cuts pieces of about average_size with delay µs between them; bandwidth sends
        a tenth of a second's worth, then waits that tenth of a second."""
        slicers = self._active(stream, conn, "slicer")
        rates = [t for t in self._active(stream, conn, "bandwidth") if t.attributes["rate"] > 0]
        size, pause = len(data) - at, None
        if slicers:
            a = slicers[0].attributes
            if a["average_size"] > 0:
                spread = int(a["size_variation"])
                size = max(1, int(a["average_size"]) + random.randint(-spread, spread))
            pause = (slicers[0], "slice", a["delay"] / 1e6)
        if rates:
            slowest = min(rates, key=lambda t: t.attributes["rate"])
            per_tenth = max(1, int(slowest.attributes["rate"] * 1024 / 10))
            size = min(size, per_tenth)
            pause = (slowest, "rate", size / (slowest.attributes["rate"] * 1024))
        return data[at : at + size], pause

    async def _slow_close(self, stream: str, conn: Connection) -> None:
        for toxic in self._active(stream, conn, "slow_close"):
            await toxic.sleep(toxic.attributes["delay"] / 1000)


class ProxyManager:
    """Every proxy of one agent, by name. No proxy relays to a proxy or to the agent itself:
    a loop would multiply connections until the agent ran out of fds."""

    def __init__(
        self,
        max_connections: int = MAX_CONNECTIONS,
        gateways: Callable[[], set[str]] | None = None,
    ) -> None:
        self.proxies: dict[str, Proxy] = {}
        # Beyond loopback, a proxy may listen only on an address this gives (blocking, asked
        # in a thread): the gateways of the agent's own compose projects' networks, where the
        # job queue's containers dial the host. The API itself stays on loopback.
        self.gateways = gateways
        self.max_connections = max_connections
        self.budget = Budget(fd_budget())
        self.agent_ports: set[int] = set()  # the agent's own API port(s), set once it listens

    async def create(self, name: str, listen: str, upstream: str) -> Proxy:
        if name in self.proxies:
            raise ProxyProblem(f"a proxy named {name!r} exists")
        listen_at, upstream_at = _address(listen, "listen"), _address(upstream, "upstream")
        if listen_at[0] not in ("127.0.0.1", "localhost", "::1") and not await self._gateway(
            listen_at[0]
        ):
            raise ProxyProblem(
                "proxies listen on loopback, or on the gateway of a network of the compose "
                f"projects this agent may break, not {listen_at[0]}"
            )
        if upstream_at[1] == 0:
            raise ProxyProblem("upstream port 0 names no service")
        upstream_local = await _resolves_local(upstream_at[0])
        proxy = Proxy(name, *listen_at, *upstream_at, self.max_connections, self.budget)
        self._check_loop(proxy, upstream_local)  # with the port asked for, before binding it
        await proxy.start()
        try:
            if name in self.proxies:  # made by a concurrent request while we awaited
                raise ProxyProblem(f"a proxy named {name!r} exists")
            self._check_loop(proxy, upstream_local)  # with the port it got (port 0 picks one)
        except ProxyProblem:
            await proxy.stop()
            raise
        self.proxies[name] = proxy
        self._refresh_forbidden()
        return proxy

    async def _gateway(self, host: str) -> bool:
        if self.gateways is None or _ip(host) is None:
            return False
        return host in await asyncio.to_thread(self.gateways)

    def _check_loop(self, proxy: Proxy, upstream_local: bool) -> None:
        others = [p for p in self.proxies.values() if p is not proxy]
        port = proxy.upstream[1]
        if upstream_local:
            if port == proxy.listen[1]:
                raise ProxyProblem(
                    f"upstream {_show(*proxy.upstream)} is the proxy's own "
                    "listen address: it would connect to itself"
                )
            if port in self.agent_ports:
                raise ProxyProblem(f"upstream {_show(*proxy.upstream)} is the agent's own API")
            for other in others:
                if port == other.listen[1]:
                    raise ProxyProblem(
                        f"upstream {_show(*proxy.upstream)} is proxy "
                        f"{other.name}'s listen address: proxies do not chain"
                    )
        for other in others:  # and no existing proxy may relay into the new one
            if (
                proxy.listen[1]
                and other.upstream[1] == proxy.listen[1]
                and _is_local_name(other.upstream[0])
            ):
                raise ProxyProblem(
                    f"listen {_show(*proxy.listen)} is the upstream of proxy "
                    f"{other.name}: proxies do not chain"
                )

    def _refresh_forbidden(self) -> None:
        """What each proxy checks again when it dials (a name may resolve differently later)."""
        ports = set(self.agent_ports) | {p.listen[1] for p in self.proxies.values()}
        for proxy in self.proxies.values():
            proxy.forbidden = ports

    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ProxyProblem(f"no proxy named {name!r}")
        return proxy

    async def delete(self, name: str) -> bool:
        proxy = self.proxies.pop(name, None)
        if proxy is not None:
            await proxy.stop()
            self._refresh_forbidden()
        return proxy is not None

    async def stop_all(self) -> None:
        for name in list(self.proxies):
            await self.delete(name)


def _address(text: str, what: str) -> tuple[str, int]:
    host, sep, port = str(text).rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise ProxyProblem(f"{what} must be HOST:PORT, not {text!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not (_ip(host) or HOSTNAME.match(host)):
        raise ProxyProblem(f"{what} host must be an IP address or a host name, not {host!r}")
    return host, int(port)


def _show(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_local(address: str) -> bool:
    """An address of this machine: loopback, the wildcard (which reaches it too), or one
    that a socket can bind to (any address of its own interfaces)."""
    ip = _ip(address.split("%", 1)[0])
    if ip is None:
        return False
    if ip.is_loopback or ip.is_unspecified:
        return True
    try:
        with socket.socket(
            socket.AF_INET6 if ip.version == 6 else socket.AF_INET, socket.SOCK_DGRAM
        ) as probe:
            probe.bind((str(ip), 0))
        return True
    except OSError:
        return False


def _is_local_name(host: str) -> bool:
    """Without resolving: good enough for names already resolved when their proxy was made."""
    return host == "localhost" or _is_local(host)


async def _resolves_local(host: str) -> bool:
    """Any address the name resolves to is this machine. A name that does not resolve now
    is let through: the proxy checks the address it reaches each time it dials."""
    if _ip(host) is not None:
        return _is_local(host)
    try:
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM),
            RESOLVE_TIMEOUT_S,
        )
    except (TimeoutError, OSError, UnicodeError):
        return host == "localhost"
    return any(_is_local(str(info[4][0])) for info in infos)
