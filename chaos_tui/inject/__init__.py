"""Worker injectors: what a user's job worker imports to honour the faults the chaos-tui agent
grants (lease kind `worker.inject`). Light on purpose: no agent server, FastAPI, Textual,
sandbox or Docker (an import contract keeps it so).

    from chaos_tui.inject.dramatiq import ChaosMiddleware   # broker.add_middleware(...from_env())
    from chaos_tui.inject.celery import install             # install(app)
    from chaos_tui.inject import checkpoint                 # half-way through an actor's work
"""

from chaos_tui.inject.core import (
    CRASH_EXIT_CODE,
    InjectedFailure,
    InjectorClient,
    checkpoint,
)

__all__ = ["CRASH_EXIT_CODE", "InjectedFailure", "InjectorClient", "checkpoint"]
