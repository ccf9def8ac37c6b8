"""The Docker Compose stack as a target: containers found by their compose labels, faults
applied by the agent through the Docker Engine API, addresses from the platform settings
(the ports the compose files publish on 127.0.0.1).

The stack is brought up by the user (`just chaos-up`); a run only checks that what its
scenario needs is running, and says how to start it when it is not.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast
from urllib.parse import quote

import redis

from chaos_tui.agent.client import AgentClient
from chaos_tui.agent.protocol import INJECTOR_MIRROR_KEY, ProxyView
from chaos_tui.core.contracts import Fault, FaultLease, Probe
from chaos_tui.core.errors import TargetError
from chaos_tui.core.platform_target import (
    BrokerLinkParams,
    Endpoints,
    LinkCutParams,
    PlatformTarget,
    ServiceFaultParams,
    WorkerInjectorParams,
)
from chaos_tui.core.polling import eventually
from chaos_tui.docker_engine import DockerUnavailable, find_container, sidecar_image_problem
from chaos_tui.faults.leased import LeasedFault, broker_link_lease, worker_inject_lease
from chaos_tui.platform import jobs
from chaos_tui.platform.outbox import apply_migrations
from chaos_tui.platform.streams import ensure_events_stream, ensure_mesh_streams, leafz
from chaos_tui.probes.agent_probe import AgentProbe
from chaos_tui.settings import Settings
from chaos_tui.targets.injector_mirror import InjectorMirror

# The scenarios' service names -> the compose files' service names.
COMPOSE_SERVICE = {
    "postgres": "postgres",
    "nats": "nats",
    "relay": "sea-mq-worker",
    "opa": "opa",
    "gateway": "policy-gateway",
    "sink": "openobserve",
    "collector": "otel-collector",
    "job_worker": "job-worker",
}
MESH_SERVICES = [f"sea-nats-{c}-{i}" for c in "ab" for i in (1, 2, 3)]
PROFILE_SERVICES = {
    "chaos-outbox": ["postgres", "nats", "sea-mq-worker"],
    "chaos-opa": ["opa", "policy-gateway"],
    "chaos-observe": ["openobserve", "otel-collector"],
    "mesh": MESH_SERVICES,
    "chaos-queue": ["valkey-1", "valkey-2", "sentinel-1", "sentinel-2", "sentinel-3", "ledger"]
    + ["job-worker"],
}
QUEUE_NODES = ("valkey-1", "valkey-2")
QUEUE_PROXY = "queue-valkey-{}"  # the agent proxy in front of node N, on the network's gateway
VALKEY_PORT = 6379


class DockerTarget(PlatformTarget):
    name = "docker"
    is_sandbox = False
    restarts_in_place = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.platform = settings.platform
        self.agent = AgentClient(settings)
        self.agent_started = False
        self.mirror = InjectorMirror(self.agent, self.queue_ledger_url)

    def project_of(self, profile: str) -> str:
        d = self.settings.docker
        return d.mesh_project if profile == "mesh" else d.project

    async def ensure_up(self, profile: str | None = None) -> None:
        for name in [profile] if profile else list(PROFILE_SERVICES):
            missing = await asyncio.to_thread(self._not_running, name)
            if missing:
                raise TargetError(
                    f"docker: {', '.join(missing)} of compose project {self.project_of(name)!r} "
                    f"not running; start them with `just chaos-up {name}`"
                )
        if profile in (None, "mesh"):  # the link cut runs a sidecar: know now, not mid-run
            problem = await asyncio.to_thread(
                sidecar_image_problem, self.settings.docker.sidecar_image
            )
            if problem:
                raise TargetError(f"docker: {problem}")
        self.agent_started = await self.agent.ensure() or self.agent_started
        # What chaos-tui itself keeps in the stack: the outbox table and the streams.
        if profile in (None, "chaos-outbox"):
            await when_ready(
                "postgres", lambda: asyncio.to_thread(apply_migrations, self.postgres_url)
            )
            await when_ready("nats", lambda: ensure_events_stream(self.nats_url))
        if profile in (None, "mesh"):
            await when_ready(
                "the mesh",
                lambda: ensure_mesh_streams(self.nats_a_url, self.nats_b_url, self.domain_a),
            )
        if profile in (None, "chaos-queue"):
            # The worker's broker connections run through the agent's proxies: made first,
            # then the queue is ready once it is whole and the worker has reached it.
            await when_ready("the job queue's proxies", self.ensure_queue_link)
            await when_ready("the job queue", self.queue_ready)

    def _not_running(self, profile: str) -> list[str]:
        try:
            found = {
                s: find_container(self.project_of(profile), s) for s in PROFILE_SERVICES[profile]
            }
        except DockerUnavailable as exc:
            raise TargetError(str(exc)) from None
        return [s for s, c in found.items() if c is None or c.status != "running"]

    def probes(self) -> list[Probe]:
        return [AgentProbe("agent", self.agent)]

    def stop_what_we_started(self, keep_sandbox: bool) -> list[str]:
        """Only the agent: the stack is the user's, brought up and down with `just`."""
        stopped = ["agent"] if self.agent_started and self.agent.stop_spawned() else []
        self.agent_started = False
        return stopped

    def versions(self, profile: str | None = None) -> dict[str, str]:
        """The image each running service of this profile (of the stack, when None) was made
        from."""
        found: dict[str, str] = {}
        for name in [profile] if profile else list(PROFILE_SERVICES):
            for service in PROFILE_SERVICES.get(name, []):
                try:
                    container = find_container(self.project_of(name), service)
                except DockerUnavailable:
                    return found
                if container is not None:
                    found[service] = (
                        f"{service} {', '.join(container.image.tags) or container.image.short_id}"
                    )
        return found

    def blast_radius(self, profile: str | None = None) -> list[str]:
        lines = []
        for name in [profile] if profile else list(PROFILE_SERVICES):
            project = self.project_of(name)
            lines += [
                f"docker container of {project}/{s} (compose project {project})"
                for s in PROFILE_SERVICES[name]
            ]
        if profile in (None, "chaos-queue"):
            p = self.platform
            lines += [
                "job worker -> Valkey through agent proxies "
                + ", ".join(
                    f"{QUEUE_PROXY.format(i)} (port {port} on the network's gateway)"
                    for i, port in enumerate((p.queue_proxy_1_port, p.queue_proxy_2_port), 1)
                )
                + " (the sentinels are asked directly)",
                f"worker injectors mirrored into the ledger (key {INJECTOR_MIRROR_KEY}) while "
                "a worker-injector fault lives",
            ]
        return lines

    # -- addresses: what the compose files publish ----------------------------------------

    def endpoints(self, profile: str | None = None) -> Endpoints:
        return Endpoints(
            postgres_url=self.postgres_url,
            nats_url=self.nats_url,
            opa_url=self.opa_url,
            gateway_url=self.gateway_url,
            collector_url=self.collector_url,
            collector_port=self.collector_port,
            sink_url=self.sink_url,
            sink_auth=self.sink_auth,
            nats_a_url=self.nats_a_url,
            nats_b_url=self.nats_b_url,
            link_monitor_url=self.link_monitor_url,
            domain_a=self.domain_a,
            queue_sentinels=self.queue_sentinels,
            queue_master=jobs.SENTINEL_MASTER,
            queue_ledger_url=self.queue_ledger_url,
            collector_health_url=f"http://127.0.0.1:{self.platform.collector_health_port}/",
            collector_metrics_url=(
                f"http://127.0.0.1:{self.platform.collector_metrics_port}/metrics"
            ),
        )

    @property
    def queue_sentinels(self) -> tuple[str, ...]:
        p = self.platform
        ports = (p.queue_sentinel_1_port, p.queue_sentinel_2_port, p.queue_sentinel_3_port)
        return tuple(f"127.0.0.1:{port}" for port in ports)

    @property
    def queue_ledger_url(self) -> str:
        return f"redis://127.0.0.1:{self.platform.queue_ledger_port}/0"

    @property
    def postgres_url(self) -> str:
        password = quote(self.platform.postgres_password, safe="")
        return f"postgresql://postgres:{password}@127.0.0.1:{self.platform.postgres_port}/postgres"

    @property
    def nats_url(self) -> str:
        return self.platform.nats_url

    @property
    def opa_url(self) -> str:
        return f"http://127.0.0.1:{self.platform.opa_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.platform.policy_gateway_port}"

    @property
    def collector_port(self) -> int:
        return self.platform.otlp_http_port

    @property
    def collector_url(self) -> str:
        return f"http://127.0.0.1:{self.platform.otlp_http_port}"

    @property
    def sink_url(self) -> str:
        return f"http://127.0.0.1:{self.platform.openobserve_port}"

    @property
    def sink_auth(self) -> tuple[str, str]:
        return (self.platform.openobserve_user, self.platform.openobserve_password)

    @property
    def nats_a_url(self) -> str:
        return self.platform.nats_a_url

    @property
    def nats_b_url(self) -> str:
        return self.platform.nats_b_url

    @property
    def domain_a(self) -> str:
        return self.platform.domain_a

    # -- faults, applied by the agent through the Docker Engine ----------------------------

    def _container_fault(
        self, kind: str, verb: str, service: str, hold_s: float, what: str
    ) -> Fault:
        project = self.settings.docker.project
        if service == "queue_primary":
            return self._queue_primary_fault(kind, verb, hold_s, what)
        compose = COMPOSE_SERVICE[service]
        return LeasedFault(
            self.agent,
            kind,
            {"project": project, "service": compose},
            name=f"{verb}:{compose}",
            hold_s=hold_s,
            description=what.format(f"{project}/{compose}", f"{hold_s:g}s"),
            verify=lambda: self.container_running(project, compose),
        )

    def _queue_primary_fault(self, kind: str, verb: str, hold_s: float, what: str) -> Fault:
        """`queue_primary` is a role: the node the sentinels call primary when the fault
        lands (after a failover, the other one). Healed when that very container runs again
        and some node is primary for the sentinels and answers."""
        project = self.settings.docker.project
        fault: LeasedFault

        async def primary_now() -> dict:
            return {"project": project, "service": await asyncio.to_thread(self.queue_primary)}

        async def back() -> bool:
            return await self.container_running(
                project, fault.params["service"]
            ) and await asyncio.to_thread(self._a_primary_answers)

        fault = LeasedFault(
            self.agent,
            kind,
            {"project": project, "service": "queue_primary"},
            name=f"{verb}:queue_primary",
            hold_s=hold_s,
            description=what.format(
                f"{project}'s Valkey node the sentinels call primary when the fault lands",
                f"{hold_s:g}s",
            ),
            verify=back,
            resolve=primary_now,
        )
        return fault

    def hard_restart(self, params: ServiceFaultParams) -> Fault:
        return self._container_fault(
            "docker.kill",
            "kill",
            params.service,
            params.hold_s,
            "docker kill {} (SIGKILL), start it again after {}",
        )

    def restart(self, params: ServiceFaultParams) -> Fault:
        return self._container_fault(
            "docker.restart",
            "restart",
            params.service,
            params.hold_s,
            "docker restart {} (SIGTERM, SIGKILL after 10 s, started again at once); "
            "the lease is held {}, then its heal makes sure it runs",
        )

    def stop(self, params: ServiceFaultParams) -> Fault:
        return self._container_fault(
            "docker.stop",
            "stop",
            params.service,
            params.hold_s,
            "docker stop {}, start it again after {}",
        )

    def pause(self, params: ServiceFaultParams) -> Fault:
        return self._container_fault(
            "docker.pause",
            "pause",
            params.service,
            params.hold_s,
            "docker pause {} for {}, then unpause",
        )

    def cut_link(self, params: LinkCutParams) -> Fault:
        """Cut the leafnode link port on cluster A's nodes: all of them (`full`), or the one
        sea-nats-b-1 is linked to when the fault lands (`one-node`), so that B must fail over
        to another A node."""
        scope, hold_s = params.scope, params.hold_s
        every = [s for s in MESH_SERVICES if s.startswith("sea-nats-a-")]
        port = self.platform.nats_leafnode_port
        lease_params = {
            "project": self.settings.docker.mesh_project,
            "services": every,
            "port": port,
            "image": self.settings.docker.sidecar_image,
        }

        async def linked_node() -> dict:
            return {**lease_params, "services": [await asyncio.to_thread(self._a_node_of_b1)]}

        one = scope == "one-node"
        return LeasedFault(
            self.agent,
            "docker.netcut",
            lease_params,
            name=f"cut_link:{scope}",
            hold_s=hold_s,
            description=(
                f"reset TCP port {port} (the leafnode link) on "
                + ("the sea-a node sea-nats-b-1 is linked to" if one else ", ".join(every))
                + f" for {hold_s:g}s"
            ),
            verify=self.mesh_linked,
            resolve=linked_node if one else None,
        )

    # -- the job queue ----------------------------------------------------------------------

    def _node_address(self, service: str) -> tuple[str, str]:
        """(its address, the gateway of its network) of a running queue node."""
        container = find_container(self.settings.docker.project, service)
        if container is None or container.status != "running":
            raise TargetError(f"docker: {service} is not running")
        for network in container.attrs["NetworkSettings"]["Networks"].values():
            if network.get("IPAddress") and network.get("Gateway"):
                return network["IPAddress"], network["Gateway"]
        raise TargetError(f"docker: {service} has no network address")

    async def ensure_queue_link(self) -> list[ProxyView]:
        """One agent proxy in front of each Valkey node, listening on the compose network's
        gateway on the port the job worker dials for that node (the agent allows that
        address because the network is its project's; its API stays on loopback). Proxies
        live in the agent: made again here after an agent restart, or after a node came
        back at another address."""
        p = self.platform
        made = []
        for i, (node, port) in enumerate(
            zip(QUEUE_NODES, (p.queue_proxy_1_port, p.queue_proxy_2_port), strict=True), start=1
        ):
            address, gateway = await asyncio.to_thread(self._node_address, node)
            made.append(
                await self.agent.ensure_proxy(
                    QUEUE_PROXY.format(i), f"{gateway}:{port}", f"{address}:{VALKEY_PORT}"
                )
            )
        return made

    async def queue_linked(self) -> bool:
        """Every queue proxy listens (made again if the agent lost them)."""
        return all(p.listening for p in await self.ensure_queue_link())

    def queue_primary(self) -> str:
        """The compose service (valkey-1 or valkey-2) the sentinels call primary now."""
        address = jobs.primary_address(self.queue_sentinels).rsplit(":", 1)[0]
        for node in QUEUE_NODES:
            try:
                if self._node_address(node)[0] == address:
                    return node
            except TargetError:
                continue
        raise TargetError(f"docker: the sentinels name {address} as primary, no queue node")

    def _a_primary_answers(self) -> bool:
        try:
            client = jobs.primary_client(self.queue_sentinels)
        except redis.RedisError:
            return False
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    async def queue_ready(self) -> None:
        """Whole: every sentinel names the same primary (one of the nodes) and knows the
        other two, the primary has a replica online, and the worker's connections reach the
        primary through its proxy. Raises (for when_ready) while not."""

        def whole() -> str:
            named = set()
            for sentinel in self.queue_sentinels:
                host, port = sentinel.rsplit(":", 1)
                ask = redis.Redis(
                    host=host, port=int(port), socket_timeout=1, decode_responses=True
                )
                try:
                    state = cast("dict[str, Any]", ask.sentinel_master(jobs.SENTINEL_MASTER))
                finally:
                    ask.close()
                if int(state.get("num-other-sentinels", 0)) < len(self.queue_sentinels) - 1:
                    raise TargetError(f"sentinel {sentinel} does not know the others yet")
                named.add(f"{state['ip']}:{state['port']}")
            if len(named) != 1:
                raise TargetError(f"the sentinels disagree on the primary: {sorted(named)}")
            primary = jobs.primary_client(self.queue_sentinels)
            try:
                info = primary.info("replication")
            finally:
                primary.close()
            online = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
            if not any(r.get("state") == "online" for r in online):
                raise TargetError("the primary has no replica online yet")
            return self.queue_primary()

        node = await asyncio.to_thread(whole)
        proxies = {p.name: p for p in await self.agent.proxies()}
        proxy = proxies.get(QUEUE_PROXY.format(QUEUE_NODES.index(node) + 1))
        if proxy is None or not proxy.connections:
            raise TargetError("the job worker has not reached the primary through its proxy")

    def broker_link(self, params: BrokerLinkParams) -> Fault:
        """A toxic on every path between the job worker and Valkey."""
        proxies = [QUEUE_PROXY.format(i) for i in range(1, len(QUEUE_NODES) + 1)]
        return LeasedFault(
            self.agent, **broker_link_lease(params, proxies), verify=self.queue_linked
        )

    def worker_injectors(self, params: WorkerInjectorParams) -> Fault:
        """Injectors granted as an agent lease, which the run mirrors into the ledger for
        the containerised worker while the lease lives."""
        return MirroredLease(
            self.mirror, self.agent, **worker_inject_lease(params.injectors, params.hold_s)
        )

    @property
    def link_monitor_url(self) -> str:
        """sea-nats-b-1's monitor: it has exactly one leafnode while the link is up."""
        return f"http://127.0.0.1:{self.platform.nats_b_monitor_port}"

    def _a_node_of_b1(self) -> str:
        leafs = leafz(self.platform.nats_b_monitor_port)
        if not leafs:
            raise TargetError("sea-nats-b-1 has no leafnode link: there is no path to cut")
        ip = leafs[0]["ip"]
        project = self.settings.docker.mesh_project
        for service in (s for s in MESH_SERVICES if s.startswith("sea-nats-a-")):
            container = find_container(project, service)
            networks = container.attrs["NetworkSettings"]["Networks"] if container else {}
            if any(n.get("IPAddress") == ip for n in networks.values()):
                return service
        raise TargetError(f"no sea-a node has address {ip}")

    async def mesh_linked(self, timeout_s: float = 15.0) -> bool:
        """sea-nats-b-1 has its leafnode to cluster A again (it redials every 250 ms)."""

        async def linked() -> bool:
            return bool(await asyncio.to_thread(leafz, self.platform.nats_b_monitor_port))

        return await eventually(linked, timeout_s, 0.2)

    async def container_running(self, project: str, service: str) -> bool:
        def check() -> bool:
            container = find_container(project, service)
            return container is not None and container.status == "running"

        return await asyncio.to_thread(check)


async def when_ready(what: str, action, timeout_s: float = 60.0) -> None:
    """Run `action` (async) until it succeeds: a container that was just started takes a
    moment to serve. Fails with its last error after `timeout_s`."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            return await action()
        except Exception as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise TargetError(f"docker: {what} not ready after {timeout_s:g}s: {exc}") from None
        await asyncio.sleep(0.5)


class MirroredLease(LeasedFault):
    """A worker-injector lease whose injectors the run copies into the ledger while it lives
    (the containerised worker cannot ask the agent): copies start once the agent granted it
    and stop, after a last one without it, once it is healed."""

    def __init__(self, mirror: InjectorMirror, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.mirror = mirror

    async def inject(self, lease: FaultLease) -> None:
        await super().inject(lease)
        lease.data["mirrored"] = True
        await self.mirror.hold()

    async def heal(self, lease: FaultLease) -> None:
        try:
            await super().heal(lease)
        finally:
            if lease.data.pop("mirrored", False):
                await self.mirror.release()
