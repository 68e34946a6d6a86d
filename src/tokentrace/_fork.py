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
from typing import Any, Protocol, cast


class _Reinit(Protocol):
    def _at_fork_reinit(self) -> None: ...


_made: weakref.WeakSet[Any] = weakref.WeakSet()


def lock() -> threading.Lock:
    """A ``threading.Lock`` that a forked child finds unlocked."""
    made = threading.Lock()
    _made.add(made)
    return made


def rlock() -> threading.RLock:
    """A ``threading.RLock`` that a forked child finds unlocked."""
    made = threading.RLock()
    _made.add(made)
    return made


def condition() -> threading.Condition:
    """A ``threading.Condition`` whose lock a forked child finds unlocked, with no waiters."""
    made = threading.Condition()
    _made.add(made)
    return made


def _reinit() -> None:
    for made in list(_made):
        cast(_Reinit, made)._at_fork_reinit()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit)
