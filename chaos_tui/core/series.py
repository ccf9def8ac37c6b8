"""One probe's samples, held compactly: a long run keeps every sample for its result.

A ProbeSample object with its two floats takes about 130 bytes; eight probes at 10 Hz are
288,000 samples an hour, some 37 MB. Here a sample is 25 bytes in typed columns (its time,
latency and value as doubles, one byte of flags) plus its error text when it failed, and a
ProbeSample is made again when it is read. Capped like a deque with `maxlen`: past the cap
the oldest tenth is dropped at once, so a full series costs no copying per sample.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterator

from chaos_tui.core.model import ProbeSample

OK, HAS_LATENCY, HAS_VALUE = 1, 2, 4


class SampleSeries:
    def __init__(self, probe: str, maxlen: int) -> None:
        self.probe = probe
        self.maxlen = maxlen
        self._t = array("d")
        self._latency = array("d")
        self._value = array("d")
        self._flags = bytearray()
        self._errors: dict[int, str] = {}  # by absolute index: failures are few
        self._dropped = 0  # samples dropped off the front, so indexes stay absolute

    def append(self, sample: ProbeSample) -> None:
        if len(self._flags) >= self.maxlen:
            self._drop(max(1, self.maxlen // 10))
        flags = (OK if sample.ok else 0) | (HAS_LATENCY if sample.latency_ms is not None else 0)
        flags |= HAS_VALUE if sample.value is not None else 0
        if sample.error is not None:
            self._errors[self._dropped + len(self._flags)] = sample.error
        self._t.append(sample.t)
        self._latency.append(sample.latency_ms if sample.latency_ms is not None else 0.0)
        self._value.append(sample.value if sample.value is not None else 0.0)
        self._flags.append(flags)

    def drop_before(self, t: float) -> None:
        """Forget the samples taken before `t` (read from the oldest: times only grow)."""
        count = bisect_left(self._t, t)
        if count:
            self._drop(count)

    def _drop(self, count: int) -> None:
        del self._t[:count], self._latency[:count], self._value[:count], self._flags[:count]
        self._dropped += count
        self._errors = {i: e for i, e in self._errors.items() if i >= self._dropped}

    def __len__(self) -> int:
        return len(self._flags)

    def _sample(self, i: int) -> ProbeSample:
        flags = self._flags[i]
        return ProbeSample(
            self.probe,
            self._t[i],
            bool(flags & OK),
            self._latency[i] if flags & HAS_LATENCY else None,
            self._value[i] if flags & HAS_VALUE else None,
            self._errors.get(self._dropped + i),
        )

    def __iter__(self) -> Iterator[ProbeSample]:
        return (self._sample(i) for i in range(len(self._flags)))

    def __reversed__(self) -> Iterator[ProbeSample]:
        return (self._sample(i) for i in range(len(self._flags) - 1, -1, -1))

    # Absolute indexes (counted from the series' first sample ever, dropped ones included), so a
    # reader can come back for what was added since (core/recovery_watch.py).

    @property
    def first_index(self) -> int:
        return self._dropped

    @property
    def end_index(self) -> int:
        return self._dropped + len(self._flags)

    def index_at(self, t: float) -> int:
        """The absolute index of the first sample taken at or after `t`."""
        return self._dropped + bisect_left(self._t, t)

    def read_from(self, index: int) -> Iterator[ProbeSample]:
        """The samples from absolute `index` (at least the oldest kept) to the newest."""
        start = max(0, index - self._dropped)
        return (self._sample(i) for i in range(start, len(self._flags)))

    def read_back_from(self, index: int) -> Iterator[ProbeSample]:
        """The samples from absolute `index` back to the oldest kept, newest first."""
        start = min(index - self._dropped, len(self._flags) - 1)
        return (self._sample(i) for i in range(start, -1, -1))

    def since(self, t: float) -> list[ProbeSample]:
        """Samples taken at or after `t`, oldest first, reading back from the newest (a
        sample older than `t` ends the tail)."""
        times = self._t
        start = len(times)
        while start > 0 and times[start - 1] >= t:
            start -= 1
        return [self._sample(i) for i in range(start, len(times))]

    def recent(self, count: int) -> list[ProbeSample]:
        n = len(self._flags)
        return [self._sample(i) for i in range(max(0, n - count), n)]
