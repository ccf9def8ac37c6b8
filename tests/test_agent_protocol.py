"""The seam between the agent and its clients: the client speaks only `agent/protocol.py`
(never FastAPI nor the server), reads the journal and history through the protocol's one
reader, every agent failure is the one `core.errors.AgentError`, and the lease reaches its
injector as an argument (no ambient ContextVar, no import cycle)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest

from chaos_tui.agent import client, leases, protocol, server
from chaos_tui.agent.docker_faults import DockerUnavailable
from chaos_tui.agent.history import LeaseHistory
from chaos_tui.agent.leases import LeaseBook, LeaseJournal, LeaseRefused
from chaos_tui.agent.protocol import Lease, LeaseRequest
from chaos_tui.agent.proxy import ProxyProblem
from chaos_tui.core import errors
from chaos_tui.core.exit_codes import ExitCode
from chaos_tui.settings import Settings
from tests.conftest import env_for, run_cli

SERVER_SIDE = ("fastapi", "starlette", "uvicorn", "chaos_tui.agent.server", "chaos_tui.agent.api")


def test_the_client_imports_neither_fastapi_nor_the_server():
    # A fresh interpreter: this test process imported the server already.
    probe = (
        "import sys, chaos_tui.agent.client, chaos_tui.faults.leased\n"
        f"print([m for m in {SERVER_SIDE!r} if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_protocol_imports_no_server_side_module():
    probe = (
        "import sys, chaos_tui.agent.protocol\n"
        f"print([m for m in {SERVER_SIDE + ('chaos_tui.sandbox.stack',)!r} if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_no_import_cycle_and_no_ambient_lease():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("chaos_tui")
    assert (
        graph.find_shortest_chain(
            importer="chaos_tui.agent.docker_faults", imported="chaos_tui.agent.leases"
        )
        is None
    )
    assert (
        graph.find_shortest_chain(
            importer="chaos_tui.agent.injectors", imported="chaos_tui.agent.leases"
        )
        is None
    )
    assert (
        graph.find_shortest_chain(
            importer="chaos_tui.agent.client", imported="chaos_tui.agent.server"
        )
        is None
    )
    assert not hasattr(leases, "CURRENT_LEASE")


def test_every_agent_failure_is_the_one_agent_error():
    assert client.AgentError is errors.AgentError
    assert client.AgentUnavailable is errors.AgentUnavailable
    for cls in (client.AgentRefused, LeaseRefused, ProxyProblem):
        assert issubclass(cls, errors.AgentError), cls
    assert issubclass(DockerUnavailable, errors.TargetError)
    assert not hasattr(server, "AgentError") or server.AgentError is errors.AgentError
    refused = client.AgentRefused(409, "halted")
    assert (refused.status, refused.detail, refused.exit_code) == (409, "halted", ExitCode.ERROR)


def test_refusing_to_bind_beyond_loopback_is_a_usage_error_without_string_matching():
    server.check_bind("127.0.0.1", allow_remote=False)
    server.check_bind("0.0.0.0", allow_remote=True)
    with pytest.raises(errors.AgentError) as refused:
        server.check_bind("0.0.0.0", allow_remote=False)
    assert refused.value.exit_code == ExitCode.USAGE and "--allow-remote" in str(refused.value)


def _lease(lease_id: str, **extra: Any) -> Lease:
    now = time.time()
    return Lease(
        id=lease_id,
        kind="proxy.down",
        params={"proxy": "p"},
        ttl_s=30,
        created_at=now,
        expires_at=now + 30,
        orphan_ok=True,
        **extra,
    )


def test_the_client_reads_the_journal_through_the_protocol(tmp_path):
    agent = client.AgentClient(Settings(state_dir=tmp_path))
    # No agent folder at all: nothing on disk, and reading makes no folder.
    assert agent.journal_leases() == ([], []) and agent.journal_ids() == []
    assert not (tmp_path / protocol.AGENT_DIR).exists()

    journal = LeaseJournal(agent.folder / protocol.LEASES_DIR)  # the agent's own writer
    journal.write(_lease("good-1", run_id="run-1"))
    (journal.root / "torn.json").write_text('{"id": "torn", "kind"')
    (journal.root / "other.json").write_text(_lease("not-other").model_dump_json())
    found, unreadable = agent.journal_leases()
    assert [(lease.id, lease.run_id, lease.params) for lease in found] == [
        ("good-1", "run-1", {"proxy": "p"})
    ]
    assert sorted(p.name for p in unreadable) == ["other.json", "torn.json"]
    assert agent.journal_ids() == ["good-1", "other", "torn"]
    assert agent.journal_folder == journal.root
    assert journal.load_all()[0] == found  # the agent reads it the same way


def test_ended_since_reads_the_history(tmp_path):
    agent = client.AgentClient(Settings(state_dir=tmp_path))
    agent.folder.mkdir(parents=True)
    history = LeaseHistory(agent.folder / protocol.HISTORY_FILE)
    history.append({"id": "old", "by": "ttl", "ended_at": 100.0})
    history.append({"id": "new", "by": "owner", "ended_at": 200.0, "heal_started_at": 199.5})
    with open(history.path, "a") as fh:
        fh.write('{"id": "odd", "ended_at": "never"}\n')  # not a line the agent wrote
    ended = agent.ended_since(150.0)
    assert list(ended) == ["new"] and ended["new"].by == "owner"
    assert ended["new"].heal_started_at == 199.5


class RecordingInjector:
    """A real injector that breaks nothing: it records the leases the book hands it."""

    description = "records what it is given"

    def __init__(self) -> None:
        self.applied: list[Lease] = []
        self.healed: list[Lease] = []

    def check(self, target: str, params: dict[str, Any]) -> str | None:
        return None

    async def apply(self, lease: Lease) -> dict[str, Any]:
        self.applied.append(lease)
        return {"mark": f"{lease.id}/{lease.run_id}"}

    async def heal(self, lease: Lease) -> None:
        self.healed.append(lease)


async def test_the_book_hands_each_injector_its_lease(tmp_path):
    injector = RecordingInjector()
    book = LeaseBook(
        LeaseJournal(tmp_path / "leases"),
        {"record": injector},
        60.0,
        tmp_path / "halted",
        LeaseHistory(tmp_path / "history.jsonl"),
    )
    lease = await book.create(
        LeaseRequest(id="mine-1", kind="record", ttl_s=30, run_id="run-7", orphan_ok=True)
    )
    assert [(seen.id, seen.run_id) for seen in injector.applied] == [("mine-1", "run-7")]
    assert lease.data == {"mark": "mine-1/run-7"}
    await book.heal("mine-1")
    assert [(seen.id, seen.data) for seen in injector.healed] == [
        ("mine-1", {"mark": "mine-1/run-7"})
    ]


def test_leases_cli_lists_a_dead_agents_journal(tmp_path):
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    folder = protocol.agent_dir(state_dir)
    folder.mkdir(mode=0o700)
    LeaseJournal(folder / protocol.LEASES_DIR).write(_lease("left-1"))
    done = run_cli(["leases", "--json"], env_for(state_dir), timeout=60)
    assert done.returncode == 0, done.stderr
    assert [row["id"] for row in json.loads(done.stdout)] == ["left-1"]
    assert "1 leftover lease(s)" in done.stderr


def test_the_protocol_paths_are_the_apis_routes(tmp_path):
    from chaos_tui.agent.api import make_api
    from chaos_tui.agent.proxy import ProxyManager

    book = LeaseBook(LeaseJournal(tmp_path / "leases"), {}, 60.0, tmp_path / "halted")
    gate = make_api(book, ProxyManager(), "t" * 43, 1)
    served = {route.path for route in gate.app.routes} - {"/openapi.json"}
    p = protocol
    assert served == {
        p.HEALTH,
        p.STATUS,
        p.KINDS,
        p.LEASES,
        p.HISTORY,
        p.HEAL_ALL,
        p.HALT,
        p.PROXIES,
        p.INJECTORS,
        p.lease_path("{lease_id}"),
        p.proxy_path("{name}"),
    }


async def test_a_netcut_heal_takes_its_lease_as_an_argument():
    """The sidecar's labels and the wait for a dead agent's sidecars come from the lease the
    heal is given (once an ambient ContextVar). Against the real Engine; nothing to cut."""
    from chaos_tui.agent.docker_faults import DockerNetCut, docker_client
    from chaos_tui.settings import DockerSettings

    try:
        docker_client()
    except DockerUnavailable as exc:
        pytest.skip(str(exc))
    settings = DockerSettings()
    cut = DockerNetCut(settings)
    lease = _lease("cut-1", run_id="run-9")
    lease.kind, lease.target = cut.kind, "docker"
    lease.params = {
        "project": settings.project,
        "services": ["no-such-service-here"],
        "port": 4222,
        "image": settings.sidecar_image,
    }
    await cut.heal(lease)  # no container: no namespace holds a rule, the heal is done
    with pytest.raises(RuntimeError, match="not running"):
        await cut.apply(lease)


def test_an_answer_of_another_shape_is_one_agent_error(tmp_path):
    """An agent of another version (or not ours) answering in a shape the protocol does not
    know is an AgentError (one line, exit 5), not a pydantic traceback."""
    from chaos_tui.agent.client import AgentClient
    from chaos_tui.agent.protocol import Health
    from chaos_tui.core.errors import AgentError
    from chaos_tui.settings import Settings

    client = AgentClient(Settings(state_dir=tmp_path))
    with pytest.raises(AgentError, match=r"does not read \(Health: \w+: Field required\)"):
        client._read(Health, {"ok": True})
