"""The `local` target: the user's own service on this machine, broken through the real agent
and the real runner. A server the test runs is killed by its port; the heal's restart
command brings it back, and the run measures the recovery. Names that resolve to nothing
are refused when the run is planned: nothing is injected."""

from __future__ import annotations

import asyncio

import pytest

from chaos_tui.core.contracts import Scenario, ScenarioParams
from chaos_tui.core.errors import UsageError
from chaos_tui.core.model import InvariantResult, InvariantSpec
from chaos_tui.core.plan import plan_run
from chaos_tui.core.runner import Run, RunOptions
from chaos_tui.probes.http_probe import HttpProbe
from chaos_tui.settings import Settings
from chaos_tui.targets.local import LocalTarget
from tests.test_process_faults import free_port, restart_command, start_server, stop_listeners


class Quick(ScenarioParams):
    warmup_s: float = 0.5
    hold_s: float = 1.0
    recover_s: float = 1.5


class LongerHold(Quick):
    hold_s: float = 2.5  # a request through 300 ms of latency each way takes 0.6 s: room for some


class OwnServiceKill(Scenario):
    """What a scenario file's kill_process with `restart:` becomes."""

    name = "own_service_kill"
    hypothesis = "the service answers again within 5 s of the heal"
    Params = Quick
    recovery_probe = "service"

    def __init__(self, port: int, restart: str | None) -> None:
        super().__init__()
        self.port, self.restart = port, restart

    def probes(self, target):
        return [HttpProbe("service", f"http://127.0.0.1:{self.port}/", 200, value="latency")]

    def faults(self, target):
        return [
            target.process_fault(
                "process.kill",
                listening_on=self.port,
                restart=self.restart,
                hold_s=self.params.hold_s,
            )
        ]

    def invariants(self):
        return [InvariantSpec(name="recovers", description="answers again", limit=5, unit="s")]

    async def check_invariants(self, ctx) -> list[InvariantResult]:
        back_at = None
        deadline = asyncio.get_running_loop().time() + 5
        while back_at is None and asyncio.get_running_loop().time() < deadline:
            _, back_at = ctx.timeline.outage("service")
            await asyncio.sleep(0.1)
        healed = ctx.timeline.windows[0].healed_at
        measured = None if back_at is None else round(max(0.0, back_at - healed), 3)
        return [self.judge("recovers", measured, "" if measured is not None else "never back")]


@pytest.fixture
def local(fresh_state_dir):
    target = LocalTarget(Settings(state_dir=fresh_state_dir))
    yield target
    target.stop_what_we_started(keep_sandbox=False)


def test_a_killed_service_restarted_by_the_heal_passes_with_its_recovery(local):
    port = free_port()
    proc = start_server(port)
    try:
        scenario = OwnServiceKill(port, restart_command(port))
        plan = plan_run(scenario, local)
        assert any(f"process {proc.pid}: " in line for line in plan.blast_radius), plan.blast_radius
        assert any("command run by the agent" in line for line in plan.blast_radius)
        result = asyncio.run(Run(plan, local, lambda event: None, RunOptions(rate_hz=20)).execute())
        assert result.outcome == "pass", result.reason
        assert proc.poll() is not None, "the service the run named was killed"
        assert result.heal.ok
        recovery = result.recovery.time_to_recover_s
        assert recovery is not None and recovery < 5
    finally:
        proc.kill()
        stop_listeners(port)


def test_an_unsupervised_service_without_restart_fails(local):
    port = free_port()
    proc = start_server(port)
    try:
        result = asyncio.run(
            Run(
                OwnServiceKill(port, None), local, lambda event: None, RunOptions(rate_hz=20)
            ).execute()
        )
        assert result.outcome == "fail"
        failed = [i for i in result.invariants if not i.passed]
        assert [i.name for i in failed] == ["recovers"]
    finally:
        proc.kill()
        stop_listeners(port)


def test_names_that_resolve_to_nothing_are_refused_when_planned(local, tmp_path):
    with pytest.raises(UsageError, match="nothing listens on port"):
        local.process_fault("process.kill", listening_on=free_port(), hold_s=1)
    with pytest.raises(UsageError, match="cannot read pid file"):
        local.process_fault("process.kill", pid_file=tmp_path / "none.pid", hold_s=1)
    port = free_port()
    proc = start_server(port)  # its port is taken: no proxy may listen there
    try:
        with pytest.raises(UsageError, match="already taken"):
            local.proxy_fault(
                "latency", listen=f"127.0.0.1:{port}", upstream="127.0.0.1:1", hold_s=1
            )
    finally:
        proc.kill()
        stop_listeners(port)
    assert local.agent.info() is None, "planning started nothing"


class ProxyLatency(Scenario):
    """What a scenario file's `latency` action on `proxy: {listen, upstream}` becomes."""

    name = "own_proxy_latency"
    hypothesis = "requests through the proxy slow down by the toxic's latency, and recover"
    Params = LongerHold

    def __init__(self, listen: str, upstream: str) -> None:
        super().__init__()
        self.listen, self.upstream = listen, upstream

    def probes(self, target):
        return [HttpProbe("through_proxy", f"http://{self.listen}/", 200, value="latency")]

    def faults(self, target):
        return [
            target.proxy_fault(
                "latency",
                listen=self.listen,
                upstream=self.upstream,
                attributes={"latency": 300},
                hold_s=self.params.hold_s,
            )
        ]

    async def check_invariants(self, ctx) -> list[InvariantResult]:
        return []


def test_latency_on_a_proxy_the_run_opens_shows_during_the_fault_only(local):
    port, listen_port = free_port(), free_port()
    proc = start_server(port)
    try:
        listen = f"127.0.0.1:{listen_port}"
        scenario = ProxyLatency(listen, f"127.0.0.1:{port}")
        run = Run(scenario, local, lambda event: None, RunOptions(rate_hz=10))
        result = asyncio.run(run.execute())
        assert result.outcome == "pass", result.reason
        window = result.injection_windows[0]
        samples = run.timeline.since("through_proxy", 0)

        def latencies(start: float, end: float) -> list[float]:
            """Requests begun and answered between start and end (one begun before the heal
            and answered after it saw only part of the toxic)."""
            return [
                s.value
                for s in samples
                if s.ok and s.value is not None and start <= s.t and s.t + s.value / 1000 < end
            ]

        during = latencies(window.applied_at + 0.1, window.heal_started_at)
        after = latencies(window.healed_at + 0.1, float("inf"))
        assert during and min(during) >= 300, during
        assert after and max(after) < 300, after
    finally:
        proc.kill()
        stop_listeners(port)
    stopped = local.stop_what_we_started(keep_sandbox=False)
    assert f"proxy local-{listen_port}" in stopped


def test_the_agent_is_stopped_by_its_last_user_not_under_another(fresh_state_dir):
    """Two users of one state dir's agent (a local run and, say, a sandbox run): the one that
    started it leaves first and the agent stays for the other, who stops it on leaving."""
    first = LocalTarget(Settings(state_dir=fresh_state_dir))
    second = LocalTarget(Settings(state_dir=fresh_state_dir))
    try:
        asyncio.run(first.ensure_up())
        asyncio.run(second.ensure_up())
        pid = first.agent.info()["pid"]
        assert first.agent_started and not second.agent_started
        assert "agent" not in first.stop_what_we_started(keep_sandbox=False)
        assert first.agent.info() is not None and first.agent.info()["pid"] == pid
        assert "agent" in second.stop_what_we_started(keep_sandbox=False)
        assert second.agent.info() is None
    finally:
        first.stop_what_we_started(keep_sandbox=False)
        second.stop_what_we_started(keep_sandbox=False)
        first.agent.stop_running()
