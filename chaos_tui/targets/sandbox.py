"""The embedded sandbox as a target: addresses, blast radius and service control."""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import subprocess
from collections.abc import Callable
from contextlib import ExitStack

import redis

from chaos_tui.agent.client import AgentClient, AgentError, AgentRefused
from chaos_tui.agent.protocol import ProxyView
from chaos_tui.core.contracts import Fault, FaultLease, Probe
from chaos_tui.core.errors import UsageError
from chaos_tui.core.platform_target import (
    BrokerLinkParams,
    Endpoints,
    LinkCutParams,
    PlatformTarget,
    ServiceFaultParams,
    WorkerInjectorParams,
)
from chaos_tui.core.polling import eventually
from chaos_tui.faults.leased import LeasedFault, broker_link_lease, worker_inject_lease
from chaos_tui.platform import jobs
from chaos_tui.platform.streams import leafz
from chaos_tui.probes.agent_probe import AgentProbe
from chaos_tui.sandbox import collector, postgres, valkey
from chaos_tui.sandbox import nats as nats_server
from chaos_tui.sandbox.postgres import SandboxError
from chaos_tui.sandbox.services import (
    BY_NAME,
    PROFILES,
    QUEUE_NODES,
    SENTINELS,
    mesh_link_ports,
    queue_proxy_ports,
    services_of,
)
from chaos_tui.sandbox.stack import Sandbox
from chaos_tui.sandbox.usage import Users
from chaos_tui.settings import Settings

LINK_PROXY = "mesh-link-{}"  # the agent proxy carrying leafnode path N from sea-b to sea-a
QUEUE_PROXY = "queue-valkey-{}"  # the agent proxy in front of Valkey node N (job worker side)
GONE_POLL_S = 0.5  # how often a run looks whether `sandbox down` took the sandbox away
TAKEN_DOWN = (
    "the sandbox was taken down under the run (`chaos-tui sandbox down`); the fault "
    "agent healed its faults as it stopped"
)


async def _to_the_end(starting):
    """Await a start that a cancel (a signal to the run) must not cut loose: a thread goes on
    starting services after its awaiter is cancelled, and an agent may be spawned but not yet
    known. Only once the start has returned does this target know what to stop, so a cancel
    waits for it (seconds at most), then goes on."""
    work = asyncio.ensure_future(starting)
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.wait([work])
        if not work.cancelled():
            work.exception()  # seen: the cancel is what the run acts on
        raise


class SandboxTarget(PlatformTarget):
    name = "sandbox"
    is_sandbox = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sandbox = Sandbox(settings)
        self.agent = AgentClient(settings)
        self.started: list[str] = []  # services this target started (so its owner can stop them)
        self.agent_started = False  # whether this target spawned the fault agent
        self._agent_pid: int | None = None  # the agent it spawned
        self.left_in_use: list[str] = []  # what stop_what_we_started left to another user
        # Held while this process may use a profile's services or the agent (sandbox/usage.py).
        self._users: dict[str, Users] = {}
        self._downs_seen: int | None = None  # `sandbox down` count when the services were ensured

    async def ensure_up(self, profile: str | None = None) -> None:
        """Start the services of this profile (all when None) and the fault agent; the mesh
        also needs its link proxies, which live in the agent."""
        profiles = None if profile is None else [profile]
        self._downs_seen = await asyncio.to_thread(self._downs)
        await asyncio.to_thread(self._join, profiles or list(PROFILES))
        # Profiles whose services dial the agent's proxies get them first: a mirror whose
        # origin is unreachable when sea-b starts backs off for a minute or more, and the job
        # worker reaches Valkey only through them.
        for name, make in (
            ("mesh", self.ensure_mesh_link),
            ("chaos-queue", self.ensure_queue_link),
        ):
            if profile in (None, name):
                await self._ensure_proxies(name, make)
        # The agent starts while the services do (it needs none of them to serve, and a
        # leftover heal that starts one is safe alongside: Sandbox.start is locked). Both are
        # awaited to their end, even when one fails or the run is cancelled, so what either
        # started is known to stop_what_we_started. `started` is filled in as each service
        # starts, so a failed or interrupted start is still undone.
        outcomes = await asyncio.gather(
            _to_the_end(asyncio.to_thread(self.sandbox.up, self.started, profiles)),
            self._ensure_agent(),
            return_exceptions=True,
        )
        for outcome in outcomes:  # the services' failure first: it names the cause
            if isinstance(outcome, BaseException):
                raise outcome

    async def _ensure_proxies(self, profile: str, make) -> None:
        await asyncio.to_thread(self.sandbox.reserve_ports, [profile])
        await self._ensure_agent()
        try:
            await make()
        except AgentRefused as exc:
            if self.sandbox.is_up([profile]) or "cannot listen" not in exc.detail:
                raise
            # A proxy's port was taken while the profile was down: pick new ones and retry.
            await asyncio.to_thread(self.sandbox.reserve_ports, [profile], True)
            await make()

    async def _ensure_agent(self) -> None:
        starting = asyncio.ensure_future(self.agent.ensure())
        try:
            await _to_the_end(starting)
        finally:
            # Even when the run was cancelled meanwhile (the start went on to its end): an
            # agent this target spawned is one it must stop.
            if (
                starting.done()
                and not starting.cancelled()
                and starting.exception() is None
                and starting.result()
            ):
                self.agent_started = True
                info = self.agent.info()
                self._agent_pid = info["pid"] if info else None

    def probes(self) -> list[Probe]:
        return [AgentProbe("agent", self.agent)]

    def _join(self, names: list[str]) -> None:
        for name in [*names, "agent"]:
            users = self._users.setdefault(name, Users(self.settings.state_dir, name))
            users.join()

    def keep_up(self) -> None:
        """`sandbox up`: what is up now stays up until `sandbox down`. This process leaves
        every profile it joined without stopping anything, and what a run that ended
        meanwhile handed over to the last user (to stop) is taken back: kept up too."""
        for users in self._users.values():
            users.keep()
            users.take_back()
            with users.leaving({}):
                pass
        self._users.clear()

    def stop_what_we_started(self, keep_sandbox: bool) -> list[str]:
        """The agent this target spawned (it heals any lease left first), then the services
        it started, unless the sandbox is to be kept. Only what nobody else uses is stopped
        (sandbox/usage.py): the rest is handed over to the last user, and named in
        `left_in_use`. Returns what was stopped."""
        wanted = [] if keep_sandbox else self.started
        behind: dict[str, dict[str, int]] = {name: {} for name in self._users}
        for service in wanted:
            rec = self.sandbox.record(service)
            if rec is not None:
                behind.setdefault(BY_NAME[service].profile, {})[service] = rec.pid
        if self.agent_started and self._agent_pid is not None:
            behind["agent"] = {"agent": self._agent_pid}
        stopped: list[str] = []
        with ExitStack() as leaving:
            # None: others still use it. Else {name: pid} to stop now, as its last user.
            now = {
                # Kept up by `sandbox up` (even one that found this run's services already
                # starting): left running, as if others still used it.
                name: None if users.kept else handed
                for name, users in self._users.items()
                for handed in [leaving.enter_context(users.leaving(behind.get(name, {})))]
            }
            self._users.clear()
            self.left_in_use = [
                item for name, items in behind.items() if now.get(name) is None for item in items
            ]
            # Only the very processes handed over: a service started again since is not ours.
            stopping = [
                service
                for name, items in now.items()
                if name != "agent"
                for service, pid in (items or {}).items()
                if (rec := self.sandbox.record(service)) is not None and rec.pid == pid
            ]
            # A mesh or a job queue that stays up needs the agent: the mesh's link and the job
            # worker's broker connections run through the agent's proxies.
            mesh_stays = any(
                self.sandbox.running(s) and s not in stopping
                for s in (*PROFILES["mesh"], *PROFILES["chaos-queue"])
            )
            agent_pid = (now.get("agent") or {}).get("agent")
            info = self.agent.info() if agent_pid is not None else None
            ours = info is not None and info["pid"] == agent_pid and not mesh_stays
            if ours and self.agent.stop_running()[1]:
                stopped.append("agent")
            self.agent_started, self._agent_pid = False, None
            if stopping:
                stopped += self.sandbox.down(only=stopping)
            self.started.clear()
        return stopped

    # -- `sandbox down` under a run ---------------------------------------------------------

    def _downs(self) -> int | None:
        """How many `chaos-tui sandbox down`s have begun in this state dir (None: unknown)."""
        try:
            return self.sandbox.downs()
        except SandboxError:
            return None

    def taken_down(self) -> bool:
        """`chaos-tui sandbox down` began since this target last ensured its services (a
        fault's heal asks: the agent that held its lease is gone)."""
        if self._downs_seen is None:
            return False
        now = self._downs()
        return now is not None and now != self._downs_seen

    async def wait_gone(self) -> str:
        """Returns once a `sandbox down` begins after this call: the runner calls it as its
        run starts, so each run counts from its own start. (One target serves a console's or
        a suite's many runs: a down under an earlier run is not this run's.)"""
        seen = await asyncio.to_thread(self._downs)
        while True:
            now = await asyncio.to_thread(self._downs)
            if seen is None:
                seen = now
            elif now is not None and now != seen:
                return TAKEN_DOWN
            await asyncio.sleep(GONE_POLL_S)

    def versions(self, profile: str | None = None) -> dict[str, str]:
        return sandbox_versions(profile)

    # -- addresses --------------------------------------------------------------------------
    # A profile's ports are picked when a run of it is planned (or it first starts) and kept,
    # so the plan's probes watch where the services will be; a profile not planned yet has
    # URLs with port 0, which nothing listens on.

    def endpoints(self, profile: str | None = None) -> Endpoints:
        if profile is not None and not self.read_only:
            self.sandbox.reserve_ports([profile])
        return Endpoints(
            postgres_url=self.postgres_url,
            nats_url=self.nats_url,
            opa_url=self.opa_url,
            gateway_url=self.gateway_url,
            collector_url=self.collector_url,
            collector_port=self.collector_port,
            sink_url=self.sink_url,
            sink_auth=None,
            nats_a_url=self.nats_a_url,
            nats_b_url=self.nats_b_url,
            link_monitor_url=self.link_monitor_url,
            domain_a=self.domain_a,
            queue_sentinels=tuple(self._address(s) for s in SENTINELS),
            queue_master=jobs.SENTINEL_MASTER,
            queue_ledger_url=f"redis://{self._address('ledger')}/0",
        )

    def _address(self, port: str) -> str:
        return f"127.0.0.1:{self.sandbox.ports.get(port, 0)}"

    def _url(self, port: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.sandbox.ports.get(port, 0)}"

    @property
    def postgres_url(self) -> str:
        return postgres.url(self.sandbox.ports.get("postgres", 0))

    @property
    def nats_url(self) -> str:
        return nats_server.url(self.sandbox.ports.get("nats", 0))

    @property
    def opa_url(self) -> str:
        return self._url("opa")

    @property
    def gateway_url(self) -> str:
        return self._url("gateway")

    @property
    def collector_url(self) -> str:
        return self._url("otlp_http")

    @property
    def collector_port(self) -> int:
        return self.sandbox.ports.get("otlp_http", 0)

    sink_auth = None  # the sandbox's sink asks for no credentials

    @property
    def sink_url(self) -> str:
        return self._url("sink")

    @property
    def nats_a_url(self) -> str:
        return self._url("nats_a", "nats")

    @property
    def nats_b_url(self) -> str:
        return self._url("nats_b", "nats")

    @property
    def link_monitor_url(self) -> str:
        """sea-b's monitor: it has the one leafnode while the link is up."""
        return self._url("nats_b_monitor")

    @property
    def domain_a(self) -> str:
        return self.settings.platform.domain_a

    def blast_radius(self, profile: str | None = None) -> list[str]:
        lines = []
        for service in services_of(None if profile is None else [profile]):
            rec = self.sandbox.record(service.name)
            where = f"pid {rec.pid}" if rec else "not started yet"
            lines.append(f"sandbox process {service.name}: {service.description} ({where})")
        if profile in (None, "mesh"):
            lines.append(
                f"leafnode link sea-b -> sea-a through agent proxies "
                f"{', '.join(LINK_PROXY.format(i + 1) for i in range(len(mesh_link_ports())))}"
            )
        if profile in (None, "chaos-queue"):
            lines.append(
                "job worker -> Valkey through agent proxies "
                f"{', '.join(QUEUE_PROXY.format(i + 1) for i in range(len(QUEUE_NODES)))} "
                "(the sentinels are asked directly)"
            )
        return lines

    # -- the mesh link ----------------------------------------------------------------------

    async def ensure_mesh_link(self) -> list[ProxyView]:
        """Each leafnode path runs through an agent proxy on the port sea-b dials. Proxies
        live in the agent, so after an agent restart they are made again here."""
        ports = self.sandbox.ports
        made = []
        for i, port_name in enumerate(mesh_link_ports(), start=1):
            made.append(
                await self.agent.ensure_proxy(
                    LINK_PROXY.format(i),
                    f"127.0.0.1:{ports[port_name]}",
                    f"127.0.0.1:{ports['nats_a_leaf']}",
                )
            )
        return made

    async def mesh_linked(self, timeout_s: float = 10.0) -> bool:
        """The link is whole again: every proxy listens and sea-a sees sea-b's leafnode.
        sea-b redials every 250 ms, so this waits (bounded) rather than asking once."""

        async def whole() -> bool:
            proxies = await self.ensure_mesh_link()
            leafs = await asyncio.to_thread(leafz, self.sandbox.ports["nats_a_monitor"])
            return bool(leafs) and all(p.listening for p in proxies)

        return await eventually(whole, timeout_s)

    async def active_link_path(self) -> int:
        """The path (1-based) carrying the leafnode connection now."""
        proxies = {p.name: p for p in await self.agent.proxies()}
        for i in range(1, len(mesh_link_ports()) + 1):
            proxy = proxies.get(LINK_PROXY.format(i))
            if proxy is not None and proxy.connections:
                return i
        raise SandboxError("no leafnode path carries the link: there is no path in use to cut")

    # -- the job queue's broker link ---------------------------------------------------------

    async def ensure_queue_link(self) -> list[ProxyView]:
        """One agent proxy in front of each Valkey node, on the port the job worker dials for
        it. Proxies live in the agent, so after an agent restart they are made again here."""
        ports = self.sandbox.ports
        return [
            await self.agent.ensure_proxy(
                QUEUE_PROXY.format(i),
                f"127.0.0.1:{ports[proxy_port]}",
                f"127.0.0.1:{ports[node]}",
            )
            for i, (node, proxy_port) in enumerate(
                zip(QUEUE_NODES, queue_proxy_ports(), strict=True), start=1
            )
        ]

    async def queue_linked(self) -> bool:
        """Every queue proxy listens (made again if the agent lost them)."""
        return all(p.listening for p in await self.ensure_queue_link())

    def queue_primary(self) -> str:
        """The node the sentinels call primary now (`valkey_1` or `valkey_2`)."""
        ports = self.sandbox.ports
        address = jobs.primary_address([self._address(s) for s in SENTINELS])
        for node in QUEUE_NODES:
            if address == f"127.0.0.1:{ports.get(node)}":
                return node
        raise SandboxError(f"the sentinels name {address} as primary, which is no queue node")

    def broker_link(self, params: BrokerLinkParams) -> Fault:
        """A toxic on every path between the job worker and Valkey."""
        proxies = [QUEUE_PROXY.format(i) for i in range(1, len(QUEUE_NODES) + 1)]
        return SandboxFault(self, **broker_link_lease(params, proxies), verify=self.queue_linked)

    def worker_injectors(self, params: WorkerInjectorParams) -> Fault:
        """Injectors the job workers fetch from the agent and act on while the lease lives."""
        return SandboxFault(self, **worker_inject_lease(params.injectors, params.hold_s))

    # -- faults, applied by the agent -------------------------------------------------------

    def describe(self, service: str) -> str:
        if service == "queue_primary":
            return "the Valkey node the sentinels call primary when the fault lands"
        rec = self.sandbox.record(service)
        return f"sandbox {service}" + (f" (pid {rec.pid})" if rec else "")

    def hard_restart(self, params: ServiceFaultParams) -> Fault:
        """SIGKILL a service and its children (no shutdown, like a power cut), start it again
        at heal time."""
        service, hold_s = params.service, params.hold_s
        return self._service_fault(
            "sandbox.hard_restart",
            "hard_restart",
            service,
            hold_s,
            f"SIGKILL {self.describe(service)} and its children, down {hold_s:g}s, start again",
        )

    def restart(self, params: ServiceFaultParams) -> Fault:
        """Refused: `restart` is a container's `docker restart`, and the sandbox runs its
        parts as processes."""
        raise UsageError(
            f"the sandbox runs {params.service} as a process, not a container, so there is "
            "nothing to `docker restart`: use mode=kill there (its default), or --target docker"
        )

    def stop(self, params: ServiceFaultParams) -> Fault:
        """Stop a service gracefully (like `docker stop`): its port refuses connections."""
        service, hold_s = params.service, params.hold_s
        return self._service_fault(
            "sandbox.stop",
            "stop",
            service,
            hold_s,
            f"stop {self.describe(service)} (SIGTERM) for {hold_s:g}s, start again",
        )

    def pause(self, params: ServiceFaultParams) -> Fault:
        """SIGSTOP a service: its port stays open but nothing answers, like a hung server."""
        service, hold_s = params.service, params.hold_s
        return self._service_fault(
            "sandbox.pause",
            "pause",
            service,
            hold_s,
            f"SIGSTOP {self.describe(service)} for {hold_s:g}s, then SIGCONT",
        )

    def _service_fault(
        self, kind: str, verb: str, service: str, hold_s: float, description: str
    ) -> Fault:
        """A fault on one service, held by the agent as a lease; healed when it answers.
        `queue_primary` is a role: the node the sentinels call primary when the fault lands
        (and the heal waits for that very node)."""
        fault: SandboxFault

        async def primary_now() -> dict:
            return {"service": await asyncio.to_thread(self.queue_primary)}

        async def back() -> bool:
            return await self.service_healthy(fault.params["service"])

        fault = SandboxFault(
            self,
            kind,
            {"service": service},
            name=f"{verb}:{service}",
            description=description,
            hold_s=hold_s,
            verify=back,
            resolve=primary_now if service == "queue_primary" else None,
        )
        return fault

    def cut_link(self, params: LinkCutParams) -> Fault:
        """Cut the leafnode link between sea-b and sea-a: every path (`full`), or only the
        path carrying it when the fault lands (`one-node`), so the link must fail over."""
        scope, hold_s = params.scope, params.hold_s
        paths = len(mesh_link_ports())
        every = [LINK_PROXY.format(i) for i in range(1, paths + 1)]

        async def active_path() -> dict:
            return {"proxies": [LINK_PROXY.format(await self.active_link_path())]}

        one = scope == "one-node"
        return SandboxFault(
            self,
            "proxy.down",
            {"proxies": every},
            name=f"cut_link:{scope}",
            description=(
                f"cut the leafnode path in use (1 of {paths}) between sea-b and sea-a"
                if one
                else f"cut all {paths} leafnode paths between sea-b and sea-a"
            )
            + f" for {hold_s:g}s",
            hold_s=hold_s,
            verify=self.mesh_linked,
            resolve=active_path if one else None,
        )

    async def service_healthy(self, service: str) -> bool:
        """Running and answering. `queue_primary`: some node is primary for the sentinels
        and answers."""
        if service != "queue_primary":
            return await asyncio.to_thread(self.sandbox.healthy, service)
        try:
            node = await asyncio.to_thread(self.queue_primary)
        except (SandboxError, redis.RedisError):
            return False
        return await asyncio.to_thread(self.sandbox.healthy, node)


class SandboxFault(LeasedFault):
    """A leased fault on the sandbox. Once `sandbox down` has taken the sandbox away, the
    agent it stopped healed every lease on its way out (or its successor heals them from the
    journal): the heal then asks the agent once, without starting a new one, and there is no
    service left to verify."""

    def __init__(self, target: SandboxTarget, kind: str, params: dict, **options) -> None:
        super().__init__(target.agent, kind, params, **options)
        self.target = target

    async def heal(self, lease: FaultLease) -> None:
        if not await asyncio.to_thread(self.target.taken_down):
            return await super().heal(lease)
        try:
            await self.agent.heal_lease(lease.lease_id)
        except AgentError:
            pass  # stopping or stopped: `sandbox down` stops the agent, which heals first

    async def verify_healed(self, lease: FaultLease) -> bool:
        if await asyncio.to_thread(self.target.taken_down):
            return True
        return await super().verify_healed(lease)


# The parts whose versions a run of each profile reports: only what that profile runs (an
# OPA run used no PostgreSQL, and its result should not say it did).
PROFILE_PARTS: dict[str, tuple[str, ...]] = {
    "chaos-outbox": ("postgres", "nats"),
    "chaos-opa": ("policy engine",),
    "chaos-observe": ("collector",),
    "mesh": ("nats",),
    "chaos-queue": ("queue",),
}


def sandbox_versions(profile: str | None = None) -> dict[str, str]:
    """What the sandbox runs for this profile (every part when None), read from the installed
    binaries and packages (results carry it, so a change of version can explain a change of
    behaviour)."""
    parts = PROFILE_PARTS.get(profile, ()) if profile else tuple(PART_VERSIONS)
    return {part: part_version(part) for part in parts}


def _binary_version(product: str, command: list[str]) -> str:
    """`PRODUCT VERSION` from what a binary's --version prints: each prints its own name and
    then the version; keep the version (Valkey says `Valkey server v=8.1.8 sha=... bits=64`)."""
    out = subprocess.run(
        command, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL
    )
    text = out.stdout or out.stderr
    words = [w[2:] for w in text.split() if w.startswith("v=")] or text.split()[-1:]
    return f"{product} {words[0]}"


def _rotel_version() -> str:
    """The rotel wheel's own version (what is pinned), with the agent's: rotel 0.0.1a15 ships
    a rotel-agent that calls itself 0.0.1-alpha10, which alone reads as the wrong pin."""
    agent = _binary_version("rotel-agent", [str(collector.binary()), "--version"])
    return f"rotel {importlib.metadata.version('rotel')} ({agent})"


PART_VERSIONS: dict[str, Callable[[], str]] = {
    "nats": lambda: _binary_version("nats-server", [str(nats_server.server_binary()), "--version"]),
    "postgres": lambda: _binary_version(
        "PostgreSQL", [str(postgres.WHEEL_INSTALL / "bin" / "postgres"), "--version"]
    ),
    "collector": _rotel_version,
    "queue": lambda: _binary_version("Valkey", [str(valkey.binary()), "--version"]),
    "policy engine": lambda: f"regopy {importlib.metadata.version('regopy')}",
}
PRODUCTS = {
    "nats": "nats-server",
    "postgres": "PostgreSQL",
    "collector": "rotel",
    "queue": "Valkey",
    "policy engine": "regopy",
}


@functools.cache
def part_version(part: str) -> str:
    """One part's version, read once per process (a binary does not change under a run)."""
    try:
        return PART_VERSIONS[part]()
    except Exception as exc:  # a missing binary is a fact to report, not a crash
        return f"{PRODUCTS[part]} unknown ({exc})"
