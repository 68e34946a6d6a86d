"""Window snapshots and the metric values computed from a query's running sums."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec

from ..durations import DurationLike, format_duration, parse_duration
from ..spans import format_timestamp
from .aggregates import _Acc, _dollars
from .buckets import MAX_WINDOW, Key
from .sketch import LatencySketch

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
Value = Decimal | int | float | None


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
    Costs add up the spans that have one; ``unpriced_count`` spans have none (their model has no
    known price), and a model or provider none of whose spans has one costs ``None``, not 0.
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
    unpriced_count: int
    latency_p50: float | None
    latency_p95: float | None
    latency_p99: float | None
    latency_avg: float | None
    cost_by_model: dict[str, Decimal | None]
    cost_by_provider: dict[str, Decimal | None]

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
        out["unpriced_count"] = self.unpriced_count
        out["cost_by_model"] = {k: _number(v) for k, v in self.cost_by_model.items()}
        out["cost_by_provider"] = {k: _number(v) for k, v in self.cost_by_provider.items()}
        return out


def _metrics(acc: _Acc) -> dict[str, Value]:
    p50 = p95 = p99 = None
    if acc.sketch is not None:
        p50, p95, p99 = acc.sketch.quantiles((0.5, 0.95, 0.99))
    return {
        "total_cost": _dollars(acc.cost),
        "unpriced_count": acc.count - acc.priced,
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


def _by_cost(sums: dict[str, list[int]]) -> dict[str, Decimal | None]:
    """Costs largest first; ``None`` (after the others) for a label none of whose spans was priced."""
    ranked = sorted(sums.items(), key=lambda item: (-item[1][0], not item[1][2], item[0]))
    return {label: _dollars(units) if priced else None for label, (units, _, priced) in ranked}


def _tally(table: dict[str, list[int]], label: str, units: int, count: int, priced: int) -> None:
    """Add a combination's cost units, span count and priced span count to its label's."""
    entry = table.get(label)
    if entry is None:
        table[label] = [units, count, priced]
    else:
        entry[0] += units
        entry[1] += count
        entry[2] += priced


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
