"""The probe kinds a scenario file names, each against a real server started here on loopback:
HTTP with options, a PostgreSQL query, a shell command, a `/metrics` sample and a PromQL query
(against Debian's prometheus when it is installed)."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from chaos_tui.probes.command_probe import CommandProbe
from chaos_tui.probes.db_probe import PostgresQueryProbe
from chaos_tui.probes.http_probe import EXPECT_2XX, HttpProbe
from chaos_tui.probes.prom_text import ExpositionError, parse_exposition, select
from chaos_tui.probes.prometheus_probe import PrometheusMetricProbe, PrometheusQueryProbe

METRICS = """\
# HELP http_requests_total Requests served.
# TYPE http_requests_total counter
http_requests_total{route="/a",code="200"} 10
http_requests_total{route="/b",code="200"} 5 1700000000000
http_requests_total{route="/a",code="500"} 2
odd_label{path="say \\"hi\\"\\\\now",x="1"} 3.5
not_a_number NaN
too_big +Inf
demo_value{instance_id="one"} 3
demo_value{instance_id="two"} 4
"""

# Canned Prometheus API answers, by query, for the cases a real server is not needed for.
CANNED = {
    "nan": {"status": "success", "data": {"resultType": "scalar", "result": [1, "NaN"]}},
    "garbled": {"status": "success", "data": {"resultType": "vector", "result": "x"}},
}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep pytest's output clean
        pass

    def reply(self, status: int, body: bytes = b"", kind: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/ok":
            self.reply(200, b"fine")
        elif url.path == "/down":
            self.reply(503, b"down")
        elif url.path == "/moved":
            self.reply(302)
        elif url.path == "/slow":
            time.sleep(1.5)
            self.reply(200)
        elif url.path == "/metrics":
            self.reply(200, METRICS.encode(), "text/plain; version=0.0.4")
        elif url.path == "/broken-metrics":
            self.reply(200, b"ok 1\nthis is { not metrics\n")
        elif url.path == "/api/v1/query":
            query = parse_qs(url.query)["query"][0]
            self.reply(200, json.dumps(CANNED[query]).encode(), "application/json")
        else:
            self.reply(404)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.reply(201 if body == b'{"item": 1}' else 400)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


async def sample_of(probe):
    await probe.open()
    try:
        return await probe.sample()
    finally:
        await probe.close()


# --- HTTP with options -----------------------------------------------------------------------


async def test_http_value_is_latency_and_2xx_passes(server: str) -> None:
    s = await sample_of(HttpProbe("h", server + "/ok", EXPECT_2XX, value="latency"))
    assert s.ok, s.error
    assert s.value is not None and 0 < s.value < 1000


async def test_http_unexpected_status_fails_with_the_codes(server: str) -> None:
    s = await sample_of(HttpProbe("h", server + "/down", EXPECT_2XX))
    assert not s.ok
    assert s.error == "HTTP 503, expected 200-299"
    # A redirect is below 400 (fine for the built-ins) but not 2xx.
    s = await sample_of(HttpProbe("h", server + "/moved", EXPECT_2XX))
    assert s.error == "HTTP 302, expected 200-299"


async def test_http_status_list_accepts_any_listed(server: str) -> None:
    s = await sample_of(HttpProbe("h", server + "/down", [200, 503]))
    assert s.ok and s.value == 503.0
    s = await sample_of(HttpProbe("h", server + "/ok", [201, 204]))
    assert s.error == "HTTP 200, expected 201 or 204"


async def test_http_post_sends_the_body(server: str) -> None:
    good = HttpProbe("p", server + "/x", 201, method="post", body='{"item": 1}')
    assert good.description.startswith("POST /x")
    assert (await sample_of(good)).ok
    bad = await sample_of(HttpProbe("p", server + "/x", 201, method="POST", body="{}"))
    assert bad.error == "HTTP 400, expected 201"


async def test_http_timeout_ms_bounds_the_sample(server: str) -> None:
    clock = time.perf_counter()
    s = await sample_of(HttpProbe("h", server + "/slow", timeout_ms=300))
    assert not s.ok
    assert s.error == "timed out after 0.3s"
    assert time.perf_counter() - clock < 1.2


async def test_http_refused_connection_fails() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = await sample_of(HttpProbe("h", f"http://127.0.0.1:{port}/", timeout_ms=500))
    assert not s.ok and s.error


# --- PostgreSQL query ------------------------------------------------------------------------


async def test_postgres_query_value_and_errors(sandbox) -> None:
    dsn = sandbox.sandbox.postgres_url
    assert (await sample_of(PostgresQueryProbe("q", dsn, "SELECT 41 + 1"))).value == 42.0
    assert (await sample_of(PostgresQueryProbe("q", dsn, "SELECT 1.5::numeric"))).value == 1.5
    assert (await sample_of(PostgresQueryProbe("q", dsn, "SELECT true"))).value == 1.0
    text = await sample_of(PostgresQueryProbe("q", dsn, "SELECT 'steady'"))
    assert text.ok and text.value is None
    empty = await sample_of(PostgresQueryProbe("q", dsn, "SELECT 1 WHERE false"))
    assert empty.ok and empty.value is None
    wrong = await sample_of(PostgresQueryProbe("q", dsn, "SELECT * FROM no_such_table"))
    assert not wrong.ok
    assert 'relation "no_such_table" does not exist' in (wrong.error or "")
    assert "\n" not in (wrong.error or "")


async def test_postgres_query_times_out(sandbox) -> None:
    probe = PostgresQueryProbe("q", sandbox.sandbox.postgres_url, "SELECT pg_sleep(5)", 0.5)
    s = await sample_of(probe)
    assert s.error == "timed out after 0.5s"


# --- shell command ---------------------------------------------------------------------------


def gone(pid: int) -> bool:
    """No such process, or only its zombie left (no reaper in some containers)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


async def test_command_exit_zero_and_its_number() -> None:
    s = await sample_of(CommandProbe("c", "echo checking; echo ' 17.5 '"))
    assert s.ok and s.value == 17.5
    s = await sample_of(CommandProbe("c", "echo all good"))
    assert s.ok and s.value is None


async def test_command_failure_names_exit_code_and_last_stderr_line() -> None:
    s = await sample_of(CommandProbe("c", "echo first >&2; echo 'disk full' >&2; exit 3"))
    assert not s.ok
    assert s.error == "exit 3: disk full"
    s = await sample_of(CommandProbe("c", "exit 4"))
    assert s.error == "exit 4"
    s = await sample_of(CommandProbe("c", "kill -TERM $$"))
    assert s.error == "killed by signal 15"


async def test_command_timeout_kills_its_whole_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    probe = CommandProbe("c", f"sleep 60 & echo $! > {pid_file}; sleep 60", timeout_s=0.5)
    clock = time.perf_counter()
    s = await sample_of(probe)
    assert s.error == "timed out after 0.5s"
    assert time.perf_counter() - clock < 3
    assert probe.last_pid is not None
    child = int(pid_file.read_text())
    for _ in range(50):  # the kill is sent before the sample returns; death is near instant
        if gone(probe.last_pid) and gone(child):
            break
        await asyncio.sleep(0.02)
    assert gone(probe.last_pid), "the shell outlived its timeout"
    assert gone(child), "a child of the command outlived its timeout"


async def test_command_leaves_no_background_child_after_success(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    probe = CommandProbe("c", f"sleep 60 >/dev/null 2>&1 & echo $! > {pid_file}; echo 1")
    s = await sample_of(probe)
    assert s.ok and s.value == 1.0
    child = int(pid_file.read_text())
    for _ in range(50):
        if gone(child):
            break
        await asyncio.sleep(0.02)
    assert gone(child)


async def test_command_cancelled_mid_sample_kills_it(tmp_path: Path) -> None:
    # The runner cancels a sampling task at the end of a run: that must not leave the command.
    probe = CommandProbe("c", "sleep 60", timeout_s=30)
    task = asyncio.create_task(probe.sample())
    while probe.last_pid is None:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gone(probe.last_pid)


# --- /metrics text ---------------------------------------------------------------------------


def test_exposition_parser_reads_the_format() -> None:
    samples = parse_exposition(METRICS)
    assert len(samples) == 8
    stamped = select(samples, "http_requests_total", {"route": "/b"})[0]
    assert stamped.value == 5 and stamped.timestamp == 1700000000000
    odd = select(samples, "odd_label", {})[0]
    assert odd.labels == {"path": 'say "hi"\\now', "x": "1"}
    assert select(samples, "too_big", {})[0].value == float("inf")
    nan = select(samples, "not_a_number", {})[0].value
    assert nan != nan


def test_exposition_parser_edge_spellings() -> None:
    text = 'a{x = "1" , y="}",} -Inf\n  b{l="a\\nb"}\t2 # {trace_id="abc"} 1.0\n# EOF\n'
    a, b = parse_exposition(text)
    assert a.labels == {"x": "1", "y": "}"} and a.value == float("-inf")
    assert b.labels == {"l": "a\nb"} and b.value == 2.0 and b.timestamp is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("ok 1\nbad{x=1} 2\n", 'line 2: expected ="..." after label x'),
        ('m{x="1} 2\n', "line 1: label value without its closing quote"),
        ("m two\n", "line 1: value 'two' is not a number"),
        ("m\n", "line 1: expected a value"),
        ('m{x="1",x="2"} 1\n', "line 1: label x given twice"),
        ("9m 1\n", "line 1: no metric name"),
    ],
)
def test_exposition_parser_names_the_bad_line(text: str, reason: str) -> None:
    with pytest.raises(ExpositionError) as caught:
        parse_exposition(text)
    assert str(caught.value).startswith(reason)


async def test_metric_probe_sums_matching_series(server: str) -> None:
    url = server + "/metrics"
    total = await sample_of(PrometheusMetricProbe("m", url, "http_requests_total"))
    assert total.ok and total.value == 17.0
    only_a = await sample_of(
        PrometheusMetricProbe("m", url, "http_requests_total", {"route": "/a"})
    )
    assert only_a.value == 12.0
    errors = await sample_of(
        PrometheusMetricProbe("m", url, "http_requests_total", {"code": "500"})
    )
    assert errors.value == 2.0
    quoted = await sample_of(
        PrometheusMetricProbe("m", url, "odd_label", {"path": 'say "hi"\\now'})
    )
    assert quoted.value == 3.5
    nan = await sample_of(PrometheusMetricProbe("m", url, "not_a_number"))
    assert nan.ok and nan.value is None


async def test_metric_probe_fails_without_a_match(server: str) -> None:
    url = server + "/metrics"
    s = await sample_of(PrometheusMetricProbe("m", url, "http_requests_total", {"code": "418"}))
    assert s.error == 'no sample http_requests_total{code="418"}'
    s = await sample_of(PrometheusMetricProbe("m", server + "/nowhere", "x"))
    assert s.error == "HTTP 404 from /nowhere"
    s = await sample_of(PrometheusMetricProbe("m", server + "/broken-metrics", "ok"))
    assert not s.ok and (s.error or "").startswith("line 2:")


# --- PromQL ----------------------------------------------------------------------------------


async def test_query_probe_canned_answers(server: str) -> None:
    s = await sample_of(PrometheusQueryProbe("q", server, "nan"))
    assert s.ok and s.value is None
    s = await sample_of(PrometheusQueryProbe("q", server, "garbled"))
    assert s.error == "'garbled' gave a vector result, not one number"
    s = await sample_of(PrometheusQueryProbe("q", server + "/ok", "x"))  # not Prometheus
    assert s.error == "HTTP 404, not a Prometheus answer"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def prometheus(server: str) -> Iterator[str]:
    """Debian's prometheus on loopback, scraping the test server's /metrics every second."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (Debian: apt-get install prometheus)")
    home = Path(tempfile.mkdtemp(prefix="chaos-tui-test-prom-"))
    target = urlsplit(server).netloc
    (home / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: svc\n    static_configs: [{{targets: ['{target}']}}]\n"
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={home / 'prometheus.yml'}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(home / "log").open("w"),
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:  # until the first scrape has landed
            try:
                with urllib.request.urlopen(f"{url}/api/v1/query?query=demo_value", timeout=1) as r:
                    if json.load(r)["data"]["result"]:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("prometheus did not scrape: " + (home / "log").read_text()[-800:])
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(home, ignore_errors=True)


async def test_query_probe_against_prometheus(prometheus: str) -> None:
    one = await sample_of(PrometheusQueryProbe("q", prometheus, "sum(demo_value)"))
    assert one.ok and one.value == 7.0, one.error
    single = await sample_of(PrometheusQueryProbe("q", prometheus, 'demo_value{instance_id="two"}'))
    assert single.value == 4.0
    scalar = await sample_of(PrometheusQueryProbe("q", prometheus + "/", "scalar(up) * 2"))
    assert scalar.value == 2.0
    up = await sample_of(PrometheusQueryProbe("q", prometheus, 'up{job="svc"}'))
    assert up.value == 1.0


async def test_query_probe_failures_from_prometheus(prometheus: str) -> None:
    several = await sample_of(PrometheusQueryProbe("q", prometheus, "demo_value"))
    assert not several.ok
    assert (several.error or "").startswith("2 series for 'demo_value' (")
    assert 'instance_id="one"' in (several.error or "")
    none = await sample_of(PrometheusQueryProbe("q", prometheus, "no_such_metric"))
    assert none.error == "no series for 'no_such_metric'"
    bad = await sample_of(PrometheusQueryProbe("q", prometheus, "sum("))
    assert (bad.error or "").startswith("prometheus bad_data:")
    ranged = await sample_of(PrometheusQueryProbe("q", prometheus, "demo_value[1m]"))
    assert ranged.error == "'demo_value[1m]' gave a matrix result, not one number"
