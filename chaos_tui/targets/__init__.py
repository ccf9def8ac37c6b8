"""Targets: where a stack is found and how its services are addressed and faulted. Installed
plugins add targets of their own (entry point group `chaos_tui.targets`, chaos_tui/plugins.py):
`--target NAME` runs on them, always with an explicit enable."""

from __future__ import annotations

from typing import Any

from chaos_tui import plugins
from chaos_tui.core.contracts import Target
from chaos_tui.settings import Settings

BUILTIN_TARGETS = ("sandbox", "docker", "local")
# The targets the built-in scenarios run on (they break the platform's own parts); `local` is
# the user's own system, which only scenario files name.
PLATFORM_TARGETS = ("sandbox", "docker")


def _plugin_targets() -> dict[str, Any]:
    found = plugins.refuse_clashes(plugins.TARGETS, BUILTIN_TARGETS, "the built-in target")
    for name, plugin in found.items():
        if getattr(plugin.obj, "name", None) is None:
            plugin.obj.name = name  # the entry point names it; the runner reads target.name
    return found


PLUGIN_TARGETS: dict[str, Any] = _plugin_targets()  # name -> chaos_tui.plugins.Plugin
TARGET_NAMES = BUILTIN_TARGETS + tuple(PLUGIN_TARGETS)


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
    plugin = PLUGIN_TARGETS.get(name)
    if plugin is not None:
        target: Target = plugins.call(plugin, "making the target", plugin.obj, settings)
        return target
    raise ValueError(f"unknown target {name!r} (known: {', '.join(TARGET_NAMES)})")
