"""MemoryStore: a bounded ring of recent spans with a trace index kept in step."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.collector_kit import make_span, mixed_spans
from tokentrace.spans import now_ms
from tokentrace.store import MemoryStore, SpanStore, StoreError


def test_is_a_span_store_with_the_default_size() -> None:
    store = MemoryStore()
    assert isinstance(store, SpanStore)
    assert store.max_spans == 100_000


def test_add_is_idempotent_on_span_id() -> None:
    store = MemoryStore()
    spans = mixed_spans(10)
    assert store.add(spans[:4]) == spans[:4]
    assert store.add(spans) == spans[4:]
    assert store.add([spans[0], spans[0]]) == []
    assert store.count() == 10


def test_the_ring_evicts_the_oldest_and_keeps_the_trace_index_in_step() -> None:
    store = MemoryStore(max_spans=5)
    spans = [make_span(trace_id=("a", "b")[i % 2], ended_ms=now_ms() + i) for i in range(8)]
    store.add(spans)
    assert store.count() == 5
    assert store.recent(10) == spans[:2:-1]
    assert [s.span_id for s in store.trace("a")] == [spans[4].span_id, spans[6].span_id]
    assert [s.span_id for s in store.trace("b")] == [spans[3].span_id, spans[5].span_id, spans[7].span_id]
    store.add([make_span(trace_id="c") for _ in range(5)])
    assert store.trace("a") == []
    assert [t.trace_id for t in store.traces(10)] == ["c"]


def test_traces_newest_first_with_summaries() -> None:
    store = MemoryStore()
    base = now_ms() - 10_000
    store.add([make_span(trace_id="x", ended_ms=base + i, cost="0.25") for i in range(4)])
    store.add([make_span(trace_id="y", ended_ms=base + 10, cost=None)])
    listed = store.traces(10)
    assert [t.trace_id for t in listed] == ["y", "x"]
    assert (listed[1].span_count, listed[1].cost_usd) == (4, Decimal("1.00"))
    assert listed[0].cost_usd is None
    assert [t.trace_id for t in store.traces(1)] == ["y"]


def test_iter_since_and_prune() -> None:
    store = MemoryStore()
    base = now_ms() - 100_000
    store.add([make_span(ended_ms=base + i, trace_id=f"t{i % 3}") for i in range(10)])
    batches = list(store.iter_since(base + 4, batch_size=4))
    assert [len(b) for b in batches] == [4, 2]
    assert store.prune(base + 7) == 7
    assert [s.ended_at for s in store.recent(10)] == [base + 9, base + 8, base + 7]
    assert sum(len(store.trace(f"t{i}")) for i in range(3)) == 3


def test_bad_size_and_closed_store() -> None:
    with pytest.raises(ValueError, match="max_spans must be an int of at least 1"):
        MemoryStore(0)
    store = MemoryStore()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.add([make_span()])


def test_recent_and_traces_filter_by_model() -> None:
    store = MemoryStore()
    store.add([make_span(trace_id="a", model="gpt-4o"), make_span(trace_id="a", model="o3-mini")])
    store.add([make_span(trace_id="b", model="o3-mini")])
    assert [s.model for s in store.recent(10, model="gpt-4o")] == ["gpt-4o"]
    assert [t.trace_id for t in store.traces(10, model="gpt-4o")] == ["a"]
    assert store.traces(10, model="gpt-4o")[0].span_count == 2
    assert [t.trace_id for t in store.traces(10, model="o3-mini")] == ["b", "a"]
