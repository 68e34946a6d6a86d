"""A bounded in-memory span store: the embedded server's recent spans, without a database.

It holds at most ``max_spans`` spans; adding more evicts the oldest (a ring). Lookups by trace
go through an index kept in step with the ring, so ``/traces/{id}`` never scans.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator, Sequence
from itertools import islice

from .. import _fork
from ..spans import Span
from .base import StoreError, TraceSummary, summarize

__all__ = ["MemoryStore"]

_DEFAULT_MAX_SPANS = 100_000


class MemoryStore:
    """Keeps the most recent ``max_spans`` spans in memory.

    Example::

        store = MemoryStore(max_spans=10_000)
        store.add(spans)
        store.traces(20)

    Args:
        max_spans: spans kept at most; the oldest are evicted first.

    Raises:
        ValueError: ``max_spans`` is less than 1.
    """

    def __init__(self, max_spans: int = _DEFAULT_MAX_SPANS) -> None:
        if type(max_spans) is not int or max_spans < 1:
            raise ValueError(f"MemoryStore.max_spans must be an int of at least 1, got {max_spans!r}")
        self.max_spans = max_spans
        self._lock = _fork.lock()
        self._ring: collections.OrderedDict[str, Span] = collections.OrderedDict()
        self._by_trace: dict[str, collections.deque[Span]] = {}
        self._closed = False

    def add(self, spans: Sequence[Span]) -> list[Span]:
        """Keep ``spans`` (skipping span ids already held); the spans that were new."""
        new: list[Span] = []
        with self._lock:
            self._check_open()
            for span in spans:
                key = span.span_id or ""
                if key in self._ring:
                    continue
                self._ring[key] = span
                self._by_trace.setdefault(span.trace_id or "", collections.deque()).append(span)
                new.append(span)
            while len(self._ring) > self.max_spans:
                self._evict_oldest()
        return new

    def _evict_oldest(self) -> None:
        _, span = self._ring.popitem(last=False)
        key = span.trace_id or ""
        spans = self._by_trace[key]
        spans.remove(span)  # the oldest span of the ring is near the front of its trace
        if not spans:
            del self._by_trace[key]

    def recent(self, limit: int, *, model: str | None = None) -> list[Span]:
        with self._lock:
            newest_first = reversed(self._ring.values())
            return list(islice((s for s in newest_first if not model or s.model == model), limit))

    def traces(self, limit: int, *, model: str | None = None) -> list[TraceSummary]:
        with self._lock:
            ids: dict[str, None] = {}
            for span in reversed(self._ring.values()):
                if model and span.model != model:
                    continue
                ids.setdefault(span.trace_id or "", None)
                if len(ids) >= limit:
                    break
            return [summarize(tid, list(self._by_trace[tid])) for tid in ids]

    def trace(self, trace_id: str) -> list[Span]:
        with self._lock:
            spans = list(self._by_trace.get(trace_id, ()))
        return sorted(spans, key=lambda s: (s.started_at or 0, s.ended_at or 0))

    def iter_since(
        self, since_ms: int, batch_size: int = 5000, *, metrics_only: bool = False
    ) -> Iterator[list[Span]]:  # whole spans, metrics_only or not: they are at hand
        with self._lock:
            spans = [s for s in self._ring.values() if (s.ended_at or 0) >= since_ms]
        spans.sort(key=lambda s: s.ended_at or 0)
        for start in range(0, len(spans), batch_size):
            yield spans[start : start + batch_size]

    def prune(self, before_ms: int) -> int:
        with self._lock:
            old = [s for s in self._ring.values() if (s.ended_at or 0) < before_ms]
            for span in old:
                del self._ring[span.span_id or ""]
                spans = self._by_trace[span.trace_id or ""]
                spans.remove(span)
                if not spans:
                    del self._by_trace[span.trace_id or ""]
        return len(old)

    def count(self) -> int:
        return len(self._ring)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._ring.clear()
            self._by_trace.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the memory store is closed")
