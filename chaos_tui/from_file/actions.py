"""A file's `actions` as faults on a target. On `local` they name the user's own processes,
containers and network paths; on the platform's targets (sandbox, docker) a container action
names one of the platform's parts (`target: postgres`), as the seed's config does.

Each fault is resolved here, when the run is planned: exact pids, a container that exists, a
proxy address that is free. A name that resolves to nothing is bad input, refused before
anything is injected."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import ValidationError

from chaos_tui import plugins
from chaos_tui.core.contracts import Fault, Target
from chaos_tui.core.errors import UsageError
from chaos_tui.core.platform_target import (
    BrokerLinkParams,
    LinkCutParams,
    PlatformTarget,
    ServiceFaultParams,
    ServiceName,
    WorkerInjectorParams,
)
from chaos_tui.faults.leased import TTL_MARGIN_S
from chaos_tui.scenario_file import model as m
from chaos_tui.targets.local import LocalTarget

PROCESS_KINDS = {
    "kill_process": "process.kill",
    "terminate_process": "process.terminate",
    "pause_process": "process.pause",
}
CONTAINER_KINDS = {
    "kill_container": "docker.kill",
    "stop_container": "docker.stop",
    "pause_container": "docker.pause",
    "restart_container": "docker.restart",
}
# The seed's and the compose file's names for the platform's parts.
PART_ALIASES: dict[str, str] = {
    **{part: part for part in get_args(ServiceName)},
    "openobserve": "sink",
    "otel-collector": "collector",
    "otel_collector": "collector",
    "policy-gateway": "gateway",
    "outbox-relay": "relay",
    # The job queue: the Valkey node the sentinels call primary when the fault lands, and
    # the reference job worker (its supervisor restarts it).
    "valkey_primary": "queue_primary",
    "valkey-primary": "queue_primary",
    "job-worker": "job_worker",
}

TOXIC_ATTRIBUTES = {
    "latency": ("latency", "jitter"),
    "bandwidth": ("rate",),
    "timeout": ("timeout",),
    "reset_peer": ("timeout",),
    "slicer": ("average_size", "size_variation", "delay"),
    "limit_data": ("bytes",),
    "down": (),
}


def platform_part(action: m.ActionBase) -> str | None:
    """The platform part a container or partition action names, if it names one; the job
    queue's broker link (`queue_link`) or its workers for a toxic on `target: valkey` and a
    worker injector."""
    if isinstance(action, m.ContainerAction | m.PartitionAction):
        return PART_ALIASES.get(action.target)
    if isinstance(action, m.ProxyActionBase) and action.target is not None:
        return "queue_link"
    if isinstance(action, m.WorkerInjectorAction):
        return "job_worker" if action.target == "job_worker" else None
    return None


def build_fault(action: m.ActionBase, target: Target, hold_s: float) -> Fault:
    """The fault of one action on this target, its TTL the file's `ttl_seconds` if given."""
    if isinstance(action, m.PluginActionBase):
        fault = plugin_fault(action, target, hold_s)
    elif isinstance(target, LocalTarget):
        fault = _on_local(action, target, hold_s)
    elif isinstance(target, PlatformTarget):
        try:
            fault = _on_platform(action, target, hold_s)
        except NotImplementedError as exc:  # a target without the job queue's faults
            raise UsageError(f"{action.TAGS[0]}: {exc}") from None
        except ValidationError as exc:  # what the target contract bounds (a hold over 600 s)
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise UsageError(f"{action.TAGS[0]} on {target.name}: {where}: {err['msg']}") from None
    else:
        raise UsageError(f"target {target.name!r} takes no scenario file actions")
    if action.ttl_seconds is not None:
        fault.ttl_s = action.ttl_seconds
    return fault


def plugin_fault(action: m.PluginActionBase, target: Target, hold_s: float) -> Fault:
    """A plugin type's fault, on whatever target the run has: its `build(params, target,
    hold_s)`, checked to be a Fault, held as the file says and leased at least that long."""
    plugin = action.PLUGIN
    fault = plugins.call(plugin, "build", plugin.obj.build, action.params, target, hold_s)
    if not isinstance(fault, Fault):
        raise plugins.PluginError(
            f"{plugin.describe()}: build returned {type(fault).__name__}, not a Fault"
        )
    fault.hold_s = hold_s
    fault.ttl_s = max(fault.ttl_s, hold_s + TTL_MARGIN_S)  # as the agent's own leases
    return fault


def _on_local(action: m.ActionBase, target: LocalTarget, hold_s: float) -> Fault:
    if isinstance(action, m.ProcessAction):
        restart = action.restart
        if restart is not None:
            check_executable(restart)
        return target.process_fault(
            PROCESS_KINDS[action.type],
            listening_on=action.target.listening_on,
            pid_file=action.target.pid_file,
            restart=restart,
            hold_s=hold_s,
        )
    if isinstance(action, m.ContainerAction):
        kind = CONTAINER_KINDS[action.type]
        if action.type == "restart_container" and not action.graceful:
            kind = "docker.kill"  # the seed's hard restart: killed, started again at the heal
        return target.container_fault(kind, action.target, hold_s=hold_s)
    if isinstance(action, m.PartitionAction):
        return target.partition_fault(action.target, ports=action.ports, hold_s=hold_s)
    if isinstance(action, m.WorkerInjectorAction) and action.target == "own":
        return target.worker_injectors(tuple(spec.spec() for spec in action.injectors), hold_s)
    if isinstance(action, m.ProxyActionBase) and action.proxy is not None:
        toxic = action.TAGS[0]
        attributes: dict[str, Any] = {a: getattr(action, a) for a in TOXIC_ATTRIBUTES[toxic]}
        return target.proxy_fault(
            toxic,
            listen=action.proxy.listen,
            upstream=action.proxy.upstream,
            attributes=attributes,
            stream=action.stream,
            toxicity=action.toxicity,
            hold_s=hold_s,
        )
    raise UsageError(
        f"{action.TAGS[0]} names the job queue of the platform (target: {m.BROKER_LINK}, "
        "worker injectors): it runs on --target sandbox or docker, not local"
    )


def _on_platform(action: m.ActionBase, target: PlatformTarget, hold_s: float) -> Fault:
    parts = ", ".join(sorted(PART_ALIASES))
    where = f"on target {target.name}"
    if isinstance(action, m.PartitionAction):
        if platform_part(action) != "nats":
            raise UsageError(
                f"network_partition {where} cuts the NATS mesh link: target: nats "
                f"(not {action.target!r})"
            )
        if action.ports:
            raise UsageError(f"network_partition {where} cuts the whole link: give no ports")
        return target.cut_link(LinkCutParams(hold_s=hold_s))
    if isinstance(action, m.ContainerAction):
        part = platform_part(action)
        if part is None:
            raise UsageError(
                f"{action.type} {where} names a part of the platform ({parts}), "
                f"not {action.target!r}; the user's own containers are on --target local"
            )
        params = ServiceFaultParams(service=part, hold_s=hold_s)  # type: ignore[arg-type]
        if action.type == "pause_container":
            return target.pause(params)
        if action.type == "stop_container" or (
            action.type == "restart_container" and action.graceful
        ):
            return target.stop(params)
        return target.hard_restart(params)  # kill, or a restart with graceful: false
    if isinstance(action, m.ProxyActionBase) and action.target is not None:
        return _broker_link(action, target, hold_s)
    if isinstance(action, m.WorkerInjectorAction):
        if action.target == "own":
            raise UsageError(
                f"worker_injector with target: own is for your own workers: --target local, "
                f"not {target.name}"
            )
        return target.worker_injectors(
            WorkerInjectorParams(
                hold_s=hold_s, injectors=tuple(spec.spec() for spec in action.injectors)
            )
        )
    raise UsageError(
        f"{action.TAGS[0]} {where}: processes and proxies of your own system are on --target local"
    )


def _broker_link(action: m.ProxyActionBase, target: PlatformTarget, hold_s: float) -> Fault:
    """A toxic on every path between the job workers and Valkey, in the proxy's words."""
    toxic = action.TAGS[0]  # one of m.BROKER_TOXICS: the model refuses any other there
    attributes = {a: float(getattr(action, a)) for a in TOXIC_ATTRIBUTES[toxic]}
    return target.broker_link(
        BrokerLinkParams(
            hold_s=hold_s,
            type=toxic,  # type: ignore[arg-type]
            attributes=attributes,
            toxicity=action.toxicity,
            stream=action.stream,
        )
    )


SHELL_KEYWORDS = frozenset(("if", "for", "while", "until", "case", "{", "!", "[[", "[", "test"))
SHELL_SYNTAX = frozenset("()${}`~;&|<>*?")
SHELL_BUILTINS = frozenset(
    ("cd", "exec", "export", ".", "source", "set", "ulimit", "umask", ":", "true", "eval")
)


def check_executable(command: str) -> None:
    """A `restart:` command whose program cannot be run is refused now, not at the heal. The
    agent runs it with /bin/sh from `/`, so a relative path would not mean what it says."""
    import os
    import shlex
    import shutil

    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise UsageError(f"restart command {command!r} cannot be parsed: {exc}") from None
    program = next((w for w in words if "=" not in w.split("/")[0]), None)  # skip VAR=value
    if program is None:
        raise UsageError(f"restart command {command!r} runs no program")
    if program in SHELL_BUILTINS or program in SHELL_KEYWORDS or SHELL_SYNTAX & set(program):
        return  # shell syntax (a subshell, $VAR, ~, a keyword): only /bin/sh can tell
    if "/" in program:
        if not program.startswith("/"):
            raise UsageError(
                f"restart command {command!r}: give {program!r} as an absolute path "
                "(the agent runs the command from /)"
            )
        if not (os.path.isfile(program) and os.access(program, os.X_OK)):
            raise UsageError(f"restart command {command!r}: {program} is not an executable file")
        return
    if shutil.which(program) is None:
        raise UsageError(
            f"restart command {command!r}: {program!r} is not an executable program on PATH"
        )
