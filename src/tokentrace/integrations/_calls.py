"""Bookkeeping for one traced provider call: the trace it joins, its clock, and the span it records.

A :class:`Call` is made when an instrumented SDK method is entered and finished exactly once: when
the response arrives, when the SDK raises, or, for a stream, when it is exhausted, breaks, is
closed or is garbage-collected. Everything here runs inside the user's model call, so nothing may
raise into it: a failure of tokentrace's own bookkeeping is counted on the tracer as
``instrumentation_error`` (and logged once per 20 s) and the SDK call goes on untouched.

Streams dropped without being closed are noticed by the garbage collector, which may run inside
any code, including code holding one of tokentrace's locks. Those spans are therefore only queued
here (a lock-free ``deque`` append) and recorded from a clean context: the next instrumented call,
a ``tokentrace.streams`` daemon thread that looks once a second, or interpreter exit.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import functools
import json
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..pricing import Usage, normalize_usage
from ..spans import Span, Status, now_ms
from ..tracer import _current, error_text

if TYPE_CHECKING:
    from ..tracer import Trace, Tracer

__all__ = [
    "NOT_CONSUMED",
    "Call",
    "Operation",
    "Settings",
    "ensure_reaper",
    "error_text",
    "note_failure",
    "record_abandoned",
    "traced_async",
    "traced_sync",
]

NOT_CONSUMED = "stream not consumed"
_RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"  # set by the SDKs' with_raw_response wrappers
_REAP_INTERVAL_S = 1.0
_NO_USAGE = Usage()


@dataclass(frozen=True)
class Settings:
    """What one ``instrument()`` call chose: the tracer and the content-capture policy."""

    tracer: Tracer
    capture_content: bool = False
    max_content_chars: int = 2000


def _send_as_is(kwargs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    return kwargs, False


@dataclass(frozen=True)
class Operation:
    """How to read one SDK method's request, response and stream events.

    Attributes:
        provider: the span's provider (``"openai"``, ``"anthropic"``).
        name: the GenAI operation, also the name of the trace made when none is active.
        prompt: the request's input text or messages, only called when content is captured.
        read: fills a call's model, usage and completion text from a whole response.
        observe: takes one stream event; returns True to hide it from the caller.
        prepare: the keyword arguments actually sent, and whether ``observe`` may hide the
            usage-only chunk it made the provider add.
        usage: turns what ``read`` / ``observe`` left in ``Call.usage`` into a :class:`Usage`.
    """

    provider: str
    name: str
    prompt: Callable[[dict[str, Any]], Any]
    read: Callable[[Call, Any], None]
    observe: Callable[[Call, Any], bool]
    prepare: Callable[[dict[str, Any]], tuple[dict[str, Any], bool]] = _send_as_is
    usage: Callable[[Any], Usage] = normalize_usage


def note_failure(tracer: Tracer, exc: BaseException) -> None:
    """Count a failure of tokentrace's own bookkeeping; never raises."""
    with contextlib.suppress(Exception):  # the last line of defence must not raise either
        tracer._counters.drop("instrumentation_error", 1, repr(exc))


class Call:
    """One model call being measured; see the module docstring for when it finishes."""

    __slots__ = (
        "done",
        "error",
        "hide_usage",
        "model",
        "op",
        "own_trace",
        "parent",
        "prompt",
        "request_model",
        "settings",
        "started_at",
        "streaming",
        "t0",
        "t_last",
        "text_room",
        "texts",
        "trace",
        "ttft_ms",
        "usage",
    )

    def __init__(self, settings: Settings, op: Operation, kwargs: dict[str, Any], streaming: bool) -> None:
        self.settings, self.op, self.streaming = settings, op, streaming
        self.trace, self.parent, self.own_trace = _join(settings.tracer, op.name)
        model = kwargs.get("model")
        self.request_model = model if isinstance(model, str) else str(model or "")
        self.model: str | None = None
        self.usage: Any = None
        self.error: str | None = None
        self.ttft_ms: int | None = None
        self.hide_usage = self.done = False
        self.texts: list[str] = []
        capture, limit = settings.capture_content, settings.max_content_chars
        self.text_room = limit if capture else 0
        self.prompt = _content(op.prompt(kwargs), limit) if capture else None
        self.started_at = now_ms()
        self.t0 = self.t_last = time.perf_counter()

    @classmethod
    def begin(
        cls, settings: Settings, op: Operation, kwargs: dict[str, Any], streaming: bool
    ) -> tuple[Call | None, dict[str, Any]]:
        """A new call and the arguments to send; ``(None, kwargs)`` when it is not to be traced."""
        try:
            if _abandoned:
                record_abandoned()
            headers = kwargs.get("extra_headers")
            if headers and _RAW_RESPONSE_HEADER in headers:
                return None, kwargs  # with_raw_response: the SDK returns an HTTP response, not a model result
            send, hide_usage = op.prepare(kwargs)
            call = cls(settings, op, kwargs, streaming)
            call.hide_usage = hide_usage
            return call, send
        except Exception as exc:
            note_failure(settings.tracer, exc)
            return None, kwargs

    # --- what the call saw ----------------------------------------------------------------------

    def mark_output(self) -> None:
        """The first output token arrived (sets ``ttft_ms`` once)."""
        if self.ttft_ms is None:
            self.ttft_ms = round((time.perf_counter() - self.t0) * 1000)

    def add_text(self, text: Any) -> None:
        """Keep completion text, up to ``max_content_chars``, when content is captured."""
        if self.text_room > 0 and isinstance(text, str) and text:
            piece = text[: self.text_room]
            self.texts.append(piece)
            self.text_room -= len(piece)

    def observe(self, item: Any) -> bool:
        """Read one stream event; True when the caller must not see it. Never raises."""
        self.t_last = time.perf_counter()
        try:
            return self.op.observe(self, item)
        except Exception as exc:
            note_failure(self.settings.tracer, exc)
            return False

    # --- how it ended ---------------------------------------------------------------------------

    def complete(self, response: Any) -> None:
        """A whole (non-streamed) response arrived."""
        try:
            self.op.read(self, response)
        except Exception as exc:
            note_failure(self.settings.tracer, exc)
        self.finish()

    def fail(self, exc: BaseException) -> None:
        """The SDK raised ``exc`` (the caller re-raises it unchanged)."""
        try:
            text = error_text(exc)
        except Exception:  # an exception whose __str__ fails still has a type
            text = type(exc).__name__
        self.finish(text)

    def finish(self, error: str | None = None, *, abandoned: bool = False, deferred: bool = False) -> None:
        """Record the span once. ``abandoned`` ends its clock at the last event seen; ``deferred``
        queues it for a clean context (see the module docstring)."""
        if self.done:
            return
        self.done = True
        try:
            span = self._span(error or self.error, self.t_last if abandoned else time.perf_counter())
            if deferred:
                _abandoned.append((self.trace, span, self.own_trace))
            else:
                _record(self.trace, span, self.own_trace)
        except Exception as exc:
            note_failure(self.settings.tracer, exc)

    def abandon(self, *, deferred: bool = False) -> None:
        """The stream was closed or dropped before its end."""
        self.finish(NOT_CONSUMED, abandoned=True, deferred=deferred)

    def __del__(self) -> None:
        # A stream dropped before its first event: its wrapper generator never ran, so only the
        # collector sees it go. This may run inside any code, hence the deferred record.
        if self.streaming and not self.done:
            with contextlib.suppress(Exception):
                self.abandon(deferred=True)

    def _span(self, error: str | None, ended: float) -> Span:
        latency = max(round((ended - self.t0) * 1000), 0)
        usage = self._usage()
        return Span(
            model=self.model or self.request_model,
            provider=self.op.provider,
            prompt_tokens=usage.prompt_tokens,
            comp_tokens=usage.completion_tokens,
            latency_ms=latency,
            status=Status.ERROR if error else Status.OK,
            error=error,
            parent_span_id=self.parent,
            started_at=self.started_at,
            ended_at=self.started_at + latency,
            cached_tokens=usage.cached_tokens or None,
            cache_write_tokens=usage.cache_write_tokens or None,
            reasoning_tokens=usage.reasoning_tokens or None,
            ttft_ms=self.ttft_ms,
            attributes=self._attributes(),
        )

    def _usage(self) -> Usage:
        if self.usage is None:
            return _NO_USAGE
        try:
            return self.op.usage(self.usage)
        except Exception as exc:  # a usage shape this version does not know: keep the span
            note_failure(self.settings.tracer, exc)
            return _NO_USAGE

    def _attributes(self) -> dict[str, Any]:
        attributes: dict[str, Any] = {"gen_ai.operation.name": self.op.name}
        if self.request_model:
            attributes["gen_ai.request.model"] = self.request_model
        if self.settings.capture_content:
            if self.prompt is not None:
                attributes["gen_ai.prompt"] = self.prompt
            if self.texts:
                attributes["gen_ai.completion"] = "".join(self.texts)
        return attributes


def _join(tracer: Tracer, name: str) -> tuple[Trace, str | None, bool]:
    """The active trace when it is this tracer's (with the enclosing span as parent), else a new one."""
    current = _current.get()
    if current is not None and current[0]._tracer is tracer:
        return current[0], current[1], False
    return tracer.start(name), None, True


def _content(value: Any, limit: int) -> str | None:
    """Request content as text: strings as they are, lists and dicts as JSON; other iterables are
    skipped, since reading them (a generator of messages) would take them from the SDK."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, (list, tuple, dict)):
        text = json.dumps(value, default=str, ensure_ascii=False)
    else:
        return None
    return text[:limit]


def _record(trace: Trace, span: Span, own_trace: bool) -> None:
    trace.record(span)
    if own_trace:
        trace.end()


# --- spans of dropped streams -------------------------------------------------------------------

_abandoned: collections.deque[tuple[Trace, Span, bool]] = collections.deque()
_reaper: threading.Thread | None = None
_reaper_lock = threading.Lock()
_drain_lock = threading.Lock()


def record_abandoned() -> None:
    """Record the queued spans of dropped streams; called from clean contexts only. Returns once
    they are recorded, also when another thread was already recording them."""
    with _drain_lock:
        while _abandoned:
            trace, span, own_trace = _abandoned.popleft()
            try:
                _record(trace, span, own_trace)
            except Exception as exc:
                note_failure(trace._tracer, exc)


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
    global _reaper, _reaper_lock, _drain_lock
    _reaper, _reaper_lock, _drain_lock = None, threading.Lock(), threading.Lock()
    _abandoned.clear()  # the parent records its own


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
atexit.register(record_abandoned)  # registered after the tracer's, so it runs before tracers close


# --- method wrappers ----------------------------------------------------------------------------


def traced_sync(settings: Settings, op: Operation, original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a bound sync SDK method: one span per call; the SDK's result and errors pass through."""
    from ._streams import watch_sync

    @functools.wraps(original)
    def traced(*args: Any, **kwargs: Any) -> Any:
        call, send = Call.begin(settings, op, kwargs, bool(kwargs.get("stream")))
        if call is None:
            return original(*args, **kwargs)
        try:
            result = original(*args, **send)
        except BaseException as exc:
            call.fail(exc)
            raise
        if call.streaming:
            watch_sync(result, call)
        else:
            call.complete(result)
        return result

    return traced


def traced_async(
    settings: Settings, op: Operation, original: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    """The ``async`` twin of :func:`traced_sync`."""
    from ._streams import watch_async

    @functools.wraps(original)
    async def traced(*args: Any, **kwargs: Any) -> Any:
        call, send = Call.begin(settings, op, kwargs, bool(kwargs.get("stream")))
        if call is None:
            return await original(*args, **kwargs)
        try:
            result = await original(*args, **send)
        except BaseException as exc:
            call.fail(exc)
            raise
        if call.streaming:
            watch_async(result, call)
        else:
            call.complete(result)
        return result

    return traced
