"""Built-in scenarios, by name."""

from __future__ import annotations

from chaos_tui.core.contracts import Scenario
from chaos_tui.scenarios.nats_partition_mesh import NatsPartitionMesh
from chaos_tui.scenarios.opa_restart import OpaRestart
from chaos_tui.scenarios.openobserve_stall import OpenObserveStall
from chaos_tui.scenarios.postgres_restart_outbox import PostgresRestartOutbox

SCENARIOS: dict[str, type[Scenario]] = {
    cls.name: cls
    for cls in (PostgresRestartOutbox, OpaRestart, OpenObserveStall, NatsPartitionMesh)
}


class UnknownScenario(KeyError):
    def __str__(self) -> str:
        return f"unknown scenario {self.args[0]!r} (known: {', '.join(sorted(SCENARIOS))})"


def get_scenario(name: str) -> type[Scenario]:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise UnknownScenario(name) from None
