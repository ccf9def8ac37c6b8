"""Configuration: every default from the spec, overridable by CHAOS_* environment variables.

Nested groups use a double underscore, e.g. CHAOS_SANDBOX__PG_USER=someone.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_state_dir() -> Path:
    """Where the sandbox keeps its data, logs and process table.

    As root we stay out of /root: the unprivileged user that runs PostgreSQL must be able
    to reach its data directory and binaries.
    """
    if os.geteuid() == 0 and "XDG_STATE_HOME" not in os.environ:
        return Path("/var/lib/chaos-tui")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "chaos-tui"


class SandboxSettings(BaseModel):
    pg_user: str = "chaostui"  # the unprivileged OS user PostgreSQL runs as when we are root
    start_timeout_s: float = 60.0
    # Test-only: the relay marks every Nth row published without publishing it, to prove
    # that the delivery invariant can fail. 0 (the default) means a correct relay.
    relay_test_drop_every: int = 0
    # Test-only breakages, each proving that a scenario's invariant can fail:
    gateway_test_fail_open: bool = False  # the policy gateway allows when OPA is unreachable
    collector_retries: bool = True  # False: the collector drops a batch the sink refuses
    mesh_origin_max_msgs: int = Field(0, ge=0)  # >0: SEA_EVENTS too small to ride out a cut


class AgentSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)  # 0: any free port, written to agent/agent.json
    max_ttl_s: float = Field(3600.0, gt=0)  # no lease may ask for longer
    start_timeout_s: float = 180.0  # includes healing a dead agent's leftovers


class DockerSettings(BaseModel):
    """Where the Docker Compose stack is: compose project names (as `docker-compose -p`)."""

    project: str = "chaos"  # docker-compose.chaos.yml
    mesh_project: str = "chaos-mesh"  # docker-compose.mesh.yml
    # The network-cut sidecar's image: anything with iptables and sh. Never pulled: build it
    # with `just chaos-build` (or use the test bed's).
    sidecar_image: str = "chaos-tui:local"


class PlatformSettings(BaseModel):
    """Addresses of the real platform (the Docker Compose stack); the sandbox picks its own."""

    nats_url: str = "nats://localhost:4222"  # chaos-outbox's own NATS
    nats_a_url: str = "nats://localhost:4422"
    nats_b_url: str = "nats://localhost:5422"
    nats_monitor_port: int = 8222  # sea-nats-a-1
    nats_b_monitor_port: int = 8223  # sea-nats-b-1
    nats_leafnode_port: int = 7522
    domain_a: str = "sea-a"
    domain_b: str = "sea-b"
    postgres_port: int = 5432
    postgres_password: str = "chaos"  # docker-compose.chaos.yml reads the same variable
    opa_port: int = 8181
    policy_gateway_port: int = 8080
    openobserve_port: int = 5080
    # OpenObserve's root user (basic auth on its API); docker-compose.chaos.yml reads the same
    # variables (CHAOS_PLATFORM__OPENOBSERVE_USER / _PASSWORD).
    openobserve_user: str = "root@example.com"
    openobserve_password: str = "chaos-tui-only"
    otlp_grpc_port: int = 4317
    otlp_http_port: int = 4318
    collector_metrics_port: int = 8888
    collector_health_port: int = 13133


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CHAOS_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    state_dir: Path = Field(default_factory=default_state_dir)
    probe_rate_hz: float = Field(10.0, gt=0, le=100)
    enabled: bool = False
    # The production lockout reads the plain ENVIRONMENT variable, as deploy tooling sets it.
    environment: str = Field("", validation_alias=AliasChoices("ENVIRONMENT", "CHAOS_ENVIRONMENT"))
    production_markers: list[str] = ["production", "prod"]
    # Overrides every scenario's invariant budget (seconds); tests shorten it.
    invariant_budget_s: float | None = Field(None, gt=0)
    sandbox: SandboxSettings = SandboxSettings()
    agent: AgentSettings = AgentSettings()
    platform: PlatformSettings = PlatformSettings()
    docker: DockerSettings = DockerSettings()

    # The spec's flat names for the mesh, kept so CHAOS_NATS_A_URL etc. work as documented.
    nats_a_url: str | None = None
    nats_b_url: str | None = None
    domain_a: str | None = None
    domain_b: str | None = None

    def model_post_init(self, _context) -> None:
        for name in ("nats_a_url", "nats_b_url", "domain_a", "domain_b"):
            value = getattr(self, name)
            if value is not None:
                setattr(self.platform, name, value)


def load_settings() -> Settings:
    return Settings()
