from chaos_tui.core.model import InjectionWindow, ProbeSample
from chaos_tui.core.timeline import Timeline, summarise


def sample(probe, t, ok, value=None, latency=1.0):
    return ProbeSample(probe, t, ok, latency if ok else None, value, None if ok else "down")


def build(db_up=lambda t: not (3.2 <= t < 5.4)) -> Timeline:
    tl = Timeline()
    tl.register("db", "database")
    tl.register("backlog", "rows")
    # 10 Hz from t=0 to t=10; fault injected at 3.0, healed 5.0 -> 5.2; db down 3.2 .. 5.4
    for i in range(100):
        t = i / 10
        tl.add(sample("db", t, db_up(t)))
        backlog = 2 if t < 3 else (2 + (t - 3) * 40 if t < 5.4 else max(0.0, 98 - (t - 5.4) * 100))
        tl.add(sample("backlog", t, True, round(backlog)))
    tl.windows.append(
        InjectionWindow(
            fault="f",
            lease_id="l",
            description="",
            injected_at=3.0,
            heal_started_at=5.0,
            healed_at=5.2,
        )
    )
    return tl


def test_recovery_metrics_are_read_off_the_samples():
    m = build().recovery("db", "backlog")
    assert m.time_to_detect_s == 0.2
    assert m.time_to_recover_s == 0.4
    assert m.outage_s == 2.2
    assert 0.9 < m.error_rate_during_fault <= 1.0
    assert m.backlog_peak == 98
    assert m.backlog_drain_s is not None and 0.9 < m.backlog_drain_s < 1.5


def test_a_moments_pass_in_mid_fault_is_no_recovery():
    # The probe passes at 4.0 .. 4.2, then fails again until 5.4.
    tl = build(lambda t: not (3.2 <= t < 5.4) or 4.0 <= t < 4.25)
    m = tl.recovery("db", None)
    assert (m.time_to_detect_s, m.time_to_recover_s, m.outage_s) == (0.2, 0.4, 2.2)
    assert tl.outage("db")[1] == 4.0  # the scenarios' own edge: the first pass after the fall
    # Failing again at the end of the run: not back at all.
    m = build(lambda t: not (3.2 <= t < 5.4) and t < 9.7).recovery("db", None)
    assert m.time_to_recover_s is None and m.outage_s is None


def test_phases_split_samples_before_during_after():
    tl = build()
    report = tl.report("db", run_started_at=0.0)
    assert report.before.samples == 30 and report.before.error_rate == 0
    assert report.during.samples == 23 and report.during.ok < report.during.samples
    assert report.after.samples == 47
    assert len(report.samples) == 100


def test_no_fault_means_no_recovery_numbers():
    tl = Timeline()
    tl.add(sample("db", 0.0, True))
    assert tl.recovery("db", None).time_to_detect_s is None


def test_summary_percentiles():
    s = summarise([ProbeSample("p", i, True, float(i), None) for i in range(1, 101)])
    assert s.latency_ms_p50 == 50.5 and s.latency_ms_max == 100 and s.error_rate == 0


def test_ring_buffer_is_bounded():
    tl = Timeline(max_samples=10)
    for i in range(25):
        tl.add(sample("p", i, True))
    assert len(tl.samples("p")) == 10 and tl.samples("p")[0].t == 15


def test_drain_baseline_is_the_level_just_before_the_fault():
    tl = Timeline()
    # an old backlog of 500 drains during warm-up, then the steady level is 0
    for i in range(40):
        t = i / 10
        tl.add(sample("backlog", t, True, 500 if t < 1 else 0))
    for i in range(40, 80):  # fault at 4.0, heal at 5.0, backlog 60 falls to 0 at 6.5
        t = i / 10
        tl.add(sample("backlog", t, True, 60 if t < 6.5 else 0))
    tl.windows.append(
        InjectionWindow(
            fault="f",
            lease_id="l",
            description="",
            injected_at=4.0,
            heal_started_at=5.0,
            healed_at=5.1,
        )
    )
    m = tl.recovery(None, "backlog")
    assert m.backlog_peak == 60
    assert m.backlog_drain_s == 1.5


def test_a_watch_reading_as_the_samples_come_tells_what_a_full_read_tells():
    """The console's watch reads only the samples added since it last looked; at every step
    it must agree with a read of the whole series (what the saved result holds), through
    the fault landing, a pass in mid-fault, the heal, and a failure after it."""
    import random

    rng = random.Random(7)
    tl = Timeline()
    for name in ("db", "backlog", "other"):
        tl.register(name, name)
    watch = tl.watch()
    down = lambda t: 3.2 <= t < 5.4 or 7.0 <= t < 7.3  # noqa: E731
    for i in range(120):
        t = i / 10
        tl.add(sample("db", t, not down(t) or 4.0 <= t < 4.2))
        tl.add(sample("backlog", t, True, rng.randint(0, 5) + (40 if 3 <= t < 6 else 0)))
        tl.add(sample("other", t, rng.random() > (0.5 if down(t) else 0.0)))
        if i == 30:
            tl.windows.append(
                InjectionWindow(fault="f", lease_id="l", description="", injected_at=3.0)
            )
        if i == 52:
            tl.windows[0] = tl.windows[0].model_copy(
                update={"heal_started_at": 5.0, "healed_at": 5.2}
            )
        assert watch.read("db", "backlog") == tl.recovery("db", "backlog"), t
    final = watch.read("db", "backlog")
    assert final.time_to_detect_s == 0.2 and final.outage_s is not None
    assert final.backlog_peak is not None and final.other_error_rates
