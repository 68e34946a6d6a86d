"""Alert rules: a metric over a window compared with a threshold, and where to send the alert.

An :class:`AlertRule` is validated when it is built, so a bad rule fails at startup with a
message naming the field and the accepted values, never later on the worker. :func:`load_rules`
reads the same rules from the ``[[alerts]]`` tables of a TOML file (``tokentrace.toml``).
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import os
import sys
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from ..durations import DurationLike, format_duration, parse_duration
from ..spans import Span, exact
from ..windows import MAX_WINDOW, METRICS
from .deliveries import CallbackDelivery, Delivery, HTTPDelivery, StdoutDelivery

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

__all__ = ["LEVELS", "AlertRule", "Op", "load_rules"]

LEVELS = ("info", "warning", "error", "critical")
"""The accepted ``AlertRule.level`` values."""

_FILTER_KEYS = ("model", "provider", "name")
_OPS_TEXT = "Op.GT or '>', Op.GE or '>=', Op.LT or '<', Op.LE or '<='"


class Op(str, enum.Enum):
    """How a metric is compared with the threshold; a ``str`` so ``Op.GT == ">"``."""

    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="

    def __str__(self) -> str:
        return self.value

    def holds(self, value: Decimal | float | int, threshold: Decimal) -> bool:
        """Whether ``value <op> threshold``; a float (a rate, a latency) as the decimal it
        prints as, so that 1 error in 10 calls is exactly ``0.1``."""
        if type(value) is float:
            value = Decimal(repr(value))
        return _COMPARE[self](value, threshold)


_COMPARE: dict[Op, Callable[[Any, Any], bool]] = {
    Op.GT: lambda v, t: v > t,
    Op.GE: lambda v, t: v >= t,
    Op.LT: lambda v, t: v < t,
    Op.LE: lambda v, t: v <= t,
}


class AlertRule:
    """Alert when ``metric`` over the last ``window`` compares to ``threshold`` with ``op``.

    Example::

        AlertRule(
            name="hourly-cost-spike", metric="total_cost", op=Op.GT, threshold=5.00,
            window="1h", delivery=StdoutDelivery(),
        )

    Args:
        name: names the alert in notifications.
        metric: one of ``total_cost``, ``span_count``, ``error_count``, ``error_rate``,
            ``prompt_tokens``, ``comp_tokens``, ``total_tokens``, ``latency_p50``,
            ``latency_p95``, ``latency_p99``, ``latency_avg``.
        op: an :class:`Op` or its text (``">"``, ``">="``, ``"<"``, ``"<="``).
        threshold: USD for ``total_cost``, ms for latencies, a fraction (0-1) for
            ``error_rate``, a count otherwise.
        window: how far back the metric looks: a ``timedelta``, seconds, or ``"1h"``-style
            text, from 1 s to 30 days.
        delivery: where notifications go (:class:`StdoutDelivery`, :class:`HTTPDelivery`,
            :class:`CallbackDelivery`, or a plain callable taking the payload dict).
        for_: how long the condition must hold before the alert fires (pending until then).
        cooldown: while firing, the least time between two notifications.
        keep_firing_for: how long the alert keeps firing after the condition clears.
        level: one of ``info``, ``warning``, ``error``, ``critical``.
        filters: only spans with these labels: keys ``model``, ``provider``, ``name``.
        notify_resolved: send a notification when a firing alert resolves.

    Raises:
        ValueError: a field is missing or not acceptable; the message names it and lists
            what is accepted.
    """

    __slots__ = (
        "cooldown",
        "delivery",
        "filters",
        "fingerprint",
        "for_",
        "keep_firing_for",
        "level",
        "metric",
        "name",
        "notify_resolved",
        "op",
        "threshold",
        "window",
    )

    def __init__(
        self,
        name: str,
        metric: str,
        op: Op | str,
        threshold: float | int | Decimal,
        window: DurationLike,
        delivery: Delivery | Callable[[dict[str, Any]], object] | None = None,
        for_: DurationLike = 0,
        cooldown: DurationLike = "1h",
        keep_firing_for: DurationLike = 0,
        level: str = "warning",
        filters: Mapping[str, str] | None = None,
        notify_resolved: bool = True,
    ) -> None:
        self.name = _check_name(name)
        self.metric = _check_metric(metric)
        self.op = _check_op(op)
        self.threshold = _check_threshold(threshold, self.metric)
        self.window = _check_window(window)
        self.delivery = _check_delivery(delivery)
        self.for_ = parse_duration(for_, "AlertRule.for_")
        self.cooldown = _check_cooldown(cooldown)
        self.keep_firing_for = parse_duration(keep_firing_for, "AlertRule.keep_firing_for")
        self.level = _check_level(level)
        self.filters = _check_filters(filters)
        if not isinstance(notify_resolved, bool):
            raise ValueError(f"AlertRule.notify_resolved must be True or False, got {notify_resolved!r}")
        self.notify_resolved = notify_resolved
        self.fingerprint = self._fingerprint()

    def _fingerprint(self) -> str:
        identity = [
            self.name,
            self.metric,
            self.op.value,
            str(exact(self.threshold)),  # 5, 5.0 and "5.00" are one threshold
            self.window,
            sorted(self.filters.items()),
        ]
        return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]

    def condition(self, value: Decimal | float | int | None) -> bool:
        """Whether the metric value trips the rule (a missing value never does)."""
        return value is not None and self.op.holds(value, self.threshold)

    def matches(self, span: Span) -> bool:
        """Whether a span passes the rule's filters."""
        return all(getattr(span, key) == value for key, value in self.filters.items())

    def query(self) -> dict[str, str]:
        """The filters as keyword arguments of ``WindowAggregator.metric``."""
        return dict(self.filters)

    def to_dict(self) -> dict[str, Any]:
        """The rule as JSON-ready values (durations in compact text)."""
        return {
            "name": self.name,
            "metric": self.metric,
            "op": self.op.value,
            "threshold": float(self.threshold),
            "window": format_duration(self.window),
            "for": format_duration(self.for_),
            "cooldown": format_duration(self.cooldown),
            "keep_firing_for": format_duration(self.keep_firing_for),
            "level": self.level,
            "filters": dict(self.filters),
            "notify_resolved": self.notify_resolved,
            "delivery": self.delivery.describe(),
            "fingerprint": self.fingerprint,
        }

    def __repr__(self) -> str:
        return (
            f"AlertRule(name={self.name!r}, metric={self.metric!r}, op={self.op.value!r}, "
            f"threshold={self.threshold}, window={format_duration(self.window)!r})"
        )


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"AlertRule.name must be a non-empty str, got {name!r}")
    return name


def _check_metric(metric: object) -> str:
    if metric not in METRICS:
        raise ValueError(f"AlertRule.metric must be one of {', '.join(METRICS)}; got {metric!r}")
    return str(metric)


def _check_op(op: object) -> Op:
    try:
        return Op(op)
    except ValueError:
        raise ValueError(f"AlertRule.op must be one of {_OPS_TEXT}; got {op!r}") from None


def _check_threshold(threshold: object, metric: str) -> Decimal:
    if isinstance(threshold, float) and math.isfinite(threshold):
        value = Decimal(repr(threshold))
    elif isinstance(threshold, int) and not isinstance(threshold, bool):
        value = Decimal(threshold)
    elif isinstance(threshold, Decimal) and threshold.is_finite():
        value = threshold
    else:
        raise ValueError(f"AlertRule.threshold must be a finite number (int, float or Decimal), got {threshold!r}")
    if value < 0:
        raise ValueError(f"AlertRule.threshold must be >= 0 (metrics are never negative), got {threshold!r}")
    if metric == "error_rate" and value > 1:
        raise ValueError(
            f"AlertRule.threshold for error_rate is a fraction from 0 to 1 (0.05 for 5%), got {threshold!r}"
        )
    return value


def _check_window(window: object) -> float:
    seconds = parse_duration(window, "AlertRule.window")  # type: ignore[arg-type]
    if not 1 <= seconds <= MAX_WINDOW:
        raise ValueError(f"AlertRule.window must be from 1s to 30d (e.g. '90s', '15m', '1h', '7d'), got {window!r}")
    return seconds


def _check_cooldown(cooldown: object) -> float:
    seconds = parse_duration(cooldown, "AlertRule.cooldown")  # type: ignore[arg-type]
    if seconds < 1:
        raise ValueError(f"AlertRule.cooldown must be at least 1s (e.g. '15m', '1h'), got {cooldown!r}")
    return seconds


def _check_delivery(delivery: object) -> Delivery:
    if isinstance(delivery, Delivery):
        return delivery
    if callable(delivery):
        return CallbackDelivery(delivery)
    raise ValueError(
        "AlertRule.delivery is required: StdoutDelivery(), HTTPDelivery(url), CallbackDelivery(fn) "
        f"or a callable taking the payload; got {delivery!r}"
    )


def _check_level(level: object) -> str:
    if level not in LEVELS:
        raise ValueError(f"AlertRule.level must be one of {', '.join(LEVELS)}; got {level!r}")
    return str(level)


def _check_filters(filters: object) -> dict[str, str]:
    if filters is None:
        return {}
    if not isinstance(filters, Mapping):
        raise ValueError(f"AlertRule.filters must be a mapping with keys {', '.join(_FILTER_KEYS)}; got {filters!r}")
    unknown = [key for key in filters if key not in _FILTER_KEYS]
    if unknown:
        raise ValueError(f"AlertRule.filters keys must be among {', '.join(_FILTER_KEYS)}; got {unknown!r}")
    for key, value in filters.items():
        if not isinstance(value, str) or not value:
            raise ValueError(f"AlertRule.filters[{key!r}] must be a non-empty str, got {value!r}")
    return {key: filters[key] for key in _FILTER_KEYS if key in filters}


# --- TOML ---------------------------------------------------------------------------------------

_TABLE_KEYS = (
    "name",
    "metric",
    "op",
    "threshold",
    "window",
    "delivery",
    "webhook",
    "headers",
    "secret",
    "secret_env",
    "timeout",
    "for",
    "cooldown",
    "keep_firing_for",
    "level",
    "filters",
    "notify_resolved",
)
_OPTIONAL = ("cooldown", "keep_firing_for", "level", "filters", "notify_resolved")


def load_rules(source: str | os.PathLike[str] | Mapping[str, Any]) -> list[AlertRule]:
    """Rules from the ``[[alerts]]`` tables of a TOML file, or of an already parsed document.

    Example ``tokentrace.toml``::

        [[alerts]]
        name = "hourly-cost-spike"
        metric = "total_cost"
        op = ">"
        threshold = 5.0
        window = "1h"
        delivery = "stdout"            # or: webhook = "https://hooks.example.com/tt"

    A webhook table may also set ``headers``, ``secret`` (or ``secret_env``, the name of an
    environment variable holding it) and ``timeout``; any rule may set ``for``, ``cooldown``,
    ``keep_firing_for``, ``level``, ``filters`` and ``notify_resolved``.

    Raises:
        ValueError: a table is not a valid rule; the message names the table and the field.
        OSError: the file cannot be read.
    """
    if isinstance(source, Mapping):
        document: Mapping[str, Any] = source
    else:
        with open(source, "rb") as file:
            document = tomllib.load(file)
    tables = document.get("alerts", [])
    if not isinstance(tables, list) or not all(isinstance(t, Mapping) for t in tables):
        raise ValueError("alerts must be an array of tables ([[alerts]] in TOML)")
    return [_rule_from_table(table, f"alerts[{i}]") for i, table in enumerate(tables)]


def _rule_from_table(table: Mapping[str, Any], where: str) -> AlertRule:
    unknown = sorted(set(table) - set(_TABLE_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; accepted: {', '.join(_TABLE_KEYS)}")
    try:
        options = {key: table[key] for key in _OPTIONAL if key in table}
        return AlertRule(
            table.get("name"),  # type: ignore[arg-type]
            table.get("metric"),  # type: ignore[arg-type]
            table.get("op"),  # type: ignore[arg-type]
            table.get("threshold"),  # type: ignore[arg-type]
            table.get("window"),  # type: ignore[arg-type]
            _delivery_from_table(table),
            for_=table.get("for", 0),
            **options,
        )
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _delivery_from_table(table: Mapping[str, Any]) -> Delivery:
    delivery, webhook = table.get("delivery"), table.get("webhook")
    if (delivery is None) == (webhook is None):
        raise ValueError('set exactly one of delivery = "stdout" or webhook = "https://..."')
    if delivery is not None:
        if delivery != "stdout":
            raise ValueError(f'delivery must be "stdout" (use webhook = "https://..." for HTTP), got {delivery!r}')
        return StdoutDelivery()
    secret = table.get("secret")
    if "secret_env" in table:
        secret = os.environ.get(table["secret_env"])
        if not secret:
            raise ValueError(f"secret_env names {table['secret_env']!r}, which is not set in the environment")
    return HTTPDelivery(
        table["webhook"], headers=table.get("headers"), secret=secret, timeout=table.get("timeout", 10.0)
    )
