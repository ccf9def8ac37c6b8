"""The policy pair as real processes on loopback: the decision server (Rego through regopy, OPA's
REST shape) and the policy gateway, which must deny whenever OPA cannot give an explicit allow.

Every process is started with processes.spawn and stopped by its recorded pid; each fixture
checks on the way out that nothing it started still runs.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from chaos_tui.sandbox import processes
from chaos_tui.sandbox.policy_engine import PolicyEngine, PolicyError, default_policy_dir

pytestmark = pytest.mark.timeout(60)

ALLOW = "chaos/gateway/allow"


def request(role: str | None, action: str, tenant: str | None, resource_tenant: str | None) -> dict:
    doc: dict = {"subject": {"role": role} if role else {}, "action": action, "resource": {}}
    if tenant is not None:
        doc["tenant"] = tenant
    if resource_tenant is not None:
        doc["resource"]["tenant"] = resource_tenant
    return doc


# (input, what the policy must answer)
CASES = [
    (request("admin", "delete", "a", "b"), True),  # admins: anything, anywhere
    (request("admin", "read", None, None), True),
    (request("viewer", "read", "a", "a"), True),
    (request("viewer", "write", "a", "a"), False),  # viewers only read
    (request("viewer", "read", "a", "b"), False),  # not across tenants
    (request("editor", "write", "a", "a"), True),
    (request("editor", "read", "a", "a"), True),
    (request("editor", "delete", "a", "a"), False),  # only admins delete
    (request("editor", "write", "a", "b"), False),
    (request("editor", "write", None, None), False),  # no tenant is not "the same tenant"
    (
        {
            "subject": {"role": "editor"},
            "action": "read",
            "tenant": None,
            "resource": {"tenant": None},
        },
        False,
    ),  # nor are two nulls
    (
        {"subject": {"role": "editor"}, "action": "read", "tenant": "", "resource": {"tenant": ""}},
        False,
    ),
    (request("guest", "read", "a", "a"), False),  # unknown role
    (request(None, "read", "a", "a"), False),
    ({}, False),
    ("not an object", False),
]


# -- the engine, in process --------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine(default_policy_dir())


@pytest.mark.parametrize("doc,allowed", CASES)
def test_engine_decides_like_the_policy_says(engine, doc, allowed):
    # Defined either way: `default allow := false` makes a deny an explicit false.
    assert engine.evaluate(ALLOW, doc) == (True, allowed)


def test_engine_undefined_documents_and_other_paths(engine):
    assert engine.evaluate("chaos/gateway/no_such_rule", {}) == (False, None)
    assert engine.evaluate("no/such/package") == (False, None)
    assert engine.evaluate(ALLOW) == (True, False)  # no input at all: still the default
    assert engine.evaluate("/chaos/gateway/allow/", CASES[0][0]) == (True, True)
    defined, package = engine.evaluate("chaos/gateway", CASES[2][0])
    assert defined and package["allow"] is True
    # Odd segments are quoted, never spliced into the query.
    assert engine.evaluate('chaos/gateway"] ; x := ["', {}) == (False, None)


def test_engine_refuses_what_it_cannot_load(tmp_path):
    with pytest.raises(PolicyError, match="does not exist"):
        PolicyEngine(tmp_path / "missing")
    with pytest.raises(PolicyError, match=r"no \.rego files"):
        PolicyEngine(tmp_path)
    (tmp_path / "broken.rego").write_text("package broken\n\nallow if {\n\tinput.x == 1\n")
    with pytest.raises(PolicyError, match=r"broken\.rego:3:10: "):
        PolicyEngine(tmp_path)


def test_default_policy_dir_is_the_canonical_policy():
    link = default_policy_dir() / "gateway.rego"
    canonical = Path(__file__).resolve().parents[1] / "infra/docker/opa/policies/gateway.rego"
    assert link.is_symlink() and not Path(link.readlink()).is_absolute()
    assert link.resolve() == canonical.resolve()


# -- the services, as processes ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Services:
    """Processes started by one test or module, all stopped (and checked) at the end."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="chaos-tui-test-policy-", dir="/tmp"))
        self.records: list[processes.ProcessRecord] = []
        self.urls: dict[str, str] = {}  # by process name

    def start(self, name: str, module: str, *args: str) -> tuple[processes.ProcessRecord, str]:
        port = free_port()
        command = [sys.executable, "-m", module, "--port", str(port), *args]
        record = processes.spawn(name, command, self.dir / f"{name}.log")
        self.records.append(record)
        self.urls[name] = f"http://127.0.0.1:{port}"
        return record, self.urls[name]

    def opa(self, name: str = "opa", *args: str) -> tuple[processes.ProcessRecord, str]:
        return self.start(name, "chaos_tui.sandbox.decision_server", *args)

    def gateway(self, name: str, opa_url: str, *args: str) -> tuple[processes.ProcessRecord, str]:
        return self.start(
            name,
            "chaos_tui.sandbox.policy_gateway",
            "--opa-url",
            opa_url,
            "--opa-timeout-s",
            "0.3",
            *args,
        )

    def wait_healthy(
        self, record: processes.ProcessRecord, url: str, timeout_s: float = 10
    ) -> float:
        """Seconds from now until GET /health answers 200."""
        start = time.monotonic()
        deadline = start + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/health", timeout=0.5, trust_env=False).status_code == 200:
                    return time.monotonic() - start
            except httpx.HTTPError:
                pass
            if not processes.is_running(record):
                processes.wait_gone(record, 0)  # reap it
                pytest.fail(f"{record.name} exited:\n{Path(record.log).read_text()}")
            time.sleep(0.02)
        pytest.fail(
            f"{record.name} not healthy within {timeout_s}s:\n{Path(record.log).read_text()}"
        )

    def wait_all_healthy(self) -> None:
        for record in self.records:  # they start in parallel: waiting in turn costs nothing
            if processes.is_running(record):
                self.wait_healthy(record, self.urls[record.name])

    def log(self, record: processes.ProcessRecord) -> str:
        return Path(record.log).read_text()

    def stop_all(self) -> list[str]:
        left = []
        for record in self.records:  # ask them all first: each takes ~0.2 s to wind down
            processes.signal_only(record, signal.SIGTERM)
        for record in self.records:
            if not processes.stop(record, timeout_s=5):
                left.append(f"{record.name} pid {record.pid}")
        shutil.rmtree(self.dir, ignore_errors=True)
        return left


@pytest.fixture
def services():
    started = Services()
    try:
        yield started
    finally:
        left = started.stop_all()
        assert not left, f"still running: {left}"


@pytest.fixture(scope="module")
def pair():
    """One decision server and one gateway in front of it, for the tests that do not break them."""
    started = Services()
    try:
        _, opa_url = started.opa("opa", "--ready-file", str(started.dir / "opa.ready"))
        started.gateway("gateway", opa_url, "--ready-file", str(started.dir / "gateway.ready"))
        started.wait_all_healthy()
        yield started
    finally:
        left = started.stop_all()
        assert not left, f"still running: {left}"


def post(url: str, body, timeout: float = 5) -> httpx.Response:
    """POST a JSON document, or raw bytes as they are (to send broken JSON)."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        url,
        content=content,
        headers={"content-type": "application/json"},
        timeout=timeout,
        trust_env=False,
    )


def decide(gateway_url: str, doc) -> dict:
    response = post(gateway_url + "/v1/decide", doc)
    assert response.status_code == 200, response.text
    return response.json()


def test_server_answers_in_opas_shape(pair):
    opa_url = pair.urls["opa"]
    health = httpx.get(opa_url + "/health", timeout=5, trust_env=False)
    assert (health.status_code, health.json()) == (200, {})
    allow = post(opa_url + "/v1/data/" + ALLOW, {"input": CASES[0][0]})
    assert (allow.status_code, allow.json()) == (200, {"result": True})
    deny = post(opa_url + "/v1/data/" + ALLOW, {"input": CASES[3][0]})
    assert (deny.status_code, deny.json()) == (200, {"result": False})
    # An undefined document: 200 and no "result" at all, as OPA answers.
    undefined = post(opa_url + "/v1/data/chaos/gateway/no_such_rule", {"input": {}})
    assert (undefined.status_code, undefined.json()) == (200, {})
    no_input = post(opa_url + "/v1/data/" + ALLOW, b"")
    assert no_input.json() == {"result": False}
    # An integer beyond int64 must not wrap around inside regopy.
    big = post(opa_url + "/v1/data/chaos", {"input": {"n": 10**30}})
    assert big.status_code == 200


def test_services_write_their_ready_files(pair):
    for name in ("opa", "gateway"):
        assert (pair.dir / f"{name}.ready").read_text() == "ready\n"


DEEP = 150  # deeper than the engine takes (regopy's converter recurses once per level)


@pytest.mark.parametrize(
    "body",
    [
        b'{"input": ',
        b"NaN",
        b'{"input": NaN}',
        b"[1, 2]",
        b"\xff",
        '{"input": 1}'.encode("utf-16"),
        b'{"input": ' + b"[" * DEEP + b"]" * DEEP + b"}",
        b'{"input": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # deeper than Python's json takes
    ],
)
def test_server_rejects_bad_bodies(pair, body):
    opa_url = pair.urls["opa"]
    response = post(opa_url + "/v1/data/" + ALLOW, body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_parameter" and response.json()["message"]


def test_server_unknown_routes(pair):
    opa_url = pair.urls["opa"]
    assert httpx.get(opa_url + "/v2/nothing", timeout=5, trust_env=False).status_code == 404
    assert post(opa_url + "/v1/policies", {}).status_code == 404
    assert httpx.delete(opa_url + "/v1/data/x", timeout=5, trust_env=False).status_code == 405


def test_gateway_agrees_with_the_engine(pair, engine):
    gateway_url = pair.urls["gateway"]
    health = httpx.get(gateway_url + "/health", timeout=5, trust_env=False)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    for doc, allowed in CASES:
        assert engine.evaluate(ALLOW, doc) == (True, allowed)
        answer = decide(gateway_url, doc)
        assert answer == {"allow": allowed, "reason": "policy allow" if allowed else "policy deny"}


def test_gateway_rejects_a_body_that_is_not_json(pair):
    gateway_url = pair.urls["gateway"]
    response = post(gateway_url + "/v1/decide", b"{nope")
    assert response.status_code == 400
    assert response.json()["allow"] is False


def test_gateway_fails_closed_when_opa_dies(services):
    opa, opa_url = services.opa()
    gateway, gateway_url = services.gateway("gateway", opa_url)
    open_gw, open_url = services.gateway("gateway-fail-open", opa_url, "--test-fail-open")
    services.wait_all_healthy()
    assert "TEST-ONLY" in services.log(open_gw)
    assert "TEST-ONLY" not in services.log(gateway)
    admin, viewer_write = CASES[0][0], CASES[3][0]
    assert decide(gateway_url, admin)["allow"] is True
    # With OPA up even the fail-open build denies what the policy denies.
    assert decide(open_url, viewer_write) == {"allow": False, "reason": "policy deny"}

    assert processes.signal_only(opa, signal.SIGKILL)
    assert processes.wait_gone(opa, 5)
    for doc, _ in CASES:
        answer = decide(gateway_url, doc)
        assert answer["allow"] is False and answer["reason"].startswith("opa unreachable: "), answer
        # The broken-on-purpose gateway allows even what the policy denies: the scenario's
        # negative test relies on exactly this.
        assert decide(open_url, doc)["allow"] is True
    assert httpx.get(gateway_url + "/health", timeout=5, trust_env=False).status_code == 200

    # OPA back on the same port: allow resumes on the next decision (no cached failure).
    port = opa_url.rsplit(":", 1)[1]
    command = [sys.executable, "-m", "chaos_tui.sandbox.decision_server", "--port", port]
    again = processes.spawn("opa-again", command, services.dir / "opa-again.log")
    services.records.append(again)
    services.wait_healthy(again, opa_url)
    assert decide(gateway_url, admin) == {"allow": True, "reason": "policy allow"}
    assert decide(gateway_url, viewer_write) == {"allow": False, "reason": "policy deny"}


def test_gateway_denies_every_other_kind_of_answer(services):
    _, opa_url = services.opa()
    # A document that does not exist: OPA says 200 with no "result".
    _, undefined_url = services.gateway(
        "gw-undefined", opa_url, "--policy-path", "chaos/gateway/no_such_rule"
    )
    # A document that exists but is not `true` (an object here).
    _, not_bool_url = services.gateway("gw-object", opa_url, "--policy-path", "chaos/gateway")
    # An HTTP server that is not OPA answers something else than 200: a gateway asking
    # another gateway gets 404 for /v1/data/...
    _, not_opa_url = services.gateway("gw-not-opa", opa_url)
    _, wrong_url = services.gateway("gw-wrong-status", not_opa_url)
    _, wrong_open_url = services.gateway("gw-wrong-open", not_opa_url, "--test-fail-open")
    # A peer that accepts connections but never answers: the timeout must deny.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        silent_url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        _, mute_url = services.gateway("gw-timeout", silent_url)
        services.wait_all_healthy()
        admin = CASES[0][0]
        assert decide(undefined_url, admin) == {"allow": False, "reason": "opa undefined"}
        assert decide(not_bool_url, admin) == {"allow": False, "reason": "policy deny"}
        assert decide(wrong_url, admin) == {"allow": False, "reason": "opa status 404"}
        assert decide(wrong_open_url, admin)["allow"] is True
        started = time.monotonic()
        answer = decide(mute_url, admin)
        assert answer["allow"] is False and answer["reason"].startswith("opa unreachable: ")
        assert time.monotonic() - started < 2  # --opa-timeout-s 0.3
    finally:
        silent.close()


def run_server(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "chaos_tui.sandbox.decision_server",
            "--port",
            str(free_port()),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=20,
        stdin=subprocess.DEVNULL,
    )


def test_bad_policy_dir_is_one_clear_line(tmp_path):
    missing = run_server("--policy-dir", str(tmp_path / "missing"))
    assert missing.returncode != 0
    assert missing.stderr.strip().count("\n") == 0 and "does not exist" in missing.stderr
    assert missing.stdout == ""

    (tmp_path / "broken.rego").write_text("package broken\n\nallow if {\n")
    broken = run_server("--policy-dir", str(tmp_path))
    assert broken.returncode != 0
    lines = broken.stderr.strip().splitlines()
    assert len(lines) == 1 and "broken.rego:3:10:" in lines[0], broken.stderr
    assert broken.stdout == ""  # rego-cpp's own error print is silenced


def test_taken_port_is_one_clear_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "chaos_tui.sandbox.policy_gateway",
                "--port",
                str(port),
                "--opa-url",
                "http://127.0.0.1:1",
            ],
            capture_output=True,
            text=True,
            timeout=20,
            stdin=subprocess.DEVNULL,
        )
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1 and "cannot listen" in result.stderr
