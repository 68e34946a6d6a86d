"""The one background worker every queue in tokentrace uses.

Modelled on OpenTelemetry's batch processor: a bounded deque the caller appends to (never
blocking, dropping the newest item when full and counting it), an ``Event`` that wakes a named
daemon thread started lazily on first use, ``flush(timeout) -> bool``, ``shutdown(timeout)``,
and a fresh, empty queue and thread in a child process after ``os.fork()``.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterable
from typing import Generic, TypeVar

from . import _fork

T = TypeVar("T")

_log = logging.getLogger(__name__)
_LOG_EVERY_S = 20.0
_IN_FLIGHT = "shutdown_in_flight"


def deadline(timeout: float | None) -> float | None:
    """The ``time.monotonic()`` time ``timeout`` seconds from now; None (no limit) for None."""
    return None if timeout is None else time.monotonic() + timeout


def left(deadline: float | None) -> float | None:
    """Seconds left until ``deadline`` (see :func:`deadline`), never negative; None for no limit."""
    return None if deadline is None else max(deadline - time.monotonic(), 0.0)


class Counters:
    """Thread-safe-enough counters (``+=`` under the GIL on dict items is fine for stats)."""

    def __init__(self) -> None:
        self.written = 0
        self.dropped: dict[str, int] = collections.defaultdict(int)
        self._last_log: dict[str, float] = {}

    def drop(self, reason: str, count: int = 1, detail: object = None) -> None:
        """Count lost items and log at most one line per reason every 20 s."""
        self.dropped[reason] += count
        now = time.monotonic()
        last = self._last_log.get(reason)
        if last is None or now - last >= _LOG_EVERY_S:
            self._last_log[reason] = now
            _log.warning("tokentrace dropped %d item(s): %s%s", count, reason, f" ({detail})" if detail else "")

    def take_back(self, reason: str, count: int) -> None:
        """Uncount items counted lost that were not lost after all."""
        left = self.dropped.pop(reason, 0) - count
        if left:
            self.dropped[reason] = left


class BatchWorker(Generic[T]):
    """Runs ``handler(batch)`` on a daemon thread for items put from any thread.

    Example::

        worker = BatchWorker("tokentrace.http", send_batch, max_queue=10_000, max_batch=500)
        worker.put(item)          # never blocks, never raises
        worker.flush(timeout=5)   # True once everything put so far is handled

    Lost items are counted in ``counters`` by reason, each as ``weigh(item)`` (the spans it
    holds; 1 by default), and the reasons start with ``reason_prefix`` (``"alert_"`` for
    notifications, so that they are not counted as lost spans).
    """

    def __init__(
        self,
        name: str,
        handler: Callable[[list[T]], None],
        *,
        max_queue: int = 10_000,
        max_batch: int = 512,
        interval: float = 1.0,
        counters: Counters | None = None,
        weigh: Callable[[T], int] | None = None,
        reason_prefix: str = "",
    ) -> None:
        if max_queue < 1 or max_batch < 1:
            raise ValueError("max_queue and max_batch must be at least 1")
        self.name = name
        self._handler = handler
        self._max_queue = max_queue
        self._max_batch = max_batch
        self._interval = interval
        self.counters = counters or Counters()
        self._weigh = weigh
        self._prefix = reason_prefix
        self._reset()
        _workers.add(self)  # type: ignore[arg-type]  # the set holds workers of any item type

    def _reset(self) -> None:
        self._queue: collections.deque[T] = collections.deque()
        self._wake = threading.Event()
        self._done = _fork.condition()
        self._put = 0  # items accepted
        self._handled = 0  # items handed to the handler and returned
        self._thread: threading.Thread | None = None
        self._taken: list[T] = []  # the batch the handler has
        self._given_up = 0  # what a shutdown counted lost of it, until the handler returns
        self._stopping = False
        self._room = self._max_queue  # what put() may still fill: 0 once stopping
        self._pid = os.getpid()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def put(self, item: T) -> None:
        """Queue ``item``; when it cannot be, count it lost (as what it weighs: its spans)."""
        queue = self._queue
        size = len(queue)
        if size >= self._room:
            self._drop("closed" if self._stopping else "queue_full", self._weight((item,)))
            return
        queue.append(item)
        self._put += 1
        if self._thread is None:
            self._start()
        if size >= self._max_batch - 1 and not self._wake.is_set():  # a batch is full: one wake is enough
            self._wake.set()

    def put_many(self, items: Iterable[T]) -> None:
        for item in items:
            self.put(item)

    def _start(self) -> bool:
        """Start the thread once; False when the interpreter refuses (it is shutting down)."""
        with _start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                try:
                    thread.start()
                except RuntimeError:
                    return False
                self._thread = thread
        return True

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            self._drain()
            if self._stopping and not self._queue:
                return

    def _drain(self) -> None:
        while batch := self._take():
            failed: Exception | None = None
            try:
                self._handler(batch)
            except Exception as exc:  # a handler bug must not kill the worker
                failed = exc
            with self._done:
                self._settle(failed)
                self._handled += len(batch)
                self._done.notify_all()

    def _take(self) -> list[T]:
        """The next batch, the handler's from the same step on: a shutdown finds each item
        queued or taken, never neither."""
        with self._done:
            queue = self._queue
            self._taken = [queue.popleft() for _ in range(min(self._max_batch, len(queue)))]
            return self._taken

    def _settle(self, failed: Exception | None) -> None:
        """After the handler: a batch a shutdown counted lost, handled after all, is taken back
        (the handler counted what became of it); one that failed stays lost."""
        batch, given_up = self._taken, self._given_up
        self._taken, self._given_up = [], 0
        if given_up and failed is None:
            self.counters.take_back(self._prefix + _IN_FLIGHT, given_up)
        elif failed is not None and not given_up:
            self._drop("handler_error", self._weight(batch), repr(failed))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every item put before this call has been handled.

        Returns:
            True when done, False when ``timeout`` seconds passed first.
        """
        target = self._put
        if self._handled >= target:
            return True
        if self._thread is None and not self._start():
            self._drain()  # no thread to be had at exit: do the work here
            return not self._queue
        self._wake.set()
        until = deadline(timeout)
        with self._done:
            while self._handled < target:
                remaining = left(until)
                if remaining == 0:
                    return False
                self._done.wait(remaining)
        return True

    def shutdown(self, timeout: float | None = None) -> bool:
        """Handle what is queued (up to ``timeout``), then stop the thread; later puts are dropped.

        What ``timeout`` cuts off is counted lost: items still queued as ``shutdown_timeout``, and
        the batch the handler has as ``shutdown_in_flight`` until the handler returns (then it
        has counted what became of the batch), as at interpreter exit it never does.
        """
        done = self.flush(timeout)
        with self._done:
            self._stopping, self._room = True, 0
            if not done:
                self._give_up()
        self._wake.set()
        return done

    def _give_up(self) -> None:
        queue = self._queue
        lost = [queue.popleft() for _ in range(len(queue))]  # a put racing this one is still handled
        if lost:
            self._drop("shutdown_timeout", self._weight(lost))
        if self._taken and not self._given_up:
            self._given_up = self._weight(self._taken)
            self._drop(_IN_FLIGHT, self._given_up)

    def _weight(self, items: Collection[T]) -> int:
        return len(items) if self._weigh is None else sum(map(self._weigh, items))

    def _drop(self, reason: str, count: int, detail: object = None) -> None:
        self.counters.drop(self._prefix + reason, count, detail)

    def _after_fork(self) -> None:
        # The parent's queue belongs to the parent: a child starts empty, with its own thread.
        self._reset()


_start_lock = _fork.lock()
_workers: weakref.WeakSet[BatchWorker[object]] = weakref.WeakSet()


def _reinit_after_fork() -> None:
    for worker in list(_workers):
        worker._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)
