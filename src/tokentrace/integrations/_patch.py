"""Replace methods on one SDK object (never its class) and put them back.

An instance attribute shadows the class's method, so only that client is traced and two clients
can report to two tracers. A :class:`Patch` remembers what it set, so undoing it leaves alone
anything set over it later.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["AsyncStandIn", "Patch", "SyncStandIn", "replace", "restore", "then"]


@dataclass(frozen=True)
class Patch:
    """``owner.name`` was set to ``wrapper``."""

    owner: Any
    name: str
    wrapper: Any


def replace(owner: Any, name: str, make: Callable[[Any], Any]) -> Patch:
    """Set ``owner.name`` to ``make(owner.name)`` on the instance."""
    wrapper = make(getattr(owner, name))
    setattr(owner, name, wrapper)
    return Patch(owner, name, wrapper)


def then(
    after: Callable[[Any, tuple[Any, ...], dict[str, Any]], Any], *, awaited: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A ``make`` for :func:`replace`: the method (awaited, for an async client's), its result
    handed back as ``after(result, args, kwargs)``."""

    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        if awaited:

            @functools.wraps(original)
            async def awaiting(*args: Any, **kwargs: Any) -> Any:
                return after(await original(*args, **kwargs), args, kwargs)

            return awaiting

        @functools.wraps(original)
        def method(*args: Any, **kwargs: Any) -> Any:
            return after(original(*args, **kwargs), args, kwargs)

        return method

    return make


def restore(patches: list[Patch]) -> None:
    """Remove the instance attributes the patches set, when they are still ours."""
    for patch in reversed(patches):
        attributes = vars(patch.owner)
        if attributes.get(patch.name) is patch.wrapper:
            del attributes[patch.name]


class _StandIn:
    """Base of the stand-ins for an SDK's stream managers: what a stand-in does not change goes to
    the manager it wraps."""

    def __init__(self, inner: Any, settings: Any) -> None:
        self._inner, self._settings = inner, settings

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class SyncStandIn(_StandIn):
    """A stand-in for a ``with`` manager; subclasses define ``__enter__``."""

    def __exit__(self, *exc_info: Any) -> Any:
        return self._inner.__exit__(*exc_info)


class AsyncStandIn(_StandIn):
    """A stand-in for an ``async with`` manager; subclasses define ``__aenter__``."""

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self._inner.__aexit__(*exc_info)
