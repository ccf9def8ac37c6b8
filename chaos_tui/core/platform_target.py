"""The target contract the built-in scenarios are written against: where the platform's parts
answer, and which faults a target offers on them, each with typed parameters.

A target of the reference platform (the sandbox, the Docker stack, a future Kubernetes
cluster) is one module implementing `PlatformTarget`; a scenario asks nothing else of it.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from chaos_tui.core.contracts import Fault, Target
from chaos_tui.core.errors import UsageError
from chaos_tui.core.injector_spec import InjectorSpec

# The platform's parts a fault may name (each target maps them to its own processes,
# containers or workloads). `queue_primary` is a role, not a node: whichever Valkey node the
# sentinels call primary when the fault lands (after a failover that is the other one).
ServiceName = Literal[
    "postgres",
    "nats",
    "relay",
    "opa",
    "gateway",
    "sink",
    "collector",
    "queue_primary",
    "job_worker",
]


class Endpoints(BaseModel):
    """Addresses and credentials of the platform's parts, as one target serves them. A part
    a profile does not run may carry a placeholder address (port 0): nothing listens there."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    postgres_url: str = Field(description="libpq URL of the database holding the outbox")
    nats_url: str = Field(description="the single-domain NATS server (SEA_EVENTS)")
    opa_url: str = Field(description="the policy engine's HTTP API")
    gateway_url: str = Field(description="the policy gateway's HTTP API")
    collector_url: str = Field(description="the OTLP/HTTP collector")
    collector_host: str = "127.0.0.1"
    collector_port: int = Field(description="the collector's OTLP/HTTP port")
    sink_url: str = Field(description="the telemetry backend's HTTP API")
    sink_auth: tuple[str, str] | None = Field(default=None, description="its basic auth")
    nats_a_url: str = Field(description="domain sea-a of the mesh (the origin)")
    nats_b_url: str = Field(description="domain sea-b of the mesh (the mirror)")
    link_monitor_url: str = Field(description="a sea-b monitor with the leafnode while linked")
    domain_a: str = Field(description="the JetStream domain name of sea-a")
    # The job queue (profile chaos-queue): Valkey primary + replica watched by sentinels.
    queue_sentinels: tuple[str, ...] = Field(
        default=(), description="host:port of each Valkey sentinel (the producer asks them)"
    )
    queue_master: str = Field(default="chaos-queue", description="the sentinels' primary name")
    queue_ledger_url: str = Field(
        default="", description="redis:// URL of the ledger where workers record completions"
    )
    # The collector's own evidence, where this target's collector serves it (the contrib
    # collector does; rotel, the sandbox's, serves neither): "" = not served here.
    collector_health_url: str = Field(
        default="", description="the collector's health_check endpoint (contrib: :13133)"
    )
    collector_metrics_url: str = Field(
        default="", description="the collector's own Prometheus metrics (contrib: :8888)"
    )


class FaultParams(BaseModel):
    """What every fault kind takes: how long it is held (its TTL adds a margin)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hold_s: float = Field(ge=0, le=600, description="how long the fault stays applied")


class ServiceFaultParams(FaultParams):
    """A fault on one part of the platform (kill, stop, pause)."""

    service: ServiceName


class LinkCutParams(FaultParams):
    """Cut the leafnode link between the mesh's domains: every path, or the one in use."""

    scope: Literal["full", "one-node"] = "full"


class BrokerLinkParams(FaultParams):
    """A toxic on every path between the job workers and Valkey (Toxiproxy's vocabulary):
    latency (+ jitter) or drops (`reset_peer`, `timeout`), on a share of connections."""

    type: Literal["latency", "reset_peer", "timeout", "bandwidth", "slow_close"] = "latency"
    attributes: dict[str, float] = Field(default_factory=dict)
    toxicity: float = Field(1.0, gt=0, le=1)
    stream: Literal["upstream", "downstream"] = "downstream"


class WorkerInjectorParams(FaultParams):
    """Worker injectors granted as one agent lease: the workers poll the agent and act."""

    injectors: tuple[InjectorSpec, ...] = Field(min_length=1)


class PlatformTarget(Target):
    """Everything a built-in scenario may ask of a target."""

    # Whether `restart` restarts a part in place (a container's `docker restart`).
    restarts_in_place: ClassVar[bool] = False

    @abstractmethod
    def endpoints(self, profile: str | None = None) -> Endpoints:
        """Where the parts answer. For a profile, its addresses are fixed from now on (the
        sandbox picks its ports here), so a plan made now still holds when the run starts."""

    @abstractmethod
    def hard_restart(self, params: ServiceFaultParams) -> Fault:
        """Kill the part without shutdown (SIGKILL, like a power cut); start it at heal."""

    def restart(self, params: ServiceFaultParams) -> Fault:
        """Restart the part in place at once (SIGTERM, SIGKILL after a grace, start), as
        `docker restart` does; the lease is held `hold_s`, its heal makes sure it runs."""
        raise UsageError(f"target {self.name!r} cannot restart a part in place")

    @abstractmethod
    def stop(self, params: ServiceFaultParams) -> Fault:
        """Stop the part gracefully: its port refuses connections; start it at heal."""

    @abstractmethod
    def pause(self, params: ServiceFaultParams) -> Fault:
        """Freeze the part: its port stays open but nothing answers; resume at heal."""

    @abstractmethod
    def cut_link(self, params: LinkCutParams) -> Fault:
        """Cut the leafnode link between sea-b and sea-a; whole again at heal."""

    def broker_link(self, params: BrokerLinkParams) -> Fault:
        """A toxic between the job workers and Valkey; removed at heal."""
        raise NotImplementedError(f"target {self.name!r} has no job queue broker link")

    def worker_injectors(self, params: WorkerInjectorParams) -> Fault:
        """Injectors the job workers act on while the lease lives; off at heal or TTL."""
        raise NotImplementedError(f"target {self.name!r} has no job workers to inject into")
