"""Saved results for the history tests: valid ones built through the RunResult model, one in
the format of a version before parameter defaults and comparisons, and a damaged file."""

from __future__ import annotations

import json
from pathlib import Path

from chaos_tui.core.journal import save_result
from chaos_tui.core.model import (
    BaselineComparison,
    MetricComparison,
    RecoveryMetrics,
    RunResult,
)

T0 = 1_790_000_000.0
DEFAULTS = {"hold_s": 3.0, "mode": "stop"}


def a_result(
    minute: int,
    run_id: str,
    *,
    scenario: str = "opa_restart",
    target: str = "sandbox",
    outcome: str = "pass",
    regressed: bool | None = None,
    **params: float | str,
) -> RunResult:
    """A result started `minute` minutes after T0; `regressed` adds a baseline comparison of
    its outage (flagged or not)."""
    started = T0 + minute * 60
    comparison = None
    if regressed is not None:
        comparison = BaselineComparison(
            scenario=scenario,
            target=target,
            runs=["aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"],
            metrics=[
                MetricComparison(
                    name="outage_s",
                    label="outage (allow_path)",
                    unit="s",
                    value=8.0 if regressed else 2.1,
                    baseline_median=2.0,
                    baseline_p95=2.4,
                    baseline_runs=3,
                    threshold_pct=20.0,
                    floor=0.5,
                    limit=2.9,
                    regressed=regressed,
                ),
                MetricComparison(
                    name="time_to_recover_s",
                    label="time to recover (allow_path)",
                    unit="s",
                    value=0.4,
                    baseline_median=0.45,
                    baseline_p95=0.5,
                    baseline_runs=3,
                ),
            ],
        )
    return RunResult(
        run_id=run_id,
        scenario=scenario,
        hypothesis="decisions keep flowing",
        target=target,
        outcome=outcome,  # type: ignore[arg-type]
        started_at=started,
        finished_at=started + 12,
        duration_s=12.0,
        parameters=DEFAULTS | params,
        parameter_defaults=DEFAULTS,
        probe_rate_hz=4.0,
        recovery=RecoveryMetrics(
            probe="allow_path",
            time_to_detect_s=0.08,
            time_to_recover_s=0.47,
            outage_s=1.4,
            error_rate_during_fault=0.875,
        ),
        comparison=comparison,
    )


def old_format(results: Path, minute: int, run_id: str) -> Path:
    """A result as an older version wrote it: no parameters, defaults, comparison or SLOs."""
    started = T0 + minute * 60
    path = results / "opa_restart" / f"{int(started)}-{run_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "run_id": run_id,
        "scenario": "opa_restart",
        "hypothesis": "decisions keep flowing",
        "target": "sandbox",
        "outcome": "fail",
        "started_at": started,
        "finished_at": started + 9,
        "duration_s": 9.0,
        "probe_rate_hz": 2.0,
        "recovery": {"time_to_detect_s": 0.5, "time_to_recover_s": 1.5, "outage_s": 3.0},
    }
    path.write_text(json.dumps(data))
    return path


def damaged(results: Path, minute: int, run_id: str) -> Path:
    path = results / "opa_restart" / f"{int(T0 + minute * 60)}-{run_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"run_id": "' + run_id + '", "outcome": "pa')  # cut short
    return path


def a_history(results: Path) -> dict[str, Path]:
    """Six runs of two scenarios on two targets, an old-format one and a damaged one."""
    return {
        "first": save_result(results, a_result(0, "1111aaaa0001")),
        "changed": save_result(results, a_result(10, "2222bbbb0002", hold_s=1.0)),
        "failed": save_result(results, a_result(20, "3333cccc0003", outcome="fail")),
        "regressed": save_result(results, a_result(30, "4444dddd0004", regressed=True)),
        "steady": save_result(results, a_result(40, "5555eeee0005", regressed=False)),
        "queue": save_result(
            results,
            a_result(50, "6666ffff0006", scenario="queue_worker_crash", target="docker"),
        ),
        "old": old_format(results, 5, "0ld0f0rmat01"),
        "damaged": damaged(results, 25, "damagedrun01"),
    }
