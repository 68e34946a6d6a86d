"""The span store interface: what the HTTP app needs from wherever spans are kept.

The embedded server keeps recent spans in memory (:class:`~tokentrace.store.memory.MemoryStore`);
the collector keeps them durably in SQLite (:class:`~tokentrace.store.sqlite.SQLiteStore`). A new
backend (PostgreSQL, say) implements :class:`SpanStore` and the app works with it unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Protocol, runtime_checkable

import msgspec

from ..exceptions import StoreBusyError, StoreError
from ..spans import Span, Status

__all__ = ["SpanStore", "StoreBusyError", "StoreError", "TraceSummary", "summarize"]


class TraceSummary(msgspec.Struct, kw_only=True):
    """One trace in a listing: its time span, size, cost and the models it called."""

    trace_id: str
    name: str
    started_at: int
    ended_at: int
    span_count: int
    error_count: int
    prompt_tokens: int
    comp_tokens: int
    cost_usd: Decimal | None
    models: list[str]


@runtime_checkable
class SpanStore(Protocol):
    """Where the HTTP app keeps spans. Implementations are safe to call from any thread.

    Example::

        store = SQLiteStore("tokentrace.db")
        new = store.add(spans)      # durable when it returns; spans already stored are skipped
        store.recent(50)
    """

    def add(self, spans: Sequence[Span]) -> list[Span]:
        """Keep ``spans``; idempotent on ``span_id``.

        Returns:
            The spans that were not stored before (so a resent batch is counted once).
        """
        ...

    def recent(self, limit: int, *, model: str | None = None) -> list[Span]:
        """The ``limit`` most recent spans (of ``model`` only, if given), newest first."""
        ...

    def traces(self, limit: int, *, model: str | None = None) -> list[TraceSummary]:
        """Summaries of the ``limit`` most recently active traces (those that called ``model``,
        if given), newest first; each summary covers the whole trace."""
        ...

    def trace(self, trace_id: str) -> list[Span]:
        """Every stored span of one trace, in start order; empty when unknown."""
        ...

    def iter_since(self, since_ms: int, batch_size: int = 5000, *, metrics_only: bool = False) -> Iterator[list[Span]]:
        """Spans that ended at or after ``since_ms``, in batches, oldest first.

        With ``metrics_only``, only what metrics read of them need be set (name, model,
        provider, token counts, cost, latency, status, ``ended_at``): a store may leave the rest
        unset, to read them faster."""
        ...

    def prune(self, before_ms: int) -> int:
        """Delete spans that ended before ``before_ms``; the number deleted."""
        ...

    def count(self) -> int:
        """How many spans are stored."""
        ...

    def close(self) -> None:
        """Release files and threads; later calls raise :class:`StoreError`."""
        ...


def summarize(trace_id: str, spans: Iterable[Span]) -> TraceSummary:
    """Fold one trace's spans into a :class:`TraceSummary`; costs are summed exactly."""
    items = sorted(spans, key=lambda s: (s.started_at or 0, s.ended_at or 0))
    known = [s.cost for s in items if s.cost is not None]
    return TraceSummary(
        trace_id=trace_id,
        name=(items[0].name or "") if items else "",
        started_at=min((s.started_at or 0 for s in items), default=0),
        ended_at=max((s.ended_at or 0 for s in items), default=0),
        span_count=len(items),
        error_count=sum(1 for s in items if s.status is Status.ERROR),
        prompt_tokens=sum(s.prompt_tokens for s in items),
        comp_tokens=sum(s.comp_tokens for s in items),
        cost_usd=sum(known, Decimal(0)) if known else None,
        models=sorted({s.model for s in items if s.model}),
    )
