"""Worker injectors in a real Celery worker (solo pool, its own process) on a real Valkey: a
`fail` really fails the task (Celery's signals would swallow it), a delay holds it, and only
the task in scope is touched; healed, the task runs clean again."""

from __future__ import annotations

import time

import pytest

from tests.inject_support import celery_app, grant, own_agent, valkey, wait_until, worker_process

__all__ = ["own_agent"]  # a fixture


@pytest.fixture
def celery_worker(own_agent):
    with valkey() as port:
        worker, _ = worker_process("celery", port, own_agent)
        app = celery_app(port)
        try:
            # Up and consuming: a task comes back.
            assert app.send_task("other", args=[1]).get(timeout=60) == 2
            yield app
        finally:
            worker.kill()
            worker.wait(10)
            app.close()


def run_task(app, name: str, x: int):
    """(result or the exception raised, seconds from send to result)."""
    started = time.monotonic()
    try:
        result = app.send_task(name, args=[x]).get(timeout=20)
    except Exception as exc:
        result = exc
    return result, time.monotonic() - started


async def test_fail_and_delay_in_a_real_celery_worker(own_agent, celery_worker):
    app = celery_worker
    lease = await grant(own_agent, {"kind": "fail", "scope": {"actor": "work"}, "message": "boom"})
    time.sleep(0.8)  # the worker's polls
    failed, _ = run_task(app, "work", 2)
    assert type(failed).__name__ == "InjectedFailure" and "boom" in str(failed), failed
    assert run_task(app, "other", 2)[0] == 3, "another task is never hit"
    assert await own_agent.heal_lease(lease.id)

    quick = min(run_task(app, "work", 2)[1] for _ in range(3))
    await grant(own_agent, {"kind": "delay", "delay_ms": 500, "scope": {"actor": "work"}})
    time.sleep(0.8)
    result, took = run_task(app, "work", 2)
    assert result == 4 and took >= 0.5 and took - quick >= 0.45, (took, quick)
    await own_agent.heal_all()
    wait_until(lambda: run_task(app, "work", 3)[1] < 0.4, 5, "no delay after the heal")
