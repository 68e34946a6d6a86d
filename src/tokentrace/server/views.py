"""The JSON bodies of the HTTP API, built from window snapshots and stored spans.

The seed's keys come first and in the seed's order (``total_usd, by_model, window,
span_count`` for cost; ``p50_ms, p95_ms, p99_ms, window`` for latency); extra keys follow.
Money stays ``Decimal`` until msgspec prints it as the shortest exact number.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import msgspec

from ..durations import format_duration
from ..spans import Span, exact, format_timestamp, parse_timestamp, to_wire
from ..store.base import TraceSummary, summarize

__all__ = [
    "cost_view",
    "encode",
    "errors_view",
    "latency_view",
    "timeseries_view",
    "tokens_view",
    "trace_detail",
    "trace_summary",
    "wire_spans",
]

_encoder = msgspec.json.Encoder(decimal_format="number", enc_hook=str)
_COLUMNS = (
    "cost_usd",
    "span_count",
    "error_count",
    "prompt_tokens",
    "comp_tokens",
    "total_tokens",
    "p50_ms",
    "p95_ms",
    "p99_ms",
)
_POINT_KEYS = {"cost_usd": "cost", "p50_ms": "latency_p50", "p95_ms": "latency_p95", "p99_ms": "latency_p99"}


def encode(content: Any) -> bytes:
    """JSON with Decimals as exact numbers and structs in field order."""
    return _encoder.encode(content)


def _ms(value: float | None) -> float | int | None:
    """Milliseconds as the seed prints them: ``820`` when whole, else to 0.01 ms."""
    if value is None:
        return None
    rounded = round(value, 2)
    return int(rounded) if rounded == int(rounded) else rounded


def _filters(snap: Any) -> dict[str, str]:
    return {k: v for k, v in (("model", snap.model), ("provider", snap.provider), ("name", snap.name)) if v}


def cost_view(snap: Any, window: str) -> dict[str, Any]:
    """``/metrics/cost``: seed keys, then ``by_provider``, ``error_count``, ``unpriced_count``
    and the filters. A model (or provider) none of whose spans had a price costs ``null``."""
    return {
        "total_usd": exact(snap.total_cost),
        "by_model": {m: _money(c) for m, c in snap.cost_by_model.items()},
        "window": window,
        "span_count": snap.span_count,
        "by_provider": {p: _money(c) for p, c in snap.cost_by_provider.items()},
        "error_count": snap.error_count,
        "unpriced_count": snap.unpriced_count,
        "filters": _filters(snap),
    }


def _money(cost: Decimal | None) -> Decimal | None:
    return None if cost is None else exact(cost)


def latency_view(snap: Any, window: str) -> dict[str, Any]:
    """``/metrics/latency``: seed keys, then ``avg_ms``, ``span_count`` and the filters."""
    return {
        "p50_ms": _ms(snap.latency_p50),
        "p95_ms": _ms(snap.latency_p95),
        "p99_ms": _ms(snap.latency_p99),
        "window": window,
        "avg_ms": _ms(snap.latency_avg),
        "span_count": snap.span_count,
        "filters": _filters(snap),
    }


def tokens_view(snap: Any, window: str) -> dict[str, Any]:
    """``/metrics/tokens``: token sums over the window."""
    return {
        "prompt_tokens": snap.prompt_tokens,
        "comp_tokens": snap.comp_tokens,
        "total_tokens": snap.total_tokens,
        "window": window,
        "span_count": snap.span_count,
        "filters": _filters(snap),
    }


def errors_view(snap: Any, window: str) -> dict[str, Any]:
    """``/metrics/errors``: failed calls over the window and their share."""
    return {
        "error_count": snap.error_count,
        "error_rate": snap.error_rate,
        "window": window,
        "span_count": snap.span_count,
        "filters": _filters(snap),
    }


def timeseries_view(
    overall: list[dict[str, Any]], per_model: dict[str, list[dict[str, Any]]], window: str, step: str
) -> dict[str, Any]:
    """``/metrics/timeseries``: one column per metric, for all spans and for each model.

    ``step`` is reported as the aggregator used it (aligned to its buckets).
    """
    if len(overall) > 1:
        step = format_duration((parse_timestamp(overall[1]["start"]) - parse_timestamp(overall[0]["start"])) / 1000)
    return {
        "window": window,
        "step": step,
        "timestamps": [point["start"] for point in overall],
        "total": _columns(overall),
        "models": {model: _columns(points) for model, points in per_model.items()},
    }


def _columns(points: list[dict[str, Any]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for column in _COLUMNS:
        key = _POINT_KEYS.get(column, column)
        values = [point[key] for point in points]
        out[column] = [_ms(v) for v in values] if column.endswith("_ms") else values
    return out


def trace_summary(t: TraceSummary) -> dict[str, Any]:
    """One row of ``/traces``."""
    return {
        "trace_id": t.trace_id,
        "name": t.name,
        "started_at": format_timestamp(t.started_at),
        "ended_at": format_timestamp(t.ended_at),
        "duration_ms": t.ended_at - t.started_at,
        "span_count": t.span_count,
        "error_count": t.error_count,
        "prompt_tokens": t.prompt_tokens,
        "comp_tokens": t.comp_tokens,
        "total_tokens": t.prompt_tokens + t.comp_tokens,
        "cost_usd": None if t.cost_usd is None else exact(t.cost_usd),
        "models": t.models,
    }


def wire_spans(spans: Sequence[Span]) -> list[dict[str, Any]]:
    """Spans in the wire format of DESIGN §2 (costs in their shortest exact form)."""
    out = []
    for span in spans:
        wire = to_wire(span)
        if wire.get("cost_usd") is not None:
            wire["cost_usd"] = exact(wire["cost_usd"])
        out.append(wire)
    return out


def trace_detail(trace_id: str, spans: Sequence[Span]) -> dict[str, Any]:
    """``/traces/{trace_id}``: the trace's summary, then its spans in start order."""
    out = trace_summary(summarize(trace_id, spans))
    out["spans"] = wire_spans(spans)
    return out
