"""The suite file: which scenarios run, in what order, with which parameters, how often, how
long apart, and whether a failure stops the rest.

    name: gameday
    description: the platform's four promises at the plan's hold times
    preset: plan            # each scenario's named preset, where it has one
    on_failure: continue    # or stop (a failed heal or a signal always stops)
    pause: 30s              # between runs; or {between: [2m, 5m], seed: 7}; or every: 10m
    repeat: 3               # the list, three times; or for: 1h (no run starts after that)
    file: scenarios.yaml    # a scenario file whose scenarios the list may name
    runs:
      - opa_restart
      - scenario: nats_partition_mesh
        set: {hold_s: 15, scope: full}
"""

from __future__ import annotations

import random
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

MAX_SUITE_S = 7 * 24 * 3600.0  # a week: longer is a typo, not a soak
MAX_REPEAT = 10_000
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_duration(value: Any) -> Any:
    """Seconds from a number or from text like `90s`, `10m`, `1h30m`, `500ms`; anything else is
    left for the model to refuse with its own words."""
    if isinstance(value, bool):  # YAML's `true` is no number of seconds
        raise ValueError(f"expected a duration (seconds, or e.g. 90s, 10m), found {value}")
    if not isinstance(value, str):
        return value
    text = value.strip().replace(" ", "")
    if text and all(c.isdigit() or c == "." for c in text):
        return float(text)
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{value!r} is not a duration: seconds, or e.g. 90s, 10m, 1h30m")
    return sum(float(n) * _UNITS[u] for n, u in parts)


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0, le=MAX_SUITE_S)]
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
ParamValue = str | int | float | bool


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PauseRange(Strict):
    """A pause drawn at random between two bounds (from `seed`, so a suite can be replayed):
    faults that recur, but not like clockwork."""

    between: tuple[Duration, Duration]
    seed: int | None = None

    @model_validator(mode="after")
    def _ordered(self) -> PauseRange:
        low, high = self.between
        if low > high:
            raise ValueError(
                f"between: the first bound ({low:g} s) is above the second ({high:g} s)"
            )
        return self


def _as_range(value: Any) -> Any:
    """A fixed pause (`30s`) is a range of one point: one type, so an error has one place."""
    if isinstance(value, dict | PauseRange):
        return value
    seconds = parse_duration(value)  # a bad one is said once, at `pause`
    return {"between": (seconds, seconds)}


Pause = Annotated[PauseRange, BeforeValidator(_as_range)]
NO_PAUSE = PauseRange(between=(0.0, 0.0))


class Step(Strict):
    """One run of the list: a scenario, its parameters over the preset's, and a pause after it
    other than the suite's."""

    scenario: Annotated[str, Field(pattern=NAME)]
    set: dict[str, ParamValue] = Field(default_factory=dict)
    preset: Annotated[str, Field(pattern=NAME)] | None = None
    pause: Pause | None = None


def _bare_names(value: Any) -> Any:
    """`- opa_restart` is short for `- scenario: opa_restart`."""
    if isinstance(value, list):
        return [{"scenario": item} if isinstance(item, str) else item for item in value]
    return value


class SuiteFile(Strict):
    name: Annotated[str, Field(pattern=NAME)]
    description: str = ""
    version: Literal[1] = 1
    preset: Annotated[str, Field(pattern=NAME)] | None = None
    on_failure: Literal["continue", "stop"] = "continue"
    pause: Pause = NO_PAUSE
    every: Annotated[Duration, Field(gt=0)] | None = None
    repeat: Annotated[int, Field(ge=1, le=MAX_REPEAT)] | None = None
    for_s: Annotated[Duration, Field(gt=0)] | None = Field(default=None, alias="for")
    file: str | None = None
    runs: Annotated[list[Step], BeforeValidator(_bare_names), Field(min_length=1, max_length=1000)]

    @model_validator(mode="after")
    def _one_schedule(self) -> SuiteFile:
        if self.every is not None and self.pause != NO_PAUSE:
            raise ValueError("give `pause` (between runs) or `every` (start to start), not both")
        if self.every is not None and any(step.pause is not None for step in self.runs):
            raise ValueError("a step's `pause` goes with the suite's `pause`, not with `every`")
        return self

    @property
    def passes(self) -> int | None:
        """How many times the list runs: `repeat`, else once unless `for` bounds it by time."""
        if self.repeat is not None:
            return self.repeat
        return None if self.for_s is not None else 1


def pause_s(pause: Pause, rng: random.Random) -> float:
    """Seconds to wait for one pause (a range draws from the suite's generator)."""
    low, high = pause.between
    return low if low == high else rng.uniform(low, high)


def pause_rng(suite: SuiteFile) -> random.Random:
    """The generator of a suite's random pauses: the first seed given, else the clock."""
    pauses = [suite.pause] + [step.pause for step in suite.runs if step.pause is not None]
    seeds = [p.seed for p in pauses if p.seed is not None]
    return random.Random(seeds[0] if seeds else None)
