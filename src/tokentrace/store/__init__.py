"""Span stores: where the HTTP app keeps spans (in memory, or durably in SQLite)."""

from .base import SpanStore, StoreBusyError, StoreError, TraceSummary, summarize
from .memory import MemoryStore
from .sqlite import SQLiteStore

__all__ = [
    "MemoryStore",
    "SQLiteStore",
    "SpanStore",
    "StoreBusyError",
    "StoreError",
    "TraceSummary",
    "summarize",
]
