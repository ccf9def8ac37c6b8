"""The target contract the built-in scenarios are written against: where the platform's parts
answer, and which faults a target offers on them, each with typed parameters.

A target of the reference platform (the sandbox, the Docker stack, a future Kubernetes
cluster) is one module implementing `PlatformTarget`; a scenario asks nothing else of it.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chaos_tui.core.contracts import Fault, Target

# The platform's parts a fault may name (each target maps them to its own processes,
# containers or workloads).
ServiceName = Literal["postgres", "nats", "relay", "opa", "gateway", "sink", "collector"]


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


class PlatformTarget(Target):
    """Everything a built-in scenario may ask of a target."""

    @abstractmethod
    def endpoints(self, profile: str | None = None) -> Endpoints:
        """Where the parts answer. For a profile, its addresses are fixed from now on (the
        sandbox picks its ports here), so a plan made now still holds when the run starts."""

    @abstractmethod
    def hard_restart(self, params: ServiceFaultParams) -> Fault:
        """Kill the part without shutdown (SIGKILL, like a power cut); start it at heal."""

    @abstractmethod
    def stop(self, params: ServiceFaultParams) -> Fault:
        """Stop the part gracefully: its port refuses connections; start it at heal."""

    @abstractmethod
    def pause(self, params: ServiceFaultParams) -> Fault:
        """Freeze the part: its port stays open but nothing answers; resume at heal."""

    @abstractmethod
    def cut_link(self, params: LinkCutParams) -> Fault:
        """Cut the leafnode link between sea-b and sea-a; whole again at heal."""
