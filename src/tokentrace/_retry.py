"""Retry timing shared by everything that posts over HTTP (span batches, alert webhooks)."""

from __future__ import annotations

import email.utils
import math
import random
import time

__all__ = ["backoff_delay", "retry_after", "retry_delay"]

_MAX_BACKOFF_S = 30.0


def retry_delay(retry_after_header: str | None, base: float, attempt: int) -> float:
    """Seconds to wait before the next attempt: the backoff, or longer if the server's
    ``Retry-After`` asks for more (a shorter one, even ``0``, does not hurry a server that keeps
    refusing)."""
    return max(retry_after(retry_after_header) or 0.0, backoff_delay(base, attempt))


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), if valid."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
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
