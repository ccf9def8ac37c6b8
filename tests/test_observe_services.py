"""The chaos-observe services as real processes: our OTLP sink and the rotel collector.

Each test starts what it needs on free loopback ports and stops it by the recorded pid,
whatever happens. Faults are the ones openobserve_stall makes: SIGSTOP / SIGCONT of the sink,
and a SIGKILL followed by a restart on the same port and store.
"""

from __future__ import annotations

import asyncio
import gzip
import signal
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from chaos_tui.core.delivery import check_delivery
from chaos_tui.probes.otlp_markers import (
    MarkerSender,
    export_request,
    fetch_markers,
    received_ids,
)
from chaos_tui.sandbox import collector
from chaos_tui.sandbox.processes import ProcessRecord, is_running, signal_only, spawn, stop

pytestmark = pytest.mark.timeout(60)

ORG = collector.ORG
RATE_HZ = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def until(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"{what} not within {timeout_s:g}s (last error: {last})")


class SinkHandle:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.record: ProcessRecord | None = None

    def start(self) -> None:
        ready = self.root / "sink.ready"
        ready.unlink(missing_ok=True)
        self.record = spawn(
            "sink",
            [
                sys.executable,
                "-m",
                "chaos_tui.sandbox.otlp_sink",
                "--port",
                str(self.port),
                "--store",
                str(self.root / "markers.log"),
                "--ready-file",
                str(ready),
            ],
            self.root / "sink.log",
        )
        until(
            lambda: (
                ready.is_file()
                and httpx.get(self.url + "/healthz", timeout=1).json() == {"status": "ok"}
            ),
            10,
            "sink ready",
        )

    def kill(self) -> None:
        signal_only(self.record, signal.SIGKILL)
        assert stop(self.record, timeout_s=5)

    def pause(self) -> None:
        assert signal_only(self.record, signal.SIGSTOP)

    def resume(self) -> None:
        assert signal_only(self.record, signal.SIGCONT)

    def close(self) -> None:
        if self.record is not None:
            signal_only(self.record, signal.SIGCONT)  # a paused process never sees SIGTERM
            stop(self.record, timeout_s=5)


@pytest.fixture
def sink(tmp_path):
    handle = SinkHandle(tmp_path / "sink")
    try:
        handle.start()
        yield handle
    finally:
        handle.close()
        assert handle.record is None or not is_running(handle.record)


@pytest.fixture
def start_collector(tmp_path, sink):
    """Start rotel (retries on or off) exporting to the sink; every one is stopped after."""
    started: list[ProcessRecord] = []

    def start(retries: bool) -> str:
        grpc_port, http_port = free_port(), free_port()
        state = tmp_path / f"rotel-{len(started)}"
        command = collector.command(
            collector.binary(),
            grpc_port,
            http_port,
            sink.url,
            ORG,
            retries,
            state / "rotel-agent.log",
        )
        started.append(spawn("collector", command, state / "stdout.log"))
        until(lambda: collector.is_ready(http_port), 10, "rotel accepting on its HTTP port")
        return f"http://127.0.0.1:{http_port}"

    try:
        yield start
    finally:
        for record in started:
            stop(record, timeout_s=5)
        assert not any(is_running(r) for r in started)


async def wait_received(sink_url: str, prefix: str, expected: set[str], timeout_s: float) -> dict:
    """Poll the count query until every expected marker arrived (or the time is up)."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = await fetch_markers(sink_url, ORG, prefix)
        if expected <= set(got) or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.1)


def spans_request(markers: list[str]) -> bytes:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add()
    for i, marker in enumerate(markers):
        span = spans.spans.add()
        span.trace_id, span.span_id, span.name = bytes([1]) * 16, bytes([i + 1]) * 8, "probe"
        attr = span.attributes.add()
        attr.key, attr.value.string_value = "chaos.marker", marker
    return request.SerializeToString()


# -- the sink alone -----------------------------------------------------------------------


def test_sink_decodes_and_counts_markers(sink):
    logs = f"{sink.url}/api/{ORG}/v1/logs"
    protobuf = {"Content-Type": "application/x-protobuf"}
    now = time.time_ns()

    plain = httpx.post(logs, content=export_request("t1-000001", "one", now), headers=protobuf)
    assert plain.status_code == 200
    assert plain.headers["content-type"] == "application/x-protobuf"
    assert plain.content == b""  # an empty ExportLogsServiceResponse
    # gzip, as rotel sends it; the same marker twice counts twice.
    gz = gzip.compress(export_request("t1-000002", "two", now))
    for _ in range(2):
        r = httpx.post(logs, content=gz, headers={**protobuf, "Content-Encoding": "gzip"})
        assert r.status_code == 200
    # A record without a marker is counted as a record only.
    bare = ExportLogsServiceRequest()
    bare.resource_logs.add().scope_logs.add().log_records.add().body.string_value = "no marker"
    assert httpx.post(logs, content=bare.SerializeToString(), headers=protobuf).status_code == 200
    # OTLP/JSON (hex ids) for traces.
    span = {
        "traceId": "0102030405060708090a0b0c0d0e0f10",
        "spanId": "0102030405060708",
        "name": "s",
        "attributes": [{"key": "chaos.marker", "value": {"stringValue": "t1-000003"}}],
    }
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    r = httpx.post(f"{sink.url}/api/{ORG}/v1/traces", json=body)
    assert r.status_code == 200 and r.json() == {}
    r = httpx.post(
        f"{sink.url}/api/{ORG}/v1/traces", content=spans_request(["t1-000004"]), headers=protobuf
    )
    assert r.status_code == 200
    ExportTraceServiceResponse().ParseFromString(r.content)
    # Another organisation and another prefix are kept apart.
    httpx.post(
        f"{sink.url}/api/other/v1/logs",
        content=export_request("t1-000009", "x", now),
        headers=protobuf,
    )
    httpx.post(logs, content=export_request("zz-000001", "x", now), headers=protobuf)

    counts = httpx.get(f"{sink.url}/api/{ORG}/markers", params={"prefix": "t1-"}).json()
    assert counts == {
        "records": 7,
        "markers": {"t1-000001": 1, "t1-000002": 2, "t1-000003": 1, "t1-000004": 1},
    }
    assert httpx.get(f"{sink.url}/api/other/markers").json() == {
        "records": 1,
        "markers": {"t1-000009": 1},
    }

    # What an OTLP server refuses.
    assert httpx.post(logs, content=b"\xff\x00junk", headers=protobuf).status_code == 400
    assert httpx.post(logs, content=b"x", headers={"Content-Type": "text/plain"}).status_code == 415
    assert httpx.get(logs).status_code == 405
    assert httpx.get(f"{sink.url}/api/{ORG}/v2/logs").status_code == 404

    # With --store the counts survive a SIGKILL and a restart.
    sink.kill()
    sink.start()
    after = httpx.get(f"{sink.url}/api/{ORG}/markers", params={"prefix": "t1-"}).json()
    assert after == counts
    lines = (sink.root / "markers.log").read_text().splitlines()
    assert len(lines) == 8  # one line per record, every organisation


# -- through rotel --------------------------------------------------------------------------


async def test_rotel_forwards_every_marker_once(sink, start_collector):
    sender = MarkerSender(start_collector(retries=True), "fwd", RATE_HZ)
    sender.start()
    await asyncio.sleep(1.0)
    await sender.stop()
    assert len(sender.attempted) >= 10 and sender.accepted == sender.attempted, sender.rejected
    got = await wait_received(sink.url, sender.prefix, set(sender.accepted), 5)
    assert got == {m: 1 for m in sender.attempted}


async def test_pause_with_retries_every_marker_arrives(sink, start_collector):
    sender = MarkerSender(start_collector(retries=True), "pause", RATE_HZ)
    sender.start()
    await asyncio.sleep(0.5)
    paused_at = time.time()
    sink.pause()
    try:
        await asyncio.sleep(3.0)
    finally:
        sink.resume()
    resumed_at = time.time()
    await asyncio.sleep(0.5)
    await sender.stop()

    during = sender.sent_between(paused_at, resumed_at)
    assert len(during) >= 40
    # The collector kept accepting while its backend was paused.
    assert all(s.outcome == "accepted" for s in during), sender.rejected
    got = await wait_received(sink.url, sender.prefix, set(sender.accepted), 10)
    delivery = check_delivery(sender.attempted, sender.accepted, received_ids(got))
    assert delivery.lost == 0, delivery
    # A pause shorter than rotel's 5 s request timeout causes no retry, hence no duplicate.
    assert delivery.duplicated == 0 and delivery.unexpected == 0, delivery


async def test_retries_off_loses_markers_while_the_sink_is_down(sink, start_collector):
    sender = MarkerSender(start_collector(retries=False), "noretry", RATE_HZ)
    sender.start()
    await asyncio.sleep(0.5)
    # A pause loses nothing even without retries: the paused sink's kernel still accepts
    # and buffers the requests, and the sink answers them on SIGCONT.
    sink.pause()
    try:
        await asyncio.sleep(2.0)
    finally:
        sink.resume()
    await asyncio.sleep(0.5)
    # A dead sink refuses connections: without retries each of those batches is dropped.
    down_at = time.time()
    sink.kill()
    await asyncio.sleep(2.0)
    sink.start()
    up_at = time.time()
    await asyncio.sleep(0.5)
    await sender.stop()

    assert sender.accepted == sender.attempted, sender.rejected  # rotel never pushed back
    got = await wait_received(sink.url, sender.prefix, set(sender.accepted), 3)
    lost = set(sender.accepted) - set(got)
    down = {s.marker for s in sender.sent_between(down_at, up_at)}
    assert len(lost) > 0.5 * len(down) > 10, (len(lost), len(down))
    assert lost <= down | {s.marker for s in sender.sent_between(down_at - 0.5, down_at)}
    before = {s.marker for s in sender.sends if s.sent_at < down_at - 0.5}
    assert before <= set(got)  # everything sent before the kill, the pause included, arrived


async def test_kill_and_restart_with_retries_every_marker_arrives(sink, start_collector):
    sender = MarkerSender(start_collector(retries=True), "restart", RATE_HZ)
    sender.start()
    await asyncio.sleep(0.5)
    sink.kill()
    await asyncio.sleep(2.0)
    sink.start()
    await asyncio.sleep(0.5)
    await sender.stop()

    assert sender.accepted == sender.attempted, sender.rejected
    # Retries back off 1 s doubling to 2 s (plus jitter): all is in a few seconds after.
    got = await wait_received(sink.url, sender.prefix, set(sender.accepted), 8)
    delivery = check_delivery(sender.attempted, sender.accepted, received_ids(got))
    assert delivery.lost == 0 and delivery.unexpected == 0, delivery


def test_a_torn_last_line_is_cut_so_the_next_record_survives_a_reload(tmp_path):
    from chaos_tui.sandbox.otlp_sink import MarkerStore

    path = tmp_path / "markers.log"
    path.write_text("default\tm-1\ndefault\tm-2")  # killed mid-write: no newline after m-2
    store = MarkerStore(path)
    store.add("default", ["m-3"], 1)
    store.close()
    again = MarkerStore(path)
    assert again.query("default", "m-")["markers"] == {"m-1": 1, "m-3": 1}
    again.close()


def test_the_sink_answers_openobserves_search_api_for_the_marker_count(sink):
    from chaos_tui.probes.otlp_markers import marker_count_sql

    protobuf = {"Content-Type": "application/x-protobuf"}
    logs = f"{sink.url}/api/{ORG}/v1/logs"
    for marker in ("s1-000001", "s1-000002", "s1-000002", "other-1"):
        httpx.post(logs, content=export_request(marker, "x", time.time_ns()), headers=protobuf)
    got = asyncio.run(fetch_markers(sink.url, ORG, "s1-", auth=("someone", "secret")))
    assert got == {"s1-000001": 1, "s1-000002": 2}
    search = f"{sink.url}/api/{ORG}/_search"
    other_sql = httpx.post(search, json={"query": {"sql": 'SELECT * FROM "default"'}})
    assert other_sql.status_code == 400 and "marker count query" in other_sql.json()["error"]
    assert httpx.post(search, content=b"nope").status_code == 400
    with pytest.raises(ValueError):
        marker_count_sql("x' OR 1=1 --")
