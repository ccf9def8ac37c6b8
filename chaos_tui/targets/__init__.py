"""Targets: where a stack is found and how its services are addressed and faulted."""

from __future__ import annotations

from chaos_tui.core.contracts import Target
from chaos_tui.settings import Settings

TARGET_NAMES = ("sandbox", "docker")


def make_target(name: str, settings: Settings) -> Target:
    if name == "sandbox":
        from chaos_tui.targets.sandbox import SandboxTarget

        return SandboxTarget(settings)
    if name == "docker":
        from chaos_tui.targets.docker import DockerTarget

        return DockerTarget(settings)
    raise ValueError(f"unknown target {name!r} (known: {', '.join(TARGET_NAMES)})")
