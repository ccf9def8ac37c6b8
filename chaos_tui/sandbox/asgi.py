"""What our small JSON services share: raw ASGI under uvicorn, no framework.

A framework adds a second or more to every start-up, and the sandbox restarts these services
during scenarios, where start-up time is measured as recovery time. The services are a handful
of routes each, so they read the body, parse JSON and answer with these helpers.

    sock = listen(host, port)            # one clear error if the port is taken
    serve(app, sock, ready_file=path)    # until SIGTERM / SIGINT; the file appears once serving
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any, NoReturn

import uvicorn

from chaos_tui.core.journal import write_atomic

Scope = MutableMapping[str, Any]  # the ASGI spec's shapes, as Starlette types them too
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY = 1 << 20


class BadRequest(Exception):
    """The request body cannot be used; the message says why, for the client."""


class ServeError(Exception):
    """The service cannot start (e.g. its port is taken)."""


async def read_body(receive: Receive, limit: int = MAX_BODY) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequest("client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"body larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def parse_json(body: bytes) -> Any:
    """Strict JSON: Python's reader would take NaN and Infinity, which other readers refuse."""
    try:
        # Decode first: json.loads would also take UTF-16 and UTF-32 bytes, which a service
        # that passes the body on as it is would then embed in UTF-8 JSON.
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("body is nested too deeply") from None


async def send_json(send: Send, status: int, payload: Any) -> None:
    await send_bytes(
        send, status, json.dumps(payload, separators=(",", ":")).encode(), "application/json"
    )


async def send_bytes(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def listen(host: str, port: int) -> socket.socket:
    """Bind before serving, so a taken port is one clear error and not a uvicorn traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    return sock


def fail(prog: str, message: str, code: int = 2) -> NoReturn:
    """One line on stderr and a non-zero exit: what a launcher shows its user."""
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


class QuietServer(uvicorn.Server):
    """uvicorn re-raises the stopping signal after a graceful stop, so the process would die
    by SIGTERM instead of exiting 0; our own handlers only ask it to stop."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def serve(
    app: App,
    sock: socket.socket,
    *,
    ready_file: str | Path | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    keep_alive_s: int = 5,
    fast_loop: bool = True,
) -> None:
    """Serve until SIGTERM or SIGINT. `ready_file` is written once requests are accepted;
    idle client connections are closed after `keep_alive_s`; `fast_loop` uses uvloop when
    installed."""
    run_loop(_serve(app, sock, ready_file, on_shutdown, keep_alive_s), fast_loop)


def run_loop(main, fast: bool = True) -> None:
    """uvloop when installed (and asked for): it roughly halves each request's cost."""
    try:
        import uvloop
    except ImportError:
        uvloop = None  # type: ignore[assignment]  # not installed (Windows): asyncio's own loop
    if fast and uvloop is not None:
        uvloop.run(main)
    else:
        asyncio.run(main)


async def _serve(app: App, sock: socket.socket, ready_file, on_shutdown, keep_alive_s) -> None:
    server = QuietServer(
        uvicorn.Config(
            app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            server_header=False,
            date_header=False,
            timeout_graceful_shutdown=2,
            timeout_keep_alive=keep_alive_s,
        )
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, setattr, server, "should_exit", True)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started and not task.done():
            await asyncio.sleep(0.005)
        if server.started and ready_file:
            write_atomic(Path(ready_file), "ready\n")
        await task
    finally:
        if on_shutdown is not None:
            await on_shutdown()


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
