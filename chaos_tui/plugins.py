"""Plugins: what third-party packages add through Python entry points, without a fork.

- `chaos_tui.scenarios`: any name; a core `Scenario` subclass with its own `name`.
- `chaos_tui.targets`: the target's name; a core `Target` subclass, made with `Settings`.
- `chaos_tui.probes`: the YAML kind key; an object (a class, a module) with `Spec`, a pydantic
  model of the value under the key, and `build(name, spec) -> Probe`.
- `chaos_tui.faults`: the action's `type`; an object with `Params`, a pydantic model of the
  action's other keys, and `build(params, target, hold_s) -> Fault`.

Each group is read once per process (`loaded`). A plugin that cannot be used (its module fails
to import, the object has the wrong shape, its name cannot be a YAML key) is one warning line
on stderr, said once, and is left out: the rest of chaos-tui works as if it were not installed.
A plugin whose name clashes with a built-in's or another plugin's is a `PluginError`, one line
naming both, because a name must never silently mean something else.

Only `chaos_tui.core` is imported here, and only inside the checks: the scenario file's model
reads the probe and fault kinds, and `scenario_file` may not import the sandbox, the agent,
the built-in scenarios or the targets (import contract `scenario-file-pure`).
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from chaos_tui.core.errors import ChaosError, UsageError

SCENARIOS = "chaos_tui.scenarios"
TARGETS = "chaos_tui.targets"
PROBES = "chaos_tui.probes"
FAULTS = "chaos_tui.faults"
GROUPS = (SCENARIOS, TARGETS, PROBES, FAULTS)
WHAT = {SCENARIOS: "scenario", TARGETS: "target", PROBES: "probe kind", FAULTS: "action type"}
# A kind becomes a YAML key and a pydantic field name, so it is written as the built-ins are.
KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class PluginError(UsageError):
    """A plugin that cannot be used as installed (a name clash; a build that failed)."""


@dataclass(frozen=True)
class Plugin:
    """One loaded entry point: its name, where it came from, and the object it loaded."""

    group: str
    name: str
    value: str  # "module:attribute", as the distribution declares it
    dist: str  # the distribution's name
    version: str
    obj: Any

    @property
    def source(self) -> str:
        """How a listing names where it came from."""
        return f"plugin {self.dist}"

    def describe(self) -> str:
        return _where(self.group, self.name, self.value, self.dist, self.version)


def _where(group: str, name: str, value: str, dist: str, version: str) -> str:
    release = f" {version}" if version else ""
    return f"entry point {group}:{name} = {value} of {dist}{release}"


def warn(line: str) -> None:
    """One line on stderr; a closed stderr is no reason to fail a command."""
    try:
        print(f"chaos-tui: warning: {line}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


# --- reading the entry points ----------------------------------------------------------------


@functools.cache
def _all_entry_points() -> Any:
    from importlib.metadata import entry_points

    return entry_points()  # one scan of the installed distributions for every group


def _entry_points(group: str) -> tuple[Any, ...]:
    # One distribution found twice on the path (site-packages and PYTHONPATH) is listed once
    # by importlib.metadata; the same declaration twice is still one plugin.
    seen: dict[tuple[str, str, str], Any] = {}
    for ep in _all_entry_points().select(group=group):
        dist = ep.dist.name if ep.dist is not None else "?"
        seen.setdefault((ep.name, ep.value, dist), ep)
    return tuple(seen.values())


def loaded(group: str) -> tuple[Plugin, ...]:
    """The usable plugins of a group, in entry-point-name order. The others are warned about
    once (the first time the group is read) and left out; a clash between two plugins of the
    group is a PluginError (every time it is asked: the group is read once)."""
    plugins, clash = _load(group)
    if clash is not None:
        raise PluginError(clash)
    return plugins


@functools.cache
def _load(group: str) -> tuple[tuple[Plugin, ...], str | None]:
    check = _CHECKS[group]
    found: dict[str, Plugin] = {}
    for ep in sorted(_entry_points(group), key=lambda e: e.name):
        dist = ep.dist.name if ep.dist is not None else "an unknown distribution"
        version = ep.dist.version if ep.dist is not None else ""
        where = _where(group, ep.name, ep.value, dist, version)
        try:
            obj = ep.load()
        except BaseException as exc:  # a plugin's import may raise anything, SystemExit too
            if isinstance(exc, KeyboardInterrupt):
                raise
            _failed[group][ep.name] = f"{where}: cannot load it ({_one_line(exc)})"
            warn(f"{_failed[group][ep.name]}; left out")
            continue
        problem = check(ep.name, obj)
        if problem is not None:
            _failed[group][ep.name] = f"{where}: {problem}"
            warn(f"{_failed[group][ep.name]}; left out")
            continue
        plugin = Plugin(group, ep.name, ep.value, dist, version, obj)
        other = found.get(ep.name)
        if other is not None:
            return (), (
                f"two plugins add the {WHAT[group]} {ep.name!r}: {other.describe()}, and "
                f"{plugin.describe()}; uninstall one of them"
            )
        found[ep.name] = plugin
    return tuple(found.values()), None


_failed: dict[str, dict[str, str]] = {group: {} for group in GROUPS}


def failed(group: str) -> dict[str, str]:
    """Name -> why, for each plugin of the group that was left out."""
    _load(group)
    return dict(_failed[group])


def by_name(group: str) -> dict[str, Plugin]:
    return {p.name: p for p in loaded(group)}


def refuse_clashes(group: str, builtin: Iterable[str], builtin_what: str) -> dict[str, Plugin]:
    """The group's plugins by name; PluginError when one takes a name already built in."""
    taken = set(builtin)
    plugins = by_name(group)
    for name, plugin in plugins.items():
        if name in taken:
            raise PluginError(
                f"the {WHAT[group]} {name!r} of {plugin.describe()} clashes with "
                f"{builtin_what} {name!r}; uninstall {plugin.dist} or rename its entry point"
            )
    return plugins


def call(plugin: Plugin, action: str, fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` from a plugin: a known failure passes through, anything else is one line
    naming the plugin, never a traceback."""
    try:
        return fn(*args)
    except ChaosError:
        raise
    except Exception as exc:
        raise PluginError(f"{plugin.describe()}: {action} failed: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- what each group's object must be ---------------------------------------------------------


def _is_subclass(obj: Any, base: type) -> bool:
    return inspect.isclass(obj) and issubclass(obj, base) and not inspect.isabstract(obj)


def _check_scenario(name: str, obj: Any) -> str | None:
    from chaos_tui.core.contracts import Scenario

    if not _is_subclass(obj, Scenario):
        return "not a chaos_tui.core.contracts.Scenario subclass (with every hook defined)"
    for attribute in ("name", "hypothesis"):
        if not isinstance(getattr(obj, attribute, None), str):
            return f"the scenario class has no {attribute} (a str class attribute)"
    return None


def _check_target(name: str, obj: Any) -> str | None:
    from chaos_tui.core.contracts import Target

    if not _is_subclass(obj, Target):
        return "not a chaos_tui.core.contracts.Target subclass (with ensure_up defined)"
    own = getattr(obj, "name", None)
    if own is not None and own != name:
        return f"the class is named {own!r}: its name must be the entry point's ({name!r})"
    if obj.is_sandbox:
        # Only chaos-tui's own sandbox is faulted without an explicit enable.
        return "is_sandbox is True: a plugin target always needs --enable-chaos"
    return None


def _check_kind(name: str, obj: Any, model_attr: str, signature: str) -> str | None:
    from pydantic import BaseModel

    if not KIND_PATTERN.match(name):
        return "its name is not a kind: lowercase letters, digits and _, starting with a letter"
    model = getattr(obj, model_attr, None)
    if not (inspect.isclass(model) and issubclass(model, BaseModel)):
        return f"it has no {model_attr} (a pydantic model)"
    if not callable(getattr(obj, "build", None)):
        return f"it has no build({signature})"
    return None


def _check_probe(name: str, obj: Any) -> str | None:
    return _check_kind(name, obj, "Spec", "name, spec) -> Probe")


# The keys every action takes; a plugin's Params cannot take them over.
ACTION_KEYS = ("type", "duration_seconds", "ttl_seconds")


def _check_fault(name: str, obj: Any) -> str | None:
    problem = _check_kind(name, obj, "Params", "params, target, hold_s) -> Fault")
    if problem is not None:
        return problem
    taken = [key for key in ACTION_KEYS if key in obj.Params.model_fields]
    if taken:
        return f"its Params has {', '.join(taken)}, a key every action has already"
    return None


_CHECKS: dict[str, Callable[[str, Any], str | None]] = {
    SCENARIOS: _check_scenario,
    TARGETS: _check_target,
    PROBES: _check_probe,
    FAULTS: _check_fault,
}
