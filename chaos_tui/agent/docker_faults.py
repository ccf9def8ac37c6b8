"""Fault kinds on Docker containers, found by their compose project and service labels (the
same for Compose v1 and v2, whatever the container is named). Every Docker Engine call
blocks, so each one runs in a thread. Params: {"project": NAME, "service": NAME}.

    docker.kill    SIGKILL the container; heal starts it again
    docker.stop    stop it (SIGTERM, then SIGKILL after 10 s); heal starts it again
    docker.pause   freeze it (cgroup freezer); heal unpauses it
    docker.netcut  reset every TCP connection on a port of several services' containers
                   (iptables in a one-shot sidecar sharing each one's network namespace);
                   heal removes the rules the same way. Params: {"project", "services": [...],
                   "port", "image" (with iptables)}
"""

from __future__ import annotations

import asyncio
from typing import Any

from chaos_tui.agent.leases import CURRENT_LEASE

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


class DockerUnavailable(Exception):
    pass


_client = None


def docker_client():
    """One Docker client for the agent's life, made on first use."""
    global _client
    if _client is None:
        try:
            import docker

            _client = docker.from_env(timeout=30)
            _client.ping()
        except Exception as exc:
            _client = None
            raise DockerUnavailable(f"the Docker Engine is not reachable: {exc}") from None
    return _client


def find_container(project: str, service: str):
    """The container of this compose service (the first by name if it is scaled), or None."""
    found = docker_client().containers.list(all=True, filters={
        "label": [f"{PROJECT_LABEL}={project}", f"{SERVICE_LABEL}={service}"]})
    return sorted(found, key=lambda c: c.name)[0] if found else None


def sidecar_image_problem(image: str) -> str | None:
    """Why the network-cut sidecar cannot run from this image, or None."""
    try:
        docker_client().images.get(image)
        return None
    except DockerUnavailable as exc:
        return str(exc)
    except Exception:
        return (f"sidecar image {image!r} is not present (it is never pulled): build it with "
                "`docker-compose -f infra/docker/docker-compose.chaos.yml build`, or set "
                "CHAOS_DOCKER__SIDECAR_IMAGE to a local image that has iptables")


class DockerFault:
    kind = ""
    needs_state = "running"  # the container must be in this state to be broken

    def check(self, target: str, params: dict[str, Any]) -> str | None:
        if target != "docker":
            return f"{self.kind} works on target 'docker', not {target!r}"
        if set(params) != {"project", "service"} or not all(
                isinstance(params[k], str) and params[k] for k in ("project", "service")):
            return f"{self.kind} needs params {{\"project\": NAME, \"service\": NAME}}"
        try:
            container = find_container(params["project"], params["service"])
        except DockerUnavailable as exc:
            return str(exc)
        if container is None:
            return (f"no container of compose service {params['service']!r} in project "
                    f"{params['project']!r}")
        if container.status != self.needs_state:
            return f"container {container.name} is {container.status}: there is nothing to break"
        return None

    async def apply(self, params: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(self._apply, params)

    async def heal(self, params: dict[str, Any], data: dict[str, Any]) -> None:
        await asyncio.to_thread(self._heal, params)

    def _container(self, params: dict[str, Any]):
        container = find_container(params["project"], params["service"])
        if container is None:
            raise RuntimeError(f"the container of {params['project']}/{params['service']} is gone")
        return container

    def _apply(self, params: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _heal(self, params: dict[str, Any]) -> None:
        """Whatever the fault did, the container ends up running (and not paused)."""
        container = self._container(params)
        container.reload()
        if container.status == "paused":
            container.unpause()
        elif container.status != "running":
            container.start()


class DockerKill(DockerFault):
    kind = "docker.kill"
    description = "SIGKILL a compose service's container; heal starts it again"

    def _apply(self, params: dict[str, Any]) -> dict[str, Any]:
        container = self._container(params)
        container.kill()
        container.wait(timeout=10)
        return {"container": container.name}


class DockerStop(DockerFault):
    kind = "docker.stop"
    description = "stop a compose service's container (SIGTERM, 10 s grace); heal starts it"

    def _apply(self, params: dict[str, Any]) -> dict[str, Any]:
        container = self._container(params)
        container.stop(timeout=10)
        return {"container": container.name}


class DockerPause(DockerFault):
    kind = "docker.pause"
    description = "freeze a compose service's container (docker pause); heal unpauses it"

    def _apply(self, params: dict[str, Any]) -> dict[str, Any]:
        container = self._container(params)
        container.pause()
        return {"container": container.name}


SIDECAR_LABEL = "chaos-tui.sidecar"


class DockerNetCut:
    """A network cut: REJECT with a TCP reset, both ways, on one port, inside the target's
    network namespace. Resets (not drops) so both ends see the cut at once instead of
    waiting out a ping timeout. Each sidecar runs one command and is removed: nothing of
    ours runs while the cut holds, and a heal's sidecar deletes every copy of the rules."""

    kind = "docker.netcut"
    description = ("reset TCP on a port of compose services' containers (iptables in their "
                   "network namespace); heal removes the rules")

    @staticmethod
    def rules(port: int) -> list[str]:
        reject = "-j REJECT --reject-with tcp-reset"
        return [f"INPUT -p tcp --dport {port} {reject}", f"OUTPUT -p tcp --sport {port} {reject}"]

    def check(self, target: str, params: dict[str, Any]) -> str | None:
        if target != "docker":
            return f"{self.kind} works on target 'docker', not {target!r}"
        services, port = params.get("services"), params.get("port")
        if (set(params) != {"project", "services", "port", "image"}
                or not isinstance(services, list) or not services
                or not all(isinstance(x, str) and x for x in services)
                or isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536
                or not isinstance(params.get("image"), str)):
            return (f"{self.kind} needs params {{\"project\": NAME, \"services\": [NAME, ...], "
                    f"\"port\": 1-65535, \"image\": IMAGE with iptables}}")
        try:
            for service in services:
                container = find_container(params["project"], service)
                if container is None or container.status != "running":
                    return f"{params['project']}/{service} is not running: nothing to cut"
        except DockerUnavailable as exc:
            return str(exc)
        return sidecar_image_problem(params["image"])

    async def apply(self, params: dict[str, Any]) -> dict[str, Any]:
        # Inbound first (no new link can form), then `ss -K` ends the connections already
        # open while their resets can still leave, so both ends notice now and not at their
        # next ping (where the kernel allows it: `|| true`); then outbound. Every service at
        # once: one by one, a link would fail over to a node not yet cut.
        inbound, outbound = self.rules(params["port"])
        script = (f"iptables -I {inbound} && (ss -K state established "
                  f"'( sport = :{params['port']} )' || true) && iptables -I {outbound}")
        await asyncio.gather(*(asyncio.to_thread(self._sidecar, params, service, script)
                               for service in params["services"]))
        return {"cut": list(params["services"])}

    async def heal(self, params: dict[str, Any], data: dict[str, Any]) -> None:
        # Delete every copy, on every service named: safe to repeat, and safe where the
        # apply never got that far. Each service is tried even when another one fails.
        script = "; ".join(f"while iptables -D {rule} 2>/dev/null; do :; done"
                           for rule in self.rules(params["port"])) + "; true"
        outcomes = await asyncio.gather(
            *(asyncio.to_thread(self._sidecar, params, service, script, only_if_running=True)
              for service in params["services"]), return_exceptions=True)
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            raise errors[0]

    def _sidecar(self, params: dict[str, Any], service: str, script: str,
                 only_if_running: bool = False) -> None:
        container = find_container(params["project"], service)
        if only_if_running and (container is None or container.status != "running"):
            return  # no namespace left to hold a rule (a restart starts with none)
        if container is None:
            raise RuntimeError(f"the container of {params['project']}/{service} is gone")
        lease = CURRENT_LEASE.get()
        docker_client().containers.run(
            params["image"], ["sh", "-c", script], remove=True, user="root",
            network_mode=f"container:{container.id}", cap_add=["NET_ADMIN"],
            labels={SIDECAR_LABEL: "netcut", "chaos-tui.target": container.name,
                    "chaos-tui.lease": lease.id if lease else "",
                    "chaos-tui.run": lease.run_id if lease else ""},
        )


def docker_injectors() -> dict[str, DockerFault | DockerNetCut]:
    found: dict[str, DockerFault | DockerNetCut] = {
        cls.kind: cls() for cls in (DockerKill, DockerStop, DockerPause)}
    found[DockerNetCut.kind] = DockerNetCut()
    return found
