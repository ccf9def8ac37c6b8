"""A scenario's parameters as people read and edit them: each one's meaning, allowed values and
default (from the pydantic model: its descriptions, Literal choices and ge/le bounds), input
checked in plain words that name the key and what it accepts, and what a run changed from the
defaults. The command line (`list`, `--set`), the console's detail and confirmation screens,
the headless summary and the report all word parameters through here."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, TypeVar

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from chaos_tui.core.contracts import HOLD_NAMES

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class ParamInfo:
    """One parameter as `list` and the detail screen show it."""

    name: str
    default: Any
    meaning: str
    allowed: str  # "stop|pause", "0-60 s", "> 0", "" when anything of its type goes
    choices: tuple[str, ...]  # a Literal's values, else empty
    kind: str  # "number", "whole number", "choice", "text", "yes/no"

    @property
    def accepts(self) -> str:
        """The name with what it takes, for an error line: `mode (stop|pause)`."""
        return f"{self.name} ({self.allowed})" if self.choices else self.name


def unit_of(name: str) -> str:
    """The unit a parameter's name carries (`hold_s`: seconds, `work_ms`: ms)."""
    if name.endswith("_s"):
        return "s"
    if name.endswith("_ms"):
        return "ms"
    return ""


def _bounds(field: FieldInfo) -> tuple[tuple[float, bool] | None, tuple[float, bool] | None]:
    """(low, inclusive), (high, inclusive) from the field's ge/gt/le/lt."""
    low = high = None
    for meta in field.metadata:
        if isinstance(meta, Ge):
            low = (float(meta.ge), True)  # type: ignore[arg-type]
        elif isinstance(meta, Gt):
            low = (float(meta.gt), False)  # type: ignore[arg-type]
        elif isinstance(meta, Le):
            high = (float(meta.le), True)  # type: ignore[arg-type]
        elif isinstance(meta, Lt):
            high = (float(meta.lt), False)  # type: ignore[arg-type]
    return low, high


def _choices(field: FieldInfo) -> tuple[str, ...]:
    annotation = field.annotation
    if typing.get_origin(annotation) is typing.Literal:
        return tuple(str(c) for c in typing.get_args(annotation))
    return ()


def _kind(field: FieldInfo) -> str:
    if _choices(field):
        return "choice"
    return {bool: "yes/no", int: "whole number", float: "number", str: "text"}.get(
        field.annotation,  # type: ignore[arg-type]
        "value",
    )


def allowed_text(name: str, field: FieldInfo) -> str:
    """What a parameter accepts, short: `stop|pause`, `0-60 s`, `> 0 s`, `>= 2`."""
    choices = _choices(field)
    if choices:
        return "|".join(choices)
    low, high = _bounds(field)
    unit = unit_of(name)
    tail = f" {unit}" if unit else ""
    if low is not None and high is not None and low[1] and high[1]:
        return f"{low[0]:g}-{high[0]:g}{tail}"
    parts = []
    if low is not None:
        parts.append(f"{'>=' if low[1] else '>'} {low[0]:g}")
    if high is not None:
        parts.append(f"{'<=' if high[1] else '<'} {high[0]:g}")
    return " and ".join(parts) + tail if parts else ""


def param_infos(model: type[BaseModel]) -> list[ParamInfo]:
    """Every parameter of the model, in its order."""
    return [
        ParamInfo(
            name=name,
            default=field.get_default(call_default_factory=True),
            meaning=field.description or "",
            allowed=allowed_text(name, field),
            choices=_choices(field),
            kind=_kind(field),
        )
        for name, field in model.model_fields.items()
    ]


def defaults_of(model: type[BaseModel]) -> dict[str, Any]:
    return {i.name: i.default for i in param_infos(model)}


def value_text(value: Any) -> str:
    """A parameter's value as typed: 3.0 reads 3, 0.25 reads 0.25."""
    return f"{value:g}" if isinstance(value, float) else str(value)


# -- what a run changed ----------------------------------------------------------------------


def changed_parameters(values: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The parameters whose value differs from the model's default (none when the defaults
    are unknown, as in a result saved before they were kept: nothing to compare with)."""
    if not defaults:
        return {}
    return {k: v for k, v in values.items() if k in defaults and v != defaults[k]}


def changed_text(values: dict[str, Any], defaults: dict[str, Any]) -> str:
    """`hold_s=10 (default 3), mode=pause (default stop)`, or `all at their defaults`."""
    changed = changed_parameters(values, defaults)
    if not changed:
        return "all at their defaults"
    return ", ".join(
        f"{k}={value_text(v)} (default {value_text(defaults[k])})" for k, v in changed.items()
    )


# -- input checked in plain words ------------------------------------------------------------


def canonical_name(key: str) -> str:
    """`down_s` and the other old names of `hold_s` are hold_s."""
    return "hold_s" if key in HOLD_NAMES else key


def _number(text: Any) -> str:
    try:
        return f"{float(text):g}"
    except (TypeError, ValueError):
        return repr(text)


def explain_error(model: type[BaseModel], err: Any, scenario: str) -> tuple[str, str]:
    """(parameter, plain words) for one pydantic error of this model. The words name the key
    as it was given (`down_s`, an old name of hold_s); the parameter is its name in the model."""
    loc = err.get("loc") or ()
    key = str(loc[0]) if loc else "?"
    name = canonical_name(key)
    kind = err.get("type", "")
    got = err.get("input")
    infos = {i.name: i for i in param_infos(model)}
    if kind == "extra_forbidden" or name not in infos:
        takes = ", ".join(i.accepts for i in infos.values())
        return key, f"unknown parameter {key} for {scenario}; it takes {takes}"
    info = infos[name]
    field = model.model_fields[name]
    unit = unit_of(name)
    unit_word = {"s": " seconds", "ms": " ms"}.get(unit, "")
    if kind == "literal_error":
        return name, f"{key} must be one of {', '.join(info.choices)}, got {got!r}"
    if kind in ("float_parsing", "float_type", "int_parsing", "int_type", "int_from_float"):
        what = "a whole number" if info.kind == "whole number" else "a number"
        return name, f"{key} must be {what}{unit_word and ' of' + unit_word}, got {got!r}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        low, high = _bounds(field)
        if low is not None and high is not None and low[1] and high[1]:
            span = f"between {low[0]:g} and {high[0]:g}"
            return name, f"{key} must be {span}{unit_word}, got {_number(got)}"
        if low is not None and high is not None:
            lo = ("at least" if low[1] else "more than") + f" {low[0]:g}"
            hi = ("at most" if high[1] else "less than") + f" {high[0]:g}"
            return name, f"{key} must be {lo} and {hi}{unit_word}, got {_number(got)}"
        bound = low or high
        assert bound is not None
        word = (
            ("at least" if bound[1] else "more than")
            if bound is low
            else ("at most" if bound[1] else "less than")
        )
        return name, f"{key} must be {word} {bound[0]:g}{unit_word}, got {_number(got)}"
    if kind == "missing":
        return name, f"{key} needs a value"
    reason = str(err.get("msg", "not accepted")).removeprefix("Value error, ")
    return name, f"{key}: {reason}"


def check_values(
    model: type[ModelT], values: dict[str, Any], scenario: str
) -> tuple[ModelT | None, dict[str, str]]:
    """The parameters these values make, or None with each bad one's plain-words error by
    parameter name (the first error of each)."""
    try:
        return model(**values), {}
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for err in exc.errors():
            name, words = explain_error(model, err, scenario)
            errors.setdefault(name, words)
        return None, errors
