"""Baselines and regressions: a run's recovery metrics against the last passing runs of its
scenario, target and parameter set (or a pinned baseline).

The rule (RegressionPolicy, rule_for): a metric regressed when it is worse than the
baseline's median by more than a percentage, AND by more than twice the baseline's own spread
(p95 - median), AND by more than an absolute floor of its unit. The spread keeps a metric that
varies a lot from run to run (an outage of 3.2-5.6 s on the sandbox) from crying wolf, while
one that is steady (a time to detect of 0-24 ms) is still caught when it moves; the floor
keeps 0.09 s -> 0.12 s (+33 %) from being a "regression" nobody cares about. An error rate is
judged by points, not a percentage (its median is often 0, where a percentage means nothing).

Past results are read from their JSON files (the source of truth), newest first, stopping as
soon as enough matching passing runs are found; a file that cannot be read is skipped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from chaos_tui.core.contracts import HOLD_NAMES
from chaos_tui.core.history import result_files
from chaos_tui.core.journal import write_atomic
from chaos_tui.core.model import FIRST_PASS, BaselineComparison, MetricComparison, RunResult
from chaos_tui.core.regression import Better, RegressionPolicy
from chaos_tui.core.timeline import percentile

ParamValue = float | int | str | bool
SCAN_LIMIT = 500  # result files read at most while looking for a baseline: bounded however many


@dataclass(frozen=True)
class KeyMetric:
    label: str
    unit: str  # "s", "%" (points), "/s", "" (a count)
    better: Better
    value: float


def _num(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _slug(text: str) -> str:
    out = "".join(c if c.isalnum() else "_" for c in text.lower())
    return "_".join(part for part in out.split("_") if part)


def key_metrics(result: RunResult) -> dict[str, KeyMetric]:
    """The figures of a run that say how well it recovered, each worse one way only. Counts
    of what a workload attempted are left out: more of them is not worse."""
    out: dict[str, KeyMetric] = {}

    def put(name: str, label: str, unit: str, value: object, better: Better = "lower") -> None:
        number = _num(value)
        if number is not None:
            out[name] = KeyMetric(label, unit, better, number)

    r = result.recovery
    of = f" ({r.probe})" if r.probe else ""
    put("time_to_detect_s", f"time to detect{of}", "s", r.time_to_detect_s)
    put("time_to_recover_s", f"time to recover{of}", "s", r.time_to_recover_s)
    put("outage_s", f"outage{of}", "s", r.outage_s)
    rate = _num(r.error_rate_during_fault)
    put("error_rate_during_fault", f"error rate during fault{of}", "%", _pct(rate))
    put("backlog_peak", f"backlog peak ({r.backlog_probe})", "", r.backlog_peak)
    put("backlog_drain_s", f"backlog drain ({r.backlog_probe})", "s", r.backlog_drain_s)

    for key, value in result.measurements.items():
        if key.endswith((" (s)", " s")):  # a duration: catch-up, window, down
            label = key.removesuffix(" (s)").removesuffix(" s")
            put(_slug(label) + "_s", label, "s", value)
        elif key.startswith("job latency ms (") and isinstance(value, dict):
            phase = key.removeprefix("job latency ms (").rstrip(")")
            p95 = _num(value.get("p95"))
            put(f"job_latency_p95_ms_{_slug(phase)}", f"job latency p95 ({phase})", "ms", p95)
        elif key == "dead letters" and isinstance(value, dict):
            growth = [_num(value.get(k)) for k in ("growth during", "growth after")]
            if any(g is not None for g in growth):
                put("dlq_growth", "DLQ growth", "", sum(g or 0.0 for g in growth))
        elif key in ("enqueue error rate", "job attempts failed") and isinstance(value, dict):
            put(f"{_slug(key)}_during", f"{key} (during)", "%", _pct(_num(value.get("during"))))
        elif key.startswith("load.") and key.endswith(".during") and isinstance(value, dict):
            load = key.removeprefix("load.").removesuffix(".during")
            p95 = _num(value.get("latency_ms_p95"))
            put(f"load_{_slug(load)}_latency_p95_ms", f"{load} latency p95 (during)", "ms", p95)
            errors = _pct(_num(value.get("error_rate")))
            put(f"load_{_slug(load)}_error_rate", f"{load} error rate (during)", "%", errors)
            ok, span = _num(value.get("ok")), _during_s(result)
            if ok is not None and span:
                throughput = round(ok / span, 3)
                label = f"{load} throughput (during)"
                put(f"load_{_slug(load)}_throughput", label, "/s", throughput, "higher")
    return out


def _during_s(result: RunResult) -> float | None:
    """How long the fault lasted in all: the first injection to the last heal."""
    windows = result.injection_windows
    ends = [w.healed_at for w in windows]
    if not windows or None in ends:
        return None
    return max(e for e in ends if e is not None) - min(w.injected_at for w in windows)


def _pct(fraction: float | None) -> float | None:
    return None if fraction is None else round(fraction * 100.0, 3)


def parameter_set(parameters: dict[str, ParamValue]) -> dict[str, ParamValue]:
    """Parameters as compared: a hold under an old name (down_s, stall_s...) is hold_s, so a
    result saved before the rename still matches."""
    out: dict[str, ParamValue] = {}
    for name, value in parameters.items():
        out["hold_s" if name in HOLD_NAMES else name] = value
    return out


def _same(a: dict[str, ParamValue], b: dict[str, ParamValue]) -> bool:
    a, b = parameter_set(a), parameter_set(b)
    return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)


def _equal(x: ParamValue, y: ParamValue) -> bool:
    nx, ny = _num(x), _num(y)
    if nx is not None and ny is not None:
        return nx == ny
    return x == y


@dataclass(frozen=True)
class Figures:
    label: str
    unit: str
    better: Better
    median: float
    p95: float
    count: int


@dataclass
class Baseline:
    """What a run of `scenario` on `target` with `parameters` is compared with."""

    scenario: str
    target: str
    parameters: dict[str, ParamValue]
    source: Literal["recent", "pinned"]
    runs: list[str] = field(default_factory=list)
    figures: dict[str, Figures] = field(default_factory=dict)
    pinned_at: float | None = None
    defaults: dict[str, ParamValue] = field(default_factory=dict)  # the scenario's, if known


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def figures_of(results: list[RunResult]) -> dict[str, Figures]:
    """Median and p95 of each key metric over the runs that have it."""
    series: dict[str, list[float]] = {}
    first: dict[str, KeyMetric] = {}
    for result in results:
        for name, metric in key_metrics(result).items():
            series.setdefault(name, []).append(metric.value)
            first.setdefault(name, metric)
    return {
        name: Figures(
            first[name].label,
            first[name].unit,
            first[name].better,
            round(_median(values), 4),
            round(percentile(sorted(values), 95), 4),
            len(values),
        )
        for name, values in series.items()
    }


def _passed(results_dir: Path, scenario: str) -> Iterator[dict[str, Any]]:
    """The plain JSON of the scenario's passing results, newest first, among its newest
    SCAN_LIMIT files (unreadable ones skipped): not parsed into models until one is wanted."""
    for path in result_files(results_dir, scenario)[:SCAN_LIMIT]:
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("outcome") == "pass":
            yield data


def passing_runs(
    results_dir: Path,
    scenario: str,
    target: str,
    parameters: dict[str, ParamValue] | None,
    limit: int,
    exclude: str | None = None,
) -> list[RunResult]:
    """The newest `limit` passing runs of the scenario on the target with these parameters
    (any parameters: None), newest first. Unreadable files are skipped."""
    found: list[RunResult] = []
    for data in _passed(results_dir, scenario):
        if data.get("target") != target or data.get("run_id") == exclude:
            continue
        params = data.get("parameters")
        if parameters is not None and not (isinstance(params, dict) and _same(params, parameters)):
            continue
        try:
            found.append(RunResult.model_validate(data))
        except ValueError:
            continue
        if len(found) >= limit:
            break
    return found


def recent_baseline(
    results_dir: Path,
    scenario: str,
    target: str,
    parameters: dict[str, ParamValue],
    policy: RegressionPolicy,
    exclude: str | None = None,
) -> tuple[Baseline, int]:
    """The baseline of recent runs and how many there were (it counts only if >= min_runs)."""
    runs = passing_runs(results_dir, scenario, target, parameters, policy.runs, exclude)
    baseline = Baseline(
        scenario,
        target,
        dict(parameters),
        "recent",
        runs=[r.run_id for r in runs],
        figures=figures_of(runs),
    )
    return baseline, len(runs)


# --- pinned baselines -----------------------------------------------------------------------


class Pin(BaseModel):
    """A run's figures, pinned as the baseline of its scenario, target and parameter set."""

    scenario: str
    target: str
    parameters: dict[str, ParamValue] = Field(default_factory=dict)
    parameter_defaults: dict[str, ParamValue] = Field(default_factory=dict)
    run_id: str
    pinned_at: float
    metrics: dict[str, tuple[str, str, Better, float]]  # name -> (label, unit, better, value)

    def baseline(self) -> Baseline:
        figures = {
            name: Figures(label, unit, better, value, value, 1)
            for name, (label, unit, better, value) in self.metrics.items()
        }
        return Baseline(
            self.scenario,
            self.target,
            dict(self.parameters),
            "pinned",
            runs=[self.run_id],
            figures=figures,
            pinned_at=self.pinned_at,
            defaults=parameter_set(self.parameter_defaults),
        )


class PinFile(BaseModel):
    pins: list[Pin] = Field(default_factory=list)


def _safe(name: str) -> str:
    """A scenario or target name as a file name (names are identifiers; be sure anyway)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).lstrip(".") or "_"


def pin_path(baselines_dir: Path, scenario: str, target: str) -> Path:
    return baselines_dir / _safe(scenario) / f"{_safe(target)}.json"


def load_pins(baselines_dir: Path, scenario: str, target: str) -> list[Pin]:
    """The pins of a scenario on a target; none when the file is missing or unreadable."""
    try:
        text = pin_path(baselines_dir, scenario, target).read_text()
        return PinFile.model_validate_json(text).pins
    except (OSError, ValueError):
        return []


def pin_targets(baselines_dir: Path, scenario: str) -> list[str]:
    folder = baselines_dir / _safe(scenario)
    try:
        return sorted(p.stem for p in folder.glob("*.json"))
    except OSError:
        return []


def pin_run(baselines_dir: Path, result: RunResult) -> Pin:
    """Pin a passing run's figures (replacing a pin of the same parameter set)."""
    if result.outcome != "pass":
        raise ValueError(
            f"run {result.run_id} did not pass ({result.outcome}): only a passing run can be "
            "a baseline"
        )
    metrics = {
        name: (m.label, m.unit, m.better, m.value) for name, m in key_metrics(result).items()
    }
    pin = Pin(
        scenario=result.scenario,
        target=result.target,
        parameters=parameter_set(result.parameters),
        parameter_defaults=parameter_set(result.parameter_defaults),
        run_id=result.run_id,
        pinned_at=time.time(),
        metrics=metrics,
    )
    pins = [
        p
        for p in load_pins(baselines_dir, result.scenario, result.target)
        if not _same(p.parameters, pin.parameters)
    ]
    path = pin_path(baselines_dir, result.scenario, result.target)
    write_atomic(path, PinFile(pins=[*pins, pin]).model_dump_json(indent=2) + "\n")
    return pin


def unpin(baselines_dir: Path, scenario: str, target: str | None = None) -> int:
    """Remove the pins of a scenario (on one target, or all): how many were removed."""
    targets = [target] if target else pin_targets(baselines_dir, scenario)
    removed = 0
    for name in targets:
        pins = load_pins(baselines_dir, scenario, name)
        removed += len(pins)
        pin_path(baselines_dir, scenario, name).unlink(missing_ok=True)
    return removed


def _pin_for(pins: list[Pin], parameters: dict[str, ParamValue]) -> Pin | None:
    return next((p for p in pins if _same(p.parameters, parameters)), None)


# --- the comparison -------------------------------------------------------------------------


def find_baseline(
    result: RunResult,
    results_dir: Path,
    pins: list[Pin],
    policy: RegressionPolicy,
) -> tuple[Baseline | None, str]:
    """The baseline a run is compared with, and the note saying which (or why none). Its own
    parameter set first (pinned, else recent runs), then the scenario's default set."""
    own = parameter_set(result.parameters)

    def of_set(
        params: dict[str, ParamValue], pinned: str, recent: str
    ) -> tuple[Baseline | None, int, str]:
        """A parameter set's pin, else its recent runs if there are enough: (baseline or
        None, how many recent runs, the note)."""
        pin = _pin_for(pins, params)
        if pin is not None:
            return pin.baseline(), 0, f"{pinned}: run {pin.run_id}"
        baseline, count = recent_baseline(
            results_dir, result.scenario, result.target, params, policy, exclude=result.run_id
        )
        enough = count >= policy.min_runs
        return (baseline if enough else None), count, recent.format(count=count)

    baseline, count, note = of_set(own, "pinned baseline", "baseline: {count} runs")
    if baseline is not None:
        return baseline, note
    why = (
        f"no baseline yet: {count} passing run{'s' if count != 1 else ''} of this parameter "
        f"set, {policy.min_runs} needed"
    )
    defaults = parameter_set(result.parameter_defaults)
    if count == 0 and not passing_runs(
        results_dir, result.scenario, result.target, None, 1, exclude=result.run_id
    ):
        return None, FIRST_PASS  # with any parameters: nothing at all to compare with
    if not defaults or _same(defaults, own):
        return None, why
    baseline, default_count, note = of_set(
        defaults,
        "pinned baseline of the default parameters",
        "baseline: {count} runs with the default parameters",
    )
    if baseline is not None:
        return baseline, note
    return None, why + (f" (and {default_count} with the default parameters)" * bool(default_count))


def rule_for(name: str, figures: Figures, policy: RegressionPolicy) -> MetricComparison:
    """The limit past which a value of this metric has regressed, with the rule that set it.
    A value must be worse than the baseline's median by the percentage, AND by `noise` times
    the baseline's own spread (p95 - median: a metric that varies a lot run to run needs a
    bigger change to mean something), AND by the absolute floor (0.09 s -> 0.12 s is not a
    regression). So the limit is the farthest of the three."""
    pct, floor = policy.rule(figures.unit, figures.better)
    median = figures.median
    sign = 1.0 if figures.better == "lower" else -1.0
    by_pct = median * (1 + sign * pct / 100.0) if pct is not None else median
    by_noise = median + sign * policy.noise * abs(figures.p95 - median)
    by_floor = median + sign * floor
    bounds = (by_pct, by_noise, by_floor)
    limit = max(bounds) if sign > 0 else min(bounds)
    if figures.unit == "%":  # no rate is worse than 100 %: past that nothing can regress
        limit = min(limit, 100.0)
    return MetricComparison(
        name=name,
        label=figures.label,
        unit=figures.unit,
        better=figures.better,
        baseline_median=median,
        baseline_p95=figures.p95,
        baseline_runs=figures.count,
        threshold_pct=pct,
        noise=policy.noise,
        floor=floor,
        limit=round(limit, 4),
    )


def judge(
    name: str, metric: KeyMetric, figures: Figures, policy: RegressionPolicy
) -> MetricComparison:
    rule = rule_for(name, figures, policy)
    limit = rule.limit if rule.limit is not None else metric.value
    regressed = metric.value > limit if metric.better == "lower" else metric.value < limit
    return rule.model_copy(
        update={"label": metric.label, "value": metric.value, "regressed": regressed}
    )


def all_baselines(
    results_dir: Path,
    baselines_dir: Path,
    scenario: str,
    target: str | None,
    policy: RegressionPolicy,
) -> list[tuple[Baseline, int]]:
    """Every baseline of a scenario (on one target, or all): per target and parameter set, the
    pin if there is one, else its recent passing runs, with how many there are (fewer than
    policy.min_runs is not yet a baseline). For `chaos-tui baseline show`."""
    groups: dict[tuple[str, str], list[RunResult]] = {}
    for data in _passed(results_dir, scenario):
        if target is not None and data.get("target") != target:
            continue
        params = data.get("parameters")
        group = (str(data.get("target")), _key(params if isinstance(params, dict) else {}))
        runs = groups.setdefault(group, [])
        if len(runs) < policy.runs:
            try:
                runs.append(RunResult.model_validate(data))
            except ValueError:
                continue
    out: list[tuple[Baseline, int]] = []
    pinned: set[tuple[str, str]] = set()
    targets = [target] if target else pin_targets(baselines_dir, scenario)
    for name in targets:
        for pin in load_pins(baselines_dir, scenario, name):
            pinned.add((name, _key(pin.parameters)))
            out.append((pin.baseline(), 1))
    for (name, params_key), runs in groups.items():
        if (name, params_key) in pinned or not runs:
            continue
        baseline = Baseline(
            scenario,
            name,
            parameter_set(runs[0].parameters),
            "recent",
            runs=[r.run_id for r in runs],
            figures=figures_of(runs),
            defaults=parameter_set(runs[0].parameter_defaults),
        )
        out.append((baseline, len(runs)))
    return out


def _key(parameters: dict[str, ParamValue]) -> str:
    """A parameter set as a comparable text (numbers as floats: 3 and 3.0 are one value)."""
    normal = {
        k: (_num(v) if _num(v) is not None else v) for k, v in parameter_set(parameters).items()
    }
    return json.dumps(normal, sort_keys=True)


def compare(
    result: RunResult,
    results_dir: Path,
    pinned: list[Pin] | None = None,
    policy: RegressionPolicy | None = None,
) -> BaselineComparison:
    """The run against its baseline: each key metric both have, judged by the policy."""
    policy = policy or RegressionPolicy()
    if result.outcome not in ("pass", "fail"):
        # Aborted before the fault, broken or interrupted: its figures say nothing of recovery.
        return BaselineComparison(
            scenario=result.scenario,
            target=result.target,
            source="none",
            note=f"not compared: the run ended as {result.outcome}, with no verdict",
        )
    baseline, note = find_baseline(result, results_dir, pinned or [], policy)
    if baseline is None:
        return BaselineComparison(
            scenario=result.scenario, target=result.target, source="none", note=note
        )
    own = parameter_set(result.parameters)
    differ: dict[str, list[ParamValue | None]] = {
        name: [baseline.parameters.get(name), own.get(name)]
        for name in sorted(set(own) | set(baseline.parameters))
        if not _equal_opt(baseline.parameters.get(name), own.get(name))
    }
    metrics = [
        judge(name, metric, baseline.figures[name], policy)
        for name, metric in key_metrics(result).items()
        if name in baseline.figures
    ]
    regressed = [m.label for m in metrics if m.regressed]
    note += f", {'regressed: ' + ', '.join(regressed) if regressed else 'nothing regressed'}"
    return BaselineComparison(
        scenario=result.scenario,
        target=result.target,
        source=baseline.source,
        parameters=baseline.parameters,
        parameters_differ=differ,
        runs=baseline.runs,
        metrics=metrics,
        note=note,
    )


def _equal_opt(x: ParamValue | None, y: ParamValue | None) -> bool:
    if x is None or y is None:
        return x is y
    return _equal(x, y)
