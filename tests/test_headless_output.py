"""Quick-start 1 as a new user sees it: `chaos-tui --headless --scenario ...` in a real terminal
ends with the verdict and the saved result's path, on one screen; a pipe or --json still gets
the whole JSON result on stdout."""

from __future__ import annotations

import json
import os
import subprocess
import threading

from chaos_tui.core.exit_codes import ExitCode
from tests.conftest import CHAOS_TUI, env_for, run_cli
from tests.pty_console import ESCAPES, PtyConsole

SCENARIO = "postgres_restart_outbox"
SHORT = ["--set", "warmup_s=1", "--set", "down_s=1", "--set", "recover_s=2"]
QUICK_START = ["--headless", "--scenario", SCENARIO, *SHORT]


def visible(text: str) -> list[str]:
    """The lines as the terminal shows them: a carriage return starts its line again."""
    return [line.split("\r")[-1] for line in text.rstrip("\n").split("\n")]


def rows_at(lines: list[str], columns: int) -> int:
    """How many rows of a terminal this many columns wide the lines fill."""
    return sum(max(1, -(-len(line) // columns)) for line in lines)


def test_quick_start_in_a_terminal_ends_with_the_verdict_and_the_result_path(fresh_state_dir):
    # The classic terminal, 80 columns (the time to the first line is measured by
    # benchmarks/run_overhead.py; here, that it comes before the sandbox's start).
    console = PtyConsole(QUICK_START, env_for(fresh_state_dir), rows=24, columns=80)
    try:
        code = console.wait(120)
        console._reader.join(5)  # the last bytes, written just before the exit
    finally:
        console.close()
    text = console.text().replace("\r\n", "\n")
    lines = visible(text)
    assert code == ExitCode.PASS, text[-2000:]
    # A fresh state dir: the sandbox's first start is said before it happens.
    assert "preparing" in text  # the status line shown while the scenarios load...
    assert lines[0].startswith("starting the sandbox (chaos-outbox)"), lines[:3]  # ...erased
    assert rows_at(lines, 80) < 40, f"{rows_at(lines, 80)} rows at 80 columns:\n{text}"
    assert '"run_id"' not in text, "the JSON result was printed on the terminal"
    saved = list((fresh_state_dir / "results" / SCENARIO).glob("*.json"))
    assert len(saved) == 1, saved
    assert lines[-1] == f"result saved to {saved[0]}"
    verdict = next(i for i, line in enumerate(lines) if line.startswith("verdict: PASS"))
    assert any(line.startswith("heal: ok") for line in lines[verdict:-1]), lines[verdict:]
    assert json.loads(saved[0].read_text())["outcome"] == "pass"


def test_json_flag_in_a_terminal_and_a_pipe_both_get_the_whole_result(sandbox):
    # --json: stdout is a terminal of its own (stderr apart, so the JSON can be read back).
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [*CHAOS_TUI, *QUICK_START, "--json"],
        env=sandbox.env,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
    )
    os.close(slave)
    out = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the process closed its side
                return
            if not chunk:
                return
            out.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        stderr = proc.communicate(timeout=120)[1].decode()
        reader.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert proc.returncode == ExitCode.PASS, stderr[-2000:]
    on_terminal = ESCAPES.sub(b"", bytes(out)).decode().replace("\r\n", "\n")
    result = json.loads(on_terminal)
    assert result["scenario"] == SCENARIO and result["outcome"] == "pass"
    assert stderr.rstrip().splitlines()[-1].startswith("result saved to ")

    piped = run_cli(QUICK_START, sandbox.env)  # stdout a pipe: the JSON, as in CI
    assert piped.returncode == ExitCode.PASS, piped.stderr[-2000:]
    result = json.loads(piped.stdout)
    assert result["outcome"] == "pass" and result["run_id"] in piped.stderr


def test_bad_input_in_a_terminal_is_still_one_line(fresh_state_dir):
    """The status line shown while the scenarios load is erased by the error."""
    console = PtyConsole([*QUICK_START, "--set", "nope=1"], env_for(fresh_state_dir))
    try:
        code = console.wait(30)
        console._reader.join(5)
    finally:
        console.close()
    lines = visible(console.text().replace("\r\n", "\n"))
    assert code == ExitCode.USAGE
    assert len(lines) == 1 and lines[0].startswith("chaos-tui: unknown parameter nope"), lines
