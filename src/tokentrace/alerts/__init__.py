"""Alerts: rules over the metric windows, a Prometheus-style state machine, and deliveries.

Example::

    from tokentrace.alerts import AlertRule, Op, StdoutDelivery

    rule = AlertRule(name="hourly-cost-spike", metric="total_cost", op=Op.GT, threshold=5.00,
                     window="1h", delivery=StdoutDelivery())
"""

from __future__ import annotations

from .deliveries import (
    SIGNATURE_HEADER,
    CallbackDelivery,
    Delivery,
    DeliveryOutcome,
    HTTPDelivery,
    StdoutDelivery,
    verify_signature,
)
from .engine import AlertEngine, AlertState
from .rules import LEVELS, AlertRule, Op, load_rules

__all__ = [
    "LEVELS",
    "SIGNATURE_HEADER",
    "AlertEngine",
    "AlertRule",
    "AlertState",
    "CallbackDelivery",
    "Delivery",
    "DeliveryOutcome",
    "HTTPDelivery",
    "Op",
    "StdoutDelivery",
    "load_rules",
    "verify_signature",
]
