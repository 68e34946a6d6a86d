"""BatchingTransport: what a shutdown that cannot wait does with the batch being sent."""

from __future__ import annotations

import threading

from tokentrace import Span
from tokentrace.transports.base import BatchingTransport


class _Stalled(BatchingTransport):
    def __init__(self) -> None:
        super().__init__("tokentrace.test", interval=0.01)
        self.sending = threading.Event()
        self.release = threading.Event()

    def export(self, batch: list[Span]) -> None:
        self.sending.set()
        self.release.wait(10)
        self.counters.written += len(batch)


def test_a_batch_sent_after_a_shutdown_gave_up_on_it_is_counted_once_as_written() -> None:
    transport = _Stalled()
    transport.emit([Span(model="gpt-4o"), Span(model="gpt-4o")])
    assert transport.sending.wait(10)
    assert not transport.shutdown(0.05)
    assert dict(transport.counters.dropped) == {"shutdown_in_flight": 2}
    transport.release.set()
    assert transport._worker._thread is not None
    transport._worker._thread.join(10)
    assert dict(transport.counters.dropped) == {} and transport.counters.written == 2


def test_a_shutdown_landing_after_the_worker_took_a_batch_and_before_its_send_began_counts_it() -> None:
    transport = _Stalled()
    transport.release.set()  # the send itself returns at once
    export = transport._worker._handler
    seen: list[dict[str, int]] = []

    def shutdown_first(batch: list[Span]) -> None:
        """A shutdown that lands once the batch is off the queue, before the send begins."""
        stopper = threading.Thread(target=transport.shutdown, args=(0,))
        stopper.start()
        stopper.join(10)
        seen.append(dict(transport.counters.dropped))
        export(batch)

    transport._worker._handler = shutdown_first
    transport.emit([Span(model="gpt-4o"), Span(model="gpt-4o")])
    assert transport._worker._thread is not None
    transport._worker._thread.join(10)
    assert seen == [{"shutdown_in_flight": 2}]
    assert dict(transport.counters.dropped) == {} and transport.counters.written == 2


class _Failing(_Stalled):
    def export(self, batch: list[Span]) -> None:
        self.sending.set()
        self.release.wait(10)
        raise OSError("connection closed by the shutdown")


def test_a_send_that_fails_after_a_shutdown_gave_up_on_it_stays_counted_once() -> None:
    transport = _Failing()
    transport.emit([Span(model="gpt-4o"), Span(model="gpt-4o")])
    assert transport.sending.wait(10)
    assert not transport.shutdown(0)
    transport.release.set()
    assert transport._worker._thread is not None
    transport._worker._thread.join(10)
    assert dict(transport.counters.dropped) == {"shutdown_in_flight": 2} and transport.counters.written == 0
