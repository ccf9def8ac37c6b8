"""SampleSeries: a probe's samples in columns read back exactly as they went in, capped, and
trimmed by time; LiveRun keeps only the minutes its screen draws."""

from __future__ import annotations

from chaos_tui.core.events import SampleTaken
from chaos_tui.core.model import ProbeSample
from chaos_tui.core.series import BLOCK, SampleSeries
from chaos_tui.core.timeline import Timeline
from chaos_tui.live import FORGET_EVERY, KEEP_S, LiveRun, ProbeInfo


def sample(t: float, ok: bool = True, **kw) -> ProbeSample:
    return ProbeSample("p", t, ok, kw.get("latency_ms", 1.5), kw.get("value"), kw.get("error"))


def test_samples_read_back_as_they_went_in() -> None:
    given = [
        sample(1.0, latency_ms=2.25, value=7.0),
        sample(2.0, ok=False, latency_ms=None, error="connection refused"),
        sample(3.0, latency_ms=0.0, value=None),
        sample(4.0, value=float("nan")),
    ]
    series = SampleSeries("p", maxlen=100)
    for s in given:
        series.append(s)
    back = list(series)
    assert back[:3] == given[:3]
    assert back[3].value != back[3].value  # NaN stays NaN, not None
    assert next(reversed(series)).t == 4.0
    assert [s.t for s in series.since(2.5)] == [3.0, 4.0]
    assert series.recent(2)[0] == given[2]


def test_cap_drops_the_oldest_and_keeps_errors_in_line() -> None:
    series = SampleSeries("p", maxlen=10)
    for i in range(25):
        series.append(sample(float(i), ok=i % 2 == 0, error=None if i % 2 == 0 else f"e{i}"))
    assert len(series) <= 10
    kept = list(series)
    assert kept[-1].t == 24.0
    assert all(s.error == (None if s.ok else f"e{int(s.t)}") for s in kept)


def test_drop_before_forgets_by_time() -> None:
    timeline = Timeline()
    for i in range(100):
        timeline.add(sample(float(i)))
    timeline.forget_before(60.0)
    assert timeline.samples("p")[0].t == 60.0
    assert timeline.kept == 40


def test_live_run_holds_only_the_minutes_it_draws() -> None:
    live = LiveRun("s", "sandbox", [ProbeInfo("p", "")], [])
    rate = 10
    for i in range(int(3 * KEEP_S * rate)):
        live.apply(SampleTaken(sample(1000.0 + i / rate)))
    kept = live.timeline.kept
    assert kept <= KEEP_S * rate + FORGET_EVERY
    assert live.samples("p")[-1].t == 1000.0 + (3 * KEEP_S * rate - 1) / rate


def test_columns_are_allocated_once_and_freed_by_the_block() -> None:
    """A long series never reallocates a column (a growing buffer leaves freed ones behind
    in the C heap, and RSS grew 1.7 times the samples in a soak); a probe without values has
    no value column; dropping frees whole blocks."""
    series = SampleSeries("p", maxlen=10 * BLOCK)
    series.append(sample(0.0))
    first = series._blocks[0]
    where = (first.t.buffer_info(), first.latency.buffer_info(), id(first.flags))
    for i in range(1, 3 * BLOCK + 5):
        series.append(sample(float(i)))
    assert series._blocks[0] is first
    assert (first.t.buffer_info(), first.latency.buffer_info(), id(first.flags)) == where
    assert first.t.buffer_info()[1] == BLOCK  # allocated at its full size from the start
    assert all(b.value is None for b in series._blocks)
    n = len(series)
    assert series.nbytes <= 17 * (n + BLOCK)  # time and latency doubles, a byte of flags
    series.drop_before(2.5 * BLOCK)
    assert len(series._blocks) == 2 and next(iter(series)).t == float(int(2.5 * BLOCK))
    assert series.nbytes == 2 * 17 * BLOCK


def test_absolute_indexes_and_values_across_blocks() -> None:
    series = SampleSeries("p", maxlen=3 * BLOCK)
    total = 7 * BLOCK + 3  # past the cap: the oldest tenths go
    for i in range(total):
        value = float(i) if i % 3 == 0 else None
        error = f"e{i}" if i % 7 == 0 else None
        series.append(sample(float(i), ok=error is None, value=value, error=error))
    assert series.end_index == total and len(series) <= 3 * BLOCK
    first = series.first_index
    kept = list(series)
    assert [s.t for s in kept] == [float(i) for i in range(first, total)]
    assert all(s.value == (s.t if int(s.t) % 3 == 0 else None) for s in kept)
    assert all(s.error == (f"e{int(s.t)}" if int(s.t) % 7 == 0 else None) for s in kept)
    at = series.index_at(total - BLOCK - 0.5)
    assert at == total - BLOCK
    assert [s.t for s in series.read_from(at)] == [float(i) for i in range(at, total)]
    back = [s.t for s in series.read_back_from(at)]
    assert back == [float(i) for i in range(at, first - 1, -1)]
    assert [s.t for s in reversed(series)] == [s.t for s in reversed(kept)]
    assert [s.t for s in series.since(total - 2.5)] == [total - 2.0, total - 1.0]
    assert series.recent(3) == kept[-3:]


def test_a_value_that_stays_one_number_needs_no_column() -> None:
    """An HTTP probe's status code (200, 200, ...) is kept once a block; the first value that
    differs gives the block its column, and every value still reads back exactly."""
    series = SampleSeries("p", maxlen=10 * BLOCK)
    for i in range(BLOCK + 10):
        series.append(sample(float(i), value=200.0))
    assert all(b.value is None for b in series._blocks)
    assert series.nbytes == 2 * 17 * BLOCK
    series.append(sample(2000.0, ok=False, latency_ms=None, value=None, error="refused"))
    series.append(sample(2001.0, value=503.0))
    series.append(sample(2002.0, value=-0.0))
    series.append(sample(2003.0, value=0.0))
    assert series._blocks[0].value is None and series._blocks[1].value is not None
    tail = series.recent(14)
    assert [s.value for s in tail] == [200.0] * 10 + [None, 503.0, 0.0, 0.0]
    assert [str(s.value) for s in tail[-2:]] == ["-0.0", "0.0"]  # a zero keeps its sign
    assert all(s.value == 200.0 for s in list(series)[: BLOCK + 10])
    zeros = SampleSeries("p", maxlen=BLOCK)
    zeros.append(sample(0.0, value=-0.0))
    zeros.append(sample(1.0, value=0.0))
    assert [str(s.value) for s in zeros] == ["-0.0", "0.0"]
