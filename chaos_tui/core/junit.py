"""A run's result as JUnit XML, the format CI systems read: one <testsuite> for the run, one
<testcase> per invariant (a <failure> with measured vs limit when it broke), one for the heal,
one per SLO and per baseline metric when the result has them, and an <error> for a run that
never reached a verdict (steady state not reached, a run error, an interrupt).

Pure: a RunResult in, text out. The wording is the terminal's (core/report.py)."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

from chaos_tui.core.model import MetricComparison, RunResult, SloResult
from chaos_tui.core.report import (
    heal_text,
    invariant_detail,
    invariant_measure,
    metric_text,
    quantity_text,
    rule_text,
)

# Outcomes that are no verdict on the system: CI must show them as errors, not failures.
NO_VERDICT = ("error", "aborted", "interrupted")


def junit_xml(
    result: RunResult, hostname: str = "localhost", fail_on_regression: bool = False
) -> str:
    """The JUnit XML document of one run. A regression against the baseline is a <failure>
    only when it fails the run (`--fail-on-regression`); else it is reported, not failed,
    as the exit code is: CI must not go red on a run that passed."""
    return _document(testsuite(result, hostname, fail_on_regression))


def junit_suites_xml(suites: list[ET.Element], name: str) -> str:
    """The JUnit XML document of a suite of runs: one <testsuite> per run, in the order run."""
    root = ET.Element("testsuites", name=name)
    for key in ("tests", "failures", "errors"):
        root.set(key, str(sum(int(s.get(key, "0")) for s in suites)))
    root.set("time", _seconds(sum(float(s.get("time", "0")) for s in suites)))
    root.extend(suites)
    return _document(root)


def _document(root: ET.Element) -> str:
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def testsuite(
    result: RunResult, hostname: str = "localhost", fail_on_regression: bool = False
) -> ET.Element:
    """One run as a <testsuite>: a testcase per invariant (and SLO, and regression)."""
    suite = ET.Element("testsuite")
    classname = f"chaos.{result.scenario}"
    cases = _run_cases(result, classname, fail_on_regression)
    suite.attrib.update(
        name=result.scenario,
        tests=str(len(cases)),
        failures=str(sum(case.find("failure") is not None for case in cases)),
        errors=str(sum(case.find("error") is not None for case in cases)),
        skipped="0",
        time=_seconds(result.duration_s),
        timestamp=dt.datetime.fromtimestamp(result.started_at, dt.UTC).strftime(
            "%Y-%m-%dT%H:%M:%S"
        ),
        hostname=hostname,
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in _properties(result):
        ET.SubElement(properties, "property", name=name, value=value)
    suite.extend(cases)
    ET.SubElement(suite, "system-out").text = _summary(result)
    ET.SubElement(suite, "system-err")
    return suite


def unplanned_testsuite(
    scenario: str, reason: str, started_at: float, hostname: str = "localhost"
) -> ET.Element:
    """A suite's run that could not even be planned: one testcase, `plan`, in error (CI must
    not show a green suite that errored)."""
    suite = ET.Element(
        "testsuite",
        name=scenario,
        tests="1",
        failures="0",
        errors="1",
        skipped="0",
        time=_seconds(0.0),
        timestamp=dt.datetime.fromtimestamp(started_at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        hostname=hostname,
    )
    case = _case(f"chaos.{scenario}", "plan", 0.0)
    ET.SubElement(case, "error", message=reason, type="error").text = reason
    suite.append(case)
    return suite


def _properties(result: RunResult) -> list[tuple[str, str]]:
    props = [
        ("run_id", result.run_id),
        ("scenario", result.scenario),
        ("target", result.target),
        ("outcome", result.outcome),
    ]
    if result.reason:
        props.append(("reason", result.reason))
    props += [(f"parameter.{k}", str(v)) for k, v in sorted(result.parameters.items())]
    return props


def _run_cases(result: RunResult, classname: str, fail_on_regression: bool) -> list[ET.Element]:
    cases = []
    if result.outcome in NO_VERDICT:
        run = _case(classname, "run", result.duration_s)
        reason = result.reason or f"the run ended {result.outcome}"
        ET.SubElement(run, "error", message=reason, type=result.outcome).text = reason
        cases.append(run)
    for inv in result.invariants:
        case = _case(classname, inv.name, 0.0)  # judged at once: no time of its own
        measure = invariant_measure(inv)
        if not inv.passed:
            detail = invariant_detail(inv, result.injection_windows)
            text = "; ".join(filter(None, [inv.description, measure, detail]))
            ET.SubElement(case, "failure", message=measure, type="invariant").text = text
        else:
            ET.SubElement(case, "system-out").text = f"{inv.description}: {measure}"
        cases.append(case)
    cases.append(_heal_case(result, classname))
    cases += [_slo_case(slo, classname) for slo in result.slos]
    if result.comparison is not None:
        cases += [_metric_case(m, classname, fail_on_regression) for m in result.comparison.metrics]
    return cases


def _heal_case(result: RunResult, classname: str) -> ET.Element:
    healing = [
        w.healed_at - w.heal_started_at
        for w in result.injection_windows
        if w.healed_at is not None and w.heal_started_at is not None
    ]
    case = _case(classname, "heal", sum(healing))
    text = heal_text(result)
    if not result.heal.ok:  # what also makes the exit code HEAL_FAILED
        ET.SubElement(case, "failure", message=text, type="heal").text = text
    else:
        ET.SubElement(case, "system-out").text = text
    return case


def _slo_case(slo: SloResult, classname: str) -> ET.Element:
    case = _case(classname, f"slo {slo.subject} {slo.phase} {slo.objective}", 0.0)
    measured = "unmeasured" if slo.measured is None else quantity_text(slo.measured, slo.unit)
    measure = f"{measured} (limit {slo.comparison} {quantity_text(slo.limit, slo.unit)})"
    if slo.passed:
        ET.SubElement(case, "system-out").text = measure
    elif slo.counts:
        ET.SubElement(case, "failure", message=measure, type="slo").text = measure
    else:  # missed in a phase the scenario says does not count: reported, not failed
        ET.SubElement(case, "system-out").text = f"missed (not counted): {measure}"
    return case


def _metric_case(metric: MetricComparison, classname: str, fails: bool) -> ET.Element:
    case = _case(classname, f"regression {metric.label}", 0.0)
    # Worded as the terminal's summary words it (report.metric_text, rule_text).
    text = (
        f"{metric_text(metric.value, metric.unit)}, baseline median "
        f"{metric_text(metric.baseline_median, metric.unit)}"
    )
    if metric.limit is not None:
        text += f", limit {metric_text(metric.limit, metric.unit)} ({rule_text(metric)})"
    if metric.regressed and fails:
        ET.SubElement(case, "failure", message=text, type="regression").text = text
    elif metric.regressed:
        ET.SubElement(case, "system-out").text = f"regressed (not failed): {text}"
    else:
        ET.SubElement(case, "system-out").text = text
    return case


def _case(classname: str, name: str, seconds: float) -> ET.Element:
    return ET.Element("testcase", classname=classname, name=name, time=_seconds(seconds))


def _seconds(value: float) -> str:
    return f"{max(0.0, value):.3f}"


def _summary(result: RunResult) -> str:
    verdict = result.outcome.upper() + (f": {result.reason}" if result.reason else "")
    return f"{result.scenario} on {result.target}, run {result.run_id}: {verdict}"
