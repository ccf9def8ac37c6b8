"""Load patterns: how many sends a second, at each moment of a run, and the exact send times.

A pattern is data (pydantic, tagged by `kind`): constant, ramp, step, spike, sine, burst. Each
gives `rate_at(t)` (sends a second at t seconds from the start) and `integral(t)` (the sends
due from 0 to t, in closed form), and the send times follow from the integral alone:

- even: the k-th send is where the integral reaches k + 1/2, so every unit of integrated rate
  gets one send in its middle and a window's count is its integrated rate, rounded;
- poisson: the targets are the running sums of unit exponentials drawn from `random.Random(seed)`
  (time rescaling of a Poisson process), so the gaps are random but the list is not: the same
  pattern and seed give the same times, always, and a run can be repeated exactly.

Pure: pydantic and the standard library only.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Bounds: a rate beyond this is a typo in a chaos run (the file's `rate_per_s` uses it too),
# and so is a time beyond an hour.
MAX_RATE_PER_S = 1000.0
MAX_SECONDS = 3600.0
# The most sends one schedule may hold: a run's records stay in memory (about 200 bytes each).
MAX_ARRIVALS = 200_000
MAX_STEPS = 100

Rate = Annotated[float, Field(ge=0, le=MAX_RATE_PER_S)]
PositiveRate = Annotated[float, Field(gt=0, le=MAX_RATE_PER_S)]
Span = Annotated[float, Field(gt=0, le=MAX_SECONDS)]
Instant = Annotated[float, Field(ge=0, le=MAX_SECONDS)]


class PatternBase(BaseModel):
    """What every pattern has. Strict like the scenario file (no "10" for 10), frozen."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)
    # The scenario file's loader drops a union's tag from an error's key path by these.
    TAGS: ClassVar[tuple[str, ...]] = ()

    def rate_at(self, t: float) -> float:
        """Sends a second at `t` seconds from the start (0 before it)."""
        raise NotImplementedError

    def integral(self, t: float) -> float:
        """The sends due from 0 to `t`: the integral of rate_at."""
        raise NotImplementedError

    def total(self) -> float:
        """The integral over all time: infinite unless the rate ends at 0."""
        return math.inf

    def peak(self) -> float:
        """The highest rate the pattern reaches."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class Constant(PatternBase):
    TAGS = ("constant",)
    kind: Literal["constant"] = "constant"
    rate_per_s: PositiveRate

    def rate_at(self, t: float) -> float:
        return self.rate_per_s if t >= 0 else 0.0

    def integral(self, t: float) -> float:
        return self.rate_per_s * max(t, 0.0)

    def peak(self) -> float:
        return self.rate_per_s

    def describe(self) -> str:
        return f"{self.rate_per_s:g}/s"


class Ramp(PatternBase):
    """From `start_per_s` to `end_per_s` in a straight line over `over_s`, then `end_per_s`."""

    TAGS = ("ramp",)
    kind: Literal["ramp"]
    start_per_s: Rate
    end_per_s: Rate
    over_s: Span

    @model_validator(mode="after")
    def _sends_something(self) -> Ramp:
        if self.start_per_s == 0 and self.end_per_s == 0:
            raise ValueError("a ramp from 0/s to 0/s sends nothing: give end_per_s a rate")
        return self

    def rate_at(self, t: float) -> float:
        if t < 0:
            return 0.0
        if t >= self.over_s:
            return self.end_per_s
        return self.start_per_s + (self.end_per_s - self.start_per_s) * t / self.over_s

    def integral(self, t: float) -> float:
        t = max(t, 0.0)
        a, b, span = self.start_per_s, self.end_per_s, self.over_s
        if t <= span:
            return a * t + (b - a) * t * t / (2 * span)
        return (a + b) * span / 2 + b * (t - span)

    def total(self) -> float:
        return math.inf if self.end_per_s > 0 else self.start_per_s * self.over_s / 2

    def peak(self) -> float:
        return max(self.start_per_s, self.end_per_s)

    def describe(self) -> str:
        return f"ramp {self.start_per_s:g} -> {self.end_per_s:g}/s over {self.over_s:g} s"


class Step(PatternBase):
    """`rates_per_s[0]` for `every_s`, then the next, ...; the last one holds."""

    TAGS = ("step",)
    kind: Literal["step"]
    rates_per_s: Annotated[list[Rate], Field(min_length=1, max_length=MAX_STEPS)]
    every_s: Span

    @model_validator(mode="after")
    def _sends_something(self) -> Step:
        if not any(self.rates_per_s):
            raise ValueError("every step is 0/s: the pattern sends nothing")
        return self

    def _index(self, t: float) -> int:
        return min(int(t // self.every_s), len(self.rates_per_s) - 1)

    def rate_at(self, t: float) -> float:
        return self.rates_per_s[self._index(t)] if t >= 0 else 0.0

    def integral(self, t: float) -> float:
        t = max(t, 0.0)
        n = self._index(t)
        return sum(self.rates_per_s[:n]) * self.every_s + self.rates_per_s[n] * (
            t - n * self.every_s
        )

    def total(self) -> float:
        if self.rates_per_s[-1] > 0:
            return math.inf
        return sum(self.rates_per_s) * self.every_s

    def peak(self) -> float:
        return max(self.rates_per_s)

    def describe(self) -> str:
        rates = ", ".join(f"{r:g}" for r in self.rates_per_s)
        return f"steps {rates}/s every {self.every_s:g} s"


class Spike(PatternBase):
    """`base_per_s`, except `peak_per_s` from `at_s` for `for_s`."""

    TAGS = ("spike",)
    kind: Literal["spike"]
    base_per_s: Rate
    peak_per_s: PositiveRate
    at_s: Instant
    for_s: Span

    @model_validator(mode="after")
    def _peak_above_base(self) -> Spike:
        if self.peak_per_s <= self.base_per_s:
            raise ValueError(
                f"peak_per_s ({self.peak_per_s:g}) must be above base_per_s "
                f"({self.base_per_s:g}): a spike goes up"
            )
        return self

    def rate_at(self, t: float) -> float:
        if t < 0:
            return 0.0
        return self.peak_per_s if self.at_s <= t < self.at_s + self.for_s else self.base_per_s

    def integral(self, t: float) -> float:
        t = max(t, 0.0)
        inside = min(max(t - self.at_s, 0.0), self.for_s)
        return self.base_per_s * t + (self.peak_per_s - self.base_per_s) * inside

    def total(self) -> float:
        return math.inf if self.base_per_s > 0 else self.peak_per_s * self.for_s

    def peak(self) -> float:
        return self.peak_per_s

    def describe(self) -> str:
        return (
            f"{self.base_per_s:g}/s with a spike to {self.peak_per_s:g}/s at {self.at_s:g} s "
            f"for {self.for_s:g} s"
        )


class Sine(PatternBase):
    """`mean_per_s + amplitude_per_s * sin(2 pi t / period_s)`: it rises first."""

    TAGS = ("sine",)
    kind: Literal["sine"]
    mean_per_s: PositiveRate
    amplitude_per_s: Rate
    period_s: Span

    @model_validator(mode="after")
    def _never_negative(self) -> Sine:
        if self.amplitude_per_s > self.mean_per_s:
            raise ValueError(
                f"amplitude_per_s ({self.amplitude_per_s:g}) is above mean_per_s "
                f"({self.mean_per_s:g}): the rate would go below 0"
            )
        if self.mean_per_s + self.amplitude_per_s > MAX_RATE_PER_S:
            raise ValueError(
                f"mean_per_s + amplitude_per_s peaks at "
                f"{self.mean_per_s + self.amplitude_per_s:g}/s, over {MAX_RATE_PER_S:g}/s"
            )
        return self

    def rate_at(self, t: float) -> float:
        if t < 0:
            return 0.0
        return self.mean_per_s + self.amplitude_per_s * math.sin(2 * math.pi * t / self.period_s)

    def integral(self, t: float) -> float:
        t = max(t, 0.0)
        wave = 1 - math.cos(2 * math.pi * t / self.period_s)
        return self.mean_per_s * t + self.amplitude_per_s * self.period_s / (2 * math.pi) * wave

    def peak(self) -> float:
        return self.mean_per_s + self.amplitude_per_s

    def describe(self) -> str:
        return (
            f"sine {self.mean_per_s:g} +/- {self.amplitude_per_s:g}/s, period {self.period_s:g} s"
        )


class Burst(PatternBase):
    """`base_per_s`, and `burst_per_s` for `for_s` out of every `every_s`. The first burst
    starts at `every_s`, so a run opens on its base rate (a baseline to compare with)."""

    TAGS = ("burst",)
    kind: Literal["burst"]
    base_per_s: Rate
    burst_per_s: PositiveRate
    every_s: Span
    for_s: Span

    @model_validator(mode="after")
    def _bursts_fit(self) -> Burst:
        if self.burst_per_s <= self.base_per_s:
            raise ValueError(
                f"burst_per_s ({self.burst_per_s:g}) must be above base_per_s ({self.base_per_s:g})"
            )
        if self.for_s >= self.every_s:
            raise ValueError(
                f"for_s ({self.for_s:g}) must be shorter than every_s ({self.every_s:g}): "
                "a burst that never ends is a constant rate"
            )
        return self

    def _burst_time(self, t: float) -> float:
        """Seconds spent bursting from 0 to t."""
        periods = int(t // self.every_s)
        if periods == 0:
            return 0.0
        return (periods - 1) * self.for_s + min(t - periods * self.every_s, self.for_s)

    def rate_at(self, t: float) -> float:
        if t < self.every_s:
            return self.base_per_s if t >= 0 else 0.0
        bursting = t % self.every_s < self.for_s
        return self.burst_per_s if bursting else self.base_per_s

    def integral(self, t: float) -> float:
        t = max(t, 0.0)
        return self.base_per_s * t + (self.burst_per_s - self.base_per_s) * self._burst_time(t)

    def peak(self) -> float:
        return self.burst_per_s

    def describe(self) -> str:
        return (
            f"{self.base_per_s:g}/s with bursts of {self.burst_per_s:g}/s for {self.for_s:g} s "
            f"every {self.every_s:g} s"
        )


LoadPattern = Annotated[
    Constant | Ramp | Step | Spike | Sine | Burst,
    Field(discriminator="kind"),
]
PATTERN_MODELS: tuple[type[PatternBase], ...] = (Constant, Ramp, Step, Spike, Sine, Burst)
PATTERN_KINDS: tuple[str, ...] = tuple(m.TAGS[0] for m in PATTERN_MODELS)


class TooManyArrivals(ValueError):
    """A schedule over MAX_ARRIVALS: refused before any of it is made."""


def describe_mode(poisson: bool, seed: int) -> str:
    return f"poisson arrivals, seed {seed}" if poisson else "evenly spaced"


def check_bounded(pattern: PatternBase, duration_s: float, cap: int = MAX_ARRIVALS) -> float:
    """The sends `pattern` makes in `duration_s` (expected, for Poisson); TooManyArrivals over
    the cap."""
    if not (duration_s >= 0 and math.isfinite(duration_s)):
        raise ValueError(f"a duration is a finite number of seconds >= 0, not {duration_s!r}")
    expected = pattern.integral(duration_s)
    if expected > cap:
        raise TooManyArrivals(
            f"{pattern.describe()} makes about {expected:,.0f} sends in {duration_s:g} s, "
            f"more than the {cap:,} one run may hold: lower the rate or the duration"
        )
    return expected


def iter_arrivals(pattern: PatternBase, seed: int = 0, poisson: bool = False) -> Iterator[float]:
    """Send times in seconds from the start, ascending, for as long as the pattern sends
    (forever unless its rate ends at 0). The same arguments give the same times."""
    draw = random.Random(seed)
    total = pattern.total()
    target = 0.0 if poisson else -0.5
    t, reached = 0.0, 0.0  # the last send time and the integral there
    while True:
        target += draw.expovariate(1.0) if poisson else 1.0
        if target >= total:
            return
        t = _solve(pattern, target, t, reached)
        reached = pattern.integral(t)
        yield t


def arrivals(
    pattern: PatternBase,
    duration_s: float,
    seed: int = 0,
    poisson: bool = False,
    cap: int = MAX_ARRIVALS,
) -> list[float]:
    """Every send time in [0, duration_s), refused (TooManyArrivals) when the pattern would
    make more than `cap` of them."""
    check_bounded(pattern, duration_s, cap)
    out: list[float] = []
    for t in iter_arrivals(pattern, seed, poisson):
        if t >= duration_s:
            break
        if len(out) == cap:  # a Poisson draw above its expectation, at the very edge
            raise TooManyArrivals(f"more than {cap:,} sends in {duration_s:g} s (seed {seed})")
        out.append(t)
    return out


def _solve(pattern: PatternBase, target: float, lo: float, lo_value: float) -> float:
    """The earliest t >= lo where the integral reaches `target` (> lo_value, its value at lo,
    and below pattern.total()). Bracket by doubling, then Newton steps kept inside the bracket
    (bisection where a step would leave it): a few evaluations a send, exact to ~1e-9 s."""
    rate = pattern.rate_at(lo)
    step = (target - lo_value) / rate if rate > 0 else 1.0
    hi = lo + max(step, 1e-9) * 1.5
    while pattern.integral(hi) < target:
        lo, hi = hi, hi + 2 * (hi - lo)
    t = lo + step if lo < lo + step < hi else (lo + hi) / 2
    for _ in range(100):
        value = pattern.integral(t) - target
        if abs(value) <= 1e-12 * max(1.0, target):
            return t
        if value > 0:
            hi = t
        else:
            lo = t
        if hi - lo <= 1e-9 * max(1.0, hi):
            break
        rate = pattern.rate_at(t)
        newton = t - value / rate if rate > 0 else math.nan
        t = newton if lo < newton < hi else (lo + hi) / 2
    return hi
