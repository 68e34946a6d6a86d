"""The transport interface: where recorded spans go.

A transport's ``emit(spans)`` is called on the caller's thread when a trace ends; it must never
raise and never wait on the network. Local sinks (stdout, a file) write at once; network sinks
subclass :class:`BatchingTransport`, which queues spans for a background worker.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._worker import BatchWorker, Counters

if TYPE_CHECKING:
    from .._fork import PerProcess
    from ..spans import Span

__all__ = ["BatchingTransport", "PostingTransport", "Transport", "check_header_value", "check_headers", "halves"]

_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"(?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?")


class Transport:
    """Base class: count what was written and dropped; subclasses implement :meth:`emit`.

    A ``synchronous`` transport's ``emit`` runs on the caller's thread when a trace ends (it
    must be fast: stdout, memory); the others' runs on the tracer's pipeline worker thread, and
    must not wait on the network (queue there, as :class:`BatchingTransport` does).
    """

    synchronous = False

    def __init__(self) -> None:
        self.counters = Counters()

    def emit(self, spans: list[Span]) -> None:
        raise NotImplementedError

    @property
    def queued(self) -> int:
        return 0

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def shutdown(self, timeout: float | None = None) -> bool:
        return self.flush(timeout)


class BatchingTransport(Transport):
    """A transport whose ``export(batch)`` runs on a named daemon worker.

    Args:
        name: the worker thread's name, ``tokentrace.<role>``.
        max_queue: spans held at most; past it the newest are dropped and counted.
        max_batch: spans handed to ``export`` at once.
        interval: seconds between exports when the queue is not full.
    """

    def __init__(self, name: str, *, max_queue: int = 10_000, max_batch: int = 512, interval: float = 1.0) -> None:
        super().__init__()
        self._worker: BatchWorker[Span] = BatchWorker(
            name, self.export, max_queue=max_queue, max_batch=max_batch, interval=interval, counters=self.counters
        )

    def emit(self, spans: list[Span]) -> None:
        self._worker.put_many(spans)

    def export(self, batch: list[Span]) -> None:
        raise NotImplementedError

    @property
    def queued(self) -> int:
        return self._worker.queued

    def flush(self, timeout: float | None = None) -> bool:
        return self._worker.flush(timeout)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Stop the worker; a batch still being sent when ``timeout`` runs out is counted lost
        (``shutdown_in_flight``) until its send ends, as at interpreter exit it never does. A send
        that then fails (the shutdown closed what it was using) is not counted again."""
        return self._worker.shutdown(timeout)


class PostingTransport(BatchingTransport):
    """A :class:`BatchingTransport` that POSTs its batches with the HTTP client ``_client`` (one per
    process, which the subclass makes), each batch within one deadline: :meth:`_send` posts a part
    of it, and gives back the parts a refusal asks to send instead (the :func:`halves` of one too
    large)."""

    _client: PerProcess[Any]

    def _send_all(self, items: list[Any], seconds: float) -> None:
        """Send ``items`` and what :meth:`_send` gives back, within ``seconds`` in all."""
        until = time.monotonic() + seconds
        parts = [items]
        while parts:
            parts += self._send(parts.pop(), until)

    def _send(self, items: list[Any], until: float) -> list[list[Any]]:
        """POST ``items`` before ``until`` (a ``time.monotonic()`` time), counting what became of
        them; the parts still to send."""
        raise NotImplementedError

    def shutdown(self, timeout: float | None = None) -> bool:
        done = super().shutdown(timeout)
        client = self._client.made()
        if client is not None:
            client.close()
        return done


def halves(items: list[Any]) -> list[list[Any]]:
    """A batch too large (a 413) as two parts, the first half to be sent first."""
    half = len(items) // 2
    return [items[half:], items[:half]]  # parts are taken from the end


def check_header_value(value: object, where: str) -> str:
    """``value`` once HTTP/1.1 carries it as a header value as it is (httpx would refuse it at
    send time, every batch, as if the connection had failed).

    Raises:
        ValueError: naming ``where``, never showing the value (an API key, often).
    """
    if not isinstance(value, str) or not _HEADER_VALUE.fullmatch(value):
        raise ValueError(
            f"{where} must be printable ASCII text without a space or line break at either end "
            "(a secret read from a file keeps its newline: strip it)"
        )
    return value


def check_headers(headers: object, where: str) -> dict[str, str]:
    """``headers`` as a dict, once each name and value is one HTTP carries.

    Raises:
        ValueError: a name or value it does not carry; the message names the header, never
            its value.
    """
    if not isinstance(headers, Mapping):
        raise ValueError(f"{where} must map header names to values, got {type(headers).__name__}")
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"{where}: {name!r} is not an HTTP header name")
        check_header_value(value, f"{where}[{name!r}]")
    return dict(headers)
