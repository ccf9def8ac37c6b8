"""Configuration: every default from the spec, overridable by CHAOS_* environment variables.

Nested groups use a double underscore, e.g. CHAOS_SANDBOX__PG_USER=someone.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from chaos_tui.core.limits import PROBE_RATE_DEFAULT_HZ, PROBE_RATE_MAX_HZ
from chaos_tui.core.regression import RegressionPolicy


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
    job_worker_threads: int = Field(4, ge=1, le=64)  # the reference job worker's Dramatiq threads


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
    # The job queue (chaos-queue): the sentinels and the ledger on 127.0.0.1, and the ports
    # the agent's proxies in front of valkey-1 and valkey-2 take on the compose network's
    # gateway (the job worker dials them). docker-compose.chaos.yml reads the same variables.
    queue_sentinel_1_port: int = 26379
    queue_sentinel_2_port: int = 26380
    queue_sentinel_3_port: int = 26381
    queue_ledger_port: int = 6390
    queue_proxy_1_port: int = 16379
    queue_proxy_2_port: int = 16380


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CHAOS_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    state_dir: Path = Field(default_factory=default_state_dir)
    probe_rate_hz: float = Field(PROBE_RATE_DEFAULT_HZ, gt=0, le=PROBE_RATE_MAX_HZ)
    enabled: bool = False
    # CHAOS_ENVIRONMENT. The production lockout (core/guard.py) also reads ENVIRONMENT, ENV,
    # APP_ENV, NODE_ENV, RAILS_ENV and DEPLOY_ENV straight from the environment.
    environment: str = ""
    # Markers added to the built-in ones (production, prod, prd), which always apply:
    # CHAOS_PRODUCTION_MARKERS='["live"]' or CHAOS_PRODUCTION_MARKERS=live,prod-like.
    production_markers: Annotated[list[str], NoDecode] = []
    # Overrides every scenario's invariant budget (seconds); tests shorten it.
    invariant_budget_s: float | None = Field(None, gt=0)
    # CHAOS_FILE: a scenario file whose scenarios the console and --headless offer (--file).
    file: Path | None = None
    # CHAOS_SCENARIO: the scenario (or a,b,c) run when --scenario is not given, as the request's
    # `CHAOS_SCENARIO=NAME just chaos` has it: --headless runs it, the console opens on it.
    scenario: str | None = None
    # CHAOS_OTLP_ENDPOINT: each finished run is sent here as OTLP/HTTP JSON (otlp_export.py),
    # a base URL to which /v1/traces and /v1/logs are appended.
    otlp_endpoint: str | None = None
    sandbox: SandboxSettings = SandboxSettings()
    agent: AgentSettings = AgentSettings()
    platform: PlatformSettings = PlatformSettings()
    docker: DockerSettings = DockerSettings()
    # The global regression rule (a scenario file's `regression:` overrides it per scenario):
    # CHAOS_REGRESSION__TIME_PCT=30, CHAOS_REGRESSION__FLOOR_S=2, CHAOS_REGRESSION__RUNS=20.
    regression: RegressionPolicy = RegressionPolicy()

    # The spec's flat names for the mesh, kept so CHAOS_NATS_A_URL etc. work as documented.
    nats_a_url: str | None = None
    nats_b_url: str | None = None
    domain_a: str | None = None
    domain_b: str | None = None

    @field_validator("production_markers", mode="before")
    @classmethod
    def _markers_from_text(cls, value):
        """A JSON list of strings, or a comma-separated list."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if not text.startswith(("[", "{")):
            return [part.strip() for part in text.split(",") if part.strip()]
        try:
            markers = json.loads(text)
        except ValueError:
            raise ValueError('not a JSON list (use ["a", "b"] or a,b)') from None
        if not isinstance(markers, list) or not all(isinstance(m, str) for m in markers):
            raise ValueError("must be a list of strings")
        return markers

    @field_validator("otlp_endpoint")
    @classmethod
    def _endpoint_is_a_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None  # set but empty: no export, as when unset
        from chaos_tui.otlp_export import check_endpoint

        return check_endpoint(value)

    def model_post_init(self, _context) -> None:
        for name in ("nats_a_url", "nats_b_url", "domain_a", "domain_b"):
            value = getattr(self, name)
            if value is not None:
                setattr(self.platform, name, value)


# CHAOS_* variables the tool reads that are not settings: the compose files' image names
# (CHAOS_APP_IMAGE, CHAOS_POSTGRES_IMAGE, ...) and the test bed's switches (justfile).
OTHER_VARIABLES = (
    "CHAOS_TESTBED",
    "CHAOS_TESTBED_MIRROR",
    # host ports of the compose stacks, read by docker-compose, not by the tool
    "CHAOS_OUTBOX_NATS_PORT",
    "CHAOS_OUTBOX_NATS_MONITOR_PORT",
    "CHAOS_MESH_A_PORT",
    "CHAOS_MESH_B_PORT",
    # read by a job worker's injector library (chaos_tui/inject), not by the tool
    "CHAOS_AGENT_URL",
    "CHAOS_AGENT_TOKEN",
    "CHAOS_AGENT_TOKEN_FILE",
    "CHAOS_WORKER_ID",
    "CHAOS_INJECTORS_MIRROR",
    "CHAOS_QUEUE_WORKER_THREADS",  # the compose stack's job worker threads
    "CHAOS_CHROMIUM",  # the browser `report --pdf` prints with (report_html/chromium.py)
    "CHAOS_CONSOLE_STATS",  # the console's queue and buffer sizes, for benchmarks/soak.py
)
OTHER_SUFFIXES = ("_IMAGE",)


def setting_variables(model: type[BaseModel] = Settings, prefix: str = "CHAOS_") -> set[str]:
    """Every environment variable name a setting is read from, nested groups included
    (CHAOS_AGENT as JSON and CHAOS_AGENT__PORT alike)."""
    names = set()
    for name, field in model.model_fields.items():
        names.add(f"{prefix}{name}".upper())
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            names |= setting_variables(kind, f"{prefix}{name}__")
    return names


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """CHAOS_* variables set here that nothing reads, each with a guess at what was meant:
    pydantic-settings ignores them silently, so a typo would change nothing unnoticed."""
    environ = os.environ if environ is None else environ
    known = setting_variables()
    found = []
    for name in sorted(environ):
        upper = name.upper()
        if (
            not upper.startswith("CHAOS_")
            or upper in known
            or upper in OTHER_VARIABLES
            or upper.endswith(OTHER_SUFFIXES)
        ):
            continue
        # Compared without the shared CHAOS_ prefix, which would make anything look close.
        guess = difflib.get_close_matches(upper[6:], [k[6:] for k in known], n=1, cutoff=0.6)
        found.append(name + (f" (did you mean CHAOS_{guess[0]}?)" if guess else ""))
    return found


def load_settings() -> Settings:
    return Settings()
