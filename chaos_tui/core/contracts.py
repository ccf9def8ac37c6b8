"""What the runner needs from probes, faults, targets and scenarios, and nothing more."""

from __future__ import annotations

import asyncio
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from chaos_tui.core.model import (
    DeliveryCounts,
    InvariantResult,
    InvariantSpec,
    ProbeSample,
    SloResult,
)
from chaos_tui.core.timeline import Timeline

if TYPE_CHECKING:  # the plan module imports this one
    from chaos_tui.core.plan import RunPlan


class Probe(ABC):
    """Measures one thing. `measure` returns a value (or None) and raises when the thing fails."""

    timeout_s: float = 1.0
    unit: str = ""  # what a value counts ("jobs", "jobs/s", "ms"); the console labels it so

    def __init__(self, name: str, description: str) -> None:
        self.name = name
        self.description = description

    async def open(self) -> None:
        """Prepare clients; failures here must not raise (the first sample reports them)."""

    async def close(self) -> None:
        """Release clients."""

    @abstractmethod
    async def measure(self) -> float | None: ...

    async def sample(self) -> ProbeSample:
        started = time.time()
        clock = time.perf_counter()
        try:
            # A timeout scope, not wait_for: no extra task per sample (at 100 probes and
            # 10 Hz, a thousand tasks a second).
            async with asyncio.timeout(self.timeout_s):
                value = await self.measure()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failing probe is data, not an error
            error = str(exc) or type(exc).__name__
            if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
                error = f"timed out after {self.timeout_s:g}s"
            error = " ".join(error.split())  # one line, however chatty the client library
            return ProbeSample(self.name, started, False, None, None, error[:300])
        latency_ms = (time.perf_counter() - clock) * 1000.0
        return ProbeSample(self.name, started, True, round(latency_ms, 3), value)


@dataclass(frozen=True)
class HealedElsewhere:
    """The fault was undone by someone other than this run (the agent at its TTL, a halt, a
    new agent after a crash) before the run's own heal got there."""

    started_at: float
    healed_at: float
    by: str


@dataclass
class FaultLease:
    """A live fault. Written down before the fault is applied so it can always be undone."""

    fault: str
    target: str
    ttl_s: float
    data: dict[str, Any] = field(default_factory=dict)
    lease_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    injected_at: float = field(default_factory=time.time)
    run_id: str = ""  # the run that took it (the runner fills it in), for the agent's records
    healed_elsewhere: HealedElsewhere | None = None  # set by a fault whose heal found it done

    @property
    def expires_at(self) -> float:
        return self.injected_at + self.ttl_s


class Fault(ABC):
    """One injectable failure.

    The runner takes a lease first (`lease()`), records it, and only then calls
    `inject(lease)`: so a fault that hangs or dies half-applied is still known and healed.
    `heal(lease)` undoes it and must be safe to call twice or on a fault that never landed.
    """

    ttl_s: float = 120.0  # the lease lifetime: nothing stays broken longer than this
    hold_s: float = 3.0  # how long the fault stays applied before the runner heals it

    def __init__(self, name: str, description: str) -> None:
        self.name = name
        self.description = description
        # The exact things it breaks (pids with their command lines, a container, a proxy),
        # where the target alone cannot say: the plan adds them to the blast radius.
        self.touches: tuple[str, ...] = ()
        # What it does, a line each, where it does several things (e.g. one per worker
        # injector): the console lists them under the fault while it is live.
        self.parts: tuple[str, ...] = ()

    def lease(self, target: str) -> FaultLease:
        return FaultLease(fault=self.name, target=target, ttl_s=self.ttl_s)

    @abstractmethod
    async def inject(self, lease: FaultLease) -> None: ...

    @abstractmethod
    async def heal(self, lease: FaultLease) -> None: ...

    async def verify_healed(self, lease: FaultLease) -> bool:
        return True


class Target(ABC):
    """Where faults land: the embedded sandbox or a real stack. This is what the runner needs;
    what a scenario may ask of the platform's stack is `core.platform_target.PlatformTarget`."""

    name: ClassVar[str]
    is_sandbox: ClassVar[bool] = False
    # Set where runs are refused (a locked console): planning then changes nothing on the
    # target, not even the ports the sandbox would otherwise pick for the plan.
    read_only: bool = False

    @abstractmethod
    async def ensure_up(self, profile: str | None = None) -> None:
        """Bring up what a scenario of this profile needs (everything when None)."""

    def blast_radius(self, profile: str | None = None) -> list[str]:
        """What a scenario of this profile may touch: exact processes, containers, links."""
        return []

    def versions(self, profile: str | None = None) -> dict[str, str]:
        """Versions of the parts a scenario of this profile uses (every part when None), as
        the target runs them."""
        return {}

    def probes(self) -> list[Probe]:
        """Probes of the target's own machinery (e.g. the fault agent), watched in every run."""
        return []

    def endpoints(self, profile: str | None = None) -> BaseModel | None:
        """Where this profile's parts answer (addresses, credentials), fixed when a run is
        planned; the runner checks after `ensure_up` that they still hold. None: the target
        has no addresses a scenario reads."""
        return None

    def stop_what_we_started(self, keep_sandbox: bool) -> list[str]:
        """Stop helpers and services this target started for its runs; what was stopped."""
        return []

    async def wait_gone(self) -> str:
        """Returns, with the reason, once the target is taken away under a run (the sandbox's
        `sandbox down`): the runner then ends the run as an error rather than wait out every
        timeout against it. By default a target never goes away."""
        await asyncio.Event().wait()
        return ""


class RunContext:
    """What a scenario sees while it runs: the target, the plan it runs and the live samples."""

    def __init__(
        self,
        run_id: str,
        target: Target,
        timeline: Timeline,
        note: Callable[..., None],
        plan: RunPlan,
    ) -> None:
        self.run_id = run_id
        self.target = target
        self.timeline = timeline
        self.note = note  # note(text, level="info")
        self.plan = plan


# A scenario's named parameter sets (`--preset NAME`): preset name -> parameter -> value.
Presets = dict[str, dict[str, float | int | str | bool]]

# `hold_s` and the names each scenario gave it before it had one, still accepted as input.
HOLD_NAMES = ("hold_s", "down_s", "stall_s", "cut_s", "duration_s")


def hold_s_field(default: float, le: float, description: str, ge: float = 0) -> Any:
    """`hold_s`, also accepted under the names each scenario used before it had one
    (`--set down_s=10` keeps working; listings and results say hold_s)."""
    return Field(
        default=default,
        ge=ge,
        le=le,
        description=description,
        validation_alias=AliasChoices(*HOLD_NAMES),
    )


class ScenarioParams(BaseModel):
    """What every scenario's parameters share: load before the fault, how long the fault is
    held, load after the heal. A scenario's Params subclass it (and may narrow the bounds
    with `hold_s_field`)."""

    model_config = ConfigDict(extra="forbid")

    warmup_s: float = Field(default=3.0, ge=0, le=600, description="load before the fault")
    hold_s: float = hold_s_field(3.0, 60, "how long the fault is held")
    recover_s: float = Field(default=5.0, ge=0, le=600, description="load after the heal")


TargetT = TypeVar("TargetT", bound=Target)


class Scenario(ABC, Generic[TargetT]):
    """A hypothesis and how to test it. The hooks (`probes`, `faults`, `steady_state`,
    `invariants`, `workload`) are pure: a planner (`core.plan.plan_run`) asks them once per run
    and the runner executes that plan. State belongs to the workload (`start_workload`)."""

    name: ClassVar[str]
    hypothesis: ClassVar[str]
    invariant_budget_s: ClassVar[float] = 120.0  # the spec allows 60-180 s
    runbook: ClassVar[str | None] = None  # what to do when an invariant breaks (repo path)
    profile: ClassVar[str] = "chaos-outbox"  # the part of the stack it needs (compose profile)
    Params: ClassVar[type[ScenarioParams]] = ScenarioParams
    # Values that shape a run beyond its Params (a scenario file's `variables:`, as --set
    # gave them) and their declared defaults: recorded beside the parameters, so a result
    # says what a run changed and a baseline is of runs alike. Params win a name clash.
    extra_parameters: ClassVar[dict[str, float | int | str | bool]] = {}
    extra_parameter_defaults: ClassVar[dict[str, float | int | str | bool]] = {}
    order: ClassVar[int] = 100  # listing order (then the name); the main job comes first
    # Named sets of parameters (`--preset NAME`, a suite's `preset:`), under what --set and a
    # suite's `set:` give: `plan` is the platform plan's hold times, where the defaults are
    # shorter so that tests stay quick.
    presets: ClassVar[Presets] = {}
    # Several faults: one after another (each held, then healed), or all at once (injected in
    # order, held together for the longest hold, healed in reverse order).
    faults_together: ClassVar[bool] = False

    # Probes whose recovery timings go into the result, and the backlog one if any.
    recovery_probe: ClassVar[str | None] = None
    backlog_probe: ClassVar[str | None] = None

    def __init__(self, params: ScenarioParams | None = None) -> None:
        self.params = params if params is not None else self.Params()
        self.delivery: DeliveryCounts | None = None
        # The scenario's own numbers for the result (e.g. decisions by phase, catch-up time).
        self.measurements: dict[str, Any] = {}
        # Service-level objectives judged per phase (a scenario file's `slo:`), for the result.
        self.slos: list[SloResult] = []

    @abstractmethod
    def probes(self, target: TargetT) -> list[Probe]: ...

    def steady_state(self) -> dict[str, float | None]:
        """Probes that must pass before anything is injected, each with an optional ceiling
        on its value (e.g. a backlog under 1000)."""
        return {self.recovery_probe: None} if self.recovery_probe else {}

    @abstractmethod
    def faults(self, target: TargetT) -> list[Fault]: ...

    def target_defaults(self, target: TargetT) -> dict[str, Any]:
        """Parameters whose default depends on the target: name -> its value on this one
        (opa_restart's `mode`: restart on Docker, kill on the sandbox). A parameter left at
        its declared default (`auto`) is planned and recorded as this value, and this value
        is the default the plan compares with."""
        return {}

    def workload(self) -> str | None:
        """The load a run puts on the stack, in words (None: no load)."""
        return None

    async def start_workload(self, ctx: RunContext) -> None:
        """Start load that runs before, during and after the fault."""

    async def stop_workload(self, ctx: RunContext) -> None:
        """Stop the load; must be safe to call when it never started."""

    @property
    def warmup_s(self) -> float:
        return self.params.warmup_s

    @property
    def recover_s(self) -> float:
        return self.params.recover_s

    def invariants(self) -> list[InvariantSpec]:
        """What must hold, with the limits from the current parameters (the detail view shows
        them before anything runs; `check_invariants` judges each one)."""
        return []

    def invariants_on(self, target: TargetT) -> list[InvariantSpec]:
        """The invariants a run on this target judges: `invariants()`, plus any that only
        some targets give the evidence for (openobserve_stall's collector metrics). What a
        plan shows and a run judges; pure, like `invariants()`."""
        return self.invariants()

    def expected_duration_s(self) -> float:
        """Load before, the fault held, load after, from the parameters alone (the catalog
        lists it without building faults); a plan adds up the holds of the faults it holds
        one after another (or takes the longest, for faults held together)."""
        return self.params.warmup_s + self.params.hold_s + self.params.recover_s

    @abstractmethod
    async def check_invariants(self, ctx: RunContext) -> list[InvariantResult]: ...

    async def judge_live(self, ctx: RunContext) -> list[InvariantResult]:
        """The invariants that can be judged honestly while the fault is live, as they stand
        so far; the runner asks about once a second from the first injection until verify.

        A result that failed must stay failed whatever happens next, or say in its detail
        that it is so far (an error rate over its limit); one that passed means "holding so
        far", never a pass. Leave out what cannot be known yet (a message not read back
        is late, not lost). Set `broke_at` where the moment it broke is known better than
        "now". Numbers put in `self.measurements` here are shown as they stand, so write only
        the keys `check_invariants` writes too. Must be cheap: it runs beside the fault."""
        return []

    def judge(self, name: str, measured: float | None, detail: str = "") -> InvariantResult:
        """Judge one of `invariants()` by name against a measured value."""
        spec = next((i for i in self.invariants() if i.name == name), None)
        if spec is None:
            raise KeyError(f"{self.name} declares no invariant {name!r}")
        return spec.judge(measured, detail)
