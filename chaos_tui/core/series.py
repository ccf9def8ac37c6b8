"""One probe's samples, held compactly: a long run keeps every sample for its result.

A ProbeSample object with its two floats takes about 130 bytes; eight probes at 10 Hz are
288,000 samples an hour, some 37 MB. Here a sample is 17 bytes in typed columns (its time and
latency as doubles, one byte of flags), 8 more for its value where a probe's values vary,
plus its error text when it failed; a ProbeSample is made again when it is read.

The columns are cut into blocks of BLOCK samples, each allocated once at its full size. One
column that grows by reallocation leaves a trail of freed, ever smaller buffers behind it in
the C heap; with a few dozen columns growing side by side, the process's memory grew about
1.7 times what the samples take (benchmarks/soak.py: 12.5 MB an hour headless for 7.2 MB of
samples). Blocks of one size, freed and taken again, leave no such trail. A block gets its
value column only when its samples' values differ: a TCP probe has none, and an HTTP
probe's status or the agent's lease count is mostly one number a block long, kept once.

Capped like a deque with `maxlen`: past the cap the oldest tenth is dropped at once; a block
is freed once none of its samples is kept.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from math import copysign

from chaos_tui.core.model import ProbeSample

OK, HAS_LATENCY, HAS_VALUE = 1, 2, 4
BLOCK = 1024  # samples a block: 100 s of a probe at 10 Hz, 17 KB (25 with values that vary)
_ZEROS = array("d", [0.0]) * BLOCK  # copied for each new column: one exact allocation


class _Block:
    __slots__ = ("flags", "latency", "same", "t", "value")

    def __init__(self) -> None:
        self.t = array("d", _ZEROS)
        self.latency = array("d", _ZEROS)
        # Every value of the block while they are all one (`same`); a column once they differ.
        self.same: float | None = None
        self.value: array[float] | None = None
        self.flags = bytearray(BLOCK)


class SampleSeries:
    def __init__(self, probe: str, maxlen: int) -> None:
        self.probe = probe
        self.maxlen = maxlen
        self._blocks: list[_Block] = []
        # Absolute indexes (counted from the series' first sample ever, dropped ones
        # included), so a reader can come back for what was added since
        # (core/recovery_watch.py). Sample i is in block (i - _base) // BLOCK at i % BLOCK.
        self._base = 0  # the index of the first block's first slot, a multiple of BLOCK
        self._first = 0  # the oldest sample kept
        self._end = 0  # one past the newest
        self._errors: dict[int, str] = {}  # by absolute index: failures are few

    def append(self, sample: ProbeSample) -> None:
        if self._end - self._first >= self.maxlen:
            self._drop(max(1, self.maxlen // 10))
        i = self._end
        if i == self._base + len(self._blocks) * BLOCK:
            self._blocks.append(_Block())
        block, at = self._blocks[-1], i % BLOCK
        flags = OK if sample.ok else 0
        block.t[at] = sample.t
        if sample.latency_ms is not None:
            flags |= HAS_LATENCY
            block.latency[at] = sample.latency_ms
        if sample.value is not None:
            flags |= HAS_VALUE
            value = sample.value
            if block.value is not None:
                block.value[at] = value
            elif block.same is None:
                block.same = value
            elif not _identical(block.same, value):
                block.value = array("d", [block.same]) * BLOCK
                block.value[at] = value
        block.flags[at] = flags
        if sample.error is not None:
            self._errors[i] = sample.error
        self._end = i + 1

    def drop_before(self, t: float) -> None:
        """Forget the samples taken before `t` (times only grow)."""
        count = self.index_at(t) - self._first
        if count:
            self._drop(count)

    def _drop(self, count: int) -> None:
        self._first = min(self._first + count, self._end)
        gone = (self._first - self._base) // BLOCK  # blocks with nothing kept
        if gone:
            del self._blocks[:gone]
            self._base += gone * BLOCK
        self._errors = {i: e for i, e in self._errors.items() if i >= self._first}

    def __len__(self) -> int:
        return self._end - self._first

    def _time(self, i: int) -> float:
        return self._blocks[(i - self._base) // BLOCK].t[i % BLOCK]

    def _sample(self, i: int) -> ProbeSample:
        block, at = self._blocks[(i - self._base) // BLOCK], i % BLOCK
        flags = block.flags[at]
        value = None
        if flags & HAS_VALUE:
            value = block.same if block.value is None else block.value[at]
        return ProbeSample(
            self.probe,
            block.t[at],
            bool(flags & OK),
            block.latency[at] if flags & HAS_LATENCY else None,
            value,
            self._errors.get(i),
        )

    def __iter__(self) -> Iterator[ProbeSample]:
        return (self._sample(i) for i in range(self._first, self._end))

    def __reversed__(self) -> Iterator[ProbeSample]:
        return (self._sample(i) for i in range(self._end - 1, self._first - 1, -1))

    @property
    def first_index(self) -> int:
        return self._first

    @property
    def end_index(self) -> int:
        return self._end

    def index_at(self, t: float) -> int:
        """The absolute index of the first sample taken at or after `t`."""
        lo, hi = self._first, self._end
        while lo < hi:
            mid = (lo + hi) // 2
            if self._time(mid) < t:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def read_from(self, index: int) -> Iterator[ProbeSample]:
        """The samples from absolute `index` (at least the oldest kept) to the newest."""
        return (self._sample(i) for i in range(max(index, self._first), self._end))

    def read_back_from(self, index: int) -> Iterator[ProbeSample]:
        """The samples from absolute `index` back to the oldest kept, newest first."""
        start = min(index, self._end - 1)
        return (self._sample(i) for i in range(start, self._first - 1, -1))

    def since(self, t: float) -> list[ProbeSample]:
        """Samples taken at or after `t`, oldest first, reading back from the newest (a
        sample older than `t` ends the tail)."""
        start = self._end
        while start > self._first and self._time(start - 1) >= t:
            start -= 1
        return [self._sample(i) for i in range(start, self._end)]

    def recent(self, count: int) -> list[ProbeSample]:
        return [self._sample(i) for i in range(max(self._first, self._end - count), self._end)]

    @property
    def nbytes(self) -> int:
        """The bytes its columns take (what the samples cost, errors and objects aside)."""
        columns = sum(len(b.t) + len(b.latency) for b in self._blocks)
        values = sum(len(b.value) for b in self._blocks if b.value is not None)
        return 8 * (columns + values) + sum(len(b.flags) for b in self._blocks)


def _identical(a: float, b: float) -> bool:
    """The same number, to the sign of a zero (a NaN is never the same: it gets its column)."""
    return a == b and copysign(1.0, a) == copysign(1.0, b)
