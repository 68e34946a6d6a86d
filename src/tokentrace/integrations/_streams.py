"""Watch an SDK stream in place, so the caller keeps the SDK's own object and all its methods.

Both SDKs' ``Stream`` / ``AsyncStream`` read their events from ``self._iterator``; the stream's
iterator is swapped for a generator that hands each event, on its way to the caller, to the
operation's ``observe`` with the :class:`~._calls.StreamCall` (a failure to read one is counted and
the event passes), and its ``close`` for one that ends the span first. Every way of reading the
stream (``for``, ``next()``, the helpers' ``get_final_message()``, ``until_done()``, text
streams) goes through that generator, so the span ends with the stream:

- exhausted: the usage seen, status ok (or the error the provider reported in-band);
- an exception breaks it: that exception's ``"TypeName: message"``, and it reaches the caller;
- closed early, or garbage-collected unread: ``"stream not consumed"``, with the usage seen so far.

The generator is started as soon as it is set in place, and waits before its first read: closing
a generator that never started runs none of its code, and a stream dropped unread must be seen.

The ``close`` replacement holds the stream only weakly: Anthropic's streams are built so that
dropping the last reference frees them at once, and that must stay true.
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from typing import Any

from ._calls import StreamCall, clock, note_failure

__all__ = ["closer", "watch_async", "watch_sync"]


def watch_sync(stream: Any, call: StreamCall) -> None:
    """Route a sync SDK stream's events through ``call``; never raises."""
    try:
        events = _iterate(stream._iterator, call)
        next(events)  # primed: from here on, dropping the stream closes the generator
        stream.close = functools.partial(_close_sync, call, weakref.ref(stream))
        stream._iterator = events  # last: a stream that cannot be watched is left as it was
    except Exception as exc:
        _unwatchable(call, exc)


def watch_async(stream: Any, call: StreamCall) -> None:
    """Route an async SDK stream's events through ``call``; never raises."""
    try:
        events = _aiterate(stream._iterator, call)
        with contextlib.suppress(StopIteration):  # primed as in watch_sync: no await comes first
            events.asend(None).send(None)
        stream.close = functools.partial(_close_async, call, weakref.ref(stream))
        stream._iterator = events  # last: a stream that cannot be watched is left as it was
    except Exception as exc:
        _unwatchable(call, exc)


def closer(stream: Any) -> Any:
    """The ``close`` set on ``stream`` by :func:`watch_sync` / :func:`watch_async`; None when the
    stream is not watched."""
    close = getattr(stream, "__dict__", {}).get("close")
    watching = isinstance(close, functools.partial) and close.func in (_close_sync, _close_async)
    return close if watching else None


def _close_sync(call: StreamCall, ref: weakref.ref[Any]) -> None:
    """Stands in for the sync stream's ``close``: ends the span, then closes the stream."""
    call.abandon()  # a no-op once the stream was read to its end
    stream = ref()
    if stream is not None:
        type(stream).close(stream)


async def _close_async(call: StreamCall, ref: weakref.ref[Any]) -> None:
    """Stands in for the async stream's ``close``."""
    call.abandon()
    stream = ref()
    if stream is not None:
        await type(stream).close(stream)


def _unwatchable(call: StreamCall, exc: Exception) -> None:
    # Not a stream this module knows: record the call as it stands rather than lose it, marked.
    note_failure(call.settings.tracer, exc)
    call.watched = False
    call.finish()


def _iterate(inner: Iterator[Any], call: StreamCall) -> Generator[Any, None, None]:
    observe = call.op.observe
    try:
        yield None  # taken by watch_sync
        for item in inner:
            call.t_last = clock()
            try:
                hidden = observe(call, item)
            except Exception as exc:  # an event this version cannot read still reaches the caller
                note_failure(call.settings.tracer, exc)
                hidden = False
            if not hidden:
                yield item
    except GeneratorExit:  # the stream is being collected: record from a clean context
        call.abandon(deferred=True)
        raise
    except BaseException as exc:
        call.fail(exc)
        raise
    call.finish()


async def _aiterate(inner: AsyncIterator[Any], call: StreamCall) -> AsyncGenerator[Any, None]:
    observe = call.op.observe
    try:
        yield None  # taken by watch_async
        async for item in inner:
            call.t_last = clock()
            try:
                hidden = observe(call, item)
            except Exception as exc:
                note_failure(call.settings.tracer, exc)
                hidden = False
            if not hidden:
                yield item
    except GeneratorExit:
        call.abandon(deferred=True)
        raise
    except BaseException as exc:
        call.fail(exc)
        raise
    call.finish()
