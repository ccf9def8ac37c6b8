"""The `local` target: the user's own system on this machine. Its parts are whatever a
scenario file names: processes (by the port they listen on, or a pid file), containers on
the local Docker Engine (by exact name), and network paths through a proxy of the agent's
that the run opens (the user points their client at its listen address).

Every fault is a lease the agent holds, with a TTL, so it heals even if the console dies.
What a fault will touch is resolved when the run is planned (shown in the detail view and the
confirmation): exact pids with their start time, a container that exists, a proxy address
that is free; a name that resolves to nothing is bad input, refused before anything starts.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from chaos_tui.agent.client import AgentClient
from chaos_tui.core.contracts import Fault, Probe, Target
from chaos_tui.core.errors import UsageError
from chaos_tui.core.injector_spec import InjectorSpec
from chaos_tui.core.procinfo import from_pid_file, is_chaos_machinery, listeners
from chaos_tui.faults.leased import LeasedFault, worker_inject_lease
from chaos_tui.probes.agent_probe import AgentProbe
from chaos_tui.sandbox.usage import Users
from chaos_tui.settings import Settings

PROCESS_SIGNALS = {
    "process.kill": "SIGKILL",
    "process.terminate": "SIGTERM",
    "process.pause": "SIGSTOP",
}
LOOPBACK = ("127.0.0.1", "localhost", "::1")  # where the agent's proxies may listen
CONTAINER_KINDS = ("docker.kill", "docker.stop", "docker.pause", "docker.restart")


@dataclass(frozen=True)
class ProxySpec:
    """A proxy the run opens: clients connect to `listen`, it relays to `upstream`."""

    name: str
    listen: str
    upstream: str


def host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def _is_this_machine(host: str) -> bool:
    """Loopback or the wildcard, however written (127.1, 0, LOCALHOST, ::1); a name that does
    not resolve is not."""
    try:
        infos = socket.getaddrinfo(host.lower(), None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = {ipaddress.ip_address(info[4][0]) for info in infos}
    return any(a.is_loopback or a.is_unspecified for a in addresses)


def _held_by(port: int) -> str:
    """Who listens there, when it is a chaos-tui agent (one a killed run left behind)."""
    for pid, _ in listeners(port):
        if is_chaos_machinery(pid):
            return (
                f" by a chaos-tui fault agent (pid {pid}), left by a run that was killed? "
                "`chaos-tui agent stop` in its state dir frees it"
            )
    return ""


def port_is_free(listen: str) -> bool:
    """Whether the proxy could listen here. Bound as the agent's proxy binds (asyncio's
    servers set SO_REUSEADDR): connections a previous run's proxy closed linger in TIME_WAIT
    on this port for a minute, and they must not make it look taken; a listener still does."""
    host, port = host_port(listen)
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class LocalTarget(Target):
    """The user's own processes, containers and network paths (target `local`)."""

    name: ClassVar[str] = "local"
    is_sandbox: ClassVar[bool] = False
    read_only = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.agent = AgentClient(settings)
        self.agent_started = False
        self._agent_pid: int | None = None
        self._agent_users = Users(settings.state_dir, "agent")
        self.proxies: dict[int, ProxySpec] = {}  # by listen port: the ones faults need
        self._opened: list[str] = []  # proxy names this target made, to delete at the end

    # -- the Target contract ------------------------------------------------------------------

    async def ensure_up(self, profile: str | None = None) -> None:
        """The agent (it holds every fault), and the proxies the faults need, open and idle.
        The agent is shared with whatever else uses this state dir (a sandbox run, `sandbox
        up`): its users are counted as the sandbox's are, and only the last one stops it."""
        self._agent_users.join()
        if await self.agent.ensure():  # cancelled, it stops what it spawned itself
            self.agent_started = True
            info = self.agent.info()
            self._agent_pid = info["pid"] if info else None
        for spec in self.proxies.values():
            await self.agent.ensure_proxy(spec.name, spec.listen, spec.upstream)
            if spec.name not in self._opened:
                self._opened.append(spec.name)

    def probes(self) -> list[Probe]:
        return [AgentProbe("agent", self.agent)]

    def stop_what_we_started(self, keep_sandbox: bool) -> list[str]:
        """The proxies this target opened, then the agent if it started it."""
        stopped: list[str] = []

        async def close() -> None:
            for name in self._opened:
                await self.agent.delete_proxy(name)
                stopped.append(f"proxy {name}")

        if self._opened and self.agent.info() is not None:
            try:
                asyncio.run(close())
            except Exception:  # the agent going away takes its proxies with it
                pass
        self._opened.clear()
        behind = {"agent": self._agent_pid} if self._agent_pid is not None else {}
        with self._agent_users.leaving(behind) as now:
            # None: another user still needs it (it is theirs to stop); kept: `sandbox up`.
            pid = None if now is None or self._agent_users.kept else now.get("agent")
            info = self.agent.info() if pid is not None else None
            if info is not None and info["pid"] == pid and self.agent.stop_running()[1]:
                stopped.append("agent")
        self.agent_started, self._agent_pid = False, None
        return stopped

    # -- faults ---------------------------------------------------------------------------------

    def process_fault(
        self,
        kind: str,
        *,
        listening_on: int | None = None,
        pid_file: str | Path | None = None,
        restart: str | None = None,
        hold_s: float,
    ) -> Fault:
        """SIGKILL / SIGTERM / SIGSTOP the exact processes named now (pid + start time)."""
        touches: list[str] = []
        if kind not in PROCESS_SIGNALS:
            raise UsageError(
                f"unknown process fault {kind!r} (known: {', '.join(PROCESS_SIGNALS)})"
            )
        if (listening_on is None) == (pid_file is None):
            raise UsageError("a process target is {listening_on: PORT} or {pid_file: PATH}")
        if restart and kind == "process.pause":
            raise UsageError("a pause is undone by SIGCONT at the heal: it takes no restart")
        if listening_on is not None:
            named = listeners(listening_on)
            what = f"the process(es) listening on port {listening_on}"
            if not named:
                raise UsageError(f"nothing listens on port {listening_on} (as this user sees it)")
        else:
            try:
                named = [from_pid_file(str(pid_file))]
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            what = f"the process in {pid_file}"
        for pid, _ in named:
            if pid in (1, os.getpid()) or is_chaos_machinery(pid):
                raise UsageError(
                    f"{what} include pid {pid} ({_command_line(pid)[:80]}): init, chaos-tui or "
                    "its fault agent, which no fault may touch"
                )
            touches.append(f"process {pid}: {_command_line(pid)}")
        if restart:
            touches.append(f"command run by the agent at the heal: {restart}")
        params: dict = {"pids": [list(p) for p in named]}
        if restart:
            params["restart"] = restart
        return _touching(
            touches,
            LeasedFault(
                self.agent,
                kind,
                params,
                name=f"{kind.split('.')[1]}:{listening_on or Path(str(pid_file)).name}",
                description=f"{PROCESS_SIGNALS[kind]} {what} for {hold_s:g}s",
                hold_s=hold_s,
            ),
        )

    def container_fault(self, kind: str, container: str, *, hold_s: float) -> Fault:
        """Kill, stop, pause or restart the container of exactly this name."""
        if kind not in CONTAINER_KINDS:
            raise UsageError(
                f"unknown container fault {kind!r} (known: {', '.join(CONTAINER_KINDS)})"
            )
        found = _named_container(container)
        return _touching(
            [f"container {container} ({found.short_id})"],
            LeasedFault(
                self.agent,
                kind,
                {"container": container},
                name=f"{kind.split('.')[1]}:{container}",
                description=f"{kind.split('.')[1]} container {container} for {hold_s:g}s",
                hold_s=hold_s,
            ),
        )

    def partition_fault(self, container: str, *, ports: list[int] | None, hold_s: float) -> Fault:
        """Cut the network of the container of exactly this name: TCP on these ports, both
        to them and from the container to them elsewhere (reset), or with no port every packet
        in and out but loopback (dropped). The agent puts iptables rules in the container's
        network namespace from a one-shot sidecar of the configured image, and removes them
        at the heal."""
        wanted = list(dict.fromkeys(ports or []))  # [] means what None does: all traffic
        for port in wanted:
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                raise UsageError(f"a port is a number from 1 to 65535, not {port!r}")
        from chaos_tui.docker_engine import (
            namespace_problem,
            namespace_sharers,
            sidecar_image_problem,
        )

        found = _named_container(container)
        if found.status != "running":
            raise UsageError(f"container {container} is {found.status}: there is no network to cut")
        image = self.settings.docker.sidecar_image
        if problem := namespace_problem(found) or sidecar_image_problem(image):
            raise UsageError(problem)
        what = f"ports {', '.join(map(str, wanted))}" if wanted else "all traffic but loopback"
        cut = f"on {what}" if wanted else f"of {what}"
        touches = [f"container {container} ({found.short_id}): network cut {cut}"]
        touches += [
            f"container {c}: in its network namespace, cut too" for c in (namespace_sharers(found))
        ]
        return _touching(
            touches,
            LeasedFault(
                self.agent,
                "docker.netcut",
                {"container": container, "ports": wanted, "image": image},
                name=f"partition:{container}",
                description=f"cut {what} of container {container} for {hold_s:g}s",
                hold_s=hold_s,
            ),
        )

    def proxy_fault(
        self,
        toxic: str,
        *,
        listen: str,
        upstream: str,
        attributes: dict | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        hold_s: float,
    ) -> Fault:
        """A toxic (latency, bandwidth, timeout, reset_peer, slicer, limit_data) or `down` on
        a proxy the run opens between the user's client (at `listen`) and `upstream`."""
        touches: list[str] = []
        listen_host, listen_port = host_port(listen)
        upstream_host, upstream_port = host_port(upstream)
        # What the agent would refuse at injection, refused now, before anything starts.
        if listen_host.lower() not in LOOPBACK:
            raise UsageError(
                f"proxy listen address {listen}: the run's proxies listen on loopback only "
                f"({', '.join(LOOPBACK)})"
            )
        if upstream_port == listen_port and _is_this_machine(upstream_host):
            raise UsageError(f"proxy {listen} would relay to itself (upstream {upstream})")
        # By port: one port spelled two ways (localhost, 127.0.0.1) is one proxy.
        spec = self.proxies.get(listen_port)
        if spec is None:
            if not port_is_free(listen):
                raise UsageError(
                    f"proxy listen address {listen} is already taken{_held_by(listen_port)}"
                )
            spec = ProxySpec(f"local-{listen_port}", listen, upstream)
            self.proxies[listen_port] = spec
        elif spec.upstream != upstream:
            raise UsageError(f"proxy {listen} is given two upstreams ({spec.upstream}, {upstream})")
        # Said by every plan of it, not only the first: the console plans a scenario again
        # each time it is shown, and a run after the first one uses the proxy just the same.
        touches.append(f"proxy {listen} -> {upstream} (opened for the run)")
        params: dict[str, object]
        if toxic == "down":
            kind, params = "proxy.down", {"proxy": spec.name}
        else:
            kind = "proxy.toxic"
            params = {
                "proxy": spec.name,
                "type": toxic,
                "stream": stream,
                "toxicity": toxicity,
                "attributes": dict(attributes or {}),
            }
        return _touching(
            touches,
            LeasedFault(
                self.agent,
                kind,
                params,
                name=f"{toxic}:{listen}",
                description=f"{toxic} on {listen} -> {upstream} for {hold_s:g}s",
                hold_s=hold_s,
            ),
        )

    def worker_injectors(self, injectors: tuple[InjectorSpec, ...], hold_s: float) -> Fault:
        """Injectors for the user's own job workers (they import chaos_tui.inject and ask
        this state dir's agent, or CHAOS_AGENT_URL with its token), held as one lease."""
        return _touching(
            [
                "your own job workers that ask this state dir's fault agent for injectors "
                f"({self.settings.state_dir}; chaos_tui.inject): "
                + "; ".join(spec.describe() for spec in injectors)
            ],
            LeasedFault(self.agent, **worker_inject_lease(injectors, hold_s)),
        )


def _named_container(name: str):
    """The container of exactly this name on the local Docker Engine, or a UsageError."""
    from chaos_tui.docker_engine import DockerUnavailable, find_named

    try:
        found = find_named(name)
    except DockerUnavailable as exc:
        raise UsageError(str(exc)) from None
    if found is None:
        raise UsageError(f"no container named {name!r} on the local Docker Engine")
    return found


def _touching(touches: list[str], fault: Fault) -> Fault:
    """The fault, naming the exact things it breaks (the plan adds them to the blast radius)."""
    fault.touches = tuple(touches)
    return fault


def _command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)[:200]
