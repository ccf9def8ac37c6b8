"""Load patterns and the patterned driver (issue 15): exact, repeatable send times; each
pattern's shape; the driver against a real HTTP server on loopback; a bad pattern in a
scenario file refused by `chaos-tui validate` with its position."""

from __future__ import annotations

import asyncio
import math
import shutil
import time
from collections.abc import Iterator
from itertools import pairwise

import pytest
from pydantic import TypeAdapter, ValidationError

from chaos_tui.core.exit_codes import ExitCode
from chaos_tui.load.driver import SKIPPED_AT_CAP, STOPPED, BadAnswer, PatternedLoad
from chaos_tui.load.patterns import (
    MAX_ARRIVALS,
    Constant,
    LoadPattern,
    PatternBase,
    TooManyArrivals,
    arrivals,
    iter_arrivals,
)
from chaos_tui.probes.http_load import HttpRequestLoad
from tests.conftest import env_for, make_state_dir, run_cli
from tests.test_http_load import server  # noqa: F401 - the real HTTP server fixture

PATTERN: TypeAdapter[PatternBase] = TypeAdapter(LoadPattern)

SHAPES = {
    "constant": {"kind": "constant", "rate_per_s": 40},
    "ramp": {"kind": "ramp", "start_per_s": 0, "end_per_s": 100, "over_s": 10},
    "step": {"kind": "step", "rates_per_s": [10, 0, 50], "every_s": 2},
    "spike": {"kind": "spike", "base_per_s": 5, "peak_per_s": 200, "at_s": 3, "for_s": 1},
    "sine": {"kind": "sine", "mean_per_s": 50, "amplitude_per_s": 40, "period_s": 4},
    "burst": {"kind": "burst", "base_per_s": 2, "burst_per_s": 100, "every_s": 3, "for_s": 0.5},
}


def pattern(kind: str) -> PatternBase:
    return PATTERN.validate_python(SHAPES[kind])


def counts(times: list[float], edges: list[float]) -> list[int]:
    return [sum(lo <= t < hi for t in times) for lo, hi in pairwise(edges)]


# -- patterns ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_the_same_seed_gives_the_same_times_and_another_seed_others(kind: str) -> None:
    shape = pattern(kind)
    even = arrivals(shape, 12, seed=1)
    assert even == arrivals(shape, 12, seed=2)  # evenly spaced: no draw at all
    first = arrivals(shape, 12, seed=7, poisson=True)
    assert first == arrivals(PATTERN.validate_python(SHAPES[kind]), 12, seed=7, poisson=True)
    assert first != arrivals(shape, 12, seed=8, poisson=True)
    assert first != even
    for times in (even, first):
        assert times == sorted(times) and times[0] >= 0 and times[-1] < 12
    # A schedule cut short is the start of a longer one: a driver that generates lazily sends
    # exactly what the list says.
    lazy = iter_arrivals(shape, seed=7, poisson=True)
    assert [next(lazy) for _ in range(len(first))] == first


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_each_second_gets_its_integrated_rate(kind: str) -> None:
    shape = pattern(kind)
    edges = [float(s) for s in range(13)]
    expected = [shape.integral(hi) - shape.integral(lo) for lo, hi in pairwise(edges)]
    even = counts(arrivals(shape, 12), edges)
    # Evenly spaced: each second holds its integrated rate, give or take the send that
    # straddles an edge.
    assert all(abs(got - want) <= 1 for got, want in zip(even, expected, strict=True)), (
        even,
        expected,
    )
    # Poisson: each second within 5 standard deviations (sqrt of the mean), plus one.
    drawn = counts(arrivals(shape, 12, seed=3, poisson=True), edges)
    for got, want in zip(drawn, expected, strict=True):
        assert abs(got - want) <= 5 * math.sqrt(want) + 1, (drawn, expected)


def test_the_shapes_are_what_their_names_say() -> None:
    ramp, step, spike = pattern("ramp"), pattern("step"), pattern("spike")
    sine, burst = pattern("sine"), pattern("burst")
    assert [ramp.rate_at(t) for t in (0, 5, 10, 60)] == [0, 50, 100, 100]
    assert [step.rate_at(t) for t in (0, 1.9, 2, 4, 100)] == [10, 10, 0, 50, 50]
    assert [spike.rate_at(t) for t in (2.9, 3, 3.9, 4)] == [5, 200, 200, 5]
    assert sine.rate_at(1) == pytest.approx(90) and sine.rate_at(3) == pytest.approx(10)
    # The first burst comes after one period of base rate: a baseline first.
    assert [burst.rate_at(t) for t in (0, 2.9, 3, 3.4, 3.5, 6.2)] == [2, 2, 100, 100, 2, 100]
    # The step's silent stretch really is silent, and the spike really is sharp.
    times = arrivals(step, 6)
    assert counts(times, [2, 4]) == [0]
    assert counts(arrivals(spike, 6), [0, 3, 4, 6]) == [15, 200, 10]


def test_a_pattern_whose_rate_ends_at_zero_ends() -> None:
    down = PATTERN.validate_python(
        {"kind": "ramp", "start_per_s": 100, "end_per_s": 0, "over_s": 2}
    )
    times = list(iter_arrivals(down))  # finite: no cap needed
    assert len(times) == 100 and times[-1] < 2


def test_a_schedule_over_the_cap_is_refused_before_it_is_made() -> None:
    busy = Constant(rate_per_s=1000)
    with pytest.raises(TooManyArrivals, match="more than the 200,000"):
        arrivals(busy, 3600)
    assert len(arrivals(busy, 2)) == 2000
    with pytest.raises(TooManyArrivals):
        PatternedLoad(busy, _never, duration_s=MAX_ARRIVALS)  # refused at construction


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"kind": "constant", "rate_per_s": 0}, "greater than 0"),
        ({"kind": "constant", "rate_per_s": 5000}, "less than or equal to 1000"),
        ({"kind": "ramp", "start_per_s": 0, "end_per_s": 0, "over_s": 3}, "sends nothing"),
        ({"kind": "step", "rates_per_s": [], "every_s": 1}, "at least 1"),
        ({"kind": "spike", "base_per_s": 9, "peak_per_s": 9, "at_s": 1, "for_s": 1}, "above"),
        ({"kind": "sine", "mean_per_s": 5, "amplitude_per_s": 6, "period_s": 9}, "below 0"),
        ({"kind": "burst", "base_per_s": 1, "burst_per_s": 9, "every_s": 2, "for_s": 2}, "shorter"),
        ({"kind": "constant", "rate_per_s": "10"}, "valid number"),
        ({"kind": "constant", "rate_per_s": 10, "ratee": 1}, "Extra inputs"),
        ({"kind": "saw", "rate_per_s": 10}, "does not match any of the expected tags"),
    ],
)
def test_bad_patterns_are_refused_with_a_reason(value: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PATTERN.validate_python(value)


# -- the driver ----------------------------------------------------------------------------


async def _never(_n: int) -> None:
    await asyncio.sleep(3600)


def only_this_task() -> bool:
    return asyncio.all_tasks() == {asyncio.current_task()}


async def test_the_driver_sends_the_schedule_and_records_every_send() -> None:
    shape = pattern("step")  # 10/s, then silence from 2 s: the recorded times must follow
    seen: list[int] = []

    async def submit(n: int) -> None:
        seen.append(n)
        if n % 4 == 3:
            raise RuntimeError(f"job {n}\nrefused")
        if n % 4 == 2:
            raise BadAnswer("HTTP 503")
        await asyncio.sleep(0.01)

    phases = iter(["before"] * 10 + ["during"] * 100)
    load = PatternedLoad(shape, submit, duration_s=2.5, phase_at=lambda _t: next(phases))
    assert load.running is False
    load.start()
    await asyncio.wait_for(load.wait(), 5)  # the schedule ends by itself at duration_s
    await load.stop()
    assert only_this_task()
    schedule = arrivals(shape, 2.5)
    assert len(schedule) == 20 and seen == list(range(20))
    assert sorted(r.index for r in load.records) == seen
    start = load.started_wall
    assert start is not None
    for record in load.records:
        assert record.scheduled_at == pytest.approx(start + schedule[record.index], abs=1e-6)
        assert record.started_at is not None
        assert 0 <= record.started_at - record.scheduled_at < 0.2  # sent when due
    by_kind = {n % 4: [r for r in load.records if r.index == n] for n in range(4)}
    assert by_kind[0][0].ok and by_kind[0][0].latency_ms >= 10  # type: ignore[operator]
    assert by_kind[2][0].error == "HTTP 503" and by_kind[2][0].latency_ms is not None
    assert by_kind[3][0].error == "job 3 refused" and by_kind[3][0].latency_ms is None
    stats = load.summary()
    assert set(stats) == {"before", "during"}
    assert stats["before"].requests == 10 and stats["during"].requests == 10
    assert stats["before"].errors == 4 and stats["before"].error_rate == 0.4
    assert stats["before"].latency_ms_p99 is not None
    assert stats["before"].skipped == 0


async def test_the_in_flight_cap_skips_and_counts_and_stop_is_prompt() -> None:
    load = PatternedLoad(Constant(rate_per_s=100), _never, max_in_flight=4, drain_s=0.2)
    load.start()
    await asyncio.sleep(0.5)
    stopping = time.monotonic()
    await load.stop()
    assert time.monotonic() - stopping < 1.0
    assert only_this_task()
    skipped = [r for r in load.records if r.error == SKIPPED_AT_CAP]
    stopped = [r for r in load.records if r.error == STOPPED]
    assert len(stopped) == 4  # the four in flight, cancelled at the drain's end
    assert 35 <= len(skipped) <= 50, len(skipped)
    assert all(r.started_at is None and r.latency_ms is None for r in skipped)
    stats = load.summary()["run"]
    assert stats.skipped == len(skipped) and stats.errors == stats.requests
    assert load.sent == len(load.records)


async def test_a_blocked_loop_is_said_in_lag_and_in_each_record() -> None:
    # (tests/test_http_load.py checks that no burst follows; this, that the shift shows.)
    async def quick(_n: int) -> None:
        return None

    load = PatternedLoad(Constant(rate_per_s=50), quick)
    load.start()
    await asyncio.sleep(0.2)
    time.sleep(0.4)  # the loop is stuck
    await asyncio.sleep(0.2)
    await load.stop()
    assert 0.35 <= load.lag_s < 0.6
    late = [r.started_at - r.scheduled_at for r in load.records if r.started_at is not None]
    assert max(late) >= 0.35 and min(late) < 0.05  # on time before, shifted after


async def test_the_record_store_is_bounded() -> None:
    async def quick(_n: int) -> None:
        return None

    load = PatternedLoad(Constant(rate_per_s=200), quick, max_records=10)
    load.start()
    await asyncio.sleep(0.3)
    await load.stop()
    assert len(load.records) == 10
    assert load.records_dropped == load.sent - 10 > 20


async def test_stop_when_never_started_and_twice() -> None:
    load = PatternedLoad(Constant(rate_per_s=5), _never)
    await load.stop()
    await load.stop()
    assert load.records == [] and load.summary() == {}
    assert only_this_task()


async def test_an_http_ramp_against_a_real_server(server) -> None:  # noqa: F811
    url, behaviour = server
    ramp = PATTERN.validate_python(
        {"kind": "ramp", "start_per_s": 10, "end_per_s": 90, "over_s": 1}
    )
    load = HttpRequestLoad("ramp", url, pattern=ramp, seed=5, poisson=True)
    assert load.describe() == (f"GET to {url}: ramp 10 -> 90/s over 1 s (poisson arrivals, seed 5)")
    load.start()
    await asyncio.sleep(1.0)
    behaviour.status = 503
    await asyncio.sleep(0.5)
    await load.stop()
    assert only_this_task()
    expected = arrivals(ramp, 1.5, seed=5, poisson=True)
    # Every scheduled send that fell due was sent, in order (a slow machine may miss the
    # last few before stop()).
    indexes = sorted(r.index for r in load.driver.records)
    assert indexes == list(range(len(indexes)))
    assert len(expected) - 8 <= len(indexes) <= len(expected)
    assert behaviour.received == len(indexes)
    switch = load.driver.started_wall + 1.0  # type: ignore[operator]

    def phase_of(t: float) -> str:  # sends near the switch may see either status
        return "before" if t < switch - 0.05 else "during" if t > switch + 0.05 else "edge"

    stats = load.summary(phase_of)
    before, during = stats["before"], stats["during"]
    assert before.requests >= 30 and before.error_rate == 0.0
    assert before.latency_ms_p50 is not None and before.latency_ms_p99 is not None
    assert during.requests >= 25  # 90/s for 0.45 s: the ramp held its top
    assert during.last_error == "HTTP 503" and during.latency_ms_p50 is None
    assert set(stats) == {"before", "during", "after", "edge"}


# -- the scenario file --------------------------------------------------------------------

FILE = """\
version: 1
scenarios:
  shaped:
    hypothesis: "checkout survives a crash under a ramp of traffic"
    steady_state:
      - http_200_from: http://127.0.0.1:8080/health
    load:
      - http_requests:
          url: http://127.0.0.1:8080/checkout
          method: POST
          pattern: {kind: ramp, start_per_s: 5, end_per_s: 50, over_s: 30}
          arrivals: poisson
          seed: 7
    actions:
      - type: kill_process
        target: {listening_on: 8080}
        duration_seconds: 3
"""


@pytest.fixture
def state_dir() -> Iterator:
    path = make_state_dir("load")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def validate(state_dir, text: str):
    path = state_dir / "chaos.yaml"
    path.write_text(text)
    return path, run_cli(["validate", str(path)], env_for(state_dir), timeout=60)


def test_validate_shows_the_pattern(state_dir) -> None:
    _, done = validate(state_dir, FILE)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "shaped: 1 probe, 1 action, hold 3 s\n"
        "  load checkout: ramp 5 -> 50/s over 30 s (poisson arrivals, seed 7)\n"
    )


@pytest.mark.parametrize(
    ("old", "new", "where", "message"),
    [
        (
            "end_per_s: 50",
            "end_per_s: 5000",
            "11:60: scenarios.shaped.load[0].http_requests.pattern.end_per_s",
            "less than or equal to 1000",
        ),
        (
            "kind: ramp",
            "kind: rampe",
            "11:27: scenarios.shaped.load[0].http_requests.pattern.kind",
            "unknown pattern kind 'rampe' (did you mean 'ramp'?)",
        ),
        (
            "over_s: 30}",
            "over_s: 30, every_s: 2}",
            "11:76: scenarios.shaped.load[0].http_requests.pattern.every_s",
            "unknown key 'every_s' (did you mean 'over_s'?)",
        ),
        (
            "          arrivals: poisson\n",
            "",
            "12:17: scenarios.shaped.load[0].http_requests.seed",
            "a seed needs `arrivals: poisson`",
        ),
        (
            "          method: POST\n",
            "          rate_per_s: 20\n",
            "11:20: scenarios.shaped.load[0].http_requests.pattern",
            "give rate_per_s or pattern, not both",
        ),
    ],
)
def test_a_bad_pattern_is_one_positioned_line_and_exit_2(state_dir, old, new, where, message):
    assert FILE.count(old) == 1
    path, done = validate(state_dir, FILE.replace(old, new))
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"chaos-tui: {path}:{where}: "), lines[0]
    assert message in lines[0]


def test_a_load_too_big_for_the_run_is_refused_when_planned(state_dir) -> None:
    # The proxy's upstream need not listen: a dry run resolves the plan and starts nothing.
    text = (
        FILE.replace("end_per_s: 50", "end_per_s: 1000")
        .replace("          method: POST\n", "")
        .replace(
            "      - type: kill_process\n        target: {listening_on: 8080}\n",
            '      - type: latency\n        proxy: {listen: "127.0.0.1:1", upstream: '
            '"127.0.0.1:2"}\n        latency: 100\n',
        )
    )
    path = state_dir / "big.yaml"
    path.write_text(text)
    args = ["--dry-run", "--file", str(path), "--scenario", "shaped"]
    env = env_for(state_dir)
    fits = run_cli(args, env, timeout=60)
    assert fits.returncode == 0, fits.stderr
    assert "ramp 5 -> 1000/s over 30 s (poisson arrivals, seed 7)" in fits.stdout
    done = run_cli([*args, "--set", "warmup_s=300"], env, timeout=60)
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert done.stderr.strip().splitlines() == [
        "chaos-tui: shaped: load checkout: ramp 5 -> 1000/s over 30 s makes about 293,075 "
        "sends in 308 s, more than the 200,000 one run may hold: lower the rate or the duration"
    ]
    assert not (state_dir / "agent" / "agent.json").exists()
