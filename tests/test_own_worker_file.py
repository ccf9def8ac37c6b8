"""Worker injectors for the user's OWN job worker, from a scenario file on target local: a
real Dramatiq worker process that imports chaos_tui.inject (as a user's would) on a Valkey of
the test's own, and a headless run of a file whose `worker_injector` says `target: own`. While
the run holds it, the worker fails the jobs in scope; after the heal it does them again."""

from __future__ import annotations

import subprocess
import time

import pytest
import redis

from tests.conftest import CHAOS_TUI, env_for, run_cli
from tests.inject_support import CRASH_ACTOR, broker_on, own_agent, valkey, worker_process

__all__ = ["own_agent"]  # a fixture

FILE = """\
version: 1
scenarios:
  own_worker_fails:
    hypothesis: "My worker's jobs of one actor fail while the injector lives, and not after."
    steady_state:
      - tcp_open: 127.0.0.1:{port}
    actions:
      - type: worker_injector
        target: own
        injectors:
          - kind: fail
            scope: {{actor: {actor}}}
        duration_seconds: 4
"""


@pytest.fixture
def valkey_port():
    with valkey() as port:
        yield port


def test_a_file_injects_into_your_own_worker_and_stops_at_the_heal(
    own_agent, valkey_port, tmp_path
):
    state_dir = own_agent.settings.state_dir
    env = env_for(state_dir)
    spec = tmp_path / "own.yaml"
    spec.write_text(FILE.format(port=valkey_port, actor=CRASH_ACTOR))
    plan = run_cli(["--dry-run", "--file", str(spec), "--scenario", "own_worker_fails"], env)
    assert plan.returncode == 0, plan.stderr
    assert "your own job workers that ask this state dir's fault agent" in plan.stdout
    assert "fail: raise, every message (actor crash_me)" in plan.stdout

    worker, errors = worker_process("dramatiq", valkey_port, own_agent)
    run = None
    try:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "worker ready"
        broker = broker_on(valkey_port)
        import dramatiq

        job = dramatiq.actor(actor_name=CRASH_ACTOR, broker=broker, max_retries=0)(lambda j: None)
        marks = redis.Redis(port=valkey_port, decode_responses=True)
        run = subprocess.Popen(
            [*CHAOS_TUI, "--headless", "--enable-chaos", "--file", str(spec)]
            + ["--scenario", "own_worker_fails"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert run.stderr is not None
        for line in run.stderr:  # until the injector is granted
            if "INJECTED worker_injectors:fail" in line:
                break
        time.sleep(1.0)  # the worker's next polls (every 0.25 s)
        job.send("during")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not marks.zcard("dramatiq:default.XQ"):
            time.sleep(0.05)
        rest = run.communicate(timeout=60)[1]
        assert run.returncode == 0, rest[-3000:]
        job.send("after")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "after" not in marks.smembers("finished"):
            time.sleep(0.05)
        # In scope while the lease lived: failed before the actor ran, dead-lettered (no
        # retries here). After the heal: done.
        assert marks.zcard("dramatiq:default.XQ") == 1, errors.read_text()[-2000:]
        assert marks.smembers("started") == {"after"}
        assert marks.smembers("finished") == {"after"}
        assert "no live lease" in run_cli(["leases"], env).stdout
    finally:
        for proc in (run, worker):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
