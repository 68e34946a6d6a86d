"""Bookkeeping for one traced provider call: the trace it joins, its clock, and the span it records.

A :class:`Call` measures one SDK call from the moment its method is entered, and is finished
exactly once: when the response arrives, when the SDK raises, or, for a stream, when it is
exhausted, breaks, is closed or is garbage-collected. Everything here runs inside the user's
model call, so nothing may raise into it: a failure of tokentrace's own bookkeeping is counted on
the tracer as ``instrumentation_error`` (and logged once per 20 s) and the SDK call goes on
untouched.

Streams dropped without being closed are noticed by the garbage collector, which may run inside
any code, including code holding one of tokentrace's locks. Those spans are therefore only queued
here (a lock-free ``deque`` append) and recorded from a clean context: the next instrumented call,
a ``tokentrace.streams`` daemon thread that looks once a second, or a tracer's ``flush()`` (which
its ``close()``, also at interpreter exit, runs).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import importlib
import inspect
import json
import operator
import os
import threading
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Container
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from .. import _fork
from .._worker import deadline, left
from ..pricing import REPORTED, SERVICE_TIER, Usage, normalize_usage, price_attributes
from ..spans import Span, Status, blank_span
from ..tracer import _current, _flush_hooks

if TYPE_CHECKING:
    from ..tracer import Trace, Tracer

__all__ = [
    "MODEL_AND_USAGE",
    "NOT_CONSUMED",
    "WITHHELD",
    "Call",
    "Latest",
    "Operation",
    "Settings",
    "StreamCall",
    "begin",
    "clock",
    "ensure_reaper",
    "note_failure",
    "ran",
    "read_later",
    "record_abandoned",
    "result_call",
    "traced_async",
    "traced_sync",
    "transport_errors",
]

NOT_CONSUMED = "stream not consumed"
WITHHELD = "message not recorded without capture_content"  # see ``Operation.api_errors``
_RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"  # set by with_raw_response / with_streaming_response
_STREAMING_RESPONSE = "stream"  # its value for with_streaming_response: the body is the caller's to read
_REAP_INTERVAL_S = 1.0
_NO_USAGE = Usage()
clock = time.perf_counter  # the clock of every call
MODEL_AND_USAGE = operator.attrgetter("model", "usage")  # ``Operation.fields`` of most operations


_C = TypeVar("_C", bound="Call")


@dataclass(frozen=True)
class Settings:
    """What one ``instrument()`` call chose: the tracer and the content-capture policy."""

    tracer: Tracer
    capture_content: bool = False
    max_content_chars: int = 2000


@dataclass(frozen=True)
class Operation:
    """How to read one SDK method's request, response and stream events.

    Attributes:
        provider: the span's provider (``"openai"``, ``"anthropic"``).
        name: the GenAI operation, also the name of the trace made when none is active.
        prompt: the request's input text or messages, only called when content is captured.
        read: fills a call's model, usage and completion text from a whole response.
        observe: takes one stream event; returns True to hide it from the caller.
        prepare: for a streamed call, changes the keyword arguments about to be sent (the
            wrapper's own ``kwargs`` dict, in place); True when ``observe`` may hide the
            usage-only chunk it made the provider add. None: the arguments are sent as given.
        added: whether a stream event is the one ``prepare`` made the provider add, which stays
            hidden when read after the stream's ``close()`` too (``observe`` is then done).
        usage: turns what ``read`` / ``observe`` left in ``Call.usage`` into a :class:`Usage`,
            on the call's thread when it ends.
        fields: ``(model, usage)`` of a whole response (an ``operator.attrgetter``, run in C),
            when that is all ``read`` takes from it without content capture; it then reads the
            response in ``read``'s place.
        skip: ``(key, values)`` for a stream: once its first output was seen, and when no (more)
            content is to be captured, an event whose ``key(event)`` is one of ``values`` (the
            many text deltas) is passed on without ``observe``: a C call per event, not a Python one.
        tiered: whole responses report the service tier they were served at (``service_tier``,
            OpenAI's), whose rates price them.
        unparsed: reads what it can of a call made through ``with_streaming_response`` whose
            body the caller read and never parsed (audio streamed to a file) from its HTTP
            response without the body: its request.
        api_errors: the exceptions of the HTTP layer (the SDK's API errors, and the transport's:
            :func:`transport_errors`), whose message comes from the provider's error body or the
            transport and is recorded whole. Any other exception's message may quote the prompt
            or the reply (a pydantic ``ValidationError`` quotes the reply it refused): only its
            type is recorded, unless content is captured.
        carried: the response an exception of the SDK's carries, None when it carries none: a
            completion OpenAI's ``parse()`` refused, cut at the length limit or by the content
            filter, and billed all the same. The failed call's span keeps its model, usage and cost.
    """

    provider: str
    name: str
    prompt: Callable[[dict[str, Any]], Any]
    read: Callable[[Call, Any], None]
    observe: Callable[[StreamCall, Any], bool]
    prepare: Callable[[dict[str, Any]], bool] | None = None
    added: Callable[[Any], bool] | None = None
    usage: Callable[[Any], Usage] = normalize_usage
    fields: Callable[[Any], tuple[Any, Any]] | None = None
    skip: tuple[Callable[[Any], Any], Container[Any]] = (id, ())  # by default no event is skipped
    tiered: bool = False
    unparsed: Callable[[Call, Any], object] | None = None
    api_errors: tuple[type[BaseException], ...] = ()
    carried: Callable[[BaseException], Any] | None = None


def transport_errors() -> tuple[type[BaseException], ...]:
    """The errors of httpx, and of httpx2 (which recent SDKs send their requests with) when it is
    installed: raised by the transport, or for an error status, their messages hold no prompt or
    reply (see ``Operation.api_errors``)."""
    errors: list[type[BaseException]] = []
    for name in ("httpx", "httpx2"):
        with contextlib.suppress(ImportError, AttributeError):
            module = importlib.import_module(name)
            errors += (module.HTTPError, module.StreamError)
    return tuple(errors)


@functools.cache
def for_provider(op: Operation, provider: str) -> Operation:
    """``op`` as made by a client of ``provider``."""
    return op if provider == op.provider else dataclasses.replace(op, provider=provider)


class Latest:
    """The latest ``size`` keys put, each with a value, the oldest forgotten first; thread-safe."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: dict[str, Any] = {}
        self._lock = _fork.lock()

    def put(self, key: str, value: Any = None) -> bool:
        """Keep ``value`` under ``key``; whether the key was new (one already kept keeps its place)."""
        with self._lock:
            new = key not in self._items
            self._items[key] = value
            if len(self._items) > self._size:
                del self._items[next(iter(self._items))]
            return new

    def get(self, key: str) -> Any:
        return self._items.get(key)


_MAX_RECORDED = 10_000
_recorded: weakref.WeakKeyDictionary[Tracer, Latest] = weakref.WeakKeyDictionary()
_recorded_lock = _fork.lock()


def first_time(tracer: Tracer, key: str) -> bool:
    """Whether a result read after its call (a finished background response, a batch result)
    is seen for the first time by ``tracer``; the latest 10,000 are remembered per tracer."""
    with _recorded_lock:
        seen = _recorded.get(tracer)
        if seen is None:
            seen = _recorded[tracer] = Latest(_MAX_RECORDED)
    return seen.put(key)


def result_call(settings: Settings, op: Operation, response_id: str) -> Call | None:
    """A call for a result read after it ran (a finished background response, a batch's
    result), None when it is not to be traced: its span id derives from ``response_id``, and it
    names no model asked for, only the one that answered, which is all that is known there."""
    call = begin(Call, settings, op, {})
    if call is not None:
        call.response_id = response_id
    return call


_readers: set[threading.Thread] = set()
_readers_lock = _fork.lock()


def read_later(tracer: Tracer, read: Callable[[], None]) -> None:
    """Run ``read``, which records the results in a downloaded file of them, on a
    ``tokentrace.results`` thread: the caller, who only downloaded the file, does not wait for it.
    Every tracer's ``flush()`` (and so its ``close()``, also at exit) waits for it first. Never
    raises."""

    def run() -> None:
        try:
            read()
        except Exception as exc:
            note_failure(tracer, exc)
        finally:
            with _readers_lock:
                _readers.discard(thread)

    thread = threading.Thread(target=run, name="tokentrace.results", daemon=True)
    with _readers_lock:
        _readers.add(thread)
    try:
        thread.start()
    except RuntimeError:  # no thread to be had at exit: read here
        run()


def wait_for_readers(timeout: float | None = None) -> None:
    """Return once the files handed to :func:`read_later` are read, or ``timeout`` seconds
    passed (a flush hook)."""
    until = deadline(timeout)
    current = threading.current_thread()
    while True:
        with _readers_lock:
            reading = [thread for thread in _readers if thread is not current and thread.is_alive()]
        if not reading:
            return
        for thread in reading:
            thread.join(left(until))
        if left(until) == 0:
            return


def ran(call: Call, started: Any, ended: Any) -> float | None:
    """Move the clock of ``call``, a result read after it ran, back to when it started
    (``started``, unix seconds; left as it is when that is not a number); the clock time it
    ended (``ended``), or None when that is not known."""
    if type(started) not in (int, float):
        return None
    call.t0 = clock() - max(time.time() - started, 0)
    return None if type(ended) not in (int, float) else call.t0 + max(ended - started, 0)


def note_failure(tracer: Tracer, exc: BaseException) -> None:
    """Count a failure of tokentrace's own bookkeeping; never raises."""
    with contextlib.suppress(Exception):  # the last line of defence must not raise either
        tracer._counters.drop("instrumentation_error", 1, repr(exc))


class Call(msgspec.Struct, gc=False):
    """One model call being measured; see the module docstring for when it finishes.

    Only what the call's own thread must see is read there: the clock, the active trace, the
    model, its service tier, and (through the operation) the token counts, read into a
    :class:`Usage` when the call ends. The rest waits for :meth:`build`, which runs on the
    tracer's worker when the call is a trace by itself.

    A struct built in C, so that making one costs the calling thread a single call. Nothing that
    waits in the tracer's queue is tracked by the garbage collector, so that waiting calls do not
    make collections more frequent: the call itself is not, and once it ended it holds no object
    of the SDK's (a call that kept the SDK's usage models until the worker read them would make
    collections ten to twenty times as frequent). The only way back to a call from what it holds
    is the tracer's queue, which the worker empties (and ``close()`` clears), so no cycle through
    it outlives the queue.
    """

    settings: Settings
    op: Operation
    request_model: Any  # the ``model`` argument as given; see ``_request``
    t0: float = 0.0  # perf_counter when the SDK method was entered
    ended: float = 0.0
    model: Any = None  # the response's model id
    usage: Any = None  # what ``Operation.usage`` turns into a Usage; that Usage once the call ended
    error: str | None = None
    service_tier: Any = None  # the tier the response reports it was served at (OpenAI's), priced at its rates
    ttft_ms: int | None = None
    trace: Any = None  # the Trace joined, None for a trace of its own made on the worker
    parent: str | None = None
    own_trace: bool = True
    done: bool = False
    prompt: str | None = None  # request text, when content is captured
    texts: list[str] | None = None  # completion text, when content is captured
    text_room: int = 0  # how much more completion text may be kept
    raw: bool = False  # made through with_raw_response: the SDK returns an HTTP response to parse
    unread: bool = False  # made through with_streaming_response, whose body the caller has not parsed
    background: str | None = None  # a background response's status when the span was made (OpenAI's)
    response_id: str | None = None  # set for a response recorded after the call: its span id derives from it
    timed: bool = True  # False: a result whose latency is not known (a batch's), recorded without one

    # --- what the call saw ----------------------------------------------------------------------

    def add_text(self, text: Any) -> None:
        """Keep completion text, up to ``max_content_chars``, when content is captured."""
        if self.text_room > 0 and self.texts is not None and isinstance(text, str) and text:
            piece = text[: self.text_room]
            self.texts.append(piece)
            self.text_room -= len(piece)

    def add_tool_call(self, name: Any, arguments: Any = None) -> None:
        """Keep a tool call the model made, as ``[tool call: name] `` and its arguments (JSON
        text, which a stream adds in pieces through :meth:`add_text`), when content is captured."""
        if self.text_room > 0 and self.texts is not None:
            self.add_text(f"{chr(10) if self.texts else ''}[tool call: {name}] ")
            self.add_text(arguments)

    # --- how it ended ---------------------------------------------------------------------------

    def complete(self, response: Any, ended: float | None = None, error: str | None = None) -> None:
        """A whole (non-streamed) response arrived (its clock stopped now, or at ``ended``);
        ``error``: the SDK refused it all the same (see ``Operation.carried``)."""
        op = self.op
        try:
            if op.fields is not None and self.texts is None:  # no content to capture: run in C
                self.model, self.usage = op.fields(response)
            else:
                op.read(self, response)
            if op.tiered:
                self.service_tier = getattr(response, "service_tier", None)
        except Exception as exc:
            note_failure(self.settings.tracer, exc)
        self.finish(error, ended=ended)

    def fail(self, exc: BaseException) -> None:
        """The SDK raised ``exc`` (the caller re-raises it unchanged); a response it carries, which
        was billed, is read as a whole one (see ``Operation.carried``)."""
        error = self._error(exc)
        try:
            carried = None if self.op.carried is None else self.op.carried(exc)
        except Exception as failure:
            note_failure(self.settings.tracer, failure)
            carried = None
        if carried is None:
            self.finish(error)
        else:
            self.complete(carried, error=error)

    def _error(self, exc: BaseException) -> str:
        """``exc`` as a span's error: ``"TypeName: message"`` when the message is known to hold no
        prompt or reply text (see ``Operation.api_errors``) or content is captured, else its type
        and :data:`WITHHELD`; its type alone when it has no message."""
        name = type(exc).__name__
        try:
            message = str(exc)
        except Exception:  # an exception whose __str__ fails still has a type
            return name
        if not message:
            return name
        if self.settings.capture_content or isinstance(exc, self.op.api_errors):
            return f"{name}: {message}"
        return f"{name} ({WITHHELD})"

    def finish(self, error: str | None = None, *, deferred: bool = False, ended: float | None = None) -> None:
        """Record the span once, its clock stopped now (or at ``ended``, a ``clock()`` time);
        ``deferred`` queues it for a clean context (see the module docstring).

        A call that is a trace by itself is queued as it is and its span built on the tracer's
        worker: on the caller's thread it costs a clock reading and reading the token counts.
        """
        if self.done:
            return
        self.done = True
        self.ended = clock() if ended is None else ended
        if error:
            self.error = error
        usage = self.usage
        if usage is None:
            self.usage = _NO_USAGE
        elif type(usage) is not Usage:
            try:
                self.usage = self.op.usage(usage)
            except Exception as exc:  # a usage shape this version does not know: keep the span
                note_failure(self.settings.tracer, exc)
                self.usage = _NO_USAGE
        tracer = self.settings.tracer
        try:
            if self.trace is None and not deferred:
                tracer._emit_alone(self)
                return
            span = self.build()
            if span is None:
                return
            if deferred:
                _abandoned.append((tracer, self.trace, span, self.own_trace))
            else:
                _record(tracer, self.trace, span, self.own_trace)
        except Exception as exc:
            note_failure(tracer, exc)

    def build(self) -> Span | None:
        """The span of the finished call; None when it could not be made (counted as an
        ``instrumentation_error``). Never raises."""
        try:
            return self._span()
        except Exception as exc:
            note_failure(self.settings.tracer, exc)
            return None

    def _span(self) -> Span:
        # Filled in place of ``Span(...)``: every value is already of an accepted type, and the
        # checks of ``Span.__init__`` would be the dearest part.
        latency = max(round((self.ended - self.t0) * 1000), 0)
        # the wall clock is read here, maybe later on another thread: subtract what has passed since
        started_at = time.time_ns() // 1_000_000 - round((clock() - self.t0) * 1000)
        usage, error = self.usage, self.error  # the Usage finish() read
        model = self.model or self._request()
        span = blank_span()
        span.model = model if type(model) is str else str(model)
        span.provider = self.op.provider
        span.prompt_tokens = usage.prompt_tokens
        span.comp_tokens = usage.completion_tokens
        span.latency_ms = latency if self.timed else None
        if error:
            span.status, span.error = Status.ERROR, error
        if self.trace is None:  # a trace of its own, named after the operation
            span.name = self.op.name
        span.parent_span_id = self.parent
        span.started_at = started_at
        span.ended_at = started_at + latency
        span.cached_tokens = usage.cached_tokens or None
        span.cache_write_tokens = usage.cache_write_tokens or None
        span.reasoning_tokens = usage.reasoning_tokens or None
        if usage.reported_cost is not None:  # the provider's bill, in place of the table's price
            span.cost, span.cost_source = usage.reported_cost, REPORTED
        span.ttft_ms = self.ttft_ms
        span.attributes = self._attributes()
        if self.response_id is not None:  # recorded by each process that reads it: a collector keeps one
            span.span_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"tokentrace:{span.provider}:{self.response_id}"))
        return span

    def _request(self) -> str:
        model = self.request_model
        return model if type(model) is str else str(model or "")

    def _attributes(self) -> dict[str, Any]:
        attributes: dict[str, Any] = {"gen_ai.operation.name": self.op.name}
        request = self._request()
        if request:
            attributes["gen_ai.request.model"] = request
        if self.prompt is not None:
            attributes["gen_ai.prompt"] = self.prompt
        if self.texts:
            attributes["gen_ai.completion"] = "".join(self.texts)
        if self.unread:  # the caller read the body raw: its tokens were never seen
            attributes["tokentrace.response.parsed"] = False
        if self.usage is _NO_USAGE and not self.error:  # its zero tokens are not counts the provider sent
            attributes["tokentrace.usage.reported"] = False
        if type(self.service_tier) is str:
            attributes[SERVICE_TIER] = self.service_tier
        if self.background is not None:
            attributes["tokentrace.background"] = self.background
        attributes.update(price_attributes(self.usage))  # its rates, and what is priced apart from text
        return attributes


class StreamCall(Call, gc=False):
    """A streamed call: it also sees the stream's events (see ``_streams``), and may be dropped
    unread."""

    hide_usage: bool = False  # the usage-only chunk was asked for by us, not by the caller
    watched: bool = True  # False: a stream this version could not watch, recorded as it was returned

    def mark_output(self) -> None:
        """The event being observed is the first output (sets ``ttft_ms`` once)."""
        if self.ttft_ms is None:
            self.ttft_ms = round((clock() - self.t0) * 1000)

    def abandon(self, *, deferred: bool = False) -> None:
        """The stream was closed or dropped before its end, which is where its clock stops."""
        self.finish(NOT_CONSUMED, deferred=deferred)

    def _attributes(self) -> dict[str, Any]:
        attributes = super()._attributes()
        if not self.watched:  # its tokens and time to first token were never seen
            attributes["tokentrace.stream.watched"] = False
        return attributes


def begin(kind: type[_C], settings: Settings, op: Operation, kwargs: dict[str, Any]) -> _C | None:
    """A new call of ``kind``, None when it is not to be traced. ``kwargs`` is the wrapper's own
    dict of the arguments to send, which a streamed call may add to.

    Every call made through a traced method starts here, so the usual one (outside any trace,
    nothing to capture, no extra headers) runs as few steps as can be: on the calling thread,
    code that is not in the processor's caches costs many times what it costs in a loop."""
    try:
        if _abandoned:
            record_abandoned()
        call = kind(settings, op, kwargs.get("model"))
        headers = kwargs.get("extra_headers")
        if headers:
            call.raw = _RAW_RESPONSE_HEADER in headers
            call.unread = call.raw and headers[_RAW_RESPONSE_HEADER] == _STREAMING_RESPONSE
        current = _current.get()
        if current is not None:  # else, the usual case: a trace by itself
            call.trace, call.parent, call.own_trace = _join(settings.tracer, current, op.name)
        if settings.capture_content:
            call.text_room, call.texts = settings.max_content_chars, []
            call.prompt = _content(op.prompt(kwargs), settings.max_content_chars)
        if isinstance(call, StreamCall):
            if op.prepare is not None and not call.unread:  # a body read raw gets only what was asked for
                call.hide_usage = op.prepare(kwargs)
            if _reaper is None:
                ensure_reaper()
        call.t0 = clock()  # last: the clock measures the SDK's call
        return call
    except Exception as exc:
        note_failure(settings.tracer, exc)
        return None


def _parsed(call: Call, response: Any) -> Any:
    """The result in a raw response: its ``parse()``, which the response keeps, so the caller's
    own ``parse()`` returns the same object. None, with the call recorded as failed, when the
    SDK's ``parse()`` raises (the caller's raises the same; a completion it refused keeps its
    usage, see ``Call.fail``). None too for a streaming response, whose body is the caller's to
    read: it is watched instead (see ``_streams.watch_response``)."""
    try:
        if call.unread:
            from ._streams import watch_response

            watch_response(response, call)
            return None
        return response.parse()
    except Exception as exc:
        call.fail(exc)
        return None


async def _parsed_async(call: Call, response: Any) -> Any:
    """:func:`_parsed` for an async client, whose response's ``parse()`` may need awaiting."""
    result = _parsed(call, response)
    if not inspect.isawaitable(result):
        return result
    try:
        return await result
    except Exception as exc:
        call.fail(exc)
        return None


def _join(tracer: Tracer, current: tuple[Trace, str | None], name: str) -> tuple[Trace, str | None, bool]:
    """Where the span of a call made inside a trace goes: ``(trace, parent span id, whether the
    trace is the call's own)``. The active trace when it is this tracer's, with the enclosing span
    as parent; else a child trace of the other tracer's."""
    if current[0]._tracer is tracer:
        return current[0], current[1], False
    return tracer.start(name), None, True


def _content(value: Any, limit: int) -> str | None:
    """Request content as text, its first ``limit`` characters: strings as they are, lists and
    dicts as JSON; other iterables are skipped, since reading them (a generator of messages)
    would take them from the SDK."""
    if isinstance(value, str):
        return value[:limit]
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(_cut(value, limit), default=str, ensure_ascii=False)[:limit]
    return None


def _cut(value: Any, limit: int) -> Any:
    """``value`` with every string in it cut to ``limit`` characters. Its JSON begins as the
    whole value's does for at least ``limit`` characters (a string cut there has taken that many
    already), and costs the caller's thread no more for a long document or an image sent inline."""
    if isinstance(value, str):
        return value[:limit]
    if isinstance(value, dict):
        return {key: _cut(item, limit) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_cut(item, limit) for item in value]
    return value


def _record(tracer: Tracer, trace: Trace | None, span: Span, own_trace: bool) -> None:
    if trace is None:
        tracer._emit_alone(span)
        return
    trace._add(span)  # built for this call alone: recorded without a copy
    if own_trace:
        trace.end()


# --- spans of dropped streams -------------------------------------------------------------------

_abandoned: collections.deque[tuple[Tracer, Trace | None, Span, bool]] = collections.deque()
_reaper: threading.Thread | None = None
_reaper_lock = _fork.lock()
_drain_lock = _fork.lock()


def record_abandoned() -> None:
    """Record the queued spans of dropped streams; called from clean contexts only. Returns once
    they are recorded, also when another thread was already recording them."""
    with _drain_lock:
        while _abandoned:
            tracer, trace, span, own_trace = _abandoned.popleft()
            try:
                _record(tracer, trace, span, own_trace)
            except Exception as exc:
                note_failure(tracer, exc)


def _reap_forever() -> None:
    while True:
        time.sleep(_REAP_INTERVAL_S)
        record_abandoned()


def ensure_reaper() -> None:
    """Start the ``tokentrace.streams`` thread; called when a stream is set up, never from the
    collector's context, where taking the thread-start locks could deadlock."""
    global _reaper
    if _reaper is None:
        with _reaper_lock:
            if _reaper is None:
                thread = threading.Thread(target=_reap_forever, name="tokentrace.streams", daemon=True)
                thread.start()
                _reaper = thread


def _after_fork() -> None:
    global _reaper
    _reaper = None  # the parent's thread: the child starts its own
    _abandoned.clear()  # the parent records its own
    _readers.clear()  # and reads its own files


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
# so that every flush, and the close at exit, records them first
_flush_hooks.extend((lambda timeout: record_abandoned(), wait_for_readers))


# --- method wrappers ----------------------------------------------------------------------------


def traced_sync(settings: Settings, op: Operation, original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a bound sync SDK method: one span per call; the SDK's result and errors pass through."""
    from ._streams import watch_sync

    @functools.wraps(original)
    def traced(*args: Any, **kwargs: Any) -> Any:
        call = begin(StreamCall if kwargs.get("stream") else Call, settings, op, kwargs)
        if call is None:
            return original(*args, **kwargs)
        try:
            result = original(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        made = result if not call.raw else _parsed(call, result)
        if made is None:
            return result
        if isinstance(call, StreamCall):
            watch_sync(made, call)
        else:
            call.complete(made)
        return result

    return traced


def traced_async(
    settings: Settings, op: Operation, original: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    """The ``async`` twin of :func:`traced_sync`."""
    from ._streams import watch_async

    @functools.wraps(original)
    async def traced(*args: Any, **kwargs: Any) -> Any:
        call = begin(StreamCall if kwargs.get("stream") else Call, settings, op, kwargs)
        if call is None:
            return await original(*args, **kwargs)
        try:
            result = await original(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        made = result if not call.raw else await _parsed_async(call, result)
        if made is None:
            return result
        if isinstance(call, StreamCall):
            watch_async(made, call)
        else:
            call.complete(made)
        return result

    return traced
