"""Query-string parameters of the HTTP API, checked with errors that name the parameter."""

from __future__ import annotations

from collections.abc import Mapping

from ..durations import format_duration, parse_duration
from ..windows import MAX_WINDOW

__all__ = ["QueryError", "filters", "limit_param", "window_param"]

_MAX_LIMIT = 1000
_MAX_TEXT = 1024


class QueryError(ValueError):
    """A query parameter is not acceptable; answered with 400 ``{"error": ...}``."""


def window_param(
    params: Mapping[str, str], name: str = "window", default: str = "1h", most_s: float = MAX_WINDOW
) -> tuple[float, str]:
    """A duration parameter from 1 s to ``most_s`` as (seconds, compact text such as ``"1h"``).

    Raises:
        QueryError: not a duration, shorter than 1 s, or longer than ``most_s``.
    """
    text = params.get(name, default)
    try:
        seconds = parse_duration(text, name)
    except ValueError as exc:
        raise QueryError(str(exc)) from None
    if seconds < 1:
        raise QueryError(f"{name} must be a duration of at least 1s such as '1h', got {text!r}")
    if seconds > most_s:
        raise QueryError(f"{name} must be at most {format_duration(most_s)}, got {text!r}")
    return seconds, format_duration(seconds)


def limit_param(params: Mapping[str, str], default: int = 50, most: int = _MAX_LIMIT) -> int:
    """The ``limit`` parameter: an integer from 1 to ``most``.

    Raises:
        QueryError: anything else.
    """
    text = params.get("limit")
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 9 and 1 <= int(text) <= most):
        raise QueryError(f"limit must be an integer from 1 to {most}, got {text!r}")
    return int(text)


def filters(params: Mapping[str, str]) -> dict[str, str | None]:
    """The optional ``model``, ``provider`` and ``name`` filters.

    Raises:
        QueryError: a filter is longer than 1024 characters.
    """
    out: dict[str, str | None] = {}
    for key in ("model", "provider", "name"):
        value = params.get(key)
        if value is not None and len(value) > _MAX_TEXT:
            raise QueryError(f"{key} must be at most {_MAX_TEXT} characters")
        out[key] = value
    return out
