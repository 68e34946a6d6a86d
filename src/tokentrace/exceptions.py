"""Exceptions tokentrace raises, all under :class:`TokentraceError`."""

from __future__ import annotations

__all__ = ["ConfigError", "TokentraceError"]


class TokentraceError(Exception):
    """Base class of every error tokentrace raises on purpose."""


class ConfigError(TokentraceError, ValueError):
    """A configuration value is not acceptable; the message names the field and what is."""
