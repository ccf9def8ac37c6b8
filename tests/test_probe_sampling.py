"""How probes are scheduled and what their HTTP clients share (issue 18: probe scale)."""

from __future__ import annotations

import asyncio
import importlib
import socket
import ssl
import sys

import pytest

from chaos_tui.core.runner import sampling_phases
from chaos_tui.http_client import remember_missing, shared_tls
from chaos_tui.probes.tcp_probe import TcpProbe


def test_probes_sample_at_phases_spread_evenly_over_one_interval() -> None:
    phases = sampling_phases(4, 0.1)
    assert phases == pytest.approx([0.0, 0.025, 0.05, 0.075])


def test_many_probes_share_slots_at_least_ten_ms_apart() -> None:
    many = sampling_phases(200, 0.1)
    assert len(many) == 200
    slots = sorted(set(many))
    assert slots == pytest.approx([i / 100 for i in range(10)])
    assert all(many.count(slot) == 20 for slot in slots)  # taken in turn: even groups


def test_at_a_slow_rate_every_probe_starts_within_the_first_100_ms() -> None:
    """At 0.15 Hz a phase spread over the whole 6.7 s interval left a probe short of the three
    samples the steady state asks for within 15 s: the run aborted, nothing injected."""
    phases = sampling_phases(20, 1 / 0.15)
    assert max(phases) < 0.1
    assert len(set(phases)) == 10  # still spread: ten slots, not one herd


def test_at_a_rate_too_high_for_two_slots_all_sample_together() -> None:
    assert sampling_phases(5, 0.01) == [0.0] * 5


def test_a_single_probe_samples_at_once() -> None:
    assert sampling_phases(1, 0.5) == [0.0]
    assert sampling_phases(0, 0.1) == []


def test_an_absent_module_is_remembered_as_absent() -> None:
    name = "chaos_tui_probe_sampling_no_such_module"
    try:
        assert remember_missing(name) is True
        assert sys.modules[name] is None
        with pytest.raises(ImportError):
            importlib.import_module(name)
        assert remember_missing(name) is True  # asked again: still absent
    finally:
        sys.modules.pop(name, None)


def test_an_installed_module_is_left_alone() -> None:
    import json

    assert remember_missing("json") is False
    assert sys.modules["json"] is json


def test_the_probes_share_one_tls_context_that_still_verifies() -> None:
    context = shared_tls()
    assert shared_tls() is context
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_tcp_probe_on_an_address_passes_on_an_open_port() -> None:
    server = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        sample = await TcpProbe("db", "127.0.0.1", port).sample()
    finally:
        server.close()
        await server.wait_closed()
    assert sample.ok, sample.error


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_refused_tcp_probe_says_what_a_stream_connection_says(host: str) -> None:
    port = _closed_port()
    sample = await TcpProbe("db", host, port).sample()
    with pytest.raises(OSError) as refused:
        await asyncio.open_connection(host, port)
    assert not sample.ok
    assert sample.error == str(refused.value)
