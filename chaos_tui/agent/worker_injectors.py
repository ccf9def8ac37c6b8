"""Lease kind `worker.inject`: injectors that job workers act on while the lease lives.

Nothing in the agent breaks: the live lease IS the injection. Workers poll GET /injectors
(`live_injectors` below) and act on what it lists; when the lease ends (heal, halt, owner
death, TTL) it is no longer listed and the workers stop. They also stop by themselves when
the agent stops answering or the TTL they were told passes (the fail safe of
`chaos_tui.inject`). Injectors compose, so the kind claims nothing: two leases may hold
injectors on the same queue at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from chaos_tui.agent.protocol import (
    INJECTOR_POLL_S,
    MAX_INJECTORS,
    WORKER_INJECT,
    Lease,
    LiveInjector,
    LiveInjectors,
    WorkerInjectParams,
)


def params_problem(params: dict[str, Any]) -> str | None:
    """One line saying what is wrong with a worker.inject lease's params, or None."""
    try:
        WorkerInjectParams.model_validate(params)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "params"
        return (
            f"{WORKER_INJECT} params {where}: {first['msg']} "
            f"(expected {{injectors: [1..{MAX_INJECTORS} injector specs]}})"
        )
    return None


class WorkerInject:
    kind = WORKER_INJECT
    description = (
        f"worker injectors (delay, fail, crash, partial) with a scope, acted on by job workers "
        f"polling GET /injectors while the lease lives: params {{injectors: [spec, ...]}} "
        f"(1..{MAX_INJECTORS})"
    )

    def check(self, target: str, params: dict[str, Any]) -> str | None:
        # Any target: the workers are the user's, wherever they run; they find the agent.
        return params_problem(params)

    async def apply(self, lease: Lease) -> dict[str, Any]:
        return {}  # nothing to break: being listed by GET /injectors is the fault

    async def heal(self, lease: Lease) -> None:
        return None  # nothing to mend: an ended lease is no longer listed


def live_injectors(
    leases: Iterable[Lease], halted: bool, now: float | None = None
) -> LiveInjectors:
    """What GET /injectors answers: the injectors of every applied, unexpired worker.inject
    lease, each with the seconds its lease has left; nothing at all while halted."""
    now = time.time() if now is None else now
    live: list[LiveInjector] = []
    if not halted:
        for lease in leases:
            if lease.kind != WORKER_INJECT or lease.state != "applied" or lease.expires_at <= now:
                continue
            try:
                specs = WorkerInjectParams.model_validate(lease.params).injectors
            except ValidationError:
                continue  # checked when granted; a journal edited since is not served
            live.extend(
                LiveInjector(
                    lease_id=lease.id,
                    run_id=lease.run_id,
                    spec=spec,
                    ttl_left_s=lease.expires_at - now,
                )
                for spec in specs
            )
    return LiveInjectors(poll_s=INJECTOR_POLL_S, injectors=live)
