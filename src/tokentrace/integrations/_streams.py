"""Watch an SDK stream in place, so the caller keeps the SDK's own object and all its methods.

Both SDKs' ``Stream`` / ``AsyncStream`` read their events from ``self._iterator``; the stream's
iterator is swapped for a generator that hands the events, on their way to the caller, to the
operation's ``observe`` with the :class:`~._calls.StreamCall` (a failure to read one is counted and
the event passes), and its ``close`` for one that ends the span first (see below). Past the first
output, and unless content is still being captured, the events the operation's ``skip`` names
(the text deltas, most of a long stream) pass with a C-level check each, and no clock is read per
event: a long stream costs tens of nanoseconds per event, not a Python call. Every way of reading
the stream (``for``, ``next()``, the helpers' ``get_final_message()``, ``until_done()``,
text streams) goes through that generator, so the span ends with the stream:

- exhausted: the usage seen, status ok (or the error the provider reported in-band);
- an exception breaks it: that exception (recorded as ``Call.fail`` says), and it reaches the caller;
- closed early, or garbage-collected unread: ``"stream not consumed"``, with the usage seen so far,
  its clock stopped then.

Read on after ``close()``, the stream's events come from the SDK as they would, but for the
usage-only chunk the operation made the provider add, which stays hidden.

The generator is started as soon as it is set in place, and waits before its first read: closing
a generator that never started runs none of its code, and a stream dropped unread must be seen.

The stream's ``close`` is replaced by moving the stream into a subclass of its own class (made
once per class) whose ``close`` first ends the span, by throwing :class:`StreamClosed` into the
generator: nothing is added to the stream itself, and nothing it holds refers back to it, so
Anthropic's streams, built to be freed as soon as the last reference is dropped, still are.

The HTTP responses of ``with_streaming_response`` calls, whose body is the caller's to read, are
moved to a subclass the same way, whose ``parse`` and ``close`` end the call (see
:func:`watch_response`).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from typing import Any

from ._calls import Call, StreamCall, note_failure

__all__ = ["closer", "record_each", "watch_async", "watch_response", "watch_sync"]


def watch_sync(stream: Any, call: StreamCall) -> None:
    """Route a sync SDK stream's events through ``call``; never raises."""
    cls = type(stream)
    try:
        events = _iterate(stream._iterator, call)
        next(events)  # primed: from here on, dropping the stream closes the generator
        stream.__class__ = _watching(cls, _SYNC_STREAM)
        stream._iterator = events
    except Exception as exc:
        _unwatchable(stream, cls, call, exc)


def watch_async(stream: Any, call: StreamCall) -> None:
    """Route an async SDK stream's events through ``call``; never raises."""
    cls = type(stream)
    try:
        events = _aiterate(stream._iterator, call)
        with contextlib.suppress(StopIteration):  # primed as in watch_sync: no await comes first
            events.asend(None).send(None)
        stream.__class__ = _watching(cls, _ASYNC_STREAM)
        stream._iterator = events
    except Exception as exc:
        _unwatchable(stream, cls, call, exc)


def closer(stream: Any) -> Any:
    """The ``close`` of a stream watched by :func:`watch_sync` / :func:`watch_async`, which ends
    the span first; None when the stream is not watched."""
    return stream.close if getattr(type(stream), "close", None) in (_close_sync, _close_async) else None


class StreamClosed(Exception):
    """Thrown into a watched stream's generator by the stream's ``close``: the caller stopped
    reading, and the span ends as not consumed."""


def _close_sync(self: Any) -> None:
    """A watched sync stream's ``close``: ends the span, then closes the stream as its SDK does."""
    with contextlib.suppress(Exception):  # StreamClosed again: the generator had already ended
        self._iterator.throw(StreamClosed())
    super(type(self), self).close()  # the SDK's close: the watched class has no other base


async def _close_async(self: Any) -> None:
    """A watched async stream's ``close``."""
    with contextlib.suppress(Exception):
        await self._iterator.athrow(StreamClosed())
    await super(type(self), self).close()


_SYNC_STREAM = {"close": _close_sync}
_ASYNC_STREAM = {"close": _close_async}
_classes: dict[type, type] = {}  # an SDK class -> the class its watched objects are moved to


def _watching(cls: type, methods: dict[str, Callable[..., Any]]) -> type:
    """A subclass of ``cls`` of the same name, made once, with ``methods`` in place of its own. Its
    only base is ``cls``, so that its objects have the same layout and may be moved to it."""
    watched = _classes.get(cls)
    if watched is None:
        watched = _classes[cls] = type(cls.__name__, (cls,), {"__module__": __name__, **methods})
    return watched


def _unwatchable(stream: Any, cls: type, call: StreamCall, exc: Exception) -> None:
    # Not a stream this module knows: left as it was, and the call recorded as it stands rather
    # than lost, marked.
    with contextlib.suppress(Exception):
        stream.__class__ = cls
    note_failure(call.settings.tracer, exc)
    call.watched = False
    call.finish()


def _iterate(inner: Iterator[Any], call: StreamCall) -> Generator[Any, None, None]:
    observe = call.op.observe
    key, values = call.op.skip
    passing = False  # past the first output, with no (more) content to capture: the events in values pass unread
    try:
        yield None  # taken by watch_sync
        for item in inner:
            try:
                if passing and key(item) in values:
                    hidden = False
                else:
                    hidden = observe(call, item)
                    passing = call.ttft_ms is not None and call.text_room <= 0
            except Exception as exc:  # an event this version cannot read still reaches the caller
                note_failure(call.settings.tracer, exc)
                hidden = False
            if not hidden:
                yield item
    except StreamClosed:  # thrown by the stream's close()
        call.abandon()
    except GeneratorExit:  # the stream is being collected: record from a clean context
        call.abandon(deferred=True)
        raise
    except BaseException as exc:
        call.fail(exc)
        raise
    else:
        call.finish()
        return
    yield None  # returned to close(); what is read after it comes from the SDK's stream as it would
    for item in inner:
        if not _added(call, item):
            yield item


async def _aiterate(inner: AsyncIterator[Any], call: StreamCall) -> AsyncGenerator[Any, None]:
    observe = call.op.observe
    key, values = call.op.skip
    passing = False
    try:
        yield None  # taken by watch_async
        async for item in inner:
            try:
                if passing and key(item) in values:
                    hidden = False
                else:
                    hidden = observe(call, item)
                    passing = call.ttft_ms is not None and call.text_room <= 0
            except Exception as exc:
                note_failure(call.settings.tracer, exc)
                hidden = False
            if not hidden:
                yield item
    except StreamClosed:
        call.abandon()
    except GeneratorExit:
        call.abandon(deferred=True)
        raise
    except BaseException as exc:
        call.fail(exc)
        raise
    else:
        call.finish()
        return
    yield None
    async for item in inner:
        if not _added(call, item):
            yield item


def _added(call: StreamCall, item: Any) -> bool:
    """Whether ``item``, read after the stream's ``close()``, is the event the call's operation
    made the provider add (the usage-only chunk), which the caller did not ask for; never raises."""
    added = call.op.added
    if not call.hide_usage or added is None:
        return False
    try:
        return added(item)
    except Exception:  # an event this version cannot read reaches the caller
        return False


# --- results read as they pass -------------------------------------------------------------------


def record_each(stream: Any, record: Callable[[Any], None]) -> bool:
    """Hand each item of an SDK stream (or of a batch's results decoder), read from its
    ``_iterator``, to ``record`` on its way to the caller, who keeps the SDK's object; False, with
    the object left as it was, when it has no iterator (a response whose body is the caller's).
    ``record`` must never raise."""
    inner = getattr(stream, "_iterator", None)
    if inner is None:
        return False
    recording = _recording_async if hasattr(inner, "__anext__") else _recording
    stream.__dict__["_iterator"] = recording(inner, record)
    return True


def _recording(inner: Iterator[Any], record: Callable[[Any], None]) -> Iterator[Any]:
    for item in inner:
        record(item)
        yield item


async def _recording_async(inner: AsyncIterator[Any], record: Callable[[Any], None]) -> AsyncIterator[Any]:
    async for item in inner:
        record(item)
        yield item


# --- the responses of with_streaming_response -----------------------------------------------------

_CALL = "_tokentrace_call"  # where a watched response keeps its call until it is parsed or closed
_STREAM = "_tokentrace_stream"  # and the stream its body parsed to, ended as not consumed by its close


def watch_response(response: Any, call: Call) -> None:
    """Trace a ``with_streaming_response`` call through its response, whose body is the caller's
    to read, by moving the response to a subclass (as a stream is) that keeps the call. The span is
    read from the response's first ``parse()`` (a stream it parses to is then watched as any, and
    ended as not consumed if the response is closed first); a response closed unparsed (its
    ``with`` block left) is read from the body the caller read in full, and is otherwise recorded
    without tokens, marked ``"tokentrace.response.parsed": false``, as is one collected before it
    was parsed or closed. Never raises."""
    cls = type(response)
    try:
        methods = _ASYNC_RESPONSE if inspect.iscoroutinefunction(cls.parse) else _SYNC_RESPONSE
        response.__class__ = _watching(cls, methods)
        vars(response)[_CALL] = call
    except Exception as exc:
        with contextlib.suppress(Exception):
            response.__class__ = cls
        note_failure(call.settings.tracer, exc)
        call.finish()


def _take(response: Any, call: Call, result: Any, watch: Callable[[Any, StreamCall], None]) -> None:
    """End a watched response's ``call`` with what its body parsed to (None: not parsed)."""
    try:
        if result is None:
            _read_unparsed(response, call)
            call.finish()
            return
        call.unread = False
        if isinstance(call, StreamCall):
            watch(result, call)
            vars(response)[_STREAM] = result
        else:
            call.complete(result)
    except Exception as exc:
        note_failure(call.settings.tracer, exc)


def _read_unparsed(response: Any, call: Call) -> None:
    """What the call's operation reads of a response whose body the caller kept to itself."""
    read = call.op.unparsed
    if read is None:
        return
    try:
        read(call, response.http_response)
        call.unread = call.usage is None  # else, all that is billed was seen
    except Exception as exc:
        note_failure(call.settings.tracer, exc)


def _read_in_full(response: Any, call: Call) -> bool:
    """Whether the caller read a whole (not streamed) body, which the response then keeps."""
    if isinstance(call, StreamCall):
        return False
    try:
        response.http_response.content  # noqa: B018 - raises when the body was not read in full
    except Exception:
        return False
    return True


def _parse_sync(self: Any, **options: Any) -> Any:
    """A watched response's ``parse``: the SDK's, whose result (the default one, not ``to=``'s)
    the call is read from."""
    parsed = super(type(self), self).parse(**options)
    if options.get("to") is None:
        call = vars(self).pop(_CALL, None)
        if call is not None:
            _take(self, call, parsed, watch_sync)
    return parsed


def _close_response_sync(self: Any) -> None:
    """A watched response's ``close``: ends the call, or the stream it parsed to, then closes."""
    call, stream = vars(self).pop(_CALL, None), vars(self).pop(_STREAM, None)
    if call is not None:
        result = None
        if _read_in_full(self, call):
            with contextlib.suppress(Exception):
                result = super(type(self), self).parse()
        _take(self, call, result, watch_sync)
    elif stream is not None and (close := closer(stream)) is not None:
        with contextlib.suppress(Exception):  # ends its span; what the SDK's close raises, it raises below
            close()
    super(type(self), self).close()


async def _parse_async(self: Any, **options: Any) -> Any:
    """The ``parse`` of a watched async response."""
    parsed = await super(type(self), self).parse(**options)
    if options.get("to") is None:
        call = vars(self).pop(_CALL, None)
        if call is not None:
            _take(self, call, parsed, watch_async)
    return parsed


async def _close_response_async(self: Any) -> None:
    """The ``close`` of a watched async response."""
    call, stream = vars(self).pop(_CALL, None), vars(self).pop(_STREAM, None)
    if call is not None:
        result = None
        if _read_in_full(self, call):
            with contextlib.suppress(Exception):
                result = await super(type(self), self).parse()
        _take(self, call, result, watch_async)
    elif stream is not None and (close := closer(stream)) is not None:
        with contextlib.suppress(Exception):
            await close()
    await super(type(self), self).close()


def _collected(self: Any) -> None:
    """A watched response's ``__del__``: one never parsed nor closed (entered by hand, its block
    never left) has its call recorded as it stands, from a clean context; then the SDK's own
    ``__del__``, should its class have one."""
    with contextlib.suppress(Exception):
        call = vars(self).pop(_CALL, None)
        if call is not None:
            call.finish(deferred=True)
    sdk = getattr(super(type(self), self), "__del__", None)
    if sdk is not None:
        sdk()


_SYNC_RESPONSE = {"parse": _parse_sync, "close": _close_response_sync, "__del__": _collected}
_ASYNC_RESPONSE = {"parse": _parse_async, "close": _close_response_async, "__del__": _collected}
