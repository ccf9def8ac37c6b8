"""The scenario file's shape (issue 14): pydantic models, strict, unknown keys refused.

A probe, a validation check and a cleanup step are each a mapping with one *kind* key
(`http_200_from: URL`, `error_rate_max: {...}`); an action is a mapping tagged by `type`. Both
are tagged unions, so an error names the one kind the user wrote instead of every possible one.
Every tagged model lists its tags in `TAGS`: the loader uses them to drop pydantic's tag
elements from an error's location, so the path it shows is the path in the file.

Plugins add probe kinds and action types (chaos_tui/plugins.py): their models are made here,
at import, and join the same tagged unions, so a plugin's value is checked, and its errors
placed, like a built-in's.

Nothing here resolves anything (no pid, no container, no port is looked at): a later
`to_plan(target)` turns a validated `FileScenario` into a RunPlan, probes from `steady_state`
(`default_name` gives each its name), faults from `actions` (`hold_s` / `ttl_s`), invariants
from `validation`, with the heal of every action first in cleanup.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from chaos_tui import plugins
from chaos_tui.core.injector_spec import InjectorScope, InjectorSpec
from chaos_tui.core.regression import RegressionPolicy
from chaos_tui.load.patterns import MAX_RATE_PER_S, Constant, LoadPattern, PatternBase

MAX_DURATION_S = 3600.0  # an hour: anything longer in a chaos run is a typo, not a plan
MAX_TIMEOUT_MS = 60_000


class Strict(BaseModel):
    """Every model of the file: unknown keys refused, no string-to-number coercion, frozen."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)
    TAGS: ClassVar[tuple[str, ...]] = ()


# --- scalar types ---------------------------------------------------------------------------


def _url(schemes: tuple[str, ...]) -> Any:
    def check(value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.hostname:
            raise ValueError(
                f"{value!r} is not a URL: expected {' or '.join(s + '://' for s in schemes)}HOST..."
            )
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number or out of range
        except ValueError as exc:
            raise ValueError(f"{value!r}: bad port ({exc})") from None
        return value

    return AfterValidator(check)


def _host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port:
        raise ValueError(f"{value!r} is not HOST:PORT (a port is required, e.g. 127.0.0.1:5432)")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{value!r}: port {port!r} is not a port (1-65535)")
    if host.startswith("[") != host.endswith("]"):
        raise ValueError(f"{value!r}: an IPv6 host goes in brackets, e.g. [::1]:5432")
    return value


HttpUrl = Annotated[str, _url(("http", "https"))]
NatsUrl = Annotated[str, _url(("nats", "tls", "ws", "wss"))]
HostPort = Annotated[str, AfterValidator(_host_port)]
Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[float, Field(gt=0, le=MAX_DURATION_S)]
TimeoutMs = Annotated[int, Field(gt=0, le=MAX_TIMEOUT_MS)]
Millis = Annotated[int, Field(ge=0, le=int(MAX_DURATION_S * 1000))]
Fraction = Annotated[float, Field(ge=0, le=1)]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
CONTAINER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
METRIC_PATTERN = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"
VARIABLE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
# What each pattern means, for an error message a person can act on.
PATTERN_WORDS = {
    NAME_PATTERN: "a name: letters, digits, _ . - (up to 64), starting with a letter or digit",
    CONTAINER_PATTERN: "a container name: letters, digits, _ . -, starting with a letter or digit",
    METRIC_PATTERN: "a Prometheus metric name: letters, digits, _ and :",
    VARIABLE_PATTERN: "a variable name: letters, digits and _, not starting with a digit",
    "^/": "an absolute path",
    # core/injector_spec.py's pattern for a worker injector's queue, actor and worker names.
    r"^[A-Za-z0-9_.:*-]{1,128}$": "a name: letters, digits and _ . : * - (up to 128)",
}
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
ContainerName = Annotated[str, Field(pattern=CONTAINER_PATTERN)]
Text = Annotated[str, Field(min_length=1, max_length=2000)]


def _dsn(value: str) -> str:
    if urlsplit(value).scheme in ("postgres", "postgresql") or "=" in value:
        return value
    raise ValueError(
        f"{value!r} is not a DSN: postgresql://USER@HOST:PORT/DB or 'host=... dbname=...'"
    )


Dsn = Annotated[str, AfterValidator(_dsn)]


def _one_key(kinds: tuple[str, ...]) -> Any:
    """A callable discriminator: the one kind key a mapping carries (None: pydantic's error)."""

    def pick(value: Any) -> str | None:
        if isinstance(value, BaseModel):
            return next(iter(type(value).TAGS), None)  # type: ignore[attr-defined]
        if not isinstance(value, dict):
            return None
        found = [k for k in value if k in kinds]
        return found[0] if found else None

    return pick


def _tagged(models: tuple[type[Strict], ...], what: str) -> Any:
    kinds = tuple(tag for m in models for tag in m.TAGS)
    members = tuple(Annotated[m, Tag(m.TAGS[0])] for m in models)
    return Annotated[
        _union(members),
        Discriminator(
            _one_key(kinds),
            custom_error_type="missing_kind",
            custom_error_message=f"{what} needs one of: {', '.join(kinds)}",
            custom_error_context={"kinds": ", ".join(kinds), "what": what},
        ),
    ]


def _union(members: tuple[Any, ...]) -> Any:
    from functools import reduce
    from operator import or_

    return reduce(or_, members) if len(members) > 1 else members[0]


# --- probes (steady_state) ------------------------------------------------------------------


class ProbeBase(Strict):
    name: Name | None = None
    max: float | None = None
    min: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> ProbeBase:
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is above max ({self.max:g})")
        return self

    @property
    def kind(self) -> str:
        return self.TAGS[0]

    @property
    def default_name(self) -> str:
        return self.kind

    @property
    def probe_name(self) -> str:
        return self.name or self.default_name


def _last_segment(url: str) -> str:
    parts = urlsplit(url)
    segment = next((s for s in reversed(parts.path.split("/")) if s), "")
    return re.sub(r"[^A-Za-z0-9_.-]", "_", segment or parts.hostname or "http")


class Http200Probe(ProbeBase):
    TAGS = ("http_200_from",)
    http_200_from: HttpUrl

    @property
    def default_name(self) -> str:
        return _last_segment(self.http_200_from)


class HttpSpec(Strict):
    url: HttpUrl
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    expect_status: Annotated[int, Field(ge=100, le=599)] = 200
    timeout_ms: TimeoutMs = 1000
    body: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)


class HttpProbe(ProbeBase):
    TAGS = ("http",)
    http: HttpSpec

    @property
    def default_name(self) -> str:
        return _last_segment(self.http.url)


class TcpProbe(ProbeBase):
    TAGS = ("tcp_open",)
    tcp_open: HostPort

    @property
    def default_name(self) -> str:
        return "tcp_" + self.tcp_open.rpartition(":")[2]


class PostgresSpec(Strict):
    dsn: Dsn
    query: Text = "select 1"


class PostgresProbe(ProbeBase):
    TAGS = ("postgres",)
    postgres: PostgresSpec


class NatsProbe(ProbeBase):
    TAGS = ("nats",)
    nats: NatsUrl


class JetStreamSpec(Strict):
    url: NatsUrl
    stream: Name


class JetStreamProbe(ProbeBase):
    TAGS = ("jetstream_stream",)
    jetstream_stream: JetStreamSpec

    @property
    def default_name(self) -> str:
        return self.jetstream_stream.stream


class MetricSpec(Strict):
    url: HttpUrl
    name: Annotated[str, Field(pattern=METRIC_PATTERN)]
    labels: dict[str, str] = Field(default_factory=dict)


class MetricProbe(ProbeBase):
    TAGS = ("prometheus_metric",)
    prometheus_metric: MetricSpec

    @property
    def default_name(self) -> str:
        return self.prometheus_metric.name


class QuerySpec(Strict):
    url: HttpUrl
    query: Text


class QueryProbe(ProbeBase):
    TAGS = ("prometheus_query",)
    prometheus_query: QuerySpec


class CommandProbe(ProbeBase):
    TAGS = ("command",)
    command: Text
    timeout_ms: TimeoutMs = 5000


# The seed's names for the platform's own probes: meaningful on the sandbox and Docker targets.
class DbConnectionProbe(ProbeBase):
    TAGS = ("db_connection",)
    db_connection: Literal[True]


class NatsFlowingProbe(ProbeBase):
    TAGS = ("nats_messages_flowing",)
    nats_messages_flowing: Literal[True]


class OpaHealthProbe(ProbeBase):
    TAGS = ("opa_health",)
    opa_health: Literal[True]


class OutboxQueueProbe(ProbeBase):
    TAGS = ("outbox_queue_size_lt",)
    outbox_queue_size_lt: Annotated[int, Field(gt=0)]


class DecisionRateProbe(ProbeBase):
    TAGS = ("policy_decisions_success_rate_gt",)
    policy_decisions_success_rate_gt: Fraction


# The job queue's (profile chaos-queue): its primary answers, its backlog under a ceiling.
class QueuePrimaryUpProbe(ProbeBase):
    TAGS = ("queue_primary_up",)
    queue_primary_up: Literal[True]


class QueueBacklogProbe(ProbeBase):
    TAGS = ("queue_backlog_lt",)
    queue_backlog_lt: Annotated[int, Field(gt=0)]


BUILTIN_PROBE_MODELS: tuple[type[Strict], ...] = (
    Http200Probe,
    HttpProbe,
    TcpProbe,
    PostgresProbe,
    NatsProbe,
    JetStreamProbe,
    MetricProbe,
    QueryProbe,
    CommandProbe,
    DbConnectionProbe,
    NatsFlowingProbe,
    OpaHealthProbe,
    OutboxQueueProbe,
    DecisionRateProbe,
    QueuePrimaryUpProbe,
    QueueBacklogProbe,
)


class PluginProbeBase(ProbeBase):
    """A probe kind a plugin adds (entry point group `chaos_tui.probes`): one subclass per
    kind, made by `_plugin_probe`, whose one field is named after the kind and holds the
    plugin's `Spec`. `- redis_ping: {url: ...}` takes `name`, `max` and `min` like any probe."""

    PLUGIN: ClassVar[Any]  # the chaos_tui.plugins.Plugin it came from

    def plugin_spec(self) -> Any:
        return getattr(self, self.kind)


def _plugin_probe(plugin: Any) -> type[PluginProbeBase]:
    kind = plugin.name
    return type(
        f"PluginProbe_{kind}",
        (PluginProbeBase,),
        {
            "__annotations__": {kind: plugin.obj.Spec},
            "__module__": __name__,
            "TAGS": (kind,),
            "PLUGIN": plugin,
        },
    )


def _plugin_probes() -> tuple[type[Strict], ...]:
    builtin = [tag for model in BUILTIN_PROBE_MODELS for tag in model.TAGS]
    found = plugins.refuse_clashes(plugins.PROBES, builtin, "the built-in probe kind")
    for kind, plugin in found.items():
        # The kind is a field beside name/max/min: it must not shadow one of them, or any
        # attribute a model has (model_dump, copy...).
        if kind in PluginProbeBase.model_fields or hasattr(PluginProbeBase, kind):
            raise plugins.PluginError(
                f"the probe kind {kind!r} of {plugin.describe()} clashes with the key or "
                f"attribute {kind!r} every probe has; uninstall {plugin.dist} or rename it"
            )
    return tuple(_plugin_probe(plugin) for plugin in found.values())


PROBE_MODELS: tuple[type[Strict], ...] = BUILTIN_PROBE_MODELS + _plugin_probes()
if TYPE_CHECKING:  # the type checker sees what every member has in common
    Probe = ProbeBase
else:
    Probe = _tagged(PROBE_MODELS, "steady_state probe")


# --- load -----------------------------------------------------------------------------------


DEFAULT_RATE_PER_S = 10.0


class HttpRequestsSpec(Strict):
    url: HttpUrl
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    body: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    # None: 10 a second, unless a pattern is given.
    rate_per_s: Annotated[float, Field(gt=0, le=MAX_RATE_PER_S)] | None = None
    # A pattern instead of the constant rate (chaos_tui/load/patterns.py), from the run's
    # warmup on; `arrivals: poisson` draws the gaps from `seed`, the same ones every run.
    pattern: LoadPattern | None = None
    arrivals: Literal["even", "poisson"] = "even"
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    timeout_ms: TimeoutMs = 2000

    @field_validator("pattern")
    @classmethod
    def _one_rate(cls, pattern: PatternBase | None, info: Any) -> PatternBase | None:
        if pattern is not None and info.data.get("rate_per_s") is not None:
            raise ValueError(
                "give rate_per_s or pattern, not both "
                "(a constant rate is `pattern: {kind: constant, rate_per_s: N}`)"
            )
        return pattern

    @field_validator("seed")
    @classmethod
    def _seed_draws(cls, seed: int | None, info: Any) -> int | None:
        if seed is not None and info.data.get("arrivals") == "even":
            raise ValueError(
                "evenly spaced arrivals draw nothing: a seed needs `arrivals: poisson`"
            )
        return seed

    @property
    def load_pattern(self) -> PatternBase:
        return self.pattern or Constant(rate_per_s=self.rate_per_s or DEFAULT_RATE_PER_S)

    @property
    def poisson(self) -> bool:
        return self.arrivals == "poisson"

    @property
    def poisson_seed(self) -> int:
        return self.seed or 0


class HttpRequestsLoad(Strict):
    TAGS = ("http_requests",)
    name: Name | None = None
    http_requests: HttpRequestsSpec

    @property
    def load_name(self) -> str:
        return self.name or _last_segment(self.http_requests.url)


JobPattern = Literal["constant", "ramp", "step", "spike", "sine", "burst"]


class JobsSpec(Strict):
    """The job queue's own load (the queue scenarios' producer, every job followed to its
    completion or the dead letters): None keeps the built-in's default."""

    rate_per_s: Annotated[float, Field(gt=0, le=300)] | None = None
    # A shape scaled so that its mean over the run is rate_per_s (the built-ins' `pattern`).
    pattern: JobPattern | None = None
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None  # Poisson arrivals
    work_ms: Annotated[float, Field(ge=0, le=10_000)] | None = None  # each job's own work


class JobsLoad(Strict):
    TAGS = ("jobs",)
    jobs: JobsSpec

    @property
    def load_name(self) -> str:
        return "jobs"


LOAD_MODELS: tuple[type[Strict], ...] = (HttpRequestsLoad, JobsLoad)
if TYPE_CHECKING:
    Load = HttpRequestsLoad | JobsLoad
else:
    Load = _tagged(LOAD_MODELS, "load entry")


# --- actions --------------------------------------------------------------------------------


class ActionBase(Strict):
    # None: the run's default hold (the built-ins' hold_s), settable with --set later.
    duration_seconds: Seconds | None = None
    ttl_seconds: Seconds | None = None

    @field_validator("ttl_seconds")
    @classmethod
    def _ttl_covers_hold(cls, ttl: float | None, info: Any) -> float | None:
        hold = info.data.get("duration_seconds")
        if ttl is not None and hold is not None and ttl < hold:
            raise ValueError(
                f"ttl_seconds ({ttl:g}) is shorter than duration_seconds ({hold:g}): "
                "the agent would heal the fault before the run is done holding it"
            )
        return ttl


class ProcessTarget(Strict):
    listening_on: Port | None = None
    pid_file: Annotated[str, Field(pattern=r"^/")] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ProcessTarget:
        if (self.listening_on is None) == (self.pid_file is None):
            raise ValueError("a process target takes exactly one of listening_on, pid_file")
        return self


class ProcessAction(ActionBase):
    TAGS = ("kill_process", "terminate_process", "pause_process")
    type: Literal["kill_process", "terminate_process", "pause_process"]
    target: ProcessTarget
    restart: Text | None = None  # the heal, run by the agent (also at the TTL or owner death)

    @model_validator(mode="after")
    def _restart_restarts(self) -> ProcessAction:
        if self.type == "pause_process" and self.restart is not None:
            raise ValueError(
                "pause_process resumes the process (SIGCONT) at the heal: it takes no restart"
            )
        return self


class ContainerAction(ActionBase):
    TAGS = ("kill_container", "stop_container", "pause_container", "restart_container")
    type: Literal["kill_container", "stop_container", "pause_container", "restart_container"]
    # A container's name; on the sandbox and Docker targets also a platform part (postgres...).
    target: ContainerName
    graceful: bool = True


class PartitionAction(ActionBase):
    TAGS = ("network_partition",)
    type: Literal["network_partition"]
    target: ContainerName
    ports: list[Port] | None = None  # None: all traffic


class ProxySpec(Strict):
    listen: HostPort
    upstream: HostPort


# On the platform's targets a toxic may sit on the job queue's broker link instead: every
# path between the job workers and Valkey (the agent's proxies in front of each node).
BROKER_LINK = "valkey"
BROKER_TOXICS = ("latency", "reset_peer", "timeout", "bandwidth")  # what the agent puts there


class ProxyActionBase(ActionBase):
    proxy: ProxySpec | None = None  # a proxy the run opens (target local)
    target: Literal["valkey"] | None = None  # the job queue's broker link (sandbox, docker)
    stream: Literal["downstream", "upstream"] = "downstream"
    toxicity: Fraction = 1.0

    @model_validator(mode="after")
    def _one_path(self) -> ProxyActionBase:
        if (self.proxy is None) == (self.target is None):
            raise ValueError(
                "give proxy: {listen, upstream} (a proxy of your own) or "
                f"target: {BROKER_LINK} (the job queue's broker link), one of them"
            )
        if self.target is not None and self.TAGS[0] not in BROKER_TOXICS:
            raise ValueError(
                f"the broker link takes {', '.join(BROKER_TOXICS)}, not {self.TAGS[0]} "
                "(a proxy of your own takes every toxic)"
            )
        return self


class LatencyAction(ProxyActionBase):
    TAGS = ("latency",)
    type: Literal["latency"]
    latency: Millis  # ms added to every chunk
    jitter: Millis = 0


class BandwidthAction(ProxyActionBase):
    TAGS = ("bandwidth",)
    type: Literal["bandwidth"]
    rate: Annotated[int, Field(ge=0)]  # KB/s


class TimeoutAction(ProxyActionBase):
    TAGS = ("timeout",)
    type: Literal["timeout"]
    timeout: Millis = 0  # drop data, close after this many ms (0: never)


class ResetPeerAction(ProxyActionBase):
    TAGS = ("reset_peer",)
    type: Literal["reset_peer"]
    timeout: Millis = 0


class SlicerAction(ProxyActionBase):
    TAGS = ("slicer",)
    type: Literal["slicer"]
    average_size: Annotated[int, Field(gt=0)]
    size_variation: Annotated[int, Field(ge=0)] = 0
    delay: Annotated[int, Field(ge=0)] = 0  # µs between pieces


class LimitDataAction(ProxyActionBase):
    TAGS = ("limit_data",)
    type: Literal["limit_data"]
    bytes: Annotated[int, Field(ge=0)]


class DownAction(ProxyActionBase):
    TAGS = ("down",)
    type: Literal["down"]


class FileInjectorScope(InjectorScope):
    """The worker injectors' scope (core/injector_spec.py) as a file states it: strict."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class FileInjector(InjectorSpec):
    """One worker injector: the agent's own model (its checks, its defaults), strict."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)
    scope: FileInjectorScope = FileInjectorScope()

    def spec(self) -> InjectorSpec:
        return InjectorSpec.model_validate(self.model_dump())


class WorkerInjectorAction(ActionBase):
    """Injectors the job workers act on while the lease lives (delay, fail, crash,
    partial), each with its scope; off at the heal or the TTL, and if the agent is gone."""

    TAGS = ("worker_injector",)
    type: Literal["worker_injector"]
    injectors: Annotated[list[FileInjector], Field(min_length=1, max_length=16)]
    # job_worker: the platform's reference worker (sandbox/docker); own: your own workers,
    # which import chaos_tui.inject and ask this state dir's agent (target local)
    target: Literal["job_worker", "own"] = "job_worker"


BUILTIN_ACTION_MODELS: tuple[type[Strict], ...] = (
    ProcessAction,
    ContainerAction,
    PartitionAction,
    LatencyAction,
    BandwidthAction,
    TimeoutAction,
    ResetPeerAction,
    SlicerAction,
    LimitDataAction,
    DownAction,
    WorkerInjectorAction,
)


class PluginActionBase(ActionBase):
    """An action type a plugin adds (entry point group `chaos_tui.faults`): one subclass per
    type, made by `_plugin_action`. In the file its keys sit beside `type`,
    `duration_seconds` and `ttl_seconds`; here they are validated by the plugin's `Params`
    into `params` (the loader leaves that step out of an error's key path: `FLAT`)."""

    PLUGIN: ClassVar[Any]  # the chaos_tui.plugins.Plugin it came from
    FLAT: ClassVar[str] = "params"
    if TYPE_CHECKING:
        type: str
        params: Any

    @model_validator(mode="before")
    @classmethod
    def _nest(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        common = {k: v for k, v in value.items() if k in plugins.ACTION_KEYS}
        return {**common, "params": {k: v for k, v in value.items() if k not in common}}


def _plugin_action(plugin: Any) -> type[PluginActionBase]:
    kind = plugin.name
    return type(
        f"PluginAction_{kind}",
        (PluginActionBase,),
        {
            "__annotations__": {"type": Literal[kind], "params": plugin.obj.Params},
            "__module__": __name__,
            "TAGS": (kind,),
            "PLUGIN": plugin,
        },
    )


def _plugin_actions() -> tuple[type[Strict], ...]:
    builtin = [tag for model in BUILTIN_ACTION_MODELS for tag in model.TAGS]
    found = plugins.refuse_clashes(plugins.FAULTS, builtin, "the built-in action type")
    return tuple(_plugin_action(plugin) for plugin in found.values())


ACTION_MODELS: tuple[type[Strict], ...] = BUILTIN_ACTION_MODELS + _plugin_actions()
ACTION_TYPES: tuple[str, ...] = tuple(t for m in ACTION_MODELS for t in m.TAGS)
if TYPE_CHECKING:
    Action = (
        ProcessAction
        | ContainerAction
        | PartitionAction
        | LatencyAction
        | BandwidthAction
        | TimeoutAction
        | ResetPeerAction
        | SlicerAction
        | LimitDataAction
        | DownAction
        | WorkerInjectorAction
        | PluginActionBase
    )
else:
    Action = Annotated[_union(ACTION_MODELS), Field(discriminator="type")]


# --- validation -----------------------------------------------------------------------------


def _number_is_max(value: Any) -> Any:
    """`recovery_time_max_seconds: 10` is `{max: 10}` on the scenario's recovery probe."""
    return (
        {"max": value} if isinstance(value, int | float) and not isinstance(value, bool) else value
    )


class TimeBound(Strict):
    probe: Name | None = None  # None: the scenario's first steady_state probe
    max: Seconds


class ProbeOrLoad(Strict):
    probe: Name | None = None
    load: Name | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ProbeOrLoad:
        if (self.probe is None) == (self.load is None):
            raise ValueError("name exactly one of probe, load")
        return self


class ErrorRateBound(ProbeOrLoad):
    max: Fraction


class LatencyBound(ProbeOrLoad):
    phase: Literal["during", "after"] = "during"
    max: Annotated[float, Field(gt=0)]


class ValueBound(Strict):
    probe: Name
    phase: Literal["before", "during", "after"] = "after"


class ValueMax(ValueBound):
    max: float


class ValueMin(ValueBound):
    min: float


class Within(Strict):
    within_seconds: Seconds


class CheckBase(Strict):
    pass


class HttpRecoveryCheck(CheckBase):
    TAGS = ("http_recovery_time_max_seconds",)
    http_recovery_time_max_seconds: Seconds


class RecoveryCheck(CheckBase):
    TAGS = ("recovery_time_max_seconds",)
    recovery_time_max_seconds: Annotated[TimeBound, BeforeValidator(_number_is_max)]


class DetectCheck(CheckBase):
    TAGS = ("detect_time_max_seconds",)
    detect_time_max_seconds: Annotated[TimeBound, BeforeValidator(_number_is_max)]


class ErrorRateCheck(CheckBase):
    TAGS = ("error_rate_max",)
    error_rate_max: ErrorRateBound


class LatencyCheck(CheckBase):
    TAGS = ("latency_p95_max_ms",)
    latency_p95_max_ms: LatencyBound


class SteadyAfterCheck(CheckBase):
    TAGS = ("steady_state_after",)
    steady_state_after: Within


class ValueMaxCheck(CheckBase):
    TAGS = ("value_max",)
    value_max: ValueMax


class ValueMinCheck(CheckBase):
    TAGS = ("value_min",)
    value_min: ValueMin


# The built-in checks, by name: a target that does not provide one refuses it at planning.
class NoEventLossCheck(CheckBase):
    TAGS = ("no_event_loss",)
    no_event_loss: Literal[True]


class NoDataLossCheck(CheckBase):
    TAGS = ("no_data_loss",)
    no_data_loss: Literal[True]


class RedeliveryCheck(CheckBase):
    TAGS = ("nats_message_redelivery",)
    nats_message_redelivery: Literal[True]


class OutboxResumesCheck(CheckBase):
    TAGS = ("outbox_processing_resumes_within_seconds",)
    outbox_processing_resumes_within_seconds: Seconds


class DecisionsCheck(CheckBase):
    TAGS = ("decisions_during_outage",)
    decisions_during_outage: Literal["deny_all"]


# The job queue's, judged by its built-in scenarios (queue_latency_drop, queue_worker_crash,
# queue_broker_failover): every job accounted for, retries within the budget, the dead-letter
# share, and a failover's two times.
class NoJobLossCheck(CheckBase):
    TAGS = ("no_job_loss",)
    no_job_loss: Literal[True]


class RetriesBoundedCheck(CheckBase):
    TAGS = ("retries_bounded",)
    retries_bounded: Literal[True]


class DeadLetterShareCheck(CheckBase):
    TAGS = ("dead_letter_share_max",)
    dead_letter_share_max: Fraction


class BacklogDrainsCheck(CheckBase):
    TAGS = ("backlog_drains_within_seconds",)
    backlog_drains_within_seconds: Seconds


class FailoverCheck(CheckBase):
    TAGS = ("failover_within_seconds",)
    failover_within_seconds: Seconds


class WorkersResumeCheck(CheckBase):
    TAGS = ("workers_resume_within_seconds",)
    workers_resume_within_seconds: Seconds


CHECK_MODELS: tuple[type[Strict], ...] = (
    HttpRecoveryCheck,
    RecoveryCheck,
    DetectCheck,
    ErrorRateCheck,
    LatencyCheck,
    SteadyAfterCheck,
    ValueMaxCheck,
    ValueMinCheck,
    NoEventLossCheck,
    NoDataLossCheck,
    RedeliveryCheck,
    OutboxResumesCheck,
    DecisionsCheck,
    NoJobLossCheck,
    RetriesBoundedCheck,
    DeadLetterShareCheck,
    BacklogDrainsCheck,
    FailoverCheck,
    WorkersResumeCheck,
)
# A check written as a bare name (`- no_event_loss`) means `no_event_loss: true`.
NAMED_CHECKS = (
    "no_event_loss",
    "no_data_loss",
    "nats_message_redelivery",
    "no_job_loss",
    "retries_bounded",
)


def _bare_name(names: tuple[str, ...]) -> Any:
    def expand(value: Any) -> Any:
        return {value: True} if isinstance(value, str) and value in names else value

    return BeforeValidator(expand)


if TYPE_CHECKING:
    Check = CheckBase
else:
    Check = Annotated[_tagged(CHECK_MODELS, "validation check"), _bare_name(NAMED_CHECKS)]


# --- slo ------------------------------------------------------------------------------------

SloPhase = Literal["before", "during", "after"]
# A miss in these phases fails the run; "during" is reported but not counted unless a `phases:`
# list names it, since a fault is expected to hurt while it is live.
DEFAULT_SLO_PHASES: tuple[SloPhase, ...] = ("before", "after")
LatencyLimit = Annotated[float, Field(gt=0, le=MAX_DURATION_S * 1000)]


class Slo(Strict):
    """Objectives for one probe or load (`slo: {NAME: {...}}`), judged in every phase of the
    run; a miss fails the run only in the phases `phases` lists."""

    p50_latency_ms: LatencyLimit | None = None
    p95_latency_ms: LatencyLimit | None = None
    p99_latency_ms: LatencyLimit | None = None
    max_error_rate: Fraction | None = None
    min_throughput_rps: Annotated[float, Field(gt=0, le=MAX_RATE_PER_S)] | None = None
    phases: Annotated[list[SloPhase], Field(min_length=1, max_length=3)] = Field(
        default_factory=lambda: list(DEFAULT_SLO_PHASES)
    )

    OBJECTIVES: ClassVar[tuple[str, ...]] = (
        "p50_latency_ms",
        "p95_latency_ms",
        "p99_latency_ms",
        "max_error_rate",
        "min_throughput_rps",
    )

    @field_validator("phases")
    @classmethod
    def _phases_once(cls, phases: list[str]) -> list[str]:
        twice = [p for i, p in enumerate(phases) if p in phases[:i]]
        if twice:
            raise ValueError(f"phase {twice[0]!r} is listed twice")
        return phases

    @model_validator(mode="after")
    def _some_objective(self) -> Slo:
        if not self.objectives:
            raise ValueError(f"an slo needs at least one of: {', '.join(self.OBJECTIVES)}")
        return self

    @property
    def objectives(self) -> dict[str, float]:
        """The objectives given, by name, in the order above."""
        given = {name: getattr(self, name) for name in self.OBJECTIVES}
        return {name: limit for name, limit in given.items() if limit is not None}


# --- cleanup --------------------------------------------------------------------------------


class VerifyStep(Strict):
    TAGS = ("verify_steady_state",)
    verify_steady_state: Literal[True] | Within


class CommandStep(Strict):
    TAGS = ("command",)
    command: Text
    timeout_ms: TimeoutMs = 30_000


class RestoreNetworkStep(Strict):
    TAGS = ("restore_network",)
    restore_network: Literal[True]


class DbHealthyStep(Strict):
    TAGS = ("verify_db_healthy",)
    verify_db_healthy: Literal[True]


class OutboxDrainedStep(Strict):
    TAGS = ("verify_outbox_drained",)
    verify_outbox_drained: Literal[True]


class PoliciesLoadedStep(Strict):
    TAGS = ("verify_opa_policies_loaded",)
    verify_opa_policies_loaded: Literal[True]


class QueueDrainedStep(Strict):
    TAGS = ("verify_queue_drained",)
    verify_queue_drained: Literal[True]


CLEANUP_MODELS: tuple[type[Strict], ...] = (
    VerifyStep,
    CommandStep,
    RestoreNetworkStep,
    DbHealthyStep,
    OutboxDrainedStep,
    PoliciesLoadedStep,
    QueueDrainedStep,
)
NAMED_STEPS = (
    "verify_steady_state",
    "restore_network",
    "verify_db_healthy",
    "verify_outbox_drained",
    "verify_opa_policies_loaded",
    "verify_queue_drained",
)
if TYPE_CHECKING:
    Cleanup = Strict
else:
    Cleanup = Annotated[_tagged(CLEANUP_MODELS, "cleanup step"), _bare_name(NAMED_STEPS)]


# --- regression thresholds -----------------------------------------------------------------


class RegressionBlock(Strict):
    """A scenario's `regression:` block: the global rule (settings' CHAOS_REGRESSION__*) with
    these fields replaced. See core/regression.py for what each one means."""

    runs: int | None = Field(None, ge=3, le=1000)
    min_runs: int | None = Field(None, ge=3, le=1000)
    time_pct: float | None = Field(None, gt=0, le=1000)
    throughput_pct: float | None = Field(None, gt=0, le=100)
    count_pct: float | None = Field(None, gt=0, le=1000)
    error_rate_points: float | None = Field(None, gt=0, le=100)
    noise: float | None = Field(None, ge=0, le=100)
    floor_s: float | None = Field(None, ge=0, le=MAX_DURATION_S)
    floor_ms: float | None = Field(None, ge=0)
    floor_count: float | None = Field(None, ge=0)
    floor_per_s: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _enough_runs(self) -> RegressionBlock:
        if self.runs is not None and self.min_runs is not None and self.min_runs > self.runs:
            raise ValueError(f"min_runs ({self.min_runs}) is more than runs ({self.runs})")
        return self

    def over(self, base: RegressionPolicy) -> RegressionPolicy:
        """The global rule with this block's fields in place of its own."""
        merged = base.model_dump() | self.model_dump(exclude_none=True)
        merged["min_runs"] = min(merged["min_runs"], merged["runs"])
        return RegressionPolicy(**merged)


# --- the file -------------------------------------------------------------------------------


class FileScenario(Strict):
    hypothesis: Text
    description: Text | None = None
    steady_state: Annotated[list[Probe], Field(min_length=1)]
    load: list[Load] = Field(default_factory=list)
    actions: Annotated[list[Action], Field(min_length=1)]
    validation: list[Check] = Field(default_factory=list)
    cleanup: list[Cleanup] = Field(default_factory=list)
    # Objectives per probe or load (by its name), judged per phase: see `Slo`.
    slo: dict[Name, Slo] = Field(default_factory=dict)
    # The run's own phases; None: the built-ins' defaults (and --set warmup_s=... later).
    warmup_seconds: Seconds | None = None
    recover_seconds: Seconds | None = None
    # true: every action is held at once (injected in order, healed in reverse order);
    # false: one after another.
    together: bool = False
    # How much worse than its baseline a run may be (None: the global default).
    regression: RegressionBlock | None = None

    @property
    def probe_names(self) -> list[str]:
        return [p.probe_name for p in self.steady_state]

    @property
    def load_names(self) -> list[str]:
        return [entry.load_name for entry in self.load]

    @property
    def hold_s(self) -> float | None:
        """Seconds the faults are held in all, None when one takes the run's default hold."""
        holds = [a.duration_seconds for a in self.actions]
        return None if None in holds else self.held(0.0)

    def held(self, default_s: float) -> float:
        """Seconds the faults are held in all (an action with no duration_seconds holds
        `default_s`): their sum, or the longest when they are held together."""
        holds = [a.duration_seconds or default_s for a in self.actions]
        return max(holds) if self.together else sum(holds)


class Safety(Strict):
    environment_check: bool = True
    require_explicit_enable: bool = True

    @field_validator("environment_check")
    @classmethod
    def _lockout_on(cls, value: bool) -> bool:
        if not value:
            raise ValueError(
                "the production lockout is always on: environment_check cannot be false"
            )
        return value

    @field_validator("require_explicit_enable")
    @classmethod
    def _enable_on(cls, value: bool) -> bool:
        if not value:
            raise ValueError(
                "anything but the sandbox always needs --enable-chaos or CHAOS_ENABLED=true: "
                "require_explicit_enable cannot be false"
            )
        return value


class Isolation(Strict):
    """The seed's `isolation:` block: where the platform's containers live (Docker target)."""

    docker_network: ContainerName | None = None
    docker_profile: Name | None = None


def _scalar(value: Any) -> Any:
    if isinstance(value, str | int | float | bool):
        return value
    raise ValueError("a variable's default is a string, a number or true/false")


VariableName = Annotated[str, Field(pattern=VARIABLE_PATTERN)]


class ScenarioFile(Strict):
    version: Literal[1] = 1
    safety: Safety = Field(default_factory=Safety)
    isolation: Isolation | None = None
    # name -> default; `${name}` in any string value of the scenarios, `--set name=...` later.
    variables: dict[VariableName, Annotated[Any, AfterValidator(_scalar)]] = Field(
        default_factory=dict
    )
    scenarios: Annotated[dict[Name, FileScenario], Field(min_length=1)]
