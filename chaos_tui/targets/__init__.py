"""Targets: where a stack is found and how its services are addressed and faulted."""

from __future__ import annotations

from chaos_tui.core.contracts import Target
from chaos_tui.settings import Settings

TARGET_NAMES = ("sandbox",)


def make_target(name: str, settings: Settings) -> Target:
    if name == "sandbox":
        from chaos_tui.targets.sandbox import SandboxTarget

        return SandboxTarget(settings)
    raise ValueError(f"unknown target {name!r} (known: {', '.join(TARGET_NAMES)})")
