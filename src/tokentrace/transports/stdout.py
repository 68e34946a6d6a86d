"""Print spans to stdout as JSON: indented like the seed guide, or one line per span."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from ..spans import encode_lines, encode_pretty
from .base import Transport

if TYPE_CHECKING:
    from ..spans import Span

__all__ = ["StdoutTransport"]


class StdoutTransport(Transport):
    """Writes each trace's spans to ``out`` (default ``sys.stdout``) when the trace ends.

    Example::

        tracer = tokentrace.Tracer(transport=tokentrace.StdoutTransport(compact=True))

    Args:
        compact: one JSON object per line instead of indented JSON.
        out: a text stream to write to; read at each write, so ``sys.stdout`` swaps are seen.
    """

    synchronous = True  # printed before end() returns, like the seed guide shows

    def __init__(self, *, compact: bool = False, out: TextIO | None = None) -> None:
        super().__init__()
        self._encode = encode_lines if compact else encode_pretty
        self._out = out

    def emit(self, spans: list[Span]) -> None:
        try:
            out = self._out or sys.stdout
            out.write(self._encode(spans).decode())
            out.flush()
            self.counters.written += len(spans)
        except Exception as exc:  # a closed or broken stdout must not reach the caller
            self.counters.drop("write_error", len(spans), repr(exc))
