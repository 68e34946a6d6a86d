"""Span aggregates: the open ones still taking spans, the sealed ones packed into immutable
``bytes`` that buckets, series and levels share, and the running sums queries add them into.

Costs are counted exactly in integers of 1e-24 USD.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Sequence
from decimal import Decimal
from itertools import chain, compress, repeat
from operator import add
from typing import NamedTuple

from ..spans import Span, Status, exact
from .sketch import _LOOKUP, _LOOKUP_SIZE, NO_MAX, NO_MIN, LatencySketch, _bin_of, _packed_into, _packed_range

_COST_PLACES = 24  # sealed costs are exact integers of 1e-24 USD
_LOW64 = (1 << 64) - 1
_MAX_UNITS = (1 << 128) - 1  # 3.4e14 USD
_ERROR = Status.ERROR

# --- sealed aggregates --------------------------------------------------------------------------
# A sealed aggregate is one bytes object: a header (count, errors, prompt tokens, completion
# tokens, latency sum, latency count, priced count, least and greatest latency, the cost as a
# 128-bit count of 1e-24 USD, the first bin or -1), then 4-byte bin counts from the first bin on,
# or (bin, count) pairs when the first bin is -1. Immutable, so series, buckets and levels share
# them freely.

Frozen = bytes
Totals = tuple[int, int, int, int, int]  # count, errors, prompt tokens, completion tokens, cost units
_HEADER = struct.Struct("<9qQQq")
_HEAD = _HEADER.size
_SUMMED = 7  # the header's leading fields that merge by adding up; the least and greatest follow
_SPARSE = 2  # (bin, count) pairs when under half the bins of the range are used
_MAX_BIN = 2**32 - 1  # a bin of one bucket saturates past 4.29e9 calls


def _pack_head(totals: list[int], cost_units: int, first: int) -> bytes:
    cost_units = min(cost_units, _MAX_UNITS)
    return _HEADER.pack(*totals, cost_units >> 64, cost_units & _LOW64, first)


def _freeze(totals: list[int], cost_units: int, counts: list[int], base: int) -> Frozen:
    """Pack totals (9 ints, the header's first), a cost and the bins ``base + i`` (ends
    non-empty, or no bins)."""
    if not counts:
        return _pack_head(totals, cost_units, 0)
    if max(counts) > _MAX_BIN:
        counts = [min(c, _MAX_BIN) for c in counts]
    used = len(counts) - counts.count(0)
    if _SPARSE * used < len(counts):
        keys = compress(range(base, base + len(counts)), counts)
        pairs = chain.from_iterable(zip(keys, filter(None, counts), strict=True))
        return _pack_head(totals, cost_units, -1) + array("I", pairs).tobytes()
    return _pack_head(totals, cost_units, base) + array("I", counts).tobytes()


def _freeze_bins(totals: list[int], cost_units: int, bins: dict[int, int]) -> Frozen:
    """Like :func:`_freeze`, from a ``{bin: count}`` dict."""
    if not bins:
        return _pack_head(totals, cost_units, 0)
    lo, hi = min(bins), max(bins)
    if _SPARSE * len(bins) < hi - lo + 1 and max(bins.values()) <= _MAX_BIN:
        pairs = chain.from_iterable(sorted(bins.items()))
        return _pack_head(totals, cost_units, -1) + array("I", pairs).tobytes()
    return _freeze(totals, cost_units, list(map(bins.get, range(lo, hi + 1), repeat(0))), lo)


def _bins_view(frozen: Frozen) -> memoryview:
    return memoryview(frozen)[_HEAD:].cast("I")


def _tally_of(frozen: Frozen) -> tuple[int, int, int]:
    """(cost units, count, priced count) of a sealed aggregate."""
    head = _HEADER.unpack_from(frozen)
    return head[9] << 64 | head[10], head[0], head[6]


def _merge_frozen(parts: Sequence[Frozen]) -> Frozen:
    totals = [0] * _SUMMED
    low, high = NO_MIN, NO_MAX
    cost = 0
    timed: list[tuple[Frozen, int]] = []
    for part in parts:
        head = _HEADER.unpack_from(part)
        totals[:] = map(add, totals, head[:_SUMMED])
        if head[7] < low:
            low = head[7]
        if head[8] > high:
            high = head[8]
        cost += head[9] << 64 | head[10]
        if head[5]:
            timed.append((part, head[11]))
    totals += (low, high)
    if not timed:
        return _pack_head(totals, cost, 0)
    if all(first < 0 for _, first in timed):  # few values each: merge the (bin, count) pairs
        bins: dict[int, int] = {}
        for part, _ in timed:
            view = _bins_view(part)
            for k, c in zip(view[::2], view[1::2], strict=True):
                bins[k] = bins.get(k, 0) + c
        return _freeze_bins(totals, cost, bins)
    ranges = [_packed_range(_bins_view(part), first) for part, first in timed]
    lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
    counts = [0] * (hi - lo + 1)
    for part, first in timed:
        _packed_into(_bins_view(part), first, counts, lo, 1)
    return _freeze(totals, cost, counts, lo)


def _merged(parts: list[Frozen], memo: dict[tuple[int, ...], Frozen]) -> Frozen:
    """One aggregate of ``parts``; series made of the same parts share the result."""
    if len(parts) == 1:
        return parts[0]
    ids = tuple(map(id, parts))
    merged = memo.get(ids)
    if merged is None:
        merged = memo[ids] = _merge_frozen(parts)
    return merged


def _units(cost: Decimal) -> int:
    return int(cost.scaleb(_COST_PLACES).to_integral_value())


class _Open:
    """An aggregate still taking spans (its second is not sealed yet); cost in 1e-24 USD, of
    the ``priced`` spans (the others' model has no known price)."""

    __slots__ = (
        "bins",
        "comp",
        "cost",
        "count",
        "errors",
        "lat_max",
        "lat_min",
        "lat_n",
        "lat_sum",
        "priced",
        "prompt",
    )

    def __init__(self, spans: Sequence[Span] = ()) -> None:
        self.bins: dict[int, int] = {}
        self.count = self.errors = self.prompt = self.comp = self.cost = self.lat_sum = self.lat_n = self.priced = 0
        self.lat_min, self.lat_max = NO_MIN, NO_MAX
        if spans:
            self.fold(spans)

    def fold(self, spans: Sequence[Span]) -> Totals:
        """Fold in spans of this aggregate's second and model x provider x name; returns what
        they added: count, errors, prompt and completion tokens, cost units."""
        bins, lookup, size = self.bins, _LOOKUP, _LOOKUP_SIZE
        errors = prompt = comp = lat_sum = lat_n = priced = 0
        lat_min, lat_max = self.lat_min, self.lat_max
        cost = Decimal(0)
        for span in spans:
            prompt += span.prompt_tokens
            comp += span.comp_tokens
            if span.status is _ERROR:
                errors += 1
            if span.cost is not None:
                cost += span.cost
                priced += 1
            ms = span.latency_ms
            if ms is not None:
                lat_sum += ms
                lat_n += 1
                if ms < lat_min:
                    lat_min = ms
                if ms > lat_max:
                    lat_max = ms
                k = lookup[ms] if ms < size else _bin_of(ms)
                bins[k] = bins.get(k, 0) + 1
        units = _units(cost)
        self.count += len(spans)
        self.errors += errors
        self.prompt += prompt
        self.comp += comp
        self.cost += units
        self.priced += priced
        self.lat_sum += lat_sum
        self.lat_n += lat_n
        self.lat_min, self.lat_max = lat_min, lat_max
        return len(spans), errors, prompt, comp, units

    def merge(self, other: _Open) -> None:
        self.count += other.count
        self.errors += other.errors
        self.prompt += other.prompt
        self.comp += other.comp
        self.cost += other.cost
        self.priced += other.priced
        self.lat_sum += other.lat_sum
        self.lat_n += other.lat_n
        if other.lat_min < self.lat_min:
            self.lat_min = other.lat_min
        if other.lat_max > self.lat_max:
            self.lat_max = other.lat_max
        bins = self.bins
        for k, c in other.bins.items():
            bins[k] = bins.get(k, 0) + c

    def freeze(self) -> Frozen:
        totals = [self.count, self.errors, self.prompt, self.comp, self.lat_sum, self.lat_n, self.priced]
        return _freeze_bins([*totals, self.lat_min, self.lat_max], self.cost, self.bins)


class _Acc:
    """A query's running sum (cost in 1e-24 USD); with a sketch when percentiles are wanted."""

    __slots__ = ("comp", "cost", "count", "errors", "lat_n", "lat_sum", "priced", "prompt", "sketch")

    def __init__(self, sketch: bool) -> None:
        self.count = self.errors = self.prompt = self.comp = self.lat_sum = self.lat_n = self.priced = self.cost = 0
        self.sketch = LatencySketch() if sketch else None

    def add_frozen(self, frozen: Frozen, sign: int = 1) -> None:
        count, errors, prompt, comp, lat_sum, lat_n, priced, lat_min, lat_max, high, low, first = _HEADER.unpack_from(
            frozen
        )
        self.count += sign * count
        self.errors += sign * errors
        self.prompt += sign * prompt
        self.comp += sign * comp
        self.lat_sum += sign * lat_sum
        self.lat_n += sign * lat_n
        self.priced += sign * priced
        self.cost += sign * (high << 64 | low)
        if self.sketch is not None and lat_n:
            self.sketch._add_packed(_bins_view(frozen), first, lat_n, sign, lat_min, lat_max)

    def add_open(self, agg: _Open) -> None:
        self.count += agg.count
        self.errors += agg.errors
        self.prompt += agg.prompt
        self.comp += agg.comp
        self.lat_sum += agg.lat_sum
        self.lat_n += agg.lat_n
        self.priced += agg.priced
        self.cost += agg.cost
        if self.sketch is not None and agg.bins:
            self.sketch._add_open(agg.bins, agg.lat_n, agg.lat_min, agg.lat_max)

    def add_acc(self, other: _Acc) -> None:
        self.count += other.count
        self.errors += other.errors
        self.prompt += other.prompt
        self.comp += other.comp
        self.lat_sum += other.lat_sum
        self.lat_n += other.lat_n
        self.priced += other.priced
        self.cost += other.cost
        if self.sketch is not None and other.sketch is not None:
            self.sketch.merge(other.sketch)

    def copy(self) -> _Acc:
        clone = _Acc(False)
        clone.add_acc(self)
        clone.sketch = None if self.sketch is None else self.sketch.copy()
        return clone


class BatchTotals(NamedTuple):
    """What one :meth:`~tokentrace.windows.WindowAggregator.add_many` call added, summed over
    all its spans (those dropped as too old included), each field named after its metric."""

    span_count: int
    error_count: int
    prompt_tokens: int
    comp_tokens: int
    total_cost: Decimal

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.comp_tokens

    @classmethod
    def of(cls, rows: list[Totals]) -> BatchTotals:
        """The totals of :meth:`_Open.fold` rows."""
        count, errors, prompt, comp, cost = map(sum, zip(*rows, strict=True)) if rows else [0] * 5
        return cls(count, errors, prompt, comp, Decimal(f"{cost}E-{_COST_PLACES}"))  # exact in any context


def _dollars(units: int) -> Decimal:
    """The shortest exact form of a cost: ``5.12`` rather than ``5.1200``, never ``1E+1``."""
    return exact(Decimal(units).scaleb(-_COST_PLACES))
