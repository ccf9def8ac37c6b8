"""The Docker Engine as chaos-tui sees it: one client, compose containers found by their
project and service labels (the same for Compose v1 and v2, whatever a container is named),
and the checks both the agent's docker faults and the Docker target make. The docker SDK is
imported on first use: a run on the sandbox never loads it.
"""

from __future__ import annotations

from chaos_tui.core.errors import TargetError

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
SIDECAR_LABEL = "chaos-tui.sidecar"
BUILD_SIDECAR_HINT = (
    "build it with `just chaos-build`, or set CHAOS_DOCKER__SIDECAR_IMAGE to a "
    "local image that has iptables"
)


class DockerUnavailable(TargetError):
    """No Docker Engine answers (the Docker target says so as its own failure)."""


_client = None


def docker_client():
    """One Docker client for the life of the process, made on first use."""
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
    found = docker_client().containers.list(
        all=True, filters={"label": [f"{PROJECT_LABEL}={project}", f"{SERVICE_LABEL}={service}"]}
    )
    return sorted(found, key=lambda c: c.name)[0] if found else None


def compose_gateways(projects: tuple[str, ...]) -> set[str]:
    """The gateway addresses (this host's side of the bridge) of every network of these
    compose projects; none when no Docker Engine answers."""
    try:
        networks = [
            network
            for project in projects
            for network in docker_client().networks.list(
                filters={"label": [f"{PROJECT_LABEL}={project}"]}
            )
        ]
    except Exception:  # no engine, or it failed to answer: no gateway is allowed then
        return set()
    return {
        config["Gateway"]
        for network in networks
        for config in (network.attrs.get("IPAM") or {}).get("Config") or []
        if config.get("Gateway")
    }


def sidecar_image_problem(image: str) -> str | None:
    """Why the network-cut sidecar cannot run from this image, or None."""
    import docker

    try:
        docker_client().images.get(image)
        return None
    except DockerUnavailable as exc:
        return str(exc)
    except docker.errors.ImageNotFound:
        return f"sidecar image {image!r} is not present (it is never pulled): {BUILD_SIDECAR_HINT}"


def project_problem(projects: tuple[str, ...], project: str) -> str | None:
    if project in projects:
        return None
    return (
        f"compose project {project!r} is not one chaos-tui may break ({', '.join(projects)}; "
        "set CHAOS_DOCKER__PROJECT / CHAOS_DOCKER__MESH_PROJECT for the agent)"
    )


def remove_quietly(container) -> None:
    """Remove a container, running or not; one that is already gone is fine."""
    import docker

    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass


def find_named(name: str):
    """The container with exactly this name (a user's own, named in their scenario file), or
    None. Sidecars of ours are never "the user's" container."""
    import docker

    try:
        container = docker_client().containers.get(name)
    except docker.errors.NotFound:
        return None
    if container.name != name.lstrip("/") or SIDECAR_LABEL in (container.labels or {}):
        return None  # an id or a prefix matched, or one of our own sidecars
    return container


def namespace_problem(container) -> str | None:
    """Why a cut of this container's network namespace (iptables in it, from a sidecar)
    would not be a cut of this one container, or None. Rules in the host's namespace would
    cut this machine; a namespace borrowed from another container is that one's."""
    mode = (container.attrs.get("HostConfig") or {}).get("NetworkMode") or ""
    if mode == "host":
        return f"container {container.name} uses the host's network: a cut would cut this machine"
    if mode.startswith("container:"):
        owner = mode.removeprefix("container:")
        owner = owner[:12] if len(owner) == 64 else owner  # an id, shown short
        return f"container {container.name} uses the network of container {owner}: cut that one"
    networks = (container.attrs.get("NetworkSettings") or {}).get("Networks") or {}
    if any(net.get("GlobalIPv6Address") for net in networks.values()):
        # iptables rules are IPv4's: its IPv6 traffic would go on as if nothing were cut.
        return f"container {container.name} has an IPv6 address, which the cut would not cover"
    return None


def namespace_sharers(container) -> list[str]:
    """The other containers living in this one's network namespace (`--network
    container:...`): a cut of it cuts them too. Our own sidecars are not counted."""
    # The Engine may keep the name the sharer was created with, or the id.
    sharing = {f"container:{container.id}", f"container:{container.name}"}
    found = []
    for listed in docker_client().containers.list(sparse=True):
        attrs = listed.attrs  # sparse: the list's fields, `Names` and no `Name`
        if (attrs.get("HostConfig") or {}).get("NetworkMode") in sharing and SIDECAR_LABEL not in (
            attrs.get("Labels") or {}
        ):
            found.append((attrs.get("Names") or ["?"])[0].lstrip("/"))
    return sorted(found)
