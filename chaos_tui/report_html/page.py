"""One run's result as a self-contained HTML page: the verdict first, then what was run and
changed, each probe's series with the injection windows, the invariants, the recovery figures,
the comparison with the baseline, the SLOs, the operator's notes and, on a failure, the
runbook's first sections. Every figure is worded by core/report.py, as the terminal words it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from html import escape

from chaos_tui.core.model import (
    BaselineComparison,
    DeliveryCounts,
    InjectionWindow,
    MetricComparison,
    ProbeReport,
    RunResult,
    SloResult,
)
from chaos_tui.core.params import value_text
from chaos_tui.core.report import (
    SLO_PHASES,
    duration_text,
    heal_text,
    impact_facts,
    invariant_detail,
    measurement_facts,
    metric_text,
    never_failed,
    note_lines,
    quantity_text,
    recovery_facts,
    rule_text,
    slo_cell,
    slo_table,
)
from chaos_tui.report_html.markdown import to_html
from chaos_tui.report_html.style import CSS
from chaos_tui.report_html.svg import Point, Window, series_chart
from chaos_tui.runbooks import RunbookMissing, runbook_text

# No script, no fetch: the page may load nothing but itself (inline styles, data: images).
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def document(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n"
        f"<body>\n{body}\n"
        f"<footer>{escape(title)} · written by chaos-tui</footer>\n</body></html>\n"
    )


def when_text(epoch: float) -> str:
    """A wall-clock time with its zone, as the reader's report shows it."""
    return dt.datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def card(title: str, inner: str, cls: str = "") -> str:
    return f'<section class="card {cls}"><h2>{escape(title)}</h2>{inner}</section>'


def facts_table(rows: Iterable[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="facts">{cells}</table>' if cells else '<p class="muted">none</p>'


def table(head: list[str], rows: list[list[str]]) -> str:
    """A table whose cells are HTML already (escaped by the caller)."""
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def mark(passed: bool) -> str:
    return (
        '<span class="mark pass">✔ pass</span>'
        if passed
        else '<span class="mark fail">✘ FAIL</span>'
    )


VERDICT_CLASS = {"pass": "pass", "fail": "fail"}


def _header(result: RunResult) -> str:
    cls = VERDICT_CLASS.get(result.outcome, "other")
    meta = [
        ("target", result.target),
        ("started", when_text(result.started_at)),
        ("duration", duration_text(result.duration_s)),
        ("run id", result.run_id),
        ("probe rate", f"{result.probe_rate_hz:g} Hz"),
    ]
    reason = f'<p class="reason">{escape(result.reason)}</p>' if result.reason else ""
    regressions = result.comparison.regressions if result.comparison else []
    if regressions:  # a pass can still be slower than usual: said beside the verdict
        names = ", ".join(m.label for m in regressions)
        reason += f'<p class="reason">regressed against the baseline: {escape(names)}</p>'
    cells = "".join(f"<div><span>{escape(k)}</span>{escape(v)}</div>" for k, v in meta)
    return (
        f'<header class="card"><div class="verdict {cls}">{escape(result.outcome.upper())}'
        f"<small>{escape(duration_text(result.duration_s))}</small></div>"
        f'<div class="headline"><h1>{escape(result.scenario)}</h1>{reason}'
        f'<p class="hypothesis">{escape(result.hypothesis)}</p>'
        f'<div class="meta">{cells}</div></div></header>'
    )


def _parameters(result: RunResult) -> str:
    if not result.parameters:
        return card("Parameters", '<p class="muted">none</p>')
    defaults = result.parameter_defaults
    rows = []
    for name, value in result.parameters.items():
        default = defaults.get(name)
        changed = name in defaults and value != default
        rows.append(
            [
                f'<span class="mono">{escape(name)}</span>'
                + ('<span class="pill">changed</span>' if changed else ""),
                f'<span class="{"changed" if changed else ""}">{escape(value_text(value))}</span>',
                escape(value_text(default)) if name in defaults else '<span class="muted">?</span>',
            ]
        )
    return card("Parameters", table(["parameter", "value", "default"], rows))


def window_on_chart(w: InjectionWindow, started_at: float, end_s: float) -> Window:
    """A window in seconds since the run began: shaded from the inject's start to the heal's
    end (or the end of the run, never healed); its edges where the fault was in place and
    where the heal began."""
    landed = w.applied_at if w.applied_at is not None else w.injected_at
    heal = w.heal_started_at if w.heal_started_at is not None else w.healed_at
    return Window(
        label=f"{w.fault}: {w.description}",
        start_s=w.injected_at - started_at,
        end_s=(w.healed_at - started_at) if w.healed_at is not None else end_s,
        landed_s=landed - started_at,
        heal_s=None if heal is None else heal - started_at,
    )


def chart_of(probe: ProbeReport, result: RunResult, windows: list[Window], span_s: float) -> str:
    """A probe's latency, or its value where it has no latency or is the backlog the
    recovery metrics read."""
    has_latency = any(s[2] is not None for s in probe.samples)
    use_value = probe.name == result.recovery.backlog_probe or not has_latency
    index, unit, what = (3, "", "value") if use_value else (2, "ms", "latency")
    points = [Point(t=s[0], ok=s[1], y=s[index]) for s in probe.samples]
    failed = sum(not p.ok for p in points)
    caption = f"{what}{' (ms)' if unit else ''} · {len(points)} samples · " + (
        f'<span class="bad">{failed} failed</span>' if failed else "none failed"
    )
    svg = series_chart(points, windows, span_s, unit, f"{probe.name} {what}")
    return (
        f'<div class="chart-card" data-probe="{escape(probe.name, quote=True)}">'
        f"<h3>{escape(probe.name)}</h3>"
        f'<div class="caption">{escape(probe.description)} · {caption}</div>{svg}</div>'
    )


LEGEND = (
    '<p class="legend"><i class="line"></i>reading<i class="fail"></i>failing sample'
    '<i class="window"></i>fault live<i class="inject"></i>fault in place'
    '<i class="heal"></i>heal began</p>'
)


def _charts(result: RunResult) -> str:
    if not result.probes:
        return card("Probes", '<p class="muted">no probe samples were kept</p>')
    last = max((s[0] for p in result.probes.values() for s in p.samples), default=0.0)
    span_s = max(result.duration_s, last)
    windows = [window_on_chart(w, result.started_at, span_s) for w in result.injection_windows]
    charts = "".join(chart_of(p, result, windows, span_s) for p in result.probes.values())
    return card("Probes over the run", LEGEND + charts, "charts")


def _invariants(result: RunResult) -> str:
    rows = []
    for inv in result.invariants:
        measured = "unmeasured" if inv.measured is None else quantity_text(inv.measured, inv.unit)
        limit = (
            "" if inv.limit is None else f"{inv.comparison} {quantity_text(inv.limit, inv.unit)}"
        )
        rows.append(
            [
                mark(inv.passed),
                f"<b>{escape(inv.name)}</b><br>"
                f"<span class='muted'>{escape(inv.description)}</span>",
                f'<span class="num">{escape(measured)}</span>',
                f'<span class="num">{escape(limit)}</span>',
                escape(invariant_detail(inv, result.injection_windows)),
            ]
        )
    if not rows:
        return card("Invariants", '<p class="muted">none checked</p>')
    return card("Invariants", table(["", "invariant", "measured", "limit", "detail"], rows))


def _delivery(d: DeliveryCounts) -> str:
    counts = [
        ("attempted", d.attempted, False),
        ("acknowledged", d.acknowledged, False),
        ("delivered", d.published, False),
        ("lost", d.lost, d.lost > 0),
        ("duplicated", d.duplicated, d.duplicated > 0),
        ("unexpected", d.unexpected, d.unexpected > 0),
        ("recovered", d.recovered, False),
    ]
    cells = "".join(
        f'<div><span>{k}</span><b class="{"bad" if bad else ""}">{v}</b></div>'
        for k, v, bad in counts
    )
    samples = ""
    if d.lost_sample:
        samples += f'<p class="muted">lost, e.g. {escape(", ".join(d.lost_sample[:5]))}</p>'
    if d.duplicated_sample:
        dup = ", ".join(d.duplicated_sample[:5])
        samples += f'<p class="muted">duplicated, e.g. {escape(dup)}</p>'
    return f'<div class="meta">{cells}</div>{samples}'


def _recovery(result: RunResult) -> str:
    facts = recovery_facts(result.recovery, bool(result.injection_windows))
    left = "<h3>Recovery</h3>" + facts_table(facts)
    measured = measurement_facts(result.measurements)
    right = "<h3>Measurements</h3>" + facts_table(measured) if measured else ""
    inner = f'<div class="grid2"><div>{left}</div><div>{right}</div></div>'
    impact = impact_facts(result)
    if impact:
        inner = "<h3>Impact</h3>" + facts_table(impact) + inner
    if result.delivery is not None:
        inner += "<h3 style='margin-top:14px'>Delivery</h3>" + _delivery(result.delivery)
    return card("Recovery", inner)


def metric_value(m: MetricComparison, value: float | None) -> str:
    """A baseline figure in its metric's unit, as the terminal words it."""
    return metric_text(value, m.unit)


# The figures a run whose recovery probe never failed records as 0 s: "never failed" there,
# as the terminal says it (core/report.py's never_failed), not a healthy-looking "0 ms".
NEVER_FAILED_METRICS = ("time_to_detect_s", "time_to_recover_s", "outage_s")


def runs_text(count: int) -> str:
    return f"{count} run{'s' * (count != 1)}"


def comparison_intro(c: BaselineComparison) -> str:
    """The card's first sentence: what the run was compared with, or the comparison's own note
    on why it was not ("not compared: the run ended as interrupted, with no verdict")."""
    if c.source == "none":
        return c.note or "no baseline to compare with"
    own = "the default parameters" if c.parameters_differ else "the same parameters"
    if c.source == "pinned":
        which = f"run {c.runs[0]}" if len(c.runs) == 1 else runs_text(len(c.runs))
        return f"Compared with a pinned baseline ({which}) with {own}."
    last = "the last passing run" if len(c.runs) == 1 else f"the last {len(c.runs)} passing runs"
    return f"Compared with {last} of this scenario on this target, with {own}."


def comparison_html(c: BaselineComparison | None, never_failed_run: bool = False) -> str:
    if c is None:
        return card("Against the baseline", '<p class="muted">no baseline</p>')
    parts = [f"<p>{escape(comparison_intro(c))}</p>"]
    if c.note and c.source != "none":
        parts.append(f'<p class="muted">{escape(c.note)}</p>')
    if c.parameters_differ:
        differ = ", ".join(
            f"{k}: {value_text(old)} → {value_text(new)}"
            for k, (old, new) in (
                (k, (v + [None, None])[:2]) for k, v in c.parameters_differ.items()
            )
        )
        parts.append(
            f'<p class="muted">parameters differ from the baseline\'s: {escape(differ)}</p>'
        )
    if c.metrics:
        rows = []
        for m in c.metrics:
            rule = [rule_text(m)] if m.limit is not None else []
            flag = (
                '<span class="pill fail">regression</span>'
                if m.regressed
                else '<span class="ok">ok</span>'
            )
            never = never_failed_run and m.name in NEVER_FAILED_METRICS
            value = "never failed" if never else metric_value(m, m.value)
            rows.append(
                [
                    escape(m.label),
                    f'<span class="num"><b>{escape(value)}</b></span>',
                    f'<span class="num">{escape(metric_value(m, m.baseline_median))}</span>',
                    f'<span class="num">{escape(metric_value(m, m.baseline_p95))}</span>',
                    f'<span class="num">{escape(metric_value(m, m.limit))}</span>'
                    + (f'<br><span class="muted">{escape(", ".join(rule))}</span>' if rule else ""),
                    flag,
                ]
            )
        head = ["metric", "this run", "baseline median", "baseline p95", "regression past", ""]
        parts.append(table(head, rows))
    count = len(c.regressions)
    title = "Against the baseline" + (f" · {count} regression(s)" if count else "")
    return card(title, "".join(parts))


def slo_mark(r: SloResult) -> str:
    """One phase of an SLO in the terminal's words (`310 ms missed (not counted)`), coloured
    by what it means for the run."""
    cls = "ok" if r.passed else "bad" if r.counts else "muted"
    return f'<span class="num {cls}">{escape(slo_cell(r))}</span>'


def slos_html(result: RunResult) -> str:
    """The SLOs as the terminal shows them: one row per objective ("callers error rate <= 1%"),
    its phases side by side."""
    if not result.slos:
        return ""
    rows = [
        [escape(label)] + [slo_mark(phases[p]) if p in phases else "" for p in SLO_PHASES]
        for label, phases in slo_table(result)
    ]
    missed_uncounted = any(not s.passed and not s.counts for s in result.slos)
    note = (
        '<p class="muted">A miss marked "not counted" is reported only: it fails no run.</p>'
        if missed_uncounted
        else ""
    )
    return card("SLOs", table(["SLO", *SLO_PHASES], rows) + note)


def _faults(result: RunResult) -> str:
    if not result.injection_windows:
        return card("Faults", '<p class="muted">none injected</p>')
    rows = []
    for w in result.injection_windows:
        rel = window_on_chart(w, result.started_at, result.duration_s)
        live = (
            duration_text(w.healed_at - w.injected_at)
            if w.healed_at is not None
            else '<span class="bad">NEVER HEALED</span>'
        )
        by = "" if w.healed_by == "the run" else f" (healed by {escape(w.healed_by)})"
        parts = "".join(f"<br><span class='muted'>{escape(p)}</span>" for p in w.parts)
        heal = "" if rel.heal_s is None else f"+{duration_text(rel.heal_s)}"
        rows.append(
            [
                f"<b>{escape(w.fault)}</b><br>{escape(w.description)}{parts}",
                f'<span class="num">+{escape(duration_text(rel.landed_s))}</span>',
                f'<span class="num">{escape(heal)}</span>',
                f'<span class="num">{live}{by}</span>',
            ]
        )
    heal = f"<p>heal: <b>{escape(heal_text(result))}</b></p>"
    return card("Faults", table(["fault", "in place at", "heal began", "live for"], rows) + heal)


def runbook_excerpt(ref: str, sections: int = 2) -> str:
    """The runbook's opening and its first sections (symptoms, mitigation): what a reader of
    a failed run needs first. The whole file ships with chaos-tui."""
    try:
        text = runbook_text(ref)
    except RunbookMissing as exc:
        return str(exc)
    kept: list[str] = []
    seen = 0
    for line in text.splitlines():
        if line.startswith("## "):
            seen += 1
            if seen > sections:
                kept.append(f"… (the whole runbook: `{ref}`)")
                break
        kept.append(line)
    return "\n".join(kept).strip()


def _notes_and_runbook(result: RunResult) -> str:
    out = ""
    if result.notes:
        items = "".join(f"<li>{escape(line)}</li>" for line in note_lines(result))
        out += card("Operator notes", f"<ul>{items}</ul>")
    if result.runbook and result.outcome != "pass":
        out += card(
            "Runbook",
            f'<p class="muted">{escape(result.runbook)}</p>'
            f'<div class="runbook">{to_html(runbook_excerpt(result.runbook))}</div>',
        )
    return out


def _versions(result: RunResult) -> str:
    rows = [(k, v) for k, v in result.versions.items()]
    return card("Versions", facts_table(rows)) if rows else ""


def result_html(result: RunResult) -> str:
    """The whole page of one result."""
    body = "".join(
        [
            _header(result),
            _parameters(result),
            _charts(result),
            _invariants(result),
            _recovery(result),
            _faults(result),
            comparison_html(result.comparison, never_failed(result.recovery)),
            slos_html(result),
            _notes_and_runbook(result),
            _versions(result),
        ]
    )
    return document(
        f"chaos-tui: {result.scenario} {result.outcome.upper()} ({result.run_id})", body
    )
