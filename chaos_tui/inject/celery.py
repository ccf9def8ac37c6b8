"""Worker injectors for Celery: `install(app)` after the app's tasks are defined.

Celery's signals cannot fail a task: `Signal.send` logs and swallows whatever a handler
(task_prerun included) raises. So the injectors go into the task's execution itself: each
task's `run` is wrapped (once) with the same core the Dramatiq middleware uses. A `fail`
raises inside the task (the task fails, its `autoretry_for`/`retry` policy applies), a delay
sleeps before it, a crash ends the worker process, a partial stops it at
`chaos_tui.inject.checkpoint()` or right after it returns. The worker's tracer reads `run`
when it starts, so install before the worker starts; tasks defined later are wrapped when
the app finalizes or the worker initialises.
"""

from __future__ import annotations

from typing import Any

from chaos_tui.inject.core import InjectorClient, call_guarded

_MARK = "_chaos_injected"


def install(app: Any, client: InjectorClient | None = None) -> InjectorClient:
    """Wrap every task of `app` (but Celery's own); returns the client (its counts)."""
    from celery import signals  # type: ignore[import-untyped]  # no stubs

    chosen = client if client is not None else InjectorClient.from_env()

    def wrap_all(*_: Any, **__: Any) -> None:
        for name, task in list(app.tasks.items()):
            if not name.startswith("celery."):
                wrap_task(task, chosen)

    if app.finalized:
        wrap_all()
    app.on_after_finalize.connect(wrap_all, weak=False)
    signals.worker_init.connect(wrap_all, weak=False)
    return chosen


def wrap_task(task: Any, client: InjectorClient) -> None:
    run = task.run
    if getattr(run, _MARK, False):
        return

    def injected(*args: Any, **kwargs: Any) -> Any:
        request = task.request
        queue = (request.delivery_info or {}).get("routing_key") or ""
        action = client.decide(queue, task.name, request.id or "")
        if action is None:
            return run(*args, **kwargs)
        client.perform(action)
        return call_guarded(run, *args, **kwargs)

    setattr(injected, _MARK, True)
    task.run = injected
