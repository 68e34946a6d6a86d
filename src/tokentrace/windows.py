"""Windowed metrics: spans folded into time buckets, queried over any window from 10 s to 30 days.

A :class:`WindowAggregator` keeps, per time bucket and per series (everything; each model,
provider and trace name; each model x provider x name combination), the span and error counts,
the prompt/completion token sums, the exact cost, and latency bins 2% wide (a mergeable sketch,
so every percentile is within 1% of the exact value).

Spans are placed by their ``ended_at``, so spans that arrive late land in the right bucket.
Buckets live at seven resolutions (1 s, 3 s, 15 s, 1 min, 5 min, 30 min, 3 h); each is kept just
long enough that a window's left edge can be placed within ``max(1 s, 1%)`` of the window, and a
query adds up the few dozen coarsest buckets that tile the window. Windows asked for again (alert
rules, dashboards) are kept up to date incrementally.

Memory is bounded by buckets x series, never by the number of spans: at most 3,200 buckets per
series (306 at 1 s, 510 at 3 s, 408 at 15 s, 510 at 1 min, 612 at 5 min, 612 at 30 min, 242 at
3 h), each one immutable ``bytes``: a 72-byte header and 4 bytes per latency bin in use (at most
~1,230 bins). Series holding the same spans share one; the 1 s and 3 s buckets keep only the
model x provider x name combinations, whose number is capped (``max_series``).
"""

from __future__ import annotations

import functools
import heapq
import math
import struct
import threading
import time
from array import array
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from decimal import Context as DecimalContext
from decimal import Decimal, localcontext
from itertools import accumulate, chain, compress, repeat
from operator import add, sub
from typing import Any

import msgspec

from .durations import DurationLike, format_duration, parse_duration
from .spans import Span, Status, format_timestamp

__all__ = ["MAX_WINDOW", "METRICS", "LatencySketch", "WindowAggregator", "WindowSnapshot"]

MAX_WINDOW = 30 * 86400.0
"""The longest window, in seconds, that can be asked for (30 days)."""

METRICS = (
    "total_cost",
    "span_count",
    "error_count",
    "error_rate",
    "prompt_tokens",
    "comp_tokens",
    "total_tokens",
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "latency_avg",
)
"""Every metric name :meth:`WindowAggregator.metric` and the alert rules accept."""

_QUANTILES = {"latency_p50": 0.5, "latency_p95": 0.95, "latency_p99": 0.99}
_LEVELS = (1, 3, 15, 60, 300, 1800, 10800)
_LAZY_LEVELS = 2  # the 1 s and 3 s buckets keep combinations only: queries add them up
_DEFAULT_GRACE_S = 2
_DEFAULT_MAX_SERIES = 2000
_MAX_CACHED_WINDOWS = 64
_OTHER = "(other)"
_MONEY = DecimalContext(prec=60)
_COST_PLACES = 24  # sealed costs are exact integers of 1e-24 USD
_LOW64 = (1 << 64) - 1
_MAX_UNITS = (1 << 128) - 1  # 3.4e14 USD
_ERROR = Status.ERROR

Key = tuple[str | None, str | None, str | None]
Value = Decimal | int | float | None
_ALL: Key = (None, None, None)

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
    """A mergeable latency histogram with at most 1% relative error on every quantile.

    Example::

        sketch = LatencySketch()
        for ms in (120, 340, 1240):
            sketch.add(ms)
        sketch.quantile(0.5)   # 338.97: the nearest-rank median, 340, within 1%
    """

    __slots__ = ("_counts", "_hi", "_lo", "count")

    def __init__(self) -> None:
        self._counts = [0] * _NBINS
        self._lo = _NBINS
        self._hi = -1
        self.count = 0

    def add(self, ms: int, n: int = 1) -> None:
        """Count ``n`` calls that took ``ms`` milliseconds."""
        k = _bin_of(ms)
        self._counts[k] += n
        self._widen(k, k, n)

    def merge(self, other: LatencySketch) -> None:
        """Add every value of ``other`` to this sketch."""
        if other.count:
            lo, hi = other._lo, other._hi + 1
            self._counts[lo:hi] = map(add, self._counts[lo:hi], other._counts[lo:hi])
            self._widen(lo, hi - 1, other.count)

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
        return [_REPS[self._lo + bisect_left(cumulative, _rank(q, self.count))] for q in qs]

    @staticmethod
    def joint_quantile(first: LatencySketch, second: LatencySketch, q: float) -> float | None:
        """The ``q``-quantile of two sketches together, without merging them."""
        count = first.count + second.count
        if count <= 0:
            return None
        lo, hi = min(first._lo, second._lo), max(first._hi, second._hi) + 1
        cumulative = list(accumulate(map(add, first._counts[lo:hi], second._counts[lo:hi])))
        return _REPS[lo + bisect_left(cumulative, _rank(q, count))]

    def copy(self) -> LatencySketch:
        clone = LatencySketch()
        clone._counts[:] = self._counts
        clone._lo, clone._hi, clone.count = self._lo, self._hi, self.count
        return clone

    def _widen(self, lo: int, hi: int, n: int) -> None:
        self._lo, self._hi = min(self._lo, lo), max(self._hi, hi)
        self.count += n

    def _add_frozen(self, frozen: bytes, first: int, n: int, sign: int) -> None:
        _frozen_bins_into(frozen, first, self._counts, 0, sign)
        self._widen(*_frozen_range(frozen, first), sign * n)

    def _add_open(self, bins: dict[int, int], n: int) -> None:
        counts = self._counts
        for k, c in bins.items():
            counts[k] += c
        self._widen(min(bins), max(bins), n)


# --- sealed aggregates --------------------------------------------------------------------------
# A sealed aggregate is one bytes object: a header (count, errors, prompt tokens, completion
# tokens, latency sum, latency count, the cost as a 128-bit count of 1e-24 USD, the first bin or
# -1), then 4-byte bin counts from the first bin on, or (bin, count) pairs when the first bin is
# -1. Immutable, so series, buckets and levels share them freely.

Frozen = bytes
_HEADER = struct.Struct("<6qQQq")
_HEAD = _HEADER.size
_SPARSE = 2  # (bin, count) pairs when under half the bins of the range are used
_MAX_BIN = 2**32 - 1  # a bin of one bucket saturates past 4.29e9 calls


def _pack_head(totals: list[int], cost_units: int, first: int) -> bytes:
    cost_units = min(cost_units, _MAX_UNITS)
    return _HEADER.pack(*totals, cost_units >> 64, cost_units & _LOW64, first)


def _freeze(totals: list[int], cost_units: int, counts: list[int], base: int) -> Frozen:
    """Pack totals (6 ints), a cost and the bins ``base + i`` (ends non-empty, or no bins)."""
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


def _tally_of(frozen: Frozen) -> tuple[int, int]:
    """(cost units, count) of a sealed aggregate."""
    head = _HEADER.unpack_from(frozen)
    return head[6] << 64 | head[7], head[0]


def _frozen_range(frozen: Frozen, first: int) -> tuple[int, int]:
    if first < 0:
        view = _bins_view(frozen)
        return view[0], view[-2]
    return first, first + (len(frozen) - _HEAD) // 4 - 1


def _frozen_bins_into(frozen: Frozen, first: int, counts: list[int], offset: int, sign: int) -> None:
    view = _bins_view(frozen)
    if first >= 0:
        start = first - offset
        end = start + len(view)
        counts[start:end] = map(add if sign > 0 else sub, counts[start:end], view)
    else:
        for k, c in zip(view[::2], view[1::2], strict=True):
            counts[k - offset] += sign * c


def _merge_frozen(parts: Sequence[Frozen]) -> Frozen:
    totals = [0] * 6
    cost = 0
    timed: list[tuple[Frozen, int]] = []
    for part in parts:
        head = _HEADER.unpack_from(part)
        totals[:] = map(add, totals, head[:6])
        cost += head[6] << 64 | head[7]
        if head[5]:
            timed.append((part, head[8]))
    if not timed:
        return _pack_head(totals, cost, 0)
    if all(first < 0 for _, first in timed):  # few values each: merge the (bin, count) pairs
        bins: dict[int, int] = {}
        for part, _ in timed:
            view = _bins_view(part)
            for k, c in zip(view[::2], view[1::2], strict=True):
                bins[k] = bins.get(k, 0) + c
        return _freeze_bins(totals, cost, bins)
    ranges = [_frozen_range(part, first) for part, first in timed]
    lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
    counts = [0] * (hi - lo + 1)
    for part, first in timed:
        _frozen_bins_into(part, first, counts, lo, 1)
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
    """An aggregate still taking spans (its second is not sealed yet); cost in 1e-24 USD."""

    __slots__ = ("bins", "comp", "cost", "count", "errors", "lat_n", "lat_sum", "prompt")

    def __init__(self, spans: list[Span]) -> None:
        """Fold spans of one second and one model x provider x name."""
        self.bins: dict[int, int] = {}
        bins, lookup, size = self.bins, _LOOKUP, _LOOKUP_SIZE
        errors = prompt = comp = lat_sum = lat_n = 0
        cost = Decimal(0)
        for span in spans:
            prompt += span.prompt_tokens
            comp += span.comp_tokens
            if span.status is _ERROR:
                errors += 1
            if span.cost is not None:
                cost += span.cost
            ms = span.latency_ms
            if ms is not None:
                lat_sum += ms
                lat_n += 1
                k = lookup[ms] if ms < size else _bin_of(ms)
                bins[k] = bins.get(k, 0) + 1
        self.count, self.errors, self.prompt, self.comp = len(spans), errors, prompt, comp
        self.cost, self.lat_sum, self.lat_n = _units(cost), lat_sum, lat_n

    def merge(self, other: _Open) -> None:
        self.count += other.count
        self.errors += other.errors
        self.prompt += other.prompt
        self.comp += other.comp
        self.cost += other.cost
        self.lat_sum += other.lat_sum
        self.lat_n += other.lat_n
        bins = self.bins
        for k, c in other.bins.items():
            bins[k] = bins.get(k, 0) + c

    def freeze(self) -> Frozen:
        totals = [self.count, self.errors, self.prompt, self.comp, self.lat_sum, self.lat_n]
        return _freeze_bins(totals, self.cost, self.bins)


class _Acc:
    """A query's running sum (cost in 1e-24 USD); with a sketch when percentiles are wanted."""

    __slots__ = ("comp", "cost", "count", "errors", "lat_n", "lat_sum", "prompt", "sketch")

    def __init__(self, sketch: bool) -> None:
        self.count = self.errors = self.prompt = self.comp = self.lat_sum = self.lat_n = self.cost = 0
        self.sketch = LatencySketch() if sketch else None

    def add_frozen(self, frozen: Frozen, sign: int = 1) -> None:
        count, errors, prompt, comp, lat_sum, lat_n, high, low, first = _HEADER.unpack_from(frozen)
        self.count += sign * count
        self.errors += sign * errors
        self.prompt += sign * prompt
        self.comp += sign * comp
        self.lat_sum += sign * lat_sum
        self.lat_n += sign * lat_n
        self.cost += sign * (high << 64 | low)
        if self.sketch is not None and lat_n:
            self.sketch._add_frozen(frozen, first, lat_n, sign)

    def add_open(self, agg: _Open) -> None:
        self.count += agg.count
        self.errors += agg.errors
        self.prompt += agg.prompt
        self.comp += agg.comp
        self.lat_sum += agg.lat_sum
        self.lat_n += agg.lat_n
        self.cost += agg.cost
        if self.sketch is not None and agg.bins:
            self.sketch._add_open(agg.bins, agg.lat_n)

    def add_acc(self, other: _Acc) -> None:
        self.count += other.count
        self.errors += other.errors
        self.prompt += other.prompt
        self.comp += other.comp
        self.lat_sum += other.lat_sum
        self.lat_n += other.lat_n
        self.cost += other.cost
        if self.sketch is not None and other.sketch is not None:
            self.sketch.merge(other.sketch)

    def copy(self) -> _Acc:
        clone = _Acc(False)
        clone.add_acc(self)
        clone.sketch = None if self.sketch is None else self.sketch.copy()
        return clone


def _dollars(units: int) -> Decimal:
    """The shortest exact form of a cost: ``5.12`` rather than ``5.1200``, never ``1E+1``."""
    value = Decimal(units).scaleb(-_COST_PLACES).normalize()
    return value.quantize(Decimal(1)) if value.as_tuple().exponent > 0 else value  # type: ignore[operator]


# --- buckets ------------------------------------------------------------------------------------


class _OpenBucket:
    """A second still taking spans: one aggregate per combination, and the sums queries asked
    for (per selector), kept up to date as spans arrive."""

    __slots__ = ("combos", "views")

    def __init__(self) -> None:
        self.combos: dict[Key, _Open] = {}
        self.views: dict[tuple[Key, bool], _Acc] = {}

    def add(self, combo: Key, partial: _Open) -> None:
        for (sel, _), view in self.views.items():
            if _matches(combo, sel):
                view.add_open(partial)
        current = self.combos.get(combo)
        if current is None:
            self.combos[combo] = partial
        else:
            current.merge(partial)

    def select(self, sel: Key, acc: _Acc, sign: int = 1) -> None:
        sketch = acc.sketch is not None
        view = self.views.get((sel, sketch))
        if view is None:
            view = self.views[(sel, sketch)] = _Acc(sketch)
            for combo, agg in self.combos.items():
                if _matches(combo, sel):
                    view.add_open(agg)
        acc.add_acc(view)

    def tallies(self) -> Iterator[tuple[Key, int, int]]:
        for combo, agg in self.combos.items():
            yield combo, agg.cost, agg.count


class _SealedBucket:
    """A sealed bucket: aggregates per combination and, when ``complete``, per series
    (everything, each model, provider and name); otherwise queries add up the combinations."""

    __slots__ = ("combos", "complete", "series")

    def __init__(self, series: dict[Key, Frozen], combos: dict[Key, Frozen], complete: bool) -> None:
        self.series = series
        self.combos = combos
        self.complete = complete

    def select(self, sel: Key, acc: _Acc, sign: int = 1) -> None:
        filters = 3 - sel.count(None)
        if filters == 3 or (filters < 2 and self.complete):
            agg = (self.combos if filters == 3 else self.series).get(sel)
            if agg is not None:
                acc.add_frozen(agg, sign)
            return
        for combo, part in self.combos.items():
            if _matches(combo, sel):
                acc.add_frozen(part, sign)

    def tallies(self) -> Iterator[tuple[Key, int, int]]:
        for combo, agg in self.combos.items():
            yield (combo, *_tally_of(agg))


class _Level:
    """The sealed buckets of one resolution, with a heap of their starts for pruning."""

    __slots__ = ("buckets", "floor", "keep", "pending", "res", "starts")

    def __init__(self, res: int, keep: int) -> None:
        self.res = res
        self.keep = keep  # seconds of history kept
        self.floor = 0  # oldest bucket start still kept
        self.buckets: dict[int, _SealedBucket] = {}
        self.starts: list[int] = []
        self.pending: set[int] = set()  # bucket starts whose children hold data, not built yet

    def store(self, t: int, bucket: _SealedBucket) -> None:
        if t not in self.buckets:
            heapq.heappush(self.starts, t)
        self.buckets[t] = bucket

    def prune(self, now_s: int) -> None:
        self.floor = now_s - self.keep
        while self.starts and self.starts[0] < self.floor:
            del self.buckets[heapq.heappop(self.starts)]


def _keep(i: int) -> int:
    # a level serves windows shorter than 100 of the next level's buckets
    return 102 * _LEVELS[i + 1] if i + 1 < len(_LEVELS) else int(MAX_WINDOW) + 2 * _LEVELS[-1]


@functools.lru_cache(maxsize=256)
def _edge_resolution(seconds: float) -> int:
    tolerance = max(1.0, seconds / 100)
    return max(r for r in _LEVELS if r <= tolerance)


def _matches(combo: Key, sel: Key) -> bool:
    return (
        (sel[0] is None or sel[0] == combo[0])
        and (sel[1] is None or sel[1] == combo[1])
        and (sel[2] is None or sel[2] == combo[2])
    )


class _Window:
    """The sealed part [start, until) of a window that is asked for again and again."""

    __slots__ = ("acc", "late", "start", "until")

    def __init__(self, start: int, until: int, late: int, acc: _Acc) -> None:
        self.start, self.until, self.late, self.acc = start, until, late, acc


# --- snapshot -----------------------------------------------------------------------------------


def _number(value: Value) -> float | int | None:
    return float(value) if isinstance(value, Decimal) else value


class WindowSnapshot(msgspec.Struct, kw_only=True, frozen=True):
    """Every metric over one window, as returned by :meth:`WindowAggregator.snapshot`.

    Example::

        snap = aggregator.snapshot(3600, model="gpt-4o")
        snap.total_cost, snap.latency_p95, snap.cost_by_model
        snap.to_dict()   # JSON-ready: floats, ISO timestamps, window as "1h"

    ``start``/``end`` are the epoch seconds the window really covered: a span counts when
    ``start <= ended_at // 1000 < end``. Latencies are in ms, ``error_rate`` a fraction.
    """

    window: float
    start: int
    end: int
    model: str | None
    provider: str | None
    name: str | None
    span_count: int
    error_count: int
    error_rate: float | None
    prompt_tokens: int
    comp_tokens: int
    total_tokens: int
    total_cost: Decimal
    latency_p50: float | None
    latency_p95: float | None
    latency_p99: float | None
    latency_avg: float | None
    cost_by_model: dict[str, Decimal]
    cost_by_provider: dict[str, Decimal]

    def value(self, metric: str) -> Value:
        """One metric by name (see :data:`METRICS`)."""
        _check_metric(metric)
        value: Value = getattr(self, metric)
        return value

    def to_dict(self) -> dict[str, Any]:
        """The snapshot with JSON-ready values (money as floats without float noise)."""
        labels = (("model", self.model), ("provider", self.provider), ("name", self.name))
        out: dict[str, Any] = {
            "window": format_duration(self.window),
            "start": format_timestamp(self.start * 1000),
            "end": format_timestamp(self.end * 1000),
            "filters": {k: v for k, v in labels if v},
        }
        out.update((metric, _number(self.value(metric))) for metric in METRICS)
        out["cost_by_model"] = {k: float(v) for k, v in self.cost_by_model.items()}
        out["cost_by_provider"] = {k: float(v) for k, v in self.cost_by_provider.items()}
        return out


def _metrics(acc: _Acc) -> dict[str, Value]:
    p50 = p95 = p99 = None
    if acc.sketch is not None:
        p50, p95, p99 = acc.sketch.quantiles((0.5, 0.95, 0.99))
    return {
        "total_cost": _dollars(acc.cost),
        "span_count": acc.count,
        "error_count": acc.errors,
        "error_rate": acc.errors / acc.count if acc.count else None,
        "prompt_tokens": acc.prompt,
        "comp_tokens": acc.comp,
        "total_tokens": acc.prompt + acc.comp,
        "latency_p50": p50,
        "latency_p95": p95,
        "latency_p99": p99,
        "latency_avg": acc.lat_sum / acc.lat_n if acc.lat_n else None,
    }


_FIELDS = {"span_count": "count", "error_count": "errors", "prompt_tokens": "prompt", "comp_tokens": "comp"}


def _value(metric: str, sealed: _Acc, opened: _Acc) -> Value:
    """One metric of the sum of two parts of a window, without adding them up in full."""
    quantile = _QUANTILES.get(metric)
    if quantile is not None:
        assert sealed.sketch is not None and opened.sketch is not None
        return LatencySketch.joint_quantile(sealed.sketch, opened.sketch, quantile)
    field = _FIELDS.get(metric)
    if field is not None:
        total: int = getattr(sealed, field) + getattr(opened, field)
        return total
    count, errors = sealed.count + opened.count, sealed.errors + opened.errors
    lat_n, lat_sum = sealed.lat_n + opened.lat_n, sealed.lat_sum + opened.lat_sum
    derived: dict[str, Callable[[], Value]] = {
        "total_cost": lambda: _dollars(sealed.cost + opened.cost),
        "total_tokens": lambda: sealed.prompt + opened.prompt + sealed.comp + opened.comp,
        "error_rate": lambda: errors / count if count else None,
        "latency_avg": lambda: lat_sum / lat_n if lat_n else None,
    }
    return derived[metric]()


def _by_cost(sums: dict[str, list[int]]) -> dict[str, Decimal]:
    ranked = sorted(sums.items(), key=lambda item: (-item[1][0], item[0]))
    return {label: _dollars(units) for label, (units, _) in ranked}


def _tally(table: dict[str, list[int]], label: str, units: int, count: int) -> None:
    entry = table.get(label)
    if entry is None:
        table[label] = [units, count]
    else:
        entry[0] += units
        entry[1] += count


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")


def _selector(model: str | None, provider: str | None, name: str | None) -> Key:
    for field, value in (("model", model), ("provider", provider), ("name", name)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{field} filter must be a str or None, got {value!r}")
    return (model or None, provider or None, name or None)


def _window_seconds(window: DurationLike, field: str = "window") -> float:
    seconds = parse_duration(window, field)
    if not 1 <= seconds <= MAX_WINDOW:
        raise ValueError(f"{field} must be between 1s and 30d, got {window!r}")
    return seconds


# --- the aggregator -----------------------------------------------------------------------------


class WindowAggregator:
    """Time-bucketed span aggregates, queried over any window ending now.

    Example::

        agg = WindowAggregator()
        agg.add_many(spans)                              # on the tracer's worker thread
        agg.metric("total_cost", "1h")                   # Decimal('5.12')
        agg.metric("latency_p95", 600, model="gpt-4o")   # 2140.5 (ms, within 1%)
        agg.snapshot("1h").to_dict()

    Args:
        clock: seconds since the epoch (inject one in tests).
        grace: seconds a second stays open for spans still in flight; later spans take a
            slower path into the sealed buckets (still exact).
        max_series: cap on model x provider x name combinations; past it, new trace names
            are counted under ``"(other)"``.

    Costs are summed exactly to 1e-24 USD. All methods are thread-safe.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        *,
        grace: float = _DEFAULT_GRACE_S,
        max_series: int = _DEFAULT_MAX_SERIES,
    ) -> None:
        if grace < 0 or max_series < 1:
            raise ValueError("grace must be >= 0 seconds and max_series >= 1")
        self.clock = clock
        self._grace = math.ceil(grace)
        self._max_series = max_series
        self._lock = threading.Lock()
        self._open: dict[int, _OpenBucket] = {}
        self._levels = [_Level(r, _keep(i)) for i, r in enumerate(_LEVELS)]
        self._coarse_first = self._levels[::-1]
        self._by_res = {level.res: level for level in self._levels}
        self._sealed_until = 0  # every second before this one is sealed
        self._combos: dict[Key, tuple[Key, tuple[Key, ...]]] = {}
        self._dropped: dict[str, int] = defaultdict(int)
        self._late = 0  # bumped when a late span changes sealed buckets
        self._fresh = 0  # bumped when spans reach an open second
        self._windows: dict[tuple[Key, float, bool], _Window] = {}
        self._open_sums: dict[tuple[Key, int, int, bool], _Acc] = {}
        self._open_stamp = (-1, -1)

    # --- ingest ---------------------------------------------------------------------------------

    def add(self, span: Span) -> None:
        """Aggregate one span (see :meth:`add_many`)."""
        self.add_many([span])

    def add_many(self, spans: Sequence[Span]) -> None:
        """Aggregate spans, each in the second of its ``ended_at`` (now when unset, or when
        it lies in the future). Spans older than 30 days are dropped and counted."""
        if not spans:
            return
        now_s = math.floor(self.clock())
        groups: dict[tuple[int, str, str, str | None], list[Span]] = {}
        for span in spans:
            ended = span.ended_at
            key = (now_s if ended is None else ended // 1000, span.model, span.provider, span.name)
            group = groups.get(key)
            if group is None:
                groups[key] = [span]
            else:
                group.append(span)
        with self._lock, localcontext(_MONEY):
            self._advance(now_s)
            for (sec, model, provider, name), group in groups.items():
                combo = self._combo(model, provider, name or "", len(group))
                self._insert(min(sec, now_s), combo, _Open(group), now_s)

    def _combo(self, model: str, provider: str, name: str, count: int) -> Key:
        entry = self._combos.get((model, provider, name))
        if entry is None and len(self._combos) >= self._max_series:
            self._dropped["series_overflow"] += count  # aggregated, but under the name "(other)"
            name = _OTHER
            entry = self._combos.get((model, provider, name))
        if entry is None:
            key: Key = (model, provider, name)
            derived: tuple[Key, ...] = (_ALL, (model, None, None), (None, provider, None), (None, None, name))
            entry = self._combos[key] = (key, derived)
        return entry[0]

    def _insert(self, sec: int, combo: Key, partial: _Open, now_s: int) -> None:
        if sec >= self._sealed_until:
            bucket = self._open.get(sec)
            if bucket is None:
                bucket = self._open[sec] = _OpenBucket()
            bucket.add(combo, partial)
            self._fresh += 1
        elif sec >= now_s - self._levels[-1].keep:
            self._insert_late(sec, combo, partial.freeze(), now_s)
        else:
            self._dropped["too_old"] += partial.count

    def _insert_late(self, sec: int, combo: Key, frozen: Frozen, now_s: int) -> None:
        """Copy-on-write the sealed buckets holding ``sec`` at every level already built."""
        self._late += 1
        for level in self._levels:
            t = sec - sec % level.res
            if t + level.res > self._sealed_until:  # not built yet: it will roll up this data
                level.pending.add(t)
                return
            if t >= now_s - level.keep:
                old = level.buckets.get(t)
                combos = dict(old.combos) if old else {}
                current = combos.get(combo)
                combos[combo] = frozen if current is None else _merge_frozen([current, frozen])
                level.store(t, _SealedBucket({}, combos, complete=False))

    # --- sealing and roll-up --------------------------------------------------------------------

    def _advance(self, now_s: int) -> None:
        target = now_s - self._grace
        if target <= self._sealed_until:
            return
        for sec in sorted(s for s in self._open if s < target):
            combos = {k: agg.freeze() for k, agg in self._open.pop(sec).combos.items()}
            self._store(0, sec, _SealedBucket({}, combos, complete=False))
        self._sealed_until = target
        for i in range(1, len(self._levels)):
            self._build(i)
        for level in self._levels:
            level.prune(now_s)

    def _store(self, i: int, t: int, bucket: _SealedBucket) -> None:
        self._levels[i].store(t, bucket)
        if i + 1 < len(self._levels):
            res = self._levels[i + 1].res
            self._levels[i + 1].pending.add(t - t % res)

    def _build(self, i: int) -> None:
        level, child = self._levels[i], self._levels[i - 1]
        for t in sorted(t for t in level.pending if t + level.res <= self._sealed_until):
            level.pending.discard(t)
            parts = [b for u in range(t, t + level.res, child.res) if (b := child.buckets.get(u)) is not None]
            if len(parts) == 1 and (parts[0].complete or i < _LAZY_LEVELS):
                self._store(i, t, parts[0])
            elif parts:
                members: dict[Key, list[Frozen]] = defaultdict(list)
                for part in parts:
                    for combo, agg in part.combos.items():
                        members[combo].append(agg)
                combos = {combo: aggs[0] if len(aggs) == 1 else _merge_frozen(aggs) for combo, aggs in members.items()}
                complete = i >= _LAZY_LEVELS
                self._store(i, t, _SealedBucket(self._derive(combos) if complete else {}, combos, complete))

    def _derive(self, combos: dict[Key, Frozen]) -> dict[Key, Frozen]:
        """The series aggregates (everything, per model, provider, name) of a bucket."""
        members: dict[Key, list[Frozen]] = defaultdict(list)
        for combo, agg in combos.items():
            for key in self._combos[combo][1]:
                members[key].append(agg)
        memo: dict[tuple[int, ...], Frozen] = {}
        return {key: _merged(aggs, memo) for key, aggs in members.items()}

    # --- reading --------------------------------------------------------------------------------

    def _buckets(self, a: int, b: int) -> Iterator[_SealedBucket | _OpenBucket]:
        """The buckets tiling seconds [a, b): the coarsest sealed ones, then the open seconds."""
        top = min(b, self._sealed_until)
        t = a
        while t < top:
            for level in self._coarse_first:
                res = level.res
                if t % res == 0 and t + res <= top and t >= level.floor:
                    bucket = level.buckets.get(t)
                    if bucket is not None:
                        yield bucket
                    t += res
                    break
            else:
                t = self._skip(t)
        for sec in range(max(a, self._sealed_until), b):
            open_bucket = self._open.get(sec)
            if open_bucket is not None:
                yield open_bucket

    def _skip(self, t: int) -> int:
        """Past history no level keeps at this alignment (only at the oldest edge)."""
        for level in self._levels:
            if t >= level.floor:
                return t - t % level.res + level.res
        top = self._levels[-1]
        return max(t + 1, top.floor - top.floor % top.res + top.res)

    def _collect(self, sel: Key, a: int, b: int, acc: _Acc, sign: int = 1) -> _Acc:
        for bucket in self._buckets(a, b):
            bucket.select(sel, acc, sign)
        return acc

    def _sealed_part(self, sel: Key, seconds: float, a: int, sketch: bool) -> _Acc:
        """The window's sealed seconds [a, sealed_until), moved along incrementally: the
        seconds sealed since are added, the ones the window left are taken away."""
        until, key = self._sealed_until, (sel, seconds, sketch)
        window = self._windows.get(key)
        if window is None or not self._can_move(window, a, _edge_resolution(seconds)):
            if len(self._windows) >= _MAX_CACHED_WINDOWS:
                self._windows.clear()
            acc = self._collect(sel, a, until, _Acc(sketch))
            self._windows[key] = _Window(a, until, self._late, acc)
            return acc
        self._collect(sel, window.start, a, window.acc, -1)
        self._collect(sel, window.until, until, window.acc)
        window.start, window.until = a, until
        return window.acc

    def _can_move(self, window: _Window, a: int, res: int) -> bool:
        """Whether the seconds to take away and to add are still kept at fine enough levels."""
        return (
            window.late == self._late
            and window.start <= a < window.until
            and window.start >= self._by_res[res].floor
            and window.until >= self._levels[0].floor
        )

    def _open_part(self, sel: Key, a: int, b: int, sketch: bool) -> _Acc:
        stamp = (self._sealed_until, self._fresh)
        if stamp != self._open_stamp:
            self._open_sums.clear()
            self._open_stamp = stamp
        start = max(a, self._sealed_until)
        acc = self._open_sums.get((sel, start, b, sketch))
        if acc is None:
            acc = self._open_sums[(sel, start, b, sketch)] = self._collect(sel, start, b, _Acc(sketch))
        return acc

    def _gather(self, sel: Key, seconds: float, a: int, b: int, sketch: bool) -> _Acc:
        acc = self._sealed_part(sel, seconds, a, sketch).copy()
        acc.add_acc(self._open_part(sel, a, b, sketch))
        return acc

    def _breakdown(self, sel: Key, a: int, b: int) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
        """[cost units, count] per model and per provider, from the combinations that match."""
        by_model: dict[str, list[int]] = {}
        by_provider: dict[str, list[int]] = {}
        everything = sel == _ALL
        for bucket in self._buckets(a, b):
            for combo, units, count in bucket.tallies():
                if everything or _matches(combo, sel):
                    _tally(by_model, combo[0] or "", units, count)
                    _tally(by_provider, combo[1] or "", units, count)
        return by_model, by_provider

    def _bounds(self, seconds: float, now: float) -> tuple[int, int]:
        res = _edge_resolution(seconds)
        return round((now - seconds) / res) * res, math.floor(now) + 1

    def _now(self) -> float:
        """Under the lock: read the clock and seal what the grace period let go."""
        now = self.clock()
        self._advance(math.floor(now))
        return now

    def bounds(self, window: DurationLike) -> tuple[int, int]:
        """The epoch seconds ``[start, end)`` a window ending now covers (edges within 1%)."""
        return self._bounds(_window_seconds(window), self.clock())

    def metric(
        self,
        metric: str,
        window: DurationLike,
        *,
        model: str | None = None,
        provider: str | None = None,
        name: str | None = None,
    ) -> Value:
        """One metric over the last ``window``.

        Args:
            metric: one of :data:`METRICS`.
            window: seconds, a ``timedelta`` or ``"1h"``-style text; 1 s to 30 days.
            model: keep only spans of this model; ``provider`` and ``name`` likewise, in
                any combination.

        Returns:
            ``Decimal`` for ``total_cost``; ``int`` for counts and tokens; ``float`` ms for
            latencies and a fraction for ``error_rate``; ``None`` when no span has the value.

        Raises:
            ValueError: unknown metric, or a window out of range.
        """
        _check_metric(metric)
        seconds, sel = _window_seconds(window), _selector(model, provider, name)
        quantile = _QUANTILES.get(metric)
        with self._lock, localcontext(_MONEY):
            a, b = self._bounds(seconds, self._now())
            sketch = quantile is not None
            return _value(metric, self._sealed_part(sel, seconds, a, sketch), self._open_part(sel, a, b, sketch))

    def snapshot(
        self,
        window: DurationLike,
        *,
        model: str | None = None,
        provider: str | None = None,
        name: str | None = None,
    ) -> WindowSnapshot:
        """Every metric over the last ``window``, plus cost by model and by provider.

        Raises:
            ValueError: a window out of range (1 s to 30 days) or a filter that is not a str.
        """
        seconds, sel = _window_seconds(window), _selector(model, provider, name)
        with self._lock, localcontext(_MONEY):
            a, b = self._bounds(seconds, self._now())
            values = _metrics(self._gather(sel, seconds, a, b, True))
            by_model, by_provider = self._breakdown(sel, a, b)
            cost_by_model, cost_by_provider = _by_cost(by_model), _by_cost(by_provider)
        return WindowSnapshot(
            window=seconds,
            start=a,
            end=b,
            model=sel[0],
            provider=sel[1],
            name=sel[2],
            cost_by_model=cost_by_model,
            cost_by_provider=cost_by_provider,
            **values,  # type: ignore[arg-type]
        )

    def timeseries(
        self,
        window: DurationLike,
        step: DurationLike,
        *,
        model: str | None = None,
        provider: str | None = None,
        name: str | None = None,
    ) -> list[dict[str, Any]]:
        """The last ``window`` cut into steps, oldest first, for a dashboard.

        ``step`` is rounded to a multiple of the window's edge resolution (1 s for short
        windows, up to 3 h for 30 days), so there are at most ~600 points. Each point is
        JSON-ready: ``start`` (ISO), ``cost``, ``span_count``, ``error_count``,
        ``prompt_tokens``, ``comp_tokens``, ``total_tokens``, ``latency_p50``/``p95``/``p99``
        (ms or None) and ``by_model`` (``{model: {"cost": ..., "span_count": ...}}``).

        Raises:
            ValueError: a window or step out of range (1 s to 30 days).
        """
        seconds, sel = _window_seconds(window), _selector(model, provider, name)
        res = _edge_resolution(seconds)
        step_s = max(res, round(_window_seconds(step, "step") / res) * res)
        with self._lock, localcontext(_MONEY):
            a, b = self._bounds(seconds, self._now())
            return [self._point(sel, t, min(t + step_s, b)) for t in range(a, b, step_s)]

    def _point(self, sel: Key, a: int, b: int) -> dict[str, Any]:
        values = _metrics(self._collect(sel, a, b, _Acc(True)))
        by_model, _ = self._breakdown(sel, a, b)
        point: dict[str, Any] = {"start": format_timestamp(a * 1000), "cost": float(values["total_cost"] or 0)}
        for metric in ("span_count", "error_count", "prompt_tokens", "comp_tokens", "total_tokens", *_QUANTILES):
            point[metric] = values[metric]
        point["by_model"] = {m: {"cost": float(_dollars(u)), "span_count": n} for m, (u, n) in by_model.items()}
        return point

    def stats(self) -> dict[str, Any]:
        """Series and bucket counts, and spans not aggregated by reason."""
        with self._lock:
            return {
                "series": len(self._combos),
                "open_seconds": len(self._open),
                "buckets": {format_duration(lv.res): len(lv.buckets) for lv in self._levels},
                "dropped": dict(self._dropped),
            }
