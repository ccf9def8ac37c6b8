"""Every sandbox service: which profile it belongs to, the ports it needs, how it starts and
how we know it is ready. The profiles carry the Docker Compose stack's profile names, so a
scenario asks for the same thing on either target.

A service's `launch` returns the command to run; `ready` raises until the service answers as
it should. Both get a `Where`: the state directory, the ports picked for this sandbox and the
settings.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from chaos_tui.platform import jobs
from chaos_tui.profiles import PROFILE_NAMES
from chaos_tui.sandbox import collector, mesh, postgres, valkey
from chaos_tui.sandbox import nats as nats_server
from chaos_tui.sandbox.postgres import SandboxError
from chaos_tui.settings import Settings


@dataclass
class Where:
    root: Path
    ports: dict[str, int]
    settings: Settings

    def url(self, port: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.ports[port]}"

    def ready_file(self, service: str) -> Path:
        return self.root / f"{service}.ready"


@dataclass
class Launch:
    command: list[str]
    user: str | None = None  # run as this OS user (postgres refuses root)
    cwd: Path | None = None


@dataclass(frozen=True)
class Service:
    name: str
    profile: str
    description: str
    ports: tuple[str, ...]
    launch: Callable[[Where], Launch]
    ready: Callable[[Where], None]
    stop_signal: int = signal.SIGTERM
    # Ports it dials that someone else listens on (the agent's link proxies): picked with
    # the rest, but never re-picked for being busy, since busy is what they should be.
    dials: tuple[str, ...] = ()


def _python(module: str, *args: str) -> list[str]:
    # -P: `-m` would put the working directory first on sys.path, so a `chaos_tui` folder
    # wherever the user stands would run as our service (python_module() says the same).
    return python_module(module, *args)


def python_module(module: str, *args: str) -> list[str]:
    """The command line that runs one of our modules with this interpreter, never code from
    the working directory (-P: nothing unsafe is put first on sys.path)."""
    return [sys.executable, "-P", "-m", module, *args]


def _ready_file_written(where: Where, service: str) -> None:
    if not where.ready_file(service).is_file():
        raise SandboxError(f"{service} is not serving yet")


def _http_ok(url: str) -> None:
    httpx.get(url, timeout=1.0).raise_for_status()


# -- chaos-outbox: Postgres, NATS and the outbox relay ------------------------------------------


def _launch_postgres(w: Where) -> Launch:
    user = w.settings.sandbox.pg_user if postgres.running_as_root() else None
    bin_dir, data = postgres.sandbox_dirs(w.root / "pg", user)
    postgres.clear_stale_lock(data)
    if user:  # the log file must exist before we drop to the user that writes it
        log = w.root / "logs" / "postgres.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.touch()
    return Launch(postgres.server_command(bin_dir, data, w.ports["postgres"]), user, Path("/"))


def _launch_nats(w: Where) -> Launch:
    return Launch(
        nats_server.server_command(
            w.root / "nats", w.ports["nats"], w.ports["nats_monitor"], "chaos-sandbox"
        )
    )


def _ready_nats(w: Where) -> None:
    _http_ok(w.url("nats_monitor") + "/healthz?js-enabled-only=true")
    asyncio.run(nats_server.ensure_events_stream(w.url("nats", "nats")))


def _launch_relay(w: Where) -> Launch:
    return Launch(
        _python(
            "chaos_tui.sandbox.outbox_relay",
            "--postgres-url",
            postgres.url(w.ports["postgres"]),
            "--nats-url",
            w.url("nats", "nats"),
            "--test-drop-every",
            str(w.settings.sandbox.relay_test_drop_every),
            "--ready-file",
            str(w.ready_file("relay")),
        )
    )


# -- chaos-opa: the decision server (real Rego) and our policy gateway ---------------------------


def _launch_opa(w: Where) -> Launch:
    return Launch(
        _python(
            "chaos_tui.sandbox.decision_server",
            "--port",
            str(w.ports["opa"]),
            "--ready-file",
            str(w.ready_file("opa")),
        )
    )


def _launch_gateway(w: Where) -> Launch:
    command = _python(
        "chaos_tui.sandbox.policy_gateway",
        "--port",
        str(w.ports["gateway"]),
        "--opa-url",
        w.url("opa"),
        "--ready-file",
        str(w.ready_file("gateway")),
    )
    if w.settings.sandbox.gateway_test_fail_open:
        command.append("--test-fail-open")
    return Launch(command)


# -- chaos-observe: the OTLP sink standing in for OpenObserve, and the rotel collector -----------


def _launch_sink(w: Where) -> Launch:
    return Launch(
        _python(
            "chaos_tui.sandbox.otlp_sink",
            "--port",
            str(w.ports["sink"]),
            "--store",
            str(w.root / "sink" / "markers.log"),
            "--ready-file",
            str(w.ready_file("sink")),
        )
    )


def _launch_collector(w: Where) -> Launch:
    return Launch(
        collector.command(
            collector.binary(),
            w.ports["otlp_grpc"],
            w.ports["otlp_http"],
            w.url("sink"),
            collector.ORG,
            retries=w.settings.sandbox.collector_retries,
            state_dir=w.root / "rotel",
        )
    )


# -- mesh: NATS domains sea-a and sea-b joined by a leafnode link through the agent's proxies ----


def _launch_nats_a(w: Where) -> Launch:
    conf = w.root / "mesh" / "nats_a.conf"
    mesh.write_config_a(
        conf,
        w.root / "mesh" / "a",
        w.ports["nats_a"],
        w.ports["nats_a_monitor"],
        w.ports["nats_a_leaf"],
        w.settings.platform.domain_a,
        "chaos-sea-a",
    )
    return Launch(mesh.server_command(conf))


def _launch_nats_b(w: Where) -> Launch:
    conf = w.root / "mesh" / "nats_b.conf"
    remotes = [f"nats-leaf://127.0.0.1:{w.ports[p]}" for p in mesh_link_ports()]
    mesh.write_config_b(
        conf,
        w.root / "mesh" / "b",
        w.ports["nats_b"],
        w.ports["nats_b_monitor"],
        w.settings.platform.domain_b,
        remotes,
        "chaos-sea-b",
    )
    return Launch(mesh.server_command(conf))


def _ready_nats_a(w: Where) -> None:
    _http_ok(w.url("nats_a_monitor") + "/healthz?js-enabled-only=true")


def _ready_nats_b(w: Where) -> None:
    # B starts after A, so both streams can be made here. The mirror is made only once sea-b
    # reaches sea-a's API (the target puts the link proxies up first): a mirror made before
    # that waits about 40 s for its first message.
    _http_ok(w.url("nats_b_monitor") + "/healthz?js-enabled-only=true")
    asyncio.run(
        mesh.ensure_mesh_streams(
            w.url("nats_a", "nats"),
            w.url("nats_b", "nats"),
            w.settings.platform.domain_a,
            w.settings.sandbox.mesh_origin_max_msgs,
        )
    )


MESH_PATHS = 2  # two leafnode paths, so one can be cut while the other carries the mirror


def mesh_link_ports() -> list[str]:
    return [f"mesh_link_{i}" for i in range(1, MESH_PATHS + 1)]


# -- chaos-queue: Valkey primary + replica under three sentinels, a ledger, the job worker -------

QUEUE_NODES = ("valkey_1", "valkey_2")  # valkey_1 is the primary when the queue first starts
SENTINELS = ("sentinel_1", "sentinel_2", "sentinel_3")


def queue_proxy_ports() -> list[str]:
    """The ports of the agent proxies in front of each node, in QUEUE_NODES' order: the job
    worker reaches Valkey only through them, so a broker fault is a toxic there."""
    return [f"queue_proxy_{i}" for i in range(1, len(QUEUE_NODES) + 1)]


def _queue_dir(w: Where) -> Path:
    return w.root / "queue"


def _launch_queue_node(name: str) -> Callable[[Where], Launch]:
    def launch(w: Where) -> Launch:
        follow = valkey.node_role(
            w.ports[name],
            [w.ports[n] for n in QUEUE_NODES],
            [_queue_dir(w) / f"{n}.conf" for n in QUEUE_NODES],
            [w.ports[s] for s in SENTINELS],
            jobs.SENTINEL_MASTER,
        )
        config = _queue_dir(w) / f"{name}.conf"
        valkey.write_node_config(config, _queue_dir(w) / name, w.ports[name], follow)
        return Launch(valkey.server_command(config))

    return launch


def _launch_sentinel(index: int) -> Callable[[Where], Launch]:
    def launch(w: Where) -> Launch:
        config = _queue_dir(w) / f"sentinel_{index}.conf"
        nodes = [w.ports[n] for n in QUEUE_NODES]
        # A sentinel file written afresh watches the primary the nodes' own files name (the
        # nodes of this wave are launched first), not always the first node.
        primary = valkey.last_primary(nodes, [_queue_dir(w) / f"{n}.conf" for n in QUEUE_NODES])
        valkey.write_sentinel_config(
            config,
            w.root,
            index,
            w.ports[f"sentinel_{index}"],
            [w.ports[s] for s in SENTINELS],
            jobs.SENTINEL_MASTER,
            primary,
            [p for p in nodes if p != primary],
        )
        return Launch(valkey.server_command(config, sentinel=True))

    return launch


def _ready_queue_node(name: str) -> Callable[[Where], None]:
    return lambda w: valkey.ready_node(w.ports[name])


def _ready_sentinel(name: str) -> Callable[[Where], None]:
    return lambda w: valkey.ready_sentinel(w.ports[name], jobs.SENTINEL_MASTER, len(SENTINELS) - 1)


def _launch_ledger(w: Where) -> Launch:
    config = _queue_dir(w) / "ledger.conf"
    valkey.write_node_config(config, _queue_dir(w) / "ledger", w.ports["ledger"], None)
    return Launch(valkey.server_command(config))


def _launch_job_worker(w: Where) -> Launch:
    # Each node as the sentinels name it -> the agent proxy in front of it.
    through = [
        f"{valkey.HOST}:{w.ports[node]}={valkey.HOST}:{w.ports[proxy]}"
        for node, proxy in zip(QUEUE_NODES, queue_proxy_ports(), strict=True)
    ]
    return Launch(
        _python(
            "chaos_tui.sandbox.job_worker",
            "--sentinels",
            ",".join(f"{valkey.HOST}:{w.ports[s]}" for s in SENTINELS),
            "--master",
            jobs.SENTINEL_MASTER,
            "--through",
            ",".join(through),
            "--ledger-url",
            f"redis://{valkey.HOST}:{w.ports['ledger']}/0",
            "--threads",
            str(w.settings.sandbox.job_worker_threads),
            "--worker-id",
            "job_worker",
            "--state-dir",
            str(w.root),
            "--ready-file",
            str(w.ready_file("job_worker")),
        )
    )


def _queue_member(
    name: str, description: str, launch: Callable[[Where], Launch], ready: Callable[[Where], None]
) -> Service:
    return Service(name, "chaos-queue", description, (name,), launch, ready)


def _queue_services() -> tuple[Service, ...]:
    nodes = tuple(
        _queue_member(
            name,
            f"Valkey node {i} of the job queue (first {'primary' if i == 1 else 'a replica'})",
            _launch_queue_node(name),
            _ready_queue_node(name),
        )
        for i, name in enumerate(QUEUE_NODES, start=1)
    )
    sentinels = tuple(
        _queue_member(
            name,
            f"Valkey sentinel {i} of 3 (quorum {valkey.QUORUM}) watching the queue's primary",
            _launch_sentinel(i),
            _ready_sentinel(name),
        )
        for i, name in enumerate(SENTINELS, start=1)
    )
    ledger = Service(
        "ledger",
        "chaos-queue",
        "Valkey ledger of job completions (never faulted: the run's observer)",
        ("ledger",),
        _launch_ledger,
        lambda w: valkey.ready_node(w.ports["ledger"]),
    )
    worker = Service(
        "job_worker",
        "chaos-queue",
        "reference job worker (Dramatiq, retries, dead letters) under a restarting supervisor",
        (),
        _launch_job_worker,
        lambda w: _ready_file_written(w, "job_worker"),
        dials=tuple(queue_proxy_ports()),
    )
    return (*nodes, *sentinels, ledger, worker)


SERVICES: tuple[Service, ...] = (
    Service(
        "postgres",
        "chaos-outbox",
        "PostgreSQL with the outbox table",
        ("postgres",),
        _launch_postgres,
        lambda w: postgres.apply_migrations(postgres.url(w.ports["postgres"])),
        stop_signal=signal.SIGINT,
    ),  # postgres's "fast" shutdown
    Service(
        "nats",
        "chaos-outbox",
        "NATS JetStream with SEA_EVENTS",
        ("nats", "nats_monitor"),
        _launch_nats,
        _ready_nats,
    ),
    Service(
        "relay",
        "chaos-outbox",
        "outbox relay (Postgres -> JetStream)",
        (),
        _launch_relay,
        lambda w: _ready_file_written(w, "relay"),
    ),
    Service(
        "opa",
        "chaos-opa",
        "OPA-compatible decision server (Rego via regopy)",
        ("opa",),
        _launch_opa,
        lambda w: _http_ok(w.url("opa") + "/health"),
    ),
    Service(
        "gateway",
        "chaos-opa",
        "policy gateway (asks OPA, fails closed)",
        ("gateway",),
        _launch_gateway,
        lambda w: _http_ok(w.url("gateway") + "/health"),
    ),
    Service(
        "sink",
        "chaos-observe",
        "OTLP sink standing in for OpenObserve",
        ("sink",),
        _launch_sink,
        lambda w: _http_ok(w.url("sink") + "/healthz"),
    ),
    Service(
        "collector",
        "chaos-observe",
        "rotel OpenTelemetry collector",
        ("otlp_grpc", "otlp_http"),
        _launch_collector,
        lambda w: collector.ready(w.ports["otlp_http"]),
    ),  # rotel has no health endpoint
    Service(
        "nats_a",
        "mesh",
        "NATS domain sea-a with SEA_EVENTS, leafnode hub",
        ("nats_a", "nats_a_monitor", "nats_a_leaf"),
        _launch_nats_a,
        _ready_nats_a,
    ),
    Service(
        "nats_b",
        "mesh",
        "NATS domain sea-b with SEA_EVENTS_MIRROR, leafnode remote",
        ("nats_b", "nats_b_monitor"),
        _launch_nats_b,
        _ready_nats_b,
        dials=tuple(mesh_link_ports()),
    ),
    *_queue_services(),
)

BY_NAME = {s.name: s for s in SERVICES}
PROFILES: dict[str, tuple[str, ...]] = {}
for _s in SERVICES:
    PROFILES.setdefault(_s.profile, ())
    PROFILES[_s.profile] += (_s.name,)
if tuple(PROFILES) != PROFILE_NAMES:  # the command line checks --profile against that list
    raise RuntimeError(f"profiles {tuple(PROFILES)} differ from chaos_tui/profiles.py")


def services_of(profiles: list[str] | tuple[str, ...] | None) -> list[Service]:
    """The services of these profiles (all when None), in start order."""
    if profiles is None:
        return list(SERVICES)
    unknown = [p for p in profiles if p not in PROFILES]
    if unknown:
        raise SandboxError(f"unknown sandbox profile {unknown[0]!r} (known: {', '.join(PROFILES)})")
    return [s for s in SERVICES if s.profile in profiles]
