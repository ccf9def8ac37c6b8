"""What the run screen draws of a run, from real LiveRun objects fed real events: the recovery
chart's data, the sparklines and probe panels, and the narration the event log is made of."""

from __future__ import annotations

import dataclasses

import pytest
import tui_queue_data
from rich.text import Text

import tui_data
from chaos_tui.core.events import (
    FaultInjected,
    Note,
    PhaseChanged,
    RunEvent,
    SampleTaken,
)
from chaos_tui.core.model import ProbeSample
from chaos_tui.core.report import short_number
from chaos_tui.live import LiveRun, ProbeInfo
from chaos_tui.narration import InOrder, Narrator, OrderedLog
from chaos_tui.scenarios.postgres_restart_outbox import PostgresRestartOutbox
from chaos_tui.widgets.probe_panel import short_error, span_for
from chaos_tui.widgets.recovery_chart import (
    BAND_BACKGROUND,
    BAND_GLYPH,
    FAILED_MARK,
    LATENCY_KEY,
    PROBE_COLOURS,
    by_column,
    chart_data,
    render,
)
from chaos_tui.widgets.series import SeriesChoice
from chaos_tui.widgets.sparkline import WINDOW_BAND, render_sparkline

T0 = tui_data.T0


def styles_by_column(line: Text) -> list[str]:
    styles = [""] * len(line.plain)
    for span in line.spans:
        for i in range(span.start, span.end):
            styles[i] += " " + str(span.style)
    return styles


def with_startup_outlier(run: list[RunEvent]) -> list[RunEvent]:
    """The same run, with Postgres's second sample taking 256 ms (a cold connection)."""
    out = []
    for event in run:
        if isinstance(event, SampleTaken) and event.sample.probe == "postgres":
            s = event.sample
            if abs(s.t - (T0 + 0.1)) < 1e-6:
                event = SampleTaken(dataclasses.replace(s, latency_ms=256.0))
        out.append(event)
    return out


# -- the chart ---------------------------------------------------------------------------


def test_chart_splits_latency_from_values_one_plot_per_unit():
    data = chart_data(tui_data.live_run(), width=100)
    plots = {p.title: [s.probe for s in p.series] for p in data.plots}
    # Postgres and NATS have no value: their latency. The backlog and the sequence count
    # things of their own: a plot each, never on the latency's y axis.
    assert plots == {
        LATENCY_KEY: ["postgres", "nats"],
        "outbox_backlog": ["outbox_backlog"],
        "sea_events": ["sea_events"],
    }
    assert data.plots[0].title == LATENCY_KEY, "latency leads"
    colours = [s.colour for p in data.plots for s in p.series if p.title == LATENCY_KEY]
    assert len(set(colours)) == len(colours), "two probes of one plot share a colour"


def test_probe_colours_are_neither_the_faults_nor_white_nor_alike():
    def reddish(r: int, g: int, b: int) -> bool:
        return r > 150 and g < 110 and b < 110

    assert not any(reddish(*c) for c in PROBE_COLOURS)
    assert sum(min(c) > 180 for c in PROBE_COLOURS) <= 1, "more than one near-white"
    assert len(set(PROBE_COLOURS)) == len(PROBE_COLOURS)


def test_chart_band_covers_the_window_and_an_unhealed_one_runs_to_now():
    healed = chart_data(tui_data.live_run(), width=100)
    assert healed.windows == [pytest.approx((tui_data.INJECT_AT, tui_data.HEAL_AT + 0.4))]
    assert healed.healed == [True]
    live = chart_data(tui_data.live_run(until_s=10.5, healed=False), width=100)
    start, end = live.windows[0]
    assert abs(start - tui_data.INJECT_AT) < 1e-6 and abs(end - 10.5) < 1e-6
    assert live.healed == [False]


def test_chart_draws_the_band_behind_the_data_with_its_edges():
    data = chart_data(tui_data.live_run(), width=100)
    drawn = render(data, 100, 12)
    lines = list(drawn.renderables)
    canvas = [t for t in lines if "│" in t.plain or "┤" in t.plain]
    assert any(BAND_GLYPH in t.plain for t in canvas), "no shading in the window"
    # The band's cells carry its background; the columns outside it do not.
    first = next(t for t in canvas if BAND_GLYPH in t.plain)
    styles = styles_by_column(first)
    shaded = [i for i, s in enumerate(styles) if BAND_BACKGROUND in s]
    assert shaded and shaded == list(range(shaded[0], shaded[-1] + 1)), "one band, unbroken"
    width = first.plain.rfind("│") - first.plain.find("│")
    share = len(shaded) / width
    assert 0.12 < share < 0.25, f"the 3.4 s window of a 20 s chart took {share:.0%}"
    # The legend is our own line above the plot, not over the data.
    assert lines[0].plain.startswith(LATENCY_KEY) and "postgres" in lines[0].plain
    assert "┌" in lines[1].plain


def test_chart_scale_ignores_a_start_up_outlier():
    plain = tui_data.replay(PostgresRestartOutbox(), tui_data.PROBES, tui_data.events())
    cold = tui_data.replay(
        PostgresRestartOutbox(), tui_data.PROBES, with_startup_outlier(tui_data.events())
    )
    top_plain = chart_data(plain, 100).plots[0].top
    top_cold = chart_data(cold, 100).plots[0].top
    # The 256 ms sample before the fault is cut off; the slow recovery (27 ms) still fits.
    assert top_cold == top_plain < 50
    assert top_cold > 27.0


def test_chart_draws_failures_as_marks_not_gaps():
    live = tui_data.live_run()
    data = chart_data(live, width=100)
    postgres = next(s for s in data.plots[0].series if s.probe == "postgres")
    nats = next(s for s in data.plots[0].series if s.probe == "nats")
    assert nats.failures == []
    # Postgres failed from 8.1 s to 11.1 s: marks all along it, none outside.
    assert postgres.failures[0] == pytest.approx(8.1) and postgres.failures[-1] > 11.0
    assert all(8.05 < x < 11.25 for x in postgres.failures)
    gaps = [b - a for a, b in zip(postgres.failures, postgres.failures[1:], strict=False)]
    assert max(gaps) < 0.5, "an outage drawn with holes"
    assert len(postgres.segments) == 2, "the line breaks at the outage"
    drawn = render(data, 100, 12)
    bottom_row = next(t.plain for t in drawn.renderables if "└" in t.plain)
    above = [t.plain for t in drawn.renderables]
    marks_row = above[above.index(bottom_row) - 1]
    assert FAILED_MARK in marks_row


def test_chart_thinning_keeps_spikes_and_breaks_at_a_single_failure():
    blip = [ProbeSample("p", T0 + i / 10, i != 333, 1.0 + (i == 700) * 99) for i in range(1000)]
    segments, failures = by_column(blip, "latency", T0, column_s=2.0)  # 20 samples a column
    assert len(segments) == 2 and len(failures) == 1, "one failed sample out of 1000 hidden"
    assert max(y for seg in segments for _, y in seg) == 100.0, "the spike was thinned away"
    assert sum(len(seg) for seg in segments) <= 52


def test_chart_renders_in_a_small_box_and_switches_plots():
    data = chart_data(tui_data.live_run(), width=30)
    small = render(data, 30, 5)
    assert len(small.renderables) <= 5
    assert all(len(t.plain) <= 30 for t in small.renderables)
    # 14 rows: two plots stacked; the third is one `u` away.
    tall = render(data, 100, 14)
    legends = [t.plain for t in tall.renderables if "━" in t.plain]
    assert [line.split()[0] for line in legends[:2]] == [LATENCY_KEY.split()[0], "outbox_backlog"]
    assert legends[0].startswith("latency ms (1/3, u: next)")
    assert legends[1].startswith("outbox_backlog (2/3, u: next)")
    turned = render(data, 100, 14, first=2)
    assert turned.renderables[0].plain.startswith("sea_events")


# -- the sparklines and the probe panels --------------------------------------------------


def test_sparkline_marks_the_window_with_an_underline_too():
    live = tui_data.live_run()
    line = render_sparkline(
        live.samples("nats"), live.windows, width=40, end=T0 + 20, span_s=20, use_value=False
    )
    styles = styles_by_column(line)
    underlined = [i for i, s in enumerate(styles) if "underline" in s]
    assert underlined == list(range(16, 23)), "without colour the window must still show"
    assert WINDOW_BAND.startswith("underline")


def test_an_http_health_probe_is_drawn_by_its_latency():
    choice = SeriesChoice()
    statuses = [ProbeSample("gw", T0 + i, True, 2.0 + i, 200.0) for i in range(10)]
    desc = "GET /health (latency ms; value = status)"
    assert choice.measure("gw", "", desc, statuses) == "latency"
    # Without the description's word for it: five samples of one code say it is a status.
    assert SeriesChoice().measure("gw", "", "GET /health", statuses) == "latency"
    assert SeriesChoice().measure("gw", "", "GET /health", statuses[:2]) == "value"
    # A counter stays a value, and a probe with a unit is never second-guessed.
    backlog = [ProbeSample("b", T0 + i, True, 2.0, float(i * 3)) for i in range(10)]
    assert SeriesChoice().measure("b", "", "unpublished rows", backlog) == "value"
    steady = [ProbeSample("q", T0 + i, True, 2.0, 200.0) for i in range(10)]
    assert SeriesChoice().measure("q", "jobs", "queue depth", steady) == "value"
    # The choice sticks: a panel never swaps its measure mid-run.
    assert choice.measure("gw", "", desc, backlog) == "latency"


def test_http_probe_chart_and_panel_use_latency():
    probes = [ProbeInfo("gateway", "GET /health (latency ms; value = status)")]
    live = LiveRun("s", "sandbox", probes, [])
    live.apply(PhaseChanged("steady_state", T0))
    for i in range(30):
        live.apply(SampleTaken(ProbeSample("gateway", T0 + i / 10, True, 3.0 + i % 4, 200.0)))
    data = chart_data(live, 80)
    assert [p.title for p in data.plots] == [LATENCY_KEY]
    assert max(y for seg in data.plots[0].series[0].segments for _, y in seg) == 6.0


def test_sparkline_caption_moves_in_fixed_steps():
    assert [span_for(s) for s in (0, 9.9, 10, 10.5, 13, 29, 31, 59, 61, 3600)] == [
        10,
        10,
        10,
        30,
        30,
        30,
        60,
        60,
        60,
        60,
    ]


def test_a_failing_panel_says_what_went_wrong_in_short():
    long = (
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
        "Connection refused\n\tIs the server running on that host and accepting TCP/IP?"
    )
    assert short_error(long) == "connection refused"
    assert short_error("HTTP 503, expected 200") == "HTTP 503"
    assert short_error("request timed out after 1s") == "timed out"
    assert short_error("nats: no responders available for request") == "no responders"
    assert short_error("weird: thing broke") == "thing broke"


# -- narration and the event log's order --------------------------------------------------


def test_no_ok_again_for_a_probe_that_never_failed():
    tell = Narrator()
    start_up = [
        ProbeSample("mirror", T0, False, None, None, "no message yet"),
        ProbeSample("mirror", T0 + 0.1, False, None, None, "no message yet"),
        ProbeSample("mirror", T0 + 0.2, True, 1.0),
    ]
    assert [tell(SampleTaken(s)) for s in start_up] == [None, None, None]
    down = tell(SampleTaken(ProbeSample("mirror", T0 + 5, False, None, None, "gone")))
    back = tell(SampleTaken(ProbeSample("mirror", T0 + 6, True, 1.0)))
    assert down is not None and "failing: gone" in down
    assert back is not None and "ok again" in back


def out_of_order_run() -> tuple[LiveRun, list[RunEvent]]:
    """Postgres fails 30 ms after the inject began, and its window (stamped with the inject's
    start) arrives after that failure, as a real run sends them."""
    live = tui_data.live_run(until_s=7.9)
    inject_t = T0 + 7.95
    window = tui_data.window(healed=False).model_copy(update={"injected_at": inject_t})
    events: list[RunEvent] = [
        PhaseChanged("inject", inject_t, "hard_restart:postgres"),
        SampleTaken(
            ProbeSample(
                "postgres",
                inject_t + 0.03,
                False,
                None,
                None,
                "connection failed: connection to server at 127.0.0.1 port 5432 failed: "
                "Connection refused. Is the server running on that host and accepting "
                "TCP/IP connections?",
            )
        ),
        FaultInjected(window),
    ]
    return live, events


def test_the_event_log_keeps_lines_in_the_order_they_happened():
    live, events = out_of_order_run()
    before = live.log.total
    for event in events:
        live.apply(event)
    told = [line.text for line in live.log][-3:]
    assert "inject" in told[0] and "INJECTED" in told[1] and "failing" in told[2], told
    assert live.log.reordered_at == live.log.total == before + 3
    times = [line.t for line in live.log]
    assert times == sorted(times)


def test_the_ordered_log_drops_the_oldest_and_keeps_arrival_order_for_ties():
    log = OrderedLog(3)
    narrate = Narrator()
    for i, t in enumerate([5.0, 1.0, 5.0, 3.0]):
        line = narrate.tell(Note(f"n{i}", T0 + t))
        assert line is not None
        log.add(line)
    assert [Text.from_markup(line.text).plain for line in log] == ["n3", "n0", "n2"]
    assert log.total == 4


def test_headless_narration_tells_the_inject_before_the_failures_it_caused():
    _, events = out_of_order_run()
    stream = InOrder()
    for event in tui_data.events(until_s=7.9):  # Postgres has passed: its failure is news
        stream(event)
    lines = [line for event in events for line in stream(event)]
    assert len(lines) == 3
    assert "inject" in lines[0] and "INJECTED" in lines[1] and "failing" in lines[2]
    # Nothing is held once the window is in; and a stream that ends mid-inject loses nothing.
    assert stream.flush() == []
    cut = InOrder()
    for event in tui_data.events(until_s=7.9):
        cut(event)
    assert len(cut(events[0])) == 1 and cut(events[1]) == []
    assert len(cut.flush()) == 1


def test_chart_merges_overlapping_faults_into_one_band():
    live = tui_queue_data.live_run(until_s=9.0, healed=False)
    assert len(live.windows) == 3
    data = chart_data(live, width=100)
    assert len(data.windows) == 1 and data.healed == [False]
    assert data.windows[0][1] == pytest.approx(9.0)
    assert short_number(6380) == "6.38k" and short_number(0.5) == "0.5"
    assert short_number(73.392) == "73.4"
