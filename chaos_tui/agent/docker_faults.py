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
                   "port", "image" (with iptables)}

A heal of a container that is gone (say, `just chaos-down` while a lease was live) is done:
nothing of the fault is left to undo.
"""

from __future__ import annotations

import asyncio
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
    project_problem,
    remove_quietly,
    sidecar_image_problem,
)
from chaos_tui.settings import DockerSettings

SIDECAR_TIMEOUT_S = 30.0  # one iptables script; far longer means the sidecar is stuck


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
        try:
            container = find_named(name)
        except DockerUnavailable as exc:
            return str(exc)
        if container is None:
            return f"no container named {name!r}"
        if container.status != self.needs_state:
            return f"container {name} is {container.status}: there is nothing to break"
        return None

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


class DockerNetCut:
    """A network cut: REJECT with a TCP reset, both ways, on one port, inside the target's
    network namespace. Resets (not drops) so both ends see the cut at once instead of
    waiting out a ping timeout. Each sidecar runs one command and is removed: nothing of
    ours runs while the cut holds, and a heal's sidecar deletes every copy of the rules and
    fails unless they are gone."""

    kind = "docker.netcut"
    description = (
        "reset TCP on a port of compose services' containers (iptables in their "
        "network namespace); heal removes the rules"
    )

    def __init__(self, docker: DockerSettings) -> None:
        self.projects = (docker.project, docker.mesh_project)
        # The one image a sidecar may run from: it runs as root with NET_ADMIN.
        self.image = docker.sidecar_image

    @staticmethod
    def rules(port: int) -> list[str]:
        reject = "-j REJECT --reject-with tcp-reset"
        return [f"INPUT -p tcp --dport {port} {reject}", f"OUTPUT -p tcp --sport {port} {reject}"]

    def check(self, target: str, params: dict[str, Any]) -> str | None:
        if target != "docker":
            return f"{self.kind} works on target 'docker', not {target!r}"
        services, port = params.get("services"), params.get("port")
        if (
            set(params) != {"project", "services", "port", "image"}
            or not isinstance(params.get("project"), str)
            or not isinstance(services, list)
            or not services
            or not all(isinstance(x, str) and x for x in services)
            or isinstance(port, bool)
            or not isinstance(port, int)
            or not 0 < port < 65536
            or not isinstance(params.get("image"), str)
        ):
            return (
                f'{self.kind} needs params {{"project": NAME, "services": [NAME, ...], '
                f'"port": 1-65535, "image": IMAGE with iptables}}'
            )
        if problem := project_problem(self.projects, params["project"]):
            return problem
        if params["image"] != self.image:
            return (
                f"sidecar image {params['image']!r} is not the agent's ({self.image!r}); "
                "start the agent with the same CHAOS_DOCKER__SIDECAR_IMAGE"
            )
        try:
            for service in services:
                container = find_container(params["project"], service)
                if container is None or container.status != "running":
                    return f"{params['project']}/{service} is not running: nothing to cut"
        except DockerUnavailable as exc:
            return str(exc)
        return sidecar_image_problem(params["image"])

    def conflicts(self, params: dict[str, Any]) -> list[str]:
        # A heal deletes every copy of its rules: two cuts of one port would heal each other.
        return [f"port {params['port']} of {params['project']}/{s}" for s in params["services"]]

    async def apply(self, lease: Lease) -> dict[str, Any]:
        params = lease.params
        # Inbound first (no new link can form), then `ss -K` ends the connections already
        # open while their resets can still leave, so both ends notice now and not at their
        # next ping (where the kernel allows it: `|| true`); then outbound. Every service at
        # once: one by one, a link would fail over to a node not yet cut. All of them are
        # waited for, even when one fails, so the undo that follows comes after every insert.
        inbound, outbound = self.rules(params["port"])
        script = (
            f"iptables -I {inbound} && (ss -K state established "
            f"'( sport = :{params['port']} )' || true) && iptables -I {outbound}"
        )
        await self._on_every_service(lease, script, healing=False)
        return {"cut": list(params["services"])}

    async def heal(self, lease: Lease) -> None:
        params = lease.params
        # A sidecar of this lease still at work (a dead agent's apply) would insert after
        # this heal: let it finish first.
        await asyncio.to_thread(self._finish_sidecars_of, lease.id)
        # Delete every copy, then fail unless none is left (`iptables -C` says 1 for "no such
        # rule"; anything else is an error). Safe to repeat, and where the apply never got
        # that far. Every service is tried even when another one fails.
        rules = self.rules(params["port"])
        script = " ; ".join(
            [f"while iptables -D {rule} 2>/dev/null; do :; done" for rule in rules]
            + [
                " && ".join(
                    f"{{ iptables -C {rule} 2>/dev/null; test $? -eq 1; }}" for rule in rules
                )
            ]
        )
        await self._on_every_service(lease, script, healing=True)

    async def _on_every_service(self, lease: Lease, script: str, healing: bool) -> None:
        """The script in a sidecar on every service at once; each one is waited for, even when
        another fails, and then the first failure is raised."""
        outcomes = await asyncio.gather(
            *(
                asyncio.to_thread(self._sidecar, lease, service, script, healing)
                for service in lease.params["services"]
            ),
            return_exceptions=True,
        )
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            raise errors[0]

    def _sidecar(self, lease: Lease, service: str, script: str, healing: bool = False) -> None:
        """Run the script as root with NET_ADMIN in the service container's network
        namespace; created (never pulled) and always removed by us. Labelled with the lease
        and its run, so a later heal finds a sidecar still at work."""
        import docker

        params = lease.params
        container = find_container(params["project"], service)
        if container is None or container.status not in ("running", "paused"):
            if healing:
                return  # no namespace to hold a rule: a container that starts gets a new one
            raise RuntimeError(f"{params['project']}/{service} is not running: nothing to cut")
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
