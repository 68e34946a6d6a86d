"""The state of a :class:`~tokentrace.windows.WindowAggregator` as bytes, and back.

A collector keeps it in its database when it stops and takes it back when it starts, rather than
reading every stored span again: a restart then costs the same for a day of spans as for a month.

The sealed aggregates are immutable ``bytes`` shared between buckets, levels and series; each is
written once and referred to by its index, so the state read back shares them as the one written
did (and takes no more memory). Open seconds are written as their sums. Caches (window sums asked
before) are not written: they are rebuilt on use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from .aggregates import _Open
from .buckets import _LEVELS, Key, _OpenBucket, _SealedBucket
from .sketch import _BOUNDS

if TYPE_CHECKING:
    from .aggregator import WindowAggregator

_FORMAT = 1
_LAYOUT = [_FORMAT, *_LEVELS, len(_BOUNDS), _BOUNDS[100], _BOUNDS[-1]]  # what the saved bytes assume


class _Bucket(msgspec.Struct, array_like=True):
    start: int
    complete: bool
    series: list[tuple[str | None, str | None, str | None, int]]  # a series' key, its aggregate's index
    combos: list[tuple[int, int]]  # a combination's index, its aggregate's index


class _Level(msgspec.Struct, array_like=True):
    floor: int
    pending: list[int]
    buckets: list[_Bucket]


class _Sums(msgspec.Struct, array_like=True):
    combo: int
    count: int
    errors: int
    prompt: int
    comp: int
    cost: str  # 1e-24 USD units: past what msgpack integers hold
    lat_sum: int
    lat_n: int
    bins: list[tuple[int, int]]


class _Second(msgspec.Struct, array_like=True):
    second: int
    sums: list[_Sums]


class _State(msgspec.Struct, array_like=True):
    layout: list[int]
    grace: int
    sealed_until: int
    combos: list[Key]  # model, provider, name: never None
    dropped: dict[str, int]
    blobs: list[bytes]
    levels: list[_Level]
    open: list[_Second]


def dump(aggregator: WindowAggregator) -> bytes:
    """The aggregator's state (call with its lock held)."""
    combos = {key: i for i, key in enumerate(aggregator._combos)}
    blobs: list[bytes] = []
    index: dict[int, int] = {}  # id of an aggregate -> its place in blobs

    def ref(frozen: bytes) -> int:
        i = index.get(id(frozen))
        if i is None:
            i = index[id(frozen)] = len(blobs)
            blobs.append(frozen)
        return i

    levels = [
        _Level(
            level.floor,
            sorted(level.pending),
            [
                _Bucket(
                    t,
                    bucket.complete,
                    [(*key, ref(agg)) for key, agg in bucket.series.items()],
                    [(combos[key], ref(agg)) for key, agg in bucket.combos.items()],
                )
                for t, bucket in level.buckets.items()
            ],
        )
        for level in aggregator._levels
    ]
    seconds = [
        _Second(sec, [_sums(combos[key], agg) for key, agg in bucket.combos.items()])
        for sec, bucket in aggregator._open.items()
    ]
    state = _State(
        _LAYOUT,
        aggregator._grace,
        aggregator._sealed_until,
        list(aggregator._combos),
        dict(aggregator._dropped),
        blobs,
        levels,
        seconds,
    )
    return msgspec.msgpack.encode(state)


def load(aggregator: WindowAggregator, data: bytes) -> None:
    """Put a :func:`dump`'s state into an aggregator that holds nothing (call with its lock
    held); it is left as it was when ``data`` cannot be taken.

    Raises:
        ValueError: ``data`` is not a state this version wrote, or was written with another
            grace period.
    """
    try:
        state = msgspec.msgpack.decode(data, type=_State)
    except msgspec.DecodeError as exc:
        raise ValueError(f"the saved windows cannot be read: {exc}") from exc
    if state.layout != _LAYOUT:
        raise ValueError("the saved windows were written with other buckets or latency bins")
    if state.grace != aggregator._grace:
        raise ValueError("the saved windows were written with another grace period")
    keys = state.combos
    try:
        levels = [
            (
                saved.floor,
                set(saved.pending),
                {
                    b.start: _SealedBucket(
                        {(m, p, n): state.blobs[i] for m, p, n, i in b.series},
                        {keys[c]: state.blobs[i] for c, i in b.combos},
                        b.complete,
                    )
                    for b in saved.buckets
                },
            )
            for saved in state.levels
        ]
        seconds = {second.second: _open_bucket(second.sums, keys) for second in state.open}
    except (IndexError, ValueError) as exc:
        raise ValueError(f"the saved windows are inconsistent: {exc}") from exc
    for key in keys:
        aggregator._register(key)
    for level, (floor, pending, buckets) in zip(aggregator._levels, levels, strict=True):
        level.floor, level.pending = floor, pending
        for t, bucket in buckets.items():
            level.store(t, bucket)
    aggregator._open.update(seconds)
    aggregator._sealed_until = state.sealed_until
    aggregator._dropped.update(state.dropped)


def _sums(combo: int, agg: _Open) -> _Sums:
    bins = list(agg.bins.items())
    return _Sums(combo, agg.count, agg.errors, agg.prompt, agg.comp, str(agg.cost), agg.lat_sum, agg.lat_n, bins)


def _open_bucket(sums: list[_Sums], keys: list[Key]) -> _OpenBucket:
    bucket = _OpenBucket()
    for s in sums:
        agg = _Open()
        agg.count, agg.errors, agg.prompt, agg.comp = s.count, s.errors, s.prompt, s.comp
        agg.cost, agg.lat_sum, agg.lat_n, agg.bins = int(s.cost), s.lat_sum, s.lat_n, dict(s.bins)
        bucket.combos[keys[s.combo]] = agg
    return bucket
