"""Jepsen-style delivery check: what the workload wrote against what the stream holds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from chaos_tui.core.model import DeliveryCounts

SAMPLE_SIZE = 10  # how many example ids to keep for a human to chase


def check_delivery(
    attempted: Iterable[str], acknowledged: Iterable[str], received: Iterable[str]
) -> DeliveryCounts:
    attempted_set = set(attempted)
    acked = set(acknowledged)
    counts = Counter(received)
    seen = set(counts)
    lost = sorted(acked - seen)
    duplicated = sorted(i for i, n in counts.items() if n > 1)
    return DeliveryCounts(
        attempted=len(attempted_set | acked),
        acknowledged=len(acked),
        received=sum(counts.values()),
        published=len(acked & seen),
        lost=len(lost),
        duplicated=len(duplicated),
        unexpected=len(seen - attempted_set - acked),
        recovered=len((attempted_set - acked) & seen),
        lost_sample=lost[:SAMPLE_SIZE],
        duplicated_sample=duplicated[:SAMPLE_SIZE],
    )


def examples(ids: list[str]) -> str:
    """A few ids for a human to chase, as an invariant's detail."""
    return ("e.g. " + ", ".join(ids[:3])) if ids else ""
