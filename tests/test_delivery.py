from chaos_tui.core.delivery import check_delivery


def test_all_delivered_once_is_clean():
    ids = [f"id-{i}" for i in range(50)]
    counts = check_delivery(ids, ids, ids)
    assert (counts.published, counts.lost, counts.duplicated, counts.unexpected) == (50, 0, 0, 0)


def test_lost_duplicated_unexpected_and_recovered_are_told_apart():
    attempted = ["a", "b", "c", "d", "e"]
    acknowledged = ["a", "b", "c", "d"]  # "e" was tried but never confirmed
    received = ["a", "a", "c", "e", "zzz"]  # b and d lost, a doubled, e recovered, zzz unknown
    counts = check_delivery(attempted, acknowledged, received)
    assert counts.acknowledged == 4
    assert counts.received == 5
    assert counts.published == 2
    assert counts.lost == 2 and counts.lost_sample == ["b", "d"]
    assert counts.duplicated == 1 and counts.duplicated_sample == ["a"]
    assert counts.unexpected == 1
    assert counts.recovered == 1


def test_results_round_trip_and_latest_wins(tmp_path):
    import os

    from chaos_tui.core.journal import latest_result, save_result
    from chaos_tui.core.model import RunResult

    def result(run_id, started):
        return RunResult(
            run_id=run_id,
            scenario="s",
            hypothesis="h",
            target="sandbox",
            outcome="pass",
            started_at=started,
            finished_at=started + 1,
            duration_s=1,
            probe_rate_hz=10,
        )

    old = save_result(tmp_path, result("old", 1000.0))
    os.utime(old, (1, 1))
    save_result(tmp_path, result("new", 2000.0))
    (tmp_path / "s" / "9999-broken.json").write_text("{not json")
    assert latest_result(tmp_path, "s").run_id == "new"
    assert latest_result(tmp_path, "missing") is None
