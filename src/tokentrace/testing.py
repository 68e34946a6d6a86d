"""Helpers for testing code that uses tokentrace: keep spans in memory and look at them.

Example::

    from tokentrace.testing import capture_spans

    with capture_spans() as (tracer, spans):
        with tracer.trace("job") as t:
            t.record(tokentrace.Span(model="gpt-4o", provider="openai", prompt_tokens=1))
    assert spans[0].model == "gpt-4o"
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import _fork
from .spans import Span
from .tracer import Tracer
from .transports.base import Transport

__all__ = ["InMemoryTransport", "capture_spans"]


class InMemoryTransport(Transport):
    """Keeps every emitted span in :attr:`spans`, in order, as soon as its trace ends."""

    synchronous = True

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[Span] = []
        self._lock = _fork.lock()

    def emit(self, spans: list[Span]) -> None:
        with self._lock:
            self.spans.extend(spans)
            self.counters.written += len(spans)

    def clear(self) -> None:
        with self._lock:
            self.spans.clear()


@contextmanager
def capture_spans(**tracer_args: Any) -> Iterator[tuple[Tracer, list[Span]]]:
    """A tracer whose spans land in the yielded list; closed on exit."""
    transport = InMemoryTransport()
    tracer = Tracer(transport=transport, **tracer_args)
    try:
        yield tracer, transport.spans
    finally:
        tracer.close()
