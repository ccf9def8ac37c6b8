"""What the agent knows how to break and mend. Each kind checks its parameters up front,
applies, and heals; a heal must be safe to repeat and safe on a fault that never landed.

The book hands each apply and heal the lease itself (its params, what the apply recorded in
`data`, its id and run): an injector that marks what it leaves behind (a Docker sidecar's
labels) reads them there, not from any ambient state."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Protocol, cast

from chaos_tui.agent.protocol import Lease
from chaos_tui.agent.proxy import TOXIC_TYPES, ProxyManager, ProxyProblem, Toxic
from chaos_tui.sandbox.services import BY_NAME
from chaos_tui.sandbox.stack import Sandbox


class Injector(Protocol):
    description: str

    def check(self, target: str, params: dict[str, Any]) -> str | None: ...
    async def apply(self, lease: Lease) -> dict[str, Any]:
        """Break it, as `lease.params` say; returns what the heal will need (`lease.data`)."""
        ...

    async def heal(self, lease: Lease) -> None: ...


def conflicts_of(injector: Injector, params: dict[str, Any]) -> list[str]:
    """The objects a fault of this kind would fight over with another live fault (a service,
    a container): two leases may not hold one at once. Kinds that compose (toxics, counted
    proxy downs) name none. Safe on bad params: the kind's check refuses those."""
    conflicts = getattr(injector, "conflicts", None)
    try:
        return list(conflicts(params)) if conflicts is not None else []
    except Exception:
        return []


class SandboxServiceFault:
    """A fault on one running sandbox service, named by params {"service": NAME}."""

    kind = ""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def check(self, target: str, params: dict[str, Any]) -> str | None:
        if target != "sandbox":
            return f"{self.kind} works on target 'sandbox', not {target!r}"
        if params.get("service") not in BY_NAME or set(params) != {"service"}:
            return f'{self.kind} needs params {{"service": one of {", ".join(BY_NAME)}}}'
        if not self.sandbox.running(params["service"]):
            return f"sandbox {params['service']} is not running: there is nothing to break"
        return None

    def conflicts(self, params: dict[str, Any]) -> list[str]:
        return [f"sandbox service {params['service']}"]


class SandboxHardRestart(SandboxServiceFault):
    """SIGKILL a sandbox service and its children; the heal starts it again."""

    kind = "sandbox.hard_restart"
    description = "SIGKILL a sandbox service and its children; heal starts it again"

    async def apply(self, lease: Lease) -> dict[str, Any]:
        service = lease.params["service"]
        record = self.sandbox.record(service)
        await asyncio.to_thread(self.sandbox.kill, service)
        return {"killed_pid": record.pid if record else None}

    async def heal(self, lease: Lease) -> None:
        await asyncio.to_thread(self.sandbox.start, lease.params["service"])


class SandboxStop(SandboxServiceFault):
    """Stop a sandbox service the polite way (its own shutdown, like `docker stop`); the heal
    starts it again."""

    kind = "sandbox.stop"
    description = "stop a sandbox service gracefully (SIGTERM); heal starts it again"

    async def apply(self, lease: Lease) -> dict[str, Any]:
        stopped = await asyncio.to_thread(self.sandbox.down, [lease.params["service"]])
        return {"stopped": stopped}

    async def heal(self, lease: Lease) -> None:
        await asyncio.to_thread(self.sandbox.start, lease.params["service"])


class SandboxPause(SandboxServiceFault):
    """SIGSTOP a sandbox service: it keeps its sockets but answers nothing; the heal sends
    SIGCONT (or starts it again if it died meanwhile)."""

    kind = "sandbox.pause"
    description = "SIGSTOP a sandbox service and its children; heal sends SIGCONT"

    async def apply(self, lease: Lease) -> dict[str, Any]:
        await asyncio.to_thread(self.sandbox.pause, lease.params["service"])
        return {"paused": True}

    async def heal(self, lease: Lease) -> None:
        service = lease.params["service"]
        if not await asyncio.to_thread(self.sandbox.resume, service):
            await asyncio.to_thread(self.sandbox.start, service)


class ProxyToxic:
    """A toxic on agent proxies (one, or several at once under one lease: every path between
    the job workers and their broker); the heal removes it from each."""

    description = (
        "a toxic on agent proxies: params {proxy: NAME or proxies: [NAME, ...], type, stream, "
        "toxicity, attributes} with Toxiproxy's types " + ", ".join(TOXIC_TYPES)
    )

    in_process = True  # lives in the agent's memory: journalled once it has landed

    def __init__(self, proxies: ProxyManager) -> None:
        self.proxies = proxies

    def check(self, target: str, params: dict[str, Any]) -> str | None:
        unknown = set(params) - {
            "proxy",
            "proxies",
            "name",
            "type",
            "stream",
            "toxicity",
            "attributes",
        }
        if unknown:
            return f"proxy.toxic has no parameter {sorted(unknown)[0]!r}"
        named = proxy_names(params)
        if named is None:
            return (
                'proxy.toxic needs {"proxy": NAME} or {"proxies": [NAME, ...]} (distinct '
                "names), not both"
            )
        try:
            for name in named:
                self.proxies.get(name)
            Toxic.build(
                "check",
                str(params.get("type")),
                params.get("stream", "downstream"),
                params.get("toxicity", 1.0),
                params.get("attributes") or {},
            )
        except (ProxyProblem, TypeError, ValueError) as exc:
            return str(exc)
        return None

    async def apply(self, lease: Lease) -> dict[str, Any]:
        params = lease.params
        name = params.get("name") or f"{params['type']}_{uuid.uuid4().hex[:8]}"
        done: list[str] = []
        try:
            for proxy in proxy_names(params) or []:
                # One toxic each: a toxic holds its own state (its removal event).
                self.proxies.get(proxy).add_toxic(
                    Toxic.build(
                        name,
                        params["type"],
                        params.get("stream", "downstream"),
                        params.get("toxicity", 1.0),
                        params.get("attributes") or {},
                    )
                )
                done.append(proxy)
        except BaseException:
            self._remove(done, name)  # on all of them or none
            raise
        return {"toxic": name, "proxies": done}

    async def heal(self, lease: Lease) -> None:
        toxic = lease.data.get("toxic")
        if toxic:
            # A lease journalled before toxics could span proxies recorded none: its param.
            self._remove(lease.data.get("proxies") or proxy_names(lease.params) or [], toxic)

    def _remove(self, names: list[str], toxic: str) -> None:
        for name in names:
            proxy = self.proxies.proxies.get(str(name))
            if proxy is not None:  # a proxy that is gone took its toxics
                proxy.remove_toxic(toxic)


def proxy_names(params: dict[str, Any]) -> list[str] | None:
    """The proxies a proxy fault names: {"proxy": NAME} or {"proxies": [NAME, ...]} (a
    non-empty list of distinct names); None when the params say neither, or both."""
    if "proxy" in params and "proxies" not in params:
        return [str(params["proxy"])]
    many = params.get("proxies")
    if (
        "proxy" not in params
        and isinstance(many, list)
        and many
        and all(isinstance(n, str) for n in many)
        and len(many) == len(set(many))
    ):
        return list(many)
    return None


class ProxyDown:
    """Proxies stop relaying: their connections drop, new ones are refused. Several proxies
    go down together (one lease), e.g. every path of a link at once."""

    description = "take agent proxies down: params {proxy: NAME} or {proxies: [NAME, ...]}"

    def __init__(self, proxies: ProxyManager) -> None:
        self.proxies = proxies

    @staticmethod
    def names(params: dict[str, Any]) -> list[str]:
        return proxy_names(params) or []

    def check(self, target: str, params: dict[str, Any]) -> str | None:
        if len(params) != 1 or proxy_names(params) is None:
            return (
                'proxy.down needs params {"proxy": NAME} or {"proxies": [NAME, ...]} '
                "(distinct names) and nothing else"
            )
        for name in self.names(params):
            try:
                self.proxies.get(str(name))
            except ProxyProblem as exc:
                return str(exc)
        return None

    async def apply(self, lease: Lease) -> dict[str, Any]:
        down: list[str] = []
        try:
            for name in self.names(lease.params):
                proxy = self.proxies.get(name)
                proxy.downs += 1  # counted: a proxy comes back only when every down is healed
                down.append(name)
                await proxy.set_enabled(False)
        except BaseException:
            await self._bring_back({"down": down})  # all of them or none
            raise
        return {"down": down}

    async def heal(self, lease: Lease) -> None:
        down = lease.data.get("down")
        if down is True:  # a lease journalled before proxies could go down together
            lease.data["down"] = self.names(lease.params)
        await self._bring_back(lease.data)

    async def _bring_back(self, data: dict[str, Any]) -> None:
        down = data.get("down")
        # Each name leaves the list only once its proxy is back (or gone): a heal that fails
        # half-way is retried for the rest, and healing twice never counts twice.
        if not isinstance(down, list):  # nothing went down (or an old lease said True)
            return
        for name in list(down):
            proxy = self.proxies.proxies.get(name)
            if proxy is not None:
                if proxy.downs <= 1:
                    await proxy.set_enabled(True)  # may raise (port taken): retried
                proxy.downs = max(0, proxy.downs - 1)
            down.remove(name)
            data["down"] = down


def injectors_for(sandbox: Sandbox, proxies: ProxyManager) -> dict[str, Injector]:
    from chaos_tui.agent.docker_faults import docker_injectors
    from chaos_tui.agent.process_faults import process_injectors
    from chaos_tui.agent.worker_injectors import WorkerInject

    kinds = cast("dict[str, Injector]", docker_injectors(sandbox.settings.docker))
    kinds.update(cast("dict[str, Injector]", process_injectors()))
    return {
        **kinds,
        "sandbox.hard_restart": SandboxHardRestart(sandbox),
        "sandbox.stop": SandboxStop(sandbox),
        "sandbox.pause": SandboxPause(sandbox),
        "proxy.toxic": ProxyToxic(proxies),
        "proxy.down": ProxyDown(proxies),
        WorkerInject.kind: WorkerInject(),
    }
