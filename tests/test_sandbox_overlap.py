"""What overlaps to make a run cheaper, and still leaves nothing running: the sandbox starts
and stops its services in two waves, each all at once (what a wave holds uses nothing in it,
and nothing stops under a service still using it); the fault agent starts alongside them."""

from __future__ import annotations

import asyncio
import signal

import pytest

from chaos_tui.core.procinfo import start_ticks
from chaos_tui.sandbox.postgres import SandboxError
from chaos_tui.sandbox.processes import signal_tree
from chaos_tui.sandbox.services import PROFILES, services_of
from chaos_tui.sandbox.stack import Sandbox, _waves
from chaos_tui.settings import SandboxSettings, Settings
from chaos_tui.targets.sandbox import SandboxTarget
from tests.conftest import leftovers


def names(waves) -> list[list[str]]:
    return [[s.name for s in wave] for wave in waves]


def test_each_profiles_last_service_starts_after_and_stops_before_the_rest():
    outbox = services_of(["chaos-outbox"])
    assert names(_waves(outbox, last=True)) == [["postgres", "nats"], ["relay"]]
    assert names(_waves(outbox, last=False)) == [["relay"], ["postgres", "nats"]]
    every = _waves(services_of(None), last=True)
    assert names(every)[1] == ["relay", "gateway", "collector", "nats_b", "job_worker"]
    assert all(PROFILES[p][-1] in names(every)[1] for p in PROFILES)
    # One service alone is one wave; none is no wave.
    assert names(_waves(services_of(["chaos-outbox"])[:1], last=False)) == [["postgres"]]
    assert _waves([], last=True) == []


def test_up_then_down_in_waves_leaves_nothing_running_even_a_paused_service(fresh_state_dir):
    sb = Sandbox(Settings(state_dir=fresh_state_dir))
    started: list[str] = []
    sb.up(started, ["chaos-outbox"])
    assert started == ["postgres", "nats", "relay"]  # recorded as each was spawned
    assert all(sb.healthy(s) for s in started)
    records = {s: sb.record(s) for s in started}
    # The relay (second wave) was spawned only once both of the first were ready.
    assert records["relay"].start_ticks >= max(
        records["postgres"].start_ticks, records["nats"].start_ticks
    )
    signal_tree(records["postgres"], signal.SIGSTOP)  # a paused process cannot act on SIGINT
    assert sorted(sb.down()) == sorted(started)
    for service, rec in records.items():
        assert start_ticks(rec.pid) != rec.start_ticks, f"{service} still runs"
    assert sb.status()["services"]["postgres"]["pid"] is None
    assert sb.up([], ["chaos-outbox"]) == ["postgres", "nats", "relay"]  # and starts again
    assert sorted(sb.down()) == sorted(started)


def test_a_failed_start_still_stops_the_agent_that_started_alongside(fresh_state_dir):
    """The services fail (no time to get ready) while the agent starts: ensure_up waits for
    both, raises the services' error, and knows of the agent, so it is stopped with the rest."""
    settings = Settings(state_dir=fresh_state_dir, sandbox=SandboxSettings(start_timeout_s=0.001))
    target = SandboxTarget(settings)
    with pytest.raises(SandboxError, match="postgres not ready"):
        asyncio.run(target.ensure_up("chaos-outbox"))
    assert target.agent_started and target.agent.info() is not None
    assert target.started == ["postgres", "nats"]  # the first wave was spawned, no more
    assert sorted(target.stop_what_we_started(keep_sandbox=False)) == ["agent", "nats", "postgres"]
    assert target.agent.info() is None
    assert not any(s["running"] for s in target.sandbox.status()["services"].values())
    assert leftovers(fresh_state_dir) == []
