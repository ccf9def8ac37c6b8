"""One plan per run: the scenario's hooks are asked once, what the console shows is what the
run executes, and the list asks no hook at all. Real targets, real scenarios; the counting
wrappers only count and call the scenario's own hook."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from chaos_tui.app import ChaosApp
from chaos_tui.catalog import RUN_OVERHEAD_S, Catalog
from chaos_tui.core.contracts import ScenarioParams
from chaos_tui.core.errors import UsageError
from chaos_tui.core.events import RunPlanned
from chaos_tui.core.plan import plan_run
from chaos_tui.core.platform_target import Endpoints, PlatformTarget
from chaos_tui.core.runner import Run, RunOptions
from chaos_tui.scenarios import SCENARIOS, UnknownScenario, get_scenario
from chaos_tui.screens.confirm import ConfirmRunScreen
from chaos_tui.screens.detail import DetailScreen
from chaos_tui.screens.report import ReportScreen
from chaos_tui.settings import Settings
from chaos_tui.targets import make_target
from tests.conftest import env_for, run_cli
from tests.test_runner import DirTarget, FileFault, FileScenario

HOOKS = ("probes", "faults")
SHORT = {"warmup_s": 0.5, "hold_s": 2.0, "recover_s": 0.5}  # 2 s: the mesh's shortest cut


def short(name: str) -> dict:
    """SHORT, but a failover needs its primary down longer than the sentinels take (>= 4 s)."""
    return {**SHORT, "hold_s": 4.0} if name == "queue_broker_failover" else SHORT


@pytest.fixture
def calls(monkeypatch):
    """Counts every call of each scenario's probes() and faults(), per scenario."""
    counted: dict[str, dict[str, int]] = {name: dict.fromkeys(HOOKS, 0) for name in SCENARIOS}
    for name, cls in SCENARIOS.items():
        for hook in HOOKS:
            original = getattr(cls, hook)

            def counting(self, target, _original=original, _name=name, _hook=hook):
                counted[_name][_hook] += 1
                return _original(self, target)

            monkeypatch.setattr(cls, hook, counting)
    return counted


def test_the_registry_finds_every_scenario_main_job_first():
    assert next(iter(SCENARIOS)) == "postgres_restart_outbox"
    assert set(SCENARIOS) == {
        "postgres_restart_outbox",
        "opa_restart",
        "openobserve_stall",
        "nats_partition_mesh",
        "queue_latency_drop",
        "queue_worker_crash",
        "queue_broker_failover",
    }
    with pytest.raises(UnknownScenario) as caught:
        get_scenario("no_such")
    assert isinstance(caught.value, UsageError) and caught.value.exit_code == 2
    assert str(caught.value).startswith("unknown scenario 'no_such' (known: ")


def test_every_params_shares_one_base_and_hold_s_takes_its_old_names():
    for cls in SCENARIOS.values():
        assert issubclass(cls.Params, ScenarioParams)
        assert {"warmup_s", "hold_s", "recover_s"} <= set(cls.Params.model_fields)
    assert get_scenario("postgres_restart_outbox").Params(down_s=7).hold_s == 7
    assert get_scenario("openobserve_stall").Params(stall_s=4).hold_s == 4
    assert get_scenario("nats_partition_mesh").Params(cut_s=9).hold_s == 9
    with pytest.raises(ValueError):
        get_scenario("nats_partition_mesh").Params(cut_s=1)  # the mesh's own bound holds
    with pytest.raises(ValueError):
        get_scenario("opa_restart").Params(nonsense=1)


def test_set_down_s_still_works_and_list_says_hold_s(tmp_path):
    env = env_for(tmp_path)
    listed = run_cli(["list", "--json"], env)
    assert listed.returncode == 0, listed.stderr
    for row in json.loads(listed.stdout):
        assert "hold_s" in row["parameters"], row
        assert not {"down_s", "stall_s", "cut_s"} & set(row["parameters"]), row
    bad = run_cli(
        ["--headless", "--scenario", "postgres_restart_outbox", "--set", "down_s=999"], env
    )
    assert bad.returncode == 2 and "down_s" in bad.stderr, bad.stderr


@pytest.mark.parametrize("target_name", ["sandbox", "docker"])
def test_a_plan_holds_what_the_run_will_do(tmp_path, target_name, calls):
    target = make_target(target_name, Settings(state_dir=tmp_path / "state"))
    assert isinstance(target, PlatformTarget)
    for name, cls in SCENARIOS.items():
        scenario = cls(cls.Params(**short(name)))
        plan = plan_run(scenario, target)
        assert calls[name] == {"probes": 1, "faults": 1}, name
        assert plan.scenario is scenario and plan.target == target_name
        assert isinstance(plan.endpoints, Endpoints)
        hold = short(name)["hold_s"]
        assert plan.faults and all(f.hold_s == hold for f in plan.faults)
        assert all(f.ttl_s > f.hold_s for f in plan.faults)
        assert plan.probes[-1].name == "agent", "the target's own probe is watched too"
        assert set(plan.ceilings) <= {p.name for p in plan.probes}
        assert plan.workload and plan.invariants and plan.blast_radius
        assert plan.expected_duration_s == pytest.approx(1.0 + hold)
        assert plan.params["hold_s"] == hold


def test_sandbox_ports_are_fixed_when_planned_and_not_when_read_only(tmp_path):
    settings = Settings(state_dir=tmp_path / "state")
    target = make_target("sandbox", settings)
    target.read_only = True
    assert ":0" in target.endpoints("chaos-outbox").postgres_url
    assert not (tmp_path / "state" / "sandbox.json").exists(), "read-only: nothing written"
    target.read_only = False
    planned = target.endpoints("chaos-outbox")
    assert ":0/" not in planned.postgres_url
    assert make_target("sandbox", settings).endpoints("chaos-outbox") == planned, "kept"


def test_the_list_asks_no_hook_and_a_shown_plan_is_the_run_s(tmp_path, calls):
    target = make_target("sandbox", Settings(state_dir=tmp_path / "state"))
    catalog = Catalog(target, tmp_path / "results")
    assert all(c == {"probes": 0, "faults": 0} for c in calls.values()), calls
    entry = catalog.entry("nats_partition_mesh")
    assert entry is not None and entry.duration_s == 3.0 + 5.0 + 3.0 + RUN_OVERHEAD_S
    shown = catalog.plan("opa_restart")
    assert catalog.plan("opa_restart") is shown  # the detail screen and the confirmation
    assert catalog.take_plan("opa_restart") is shown  # ... and the run
    assert calls["opa_restart"] == {"probes": 1, "faults": 1}
    assert catalog.plan("opa_restart") is not shown, "the next run plans afresh"


class MovingTarget(DirTarget):
    """Its address changes when it starts, as a sandbox port taken meanwhile would."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.port = 1

    def endpoints(self, profile=None):
        return Endpoints(
            postgres_url=f"postgresql://x:{self.port}",
            nats_url="",
            opa_url="",
            gateway_url="",
            collector_url="",
            collector_port=0,
            sink_url="",
            nats_a_url="",
            nats_b_url="",
            link_monitor_url="",
            domain_a="",
        )

    async def ensure_up(self, profile=None) -> None:
        await super().ensure_up(profile)
        self.port = 2


def test_a_plan_whose_addresses_moved_is_not_run(tmp_path):
    fault = FileFault(tmp_path / "marker")
    events = []
    result = asyncio.run(
        Run(
            FileScenario(tmp_path, fault),
            MovingTarget(tmp_path),
            events.append,
            RunOptions(rate_hz=50),
        ).execute()
    )
    assert result.outcome == "aborted" and "addresses changed" in result.reason
    assert result.injection_windows == [] and not fault.path.exists()
    assert isinstance(events[0], RunPlanned)


@pytest.mark.slow
def test_every_scenario_asks_its_hooks_once_per_headless_run(fresh_state_dir, calls):
    """On a sandbox started by the run itself: the plan (made before anything runs) must
    still watch the right ports."""
    target = make_target("sandbox", Settings(state_dir=fresh_state_dir))
    try:
        # The job queue's once (its other scenarios run in tests/test_queue_scenarios.py).
        names = [n for n in SCENARIOS if not n.startswith("queue_")] + ["queue_broker_failover"]
        for name, cls in ((n, SCENARIOS[n]) for n in names):
            events = []
            run = Run(cls(cls.Params(**short(name))), target, events.append, RunOptions(rate_hz=10))
            result = asyncio.run(run.execute())
            assert result.outcome == "pass", f"{name}: {result.reason}"
            assert calls[name] == {"probes": 1, "faults": 1}, name
            assert sum(isinstance(e, RunPlanned) for e in events) == 1
    finally:
        target.stop_what_we_started(keep_sandbox=False)


@pytest.mark.slow
async def test_the_console_runs_the_plan_it_showed(sandbox, tmp_path, calls):
    name = "postgres_restart_outbox"
    params = SCENARIOS[name].Params(**SHORT)
    app = ChaosApp(
        Settings(state_dir=sandbox.state_dir), params={name: params}, export_dir=tmp_path
    )
    try:
        async with app.run_test(size=(140, 45)) as pilot:
            await pilot.press("enter")  # picker -> detail: the plan is made here
            assert isinstance(app.screen, DetailScreen)
            shown = app.catalog.plan(name)
            assert calls[name] == {"probes": 1, "faults": 1}
            await pilot.press("r")
            assert isinstance(app.screen, ConfirmRunScreen)
            await pilot.press(*name, "enter")
            deadline = time.monotonic() + 120
            while not (isinstance(app.screen, ReportScreen) and app.last_result is not None):
                assert time.monotonic() < deadline, "the run did not end"
                await pilot.pause(0.1)
            assert app._run is not None and app._run.plan is shown
            assert app.last_result.outcome == "pass", app.last_result.reason
            assert calls[name] == {"probes": 1, "faults": 1}, "the run asked again"
    finally:
        app.target.stop_what_we_started(keep_sandbox=True)


def test_planning_another_profile_does_not_make_a_plan_stale(tmp_path):
    """The console plans whatever the user looks at: opa_restart's ports being picked after
    postgres_restart_outbox was planned moves none of the addresses that plan relies on."""
    from chaos_tui.core.runner import addresses_moved

    settings = Settings(state_dir=tmp_path / "state")
    catalog = Catalog(make_target("sandbox", settings), tmp_path / "results")
    outbox = catalog.plan("postgres_restart_outbox")
    catalog.plan("opa_restart")  # its detail screen, opened and closed
    now = make_target("sandbox", settings).endpoints("chaos-outbox")
    assert now != outbox.endpoints, "opa's ports were placed since"
    assert addresses_moved(outbox.endpoints, now) == []
    moved = now.model_copy(update={"postgres_url": "postgresql://chaos@127.0.0.1:1/postgres"})
    assert addresses_moved(outbox.endpoints, moved) == ["postgres_url"]


def test_opa_restart_mode_follows_the_target_and_the_plan_records_which(tmp_path):
    """mode=auto is docker restart on Docker and a kill on the sandbox; the plan (and so the
    dry run and the result) records the mode that runs, at its default there."""
    settings = Settings(state_dir=tmp_path / "state")
    docker, sandbox = make_target("docker", settings), make_target("sandbox", settings)
    sandbox.read_only = True
    cls = get_scenario("opa_restart")
    plan = plan_run(cls(), docker)
    assert [f.name for f in plan.faults] == ["restart:opa"]
    assert plan.faults[0].fault.kind == "docker.restart"
    assert "docker restart" in plan.faults[0].description
    assert plan.params["mode"] == "restart" and plan.params_changed == {}
    plan = plan_run(cls(cls.Params(mode="kill")), docker)
    assert [(f.name, f.fault.kind) for f in plan.faults] == [("kill:opa", "docker.kill")]
    assert plan.params_changed == {"mode": "kill"}
    plan = plan_run(cls(), sandbox)
    assert [f.name for f in plan.faults] == ["hard_restart:opa"]
    assert plan.params["mode"] == "kill" and plan.params_changed == {}
    with pytest.raises(UsageError) as refused:
        plan_run(cls(cls.Params(mode="restart")), sandbox)
    assert "mode=restart" in str(refused.value) and "not a container" in str(refused.value)


def test_mode_restart_on_the_sandbox_is_refused_with_one_line_and_nothing_started(tmp_path):
    state = tmp_path / "state"
    proc = run_cli(
        ["--headless", "--scenario", "opa_restart", "--set", "mode=restart"], env_for(state)
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "nothing to `docker restart`" in lines[0], proc.stderr
    assert proc.stdout == ""
    # Planned (its ports picked), nothing started: no process, no agent, no result.
    assert json.loads((state / "sandbox.json").read_text())["processes"] == {}
    assert not (state / "agent").exists() and not (state / "results").exists()
