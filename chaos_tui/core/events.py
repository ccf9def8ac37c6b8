"""Typed events the runner emits, in order, to one callback. Faces render them; none reach back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chaos_tui.core.model import (
    InjectionWindow,
    InvariantResult,
    Measurement,
    ProbeSample,
    RunResult,
)
from chaos_tui.core.plan import RunPlan


@dataclass(frozen=True, slots=True)
class RunPlanned:
    """First of every run: what it will probe, break and check (faces may ignore it)."""

    plan: RunPlan


@dataclass(frozen=True, slots=True)
class PhaseChanged:
    phase: str  # prepare, steady_state, warmup, inject, recover, verify, heal, done
    t: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SampleTaken:
    sample: ProbeSample


@dataclass(frozen=True, slots=True)
class FaultInjected:
    window: InjectionWindow


@dataclass(frozen=True, slots=True)
class FaultHealed:
    window: InjectionWindow
    ok: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class InvariantChecked:
    result: InvariantResult


@dataclass(frozen=True, slots=True)
class LiveJudgement:
    """Invariants judged while the fault is live, as they stand so far, with the scenario's
    own numbers so far. Provisional: holding so far is no pass, and the verdict at verify
    decides. A broken result carries `broke_at` (when it was first seen broken). Emitted from
    the first injection until verify, and only when a result or a number changed."""

    t: float
    results: tuple[InvariantResult, ...]
    measurements: dict[str, Measurement]


@dataclass(frozen=True, slots=True)
class Note:
    text: str
    t: float
    level: str = "info"  # info | warning | error | operator (typed by the operator: Run.add_note)


@dataclass(frozen=True, slots=True)
class RunFinished:
    result: RunResult


RunEvent = (
    RunPlanned
    | PhaseChanged
    | SampleTaken
    | FaultInjected
    | FaultHealed
    | InvariantChecked
    | LiveJudgement
    | Note
    | RunFinished
)
EmitFn = Callable[[RunEvent], None]
