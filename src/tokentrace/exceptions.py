"""Exceptions tokentrace raises, all under :class:`TokentraceError`."""

from __future__ import annotations

__all__ = ["ConfigError", "StoreBusyError", "StoreError", "TokentraceError"]


class TokentraceError(Exception):
    """Base class of every error tokentrace raises on purpose."""


class ConfigError(TokentraceError, ValueError):
    """A configuration value is not acceptable; the message names the field and what is."""


class StoreError(TokentraceError):
    """The store could not keep or read spans (disk full, database closed, schema too new)."""


class StoreBusyError(StoreError):
    """Too many spans are waiting to be written; the caller should retry later."""
