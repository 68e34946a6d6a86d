"""Locks that a forked child gets back unlocked.

``os.fork()`` copies a process with only the thread that forked: a lock another thread held at
that moment (the tracer's worker pricing a span, aggregating a batch, evaluating the alert rules)
stays held in the child for ever, and the child's first ``cost()``, query or traced call waiting
on it would hang. Every lock tokentrace makes comes from here, and is set back to unlocked in a
child, as the standard library does for its own (``logging``, ``concurrent.futures``).

What a lock guards is left as the parent's thread had it, which under the interpreter lock is
between two bytecodes: a dict has its item or not, a batch may be partly aggregated.

Example::

    self._lock = _fork.lock()
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar, cast

_T = TypeVar("_T")


class _Reinit(Protocol):
    def _at_fork_reinit(self) -> None: ...


_made: weakref.WeakSet[Any] = weakref.WeakSet()


def _kept(made: _T) -> _T:
    _made.add(made)
    return made


def lock() -> threading.Lock:
    """A ``threading.Lock`` that a forked child finds unlocked."""
    return _kept(threading.Lock())


def rlock() -> threading.RLock:
    """A ``threading.RLock`` that a forked child finds unlocked."""
    return _kept(threading.RLock())


def condition() -> threading.Condition:
    """A ``threading.Condition`` whose lock a forked child finds unlocked, with no waiters."""
    return _kept(threading.Condition())


class PerProcess(Generic[_T]):
    """What each process makes for itself, such as an HTTP client and its connections: a forked
    child never shares the parent's sockets, so it makes its own on first use.

    Example::

        self._client = _fork.PerProcess(httpx.Client)
        self._client.get().post(...)
    """

    def __init__(self, make: Callable[[], _T]) -> None:
        self._make = make
        self._value: _T | None = None
        self._pid = 0

    def get(self) -> _T:
        """This process's value, made now if it has none yet."""
        if self._value is None or self._pid != os.getpid():
            self._value, self._pid = self._make(), os.getpid()
        return self._value

    def made(self) -> _T | None:
        """This process's value if it made one (a parent's is the parent's to close), else None."""
        return self._value if self._pid == os.getpid() else None

    def take(self) -> _T | None:
        """Like :meth:`made`, and no longer held: to close it, the next :meth:`get` making anew."""
        value = self.made()
        self._value = None
        return value


def _reinit() -> None:
    for made in list(_made):
        cast(_Reinit, made)._at_fork_reinit()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit)
