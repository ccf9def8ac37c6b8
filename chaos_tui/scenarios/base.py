"""What the built-in scenarios share: they are written against the platform target contract."""

from __future__ import annotations

from chaos_tui.core.contracts import RunContext, Scenario
from chaos_tui.core.platform_target import Endpoints, PlatformTarget


class PlatformScenario(Scenario[PlatformTarget]):
    """A scenario of the reference platform (no `name`: not listed itself)."""

    @staticmethod
    def endpoints(ctx: RunContext) -> Endpoints:
        """The addresses the run was planned with (the runner checked they still hold)."""
        endpoints = ctx.plan.endpoints
        if not isinstance(endpoints, Endpoints):
            raise TypeError(f"target {ctx.target.name!r} gives no platform endpoints")
        return endpoints
