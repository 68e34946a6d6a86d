"""Watch an SDK stream in place, so the caller keeps the SDK's own object and all its methods.

Both SDKs' ``Stream`` / ``AsyncStream`` read their events from ``self._iterator``; the stream's
iterator is swapped for a generator that shows each event to the :class:`~._calls.StreamCall` on its
way to the caller, and its ``close`` for one that ends the span first. Every way of reading the
stream (``for``, ``next()``, the helpers' ``get_final_message()``, ``until_done()``, text
streams) goes through that generator, so the span ends with the stream:

- exhausted: the usage seen, status ok (or the error the provider reported in-band);
- an exception breaks it: that exception's ``"TypeName: message"``, and it reaches the caller;
- closed early, or garbage-collected unread: ``"stream not consumed"``, with the usage seen so far.

The ``close`` replacement holds the stream only weakly: Anthropic's streams are built so that
dropping the last reference frees them at once, and that must stay true.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from ._calls import StreamCall, ensure_reaper, note_failure

__all__ = ["watch_async", "watch_sync"]


def watch_sync(stream: Any, call: StreamCall) -> None:
    """Route a sync SDK stream's events through ``call``; never raises."""
    try:
        ensure_reaper()
        stream._iterator = _iterate(stream._iterator, call)
        stream.close = _sync_closer(stream, call)
    except Exception as exc:
        _unwatchable(call, exc)


def watch_async(stream: Any, call: StreamCall) -> None:
    """Route an async SDK stream's events through ``call``; never raises."""
    try:
        ensure_reaper()
        stream._iterator = _aiterate(stream._iterator, call)
        stream.close = _async_closer(stream, call)
    except Exception as exc:
        _unwatchable(call, exc)


def _unwatchable(call: StreamCall, exc: Exception) -> None:
    # Not a stream this module knows: record the call as it stands rather than lose it.
    note_failure(call.settings.tracer, exc)
    call.finish()


def _iterate(inner: Iterator[Any], call: StreamCall) -> Iterator[Any]:
    try:
        for item in inner:
            if not call.observe(item):
                yield item
    except GeneratorExit:  # the stream is being collected: record from a clean context
        call.abandon(deferred=True)
        raise
    except BaseException as exc:
        call.fail(exc)
        raise
    call.finish()


async def _aiterate(inner: AsyncIterator[Any], call: StreamCall) -> AsyncIterator[Any]:
    try:
        async for item in inner:
            if not call.observe(item):
                yield item
    except GeneratorExit:
        call.abandon(deferred=True)
        raise
    except BaseException as exc:
        call.fail(exc)
        raise
    call.finish()


def _sync_closer(stream: Any, call: StreamCall) -> Callable[[], None]:
    close = type(stream).close
    ref = weakref.ref(stream)

    def closer() -> None:
        call.abandon()  # a no-op once the stream was read to its end
        target = ref()
        if target is not None:
            close(target)

    return closer


def _async_closer(stream: Any, call: StreamCall) -> Callable[[], Awaitable[None]]:
    close = type(stream).close
    ref = weakref.ref(stream)

    async def closer() -> None:
        call.abandon()
        target = ref()
        if target is not None:
            await close(target)

    return closer
