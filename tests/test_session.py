"""The run session's two rules both faces rely on, without a sandbox: each result is written
once, and the exit code comes from the last run (a failed heal first)."""

from __future__ import annotations

import pytest

from chaos_tui.core.exit_codes import ExitCode
from chaos_tui.core.model import HealReport
from chaos_tui.session import ResultSaver, exit_code_for
from tests.tui_data import result


def test_a_result_is_written_once_however_often_it_is_saved(tmp_path):
    saver = ResultSaver(tmp_path)
    run = result()
    first = saver.save(run)
    first.write_text("{}")  # a second write would replace this
    assert saver.save(run) == first and first.read_text() == "{}"
    other = result().model_copy(update={"run_id": "fixedrun0002"})
    assert saver.save(other) != first
    assert saver.saves == 2
    assert sorted(p.name for p in (tmp_path / run.scenario).iterdir()) == sorted(
        [first.name, f"{int(other.started_at)}-fixedrun0002.json"]
    )


def test_a_failed_save_is_not_retried_into_a_second_file(tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("a file where the results folder should be")
    saver = ResultSaver(blocker)
    with pytest.raises(OSError):
        saver.save(result())
    with pytest.raises(OSError):
        saver.save(result())
    assert saver.saves == 0


@pytest.mark.parametrize(
    "outcome, heal_ok, signalled, code",
    [
        ("pass", True, False, ExitCode.PASS),
        ("fail", True, False, ExitCode.FAIL),
        ("aborted", True, False, ExitCode.ABORTED),
        ("error", True, False, ExitCode.ERROR),
        ("interrupted", True, False, ExitCode.INTERRUPTED),
        ("fail", True, True, ExitCode.INTERRUPTED),  # the console ended by a signal
        ("fail", False, True, ExitCode.HEAL_FAILED),  # a failed heal says so above all
        (None, True, False, ExitCode.PASS),  # a console that ran nothing
        (None, True, True, ExitCode.INTERRUPTED),
    ],
)
def test_the_exit_code_comes_from_the_last_run(outcome, heal_ok, signalled, code):
    last = None
    if outcome is not None:
        last = result().model_copy(update={"outcome": outcome, "heal": HealReport(ok=heal_ok)})
    assert exit_code_for(last, signalled=signalled) == code
