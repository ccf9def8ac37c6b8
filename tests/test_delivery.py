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
