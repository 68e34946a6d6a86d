"""Buckets: one second still open, sealed buckets per combination (and per series when
complete), the levels that keep them at one resolution each, and the cached window sums.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Callable, Iterator, Sequence

from ..spans import Span
from .aggregates import Frozen, Totals, _Acc, _Open, _tally_of

MAX_WINDOW = 30 * 86400.0
"""The longest window, in seconds, that can be asked for (30 days)."""

_LEVELS = (1, 3, 15, 60, 300, 1800, 10800)
_LAZY_LEVELS = 2  # the 1 s and 3 s buckets keep combinations and their total only

Key = tuple[str | None, str | None, str | None]
_ALL: Key = (None, None, None)


class _OpenBucket:
    """A second still taking spans: one aggregate per combination, and the sums queries asked
    for (per selector) since spans last arrived.

    New spans drop the sums rather than update them: a second takes hundreds of batches' worth
    of partial aggregates but is asked for a few times, and a sum is rebuilt from the (at most a
    few dozen) combinations."""

    __slots__ = ("combos", "views")

    def __init__(self) -> None:
        self.combos: dict[Key, _Open] = {}
        self.views: dict[tuple[Key, bool], _Acc] = {}

    def add(self, combo: Key, partial: _Open) -> None:
        if self.views:
            self.views.clear()
        current = self.combos.get(combo)
        if current is None:
            self.combos[combo] = partial
        else:
            current.merge(partial)

    def fold(self, combo: Key, spans: Sequence[Span]) -> Totals:
        """Fold spans of this second in (see :meth:`_Open.fold`)."""
        if self.views:
            self.views.clear()
        agg = self.combos.get(combo)
        if agg is None:
            agg = self.combos[combo] = _Open()
        return agg.fold(spans)

    def select(self, sel: Key, acc: _Acc, sign: int = 1) -> None:
        sketch = acc.sketch is not None
        view = self.views.get((sel, sketch))
        if view is None:
            view = self.views[(sel, sketch)] = _Acc(sketch)
            for combo, agg in self.combos.items():
                if _matches(combo, sel):
                    view.add_open(agg)
        acc.add_acc(view)

    def tallies(self) -> Iterator[tuple[Key, int, int, int]]:
        for combo, agg in self.combos.items():
            yield combo, agg.cost, agg.count, agg.priced

    def seal(self) -> _SealedBucket:
        """The sealed bucket: per combination, and everything together (so that the most
        common query, no filter, reads one aggregate rather than every combination)."""
        combos = {combo: agg.freeze() for combo, agg in self.combos.items()}
        if len(combos) == 1:
            return _SealedBucket({_ALL: next(iter(combos.values()))}, combos, complete=False)
        total = _Open()
        for agg in self.combos.values():
            total.merge(agg)
        return _SealedBucket({_ALL: total.freeze()}, combos, complete=False)


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
        if filters == 3 or (filters < 2 and self.complete) or sel in self.series:
            agg = (self.combos if filters == 3 else self.series).get(sel)
            if agg is not None:
                acc.add_frozen(agg, sign)
            return
        for combo, part in self.combos.items():
            if _matches(combo, sel):
                acc.add_frozen(part, sign)

    def tallies(self) -> Iterator[tuple[Key, int, int, int]]:
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


class _Backfill:
    """Every level's sealed buckets, built straight from the partial aggregates of stored spans
    given oldest first: a bucket is filled until a span of a later bucket comes, then handed to
    ``seal(level index, start, bucket)``. Only where the level keeps history at ``now_s``; a
    bucket that ends after ``sealing`` is left pending, to be rolled up from its children as
    live buckets are."""

    __slots__ = ("filling", "floors", "levels", "newest", "seal", "sealing")

    def __init__(
        self, levels: list[_Level], now_s: int, sealing: int, seal: Callable[[int, int, _OpenBucket], None]
    ) -> None:
        self.levels = levels
        self.sealing = sealing
        self.seal = seal
        self.floors = [now_s - level.keep for level in levels]
        self.filling: list[tuple[int, _OpenBucket] | None] = [None] * len(levels)
        self.newest = 0

    def add(self, sec: int, combo: Key, partial: _Open) -> bool:
        """Fold a second's partial aggregate in; False when it is older than one before it."""
        if sec < self.newest:
            return False
        self.newest = sec
        for i, level in enumerate(self.levels):
            t = sec - sec % level.res
            if t < self.floors[i]:
                continue  # history this level no longer keeps
            if t + level.res > self.sealing:  # ends in seconds still open: built live, from its children
                level.pending.add(t)
                continue
            filling = self.filling[i]
            if filling is None or filling[0] != t:
                if filling is not None:
                    self.seal(i, *filling)
                filling = self.filling[i] = (t, _OpenBucket())
            agg = filling[1].combos.get(combo)
            if agg is None:  # each level's own: the partial is folded into several
                agg = filling[1].combos[combo] = _Open()
            agg.merge(partial)
        return True

    def finish(self) -> None:
        """Seal the buckets still being filled."""
        for i, filling in enumerate(self.filling):
            if filling is not None:
                self.seal(i, *filling)
        self.filling = [None] * len(self.levels)
