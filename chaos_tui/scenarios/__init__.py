"""Built-in scenarios, by name, found by looking: every module of this package is read and
each Scenario subclass with a `name` of its own is listed, by its `order` (the main job,
postgres_restart_outbox, has 0: first), then by name. Adding a scenario is adding a module.
Installed plugins' scenarios (chaos_tui/plugins.py) come after the built-ins."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType
from typing import Any

from chaos_tui.core.contracts import Scenario
from chaos_tui.core.errors import UsageError


def _discover() -> dict[str, type[Scenario]]:
    found: dict[str, type[Scenario]] = {}
    for info in pkgutil.iter_modules(__path__, __name__ + "."):
        module = importlib.import_module(info.name)
        for cls in list(vars(module).values()):
            # A module (a driver imported lazily, core/lazy.py) is passed over unread: even
            # isinstance(m, type) would load it.
            if isinstance(cls, ModuleType) or not inspect.isclass(cls):
                continue
            if (
                issubclass(cls, Scenario)
                and cls.__module__ == module.__name__
                and not inspect.isabstract(cls)
                and "name" in vars(cls)
            ):
                if cls.name in found and found[cls.name] is not cls:
                    raise RuntimeError(f"two scenarios are named {cls.name!r}")
                found[cls.name] = cls
    return dict(sorted(found.items(), key=lambda item: (item[1].order, item[0])))


def _with_plugins(builtins: dict[str, type[Scenario]]) -> dict[str, type[Scenario]]:
    """The built-ins, then the plugins' scenarios (entry point group `chaos_tui.scenarios`),
    each under its class's `name`; a name taken twice is a PluginError naming both."""
    from chaos_tui import plugins

    found: dict[str, type[Scenario]] = {}
    for plugin in plugins.loaded(plugins.SCENARIOS):
        name = plugin.obj.name
        if name in builtins:
            raise plugins.PluginError(
                f"the scenario {name!r} of {plugin.describe()} clashes with the built-in "
                f"scenario {name!r} ({builtins[name].__module__}); uninstall {plugin.dist} "
                "or rename its scenario"
            )
        if name in found:
            raise plugins.PluginError(
                f"two plugins add the scenario {name!r}: {PLUGINS[name].describe()}, and "
                f"{plugin.describe()}; uninstall one of them"
            )
        found[name] = plugin.obj
        PLUGINS[name] = plugin
    ordered = sorted(found.items(), key=lambda item: (item[1].order, item[0]))
    return {**builtins, **dict(ordered)}


PLUGINS: dict[str, Any] = {}  # a plugin scenario's name -> its chaos_tui.plugins.Plugin
SCENARIOS: dict[str, type[Scenario]] = _with_plugins(_discover())


def source_of(name: str) -> str:
    """Where a scenario comes from, as a listing says it: built-in, or plugin DIST."""
    plugin = PLUGINS.get(name)
    return "built-in" if plugin is None else plugin.source


class UnknownScenario(UsageError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown scenario {name!r} (known: {', '.join(sorted(SCENARIOS))})")
        self.name = name


def get_scenario(name: str) -> type[Scenario]:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise UnknownScenario(name) from None
