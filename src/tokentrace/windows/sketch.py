"""The latency sketch: integer milliseconds counted in bins at most 2% wide, so that every
quantile is within 1% of the exact value, and sketches merge by adding their bins. The least and
greatest values are kept exactly: a quantile that falls on either of them is exact, and every
other is kept between them (so the quantiles of values all alike are that value).

Bins travel packed in sealed aggregates as 4-byte counts from a first bin on, or as
(bin, count) pairs when the first bin is given as -1; the helpers here read that layout.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import accumulate
from operator import add, sub

# --- latency bins -------------------------------------------------------------------------------
# Bin k holds the integer milliseconds [_BOUNDS[k], _BOUNDS[k + 1]); each bin is at most 2% wide
# (exact below 50 ms), and its representative value is within 0.99% of anything in it.


def _make_bounds(limit: int) -> list[int]:
    bounds = [0]
    while bounds[-1] <= limit:
        bounds.append(bounds[-1] * 102 // 100 + 1)
    return bounds


def _representative(lo: int, hi: int) -> float:
    # the harmonic mean of the bin's ends has the same relative error towards both of them
    return float(lo) if lo == hi else round(2 * lo * hi / (lo + hi), 2)


_BOUNDS = _make_bounds(2**40)
_NBINS = len(_BOUNDS) - 1
_REPS = [_representative(_BOUNDS[k], _BOUNDS[k + 1] - 1) for k in range(_NBINS)]
_LOOKUP_SIZE = 1 << 16
# The least and greatest values of a sketch or an aggregate: of no values, any value replaces them;
# unknown (values counted before they were kept, or some of them taken away), they stay unknown
# whatever is added, and quantiles are the bins' values, as they would be without them.
NO_MIN, NO_MAX = 1 << 62, -1
UNKNOWN_MIN, UNKNOWN_MAX = -1, 1 << 62


def _make_lookup(size: int) -> list[int]:
    table: list[int] = []
    for k in range(_NBINS):
        if len(table) >= size:
            break
        table.extend([k] * (_BOUNDS[k + 1] - _BOUNDS[k]))
    return table[:size]


_LOOKUP = _make_lookup(_LOOKUP_SIZE)


def _bin_of(ms: int) -> int:
    if ms < _LOOKUP_SIZE:
        return _LOOKUP[ms]
    return min(bisect_right(_BOUNDS, ms) - 1, _NBINS - 1)


def _rank(q: float, n: int) -> int:
    """Nearest rank: the 1-based position of the q-quantile among n sorted values."""
    return max(1, math.ceil(round(q * n, 9)))


class LatencySketch:
    """A mergeable latency histogram with at most 1% relative error on every quantile, exact at
    either end.

    Example::

        sketch = LatencySketch()
        for ms in (120, 340, 1240):
            sketch.add(ms)
        sketch.quantile(0.5)   # 338.97: the nearest-rank median, 340, within 1%
        sketch.quantile(1.0)   # 1240.0: the greatest value, exactly

    Values taken away (``sign`` -1, a window moving on) that may have held the least or the
    greatest leave them unknown, and ``lost_ends`` True: the sums are to be made again.
    """

    __slots__ = ("_counts", "_hi", "_lo", "_max", "_min", "count", "lost_ends")

    def __init__(self) -> None:
        self._counts = [0] * _NBINS
        self._lo = _NBINS
        self._hi = -1
        self._min, self._max = NO_MIN, NO_MAX
        self.count = 0
        self.lost_ends = False

    def add(self, ms: int, n: int = 1) -> None:
        """Count ``n`` calls that took ``ms`` milliseconds."""
        k = _bin_of(ms)
        self._counts[k] += n
        self._widen(k, k, n)
        self._bound(ms, ms)

    def merge(self, other: LatencySketch) -> None:
        """Add every value of ``other`` to this sketch."""
        if other.count:
            lo, hi = other._lo, other._hi + 1
            self._counts[lo:hi] = map(add, self._counts[lo:hi], other._counts[lo:hi])
            self._widen(lo, hi - 1, other.count)
            self._bound(other._min, other._max)
            self.lost_ends = self.lost_ends or other.lost_ends

    def quantile(self, q: float) -> float | None:
        """The nearest-rank ``q``-quantile (``0 <= q <= 1``) in ms, or None when empty."""
        return self.quantiles((q,))[0]

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """Several quantiles from one pass over the bins."""
        if any(not 0 <= q <= 1 for q in qs):
            raise ValueError(f"a quantile must be between 0 and 1, got {list(qs)!r}")
        if self.count <= 0:
            return [None] * len(qs)
        cumulative = list(accumulate(self._counts[self._lo : self._hi + 1]))
        return [_nearest(cumulative, self._lo, _rank(q, self.count), self._min, self._max) for q in qs]

    @staticmethod
    def joint_quantile(first: LatencySketch, second: LatencySketch, q: float) -> float | None:
        """The ``q``-quantile of two sketches together, without merging them."""
        count = first.count + second.count
        if count <= 0:
            return None
        lo, hi = min(first._lo, second._lo), max(first._hi, second._hi) + 1
        cumulative = list(accumulate(map(add, first._counts[lo:hi], second._counts[lo:hi])))
        return _nearest(cumulative, lo, _rank(q, count), min(first._min, second._min), max(first._max, second._max))

    def copy(self) -> LatencySketch:
        clone = LatencySketch()
        clone._counts[:] = self._counts
        clone._lo, clone._hi, clone.count = self._lo, self._hi, self.count
        clone._min, clone._max, clone.lost_ends = self._min, self._max, self.lost_ends
        return clone

    def _widen(self, lo: int, hi: int, n: int) -> None:
        self._lo, self._hi = min(self._lo, lo), max(self._hi, hi)
        self.count += n

    def _bound(self, low: int, high: int) -> None:
        if low < self._min:
            self._min = low
        if high > self._max:
            self._max = high

    def _add_packed(self, view: memoryview, first: int, n: int, sign: int, low: int, high: int) -> None:
        """Add (``sign`` 1) or take away (-1) the packed bins of ``n`` values from ``low`` to ``high``."""
        _packed_into(view, first, self._counts, 0, sign)
        self._widen(*_packed_range(view, first), sign * n)
        if sign > 0:
            self._bound(low, high)
        elif low <= self._min or high >= self._max:  # what is left may end elsewhere
            self._min, self._max, self.lost_ends = UNKNOWN_MIN, UNKNOWN_MAX, True

    def _add_open(self, bins: dict[int, int], n: int, low: int, high: int) -> None:
        counts = self._counts
        for k, c in bins.items():
            counts[k] += c
        self._widen(min(bins), max(bins), n)
        self._bound(low, high)


def _nearest(cumulative: list[int], first: int, rank: int, low: int, high: int) -> float:
    """The value of a rank among counts added up from bin ``first`` on: the least or the greatest
    value at either end (unless unknown), else its bin's representative value kept between them."""
    if low >= 0:
        if rank == 1:
            return float(low)
        if rank == cumulative[-1]:
            return float(high)
    value = _REPS[first + bisect_left(cumulative, rank)]
    return float(low) if value < low else float(high) if value > high else value


def _packed_range(view: memoryview, first: int) -> tuple[int, int]:
    """The first and last bin of packed counts (``first`` is -1 for (bin, count) pairs)."""
    if first < 0:
        return view[0], view[-2]
    return first, first + len(view) - 1


def _packed_into(view: memoryview, first: int, counts: list[int], offset: int, sign: int) -> None:
    """Add (``sign`` 1) or take away (-1) packed counts into ``counts[bin - offset]``."""
    if first >= 0:
        start = first - offset
        end = start + len(view)
        counts[start:end] = map(add if sign > 0 else sub, counts[start:end], view)
    else:
        for k, c in zip(view[::2], view[1::2], strict=True):
            counts[k - offset] += sign * c
