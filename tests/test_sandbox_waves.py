"""The sandbox starts and stops its services in two waves, each all at once: what a wave holds
uses nothing in it, and nothing stops under a service still using it."""

from __future__ import annotations

import signal

from chaos_tui.core.procinfo import start_ticks
from chaos_tui.sandbox.processes import signal_tree
from chaos_tui.sandbox.services import PROFILES, services_of
from chaos_tui.sandbox.stack import Sandbox, _waves
from chaos_tui.settings import Settings


def names(waves) -> list[list[str]]:
    return [[s.name for s in wave] for wave in waves]


def test_each_profiles_last_service_starts_after_and_stops_before_the_rest():
    outbox = services_of(["chaos-outbox"])
    assert names(_waves(outbox, last=True)) == [["postgres", "nats"], ["relay"]]
    assert names(_waves(outbox, last=False)) == [["relay"], ["postgres", "nats"]]
    every = _waves(services_of(None), last=True)
    assert names(every)[1] == ["relay", "gateway", "collector", "nats_b"]
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
