"""The state of a :class:`~tokentrace.windows.WindowAggregator` as bytes, and back.

A collector keeps it in its database when it stops and takes it back when it starts, rather than
reading every stored span again: a restart then costs the same for a day of spans as for a month.

The sealed aggregates are immutable ``bytes`` shared between buckets, levels and series; each is
written once and referred to by its index, so the state read back shares them as the one written
did (and takes no more memory). Open seconds are written as their sums. Caches (window sums asked
before) are not written: they are rebuilt on use.

A state of the first format, which did not count priced spans nor keep the least and greatest
latency, is taken back too: an aggregate's spans count as priced when it cost anything (a model
without a price costs nothing; one with a price seldom does), and its least and greatest latency
are unknown, so that quantiles over it are its bins' values, as they were then.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import msgspec

from .aggregates import _HEADER, _Open
from .buckets import _LEVELS, Key, _OpenBucket, _SealedBucket
from .sketch import _BOUNDS, NO_MAX, NO_MIN, UNKNOWN_MAX, UNKNOWN_MIN

if TYPE_CHECKING:
    from .aggregator import WindowAggregator

_FORMAT = 2
_FORMATS = (1, _FORMAT)  # the formats taken back
_LAYOUT = [_FORMAT, *_LEVELS, len(_BOUNDS), _BOUNDS[100], _BOUNDS[-1]]  # what the saved bytes assume
_HEADER_1 = struct.Struct("<6qQQq")  # a sealed aggregate's header in the first format


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
    priced: int | None = None  # None in the first format
    lat_min: int = NO_MIN
    lat_max: int = NO_MAX


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
    if state.layout[1:] != _LAYOUT[1:] or state.layout[0] not in _FORMATS:
        raise ValueError("the saved windows were written with other buckets or latency bins")
    if state.grace != aggregator._grace:
        raise ValueError("the saved windows were written with another grace period")
    keys = state.combos
    try:
        if state.layout[0] == 1:
            state.blobs = [_upgraded(blob) for blob in state.blobs]
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
    except (IndexError, ValueError, struct.error) as exc:
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
    counts = (agg.count, agg.errors, agg.prompt, agg.comp)
    return _Sums(combo, *counts, str(agg.cost), agg.lat_sum, agg.lat_n, bins, agg.priced, agg.lat_min, agg.lat_max)


def _open_bucket(sums: list[_Sums], keys: list[Key]) -> _OpenBucket:
    bucket = _OpenBucket()
    for s in sums:
        agg = _Open()
        agg.count, agg.errors, agg.prompt, agg.comp = s.count, s.errors, s.prompt, s.comp
        agg.cost, agg.lat_sum, agg.lat_n, agg.bins = int(s.cost), s.lat_sum, s.lat_n, dict(s.bins)
        if s.priced is not None:
            agg.priced, agg.lat_min, agg.lat_max = s.priced, s.lat_min, s.lat_max
        else:  # the first format
            agg.priced = s.count if agg.cost else 0
            if agg.lat_n:
                agg.lat_min, agg.lat_max = UNKNOWN_MIN, UNKNOWN_MAX
        bucket.combos[keys[s.combo]] = agg
    return bucket


def _upgraded(blob: bytes) -> bytes:
    """A sealed aggregate of the first format in the current one (see the module's docstring)."""
    count, errors, prompt, comp, lat_sum, lat_n, high, low, first = _HEADER_1.unpack_from(blob)
    lat_min, lat_max = (UNKNOWN_MIN, UNKNOWN_MAX) if lat_n else (NO_MIN, NO_MAX)
    priced = count if high or low else 0
    head = _HEADER.pack(count, errors, prompt, comp, lat_sum, lat_n, priced, lat_min, lat_max, high, low, first)
    return head + blob[_HEADER_1.size :]
