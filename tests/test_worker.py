"""The background worker: bounded, never blocking, flushable, fork-safe."""

from __future__ import annotations

import os
import threading

import pytest

from tokentrace._worker import BatchWorker


def test_handles_everything_put_before_flush_in_batches() -> None:
    batches: list[list[int]] = []
    worker: BatchWorker[int] = BatchWorker("tokentrace.test", batches.append, max_batch=4, interval=60)
    worker.put_many(range(10))
    assert worker.flush(5)
    assert all(1 <= len(b) <= 4 for b in batches)
    assert [x for b in batches for x in b] == list(range(10))
    worker.shutdown(1)


def test_a_full_batch_wakes_the_worker_and_a_backlog_is_drained_without_waiting_for_the_interval() -> None:
    gate, handled, everything = threading.Event(), [], threading.Event()

    def handler(batch: list[int]) -> None:
        gate.wait(5)  # held while the backlog builds up
        handled.extend(batch)
        if len(handled) == 40:
            everything.set()

    worker: BatchWorker[int] = BatchWorker("tokentrace.test", handler, max_batch=4, interval=60)
    worker.put_many(range(40))  # ten batches: the first wakes the worker, which then holds in the handler
    gate.set()
    assert everything.wait(5)  # no flush, and the 60 s interval never came
    assert handled == list(range(40))
    worker.shutdown(1)


def test_full_queue_drops_the_newest_and_counts() -> None:
    gate = threading.Event()
    seen: list[int] = []

    def slow(batch: list[int]) -> None:
        gate.wait(5)
        seen.extend(batch)

    worker: BatchWorker[int] = BatchWorker("tokentrace.test", slow, max_queue=5, max_batch=100, interval=60)
    worker.put_many(range(8))
    assert worker.counters.dropped == {"queue_full": 3}
    gate.set()
    assert worker.flush(5)
    assert seen == [0, 1, 2, 3, 4]
    worker.shutdown(1)


def test_a_failing_handler_is_counted_and_the_worker_goes_on() -> None:
    calls: list[list[int]] = []

    def handler(batch: list[int]) -> None:
        calls.append(batch)
        if len(calls) == 1:
            raise RuntimeError("bug")

    worker: BatchWorker[int] = BatchWorker("tokentrace.test", handler, max_batch=1, interval=60)
    worker.put(1)
    assert worker.flush(5)
    worker.put(2)
    assert worker.flush(5)
    assert calls == [[1], [2]] and worker.counters.dropped == {"handler_error": 1}
    worker.shutdown(1)


def test_flush_times_out_and_shutdown_drops_what_is_left() -> None:
    gate = threading.Event()
    worker: BatchWorker[int] = BatchWorker("tokentrace.test", lambda b: gate.wait(5), max_batch=1, interval=60)
    worker.put_many([1, 2, 3])
    assert worker.flush(0.1) is False
    assert worker.shutdown(0.1) is False
    assert worker.counters.dropped["shutdown_timeout"] >= 1
    gate.set()
    worker.put(4)
    assert worker.counters.dropped["closed"] == 1


def test_what_a_shutdown_gives_up_is_counted_by_what_its_items_weigh() -> None:
    entered, gate = threading.Event(), threading.Event()

    def handler(batch: list[list[int]]) -> None:
        entered.set()
        gate.wait(5)

    worker: BatchWorker[list[int]] = BatchWorker(
        "tokentrace.test", handler, max_batch=1, interval=60, weigh=len, reason_prefix="test_"
    )
    worker.put([1])
    assert worker.flush(0) is False and entered.wait(5)
    worker.put_many([[2, 3], [4, 5, 6]])
    assert worker.shutdown(0) is False
    assert worker.counters.dropped["test_shutdown_timeout"] == 5
    gate.set()
    worker.put([7, 8])  # weighed by weigh, as its spans
    assert worker.counters.dropped["test_closed"] == 2


def test_thread_is_named_and_started_lazily() -> None:
    worker: BatchWorker[int] = BatchWorker("tokentrace.lazy", lambda b: None, interval=60)
    assert "tokentrace.lazy" not in {t.name for t in threading.enumerate()}
    worker.put(1)
    assert "tokentrace.lazy" in {t.name for t in threading.enumerate()}
    worker.shutdown(1)


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="max_queue and max_batch must be at least 1"):
        BatchWorker("tokentrace.test", lambda b: None, max_queue=0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_child_starts_with_an_empty_queue_and_its_own_thread() -> None:
    read, write = os.pipe()
    seen: list[int] = []
    worker: BatchWorker[int] = BatchWorker("tokentrace.test", seen.extend, interval=60)
    worker.put(1)  # stays queued in the parent
    pid = os.fork()
    if pid == 0:
        try:
            worker.put(2)
            worker.flush(5)
            os.write(write, repr(seen).encode())
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 100) == b"[2]"
    assert worker.flush(5) and seen == [1]
    worker.shutdown(1)
