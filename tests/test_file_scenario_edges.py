"""What an adversarial pass over scenario files found, each kept fixed: a p95 that hid
timeouts, faults refused only at injection (the agent itself, a process an earlier action
ended, a proxy off loopback or onto itself), cleanup commands judged by their output pipe and
their background children killed, CHAOS_FILE ignored by `list`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from chaos_tui.agent.client import AgentClient
from chaos_tui.core.contracts import RunContext
from chaos_tui.core.errors import UsageError
from chaos_tui.core.model import InjectionWindow
from chaos_tui.core.procinfo import is_chaos_machinery, listeners
from chaos_tui.core.timeline import Timeline
from chaos_tui.from_file.checks import Judging, build_checks, run_command
from chaos_tui.from_file.load import load_scenarios
from chaos_tui.probes.http_load import HttpRequestLoad, LoadRecord
from chaos_tui.scenario_file.loader import load_text
from chaos_tui.settings import Settings
from chaos_tui.targets.local import LocalTarget
from tests.conftest import env_for, run_cli
from tests.test_process_faults import (
    free_port,
    server,  # noqa: F401 - the fixture, by name
)

LATENCY_FILE = """\
version: 1
scenarios:
  slow:
    hypothesis: "p95 under 300 ms during the fault"
    steady_state:
      - tcp_open: 127.0.0.1:1
    load:
      - http_requests: {url: "http://127.0.0.1:1/", timeout_ms: 1000}
        name: callers
    actions:
      - type: latency
        proxy: {listen: "127.0.0.1:2", upstream: "127.0.0.1:1"}
        latency: 5000
    validation:
      - latency_p95_max_ms: {load: callers, phase: during, max: 300}
"""


def judge_latency(answered_ms: list[float], failed: int):
    """The file's latency check over a load whose `during` phase had these answers and this
    many failed requests (timed out): records as the load writes them."""
    spec = load_text(LATENCY_FILE, "f.yaml").scenarios["slow"]
    (check,) = build_checks(spec, "tcp_1", None)
    timeline = Timeline()
    now = time.time()
    timeline.windows.append(
        InjectionWindow(
            fault="latency", lease_id="x", description="", injected_at=now - 10, healed_at=now
        )
    )
    load = HttpRequestLoad("callers", "http://127.0.0.1:1/")
    load.records = [LoadRecord(now - 5, True, ms) for ms in answered_ms]
    load.records += [LoadRecord(now - 5, False, None, "timed out after 1s")] * failed
    ctx = RunContext("r", None, timeline, lambda *a, **k: None, None)  # type: ignore[arg-type]
    return asyncio.run(check.judge(Judging(ctx, {"callers": load}, [], {})))


def test_a_p95_with_more_than_5_percent_failed_requests_is_a_failure():
    judged = judge_latency([20.0] * 64, failed=18)
    assert not judged.passed and judged.measured is None
    assert "18 of 82 during the fault failed" in judged.detail


def test_a_p95_with_few_failures_is_read_off_the_answers():
    judged = judge_latency([20.0] * 98, failed=2)
    assert judged.passed and judged.measured == 20.0
    assert "2 failed" in judged.detail


def test_the_agent_itself_is_refused_when_planned(fresh_state_dir):
    target = LocalTarget(Settings(state_dir=fresh_state_dir))
    try:
        asyncio.run(target.ensure_up())
        port = int(target.agent.info()["url"].rsplit(":", 1)[1].rstrip("/"))
        assert listeners(port), "the agent listens"
        with pytest.raises(UsageError, match="which no fault may touch"):
            target.process_fault("process.kill", listening_on=port, hold_s=1)
    finally:
        target.stop_what_we_started(keep_sandbox=False)


def test_a_process_an_earlier_action_ends_is_refused_when_planned(
    server,  # noqa: F811 - the imported fixture, by name
    tmp_path,
    fresh_state_dir,
):
    port, proc = server
    path = tmp_path / "twice.yaml"
    path.write_text(
        f"""\
version: 1
scenarios:
  twice:
    hypothesis: "x"
    steady_state:
      - tcp_open: 127.0.0.1:{port}
    actions:
      - type: kill_process
        target: {{listening_on: {port}}}
      - type: pause_process
        target: {{listening_on: {port}}}
"""
    )
    done = run_cli(
        ["--dry-run", "--file", str(path), "--scenario", "twice"], env_for(fresh_state_dir)
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"chaos-tui: twice: actions[1] names pid {proc.pid}, which actions[0] ends first: "
        "one scenario ends a process once"
    )
    assert proc.poll() is None


@pytest.mark.parametrize(
    ("listen", "upstream", "expected"),
    [
        ("0.0.0.0:{p}", "127.0.0.1:{q}", "listen on loopback only"),
        ("127.0.0.1:{p}", "127.0.0.1:{p}", "would relay to itself"),
        ("127.0.0.1:{p}", "127.1:{p}", "would relay to itself"),
        ("127.0.0.1:{p}", "0:{p}", "would relay to itself"),
        ("127.0.0.1:{p}", "LOCALHOST:{p}", "would relay to itself"),
    ],
)
def test_a_proxy_the_agent_would_refuse_is_refused_when_planned(
    fresh_state_dir, listen, upstream, expected
):
    p, q = free_port(), free_port()
    target = LocalTarget(Settings(state_dir=fresh_state_dir))
    with pytest.raises(UsageError, match=expected):
        target.proxy_fault(
            "latency", listen=listen.format(p=p), upstream=upstream.format(p=p, q=q), hold_s=1
        )


def test_a_cleanup_command_is_judged_by_its_exit_and_leaves_what_it_started(tmp_path):
    marker = tmp_path / "pid"
    code, last = asyncio.run(run_command(f"sleep 300 & echo $! > {marker}; echo started", 5))
    pid = int(marker.read_text())
    try:
        assert (code, last) == (0.0, "started")
        os.kill(pid, 0)  # still running: what a cleanup starts is its purpose
    finally:
        os.kill(pid, signal.SIGKILL)
    code, last = asyncio.run(run_command("exec sleep 30", 0.5))
    assert code is None and "still running after 0.5 s: killed" in last


def test_list_reads_chaos_file(tmp_path, fresh_state_dir):
    path = tmp_path / "f.yaml"
    path.write_text(LATENCY_FILE)
    assert "slow" in load_scenarios(path)
    listed = run_cli(["list"], env_for(fresh_state_dir, CHAOS_FILE=str(path)))
    assert listed.returncode == 0 and f"slow  (from {path}, about " in listed.stdout
    missing = run_cli(["list"], env_for(fresh_state_dir, CHAOS_FILE=str(tmp_path / "no.yaml")))
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_one_listen_port_spelled_two_ways_is_one_proxy(fresh_state_dir):
    p, q, r = free_port(), free_port(), free_port()
    target = LocalTarget(Settings(state_dir=fresh_state_dir))
    target.proxy_fault("latency", listen=f"127.0.0.1:{p}", upstream=f"127.0.0.1:{q}", hold_s=1)
    with pytest.raises(UsageError, match="two upstreams"):
        target.proxy_fault("latency", listen=f"localhost:{p}", upstream=f"127.0.0.1:{r}", hold_s=1)


def test_huge_cleanup_output_is_read_from_its_tail_as_text():
    code, last = asyncio.run(run_command("head -c 50000000 /dev/zero; printf '\\nx\\001 end'", 30))
    assert code == 0.0 and last == "x? end"


def agents_of(state_dir) -> list[int]:
    """Agent processes serving this state dir, by their environment (ours to read as root or
    as their user)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            env = open(f"/proc/{entry}/environ", "rb").read()  # noqa: SIM115
        except OSError:
            continue
        if f"CHAOS_STATE_DIR={state_dir}".encode() in env.split(b"\0") and is_chaos_machinery(
            int(entry)
        ):
            found.append(int(entry))
    return found


def test_an_agent_whose_caller_gave_up_while_it_started_is_stopped(fresh_state_dir):
    client = AgentClient(Settings(state_dir=fresh_state_dir))

    async def give_up():
        task = asyncio.ensure_future(client.ensure())
        await asyncio.sleep(0.3)  # spawned, not serving yet (start-up takes about a second)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(give_up())
    deadline = time.monotonic() + 10
    while agents_of(fresh_state_dir):
        assert time.monotonic() < deadline, "the abandoned agent still runs"
        time.sleep(0.1)


def test_an_agent_started_by_the_console_script_is_machinery(tmp_path):
    # argv as the console script runs it: python3 .../bin/chaos-tui agent
    script = tmp_path / "chaos-tui"
    script.write_text("import time\ntime.sleep(30)\n")
    proc = subprocess.Popen([sys.executable, str(script), "agent"])
    try:
        time.sleep(0.2)
        assert is_chaos_machinery(proc.pid)
    finally:
        proc.kill()
        proc.wait()
