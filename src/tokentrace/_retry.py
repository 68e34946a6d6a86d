"""Retry timing shared by everything that posts over HTTP (span batches, alert webhooks)."""

from __future__ import annotations

import email.utils
import random
import time

__all__ = ["backoff_delay", "retry_after"]

_MAX_BACKOFF_S = 30.0


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), if valid."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def backoff_delay(base: float, attempt: int, cap: float = _MAX_BACKOFF_S) -> float:
    """Exponential backoff with jitter: ``base * 2**attempt`` (at most ``cap``), halved at random,
    so many senders retrying at once spread out."""
    ceiling = min(cap, base * 2**attempt)
    return random.uniform(ceiling / 2, ceiling)
