"""Targets: where a stack is found and how its services are addressed and faulted."""

from __future__ import annotations

from chaos_tui.core.contracts import Target
from chaos_tui.settings import Settings

TARGET_NAMES = ("sandbox", "docker", "local")
# The targets the built-in scenarios run on (they break the platform's own parts); `local` is
# the user's own system, which only scenario files name.
PLATFORM_TARGETS = ("sandbox", "docker")


def make_target(name: str, settings: Settings) -> Target:
    if name == "sandbox":
        from chaos_tui.targets.sandbox import SandboxTarget

        return SandboxTarget(settings)
    if name == "docker":
        from chaos_tui.targets.docker import DockerTarget

        return DockerTarget(settings)
    if name == "local":
        from chaos_tui.targets.local import LocalTarget

        return LocalTarget(settings)
    raise ValueError(f"unknown target {name!r} (known: {', '.join(TARGET_NAMES)})")
