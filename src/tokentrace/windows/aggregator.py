"""The window aggregator: spans folded into time buckets, queried over any window ending now."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Context as DecimalContext
from decimal import localcontext
from typing import Any

from .. import _fork
from ..durations import DurationLike, format_duration
from ..spans import Span, format_timestamp
from . import persist
from .aggregates import BatchTotals, Frozen, Totals, _Acc, _dollars, _merge_frozen, _merged, _Open
from .buckets import (
    _ALL,
    _LAZY_LEVELS,
    _LEVELS,
    Key,
    _Backfill,
    _edge_resolution,
    _keep,
    _Level,
    _matches,
    _OpenBucket,
    _SealedBucket,
    _Window,
)
from .snapshot import (
    _QUANTILES,
    Value,
    WindowSnapshot,
    _by_cost,
    _check_metric,
    _metrics,
    _selector,
    _tally,
    _value,
    _window_seconds,
)

_DEFAULT_GRACE_S = 2
_DEFAULT_MAX_SERIES = 2000
_MAX_CACHED_WINDOWS = 64
_OTHER = "(other)"
_MONEY = DecimalContext(prec=60)


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
            are counted under ``"(other)"``, and past a quarter more (new models), new
            combinations are counted under model, provider and name ``"(other)"``.

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
        self._lock = _fork.lock()
        self._forget()

    def _forget(self) -> None:
        """Hold nothing, as when made."""
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
        self._last_batch: tuple[Sequence[Span], list[tuple[int, int, int, int, int]]] | None = None

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
        groups = _grouped(spans, now_s)  # outside the lock
        with localcontext(_MONEY), self._lock:
            self._advance(now_s)
            rows = [
                self._fold(min(sec, now_s), self._combo(model, provider, name or "", len(group)), group, now_s)
                for (sec, model, provider, name), group in groups.items()
            ]
            self._last_batch = (spans, rows)  # summed once someone asks

    def load(self, batches: Iterable[Sequence[Span]]) -> int:
        """Aggregate stored spans, given oldest first (a store's, at start-up): the same sums
        as :meth:`add_many`, many times faster for spans older than the grace period.

        :meth:`add_many` takes each second of old spans into the sealed buckets of every level
        already built, one second at a time. Here each level's buckets are built once, straight
        from the spans, and only where the level keeps history; the last seconds are left open,
        and the buckets they are part of are built as live ones are. Meant for an aggregator
        that holds nothing yet (else, or for a span older than one before it, the spans take
        :meth:`add_many`'s way in, exact and slower). Holds the lock throughout, so no query
        sees the windows half filled; returns the number of spans given."""
        with self._lock, localcontext(_MONEY):
            now_s = math.floor(self.clock())
            sealing = now_s - self._grace
            fill = _Backfill(self._levels, now_s, sealing, self._seal)
            out_of_order: list[tuple[int, Key, _Open]] = []
            empty = self._empty()
            given = 0
            for batch in batches:
                given += len(batch)
                for (sec, model, provider, name), group in _grouped(batch, now_s).items():
                    partial = _Open(group)
                    combo = self._combo(model, provider, name or "", partial.count)
                    sec = min(sec, now_s)
                    if not empty or sec >= sealing or sec < now_s - self._levels[-1].keep:
                        self._insert(sec, combo, partial, now_s)  # open, too old, or the usual way
                    elif not fill.add(sec, combo, partial):
                        out_of_order.append((sec, combo, partial))
            if empty:
                fill.finish()
                self._late += 1  # no window sum from before holds
                self._advance(now_s)
            for sec, combo, partial in out_of_order:
                self._insert(sec, combo, partial, now_s)
        return given

    def state(self) -> bytes:
        """Everything the windows hold, as bytes that :meth:`restore` takes back in a later
        process (a collector keeps them when it stops, rather than reading its spans again)."""
        with self._lock:
            return persist.dump(self)

    def restore(self, state: bytes) -> None:
        """Take back a :meth:`state` into windows that hold nothing yet.

        Raises:
            ValueError: ``state`` is not what :meth:`state` gives (or was written with another
                grace period, or other buckets), or the windows hold spans already.
        """
        with self._lock:
            if not self._empty():
                raise ValueError("the windows hold spans already")
            persist.load(self, state)
            self._late += 1  # no window sum from before holds

    def _empty(self) -> bool:
        return not self._open and not any(level.buckets for level in self._levels)

    def _seal(self, i: int, t: int, bucket: _OpenBucket) -> None:
        """Store a bucket :class:`_Backfill` built at level ``i``."""
        sealed = bucket.seal()
        if i >= _LAZY_LEVELS:
            sealed = _SealedBucket(self._derive(sealed.combos), sealed.combos, complete=True)
        self._levels[i].store(t, sealed)

    def take_totals(self, spans: Sequence[Span]) -> BatchTotals | None:
        """What the last :meth:`add_many` added, if it was given this very sequence (and no one
        took its totals yet); None otherwise. Lets the alert engine skip a second pass over the
        spans of the batch it was just handed."""
        with self._lock:
            last = self._last_batch
            if last is None or last[0] is not spans:
                return None
            self._last_batch = None  # and let the spans go
        return BatchTotals.of(last[1])

    def _combo(self, model: str, provider: str, name: str, count: int) -> Key:
        entry = self._combos.get((model, provider, name))
        if entry is None and len(self._combos) >= self._max_series:
            self._dropped["series_overflow"] += count  # aggregated, but under the name "(other)"
            name = _OTHER
            entry = self._combos.get((model, provider, name))
            if entry is None and len(self._combos) >= self._max_series + self._max_series // 4:
                model = provider = _OTHER  # and past room for a few new models, under "(other)" alone
                entry = self._combos.get((model, provider, name))
        return entry[0] if entry is not None else self._register((model, provider, name))

    def _register(self, key: Key) -> Key:
        """A new combination, with the series it counts in (everything, its model, provider, name)."""
        model, provider, name = key
        self._combos[key] = (key, (_ALL, (model, None, None), (None, provider, None), (None, None, name)))
        return key

    def _insert(self, sec: int, combo: Key, partial: _Open, now_s: int) -> None:
        if sec < now_s - self._levels[-1].keep:
            self._dropped["too_old"] += partial.count
        elif sec >= self._sealed_until:
            self._open_bucket(sec).add(combo, partial)
        else:
            self._insert_late(sec, combo, partial.freeze(), now_s)

    def _fold(self, sec: int, combo: Key, spans: Sequence[Span], now_s: int) -> Totals:
        """Fold spans of one second and combination in, as :meth:`_insert` does their aggregate;
        returns what they added."""
        if sec < self._sealed_until:  # late, or too old
            partial = _Open()
            totals = partial.fold(spans)
            self._insert(sec, combo, partial, now_s)
            return totals
        return self._open_bucket(sec).fold(combo, spans)

    def _open_bucket(self, sec: int) -> _OpenBucket:
        self._fresh += 1
        bucket = self._open.get(sec)
        if bucket is None:
            bucket = self._open[sec] = _OpenBucket()
        return bucket

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
            self._store(0, sec, self._open.pop(sec).seal())
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
                self._store(i, t, self._roll_up(parts, complete=i >= _LAZY_LEVELS))

    def _roll_up(self, parts: list[_SealedBucket], complete: bool) -> _SealedBucket:
        members: dict[Key, list[Frozen]] = defaultdict(list)
        for part in parts:
            for combo, agg in part.combos.items():
                members[combo].append(agg)
        combos = {combo: aggs[0] if len(aggs) == 1 else _merge_frozen(aggs) for combo, aggs in members.items()}
        if complete:
            return _SealedBucket(self._derive(combos), combos, complete)
        totals = [total for part in parts if (total := part.series.get(_ALL)) is not None]
        series = {_ALL: _merge_frozen(totals)} if len(totals) == len(parts) else {}  # else a late span came in
        return _SealedBucket(series, combos, complete)

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
        seconds sealed since are added, the ones the window left are taken away (unless they
        may have held the least or greatest latency, which taking away cannot tell again)."""
        until, key = self._sealed_until, (sel, seconds, sketch)
        window = self._windows.get(key)
        if window is not None and self._can_move(window, a, _edge_resolution(seconds)):
            self._collect(sel, window.start, a, window.acc, -1)
            self._collect(sel, window.until, until, window.acc)
            window.start, window.until = a, until
            if window.acc.sketch is None or not window.acc.sketch.lost_ends:
                return window.acc
        if len(self._windows) >= _MAX_CACHED_WINDOWS:
            self._windows.clear()
        acc = self._collect(sel, a, until, _Acc(sketch))
        self._windows[key] = _Window(a, until, self._late, acc)
        return acc

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
        """[cost units, count, priced count] per model and per provider, from the combinations
        that match."""
        by_model: dict[str, list[int]] = {}
        by_provider: dict[str, list[int]] = {}
        everything = sel == _ALL
        for bucket in self._buckets(a, b):
            for combo, units, count, priced in bucket.tallies():
                if everything or _matches(combo, sel):
                    _tally(by_model, combo[0] or "", units, count, priced)
                    _tally(by_provider, combo[1] or "", units, count, priced)
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
        (ms or None) and ``by_model`` (``{model: {"cost": ..., "span_count": ...}}``). A cost is
        None where there were spans but none had a price.

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
        acc = self._collect(sel, a, b, _Acc(True))
        values = _metrics(acc)
        by_model, _ = self._breakdown(sel, a, b)
        cost = None if acc.count and not acc.priced else float(_dollars(acc.cost))
        point: dict[str, Any] = {"start": format_timestamp(a * 1000), "cost": cost}
        for metric in ("span_count", "error_count", "prompt_tokens", "comp_tokens", "total_tokens", *_QUANTILES):
            point[metric] = values[metric]
        point["by_model"] = {
            m: {"cost": float(_dollars(u)) if p else None, "span_count": n} for m, (u, n, p) in by_model.items()
        }
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


def _grouped(spans: Sequence[Span], now_s: int) -> dict[tuple[int, str, str, str | None], list[Span]]:
    """Spans by second and model x provider x name, in the order they first appear."""
    groups: dict[tuple[int, str, str, str | None], list[Span]] = {}
    for span in spans:
        ended = span.ended_at
        key = (now_s if ended is None else ended // 1000, span.model, span.provider, span.name)
        group = groups.get(key)
        if group is None:
            groups[key] = [span]
        else:
            group.append(span)
    return groups
