"""The agent's front door, attacked for real: a `chaos-tui agent` process per test, in a state
dir of its own, and raw sockets where a polite client would not send what an attacker does
(NaN literals, a 60 MB body, a body that never ends)."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from chaos_tui.agent.client import AgentClient, AgentUnavailable
from chaos_tui.settings import Settings
from tests.conftest import CHAOS_TUI, env_for

START_TIMEOUT_S = 20


class RunningAgent:
    """`chaos-tui agent` on a free loopback port, stopped (SIGTERM, by pid) by the test."""

    def __init__(self, state_dir: Path) -> None:
        self.folder = state_dir / "agent"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log = state_dir / "agent-test.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                CHAOS_TUI + ["agent", "--port", "0"],
                env=env_for(state_dir),
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                info = json.loads((self.folder / "agent.json").read_text())
            except (OSError, ValueError):
                info = {}
            if info.get("pid") == self.proc.pid:
                self.url = info["url"]
                self.port = int(self.url.rsplit(":", 1)[1])
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"the agent exited: {self.log.read_text()}")
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"the agent did not start: {self.log.read_text()}")

    @property
    def token(self) -> str:
        return (self.folder / "token").read_text().strip()

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def status(self, kind: str) -> int:
        """VmRSS / VmHWM of the agent in kB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(kind + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {kind}")

    def raw(self, request: bytes, timeout: float = 5) -> bytes:
        """Send bytes as they are (NaN literals and all) and read the whole answer."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(request)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer:
                    head, _, rest = answer.partition(b"\r\n\r\n")
                    length = [
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ]
                    if length and len(rest) >= length[0]:
                        break
            return answer

    def post_raw(self, path: str, body: bytes, auth: bool = True) -> tuple[int, dict]:
        headers = [
            f"POST {path} HTTP/1.1",
            "Host: agent",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            "Connection: close",
        ]
        if auth:
            headers.append(f"Authorization: Bearer {self.token}")
        answer = self.raw(("\r\n".join(headers) + "\r\n\r\n").encode() + body)
        head, _, rest = answer.partition(b"\r\n\r\n")
        return int(head.split()[1]), json.loads(rest) if rest.startswith(b"{") else {}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def start_agent(fresh_state_dir):
    started: list[RunningAgent] = []

    def start() -> RunningAgent:
        started.append(RunningAgent(fresh_state_dir))
        return started[-1]

    yield start
    for agent in started:
        agent.stop()
        assert agent.proc.returncode == 0, agent.log.read_text()


# -- 1: a token that is never weak -------------------------------------------------------------


# A token that is a symlink never gets this far: the state dir check refuses any link in it
# (tests/test_state_dir.py::test_link_in_state_dir_is_refused_and_its_target_untouched).
@pytest.mark.parametrize("weak", ["empty", "newline", "short", "spaces", "shared"])
def test_a_weak_token_file_is_replaced_and_never_accepted(fresh_state_dir, start_agent, weak):
    folder = fresh_state_dir / "agent"
    folder.mkdir()
    token = folder / "token"
    token.write_text(
        {
            "empty": "",
            "newline": "\n",
            "short": "abc123\n",
            "spaces": " " * 40 + "\n",
            "shared": "A" * 43 + "\n",
        }[weak]
    )
    token.chmod(0o644 if weak == "shared" else 0o600)
    agent = start_agent()
    response = httpx.post(
        agent.url + "/proxies", json={"name": "p", "upstream": "127.0.0.1:9"}, timeout=10
    )
    assert response.status_code == 401, response.text  # main: 201 with an empty token
    assert response.headers["www-authenticate"] == "Bearer"
    fresh = token.read_text().strip()
    assert len(fresh) >= 43 and not token.is_symlink()
    assert oct(token.stat().st_mode & 0o777) == "0o600"
    assert "replaced with a new one" in agent.log.read_text()
    for guess in ("Bearer", "Bearer " + "x" * 43, "Bearer " + "A" * 43, "Bearer abc123"):
        answer = httpx.get(agent.url + "/status", headers={"Authorization": guess})
        assert answer.status_code == 401
    assert httpx.get(agent.url + "/status", headers=agent.auth()).status_code == 200
    assert [p.name for p in folder.iterdir() if p.name.startswith(".token")] == []


@pytest.mark.parametrize("bad", ["foreign", "directory"])
def test_a_token_file_the_agent_may_not_replace_stops_it_with_one_line(fresh_state_dir, bad):
    folder = fresh_state_dir / "agent"
    folder.mkdir()
    token = folder / "token"
    if bad == "foreign":
        token.write_text("A" * 43 + "\n")
        token.chmod(0o600)
        os.chown(token, 65534, 65534)  # nobody's: not ours to read or replace
    else:
        token.mkdir()
    proc = subprocess.run(
        CHAOS_TUI + ["agent", "--port", "0"],
        env=env_for(fresh_state_dir),
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "token" in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert not (folder / "agent.json").exists()


def test_a_token_that_cannot_be_written_leaves_no_empty_token(fresh_state_dir):
    """A full disk on the first start once left a 0-byte token, and every later agent then
    served anyone. RLIMIT_FSIZE 0 makes every file write fail (EFBIG) as a full disk would."""

    def no_file_writes() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))

    proc = subprocess.run(
        CHAOS_TUI + ["agent", "--port", "0"],
        env=env_for(fresh_state_dir),
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        preexec_fn=no_file_writes,
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write the agent token" in lines[0], proc.stderr
    folder = fresh_state_dir / "agent"
    assert [p.name for p in folder.iterdir() if "token" in p.name] == []


@pytest.mark.parametrize("text", ["", "\n", "short\n", "é" * 40, "symlink"])
def test_the_client_never_sends_an_empty_or_short_token(fresh_state_dir, text):
    folder = fresh_state_dir / "agent"
    folder.mkdir()
    if text == "symlink":
        (fresh_state_dir / "elsewhere").write_text("A" * 43)
        (folder / "token").symlink_to(fresh_state_dir / "elsewhere")
    else:
        (folder / "token").write_text(text)
    with pytest.raises(
        AgentUnavailable, match=r"agent token .* (empty|too short|characters|symlink)"
    ):
        AgentClient(Settings(state_dir=fresh_state_dir)).token()


# -- 6: auth before body, bodies capped --------------------------------------------------------


def _send_big_body(agent: RunningAgent, headers: list[str], size: int) -> tuple[float, bytes]:
    """Send the headers, then `size` bytes of JSON-ish body from a thread while this one waits
    for the answer: (seconds from the headers to the status line, the status line)."""
    sock = socket.create_connection(("127.0.0.1", agent.port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)

    def pour() -> None:  # one valid JSON object: {"x": "aaa...a"}
        piece, sent = b"a" * (1 << 20), 0
        try:
            sock.sendall(b'{"x":"')
            sent = 6
            while sent < size - 2:
                sent += sock.send(piece[: size - 2 - sent])
            sock.sendall(b'"}')
        except OSError:
            pass  # the agent closed: exactly what it should do

    started = time.perf_counter()
    sock.sendall(("\r\n".join(headers) + "\r\n\r\n").encode())
    writer = threading.Thread(target=pour, daemon=True)
    writer.start()
    answer = b""
    try:
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    finally:
        elapsed = time.perf_counter() - started
        sock.close()
        writer.join(10)
    return elapsed, answer.split(b"\r\n")[0]


def test_a_60mb_body_without_a_token_is_refused_unread(start_agent):
    agent = start_agent()
    size = 60 << 20
    httpx.get(agent.url + "/health", timeout=10)  # the agent has served once: a steady RSS
    peak_before = agent.status("VmHWM")
    elapsed, status = _send_big_body(
        agent,
        [
            "POST /proxies HTTP/1.1",
            "Host: agent",
            "Content-Type: application/json",
            f"Content-Length: {size}",
        ],
        size,
    )
    grown_mb = (agent.status("VmHWM") - peak_before) / 1024
    print(
        f"60 MB unauthenticated: {status!r} after {elapsed * 1000:.1f} ms, "
        f"peak RSS +{grown_mb:.1f} MB"
    )
    assert status.startswith(b"HTTP/1.1 401"), status
    assert elapsed < 0.1, elapsed
    assert grown_mb < 20, grown_mb
    assert httpx.get(agent.url + "/status", headers=agent.auth()).status_code == 200


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_body_over_1mb_is_refused_with_413(start_agent, declared):
    agent = start_agent()
    size = 8 << 20
    framing = f"Content-Length: {size}" if declared else "Transfer-Encoding: chunked"
    headers = [
        "POST /proxies HTTP/1.1",
        "Host: agent",
        "Content-Type: application/json",
        framing,
        f"Authorization: Bearer {agent.token}",
    ]
    if declared:
        elapsed, status = _send_big_body(agent, headers, size)
    else:  # chunked: counted as it comes, refused once past 1 MB
        sock = socket.create_connection(("127.0.0.1", agent.port), timeout=10)
        started = time.perf_counter()
        sock.sendall(("\r\n".join(headers) + "\r\n\r\n").encode())
        status = b""
        try:
            for _ in range(8):  # 2 MB in 256 kB chunks, then nothing more
                chunk = b"a" * (256 << 10)
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        except OSError:
            pass
        status = sock.recv(4096).split(b"\r\n")[0]
        elapsed = time.perf_counter() - started
        sock.close()
    assert status.startswith(b"HTTP/1.1 413"), status
    assert elapsed < 2, elapsed
    assert httpx.get(agent.url + "/proxies", headers=agent.auth()).json() == []


# -- 7: NaN / Infinity anywhere, proxies that loop ---------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"kind":"proxy.down","params":{"proxy":"p"},"ttl_s":NaN}',
        b'{"kind":"proxy.down","params":{"proxy":"p"},"ttl_s":-Infinity}',
        b'{"kind":"proxy.down","params":{"proxy":"p"},"ttl_s":Infinity}',
        b'{"kind":"proxy.down","params":{"proxy":"p"},"ttl_s":1e400}',
        b'{"kind":"proxy.toxic","params":{"proxy":"p","type":"latency","attributes":{"latency":NaN}},'
        b'"ttl_s":5}',
        b'{"kind":"proxy.toxic","params":{"proxy":"p","type":"latency","toxicity":-Infinity},"ttl_s":5}',
    ],
)
def test_nan_or_infinity_in_a_lease_is_a_422_not_a_500(start_agent, body):
    agent = start_agent()
    assert (
        httpx.post(
            agent.url + "/proxies",
            headers=agent.auth(),
            timeout=10,
            json={"name": "p", "upstream": "127.0.0.1:9"},
        ).status_code
        == 201
    )
    status, answer = agent.post_raw("/leases", body)
    assert status == 422, answer  # main: 500 and a reset connection
    assert "detail" in answer
    assert httpx.get(agent.url + "/leases", headers=agent.auth()).json() == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"name":"q","upstream":NaN}',
        b'{"name":"q","upstream":"127.0.0.1:80","listen":-Infinity}',
        b'{"name":NaN,"upstream":"127.0.0.1:80"}',
    ],
)
def test_nan_in_a_proxy_request_is_a_422_not_a_500(start_agent, body):
    agent = start_agent()
    status, answer = agent.post_raw("/proxies", body)
    assert status == 422, answer
    assert httpx.get(agent.url + "/proxies", headers=agent.auth()).json() == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_proxy_may_not_relay_to_itself_another_proxy_or_the_agent(start_agent):
    agent = start_agent()
    port = _free_port()
    http = httpx.Client(base_url=agent.url, headers=agent.auth(), timeout=10)
    first = http.post("/proxies", json={"name": "first", "upstream": "127.0.0.1:9"}).json()
    first_port = int(first["listen"].rsplit(":", 1)[1])
    loops = {
        "itself": (f"127.0.0.1:{port}", f"127.0.0.1:{port}"),
        "itself via localhost": (f"127.0.0.1:{port}", f"localhost:{port}"),
        "itself via 0.0.0.0": (f"127.0.0.1:{port}", f"0.0.0.0:{port}"),
        "the agent": ("127.0.0.1:0", f"127.0.0.1:{agent.port}"),
        "the agent via ::1": ("127.0.0.1:0", f"[::1]:{agent.port}"),
        "the agent via localhost": ("127.0.0.1:0", f"localhost:{agent.port}"),
        "another proxy": ("127.0.0.1:0", f"127.0.0.1:{first_port}"),
        "another proxy via 0.0.0.0": ("127.0.0.1:0", f"0.0.0.0:{first_port}"),
        "into an existing proxy's upstream": ("127.0.0.1:9", "127.0.0.1:10"),
    }
    for what, (listen, upstream) in loops.items():
        response = http.post(
            "/proxies", json={"name": "loop", "listen": listen, "upstream": upstream}
        )
        assert response.status_code == 400, (what, response.text)  # main: 201, then a loop
    assert [p["name"] for p in http.get("/proxies").json()] == ["first"]
    assert (
        http.post("/proxies", json={"name": "fine", "upstream": f"127.0.0.1:{port}"}).status_code
        == 201
    )
    http.close()


def test_a_proxy_caps_its_connections_and_the_agent_keeps_serving(start_agent):
    agent = start_agent()
    upstream = socket.create_server(("127.0.0.1", 0), backlog=2048)  # accepts, never answers
    http = httpx.Client(base_url=agent.url, headers=agent.auth(), timeout=10)
    made = http.post(
        "/proxies", json={"name": "p", "upstream": f"127.0.0.1:{upstream.getsockname()[1]}"}
    ).json()
    listen_port = int(made["listen"].rsplit(":", 1)[1])
    clients: list[socket.socket] = []
    accepted: list[socket.socket] = []
    upstream.setblocking(False)
    try:
        for _ in range(1024 + 50):
            clients.append(socket.create_connection(("127.0.0.1", listen_port), timeout=5))
            try:
                while True:
                    accepted.append(upstream.accept()[0])
            except BlockingIOError:
                pass
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            view = http.get("/proxies/p").json()
            if view["refused"] >= 50:
                break
            time.sleep(0.1)
        assert view["connections"] == 1024 and view["refused"] >= 50, view
        # The agent still has fds for its own work (main: 500s once a loop ate them all).
        assert (
            http.post("/proxies", json={"name": "after", "upstream": "127.0.0.1:9"}).status_code
            == 201
        )
        assert (
            http.post(
                "/leases", json={"kind": "proxy.down", "params": {"proxy": "after"}, "ttl_s": 2}
            ).status_code
            < 500
        )
        assert http.get("/status").status_code == 200
    finally:
        for sock in clients + accepted:
            sock.close()
        upstream.close()
        http.close()


def test_one_proxy_name_sent_concurrently_makes_one_proxy(start_agent):
    agent = start_agent()

    async def race() -> list[int]:
        async with httpx.AsyncClient(
            base_url=agent.url,
            headers=agent.auth(),
            timeout=10,
            limits=httpx.Limits(max_keepalive_connections=0),
        ) as http:
            answers = await asyncio.gather(
                *(
                    http.post("/proxies", json={"name": "same", "upstream": "127.0.0.1:9"})
                    for _ in range(10)
                )
            )
        return sorted(a.status_code for a in answers)

    assert asyncio.run(race()) == [201] + [400] * 9  # main: several 201s, one proxy kept
    views = httpx.get(agent.url + "/proxies", headers=agent.auth()).json()
    assert [v["name"] for v in views] == ["same"]
