"""SIGTERM, SIGINT and SIGHUP reach the real console mid-fault: `chaos-tui` (run_console hooks
them to the app) heals before it exits, long before the lease's TTL, and saves the result.

Each test runs the console in a pseudo-terminal on a sandbox of its own, confirms the run by
typing the scenario's name, waits for the agent's lease (the fault is live), signals the
console's pid and watches what is left."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time

import psycopg
import pytest

from chaos_tui.core.exit_codes import ExitCode
from chaos_tui.sandbox.stack import Sandbox
from chaos_tui.settings import Settings
from tests.conftest import env_for, leftovers, make_state_dir
from tests.pty_console import PtyConsole

SCENARIO = "postgres_restart_outbox"
DOWN_S = 30  # the lease's TTL is this plus a 10 s margin: a heal at the TTL is far too late


class UndocumentedExitCode(AssertionError):
    """The console healed but exited with a code other than the README's."""


@pytest.fixture(scope="module")
def console_sandbox():
    """A sandbox of this module's own, already up: the console uses it and leaves it up, so
    PostgreSQL can be asked after the console is gone."""
    state_dir = make_state_dir("signals")
    sandbox = Sandbox(Settings(state_dir=state_dir))
    sandbox.up(profiles=["chaos-outbox"])
    try:
        yield state_dir, sandbox
    finally:
        left = leftovers(state_dir)
        sandbox.down()
        shutil.rmtree(state_dir, ignore_errors=True)
        assert not left, f"left behind: {left}"


def _live_lease(state_dir, timeout: float = 60) -> dict:
    leases = state_dir / "agent" / "leases"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in leases.glob("*.json"):
            try:
                return json.loads(path.read_text())
            except (OSError, ValueError):
                pass  # being written or removed right now
        time.sleep(0.1)
    raise AssertionError("no lease appeared: the fault never went live")


def _postgres_answers(sandbox: Sandbox) -> bool:
    try:
        with psycopg.connect(sandbox.postgres_url, connect_timeout=2) as conn:
            return conn.execute("select 1").fetchone() == (1,)
    except psycopg.Error:
        return False


def _console_with_a_live_fault(
    state_dir, sandbox, *, controlling_terminal: bool = True
) -> tuple[PtyConsole, dict]:
    """The console started on the scenario, the run confirmed by typing its name, and the
    fault live: the agent holds its lease and PostgreSQL does not answer."""
    assert not list((state_dir / "agent" / "leases").glob("*.json")), "a lease from before"
    console = PtyConsole(
        ["--scenario", SCENARIO, "--set", "warmup_s=1", "--set", f"down_s={DOWN_S}"],
        env_for(state_dir),
        controlling_terminal=controlling_terminal,
    )
    try:
        console.wait_for("Run")  # the scenario's detail screen
        console.type("r")
        console.wait_for("the scenario name, exactly")
        console.type(f"{SCENARIO}\r")
        lease = _live_lease(state_dir)
        assert "postgres" in json.dumps(lease["params"]), lease
        time.sleep(0.5)  # the kill itself lands just after the lease is journalled
        assert not _postgres_answers(sandbox), "the fault is not live: nothing to heal"
    except BaseException:
        console.close()
        leftovers(state_dir)
        raise
    return console, lease


def _what_the_console_left(state_dir, sandbox, console: PtyConsole, timeout: float) -> dict:
    """Waits for the console to exit, then looks (before anything here heals) at what it
    left; then heals and stops whatever it left, so the next test starts clean."""
    started = time.monotonic()
    try:
        try:
            code = console.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        return {
            "code": code,
            "took": time.monotonic() - started,
            "leases": [p.stem for p in (state_dir / "agent" / "leases").glob("*.json")],
            "postgres answers": _postgres_answers(sandbox),
            "screen": console.text(),
        }
    finally:
        console.close()
        leftovers(state_dir)


def _assert_healed_and_saved(state_dir, left: dict, lease: dict, saved_before: set) -> None:
    # Healed by the console before it returned, not by the agent's reaper at the TTL.
    assert left["took"] < 15, f"the console took {left['took']:.1f}s to exit"
    assert not left["leases"], f"leases outlived the console: {left['leases']}"
    assert left["postgres answers"], "PostgreSQL does not answer after the console exited"
    saved = set((state_dir / "results" / SCENARIO).glob("*.json")) - saved_before
    assert len(saved) == 1, f"results saved: {saved}"
    result = json.loads(saved.pop().read_text())
    assert result["outcome"] == "interrupted" and result["heal"]["ok"], result["heal"]
    assert [f["lease_id"] for f in result["heal"]["faults"]] == [lease["id"]]


@pytest.mark.slow
@pytest.mark.parametrize(
    "sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name
)
def test_a_signal_mid_fault_heals_before_the_console_exits(console_sandbox, sig):
    state_dir, sandbox = console_sandbox
    saved_before = set((state_dir / "results" / SCENARIO).glob("*.json"))
    console, lease = _console_with_a_live_fault(state_dir, sandbox)
    console.proc.send_signal(sig)
    left = _what_the_console_left(state_dir, sandbox, console, timeout=30)

    assert left["code"] is not None, "the console did not exit within 30 s"
    _assert_healed_and_saved(state_dir, left, lease, saved_before)
    # The console's handler heard it: without it SIGTERM and SIGHUP kill the console outright
    # (the lease outlives it), and SIGINT becomes a KeyboardInterrupt that heals by luck (the
    # task's cancellation) and then claims nothing was started.
    assert f"{sig.name}: healing before exit" in left["screen"]
    assert "interrupted before anything was started" not in left["screen"]
    if left["code"] != ExitCode.INTERRUPTED:
        raise UndocumentedExitCode(
            f"{sig.name}: exit {left['code']}, the README documents "
            f"{int(ExitCode.INTERRUPTED)} for an interrupted run"
        )


class ConsoleHung(AssertionError):
    """The console did not exit after its terminal went away."""


@pytest.mark.slow
@pytest.mark.parametrize(
    "controlling_terminal", [True, False], ids=["with-sighup", "writes-fail-only"]
)
def test_the_terminal_going_away_mid_fault_heals_before_the_console_exits(
    console_sandbox, controlling_terminal
):
    """The real hang-up: the terminal is closed (a window shut, an ssh session dropped) and
    every write to it fails. With it as the controlling terminal the kernel also sends SIGHUP;
    without, the failing writes are the only news (chaos_tui/terminal.py). Textual's own
    driver froze the console in both: its writer thread died on EIO, and the loop blocked
    for good on the full write queue, so not even the SIGHUP handler ran."""
    state_dir, sandbox = console_sandbox
    saved_before = set((state_dir / "results" / SCENARIO).glob("*.json"))
    console, lease = _console_with_a_live_fault(
        state_dir, sandbox, controlling_terminal=controlling_terminal
    )
    console.hang_up()
    left = _what_the_console_left(state_dir, sandbox, console, timeout=20)

    if left["code"] is None:
        raise ConsoleHung(f"no exit 20 s after the hang-up; leases then: {left['leases']}")
    _assert_healed_and_saved(state_dir, left, lease, saved_before)
    assert left["code"] == ExitCode.INTERRUPTED, f"exit {left['code']}"


@pytest.mark.parametrize(
    "controlling_terminal", [True, False], ids=["with-sighup", "writes-fail-only"]
)
def test_an_idle_console_exits_when_its_terminal_goes_away(fresh_state_dir, controlling_terminal):
    """No run, nothing drawn: without a SIGHUP only the driver's watch of the terminal notices,
    and Textual's input thread spun at 100% CPU on the hung-up terminal's endless EOF, for good."""
    console = PtyConsole([], env_for(fresh_state_dir), controlling_terminal=controlling_terminal)
    try:
        console.wait_for(SCENARIO)  # the picker
        time.sleep(1)  # idle: the first frames are out
        console.hang_up()
        started = time.monotonic()
        try:
            code = console.wait(10)
        except subprocess.TimeoutExpired:
            raise ConsoleHung("no exit 10 s after the hang-up") from None
        took = time.monotonic() - started
    finally:
        console.close()
    assert code == ExitCode.INTERRUPTED, f"exit {code}"
    assert took < 5, f"exit {took:.1f}s after the hang-up"  # measured: 0.4 s / 1.2 s
