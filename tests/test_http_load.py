"""HttpRequestLoad against a real HTTP server on loopback whose delay and status the tests
switch while the load runs."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chaos_tui.core.model import InjectionWindow
from chaos_tui.core.timeline import Timeline
from chaos_tui.probes.http_load import (
    STOPPED,
    TOO_MANY_IN_FLIGHT,
    HttpRequestLoad,
    LoadRecord,
)


@dataclass
class Behaviour:
    delay_s: float = 0.0
    status: int = 200
    received: int = 0
    last: tuple[str, bytes, str | None] | None = None  # method, body, X-Load header
    wake: threading.Event = field(default_factory=threading.Event)  # ends every delay


class Server(ThreadingHTTPServer):
    daemon_threads = True
    behaviour: Behaviour

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that timed out and hung up is what some tests do on purpose


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real services do
    server: Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def answer(self) -> None:
        behaviour = self.server.behaviour
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        behaviour.received += 1
        behaviour.last = (self.command, body, self.headers.get("X-Load"))
        if behaviour.delay_s:
            behaviour.wake.wait(behaviour.delay_s)
        reply = b"slow" if behaviour.delay_s else b"fine"
        self.send_response(behaviour.status)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = answer


@pytest.fixture
def server() -> Iterator[tuple[str, Behaviour]]:
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.behaviour = Behaviour()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/checkout", httpd.behaviour
    finally:
        httpd.behaviour.wake.set()
        httpd.shutdown()
        httpd.server_close()


async def run_for(load: HttpRequestLoad, seconds: float) -> None:
    load.start()
    try:
        await asyncio.sleep(seconds)
    finally:
        await load.stop()


def only_this_task() -> bool:
    return asyncio.all_tasks() == {asyncio.current_task()}


async def test_the_rate_is_honoured_and_the_request_is_the_one_asked_for(server) -> None:
    url, behaviour = server
    load = HttpRequestLoad(
        "checkout",
        url,
        method="post",
        body='{"item": 1}',
        headers={"X-Load": "yes"},
        rate_per_s=40,
    )
    assert load.describe() == f"40 POST/s to {url}"
    await run_for(load, 1.0)
    sent = len(load.records)
    # 40 in a second; a slow machine may lose ticks, but never sends more than asked.
    assert 20 <= sent <= 44, sent
    assert all(r.ok and r.error is None and r.latency_ms is not None for r in load.records)
    assert behaviour.received == sent
    assert behaviour.last == ("POST", b'{"item": 1}', "yes")
    assert only_this_task()


async def test_a_late_tick_is_followed_by_no_burst(server) -> None:
    url, _ = server
    load = HttpRequestLoad("steady", url, rate_per_s=100)
    load.start()
    await asyncio.sleep(0.2)
    time.sleep(0.3)  # the loop is stuck: 30 ticks fall due and cannot run
    unstuck = time.time()
    await asyncio.sleep(0.3)
    await load.stop()
    right_after = [r for r in load.records if unstuck <= r.t < unstuck + 0.1]
    # Catching up would send the 30 missed requests at once on top of the 10 due in the
    # next 0.1 s, and 80 in all; re-arming sends about 10, and about 50 in all.
    assert len(right_after) <= 18, len(right_after)
    assert len(load.records) <= 68, len(load.records)


async def test_a_stalled_server_times_out_requests_without_slowing_the_rate(server) -> None:
    url, behaviour = server
    behaviour.delay_s = 5.0
    load = HttpRequestLoad("stalled", url, rate_per_s=40, timeout_s=0.2)
    load.start()
    await asyncio.sleep(0.8)
    stopping = time.monotonic()
    await load.stop()
    assert time.monotonic() - stopping < 1.2  # waited for in-flight requests, boundedly
    # A closed loop would manage 0.8 / 0.2 = 4 requests; open loop sends ~32.
    assert len(load.records) >= 16, len(load.records)
    assert {r.error for r in load.records} == {"timed out after 0.2s"}
    assert not any(r.ok or r.latency_ms is not None for r in load.records)
    stats = load.summary(lambda t: "during")["during"]
    assert stats.errors == stats.requests == len(load.records)
    assert stats.error_rate == 1.0 and stats.latency_ms_p95 is None
    assert only_this_task()


async def test_requests_over_the_in_flight_cap_are_recorded_as_failures(server) -> None:
    url, behaviour = server
    behaviour.delay_s = 5.0
    load = HttpRequestLoad("capped", url, rate_per_s=50, timeout_s=0.6, max_in_flight=3)
    await run_for(load, 0.4)
    capped = [r for r in load.records if r.error == TOO_MANY_IN_FLIGHT]
    sent = [r for r in load.records if r.error != TOO_MANY_IN_FLIGHT]
    assert len(sent) == 3  # none of the first three came back within the 0.4 s
    assert {r.error for r in sent} == {"timed out after 0.6s"}
    assert len(capped) >= 7, len(capped)
    assert not any(r.ok for r in capped)


async def test_a_503_is_an_error_with_its_status(server) -> None:
    url, behaviour = server
    behaviour.status = 503
    load = HttpRequestLoad("down", url, rate_per_s=20)
    await run_for(load, 0.3)
    assert load.records
    assert {r.error for r in load.records} == {"HTTP 503"}
    assert all(not r.ok and r.latency_ms is not None for r in load.records)
    before = load.summary(Timeline().phase_of)["before"]  # no fault yet: all "before"
    assert before.error_rate == 1.0 and before.last_error == "HTTP 503"
    assert before.latency_ms_p50 is None  # latencies come from ok requests only


async def test_expect_status_decides_what_is_ok(server) -> None:
    url, behaviour = server
    behaviour.status = 503
    load = HttpRequestLoad("teapot", url, rate_per_s=20, expect_status=[200, 204])
    await run_for(load, 0.2)
    assert {r.error for r in load.records} == {"HTTP 503, expected 200 or 204"}


async def test_a_refused_connection_is_one_line() -> None:
    with socket.socket() as sock:  # a port nothing listens on once this closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    load = HttpRequestLoad("refused", f"http://127.0.0.1:{port}/", rate_per_s=20)
    await run_for(load, 0.2)
    assert load.records
    assert {r.error for r in load.records} == {"connection refused"}


async def test_stop_when_never_started_and_twice() -> None:
    load = HttpRequestLoad("idle", "http://127.0.0.1:9/", rate_per_s=5)
    await load.stop()
    await load.stop()
    assert load.records == []
    assert only_this_task()


async def test_a_cancelled_stop_still_leaves_no_task(server) -> None:
    url, behaviour = server
    behaviour.delay_s = 5.0
    load = HttpRequestLoad("cancelled", url, rate_per_s=20, timeout_s=3.0)
    load.start()
    load.start()  # a second start must not start a second sender
    await asyncio.sleep(0.3)
    stopping = asyncio.create_task(load.stop())
    await asyncio.sleep(0.1)  # stop is now waiting for the stalled requests
    stopping.cancel()
    await asyncio.gather(stopping, return_exceptions=True)
    assert only_this_task()
    assert 3 <= len(load.records) <= 8  # one sender at 20/s for 0.3 s, not two
    assert {r.error for r in load.records} == {STOPPED}


def test_summary_splits_by_phase_with_percentiles_of_ok_requests_only() -> None:
    timeline = Timeline()
    timeline.windows.append(
        InjectionWindow(
            fault="f", lease_id="l", description="d", injected_at=100.0, healed_at=200.0
        )
    )
    load = HttpRequestLoad("phases", "http://127.0.0.1:9/")
    load.records += [LoadRecord(50.0 + i, True, float(i)) for i in range(1, 11)]
    load.records += [
        LoadRecord(150.0, False, None, "timed out after 2s"),  # finished last, sent first
        LoadRecord(120.0, True, 100.0),
        LoadRecord(199.0, True, 200.0),
        LoadRecord(130.0, False, 5000.0, "HTTP 503"),  # slow but failed: not in latencies
    ]
    load.records.sort(key=lambda r: r.t != 150.0)  # appended in the order requests ended
    stats = load.summary(timeline.phase_of)
    assert set(stats) == {"before", "during", "after"}

    before = stats["before"]
    assert (before.requests, before.ok, before.errors, before.error_rate) == (10, 10, 0, 0.0)
    assert before.latency_ms_p50 == 5.5
    assert before.latency_ms_p95 == 9.55
    assert before.latency_ms_max == 10.0
    assert before.last_error is None

    during = stats["during"]
    assert (during.requests, during.ok, during.errors, during.error_rate) == (4, 2, 2, 0.5)
    assert during.latency_ms_p95 == 195.0 and during.latency_ms_max == 200.0
    assert during.last_error == "timed out after 2s"  # the last one sent, not the last ended

    after = stats["after"]
    assert after.requests == 0 and after.error_rate is None and after.latency_ms_p50 is None
    measurement = during.as_measurement()
    assert "last_error" not in measurement
    assert measurement["error_rate"] == 0.5 and measurement["requests"] == 4
