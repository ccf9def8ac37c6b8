"""The proxy's data path: one relayed TCP connection, two directions, each fast or held.

Each socket is an asyncio protocol reading into one reused buffer. A direction with no toxic
acting on its data is *fast*: what is read is written to the other socket in the same
callback (one wake-up, one recv, one send, no task, no copy unless the kernel takes only
part). A direction that has such a toxic is *held*: what is read is queued, stamped with its
arrival time, and a task passes it through the toxics (`Relay.through`, in proxy.py).

Switching is in order by construction, since everything runs on the event loop:
- fast -> held (a toxic added): later bytes queue behind whatever was already written;
- held -> fast (the toxic removed): the task goes on until the queue is empty, then flips the
  direction back in the same step that found it empty, so no byte can overtake another.

Flow control: a socket is read only while the other one's send buffer is under asyncio's
high-water mark, and (held) while under READ_AHEAD bytes are queued. When both directions
have passed on their end (EOF), or either socket is lost, both sockets are closed; one whose
peer never reads what is left to send is aborted after CLOSE_GRACE_S so its fd is not kept.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

BUFFER = 256 * 1024  # read at most this much per wake-up, into the one shared buffer
READ_AHEAD = 128 * 1024  # bytes a held direction queues before it stops reading
CLOSE_GRACE_S = 5.0  # a closed socket still flushing after this is aborted


class Toxics(Protocol):
    """What a direction asks the proxy: does a toxic act on its data now, and pass a chunk
    (False ends the connection), and its end (slow_close), through them."""

    def holds(self, direction: Direction) -> bool: ...

    def through(self, direction: Direction, data: bytes, arrived: float) -> Awaitable[bool]: ...

    def closing(self, direction: Direction) -> Awaitable[None]: ...


class Direction:
    """Bytes read from one socket, written to the other. `stream` is "upstream" (client to
    server) or "downstream"."""

    def __init__(self, conn: Connection, stream: str) -> None:
        self.conn = conn
        self.stream = stream
        self.source: Side | None = None
        self.sink: Side | None = None
        self.passed = 0  # bytes written on (limit_data counts them)
        self.fast = False
        self.queue: deque[tuple[bytes, float]] = deque()  # held: (data, arrival); b"" = end
        self.queued = 0
        self.task: asyncio.Task[None] | None = None  # held and with something to pass on
        self.toxics: Toxics | None = None  # set once both sockets are open (till then: queue)
        self.changed = asyncio.Event()  # held: queued, sink writable again, toxics changed
        self.sink_full = False
        self.ended = False  # the end was passed on, or the sink is gone

    # -- from the source socket ---------------------------------------------------------------

    def received(self, data: memoryview) -> None:
        if self.ended:
            return
        if self.fast:
            self.passed += len(data)
            assert self.sink is not None
            self.sink.transport.write(data)  # nothing copied if the kernel takes it all now
            return
        self.queue.append((bytes(data), self.conn.loop.time()))
        self.queued += len(data)
        self.changed.set()
        self._work()
        if self.queued >= READ_AHEAD:
            self.update_reading()

    def received_end(self) -> None:
        if self.ended:
            return
        if self.fast:
            self.pass_end()
        else:
            self.queue.append((b"", self.conn.loop.time()))
            self.changed.set()
            self._work()

    # -- to the sink socket -------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.ended:
            raise ConnectionResetError("the other side is gone")
        self.passed += len(data)
        assert self.sink is not None
        self.sink.transport.write(data)

    async def drain(self) -> None:
        while self.sink_full and not self.ended:
            self.changed.clear()
            await self.changed.wait()
        if self.ended:
            raise ConnectionResetError("the other side is gone")

    def sink_writable(self, writable: bool) -> None:
        self.sink_full = not writable
        self.changed.set()
        self.update_reading()

    def pass_end(self) -> None:
        """The source ended: end the sink's sending side too (half-close), once."""
        if self.ended:
            return
        self.ended = True
        sink = self.sink
        if sink is not None and not sink.lost and sink.transport is not None:
            try:
                if sink.transport.can_write_eof():
                    sink.transport.write_eof()
            except (OSError, RuntimeError):
                pass
        self.conn.direction_ended()

    def sink_lost(self) -> None:
        """Nothing more can be written: drop what is queued, stop reading."""
        self.queue.clear()
        self.queued = 0
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()
        if not self.ended:
            self.ended = True
            self.changed.set()
            self.conn.direction_ended()

    def update_reading(self) -> None:
        source = self.source
        if source is None or source.lost or source.transport is None:
            return
        if self.sink_full or self.queued >= READ_AHEAD or self.ended:
            source.transport.pause_reading()
        else:
            source.transport.resume_reading()

    # -- switching ----------------------------------------------------------------------------

    def begin(self, toxics: Toxics) -> None:
        """Both sockets are open: relay, fast unless something is queued or a toxic acts."""
        self.toxics = toxics
        if self.ended:
            return
        if self.queue or toxics.holds(self):
            self._work()
        else:
            self.fast = True
        self.update_reading()

    def retune(self) -> None:
        """The toxics changed: a fast direction that a toxic now acts on is held from its
        next byte on (its task starts with that byte: a toxic added to a thousand idle
        connections costs a flag each); a held one looks again, and goes fast once drained."""
        if self.ended or self.toxics is None:
            return
        if self.fast:
            self.fast = not self.toxics.holds(self)
        elif self.task is None and not self.queue and not self.toxics.holds(self):
            self.fast = True  # held, but nothing came since: fast again at once
            self.update_reading()
        elif self.task is None:
            self._work()
        else:
            self.changed.set()

    def _work(self) -> None:
        """A held direction has something to pass on (or to decide): its task, if none runs."""
        if self.task is None and self.toxics is not None and not self.ended:
            self.task = self.conn.loop.create_task(self._held(self.toxics))

    async def _held(self, toxics: Toxics) -> None:
        try:
            while not self.ended:
                if not self.queue:
                    if not toxics.holds(self):
                        self.fast = True  # queue empty, nothing to hold: no byte can overtake
                        self.task = None
                        self.update_reading()
                        return
                    self.changed.clear()
                    await self.changed.wait()
                    continue
                data, arrived = self.queue.popleft()
                self.queued -= len(data)
                self.update_reading()
                if not data:
                    await toxics.closing(self)
                    self.pass_end()
                    return
                if not await toxics.through(self, data, arrived):
                    return
        except (ConnectionError, OSError):
            self.sink_lost()


class ReadBuffer:
    """The buffer every socket reads into: one for all, since reads run one at a time on the
    loop and each is written on (or copied) before the next. 256 KB per socket would cost a
    thousand connections half a gigabyte, zeroed."""

    view = memoryview(bytearray(BUFFER))

    @classmethod
    def give_away(cls) -> None:
        """A transport kept a view of the buffer (uvloop queues a view, not a copy, of what
        the kernel did not take at once): it is the transport's now; read into a new one."""
        cls.view = memoryview(bytearray(BUFFER))


class Side(asyncio.BufferedProtocol):
    """One socket of a relayed connection: reads for `reads`, and is the sink of `writes`."""

    def __init__(self, conn: Connection, reads: Direction, writes: Direction) -> None:
        self.conn = conn
        self.reads = reads
        self.writes = writes
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set on connect
        self.lost = False
        self.on_made: Callable[[], None] | None = None  # called once the socket is ours
        reads.source = self
        writes.sink = self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        if self.conn.closing:  # dialled while the connection was being closed: not kept
            transport.close()
        elif self.on_made is not None:
            self.on_made()

    def get_buffer(self, sizehint: int) -> memoryview:
        return ReadBuffer.view

    def buffer_updated(self, nbytes: int) -> None:
        self.reads.received(ReadBuffer.view[:nbytes])
        sink = self.reads.sink
        if (
            self.reads.fast
            and sink is not None
            and sink.transport is not None
            and sink.transport.get_write_buffer_size()
        ):
            ReadBuffer.give_away()

    def eof_received(self) -> bool:
        self.reads.received_end()
        return True  # half-closed: the other direction may still flow

    def pause_writing(self) -> None:
        self.writes.sink_writable(False)

    def resume_writing(self) -> None:
        self.writes.sink_writable(True)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.reads.received_end()
        self.writes.sink_lost()
        self.conn.side_lost()

    def reset(self) -> None:
        """SO_LINGER 0: closing sends a RST instead of a FIN."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass


class Connection:
    """A client socket and, once dialled, its upstream socket. `on_closed` runs once, when
    both are closed (or the client's alone, if the dial failed)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_closed: Callable[[], None]) -> None:
        self.loop = loop
        self.up = Direction(self, "upstream")
        self.down = Direction(self, "downstream")
        self.client = Side(self, self.up, self.down)
        self.server: Side | None = None
        self.on_closed = on_closed
        self.closing = False
        self.closed = False
        self._abort: asyncio.TimerHandle | None = None

    @property
    def directions(self) -> tuple[Direction, Direction]:
        return self.up, self.down

    def upstream_side(self) -> Side:
        """The protocol for the upstream socket being dialled."""
        self.server = Side(self, self.down, self.up)
        return self.server

    def start(self, toxics: Toxics) -> None:
        """Both sockets are open: relay."""
        for direction in self.directions:
            direction.begin(toxics)

    def direction_ended(self) -> None:
        if self.up.ended and self.down.ended:
            self.close()

    def side_lost(self) -> None:
        if self.closing:
            self._maybe_closed()
        else:
            self.close()

    def close(self, reset: bool = False) -> None:
        """Close both sockets (after what they have to send, unless reset)."""
        if not self.closing:
            self.closing = True
            for direction in self.directions:
                if direction.task is not None and direction.task is not asyncio.current_task():
                    direction.task.cancel()  # a relay asleep in a toxic must not outlive us
            for side in self.sides():
                if not side.lost and side.transport is not None:
                    if reset:
                        side.reset()
                    side.transport.close()
            self._abort = self.loop.call_later(CLOSE_GRACE_S, self._abort_all)
        self._maybe_closed()

    def sides(self) -> list[Side]:
        return [self.client] + ([self.server] if self.server is not None else [])

    def _abort_all(self) -> None:
        for side in self.sides():
            if not side.lost and side.transport is not None:
                side.transport.abort()

    def _maybe_closed(self) -> None:
        if self.closed or not all(side.lost or side.transport is None for side in self.sides()):
            return
        self.closed = True
        if self._abort is not None:
            self._abort.cancel()
        self.on_closed()
