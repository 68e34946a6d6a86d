"""Compact durations: ``"90s"``, ``"15m"``, ``"1h30m"``, ``"7d"`` in, seconds out, and back.

Alert rules, metric windows and the HTTP query strings all take a duration as a ``timedelta``,
a number of seconds, or a compact string made of ``<number><unit>`` parts with the units
``ms``, ``s``, ``m``, ``h``, ``d`` and ``w`` (the Prometheus spelling). :func:`format_duration`
prints seconds back in the same compact form, largest unit first.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

__all__ = ["DurationLike", "format_duration", "parse_duration"]

DurationLike = timedelta | int | float | str
"""What a duration argument accepts: a ``timedelta``, seconds, or a compact string."""

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_TEXT = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_ACCEPTED = "a timedelta, a number of seconds, or a string such as '90s', '15m', '1h30m', '7d', '500ms'"
_PRINT_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1))


def parse_duration(value: DurationLike, field: str = "duration") -> float:
    """Read a duration as seconds.

    Args:
        value: a ``timedelta``, a non-negative number of seconds, or a compact string
            (``"90s"``, ``"15m"``, ``"1h30m"``, ``"7d"``, ``"500ms"``; a bare ``"90"`` is seconds).
        field: the name used in the error message (``"window"``, ``"AlertRule.for_"``...).

    Returns:
        The duration in seconds, a finite float ``>= 0``.

    Raises:
        ValueError: the value is negative, not finite, or not one of the accepted forms.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value, field)
    else:
        raise ValueError(f"{field} must be {_ACCEPTED}; got {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{field} must be a non-negative duration ({_ACCEPTED}); got {value!r}")
    return seconds


def _parse_text(value: str, field: str) -> float:
    text = value.strip().lower()
    if text.startswith("-"):
        raise ValueError(f"{field} must be a non-negative duration ({_ACCEPTED}); got {value!r}")
    if _NUMBER.fullmatch(text):
        return float(text)
    if not _TEXT.fullmatch(text):
        raise ValueError(f"{field} must be {_ACCEPTED}; got {value!r}")
    return sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(text))


def format_duration(seconds: float) -> str:
    """Print seconds compactly, largest unit first: ``3600 -> "1h"``, ``5400 -> "1h30m"``,
    ``90 -> "1m30s"``, ``0.5 -> "500ms"``, ``0 -> "0s"``. Precision is one millisecond.

    Raises:
        ValueError: ``seconds`` is negative or not finite.
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration must be a finite number of seconds >= 0, got {seconds!r}")
    millis = round(seconds * 1000)
    parts = []
    for unit, size in _PRINT_UNITS:
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
