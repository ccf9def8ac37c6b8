"""A network partition of a user's own container, named exactly in their scenario file
(target `local`): iptables rules in its network namespace, put there and taken away by the
agent's one-shot sidecars. The containers run from the offline test bed's image (no image can
be pulled here), on a network of this test's own; all are removed by id afterwards.

The container under test serves HTTP on 8080 and 8081 (published on 127.0.0.1, where the
probes reach it); a peer on the same network serves 5432 and 5433, so the container can be
seen cut as a client too."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import urllib.request
from dataclasses import dataclass

import pytest

from chaos_tui import docker_engine
from chaos_tui.agent.client import AgentRefused
from chaos_tui.core.contracts import Scenario, ScenarioParams
from chaos_tui.core.errors import UsageError
from chaos_tui.core.plan import plan_run
from chaos_tui.core.runner import Run, RunOptions
from chaos_tui.probes.http_probe import HttpProbe
from chaos_tui.settings import Settings
from chaos_tui.targets.local import LocalTarget
from tests.conftest import build_testbed_image, iptables_rules
from tests.test_own_containers import PROBLEM, docker

pytestmark = pytest.mark.skipif(PROBLEM is not None, reason=f"docker tests skipped: {PROBLEM}")

TAG = f"chaos-t{os.getpid()}"
LABEL = f"chaos-tui.test={TAG}-partition"
SERVE = "python3 -m http.server {} & python3 -m http.server {} & wait"
# Run inside a container: each HOST:PORT argument is dialled once and answers "open",
# "refused" (a reset came back) or the error's name (a timeout: nothing came back).
DIAL = """
import json, socket, sys
out = {}
for addr in sys.argv[1:]:
    host, port = addr.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        out[addr] = "open"
    except ConnectionRefusedError:
        out[addr] = "refused"
    except OSError as exc:
        out[addr] = type(exc).__name__
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Served:
    image: str
    name: str  # the container a scenario file would name
    cid: str
    ip: str
    peer: str  # the peer container's id
    peer_ip: str
    published: dict[int, int]  # container port -> port on 127.0.0.1


def dial(container: str, *addrs: str) -> dict[str, str]:
    return json.loads(docker("exec", container, "python3", "-c", DIAL, *addrs))


def ip_on(container: str, network: str) -> str:
    return docker(
        "inspect",
        "-f",
        f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}',
        container,
    )


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as reply:
            return reply.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def served():
    image = build_testbed_image()
    net = docker("network", "create", "--label", LABEL, f"{TAG}-net")
    made = []
    try:
        for name, ports in (("api", (8080, 8081)), ("peer", (5432, 5433))):
            publish = [a for p in ports for a in ("-p", f"127.0.0.1::{p}")] if name == "api" else []
            made.append(
                docker(
                    "run", "-d", "--init", "--name", f"{TAG}-{name}", "--label", LABEL,
                    "--network", net, *publish, image, "sh", "-c", SERVE.format(*ports),
                )
            )  # fmt: skip
        cid, peer = made
        published = {
            p: int(docker("port", cid, f"{p}/tcp").splitlines()[0].rsplit(":", 1)[1])
            for p in (8080, 8081)
        }
        ip, peer_ip = ip_on(cid, f"{TAG}-net"), ip_on(peer, f"{TAG}-net")
        deadline = time.monotonic() + 30
        while not (
            all(answers(p) for p in published.values())
            and set(dial(cid, f"{peer_ip}:5432", f"{peer_ip}:5433").values()) == {"open"}
        ):
            assert time.monotonic() < deadline, "the test's servers did not come up in 30 s"
            time.sleep(0.2)
        yield Served(image, f"{TAG}-api", cid, ip, peer, peer_ip, published)
    finally:
        for cid in made:
            docker("rm", "-f", cid)
        docker("network", "rm", net)


@pytest.fixture
def local(fresh_state_dir, served, monkeypatch):
    # The agent this target spawns inherits the environment: its sidecars run from the test
    # bed's image (it has iptables), the one a lease must name.
    monkeypatch.setenv("CHAOS_DOCKER__SIDECAR_IMAGE", served.image)
    target = LocalTarget(Settings(state_dir=fresh_state_dir))
    yield target
    target.stop_what_we_started(keep_sandbox=False)


def no_rule_left(served: Served) -> None:
    rules = [r for r in iptables_rules(served.image, served.cid).splitlines() if r.startswith("-A")]
    assert rules == [], f"left in {served.name}'s namespace: {rules}"
    sidecars = docker(
        "ps", "-aq", "--filter", "label=chaos-tui.sidecar",
        "--filter", f"label=chaos-tui.target={served.name}",
    )  # fmt: skip
    assert sidecars == "", f"sidecars left: {sidecars}"


def idle_connection(port: int) -> socket.socket:
    """A connection that sends nothing: only a cut that ends open connections ends it."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn.settimeout(0.5)
    return conn


def ended(conn: socket.socket) -> bool:
    try:
        return conn.recv(1) == b""
    except TimeoutError:
        return False  # still open, and quiet
    except ConnectionError:
        return True
    finally:
        conn.close()


class Short(ScenarioParams):
    warmup_s: float = 0.5
    hold_s: float = 2.0
    recover_s: float = 1.5


class Partition(Scenario):
    """What a scenario file's `network_partition` action on target `local` becomes."""

    name = "own_container_partition"
    hypothesis = "what is cut is unreachable while the cut holds, and answers after the heal"
    Params = Short
    recovery_probe = "p8080"
    PROBE_TIMEOUT_MS = 500

    def __init__(self, container: str, ports: list[int] | None, published: dict[int, int]):
        super().__init__()
        self.container, self.ports, self.published = container, ports, published

    def probes(self, target):
        return [
            HttpProbe(f"p{p}", f"http://127.0.0.1:{host}/", 200, timeout_ms=self.PROBE_TIMEOUT_MS)
            for p, host in self.published.items()
        ]

    def faults(self, target):
        return [target.partition_fault(self.container, ports=self.ports, hold_s=self.params.hold_s)]

    async def check_invariants(self, ctx):
        return []


@pytest.mark.parametrize(
    ("ports", "cut", "radius"),
    [
        ([8080, 5432], {"p8080"}, "network cut on ports 8080, 5432"),
        (None, {"p8080", "p8081"}, "network cut of all traffic but loopback"),
    ],
    ids=["ports", "all-traffic"],
)
def test_a_partition_run_cuts_what_it_names_until_the_heal(local, served, ports, cut, radius):
    plan = plan_run(Partition(served.name, ports, served.published), local)
    short = served.cid[:12]
    assert f"container {served.name} ({short}): {radius}" in plan.blast_radius, plan.blast_radius
    conns = {f"p{p}": idle_connection(host) for p, host in served.published.items()}
    run = Run(plan, local, lambda event: None, RunOptions(rate_hz=20))
    started = time.monotonic()
    result = asyncio.run(run.execute())
    took = time.monotonic() - started
    assert result.outcome == "pass", result.reason
    assert result.heal is not None and result.heal.ok
    window = result.injection_windows[0]
    assert window.applied_at is not None and window.heal_started_at is not None
    assert window.healed_at is not None
    for probe in ("p8080", "p8081"):
        samples = run.timeline.since(probe, 0)
        # Begun once the rules were in, and over (answered or timed out) before the heal began.
        during = [
            s
            for s in samples
            if window.applied_at <= s.t
            and s.t + Partition.PROBE_TIMEOUT_MS / 1000 < window.heal_started_at
        ]
        after = [s for s in samples if s.t > window.healed_at]
        assert len(during) >= 3, (probe, len(during))
        if probe in cut:
            assert not any(s.ok for s in during), (probe, [s for s in during if s.ok])
            assert after and after[-1].ok, (probe, after[-3:])
        else:
            assert all(s.ok for s in samples), (probe, [s for s in samples if not s.ok])
    # Open connections through what was cut were ended by the cut (nothing else ends them).
    assert {name for name, conn in conns.items() if ended(conn)} == cut
    no_rule_left(served)
    print(
        f"\npartition run ({'ports' if ports else 'all traffic'}): {took:.1f}s in all, "
        f"inject {window.applied_at - window.injected_at:.2f}s, "
        f"heal {window.healed_at - window.heal_started_at:.2f}s"
    )


async def test_a_port_cut_is_tcp_on_those_ports_both_ways_and_the_heal_leaves_none(local, served):
    """Through the agent directly, to read the rules while they hold and dial from both
    sides: the container's own connections to a cut port are refused at once, as are
    others' to it; other ports and its loopback carry on."""
    await local.ensure_up()
    ports = [8080, 5432]
    peer, api = f"{served.peer_ip}:", f"{served.ip}:"
    lease = await local.agent.create_lease(
        kind="docker.netcut",
        target="local",
        params={"container": served.name, "ports": ports, "image": served.image},
        ttl_s=30,
    )
    try:
        held = {r for r in iptables_rules(served.image, served.cid).splitlines() if r[:2] == "-A"}
        assert held == {
            f"-A {chain} ! -{way} lo -p tcp -m tcp --{end} {port} ! --tcp-flags RST RST "
            "-j REJECT --reject-with tcp-reset"
            for chain, way in (("INPUT", "i"), ("OUTPUT", "o"))
            for end in ("sport", "dport")
            for port in ports
        }
        assert dial(served.cid, peer + "5432", peer + "5433", "127.0.0.1:8080") == {
            peer + "5432": "refused",
            peer + "5433": "open",
            "127.0.0.1:8080": "open",
        }
        assert dial(served.peer, api + "8080", api + "8081") == {
            api + "8080": "refused",
            api + "8081": "open",
        }
    finally:
        assert await local.agent.heal_lease(lease.id)
    no_rule_left(served)
    assert set(dial(served.cid, peer + "5432").values()) == {"open"}
    assert set(dial(served.peer, api + "8080").values()) == {"open"}


async def test_the_agent_refuses_a_cut_it_cannot_keep_to_the_container(local, served):
    """Each refusal is a 400 in one line, and nothing runs: no sidecar, no rule."""
    await local.ensure_up()
    hostnet = docker(
        "run", "-d", "--init", "--name", f"{TAG}-hostnet", "--label", LABEL,
        "--network", "host", served.image, "sleep", "600",
    )  # fmt: skip
    try:
        good = {"container": served.name, "ports": [8080], "image": served.image}
        for target, params, said in (
            ("local", {**good, "container": f"{served.name}-not-there"}, "no container named"),
            ("local", {**good, "container": served.name[:-1]}, "no container named"),
            ("local", {**good, "ports": [8080, 8080]}, "needs params"),
            ("local", {**good, "ports": [0]}, "needs params"),
            ("local", {**good, "ports": "8080"}, "needs params"),
            ("local", {**good, "image": "someone/else:1"}, "is not the agent's"),
            ("local", {**good, "container": f"{TAG}-hostnet"}, "uses the host's network"),
            ("docker", good, "target 'local'"),
        ):
            with pytest.raises(AgentRefused) as refused:
                await local.agent.create_lease(
                    kind="docker.netcut", target=target, params=params, ttl_s=10
                )
            assert refused.value.status == 400, refused.value
            assert said in str(refused.value) and "\n" not in str(refused.value)
        assert await local.agent.leases() == []
        assert docker("ps", "-aq", "--filter", "label=chaos-tui.sidecar=netcut",
                      "--filter", f"label=chaos-tui.target={TAG}-hostnet") == ""  # fmt: skip
        no_rule_left(served)
    finally:
        docker("rm", "-f", hostnet)


def test_a_container_that_is_not_there_is_refused_when_planned(local, served, monkeypatch):
    """Resolved when the run is planned: a name that is not there (or no Engine to ask) is a
    UsageError before anything starts."""
    missing = Partition(f"{served.name}-not-there", [8080], served.published)
    with pytest.raises(UsageError, match=r"no container named .*-not-there"):
        plan_run(missing, local)
    with pytest.raises(UsageError, match="1 to 65535, not 70000"):
        local.partition_fault(served.name, ports=[8080, 70000], hold_s=1)
    # No Docker Engine answering is said the same way, as bad input, not a crash.
    with monkeypatch.context() as engine:
        engine.setattr(docker_engine, "_client", None)
        engine.setenv("DOCKER_HOST", f"unix:///nonexistent/{TAG}.sock")
        with pytest.raises(UsageError, match="Docker Engine is not reachable"):
            local.partition_fault(served.name, ports=None, hold_s=1)
    assert local.agent.info() is None, "planning started nothing"
    no_rule_left(served)


def test_a_container_in_its_network_namespace_is_named_in_the_blast_radius(local, served):
    """A container run with `--network container:NAME` lives in the same namespace: the cut
    cuts it too, and the plan says so before anything runs."""
    sharer = docker(
        "run", "-d", "--init", "--name", f"{TAG}-sharer", "--label", LABEL,
        "--network", f"container:{served.name}", served.image, "sleep", "600",
    )  # fmt: skip
    try:
        fault = local.partition_fault(served.name, ports=[8080], hold_s=1)
        assert f"container {TAG}-sharer: in its network namespace, cut too" in fault.touches
        owner = f"({served.name}|{served.cid[:12]})"  # the Engine may keep either
        with pytest.raises(UsageError, match=f"uses the network of container {owner}:"):
            local.partition_fault(f"{TAG}-sharer", ports=None, hold_s=1)
    finally:
        docker("rm", "-f", sharer)
    assert local.agent.info() is None, "planning started nothing"


def test_a_scenario_files_network_partition_runs_through_the_cli(served, tmp_path, fresh_state_dir):
    """The file's `network_partition` on the container by name, as a user runs it: the probe
    through the cut port fails during the fault and answers after; the other port is untouched."""
    from tests.conftest import env_for, run_cli

    cut, kept = served.published[8080], served.published[8081]
    path = tmp_path / "partition.yaml"
    path.write_text(
        f"""\
version: 1
scenarios:
  api_cut:
    hypothesis: "the api answers again within 5 s of its port being cut"
    warmup_seconds: 0.5
    recover_seconds: 1
    steady_state:
      - http_200_from: http://127.0.0.1:{cut}/
        name: cut_port
      - http_200_from: http://127.0.0.1:{kept}/
        name: kept_port
    actions:
      - type: network_partition
        target: {served.name}
        ports: [8080]
        duration_seconds: 2
    validation:
      - recovery_time_max_seconds: {{probe: cut_port, max: 5}}
      - error_rate_max: {{probe: kept_port, max: 0}}
      - detect_time_max_seconds: {{probe: cut_port, max: 2}}
"""
    )
    env = env_for(fresh_state_dir, CHAOS_ENABLED="true", CHAOS_DOCKER__SIDECAR_IMAGE=served.image)
    done = run_cli(["--headless", "--file", str(path), "--scenario", "api_cut", "--json"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    judged = {i["name"]: i for i in result["invariants"]}
    assert all(i["passed"] for i in judged.values()), judged
    assert judged["detect_time(cut_port)"]["measured"] is not None
    assert result["probes"]["cut_port"]["during"]["error_rate"] > 0.5
    assert result["probes"]["kept_port"]["during"]["error_rate"] == 0
    assert "REJECT" not in iptables_rules(served.image, served.cid), "the heal took every rule"
