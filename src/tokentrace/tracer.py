"""The tracer: start traces, record spans, and hand them to transports, windows and alerts.

The caller's thread only does cheap work: check the span, copy it and stamp the copy's times,
and append the ended trace to a queue. The ``tokentrace.pipeline`` worker then fills ids, prices
the spans from a cached table, writes files, feeds network transports (each on its own worker),
the metric windows and the alert rules. Synchronous transports (stdout) write before ``end()`` returns.
Nothing on this path raises into the caller: failures are counted in :meth:`Tracer.stats` and
logged at most once per kind every 20 s.
"""

from __future__ import annotations

import atexit
import contextvars
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from . import _fork, pricing
from ._worker import BatchWorker, Counters, deadline, left
from .spans import UNENCODABLE, Span, Status, new_id, new_ids, now_ms

if TYPE_CHECKING:
    from .config import Config
    from .transports.base import Transport
    from .windows import WindowAggregator

__all__ = ["ActiveSpan", "Trace", "Tracer", "current_trace"]

_log = logging.getLogger(__name__)
_DEFAULT_EXIT_TIMEOUT_S = 5.0
_DEFAULT_MAX_QUEUE = 100_000

# (trace, span id of the enclosing span or None) for the code running now
_current: contextvars.ContextVar[tuple[Trace, str | None] | None] = contextvars.ContextVar(
    "tokentrace_current", default=None
)


def current_trace() -> Trace | None:
    """The trace whose ``with`` block (or ``t.span()`` block) the calling code runs in."""
    current = _current.get()
    return None if current is None else current[0]


def error_text(exc: BaseException) -> str:
    """``"TypeName: message"``, or just the type name when the message is empty."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class PendingSpan(Protocol):
    """A finished call whose span is built later, on the pipeline worker."""

    def build(self) -> Span | None:
        """The span; None when it could not be made (and the failure is counted). Never raises."""


class Trace:
    """A named unit of work holding the spans of its model calls.

    Example::

        trace = tracer.start("summarize-document")
        trace.record(tokentrace.Span(model="gpt-4o", provider="openai", prompt_tokens=512, comp_tokens=128))
        trace.end()
    """

    __slots__ = ("_ended", "_id", "_spans", "_taken", "_token", "_tracer", "name", "parent_span_id")

    def __init__(self, tracer: Tracer, name: str, trace_id: str | None, parent_span_id: str | None) -> None:
        self._tracer = tracer
        self.name = name
        self._id: list[str] = [] if trace_id is None else [trace_id]  # made on first use, often on the worker
        self.parent_span_id = parent_span_id
        self._spans: list[Span] = []
        self._ended = False
        self._taken: Sequence[Span] = ()  # the spans end() handed on
        self._token: contextvars.Token[tuple[Trace, str | None] | None] | None = None

    @property
    def trace_id(self) -> str:
        cell = self._id
        if not cell:
            cell.append(new_id())  # if two threads race here, both read the first append
        return cell[0]

    @property
    def spans(self) -> list[Span]:
        with self._tracer._trace_lock:
            spans = self._taken if self._ended else self._spans
        return list(spans)

    def record(self, span: Span) -> Span:
        """Add a finished span: a copy of ``span`` as it is now, its ids, name and missing
        timestamps filled in. Never raises.

        ``span`` itself is left as it was, so it may be changed and recorded again: each
        record is a span of its own, with a span id of its own unless ``span`` was given one.

        Returns:
            ``span``, unchanged.
        """
        if type(span) is not Span and not isinstance(span, Span):
            self._tracer._counters.drop("invalid_span", 1, f"record() takes a Span, got {type(span).__name__}")
            return span
        copy = _copy(span)  # the worker may hold the copy long after the caller changed `span`
        if type(copy.attributes) is dict:
            copy.attributes = copy.attributes.copy()
        self._add(copy)
        return span

    def _add(self, span: Span) -> None:
        """Add a span no one else holds (a copy, or one tokentrace made): its name, parent and
        missing timestamps filled in."""
        if span.attributes is not None and type(span.attributes) is not dict:
            span.attributes = _as_dict(span.attributes)
        if span.name is None:
            span.name = self.name
        if span.parent_span_id is None:
            current = _current.get()  # inside this trace's `with t.span()`: that span is the parent
            parent = current[1] if current is not None and current[0] is self else None
            span.parent_span_id = parent or self.parent_span_id
        latency = span.latency_ms
        if span.ended_at is None and span.started_at is None and latency is not None:  # the usual case
            span.ended_at = ended = time.time_ns() // 1_000_000
            span.started_at = ended - latency
        else:
            _fill_times(span)
        self._spans.append(span)
        if self._ended:  # end() may have taken the spans before this one was added
            self._send_if_left(span)

    def _send_if_left(self, span: Span) -> None:
        """Send ``span`` on its own if end() left it behind: recorded while or after the trace
        ended, it goes out once, with the trace's spans or alone, never lost."""
        with self._tracer._trace_lock:  # once held, end() has taken what it sends and left the rest
            left = _remove(self._spans, span)
        if left:
            self._tracer._emit(self, [span])

    def record_error(self, exc: BaseException | str) -> None:
        """Mark the last span as failed with ``exc``; record an error span if there is none, or
        once the trace has ended (its spans are on their way)."""
        text = exc if isinstance(exc, str) else error_text(exc)
        with self._tracer._trace_lock:  # end() does not take the spans meanwhile
            last = self._spans[-1] if self._spans and not self._ended else None
            if last is not None:
                last.status, last.error = Status.ERROR, text
        if last is None:
            self._add(Span(model="", status=Status.ERROR, error=text))

    def span(self, model: str, provider: str = "", **fields: Any) -> ActiveSpan:
        """A ``with`` block that measures one model call and records it on exit.

        Example::

            with trace.span(model="gpt-4o", provider="openai") as s:
                resp = client.chat.completions.create(...)
                s.set_usage(resp.usage)
        """
        return ActiveSpan(self, Span(model=model, provider=provider, **fields))

    def end(self) -> None:
        """Hand the trace's spans on: stdout is written before this returns, the rest is queued."""
        with self._tracer._trace_lock:
            if self._ended:
                return
            self._ended = True  # first: a record() that adds its span after the copy sees it
            self._taken = spans = self._spans.copy()
            del self._spans[: len(spans)]  # what was added since is left to its record()
        if spans:
            self._tracer._emit(self, spans)

    def __enter__(self) -> Trace:
        self._token = _current.set((self, None))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None:
            self.record_error(exc)
        if self._token is not None:
            _current.reset(self._token)
            self._token = None
        self.end()


_copy: Callable[[Span], Span] = Span.__copy__  # type: ignore[attr-defined]


def _as_dict(attributes: Any) -> dict[str, Any]:
    """Attributes given as another mapping, as a dict; what is not one costs the span its
    attributes, marked, and not the caller's call (nor its trace, on the worker)."""
    try:
        if isinstance(attributes, Mapping):
            return dict(attributes)
        raise TypeError(f"attributes must be a mapping, got {type(attributes).__name__}")
    except Exception as exc:  # as the encoders mark attributes they cannot encode
        return {UNENCODABLE: type(exc).__name__}


def _remove(spans: list[Span], span: Span) -> bool:
    """Take ``span`` itself (not an equal one) out of ``spans``; False if it is not there."""
    for i, s in enumerate(spans):
        if s is span:
            del spans[i]
            return True
    return False


def _fill_times(span: Span) -> None:
    """The times a span was recorded without: it ends now (or its latency after it started,
    never before that); with no start given it started its latency before, and with no latency
    given either, its latency stays unknown."""
    latency = span.latency_ms
    if span.ended_at is None:
        started = span.started_at
        if started is not None and latency is not None:
            span.ended_at = started + latency
        else:
            span.ended_at = now_ms() if started is None else max(now_ms(), started)
    if span.started_at is None:
        span.started_at = max(span.ended_at - (latency or 0), 0)
    elif latency is None:
        span.latency_ms = max(span.ended_at - span.started_at, 0)


class ActiveSpan:
    """A span being measured by ``with trace.span(...)``; see :meth:`Trace.span`."""

    __slots__ = ("_t0", "_token", "_trace", "span")

    def __init__(self, trace: Trace, span: Span) -> None:
        self._trace = trace
        self.span = span
        span.span_id = new_id()  # children started inside the block need it as their parent
        self._t0 = 0.0
        self._token: contextvars.Token[tuple[Trace, str | None] | None] | None = None

    def set_usage(self, usage: Any) -> None:
        """Take token counts from a provider usage object or dict (see ``pricing.normalize_usage``).

        Never raises: a usage of None (a stream that did not report one), or one that cannot be
        read (counted as ``invalid_usage``), leaves the counts at zero and marks the span
        ``"tokentrace.usage.reported": false``.
        """
        try:
            u = pricing.normalize_usage(usage) if usage is not None else None
        except Exception as exc:
            self._trace._tracer._counters.drop("invalid_usage", 1, f"set_usage: {exc}")
            u = None
        if u is None:
            self.set_attribute("tokentrace.usage.reported", False)
            return
        s = self.span
        s.prompt_tokens, s.comp_tokens = u.prompt_tokens, u.completion_tokens
        s.cached_tokens = u.cached_tokens or None
        s.cache_write_tokens = u.cache_write_tokens or None
        s.reasoning_tokens = u.reasoning_tokens or None
        if s.cost is None or s.cost_source == pricing.REPORTED:  # a cost you set stays
            s.cost, s.cost_source = u.reported_cost, None if u.reported_cost is None else pricing.REPORTED
        for key, value in pricing.price_attributes(u).items():  # its rates, and what is priced apart from text
            self.set_attribute(key, value)

    def set_model(self, model: str) -> None:
        self.span.model = model

    def set_attribute(self, key: str, value: Any) -> None:
        if self.span.attributes is None:
            self.span.attributes = {}
        self.span.attributes[key] = value

    def set_error(self, exc: BaseException | str) -> None:
        self.span.status = Status.ERROR
        self.span.error = exc if isinstance(exc, str) else error_text(exc)

    def __enter__(self) -> ActiveSpan:
        self.span.started_at = now_ms()
        self._t0 = time.perf_counter()
        self._token = _current.set((self._trace, self.span.span_id))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        span = self.span
        span.latency_ms = round((time.perf_counter() - self._t0) * 1000)
        span.ended_at = (span.started_at or 0) + span.latency_ms
        if exc is not None:
            self.set_error(exc)
        if self._token is not None:
            _current.reset(self._token)
        self._trace._add(span)  # the block's own span: nothing to copy


class Tracer:
    """Creates traces and delivers their spans.

    Example::

        tracer = tokentrace.Tracer(transport=tokentrace.StdoutTransport())
        with tracer.trace("summarize-document") as t:
            t.record(tokentrace.Span(model="gpt-4o", provider="openai", prompt_tokens=512, comp_tokens=128))
        tracer.close()

    Args:
        transport: a transport or a list of them (fan-out); none keeps spans in metrics only.
        alerts: alert rules evaluated on every span and on a periodic tick.
        http_server: start the embedded HTTP server (``HTTPServerConfig``).
        clock: seconds since the epoch, for the metric windows and alerts (tests inject one).
        exit_timeout: seconds the exit hook may spend flushing.
        max_queue: ended traces waiting for the pipeline worker at most; past it the newest are
            dropped and counted. The default absorbs a burst of 100,000.
    """

    def __init__(
        self,
        transport: Transport | Sequence[Transport] | None = None,
        *,
        alerts: Sequence[Any] = (),
        http_server: Any = None,
        clock: Any = time.time,
        exit_timeout: float = _DEFAULT_EXIT_TIMEOUT_S,
        max_queue: int = _DEFAULT_MAX_QUEUE,
    ) -> None:
        if transport is None:
            self._transports: list[Transport] = []
        elif isinstance(transport, Sequence):
            self._transports = list(transport)
        else:
            self._transports = [transport]
        for t in self._transports:
            if not callable(getattr(t, "emit", None)):
                raise TypeError(f"transport must be a tokentrace transport, got {type(t).__name__}")
        self._sync = [t for t in self._transports if t.synchronous]
        self._counters = Counters()
        self._unpriced = 0
        self._closed = False
        # Orders end() against the record() of a trace shared by threads that finds it ended
        # after adding its span (record() takes it then only), so that each span goes out once:
        # with the spans end() took, or on its own. One lock for all of the tracer's traces: it is
        # held for a copy or a search of one trace's spans at most. It is reentrant: a signal
        # handler, or a finalizer the garbage collector runs on that copy, may run, and record,
        # while its thread holds it.
        self._trace_lock = _fork.rlock()
        self._clock = clock
        self._pipeline = _Pipeline(self, alerts, clock, max_queue)
        # Where a span that is a trace by itself goes: straight onto the worker's queue (which
        # counts it as dropped once the tracer is closed), unless a synchronous transport must
        # write it first. One call, for the instrumented SDK calls that make most such spans.
        self._emit_alone: Callable[[Span | PendingSpan], None] = (
            self._emit_alone_now if self._sync else self._pipeline.put
        )
        self._ingest_trace = Trace(self, "ingest", None, None)  # ingested spans carry their own ids
        self._server: Any = None
        if http_server is not None:
            from .server.embedded import start_embedded

            try:
                self._server = start_embedded(self, http_server)
            except BaseException:
                self._pipeline.shutdown(0)  # no threads left behind by a failed constructor
                raise
        self._exit_timeout = exit_timeout
        _register_exit(self)

    @classmethod
    def from_config(cls, config: Config | str | os.PathLike[str]) -> Tracer:
        """A tracer from a :class:`~tokentrace.Config` or the path of a ``tokentrace.toml``."""
        from .config import Config

        if not isinstance(config, Config):
            config = Config.from_toml(config)
        return config.build()

    # --- traces ---------------------------------------------------------------------------------

    def start(self, name: str) -> Trace:
        """Begin a trace. Inside another trace's block it joins that trace as a child."""
        current = _current.get()
        if current is None:
            return Trace(self, name, None, None)
        return Trace(self, name, current[0].trace_id, current[1])

    @contextmanager
    def trace(self, name: str) -> Iterator[Trace]:
        """``with tracer.trace(name) as t:`` — ends the trace on exit; an exception marks it failed."""
        with self.start(name) as t:
            yield t

    def _emit(self, trace: Trace, spans: list[Span]) -> None:
        """Hand a trace's spans on. The caller's thread only appends to a queue, unless a
        synchronous transport (stdout) must write them before ``end()`` returns."""
        if self._closed:
            self._counters.drop("closed", len(spans))
            return
        try:
            if self._sync:
                self._finalize(trace, spans)
                for transport in self._sync:
                    transport.emit(spans)
            # no trace: the spans are final already, the worker must not price them twice
            self._pipeline.put((None if self._sync else trace, spans))
        except Exception as exc:  # never into the caller
            self._counters.drop("emit_error", len(spans), repr(exc))

    def _emit_alone_now(self, item: Span | PendingSpan) -> None:
        """``_emit_alone`` when a synchronous transport must see the span (named ``span.name``):
        it is built and written on the caller's thread."""
        span = item if isinstance(item, Span) else item.build()
        if span is not None:
            self._emit(Trace(self, span.name or "", None, None), [span])

    def _finalize(self, trace: Trace, spans: list[Span], ids: list[str] | None = None) -> None:
        """Fill the ids (taken from ``ids`` while it lasts) and the cost of spans about to
        leave; idempotent."""
        cell = trace._id
        if not cell:
            cell.append(ids.pop() if ids else new_id())  # if the caller raced us, cell[0] is theirs
        self._finalize_spans(spans, cell[0], ids)

    def _finalize_spans(self, spans: Iterable[Span], trace_id: str, ids: list[str] | None) -> None:
        for span in spans:
            if span.span_id is None:
                span.span_id = ids.pop() if ids else new_id()
            if span.trace_id is None:
                span.trace_id = trace_id
            if span.cost is None and span.model and not pricing.price_span(span):
                self._unpriced += 1

    def instrument(self, client: Any, *, capture_content: bool = False, max_content_chars: int = 2000) -> Any:
        """Trace every model call of an ``openai`` or ``anthropic`` client; returns the client.

        Prompt and response text are recorded only with ``capture_content=True``, cut to
        ``max_content_chars`` characters.
        """
        from .integrations import instrument

        return instrument(self, client, capture_content=capture_content, max_content_chars=max_content_chars)

    def ingest(self, spans: list[Span], *, wait: float | None = None) -> bool:
        """Take finished spans from elsewhere (another process, a collector's ingest).

        They go the way recorded spans go — priced if they have no cost, then to the transports,
        the windows, the alert rules and the sinks — keeping the ids and timestamps they carry.

        Args:
            spans: spans with their ids and timestamps (``ended_at``) already set.
            wait: seconds to wait until they are in the windows and sinks (not for alert
                deliveries or network transports); None returns at once.

        Returns:
            False when ``wait`` ran out first.
        """
        if spans:
            self._emit(self._ingest_trace, spans)
        return True if wait is None else self.settle(wait)

    def add_sink(self, sink: Callable[[list[Span]], object]) -> None:
        """Call ``sink(spans)`` with every batch of finished spans, on the pipeline worker."""
        self._pipeline.sinks.append(sink)

    def settle(self, timeout: float | None = 5.0) -> bool:
        """Wait until spans recorded so far are in the windows and sinks; network deliveries
        (transports, webhooks) are not waited for. False if ``timeout`` ran out."""
        return self._pipeline.settle(timeout)

    # --- queries --------------------------------------------------------------------------------

    @property
    def server_url(self) -> str | None:
        """Where the embedded HTTP server listens (``http://127.0.0.1:9090``), or None."""
        return None if self._server is None else str(self._server.url)

    @property
    def aggregator(self) -> WindowAggregator:
        """The metric windows the tracer's spans are counted in."""
        return self._pipeline.aggregator

    @property
    def alert_engine(self) -> Any:
        return self._pipeline.engine

    def metrics(
        self, window: Any = "1h", *, model: str | None = None, provider: str | None = None, name: str | None = None
    ) -> Any:
        """Windowed metrics over the last ``window`` (``"1h"``, seconds or a ``timedelta``)."""
        from .durations import parse_duration

        self.settle(1.0)
        return self._pipeline.aggregator.snapshot(
            parse_duration(window, "window"), model=model, provider=provider, name=name
        )

    def stats(self) -> dict[str, Any]:
        """Counts of spans queued, written and dropped (by reason), and spans with no price."""
        dropped: dict[str, int] = dict(self._counters.dropped)
        written, queued = 0, self._pipeline.queued
        for t in self._transports:
            written += t.counters.written
            queued += t.queued
            for reason, n in t.counters.dropped.items():
                dropped[reason] = dropped.get(reason, 0) + n
        return {"queued": queued, "written": written, "dropped": dropped, "unpriced": self._unpriced}

    # --- lifecycle ------------------------------------------------------------------------------

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until every span recorded so far is delivered; False if ``timeout`` ran out."""
        until = deadline(timeout)
        for hook in _flush_hooks:
            hook(left(until))
        return self._deliver(left(until))

    def _deliver(self, timeout: float | None) -> bool:
        """Wait until what the pipeline and the transports hold is delivered (``flush`` without
        its hooks); False if ``timeout`` ran out."""
        until = deadline(timeout)
        done = True
        parts: list[_Pipeline | Transport] = [self._pipeline, *self._transports]  # the pipeline feeds them
        for part in parts:
            done = part.flush(left(until)) and done
        return done

    def close(self, timeout: float | None = 5.0) -> bool:
        """Flush, stop the workers and the embedded server. Later spans are dropped and counted."""
        if self._closed:
            return True
        done = self.flush(timeout)
        self._closed = True
        _live.discard(self)
        for transport in self._transports:
            transport.shutdown(0)
        self._pipeline.shutdown(0)
        if self._server is not None:
            self._server.stop()
        return done

    def __enter__(self) -> Tracer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# What the pipeline queue holds: a trace's spans (no trace: finished on the caller's thread for
# a synchronous transport), or a span that is a trace by itself, maybe still to be built.
_Item = tuple[Trace | None, list[Span]] | Span | PendingSpan


class _Pipeline:
    """The ``tokentrace.pipeline`` worker: ids and prices, then the queued transports, the
    metric windows, the alert rules and any extra sinks (the embedded server's span store)."""

    def __init__(self, tracer: Tracer, rules: Sequence[Any], clock: Any, max_queue: int) -> None:
        from .alerts import AlertEngine
        from .windows import WindowAggregator

        self._tracer = tracer
        self._queued_transports = [t for t in tracer._transports if not t.synchronous]
        self.aggregator = WindowAggregator(clock=clock)
        self.engine = (
            AlertEngine(list(rules), self.aggregator, clock=clock, counters=tracer._counters) if rules else None
        )
        self.sinks: list[Any] = []
        self._worker: BatchWorker[_Item] = BatchWorker(
            "tokentrace.pipeline", self._handle, max_queue=max_queue, max_batch=1024, interval=0.2,
            counters=tracer._counters, weigh=_spans_in,
        )  # fmt: skip
        self.put = self._worker.put
        self._ticker = _Ticker(self.engine) if self.engine is not None else None
        self._tick_again = False  # in a forked child: start the ticker with the first batch

    @property
    def queued(self) -> int:
        return self._worker.queued

    def _after_fork(self) -> None:
        # The parent's spans are the parent's, as its queue is: a child's windows and rules start
        # from nothing (or each child would count, and alert on, what its parent spent), and its
        # ticker, a thread of the parent's, starts again once the child traces.
        self.aggregator._forget()
        if self.engine is not None:
            self.engine._forget()
            self._tick_again = True

    def _handle(self, batch: list[_Item]) -> None:
        if self._tick_again and self._ticker is not None:
            self._tick_again = False
            self._ticker.start()
        pricing.expire_stale()
        tracer = self._tracer
        ids = new_ids(_ids_needed(batch))
        spans = []
        for item in batch:
            if isinstance(item, tuple):
                trace, trace_spans = item
                if trace is not None:
                    tracer._finalize(trace, trace_spans, ids)
                spans.extend(trace_spans)
                continue
            span = item if isinstance(item, Span) else item.build()  # a trace by itself
            if span is not None:
                tracer._finalize_spans((span,), ids.pop(), ids)
                spans.append(span)
        for transport in self._queued_transports:
            transport.emit(spans)
        self.aggregator.add_many(spans)
        if self.engine is not None:
            self.engine.observe(spans)
        for sink in self.sinks:
            sink(spans)

    def settle(self, timeout: float | None) -> bool:
        return self._worker.flush(timeout)

    def flush(self, timeout: float | None) -> bool:
        done = self._worker.flush(timeout)
        if self.engine is not None:
            done = self.engine.flush(timeout) and done
        return done

    def shutdown(self, timeout: float | None) -> bool:
        done = self._worker.shutdown(timeout)
        if self._ticker is not None:
            self._ticker.stop()
        if self.engine is not None:
            self.engine.close(timeout)
        return done


def _spans_in(item: _Item) -> int:
    return len(item[1]) if isinstance(item, tuple) else 1


def _ids_needed(batch: list[_Item]) -> int:
    needed = 0
    for item in batch:
        if not isinstance(item, tuple):
            needed += 2  # a span alone: its trace id and its own
            continue
        trace, spans = item
        if trace is not None:
            needed += not trace._id
            for span in spans:
                needed += span.span_id is None
    return needed


class _Ticker:
    """Calls ``engine.tick()`` every second so windows that slide past the spans resolve."""

    def __init__(self, engine: Any, interval: float = 1.0) -> None:
        self._engine = engine
        self._interval = interval
        self.start()

    def start(self) -> None:
        """Start ticking (again, in a forked child, where the parent's thread does not run)."""
        self._stop = threading.Event()
        threading.Thread(target=self._run, args=(self._stop,), name="tokentrace.alerts.tick", daemon=True).start()

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self._interval):
            try:
                self._engine.tick()
            except Exception as exc:
                _log.warning("tokentrace alert tick failed: %r", exc)

    def stop(self) -> None:
        self._stop.set()


_live: set[Tracer] = set()  # open tracers, closed at exit even if the app dropped its reference
# Run first by every flush, given the seconds it has left (None: no limit): the integrations
# record there the spans of streams dropped unread, which wait for a context where recording is
# safe, and wait for the files of results they are reading (see ``integrations._calls``)
_flush_hooks: list[Callable[[float | None], None]] = []


def _register_exit(tracer: Tracer) -> None:
    _live.add(tracer)


def _lost_at_shutdown(tracer: Tracer) -> int:
    """Spans a shutdown gave up on: still queued at its deadline, or in a batch being sent."""
    dropped = tracer.stats()["dropped"]
    return int(dropped.get("shutdown_timeout", 0) + dropped.get("shutdown_in_flight", 0))


@atexit.register
def _close_all() -> None:
    """At interpreter exit, flush every open tracer within its deadline; never hang the exit."""
    for tracer in list(_live):
        try:
            lost_before = _lost_at_shutdown(tracer)
            delivered = tracer.close(tracer._exit_timeout)
            undelivered = _lost_at_shutdown(tracer) - lost_before
            if not delivered and undelivered:
                _log.warning("tokentrace exited with %d span(s) undelivered", undelivered)
        except Exception as exc:
            _log.warning("tokentrace could not flush at exit: %r", exc)


def _after_fork() -> None:
    for tracer in _live:
        tracer._pipeline._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
