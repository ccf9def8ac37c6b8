"""Built-in scenarios, by name, found by looking: every module of this package is read and
each Scenario subclass with a `name` of its own is listed, by its `order` (the main job,
postgres_restart_outbox, has 0: first), then by name. Adding a scenario is adding a module."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from chaos_tui.core.contracts import Scenario
from chaos_tui.core.errors import UsageError


def _discover() -> dict[str, type[Scenario]]:
    found: dict[str, type[Scenario]] = {}
    for info in pkgutil.iter_modules(__path__, __name__ + "."):
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
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


SCENARIOS: dict[str, type[Scenario]] = _discover()


class UnknownScenario(UsageError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown scenario {name!r} (known: {', '.join(sorted(SCENARIOS))})")
        self.name = name


def get_scenario(name: str) -> type[Scenario]:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise UnknownScenario(name) from None
