"""Prometheus exposition for ``GET /metrics``, on a private ``CollectorRegistry``.

:class:`SpanCounters` is fed every span the server aggregates and keeps running totals per
(model, provider): cost as an exact ``Decimal`` (turned into a float only when scraped, so the
counter equals the stored sum), tokens by type, spans by status, and a latency histogram. It
also reports the tracer's queue and drop counts and the ingest counts. The global registry is
never touched, so an application's own ``/metrics`` stays its own.

The span totals can be kept across restarts (:meth:`SpanCounters.state`, ``keep``): the collector
keeps them in its database after every scrape, so they never go below a value Prometheus has
read, which it would take for a reset and count the whole total again.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from .. import _fork
from ..spans import Span, Status

__all__ = ["LATENCY_BUCKETS_S", "SpanCounters", "render"]

LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_BUCKETS_MS = tuple(round(b * 1000) for b in LATENCY_BUCKETS_S)
_MAX_SERIES = 500  # (model, provider) pairs kept apart; the rest are summed under "other"
_OTHER = ("other", "other")
_TOKEN_TYPES = ("prompt", "completion", "cached", "cache_write", "reasoning")


class _Saved(msgspec.Struct, array_like=True):
    """One series' totals as kept across restarts."""

    model: str
    provider: str
    cost: Decimal
    tokens: dict[str, int]
    spans: dict[str, int]
    buckets: list[int]
    latency_sum_ms: int
    latency_count: int


class _Kept(msgspec.Struct):
    """The totals as kept, with the store rows counted in them (see :attr:`SpanCounters.rows`)."""

    series: list[_Saved]
    rows: list[tuple[int, int]] | None = None


class _Series:
    __slots__ = ("buckets", "cost", "latency_count", "latency_sum_ms", "spans", "tokens")

    def __init__(self) -> None:
        self.cost = Decimal(0)
        self.tokens = dict.fromkeys(_TOKEN_TYPES, 0)
        self.spans = {Status.OK.value: 0, Status.ERROR.value: 0}
        self.buckets = [0] * (len(_BUCKETS_MS) + 1)
        self.latency_sum_ms = 0
        self.latency_count = 0

    def add(self, span: Span) -> None:
        if span.cost is not None:
            self.cost += span.cost
        tokens = self.tokens
        tokens["prompt"] += span.prompt_tokens
        tokens["completion"] += span.comp_tokens
        tokens["cached"] += span.cached_tokens or 0
        tokens["cache_write"] += span.cache_write_tokens or 0
        tokens["reasoning"] += span.reasoning_tokens or 0
        self.spans[span.status.value] += 1
        if span.latency_ms is not None:
            self.buckets[bisect_left(_BUCKETS_MS, span.latency_ms)] += 1
            self.latency_sum_ms += span.latency_ms
            self.latency_count += 1


class SpanCounters(Collector):
    """Running totals of the spans a server has seen, exposed as Prometheus metrics.

    Example::

        counters = SpanCounters(stats=tracer.stats)
        counters.observe(spans)
        text = render(counters)

    Args:
        stats: returns ``Tracer.stats()``-shaped counts (queued, written, dropped, unpriced).
        keep: stores :meth:`state` somewhere that outlives the process; called after every
            scrape, before its answer is sent.
    """

    def __init__(
        self, stats: Callable[[], dict[str, Any]] | None = None, *, keep: Callable[[bytes], None] | None = None
    ) -> None:
        self._stats = stats
        self.keep = keep  # given the span totals' state after every scrape (see render)
        self._lock = _fork.lock()
        self._series: dict[tuple[str, str], _Series] = {}
        # The row ids of a store's spans that are in the totals, as (first, last) runs, the first
        # from 0; kept and taken back with them, so that what a crash kept them from counting can
        # be counted after it. None when not followed.
        self.rows: list[tuple[int, int]] | None = None
        self.ingest = {"stored": 0, "duplicate": 0}
        self.rejected: dict[int, int] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def observe(self, spans: Iterable[Span], rows: range | None = None) -> None:
        """Count ``spans`` (called from the aggregation worker or the ingest path), stored
        under the row ids ``rows`` when :attr:`rows` are followed."""
        with self._lock:
            for span in spans:
                self._series_for(span.model, span.provider).add(span)
            if rows and self.rows is not None:
                self.rows = _runs([*self.rows, (rows.start, rows.stop - 1)])

    def _series_for(self, model: str, provider: str) -> _Series:
        series = self._series.get((model, provider))
        if series is None:
            key = (model, provider) if len(self._series) < _MAX_SERIES else _OTHER
            series = self._series.setdefault(key, _Series())
        return series

    def state(self) -> bytes:
        """The span totals, as JSON that :meth:`restore` takes back."""
        with self._lock:
            series = [
                _Saved(m, p, s.cost, s.tokens, s.spans, s.buckets, s.latency_sum_ms, s.latency_count)
                for (m, p), s in self._series.items()
            ]
            return msgspec.json.encode(_Kept(series, self.rows))

    def restore(self, state: bytes) -> None:
        """Start from totals a :meth:`state` gave (replacing the ones counted so far), and the
        :attr:`rows` in them (None from a version that did not keep them).

        Raises:
            ValueError: ``state`` is not what :meth:`state` gives, or was made with other
                latency buckets.
        """
        try:
            kept = msgspec.json.decode(state, type=_Kept | list[_Saved])
        except msgspec.DecodeError as exc:
            raise ValueError(f"saved counters cannot be read: {exc}") from exc
        if isinstance(kept, list):
            kept = _Kept(kept)
        series = {}
        for item in kept.series:
            if (
                len(item.buckets) != len(_BUCKETS_MS) + 1
                or set(item.tokens) != set(_TOKEN_TYPES)
                or set(item.spans) != {status.value for status in Status}
            ):
                raise ValueError("saved counters were made with other latency buckets, token types or statuses")
            one = series[(item.model, item.provider)] = _Series()
            one.cost, one.tokens, one.buckets = item.cost, item.tokens, item.buckets
            one.spans.update(item.spans)
            one.latency_sum_ms, one.latency_count = item.latency_sum_ms, item.latency_count
        with self._lock:
            self._series = series
            self.rows = kept.rows

    def count_ingest(self, stored: int, duplicate: int) -> None:
        with self._lock:
            self.ingest["stored"] += stored
            self.ingest["duplicate"] += duplicate

    def count_rejected(self, status: int) -> None:
        with self._lock:
            self.rejected[status] = self.rejected.get(status, 0) + 1

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            yield from _span_metrics(self._series)
            yield from self._ingest_metrics()
        yield from _stats_metrics(self._stats() if self._stats is not None else None)

    def _ingest_metrics(self) -> Iterator[Metric]:
        spans = CounterMetricFamily(
            "tokentrace_ingest_spans",
            "Spans received on POST /v1/spans, new or already stored.",
            labels=["result"],
        )
        for result, count in self.ingest.items():
            spans.add_metric([result], count)
        rejected = CounterMetricFamily(
            "tokentrace_ingest_rejected_requests",
            "POST /v1/spans requests refused, by HTTP status.",
            labels=["code"],
        )
        for code, count in sorted(self.rejected.items()):
            rejected.add_metric([str(code)], count)
        yield spans
        yield rejected


def _runs(runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``runs`` of row ids (first, last), sorted, with the ones that touch or overlap joined."""
    joined: list[tuple[int, int]] = []
    for first, last in sorted(runs):
        if joined and first <= joined[-1][1] + 1:
            joined[-1] = (joined[-1][0], max(joined[-1][1], last))
        else:
            joined.append((first, last))
    return joined


def _span_metrics(series: dict[tuple[str, str], _Series]) -> Iterator[Metric]:
    labels = ["model", "provider"]
    cost = CounterMetricFamily("tokentrace_cost_usd", "Cost of model calls in USD.", labels=labels)
    tokens = CounterMetricFamily(
        "tokentrace_tokens",
        "Tokens by type; prompt includes cached and cache_write, completion includes reasoning.",
        labels=[*labels, "type"],
    )
    spans = CounterMetricFamily("tokentrace_spans", "Model calls by status.", labels=[*labels, "status"])
    latency = HistogramMetricFamily("tokentrace_latency_seconds", "Model call latency.", labels=labels)
    for (model, provider), s in sorted(series.items()):
        cost.add_metric([model, provider], float(s.cost))
        for kind, count in s.tokens.items():
            tokens.add_metric([model, provider, kind], count)
        for status, count in s.spans.items():
            spans.add_metric([model, provider, status], count)
        latency.add_metric([model, provider], _cumulative(s.buckets), s.latency_sum_ms / 1000)
    yield from (cost, tokens, spans, latency)


def _cumulative(buckets: list[int]) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    total = 0
    for bound, count in zip((*[str(b) for b in LATENCY_BUCKETS_S], "+Inf"), buckets, strict=True):
        total += count
        out.append((bound, total))
    return out


def _stats_metrics(stats: dict[str, Any] | None) -> Iterator[Metric]:
    if stats is None:
        return
    queued = GaugeMetricFamily("tokentrace_transport_queued_spans", "Spans waiting in transport queues.")
    queued.add_metric([], stats.get("queued", 0))
    written = CounterMetricFamily("tokentrace_transport_written_spans", "Spans transports delivered.")
    written.add_metric([], stats.get("written", 0))
    dropped = CounterMetricFamily("tokentrace_dropped_spans", "Spans lost, by reason.", labels=["reason"])
    for reason, count in sorted(stats.get("dropped", {}).items()):
        dropped.add_metric([reason], count)
    unpriced = CounterMetricFamily("tokentrace_unpriced_spans", "Spans whose model has no known price.")
    unpriced.add_metric([], stats.get("unpriced", 0))
    yield from (queued, written, dropped, unpriced)


def render(counters: SpanCounters) -> bytes:
    """The Prometheus text exposition of ``counters``' registry; then, when ``counters`` has a
    ``keep``, their state, which is never below what the text says (totals only grow)."""
    text = generate_latest(counters.registry)
    if counters.keep is not None:
        counters.keep(counters.state())
    return text
