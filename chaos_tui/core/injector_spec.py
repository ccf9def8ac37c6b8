"""Worker injectors: what a job worker is told to do to its own messages, and to which.

One model, three readers: a scenario builds it, the fault agent checks it when it grants the
lease (`worker.inject`, a 4xx for a bad scope) and serves it to workers, and the worker
library (`chaos_tui.inject`) acts on it. Pure data: it imports nothing of the tool.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

InjectorKind = Literal["delay", "fail", "crash", "partial"]
INJECTOR_KINDS: tuple[str, ...] = ("delay", "fail", "crash", "partial")

_NAME = r"^[A-Za-z0-9_.:*-]{1,128}$"


class InjectorScope(BaseModel):
    """Which messages an injector may touch; every field given must match. `percent` picks
    that share of messages by their id (the same message is picked on every delivery, and
    the pick is repeatable for one lease)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    queue: str | None = Field(None, pattern=_NAME, description="queue name; None: every queue")
    actor: str | None = Field(
        None, pattern=_NAME, description="actor (Dramatiq) or task (Celery) name; None: all"
    )
    percent: float = Field(100.0, gt=0, le=100, description="share of messages, by message id")
    worker: str | None = Field(
        None, pattern=_NAME, description="one worker's id (CHAOS_WORKER_ID); None: every worker"
    )


class InjectorSpec(BaseModel):
    """One injector. `rate` is a chance per delivery among the messages in scope (a retry
    rolls again), so a failure rate above what the retries absorb fills the dead letters."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    kind: InjectorKind
    scope: InjectorScope = InjectorScope()
    rate: float = Field(1.0, gt=0, le=1, description="chance per delivery in scope")
    # delay: before the actor runs
    delay_ms: float = Field(0.0, ge=0, le=60_000, description="delay: the mean (or fixed) delay")
    jitter_ms: float = Field(0.0, ge=0, le=60_000, description="delay: spread around it")
    distribution: Literal["fixed", "uniform", "normal", "exponential"] = "fixed"
    # crash: where the worker process dies: before the actor runs, half-way through its work
    # (at `checkpoint()`), or after the work and before the ack (the job will run again)
    at: Literal["start", "checkpoint", "after"] = "start"
    # partial: the actor does part of its work, then this
    then: Literal["fail", "hang"] = "fail"
    hang_ms: float = Field(5_000.0, ge=0, le=600_000, description="partial+hang: how long")
    message: str = Field("injected by chaos-tui", max_length=200, description="fail: the error")

    @model_validator(mode="after")
    def _consistent(self) -> InjectorSpec:
        if self.kind == "delay" and self.delay_ms == 0 and self.jitter_ms == 0:
            raise ValueError("a delay injector needs delay_ms or jitter_ms above 0")
        if self.kind != "delay" and (self.delay_ms or self.jitter_ms):
            raise ValueError(f"delay_ms and jitter_ms belong to kind delay, not {self.kind}")
        if self.kind != "crash" and self.at != "start":
            raise ValueError(f"at belongs to kind crash, not {self.kind}")
        if self.distribution == "fixed" and self.jitter_ms:
            raise ValueError("jitter_ms needs a distribution other than fixed")
        return self

    def describe(self) -> str:
        """One line for plans, leases and the console: what it does, to what."""
        s = self.scope
        where = ", ".join(
            f"{k} {v}"
            for k, v in (("queue", s.queue), ("actor", s.actor), ("worker", s.worker))
            if v is not None
        )
        share = f"{s.percent:g}% of messages" if s.percent < 100 else "every message"
        what = {
            "delay": f"delay {self.delay_ms:g} ms"
            + (f" ({self.distribution} ±{self.jitter_ms:g})" if self.jitter_ms else ""),
            "fail": "raise",
            "crash": "kill the worker process"
            + {"start": "", "checkpoint": " mid-job", "after": " after the work, before the ack"}[
                self.at
            ],
            "partial": f"stop half-way and {self.then}",
        }[self.kind]
        rate = f" at {self.rate:.0%}" if self.rate < 1 else ""
        return f"{what}{rate}, {share}" + (f" ({where})" if where else "")
