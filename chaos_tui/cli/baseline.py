"""`chaos-tui baseline set|show|reset`: what each run is compared with (core/baseline.py).

`set RUN_ID` pins a passing run's figures as the baseline of its scenario, target and
parameter set (under the state dir's baselines/); `reset` unpins; `show` says, per scenario,
target and parameter set, what a run would be compared with and the limits it must stay in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from chaos_tui.cli.root import cli
from chaos_tui.core.errors import UsageError


@cli.group("baseline")
def baseline_group():
    """Baselines a run is compared with: pin one (set), see them (show), unpin (reset)."""


def _dirs():
    from chaos_tui.cli.common import command_settings

    settings = command_settings()
    state = Path(settings.state_dir)
    return settings, state / "results", state / "baselines"


@baseline_group.command("set")
@click.argument("run_id")
def baseline_set(run_id):
    """Pin RUN_ID's figures (an id, its prefix or a result file) as its baseline."""
    from chaos_tui.core.baseline import pin_run
    from chaos_tui.core.history import find_result, open_result

    _settings, results_dir, baselines_dir = _dirs()
    path = find_result(results_dir, run_id)
    try:
        result = open_result(path)
    except (OSError, ValueError):
        raise UsageError(f"{path} is not a result this chaos-tui can read") from None
    if result.outcome != "pass":
        raise UsageError(
            f"run {result.run_id} did not pass ({result.outcome}): only a passing run can be "
            "a baseline"
        )
    flagged = result.comparison.regressions if result.comparison else []
    if flagged:  # allowed (it may be the new normal), but never without a word
        names = ", ".join(m.label for m in flagged)
        click.echo(
            f"note: run {result.run_id} had regressed against its own baseline ({names}); "
            "it is the yardstick now",
            err=True,
        )
    pin = pin_run(baselines_dir, result)
    click.echo(
        f"pinned run {pin.run_id} as the baseline of {pin.scenario} on {pin.target} "
        f"({_params_text(pin.parameters, result.parameter_defaults)}): "
        f"{len(pin.metrics)} metrics"
    )


@baseline_group.command("reset")
@click.option("--scenario", "scenario", required=True, metavar="NAME", help="Whose pins to drop.")
@click.option("--target", "target", default=None, help="Only the pins on this target.")
def baseline_reset(scenario, target):
    """Unpin a scenario's baselines: its runs are compared with their recent runs again."""
    from chaos_tui.core.baseline import unpin

    _settings, results_dir, baselines_dir = _dirs()
    _check_scenario(scenario, results_dir, baselines_dir)
    removed = unpin(baselines_dir, scenario, target)
    where = f"{scenario}" + (f" on {target}" if target else "")
    if removed:
        click.echo(f"unpinned {removed} baseline{'s' * (removed != 1)} of {where}")
    else:
        click.echo(f"no pinned baseline of {where}")


@baseline_group.command("show")
@click.option("--scenario", "scenario", default=None, metavar="NAME", help="Only this scenario.")
@click.option("--target", "target", default=None, help="Only this target.")
@click.option(
    "--file",
    "file",
    type=click.Path(path_type=Path),
    default=None,
    help="The scenario file whose `regression:` blocks apply (also CHAOS_FILE).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def baseline_show(scenario, target, file, as_json):
    """What each run would be compared with: a pinned run or the recent passing runs, the
    median and p95 of each metric, and the limit past which it has regressed."""
    from chaos_tui.core.baseline import all_baselines, rule_for
    from chaos_tui.core.report import metric_text, rule_text
    from chaos_tui.session import regression_policy

    settings, results_dir, baselines_dir = _dirs()
    file = file if file is not None else settings.file
    if file is not None and not Path(file).is_file():
        raise UsageError(f"--file {file}: no such file")
    if scenario:
        _check_scenario(scenario, results_dir, baselines_dir, file)
    names = [scenario] if scenario else _scenarios(results_dir, baselines_dir)
    rows: list[dict[str, Any]] = []
    for name in names:
        policy = regression_policy(settings, _file_scenario(file, name))
        for baseline, count in all_baselines(results_dir, baselines_dir, name, target, policy):
            metrics: dict[str, dict[str, Any]] = {}
            for metric, f in baseline.figures.items():
                rule = rule_for(metric, f, policy)
                metrics[metric] = {
                    "label": f.label,
                    "unit": f.unit,
                    "better": f.better,
                    "median": f.median,
                    "p95": f.p95,
                    "runs": f.count,
                    "threshold_pct": rule.threshold_pct,
                    "noise": rule.noise,
                    "floor": rule.floor,
                    "limit": rule.limit,
                    "rule": rule_text(rule),
                }
            ready = baseline.source == "pinned" or count >= policy.min_runs
            rows.append(
                {
                    "scenario": name,
                    "target": baseline.target,
                    "parameters": baseline.parameters,
                    "parameter_defaults": baseline.defaults,
                    "source": baseline.source,
                    "runs": baseline.runs,
                    "ready": ready,
                    "min_runs": policy.min_runs,
                    "metrics": metrics,
                }
            )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        what = (scenario or "any scenario") + (f" on {target}" if target else "")
        click.echo(f"no baseline for {what} yet: runs that pass make one")
        return
    for row in rows:
        params = _params_text(row["parameters"], row["parameter_defaults"])
        if row["source"] == "pinned":
            source = f"pinned run {row['runs'][0]}"
        elif row["ready"]:
            source = f"the last {len(row['runs'])} passing runs"
        else:
            source = f"not yet a baseline: {_runs(len(row['runs']))}, {row['min_runs']} needed"
        click.echo(f"{row['scenario']} on {row['target']} ({params}): {source}")
        for m in row["metrics"].values():
            unit = m["unit"]
            click.echo(
                f"    {m['label']}: median {metric_text(m['median'], unit)}, "
                f"p95 {metric_text(m['p95'], unit)}; regressed past "
                f"{metric_text(m['limit'], unit)} ({m['rule']})"
            )


def _scenarios(results_dir: Path, baselines_dir: Path) -> list[str]:
    """Every scenario with saved results or pins."""
    names: set[str] = set()
    for folder in (results_dir, baselines_dir):
        try:
            names |= {p.name for p in folder.iterdir() if p.is_dir()}
        except OSError:
            continue
    return sorted(names)


def _file_scenario(file: Path | None, name: str):
    """The scenario file's class of that name (--file or CHAOS_FILE), for its `regression:`
    block."""
    if file is None:
        return None
    from chaos_tui.from_file.load import load_scenarios

    try:
        return load_scenarios(file).get(name)
    except Exception:  # a broken file is `validate`'s to explain; the default rule applies
        return None


def _check_scenario(
    name: str, results_dir: Path, baselines_dir: Path, file: Path | None = None
) -> None:
    """A --scenario that names nothing known (not built in, never run, never pinned, not in
    the file) is a typo: said, rather than "no baseline"."""
    from chaos_tui.scenarios import SCENARIOS

    if name in SCENARIOS or name in _scenarios(results_dir, baselines_dir):
        return
    if _file_scenario(file, name) is not None:
        return
    raise UsageError(f"unknown scenario {name!r}: not built in, and no run or pin of it here")


def _runs(count: int) -> str:
    return f"{count} passing run{'s' * (count != 1)}"


def _params_text(parameters: dict, defaults: dict) -> str:
    """The parameters that differ from the scenario's defaults (all of them if unknown)."""
    changed = {k: v for k, v in parameters.items() if not defaults or defaults.get(k) != v}
    if not changed:
        return "default parameters"
    return ", ".join(f"{k}={v}" for k, v in changed.items())
