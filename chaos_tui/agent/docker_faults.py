"""Fault kinds on Docker containers, found by their compose project and service labels (the
same for Compose v1 and v2, whatever the container is named). Every Docker Engine call
blocks, so each one runs in a thread. Only the compose projects chaos-tui is configured for
(settings.docker) may be broken, and a sidecar runs only from the configured image.
Params: {"project": NAME, "service": NAME}; or, on target `local`, {"container": NAME}: a
user's own container by its exact name (restart, kill, stop, pause), only the one named.

    docker.restart restart the container now (`docker restart`: SIGTERM, SIGKILL after 10 s,
                   start); heal makes sure it runs
    docker.kill    SIGKILL the container; heal starts it again
    docker.stop    stop it (SIGTERM, then SIGKILL after 10 s); heal starts it again
    docker.pause   freeze it (cgroup freezer); heal unpauses it
    docker.netcut  reset every TCP connection on a port of several services' containers
                   (iptables in a one-shot sidecar sharing each one's network namespace);
                   heal removes the rules the same way. Params: {"project", "services": [...],
                   "port", "image" (with iptables)}; or, on target `local`, {"container":
                   NAME, "ports": [...] (TCP on each, served or dialled; [] = every packet
                   but loopback), "image"}

A heal of a container that is gone (say, `just chaos-down` while a lease was live) is done:
nothing of the fault is left to undo.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from chaos_tui.agent.protocol import Lease
from chaos_tui.docker_engine import (  # noqa: F401  (DockerUnavailable: importable from here)
    BUILD_SIDECAR_HINT,
    PROJECT_LABEL,
    SERVICE_LABEL,
    SIDECAR_LABEL,
    DockerUnavailable,
    docker_client,
    find_container,
    find_named,
    namespace_problem,
    project_problem,
    remove_quietly,
    sidecar_image_problem,
)
from chaos_tui.settings import DockerSettings

SIDECAR_TIMEOUT_S = 30.0  # one iptables script; far longer means the sidecar is stuck


def _named_in_state(name: str, state: str, verb: str) -> tuple[Any, str | None]:
    """The container of exactly this name if it is in this state, else None and why."""
    try:
        container = find_named(name)
    except DockerUnavailable as exc:
        return None, str(exc)
    if container is None:
        return None, f"no container named {name!r}"
    if container.status != state:
        return None, f"container {name} is {container.status}: there is nothing to {verb}"
    return container, None


class DockerFault:
    kind = ""
    needs_state = "running"  # the container must be in this state to be broken

    def __init__(self, docker: DockerSettings) -> None:
        self.projects = (docker.project, docker.mesh_project)

    def check(self, target: str, params: dict[str, Any]) -> str | None:
        if "container" in params:
            return self._check_named(target, params)
        if target != "docker":
            return f"{self.kind} works on target 'docker', not {target!r}"
        if set(params) != {"project", "service"} or not all(
            isinstance(params[k], str) and params[k] for k in ("project", "service")
        ):
            return f'{self.kind} needs params {{"project": NAME, "service": NAME}}'
        if problem := project_problem(self.projects, params["project"]):
            return problem
        try:
            container = find_container(params["project"], params["service"])
        except DockerUnavailable as exc:
            return str(exc)
        if container is None:
            return (
                f"no container of compose service {params['service']!r} in project "
                f"{params['project']!r}"
            )
        if container.status != self.needs_state:
            return f"container {container.name} is {container.status}: there is nothing to break"
        return None

    def _check_named(self, target: str, params: dict[str, Any]) -> str | None:
        """A user's own container, by its exact name (target `local`): only the container
        the lease names is ever touched."""
        if target != "local":
            return f"{self.kind} on a container by name works on target 'local', not {target!r}"
        name = params["container"]
        if set(params) != {"container"} or not isinstance(name, str) or not name:
            return f'{self.kind} needs params {{"container": NAME}}'
        return _named_in_state(name, self.needs_state, "break")[1]

    def conflicts(self, params: dict[str, Any]) -> list[str]:
        if "container" in params:
            return [f"container {params['container']}"]
        return [f"container {params['project']}/{params['service']}"]

    @staticmethod
    def _find(params: dict[str, Any]):
        if "container" in params:
            return find_named(params["container"])
        return find_container(params["project"], params["service"])

    async def apply(self, lease: Lease) -> dict[str, Any]:
        return await asyncio.to_thread(self._apply, lease.params)

    async def heal(self, lease: Lease) -> None:
        await asyncio.to_thread(self._heal, lease.params)

    def _container(self, params: dict[str, Any]):
        container = self._find(params)
        if container is None:
            what = params.get("container") or f"{params['project']}/{params['service']}"
            raise RuntimeError(f"the container {what} is gone")
        return container

    def _apply(self, params: dict[str, Any]) -> dict[str, Any]:
        container = self._container(params)
        self.act(container)
        return {"container": container.name}

    def act(self, container) -> None:
        """Break it: one Docker Engine call (or two) on the container."""
        raise NotImplementedError

    def _heal(self, params: dict[str, Any]) -> None:
        """Whatever the fault did, the container ends up running (and not paused)."""
        container = self._find(params)
        if container is None:
            return  # gone: nothing of the fault is left to undo
        container.reload()
        if container.status == "paused":
            container.unpause()
        elif container.status != "running":
            container.start()


class DockerRestart(DockerFault):
    kind = "docker.restart"
    description = "restart a compose service's container at once (docker restart)"

    def act(self, container) -> None:
        container.restart(timeout=10)


class DockerKill(DockerFault):
    kind = "docker.kill"
    description = "SIGKILL a compose service's container; heal starts it again"

    def act(self, container) -> None:
        container.kill()
        container.wait(timeout=10)


class DockerStop(DockerFault):
    kind = "docker.stop"
    description = "stop a compose service's container (SIGTERM, 10 s grace); heal starts it"

    def act(self, container) -> None:
        container.stop(timeout=10)


class DockerPause(DockerFault):
    kind = "docker.pause"
    description = "freeze a compose service's container (docker pause); heal unpauses it"

    def act(self, container) -> None:
        container.pause()


REJECT = "-j REJECT --reject-with tcp-reset"
MAX_PORTS = 64  # four rules a port, in one sidecar's script
NOT_LOOPBACK = "! dst 127.0.0.0/8 and ! dst [::1]"  # `ss` filter: what a named cut ends


def _is_port(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536


@dataclass(frozen=True)
class Cut:
    """The iptables rules of one cut (INPUT ones go in before `ss -K`, OUTPUT ones after it)
    and the `ss` filter of the connections it ends at once."""

    inbound: tuple[str, ...]
    outbound: tuple[str, ...]
    established: str

    @classmethod
    def of(cls, params: dict[str, Any]) -> Cut:
        """The rules a lease's params mean. A compose cut: the port its services serve, as
        it always was (a heal deletes the rules its apply inserted, to the letter). A named
        container's cut: TCP on each port both as server and as client (its own connections
        to that port elsewhere), or with no port every packet that is not loopback."""
        if "container" not in params:
            return cls._ports([params["port"]], named=False)
        if params["ports"]:
            return cls._ports(params["ports"], named=True)
        # Dropped, not rejected: a reply (reset or ICMP) would have to leave through the
        # outbound rule too. Loopback stays: the container still talks to itself.
        return cls(
            ("INPUT ! -i lo -j DROP",),
            ("OUTPUT ! -o lo -j DROP",),
            f"( {NOT_LOOPBACK} )",
        )

    @classmethod
    def _ports(cls, ports: list[int], named: bool) -> Cut:
        # A named cut keeps loopback (the container still talks to itself), and lets resets
        # through: a reset made by REJECT passes the chains too, and the port's rule the
        # other way would reject it (a REJECT of a reset drops it), so the peer would wait
        # out a timeout instead of being refused at once.
        inn, out = ("! -i lo ", "! -o lo ") if named else ("", "")
        reject = f"! --tcp-flags RST RST {REJECT}" if named else REJECT
        inbound, outbound, ends = [], [], []
        for port in ports:
            inbound.append(f"INPUT {inn}-p tcp --dport {port} {reject}")
            outbound.append(f"OUTPUT {out}-p tcp --sport {port} {reject}")
            ends.append(f"sport = :{port}")
            if named:  # the container as a client of that port elsewhere
                inbound.append(f"INPUT {inn}-p tcp --sport {port} {reject}")
                outbound.append(f"OUTPUT {out}-p tcp --dport {port} {reject}")
                ends.append(f"dport = :{port}")
        established = " or ".join(ends)
        if named:
            established = f"( {established} ) and {NOT_LOOPBACK}"
        return cls(tuple(inbound), tuple(outbound), f"( {established} )")

    @property
    def rules(self) -> tuple[str, ...]:
        return self.inbound + self.outbound

    def apply_script(self) -> str:
        # Inbound first (no new link can form), then `ss -K` ends the connections already
        # open while their resets can still leave, so both ends notice now and not at their
        # next ping (where the kernel allows it: `|| true`); then outbound.
        insert = [f"iptables -I {rule}" for rule in self.inbound]
        insert.append(f"(ss -K state established '{self.established}' || true)")
        insert += [f"iptables -I {rule}" for rule in self.outbound]
        return " && ".join(insert)

    def heal_script(self) -> str:
        # Delete every copy, then fail unless none is left (`iptables -C` says 1 for "no such
        # rule"; anything else is an error). Safe to repeat, and where the apply never got
        # that far.
        return " ; ".join(
            [f"while iptables -D {rule} 2>/dev/null; do :; done" for rule in self.rules]
            + [
                " && ".join(
                    f"{{ iptables -C {rule} 2>/dev/null; test $? -eq 1; }}" for rule in self.rules
                )
            ]
        )


class DockerNetCut:
    """A network cut inside the target's network namespace. On target 'docker': REJECT with
    a TCP reset, both ways, on one port of compose services' containers. On target 'local':
    one container by its exact name, TCP on given ports or all its traffic (see `Cut`).
    Resets (not drops) on ports, and `ss -K` on the connections already open, so the
    container's side sees the cut at once instead of waiting out a ping timeout. Each
    sidecar runs one command and is removed: nothing of ours runs while the cut holds, and a
    heal's sidecar deletes every copy of the rules and fails unless they are gone."""

    kind = "docker.netcut"
    description = (
        "reset TCP on a port of compose services' containers, or cut a named container's "
        "network (ports or all traffic), with iptables in its network namespace; heal "
        "removes the rules"
    )

    def __init__(self, docker: DockerSettings) -> None:
        self.projects = (docker.project, docker.mesh_project)
        # The one image a sidecar may run from: it runs as root with NET_ADMIN.
        self.image = docker.sidecar_image

    def check(self, target: str, params: dict[str, Any]) -> str | None:
        if "container" in params:
            return self._check_named(target, params)
        if target != "docker":
            return f"{self.kind} works on target 'docker', not {target!r}"
        services = params.get("services")
        if (
            set(params) != {"project", "services", "port", "image"}
            or not isinstance(params.get("project"), str)
            or not isinstance(services, list)
            or not services
            or not all(isinstance(x, str) and x for x in services)
            or not _is_port(params.get("port"))
            or not isinstance(params.get("image"), str)
        ):
            return (
                f'{self.kind} needs params {{"project": NAME, "services": [NAME, ...], '
                f'"port": 1-65535, "image": IMAGE with iptables}}'
            )
        if problem := project_problem(self.projects, params["project"]):
            return problem
        if problem := self._not_ours(params["image"]):
            return problem
        try:
            for service in services:
                container = find_container(params["project"], service)
                if container is None or container.status != "running":
                    return f"{params['project']}/{service} is not running: nothing to cut"
        except DockerUnavailable as exc:
            return str(exc)
        return sidecar_image_problem(params["image"])

    def _check_named(self, target: str, params: dict[str, Any]) -> str | None:
        """A user's own container by its exact name (target `local`), and only if a cut of
        its namespace is a cut of that container (not of this machine, nor of another's)."""
        if target != "local":
            return f"{self.kind} on a container by name works on target 'local', not {target!r}"
        name, ports = params.get("container"), params.get("ports")
        if (
            set(params) != {"container", "ports", "image"}
            or not isinstance(name, str)
            or not name
            or not isinstance(ports, list)
            or len(ports) > MAX_PORTS
            or not all(_is_port(p) for p in ports)
            or len(set(ports)) != len(ports)
            or not isinstance(params.get("image"), str)
        ):
            return (
                f'{self.kind} needs params {{"container": NAME, "ports": [1-65535, ...] '
                f'(distinct, at most {MAX_PORTS}; [] for all traffic), "image": IMAGE with '
                "iptables}"
            )
        if problem := self._not_ours(params["image"]):
            return problem
        container, problem = _named_in_state(name, "running", "cut")
        if container is None:
            return problem
        return namespace_problem(container) or sidecar_image_problem(params["image"])

    def _not_ours(self, image: str) -> str | None:
        if image == self.image:
            return None
        return (
            f"sidecar image {image!r} is not the agent's ({self.image!r}); "
            "start the agent with the same CHAOS_DOCKER__SIDECAR_IMAGE"
        )

    def conflicts(self, params: dict[str, Any]) -> list[str]:
        # A heal deletes every copy of its rules: two cuts of one port would heal each other.
        if "container" in params:
            name = params["container"]
            if not params["ports"]:
                return [f"all traffic of container {name}"]
            return [f"port {port} of container {name}" for port in params["ports"]]
        return [f"port {params['port']} of {params['project']}/{s}" for s in params["services"]]

    @staticmethod
    def _targets(params: dict[str, Any]) -> list[str]:
        """The containers a lease cuts, as its params name them."""
        return [params["container"]] if "container" in params else list(params["services"])

    async def apply(self, lease: Lease) -> dict[str, Any]:
        # Every container at once: one by one, a link would fail over to a node not yet cut.
        # All of them are waited for, even when one fails, so the undo that follows comes
        # after every insert.
        await self._on_every_target(lease, Cut.of(lease.params).apply_script(), healing=False)
        return {"cut": self._targets(lease.params)}

    async def heal(self, lease: Lease) -> None:
        # A sidecar of this lease still at work (a dead agent's apply) would insert after
        # this heal: let it finish first.
        await asyncio.to_thread(self._finish_sidecars_of, lease.id)
        # Every container is tried even when another one fails.
        await self._on_every_target(lease, Cut.of(lease.params).heal_script(), healing=True)

    async def _on_every_target(self, lease: Lease, script: str, healing: bool) -> None:
        """The script in a sidecar on every container at once; each one is waited for, even
        when another fails, and then the first failure is raised."""
        outcomes = await asyncio.gather(
            *(
                asyncio.to_thread(self._sidecar, lease, ref, script, healing)
                for ref in self._targets(lease.params)
            ),
            return_exceptions=True,
        )
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            raise errors[0]

    def _sidecar(self, lease: Lease, ref: str, script: str, healing: bool = False) -> None:
        """Run the script as root with NET_ADMIN in the container's network namespace;
        created (never pulled) and always removed by us. Labelled with the lease and its run,
        so a later heal finds a sidecar still at work."""
        import docker

        params = lease.params
        if "container" in params:
            container, what = find_named(ref), f"container {ref}"
        else:
            container, what = find_container(params["project"], ref), f"{params['project']}/{ref}"
        if container is None or container.status not in ("running", "paused"):
            if healing:
                return  # no namespace to hold a rule: a container that starts gets a new one
            raise RuntimeError(f"{what} is not running: nothing to cut")
        try:
            sidecar = docker_client().containers.create(
                params["image"],
                ["sh", "-c", script],
                user="root",
                network_mode=f"container:{container.id}",
                cap_add=["NET_ADMIN"],
                labels={
                    SIDECAR_LABEL: "netcut",
                    "chaos-tui.target": container.name,
                    "chaos-tui.lease": lease.id,
                    "chaos-tui.run": lease.run_id,
                },
            )
        except docker.errors.ImageNotFound:
            if not healing:
                raise RuntimeError(
                    f"sidecar image {params['image']!r} is not present: {BUILD_SIDECAR_HINT}"
                ) from None
            # The last resort: a restarted container has a new network namespace, no rule.
            container.restart(timeout=10)
            return
        try:
            sidecar.start()
            code = sidecar.wait(timeout=SIDECAR_TIMEOUT_S)["StatusCode"]
            if code != 0:
                said = sidecar.logs().decode(errors="replace").strip()[-300:]
                raise RuntimeError(f"the sidecar on {container.name} exited {code}: {said}")
        finally:
            remove_quietly(sidecar)

    @staticmethod
    def _finish_sidecars_of(lease_id: str) -> None:
        for sidecar in docker_client().containers.list(
            all=True, filters={"label": [SIDECAR_LABEL, f"chaos-tui.lease={lease_id}"]}
        ):
            try:
                if sidecar.status == "running":
                    sidecar.wait(timeout=SIDECAR_TIMEOUT_S)
            except Exception:
                pass  # stuck: removed below all the same
            remove_quietly(sidecar)


def docker_injectors(docker: DockerSettings) -> dict[str, DockerFault | DockerNetCut]:
    """The docker fault kinds, allowed to break only the configured compose projects."""
    kinds = (DockerRestart, DockerKill, DockerStop, DockerPause, DockerNetCut)
    return {cls.kind: cls(docker) for cls in kinds}
