"""What the agent knows how to break and mend. Each kind checks its parameters up front,
applies, and heals; a heal must be safe to repeat and safe on a fault that never landed."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Protocol

from chaos_tui.agent.proxy import TOXIC_TYPES, ProxyManager, ProxyProblem, Toxic
from chaos_tui.sandbox.stack import SERVICES, Sandbox


class Injector(Protocol):
    description: str

    def check(self, target: str, params: dict[str, Any]) -> str | None: ...
    async def apply(self, params: dict[str, Any]) -> dict[str, Any]: ...
    async def heal(self, params: dict[str, Any], data: dict[str, Any]) -> None: ...


class SandboxHardRestart:
    """SIGKILL a sandbox service and its children; the heal starts it again."""

    description = "SIGKILL a sandbox service (postgres, nats, relay); heal starts it again"

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def check(self, target: str, params: dict[str, Any]) -> str | None:
        if target != "sandbox":
            return f"sandbox.hard_restart works on target 'sandbox', not {target!r}"
        if params.get("service") not in SERVICES or set(params) != {"service"}:
            return f"sandbox.hard_restart needs params {{\"service\": one of {', '.join(SERVICES)}}}"
        if not self.sandbox.running(params["service"]):
            return f"sandbox {params['service']} is not running: there is nothing to break"
        return None

    async def apply(self, params: dict[str, Any]) -> dict[str, Any]:
        service = params["service"]
        record = self.sandbox.record(service)
        await asyncio.to_thread(self.sandbox.kill, service)
        return {"killed_pid": record.pid if record else None}

    async def heal(self, params: dict[str, Any], data: dict[str, Any]) -> None:
        await asyncio.to_thread(self.sandbox.start, params["service"])


class ProxyToxic:
    """A toxic on one of the agent's proxies; the heal removes it."""

    description = ("a toxic on an agent proxy: params {proxy, type, stream, toxicity, "
                   "attributes} with Toxiproxy's types " + ", ".join(TOXIC_TYPES))

    def __init__(self, proxies: ProxyManager) -> None:
        self.proxies = proxies

    def check(self, target: str, params: dict[str, Any]) -> str | None:
        unknown = set(params) - {"proxy", "name", "type", "stream", "toxicity", "attributes"}
        if unknown:
            return f"proxy.toxic has no parameter {sorted(unknown)[0]!r}"
        try:
            self.proxies.get(str(params.get("proxy")))
            Toxic.build("check", str(params.get("type")), params.get("stream", "downstream"),
                        params.get("toxicity", 1.0), params.get("attributes") or {})
        except (ProxyProblem, TypeError, ValueError) as exc:
            return str(exc)
        return None

    async def apply(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("name") or f"{params['type']}_{uuid.uuid4().hex[:8]}"
        toxic = Toxic.build(name, params["type"], params.get("stream", "downstream"),
                            params.get("toxicity", 1.0), params.get("attributes") or {})
        self.proxies.get(params["proxy"]).add_toxic(toxic)
        return {"toxic": name}

    async def heal(self, params: dict[str, Any], data: dict[str, Any]) -> None:
        proxy = self.proxies.proxies.get(params.get("proxy"))
        if proxy is not None and data.get("toxic"):  # a proxy that is gone took its toxics
            proxy.remove_toxic(data["toxic"])


class ProxyDown:
    """The proxy stops relaying: its connections drop, new ones are refused."""

    description = "take an agent proxy down: params {proxy}"

    def __init__(self, proxies: ProxyManager) -> None:
        self.proxies = proxies

    def check(self, target: str, params: dict[str, Any]) -> str | None:
        if set(params) != {"proxy"}:
            return "proxy.down needs params {\"proxy\": NAME} and nothing else"
        try:
            self.proxies.get(str(params["proxy"]))
        except ProxyProblem as exc:
            return str(exc)
        return None

    async def apply(self, params: dict[str, Any]) -> dict[str, Any]:
        proxy = self.proxies.get(params["proxy"])
        proxy.downs += 1  # counted: the proxy comes back only when every down is healed
        await proxy.set_enabled(False)
        return {"down": True}

    async def heal(self, params: dict[str, Any], data: dict[str, Any]) -> None:
        proxy = self.proxies.proxies.get(params.get("proxy"))
        if proxy is None or not data.get("down"):
            return  # the proxy is gone, or this lease never took it down
        data["down"] = False  # healing twice must not count twice
        proxy.downs = max(0, proxy.downs - 1)
        if proxy.downs == 0:
            await proxy.set_enabled(True)


def injectors_for(sandbox: Sandbox, proxies: ProxyManager) -> dict[str, Injector]:
    return {
        "sandbox.hard_restart": SandboxHardRestart(sandbox),
        "proxy.toxic": ProxyToxic(proxies),
        "proxy.down": ProxyDown(proxies),
    }
