"""Read a scenario file: YAML with every key's position kept, `${var}` filled in, the models
checked, and every problem reported at once as `FILE:LINE:COL: key.path: message`.

The YAML is composed to nodes (not loaded) so each value keeps where it was written; pydantic's
error locations are then mapped back to those positions. One exception, `ScenarioFileError`,
carries all the lines.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Discriminator, TypeAdapter, ValidationError

from chaos_tui import plugins
from chaos_tui.core.errors import UsageError
from chaos_tui.load.patterns import PATTERN_KINDS
from chaos_tui.scenario_file import model as m

Loc = tuple[str | int, ...]
Problem = tuple[Loc, tuple[int, int], str]  # where (key path, line and column), what
_VAR = re.compile(r"\$\{([^}]*)\}")


class ScenarioFileError(UsageError):
    """A scenario file that cannot be used: one line per problem, all of them."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


@dataclass
class Read:
    """The file as Python data, with the position of every value and mapping key in it."""

    source: str
    values: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    errors: list[tuple[Loc, tuple[int, int], str]] = field(default_factory=list)

    def at(self, loc: Loc, key: bool = False) -> tuple[Loc, tuple[int, int]]:
        """The longest prefix of `loc` written in the file, and where (its key if `key`)."""
        for n in range(len(loc), -1, -1):
            prefix = loc[:n]
            table = self.keys if key and n == len(loc) else self.values
            if prefix in table:
                return prefix, table[prefix]
        return (), (1, 1)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def load_file(path: Path | str, overrides: dict[str, str] | None = None) -> m.ScenarioFile:
    """The validated file, or ScenarioFileError with every problem in it."""
    path = Path(path)
    return load_text(read_text(path, "a scenario file", "no such file"), str(path), overrides)


def read_text(path: Path, what: str, missing: str) -> str:
    """The file's text, or ScenarioFileError saying in one line why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioFileError([f"{path}: {missing}"]) from None
    except IsADirectoryError:
        raise ScenarioFileError([f"{path}: is a directory, not {what}"]) from None
    except UnicodeDecodeError as exc:
        raise ScenarioFileError([f"{path}: not UTF-8 text ({exc.reason})"]) from None
    except OSError as exc:
        raise ScenarioFileError([f"{path}: {exc.strerror or exc}"]) from None


def load_text(text: str, source: str, overrides: dict[str, str] | None = None) -> m.ScenarioFile:
    read = Read(source)
    data = compose(text, read)
    if not isinstance(data, dict):
        what = "nothing" if data is None else type(data).__name__
        lines = [f"{source}:1:1: expected a mapping (version, safety, scenarios), found {what}"]
        if data is None:
            lines = [f"{source}: the file is empty; `chaos-tui init` writes an example"]
        raise ScenarioFileError(lines)
    data = _substitute(data, read, overrides or {})
    parsed, problems = validated(m.ScenarioFile, data, read)
    problems.extend(_cross_check(data, read))
    raise_problems(problems, source)
    assert parsed is not None
    return parsed


def validated(model: type[Any], data: Any, read: Read) -> tuple[Any, list[Problem]]:
    """`data` as `model` (None if it is not), and every problem found so far: those met while
    reading (an undefined ${var}, a duplicate key), then pydantic's, each at its place in the
    file. What reading already said is not said again as what it caused."""
    problems = list(read.errors)
    try:
        return model.model_validate(data), problems
    except ValidationError as exc:
        skip = {loc for loc, _, _ in read.errors if loc}
        for err in exc.errors():
            loc, message, on_key = _explain(err, model)
            if any(loc[: len(s)] == s for s in skip):
                continue
            _, pos = read.at(loc, key=on_key)
            problems.append((loc, pos, message))
        return None, problems


def raise_problems(problems: list[Problem], source: str) -> None:
    """ScenarioFileError with every problem, in file order, each said once; nothing if none."""
    if not problems:
        return
    said = dict.fromkeys(
        f"{source}: {msg}"  # not in the file: a --set
        if line == 0
        else f"{source}:{line}:{col}: {_path(loc)}: {msg}"
        if loc
        else f"{source}:{line}:{col}: {msg}"
        for loc, (line, col), msg in sorted(problems, key=lambda p: p[1])
    )
    raise ScenarioFileError(list(said))


def _path(loc: Loc) -> str:
    out = ""
    for elem in loc:
        out += f"[{elem}]" if isinstance(elem, int) else (f".{elem}" if out else str(elem))
    return out


# --- YAML to data, with positions -----------------------------------------------------------


def compose(text: str, read: Read) -> Any:
    """The YAML as Python data, each value's and key's position noted in `read`."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        return _node(loader, node, (), read)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{mark.line + 1}:{mark.column + 1}" if mark else "1:1"
        problem = "; ".join(p for p in (exc.context, exc.problem) if p)
        raise ScenarioFileError([f"{read.source}:{where}: YAML syntax: {problem}"]) from None
    except yaml.YAMLError as exc:
        raise ScenarioFileError([f"{read.source}: YAML: {exc}"]) from None
    finally:
        loader.dispose()


def _node(loader: yaml.SafeLoader, node: yaml.Node, loc: Loc, read: Read) -> Any:
    read.values[loc] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # YAML merge keys (<<: *anchor)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool):
                read.errors.append(
                    (loc + ("<key>",), _mark(key_node), "a key must be a plain name")
                )
                continue
            key = str(key) if not isinstance(key, str) else key
            if key in out:
                read.errors.append(
                    (loc + (key,), _mark(key_node), f"{key!r} is given twice in this mapping")
                )
            read.keys[loc + (key,)] = _mark(key_node)
            out[key] = _node(loader, value_node, loc + (key,), read)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_node(loader, item, loc + (i,), read) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def _substitute(data: dict[str, Any], read: Read, overrides: dict[str, str]) -> dict[str, Any]:
    """`${name}` in every string under scenarios: a variable's default or its override. A
    string that is only `${name}` takes the variable's own type (a port stays a number)."""
    declared = data.get("variables")
    values: dict[str, Any] = dict(declared) if isinstance(declared, dict) else {}
    for name, text in overrides.items():
        if name not in values:
            known = ", ".join(sorted(values)) or "none declared"
            read.errors.append(
                (
                    (),
                    (0, 0),
                    f"--set {name}={text}: no variable {name!r} is declared (variables: {known})",
                )
            )
            continue
        values[name] = _typed_like(values[name], name, text, read)

    def fill(value: Any, loc: Loc) -> Any:
        if isinstance(value, dict):
            return {k: fill(v, loc + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v, loc + (i,)) for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value
        missing = [n for n in _VAR.findall(value) if n not in values]
        if missing:
            known = ", ".join(sorted(values)) or "none declared"
            read.errors.append(
                (
                    loc,
                    read.values.get(loc, (1, 1)),
                    f"undefined variable ${{{missing[0]}}} (variables: {known})",
                )
            )
            return value
        whole = _VAR.fullmatch(value)
        if whole:
            return values[whole.group(1)]
        return _VAR.sub(lambda match: str(values[match.group(1)]), value)

    if "scenarios" in data:
        data = {**data, "scenarios": fill(data["scenarios"], ("scenarios",))}
    return data


def typed_override(default: Any, text: str) -> Any:
    """An override (`--set name=text`) in the type of the variable's default; ValueError
    when it cannot be."""
    if isinstance(default, bool):
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise ValueError("true or false")
    if isinstance(default, int | float):
        try:
            return type(default)(text)
        except ValueError:
            raise ValueError("a number") from None
    return text


def _typed_like(default: Any, name: str, text: str, read: Read) -> Any:
    try:
        return typed_override(default, text)
    except ValueError as exc:
        read.errors.append(
            ((), (0, 0), f"--set {name}={text}: {name} is {exc} (its default is {default!r})")
        )
        return default


# --- pydantic errors to lines ---------------------------------------------------------------


def _explain(err: Any, root: Any = m.ScenarioFile) -> tuple[Loc, str, bool]:
    """(location in the file, message, whether it points at a key) for one pydantic error."""
    loc, model = _clean(tuple(err["loc"]), root)
    kind = err["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        valid = _fields(model)
        if key in m.ACTION_TYPES and "type" in valid:
            return loc, f"unknown key {key!r} (did you mean `type: {key}`?)", True
        if getattr(model, "TAGS", ()) and key in _KINDS:
            return (
                loc,
                f"one kind per entry: {key!r} is a second one (start another `- ` item)",
                True,
            )
        return loc, f"unknown key {key!r}{_suggest(key, valid)}", True
    if kind in ("union_tag_invalid", "union_tag_not_found") and _pattern_tag(err):
        if kind == "union_tag_not_found":
            return loc, f"a pattern needs `kind:` (one of {', '.join(PATTERN_KINDS)})", False
        tag = str(err["ctx"]["tag"])
        hint = _suggest(tag, PATTERN_KINDS, valid_list=False)
        listed = ", ".join(PATTERN_KINDS)
        return loc + ("kind",), f"unknown pattern kind {tag!r}{hint}; one of: {listed}", False
    if kind == "union_tag_invalid":
        tag = str(err["ctx"]["tag"])
        left_out = plugins.failed(plugins.FAULTS).get(tag)
        if left_out is not None:
            message = f"action type {tag!r} is a plugin's, left out: {left_out}"
            return loc + ("type",), message, False
        hint = _suggest(tag, m.ACTION_TYPES, valid_list=False)
        types = ", ".join(m.ACTION_TYPES)
        return loc + ("type",), f"unknown action type {tag!r}{hint}; valid types: {types}", False
    if kind == "union_tag_not_found":
        return loc, f"an action needs `type:` (one of {', '.join(m.ACTION_TYPES)})", False
    if kind == "missing_kind":
        given = err["input"]
        ctx = err.get("ctx") or {}
        kinds = str(ctx.get("kinds", "")).split(", ")
        if isinstance(given, dict) and given:
            first = str(next(iter(given)))
            left_out = plugins.failed(plugins.PROBES).get(first)
            if left_out is not None and ctx.get("what") == "steady_state probe":
                return loc, f"probe kind {first!r} is a plugin's, left out: {left_out}", False
            hint = _suggest(first, kinds, valid_list=False)
            return (
                loc,
                f"unknown {ctx.get('what', 'entry')} {first!r}{hint}; one of: {', '.join(kinds)}",
                False,
            )
        if isinstance(given, str):
            hint = _suggest(given, kinds, valid_list=False)
            return (
                loc,
                f"unknown {ctx.get('what', 'entry')} {given!r}{hint}; one of: {', '.join(kinds)}",
                False,
            )
        return loc, err["msg"], False
    if kind == "missing":
        return loc, f"{loc[-1]!s} is required" if loc else "required", False
    on_key = bool(loc) and loc[-1] == "[key]"
    if on_key:  # a mapping key that is not a valid name (a scenario's, a variable's)
        loc = loc[:-1]
    message = err["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if kind == "literal_error" and loc == ("version",):
        message = f"unsupported version {err['input']!r}: this chaos-tui reads version 1"
    if kind in ("float_type", "int_type") and isinstance(err["input"], str):
        message += f" (found the string {err['input']!r})"
    if kind == "string_pattern_mismatch":
        pattern = str((err.get("ctx") or {}).get("pattern", ""))
        message = f"{err['input']!r} is not {m.PATTERN_WORDS.get(pattern, 'valid here')}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        message = f"expected a mapping (key: value), found {_what(err['input'])}"
    if kind == "list_type":
        message = f"expected a list (`- ` items), found {_what(err['input'])}"
    if kind == "literal_error" and err["input"] is not True and "True" in message:
        message = "only `true` means something here (leave the entry out instead)"
    if kind == "too_short":
        message = "needs at least one entry"
    if kind == "string_too_short":
        message = "must not be empty"
    return loc, message, on_key


def _pattern_tag(err: Any) -> bool:
    """Whether a tag error is a load pattern's (tagged by `kind`) rather than an action's."""
    return "'kind'" in str((err.get("ctx") or {}).get("discriminator", ""))


def _what(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{value!r}"


_KINDS = frozenset(
    tag
    for models in (m.PROBE_MODELS, m.LOAD_MODELS, m.CHECK_MODELS, m.CLEANUP_MODELS)
    for model in models
    for tag in model.TAGS
)


def _suggest(key: str, valid: typing.Iterable[str], valid_list: bool = True) -> str:
    options = sorted(set(valid))
    close = difflib.get_close_matches(key, options, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (valid: {', '.join(options)})" if valid_list and options else ""


def _fields(model: Any) -> list[str]:
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    flat = getattr(model, "FLAT", None)
    if flat is None:  # a field's alias is what a file writes (a suite's `for`)
        return [f.alias or name for name, f in model.model_fields.items()]
    # A plugin action: its own keys and its params' keys are written side by side.
    params = model.model_fields[flat].annotation
    return [f for f in model.model_fields if f != flat] + _fields(params)


def _clean(loc: Loc, root: Any = m.ScenarioFile) -> tuple[Loc, Any]:
    """Drop pydantic's union tags from `loc`, following the model types along it; also the
    model holding the last element (for suggestions)."""
    tp: Any = root
    out: list[str | int] = []
    holder: Any = None
    flat_owner: Any = None  # the plugin action whose `params` were just passed through
    for elem in loc:
        single = _single_tagged(tp)
        tp = _unwrap(tp)
        if single is not None and elem in getattr(single, "TAGS", ()):
            continue  # a tagged union of one model still puts its tag in the location
        members = _union_members(tp)
        if members:
            chosen = next(
                (x for x in members if isinstance(x, type) and elem in getattr(x, "TAGS", ())),
                None,
            )
            if chosen is not None:
                tp = chosen
                continue
        if isinstance(tp, type) and issubclass(tp, BaseModel) and elem == getattr(tp, "FLAT", None):
            # A plugin action's keys are written beside `type`, not under `params`.
            flat_owner = tp
            tp = tp.model_fields[str(elem)].annotation
            continue
        out.append(elem)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            holder, flat_owner = flat_owner or tp, None
            info = tp.model_fields.get(str(elem))
            tp = info.annotation if info else Any
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        elif typing.get_origin(tp) is list:
            tp = typing.get_args(tp)[0]
        else:
            tp = Any
    return tuple(out), holder


def _single_tagged(tp: Any) -> Any:
    """The model of `Annotated[Model, Discriminator(...)]` (a tagged union of one), else None."""
    if typing.get_origin(tp) is not typing.Annotated:
        return None
    inner, *meta = typing.get_args(tp)
    if any(isinstance(x, Discriminator) for x in meta) and isinstance(inner, type):
        return inner
    return None


def _unwrap(tp: Any) -> Any:
    while True:
        if typing.get_origin(tp) is typing.Annotated:
            tp = typing.get_args(tp)[0]
            continue
        members = _union_members(tp)
        if members:
            real = [x for x in members if x is not type(None)]
            if len(real) == 1:
                tp = real[0]
                continue
        return tp


def _union_members(tp: Any) -> tuple[Any, ...]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return tuple(_unwrap_one(a) for a in typing.get_args(tp))
    return ()


def _unwrap_one(tp: Any) -> Any:
    return typing.get_args(tp)[0] if typing.get_origin(tp) is typing.Annotated else tp


# --- checks across entries ------------------------------------------------------------------

_PROBE: TypeAdapter[Any] = TypeAdapter(m.Probe)
_LOAD: TypeAdapter[Any] = TypeAdapter(m.Load)
_CHECK: TypeAdapter[Any] = TypeAdapter(m.Check)


def _valid(adapter: TypeAdapter[Any], value: Any) -> Any:
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return None  # said already, where the whole file was checked


def _is_jobs(scenario: dict[str, Any], loc: Loc) -> bool:
    entry = scenario["load"][loc[-1]]
    return isinstance(entry, dict) and "jobs" in entry


def _cross_check(data: dict[str, Any], read: Read) -> list[tuple[Loc, tuple[int, int], str]]:
    """What one entry cannot know alone: names unique, validation naming probes that exist."""
    problems: list[tuple[Loc, tuple[int, int], str]] = []
    scenarios = data.get("scenarios")
    if not isinstance(scenarios, dict):
        return problems
    for name, scenario in scenarios.items():
        if not isinstance(scenario, dict):
            continue
        base: Loc = ("scenarios", name)
        probes: dict[str, Loc] = {}
        loads: dict[str, Loc] = {}
        for section, adapter, attr, names in (
            ("steady_state", _PROBE, "probe_name", probes),
            ("load", _LOAD, "load_name", loads),
        ):
            entries = scenario.get(section)
            for i, entry in enumerate(entries if isinstance(entries, list) else []):
                parsed = _valid(adapter, entry)
                if parsed is None:
                    continue
                probe_name = getattr(parsed, attr)
                loc = (*base, section, i)
                earlier = probes.get(probe_name) or loads.get(probe_name)
                if earlier is not None:
                    problems.append(
                        (
                            loc,
                            read.values[loc],
                            f"two entries are named {probe_name!r} (the other is "
                            f"{_path(earlier)}): give one a `name:`",
                        )
                    )
                names[probe_name] = loc
        # The job queue's load is the built-in's producer, measured by its own numbers: no
        # check reads it by name.
        loads = {n: loc for n, loc in loads.items() if not _is_jobs(scenario, loc)}
        checks = scenario.get("validation")
        for i, entry in enumerate(checks if isinstance(checks, list) else []):
            parsed = _valid(_CHECK, entry)
            if parsed is None:
                continue
            kind = parsed.TAGS[0]
            bound = getattr(parsed, kind)
            for ref in ("probe", "load"):
                wanted = getattr(bound, ref, None)
                if wanted is None:
                    continue
                # Rates and latencies are read off a probe or a load alike; recovery, detection
                # and values are a probe's alone.
                either = ref == "probe" and kind in ("error_rate_max", "latency_p95_max_ms")
                known = {**probes, **loads} if either else probes if ref == "probe" else loads
                if wanted in known:
                    continue
                loc = (*base, "validation", i, kind, ref)
                _, pos = read.at(loc)
                listed = ", ".join(known) or "none"
                problems.append(
                    (
                        loc,
                        pos,
                        f"no {ref} named {wanted!r} in this scenario "
                        f"({'probes and loads' if either else ref + 's'}: "
                        f"{listed})",
                    )
                )
        problems += _check_slo_names(scenario, base, probes, loads, read)
    return problems


def _check_slo_names(
    scenario: dict[str, Any],
    base: Loc,
    probes: dict[str, Loc],
    loads: dict[str, Loc],
    read: Read,
) -> list[tuple[Loc, tuple[int, int], str]]:
    """Each `slo:` key names a probe or a load of the scenario; a throughput is a load's
    (a probe samples at the run's own rate, so its "throughput" says nothing)."""
    problems: list[tuple[Loc, tuple[int, int], str]] = []
    slos = scenario.get("slo")
    for name, objectives in (slos if isinstance(slos, dict) else {}).items():
        loc = (*base, "slo", name)
        if name not in probes and name not in loads:
            listed = ", ".join([*probes, *loads]) or "none"
            message = (
                f"no probe or load named {name!r} in this scenario (probes and loads: {listed})"
            )
            problems.append((loc, read.keys.get(loc, read.at(loc)[1]), message))
        elif name in probes and isinstance(objectives, dict) and "min_throughput_rps" in objectives:
            at = (*loc, "min_throughput_rps")
            message = (
                f"{name} is a probe: a throughput is a load's (a probe samples at the run's "
                "own rate); put min_throughput_rps on a load"
            )
            problems.append((at, read.keys.get(at, read.at(at)[1]), message))
    return problems
