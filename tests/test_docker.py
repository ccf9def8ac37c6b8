"""The Docker Compose stack, for real: the compose files' profiles, the offline test bed
(built here with no registry), every scenario against containers through `just`, a SIGKILLed
run whose container the agent's TTL restores, and `just chaos-down` leaving nothing of ours.

The stack runs under compose projects of this session's own (chaos-t<pid>, chaos-t<pid>-mesh)
on free host ports, so another stack on the same engine (yours under `chaos`, a leak of an
earlier run, another test session) neither skips these tests nor is touched by them.

Skipped, with the reason, where no Docker Engine answers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from chaos_tui.agent.client import AgentClient, AgentError
from chaos_tui.core.exit_codes import ExitCode
from chaos_tui.scenarios import SCENARIOS
from chaos_tui.settings import Settings
from tests.conftest import (
    CHAOS_TUI,
    build_testbed_image,
    env_for,
    iptables_rules,
    leftovers,
    make_state_dir,
    why_no_testbed,
)

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "infra" / "docker"
JUST = shutil.which("just") or str(Path(sys.executable).parent / "just")
PROFILES = {
    "chaos-outbox": {"postgres", "nats", "sea-mq-worker"},
    "chaos-opa": {"opa", "policy-gateway"},
    "chaos-observe": {"openobserve", "otel-collector"},
}
# This session's compose projects: the justfile and the agent both read these variables.
PROJECT = f"chaos-t{os.getpid()}"
MESH_PROJECT = f"{PROJECT}-mesh"
OURS = (PROJECT, MESH_PROJECT)


def _compose_tools() -> dict[str, str]:
    """One Compose command per generation found here ("v1", "v2+"): the `docker compose` plugin
    and every distinct `docker-compose` on PATH or beside this Python (the test extra brings a
    v2+ one there). Each is the COMPOSE value the justfile takes."""
    candidates = ["docker compose"] if shutil.which("docker") else []
    dirs = os.environ.get("PATH", "").split(os.pathsep) + [str(Path(sys.executable).parent)]
    candidates += [
        str(Path(d) / "docker-compose") for d in dirs if (Path(d) / "docker-compose").is_file()
    ]
    tools: dict[str, str] = {}
    for command in candidates:
        try:
            out = subprocess.run(
                [*command.split(), "version", "--short"], capture_output=True, text=True, timeout=30
            )
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip():
            tools.setdefault(
                "v1" if out.stdout.strip().lstrip("v").startswith("1.") else "v2+", command
            )
    return tools


COMPOSE = _compose_tools()


def _docker_problem() -> str | None:
    if shutil.which("docker") is None or not COMPOSE:
        return "docker or Compose (docker-compose, docker compose) is not installed"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True)
    return (
        None if info.returncode == 0 else f"no Docker Engine answers: {info.stderr.strip()[:200]}"
    )


PROBLEM = _docker_problem()
pytestmark = pytest.mark.skipif(PROBLEM is not None, reason=f"docker tests skipped: {PROBLEM}")


def compose_config(compose: str, *files: str, profile: str | None = None) -> dict:
    args = compose.split() + [a for f in files for a in ("-f", str(DOCKER / f))]
    args += ["--profile", profile] if profile else []
    out = subprocess.run(
        args + ["config"],
        capture_output=True,
        text=True,
        env={**os.environ, "CHAOS_TESTBED_IMAGE": "chaos-tui-testbed:check"},
    )
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


@pytest.mark.parametrize("generation", sorted(COMPOSE))
@pytest.mark.parametrize("profile", PROFILES)
def test_each_profile_holds_exactly_its_services(generation, profile):
    config = compose_config(COMPOSE[generation], "docker-compose.chaos.yml", profile=profile)
    if generation == "v1":
        # Compose v1's `config` ignores --profile and prints every service with its profiles.
        chosen = {name for name, s in config["services"].items() if profile in s["profiles"]}
    else:
        chosen = set(config["services"])
    assert chosen == PROFILES[profile]
    assert all(
        s["networks"] == {"chaos-net": None} or "chaos-net" in s["networks"]
        for s in config["services"].values()
    )
    for service in config["services"].values():
        for port in service.get("ports", []):  # v1 keeps the short form, v2 the long one
            host_ip = port.get("host_ip") if isinstance(port, dict) else port.split(":")[0]
            assert host_ip == "127.0.0.1", port


def test_the_stack_and_the_tool_agree_on_credentials_and_ports(monkeypatch):
    """One set of CHAOS_PLATFORM__* variables configures both: the compose defaults are the
    settings' defaults, and a value set for one is seen by the other."""
    for name in [k for k in os.environ if k.startswith("CHAOS_")]:
        monkeypatch.delenv(name)
    compose = next(iter(COMPOSE.values()))
    for overrides in (
        {},
        {
            "CHAOS_PLATFORM__POSTGRES_PASSWORD": "p@ss word",
            "CHAOS_PLATFORM__OPENOBSERVE_USER": "ops@example.org",
            "CHAOS_PLATFORM__OPENOBSERVE_PASSWORD": "s3cret",
            "CHAOS_PLATFORM__POSTGRES_PORT": "15432",
            "CHAOS_PLATFORM__OTLP_HTTP_PORT": "14318",
        },
    ):
        for name, value in overrides.items():
            monkeypatch.setenv(name, value)
        platform = Settings().platform
        services = {}
        for profile in PROFILES:
            services.update(
                compose_config(compose, "docker-compose.chaos.yml", profile=profile)["services"]
            )
        env = {name: dict(s.get("environment") or {}) for name, s in services.items()}
        assert env["postgres"]["POSTGRES_PASSWORD"] == platform.postgres_password
        assert env["sea-mq-worker"]["PGPASSWORD"] == platform.postgres_password
        assert env["openobserve"]["ZO_ROOT_USER_EMAIL"] == platform.openobserve_user
        assert env["openobserve"]["ZO_ROOT_USER_PASSWORD"] == platform.openobserve_password
        assert env["otel-collector"]["OPENOBSERVE_USER"] == platform.openobserve_user
        assert env["otel-collector"]["OPENOBSERVE_PASSWORD"] == platform.openobserve_password
        published = {
            str(port.get("published") if isinstance(port, dict) else port.split(":")[1])
            for s in services.values()
            for port in s.get("ports", [])
        }
        assert {
            str(p)
            for p in (
                platform.postgres_port,
                platform.opa_port,
                platform.policy_gateway_port,
                platform.openobserve_port,
                platform.otlp_http_port,
                platform.otlp_grpc_port,
                platform.collector_metrics_port,
                platform.collector_health_port,
            )
        } <= published
    collector = yaml.safe_load((DOCKER / "otel" / "config.yaml").read_text())
    assert (
        collector["exporters"]["otlphttp/openobserve"]["auth"]["authenticator"]
        in collector["extensions"]
    )


@pytest.mark.parametrize("generation", sorted(COMPOSE))
def test_the_mesh_file_has_two_clusters_linked_on_7522(generation):
    config = compose_config(COMPOSE[generation], "docker-compose.mesh.yml")
    assert set(config["services"]) == {f"sea-nats-{c}-{i}" for c in "ab" for i in (1, 2, 3)}
    for i in (1, 2, 3):
        a = (DOCKER / "nats" / f"sea-nats-a-{i}.conf").read_text()
        b = (DOCKER / "nats" / f"sea-nats-b-{i}.conf").read_text()
        assert 'listen: "0.0.0.0:7522"' in a and "no_advertise: true" in a and '"sea-a"' in a
        assert "sea-nats-a-1:7522" in b and '"sea-b"' in b and "4422" in a and "5422" in b
    testbed = compose_config(
        COMPOSE[generation], "docker-compose.mesh.yml", "docker-compose.mesh-testbed.yml"
    )
    assert {s["image"] for s in testbed["services"].values()} == {"chaos-tui-testbed:check"}


# -- the stack itself, from the offline test bed ------------------------------------------------


def _ours_exist() -> list[str]:
    """Containers, networks, volumes and sidecars of our compose projects, by label."""
    found = []
    for kind in ("container", "network", "volume"):
        for project in OURS:
            flags = ["-a"] if kind == "container" else []
            out = subprocess.run(
                [
                    "docker",
                    kind,
                    "ls",
                    *flags,
                    "-q",
                    "--filter",
                    f"label=com.docker.compose.project={project}",
                ],
                capture_output=True,
                text=True,
            ).stdout.split()
            found += [f"{kind} {x}" for x in out]
    return found + _sidecars()


def _sidecars() -> list[str]:
    """Network-cut sidecars on this session's containers (not another stack's)."""
    sidecars = subprocess.run(
        ["docker", "ps", "-a", "-q", "--filter", "label=chaos-tui.sidecar"],
        capture_output=True,
        text=True,
    ).stdout.split()
    if not sidecars:
        return []
    ours = {
        c
        for project in OURS
        for c in subprocess.run(
            [
                "docker",
                "ps",
                "-aq",
                "--no-trunc",
                "--filter",
                f"label=com.docker.compose.project={project}",
            ],
            capture_output=True,
            text=True,
        ).stdout.split()
    }
    modes = subprocess.run(
        ["docker", "inspect", "-f", "{{.Id}} {{.HostConfig.NetworkMode}}", *sidecars],
        capture_output=True,
        text=True,
    ).stdout.split("\n")  # gone ones: no line
    return [
        f"sidecar {line.split()[0][:12]}"
        for line in modes
        if line.strip() and line.split()[1].removeprefix("container:") in ours
    ]


def _free_ports(count: int) -> list[int]:
    """Ports nothing listens on right now (held open together, so all distinct)."""
    held = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        held.append(sock)
    ports = [sock.getsockname()[1] for sock in held]
    for sock in held:
        sock.close()
    return ports


def _own_projects_and_ports() -> dict[str, str]:
    """The environment that puts the stack (through `just`) and the tool (through its
    settings) on this session's projects and on host ports of its own."""
    (
        pg,
        opa,
        gateway,
        openobserve,
        grpc,
        http,
        metrics,
        health,
        mon_a,
        mon_b,
        nats,
        nats_mon,
        mesh_a,
        mesh_b,
    ) = _free_ports(14)
    return {
        "CHAOS_DOCKER__PROJECT": PROJECT,
        "CHAOS_DOCKER__MESH_PROJECT": MESH_PROJECT,
        "CHAOS_PLATFORM__POSTGRES_PORT": str(pg),
        "CHAOS_PLATFORM__OPA_PORT": str(opa),
        "CHAOS_PLATFORM__POLICY_GATEWAY_PORT": str(gateway),
        "CHAOS_PLATFORM__OPENOBSERVE_PORT": str(openobserve),
        "CHAOS_PLATFORM__OTLP_GRPC_PORT": str(grpc),
        "CHAOS_PLATFORM__OTLP_HTTP_PORT": str(http),
        "CHAOS_PLATFORM__COLLECTOR_METRICS_PORT": str(metrics),
        "CHAOS_PLATFORM__COLLECTOR_HEALTH_PORT": str(health),
        "CHAOS_PLATFORM__NATS_MONITOR_PORT": str(mon_a),
        "CHAOS_PLATFORM__NATS_B_MONITOR_PORT": str(mon_b),
        # Compose publishes these; the tool reads the same ports from its URLs.
        "CHAOS_OUTBOX_NATS_PORT": str(nats),
        "CHAOS_OUTBOX_NATS_MONITOR_PORT": str(nats_mon),
        "CHAOS_MESH_A_PORT": str(mesh_a),
        "CHAOS_MESH_B_PORT": str(mesh_b),
        "CHAOS_PLATFORM__NATS_URL": f"nats://localhost:{nats}",
        "CHAOS_PLATFORM__NATS_A_URL": f"nats://localhost:{mesh_a}",
        "CHAOS_PLATFORM__NATS_B_URL": f"nats://localhost:{mesh_b}",
    }


def just(*args: str, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [JUST, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module", params=sorted(COMPOSE))
def stack(request):
    """Every profile and the mesh up from the test bed with one Compose generation (each in
    turn), under this session's projects and ports; afterwards `just chaos-down`. Whatever
    else runs on the engine is left alone: nothing here is named or labelled like it."""
    assert not _ours_exist(), f"this session's projects are already in use: {_ours_exist()}"
    if problem := why_no_testbed():
        pytest.skip(problem)
    with stack_from_testbed(
        "docker",
        COMPOSE[request.param],
        [*PROFILES, "mesh"],
        _ours_exist,
        **_own_projects_and_ports(),
    ) as env:
        yield env


@contextmanager
def stack_from_testbed(tag: str, compose: str, profiles: list[str], ours, **settings: str):
    """These profiles up from the test bed's image (built here, cached by hash) through
    `just chaos-up`, in a state dir of their own with these settings; afterwards `just
    chaos-down`, which must leave nothing `ours()` finds, and no agent or lease behind."""
    state_dir = make_state_dir(tag)
    env = env_for(state_dir, CHAOS_TESTBED="1", PYTHON=sys.executable, COMPOSE=compose, **settings)
    started = time.monotonic()
    image = build_testbed_image()
    print(f"test bed {image} ready in {time.monotonic() - started:.0f}s", file=sys.stderr)
    env.update(CHAOS_TESTBED_IMAGE=image, CHAOS_DOCKER__SIDECAR_IMAGE=image)
    try:
        for profile in profiles:
            up = just("chaos-up", profile, env=env)
            assert up.returncode == 0, up.stdout + up.stderr
        yield env
    finally:
        left = leftovers(state_dir)
        down = just("chaos-down", env=env)
        shutil.rmtree(state_dir, ignore_errors=True)
        assert down.returncode == 0, down.stdout + down.stderr
        assert not ours(), f"chaos-down left: {ours()}"
        assert not left, f"left behind: {left}"


def _iptables_rules(env: dict, service: str) -> str:
    container = _container_id(MESH_PROJECT, service)
    assert container, f"{service} is not running"
    return iptables_rules(env["CHAOS_TESTBED_IMAGE"], container)


# The job queue's scenarios have a file of their own (tests/test_docker_queue.py).
PLATFORM = [name for name in SCENARIOS if not name.startswith("queue_")]


@pytest.mark.slow
@pytest.mark.parametrize("scenario", PLATFORM)
def test_every_scenario_passes_against_the_containers(stack, scenario, tmp_path):
    short = {
        "postgres_restart_outbox": "down_s=2",
        "opa_restart": "down_s=2",
        "openobserve_stall": "stall_s=3",
        "nats_partition_mesh": "cut_s=3",
    }[scenario]
    out = tmp_path / "r.json"
    started = time.time()
    proc = subprocess.run(
        [
            *CHAOS_TUI,
            "--headless",
            "--scenario",
            scenario,
            "--target",
            "docker",
            "--enable-chaos",
            "--set",
            "warmup_s=1",
            "--set",
            short,
            "--set",
            "recover_s=2",
            "--output",
            str(out),
        ],
        env=stack,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == ExitCode.PASS, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["target"] == "docker" and result["heal"]["ok"] and result["heal"]["verified"]
    assert any("chaos-tui-testbed" in v for v in result["versions"].values())
    if scenario == "nats_partition_mesh":
        assert result["measurements"]["paths cut"] == "sea-nats-a-1, sea-nats-a-2, sea-nats-a-3"
        assert result["measurements"]["longest mirror silence during cut (s)"] >= 1.5
        for node in ("sea-nats-a-1", "sea-nats-a-2", "sea-nats-a-3"):
            assert "7522" not in _iptables_rules(stack, node), f"a rule outlived the heal on {node}"
        # One sidecar to cut and one to heal per node, each labelled with the run, all gone.
        # (Counted by run: another stack on this engine may cut its own links meanwhile.)
        sidecars = [
            s for s in _sidecars_created_since(started) if s["chaos-tui.run"] == result["run_id"]
        ]
        assert len(sidecars) == 6
        assert not _sidecars()
    if scenario != "nats_partition_mesh":
        assert result["delivery"] is None or result["delivery"]["lost"] == 0


@pytest.mark.slow
def test_a_sigkilled_run_leaves_the_container_to_the_agent_ttl(stack, tmp_path):
    """The console dies mid-fault; the agent starts the killed container at the TTL."""
    proc = subprocess.Popen(
        [
            *CHAOS_TUI,
            "--headless",
            "--scenario",
            "opa_restart",
            "--target",
            "docker",
            "--enable-chaos",
            "--set",
            "warmup_s=1",
            "--set",
            "down_s=5",
            "--set",
            "mode=kill",  # restart (the default here) leaves no stopped container to wait for
        ],
        env=stack,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        line = ""
        for line in proc.stderr:  # the run narrates on stderr; it ends if the run does
            if "INJECTED" in line:
                break
        assert "INJECTED" in line, "the fault never landed"
        assert _state("opa") == "exited"
        live = json.loads(
            subprocess.run(
                [*CHAOS_TUI, "leases", "--json"],
                env=stack,
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout
        )
        assert [(lease["kind"], len(lease["run_id"])) for lease in live] == [("docker.kill", 12)]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        # TTL = hold (5 s) + 10 s margin: the agent restores it by itself.
        deadline = time.monotonic() + 40
        while _state("opa") != "running" and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _state("opa") == "running", "the TTL did not restore the container"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        # The killed run could not stop the agent it spawned: that is this test's to do.
        leftovers(Path(stack["CHAOS_STATE_DIR"]))


@pytest.mark.slow
def test_just_chaos_scenario_runs_opa_restart_headless_with_docker_restart(stack):
    """The request's recipe: `just chaos scenario=NAME` runs it headless against the stack;
    opa_restart's fault there is `docker restart` (no SIGKILL), and the result says so."""
    opa = _container_id(PROJECT, "opa")
    since = time.time()
    proc = just("chaos", "scenario=opa_restart", env=stack, timeout=300)
    assert proc.returncode == ExitCode.PASS, proc.stderr[-3000:]
    result = json.loads(proc.stdout)  # headless: the JSON result on stdout
    assert result["scenario"] == "opa_restart" and result["target"] == "docker"
    assert result["parameters"]["mode"] == "restart"
    assert [w["fault"] for w in result["injection_windows"]] == ["restart:opa"]
    assert result["measurements"]["OPA fault mode"].startswith("restart: docker restart")
    down = result["measurements"]["decisions while OPA down"]
    assert down["deny"] > 0 and down["allow"] == 0, result["measurements"]
    events = _events(opa, since)
    assert "restart" in events and "kill 9" not in events, events
    assert _state("opa") == "running"


@pytest.mark.slow
def test_a_docker_restart_of_opa_catches_a_gateway_that_fails_open(stack, tmp_path):
    """The restart's outage is short (OPA stops and boots): the decisions in it are still
    judged, and a gateway that allows when OPA is unreachable fails the run."""
    (port,) = _free_ports(1)
    network = json.loads(
        subprocess.run(
            [
                "docker",
                "inspect",
                "-f",
                "{{json .NetworkSettings.Networks}}",
                _container_id(PROJECT, "policy-gateway"),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    gateway = subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--init",
            "--label",
            f"chaos-tui.test={PROJECT}",
            "--network",
            next(iter(network)),
            "-p",
            f"127.0.0.1:{port}:8080",
            stack["CHAOS_TESTBED_IMAGE"],
            *("python", "-m", "chaos_tui.sandbox.policy_gateway", "--host", "0.0.0.0"),
            *("--port", "8080", "--opa-url", "http://opa:8181", "--test-fail-open"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        out = tmp_path / "r.json"
        env = {**stack, "CHAOS_PLATFORM__POLICY_GATEWAY_PORT": str(port)}
        proc = subprocess.run(
            [*CHAOS_TUI, "--headless", "--scenario", "opa_restart", "--target", "docker"]
            + ["--enable-chaos", "--set", "warmup_s=1", "--set", "recover_s=2"]
            + ["--output", str(out)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        assert proc.returncode == ExitCode.FAIL, proc.stderr[-3000:]
        result = json.loads(out.read_text())
        assert result["parameters"]["mode"] == "restart"
        closed = next(i for i in result["invariants"] if i["name"] == "fails_closed")
        assert not closed["passed"] and closed["measured"] > 0, closed
        assert result["measurements"]["decisions while OPA down"]["allow"] > 0
    finally:
        subprocess.run(["docker", "rm", "-f", gateway], capture_output=True, timeout=60)


@pytest.mark.slow
def test_openobserve_stall_says_the_test_bed_collector_gives_no_evidence(stack):
    """The test bed's collector is rotel: nothing answers on the collector's health and
    metrics ports, and the result says so (and why) rather than failing or judging it."""
    env = {**stack, "CHAOS_SCENARIO": "openobserve_stall"}  # the recipe's other spelling
    proc = just("chaos", env=env, timeout=300)
    assert proc.returncode == ExitCode.PASS, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["scenario"] == "openobserve_stall"
    said = result["measurements"]["collector evidence"]
    health = stack["CHAOS_PLATFORM__COLLECTOR_HEALTH_PORT"]
    metrics = stack["CHAOS_PLATFORM__COLLECTOR_METRICS_PORT"]
    assert said.startswith(f"not available: nothing answered at http://127.0.0.1:{health}/")
    assert f"http://127.0.0.1:{metrics}/metrics" in said and "rotel" in said, said
    assert "collector_evidence" not in {i["name"] for i in result["invariants"]}
    assert "collector evidence not available" in proc.stderr


def _events(container: str, since: float) -> str:
    """The Engine's events on this container since then: `action signal` per line."""
    return _engine_events(
        since,
        [f"container={container}"],
        '{{.Action}} {{index .Actor.Attributes "signal"}}',
    )


def _engine_events(since: float, filters: list[str], form: str) -> str:
    """`docker events` from `since` to now, filtered, one line each in `form`."""
    args = ["docker", "events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}"]
    for f in filters:
        args += ["--filter", f]
    out = subprocess.run([*args, "--format", form], capture_output=True, text=True, timeout=30)
    return out.stdout


@pytest.mark.slow
async def test_restart_lease_bad_params_and_a_heal_after_the_container_is_gone(stack, monkeypatch):
    for name in ("CHAOS_DOCKER__PROJECT", "CHAOS_DOCKER__MESH_PROJECT"):  # the agent's too
        monkeypatch.setenv(name, stack[name])
    # An agent with the default sidecar image, not the test bed's.
    monkeypatch.delenv("CHAOS_DOCKER__SIDECAR_IMAGE", raising=False)
    agent = AgentClient(Settings(state_dir=Path(stack["CHAOS_STATE_DIR"])))
    await agent.ensure()
    before = _started_at("policy-gateway")
    try:
        # Refused, and nothing touched: a service that is not there, a project not ours.
        for params, said in (
            ({"project": PROJECT, "service": "no-such-service"}, "no-such-service"),
            (
                {"project": "someone-elses", "service": "policy-gateway"},
                "not one chaos-tui may break",
            ),
            # The default project is not this agent's either (and may be
            # someone's stack running beside this one).
            ({"project": "chaos", "service": "policy-gateway"}, "not one chaos-tui may break"),
        ):
            with pytest.raises(AgentError) as refused:
                await agent.create_lease(
                    kind="docker.restart", target="docker", ttl_s=30, params=params
                )
            assert refused.value.status == 400 and said in str(refused.value)
        assert _started_at("policy-gateway") == before
        # A sidecar runs as root with NET_ADMIN: only from the image the agent was given.
        with pytest.raises(AgentError) as refused:
            await agent.create_lease(
                kind="docker.netcut",
                target="docker",
                ttl_s=30,
                params={
                    "project": MESH_PROJECT,
                    "services": ["sea-nats-a-1"],
                    "port": 7522,
                    "image": stack["CHAOS_TESTBED_IMAGE"],
                },
            )  # this agent was given the default
        assert refused.value.status == 400 and "is not the agent's" in str(refused.value)
        assert not _sidecars()
        lease = await agent.create_lease(
            kind="docker.restart",
            target="docker",
            ttl_s=30,
            params={"project": PROJECT, "service": "policy-gateway"},
        )
        assert lease.data["container"] and _state("policy-gateway") == "running"
        assert _started_at("policy-gateway") != before  # started again
        assert await agent.heal_lease(lease.id) and _state("policy-gateway") == "running"
        # A stopped container removed under a live lease (say, by `just chaos-down`): the
        # heal has nothing left to undo, and says so by succeeding.
        lease = await agent.create_lease(
            kind="docker.stop",
            target="docker",
            ttl_s=30,
            params={"project": PROJECT, "service": "policy-gateway"},
        )
        assert _state("policy-gateway") == "exited"
        subprocess.run(
            ["docker", "rm", "-f", lease.data["container"]], check=True, capture_output=True
        )
        assert await agent.heal_lease(lease.id) and await agent.leases() == []
    finally:
        agent.stop_spawned()
        up = just("chaos-up", "chaos-opa", env=stack)  # the stack whole again, as it was
        assert up.returncode == 0 and _state("policy-gateway") == "running", up.stderr


def _container_id(project: str, service: str) -> str:
    """The id of this compose service's container, running or not ("" if there is none)."""
    found = subprocess.run(
        [
            "docker",
            "ps",
            "-aq",
            "--filter",
            f"label=com.docker.compose.project={project}",
            "--filter",
            f"label=com.docker.compose.service={service}",
        ],
        capture_output=True,
        text=True,
    ).stdout.split()
    return found[0] if found else ""


def _inspect(service: str, field: str) -> str:
    container = _container_id(PROJECT, service)
    return (
        subprocess.run(
            ["docker", "inspect", "-f", field, container], capture_output=True, text=True
        ).stdout.strip()
        if container
        else ""
    )


def _started_at(service: str) -> str:
    return _inspect(service, "{{.State.StartedAt}}")


def _state(service: str) -> str:
    return _inspect(service, "{{.State.Status}}") or "missing"


def _sidecars_created_since(since: float) -> list[dict]:
    """The labels of every sidecar created since then, from the Engine's event log."""
    filters = ["type=container", "event=create", "label=chaos-tui.sidecar"]
    out = _engine_events(since, filters, "{{json .Actor.Attributes}}")
    return [json.loads(line) for line in out.splitlines() if line.strip()]
