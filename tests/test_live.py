"""The console's view of a run, and the wording every face shares, from fixed events."""

from __future__ import annotations

import pytest
import tui_queue_data
from rich.text import Text

import tui_data
from chaos_tui.core.events import FaultHealed, Note, SampleTaken
from chaos_tui.core.model import ProbeSample, RunResult
from chaos_tui.core.report import impact_facts, markdown_report, result_facts
from chaos_tui.live import LOG_LINES_KEPT, Countdown
from chaos_tui.narration import Narrator
from chaos_tui.widgets.faults_panel import fault_rows
from chaos_tui.widgets.sparkline import FAILED, WINDOW_BAND, render_sparkline

T0 = tui_data.T0


def styles_by_column(line: Text) -> list[str]:
    styles = [""] * len(line.plain)
    for span in line.spans:
        for i in range(span.start, span.end):
            styles[i] = str(span.style)
    return styles


def test_sparkline_draws_the_window_and_the_failures_differently():
    live = tui_data.live_run()
    samples = live.samples("postgres")
    line = render_sparkline(
        samples, live.windows, width=40, end=T0 + 20, span_s=20, use_value=False
    )
    styles = styles_by_column(line)
    # Column i covers [i/2, (i+1)/2) seconds. The window is 8.0 s to 11.4 s: columns 16-22.
    inside = [i for i, s in enumerate(styles) if WINDOW_BAND in s]
    assert inside == list(range(16, 23)), inside
    # Postgres fails from 8.1 s to 11.1 s: every column of the window, and no other.
    assert line.plain[16:23] == FAILED * 7
    assert FAILED not in line.plain[:16] + line.plain[23:]


def test_sparkline_of_an_unhealed_window_runs_to_now():
    live = tui_data.live_run(until_s=10.0, healed=False)
    line = render_sparkline(
        live.samples("nats"), live.windows, width=20, end=T0 + 10, span_s=10, use_value=False
    )
    styles = styles_by_column(line)
    assert WINDOW_BAND in styles[-1] and WINDOW_BAND not in styles[0]
    assert FAILED not in line.plain, "nats kept passing"


def test_live_run_follows_the_fault_and_the_probe_states():
    during = tui_data.live_run(until_s=10.0, healed=False)
    assert during.chaos_live and [w.fault for w in during.live_faults] == ["hard_restart:postgres"]
    assert during.probe_status("postgres") == "failing"
    assert during.probe_status("nats") == "ok"
    after = tui_data.live_run(until_s=11.5)
    assert not after.chaos_live and after.live_faults == []
    assert after.probe_status("postgres") == "degraded", "just recovered: recent failures"
    slow = tui_data.live_run(until_s=14.3)  # no failure among the last ten samples
    assert slow.probe_status("postgres") == "degraded", "slow: 27 ms against a 3 ms baseline"
    assert tui_data.live_run(until_s=20).probe_status("postgres") == "ok"


def test_live_metrics_read_the_fault_off_the_events():
    r = tui_data.live_run().recovery()
    # The data: Postgres fails from 8.1 s to 11.1 s, passes again at 11.2 s; heal began at 11.0 s;
    # the fault was applied at 8.05 s, which time to detect counts from.
    assert r.time_to_detect_s == 0.05 and r.detect_from == "applied"
    assert r.outage_s == 3.1 and r.time_to_recover_s == 0.2
    assert r.backlog_peak == 80 and r.backlog_drain_s == 1.6


def test_a_failed_heal_keeps_the_fault_live():
    live = tui_data.live_run(until_s=10.0, healed=False)
    still = tui_data.window(healed=False)
    still.heal_started_at = T0 + 9.9
    live.apply(FaultHealed(still, False, "start timed out"))
    assert live.chaos_live and live.live_faults, "a failed heal hid the CHAOS MODE banner"
    assert "HEAL FAILED" in live.log[-1].text


def test_the_event_log_is_bounded():
    live = tui_data.live_run(until_s=1)
    for i in range(LOG_LINES_KEPT * 3):
        live.apply(Note(f"note {i}", T0 + 2 + i / 1000))
    assert len(live.log) == LOG_LINES_KEPT and live.log.total >= LOG_LINES_KEPT * 3
    assert live.log[-1].text.endswith(f"note {LOG_LINES_KEPT * 3 - 1}[/cyan]")


def test_narration_escapes_markup_in_errors():
    tell = Narrator()
    tell(SampleTaken(ProbeSample("p", T0, True, 1.0)))
    line = tell(SampleTaken(ProbeSample("p", T0 + 1, False, None, None, "[bold]boom[/] [x")))
    assert "[bold]boom" in Text.from_markup(line).plain


def test_markdown_report_carries_the_verdict_and_every_number():
    result = tui_data.result()
    text = markdown_report(result)
    assert text.startswith("# chaos-tui: postgres_restart_outbox")
    assert "**Verdict: PASS**" in text
    for label, value in result_facts(result):
        assert f"| {label} | {value} |" in text
    for inv in result.invariants:
        assert f"| pass | {inv.name}:" in text
    failed = result.model_copy(update={"outcome": "fail", "reason": "invariant(s) broken: x"})
    assert "**Verdict: FAIL**: invariant(s) broken: x" in markdown_report(failed)


def test_the_time_left_of_each_live_fault_follows_the_events():
    """Until the planned heal (the end of the hold) and until the lease's TTL, counted from the
    latest event, never from a clock; a window without them (an older result) says so."""
    live = tui_queue_data.live_run(until_s=9.0, healed=False)
    assert [w.fault for w in live.live_faults] == [f[0] for f in tui_queue_data.FAULTS]
    latency, _, injectors = live.live_faults
    left = live.countdown(latency)  # applied at 6.05 s, held 8 s; its TTL is 18 s from 6.0 s
    assert left.heal_in_s == pytest.approx(14.05 - 9.0)
    assert left.expires_in_s == pytest.approx(24.0 - 9.0)
    later = tui_queue_data.live_run(until_s=14.2, healed=False)  # past the planned heal
    assert later.countdown(later.live_faults[0]).heal_in_s == pytest.approx(-0.15)
    assert later.countdown(later.live_faults[0]).expires_in_s == pytest.approx(9.8)
    assert injectors.parts == [
        "fail: raise at 20%, every message (queue chaos_jobs)",
        "delay 50 ms, 25% of messages (actor do_job, worker w1)",
    ]
    old = latency.model_copy(update={"planned_heal_at": None, "expires_at": None})
    assert live.countdown(old) == Countdown(None, None)


def test_the_live_faults_panel_lists_each_injector_with_its_times():
    live = tui_queue_data.live_run(until_s=9.0, healed=False)
    rows = [(what.plain, heal.plain, ttl.plain) for what, heal, ttl in fault_rows(live)]
    assert rows[0] == ("broker_link:latency", "0:06", "0:15")  # 5.05 s left reads 0:06
    assert rows[4:7] == [
        ("worker_injectors:fail,delay", "0:06", "0:16"),
        ("  fail: raise at 20%, every message (queue chaos_jobs)", "", ""),
        ("  delay 50 ms, 25% of messages (actor do_job, worker w1)", "", ""),
    ]
    assert len(rows) == 7, "a line per fault and a line per thing it does"
    overdue = tui_queue_data.live_run(until_s=14.2, healed=False)
    assert fault_rows(overdue)[0][1].plain == "due"
    assert fault_rows(tui_queue_data.live_run()) == [], "nothing live once healed"


def test_a_queue_report_puts_the_dlq_impact_and_the_drain_first():
    result = tui_queue_data.result()
    assert impact_facts(result) == [
        ("DLQ impact", "+12 during the fault, +3 after (0 → 12 → 15 jobs)"),
        ("backlog drain after the heal", f"{result.recovery.backlog_drain_s:g} s (peak 58)"),
        ("jobs", "lost 0, duplicated 2, dead-lettered 15 of 480 acknowledged"),
    ]
    facts = dict(result_facts(result))
    assert (
        facts["dead letters"] == "before 0, at heal 12, after 15, growth during 12, growth after 3"
    )
    assert facts["enqueue error rate"] == "before 0%, during 1.2%, after 0%"
    assert facts["jobs"].startswith("sent 482, acknowledged 480, completed 465, dead lettered 15")
    assert facts["job latency ms (during)"] == "p50 352, p95 410, p99 433.5"
    md = markdown_report(result)
    assert md.index("## Impact") < md.index("## Recovery")
    assert "- **DLQ impact**: +12 during the fault, +3 after (0 → 12 → 15 jobs)" in md
    assert "  - fail: raise at 20%, every message (queue chaos_jobs)" in md
    assert impact_facts(tui_data.result()) == [], "only a job queue's result has these"


def test_a_result_saved_before_windows_had_times_and_parts_still_loads():
    saved = tui_queue_data.result().model_dump(mode="json")
    for w in saved["injection_windows"]:
        for key in ("planned_heal_at", "expires_at", "parts"):
            del w[key]
    window = RunResult.model_validate(saved).injection_windows[0]
    assert (window.planned_heal_at, window.expires_at, window.parts) == (None, None, [])
