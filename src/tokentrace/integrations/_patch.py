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

__all__ = ["Patch", "replace", "restore", "returning"]


@dataclass(frozen=True)
class Patch:
    """``owner.name`` was set to ``wrapper``."""

    owner: Any
    name: str
    wrapper: Any


# The SDKs' ``with_raw_response`` / ``with_streaming_response`` views are cached on a resource, on
# its client and on the client's other resources (``client.chat``), and hold the methods as they
# were when first made: forgotten whenever the methods change.
_VIEWS = ("with_raw_response", "with_streaming_response")


def replace(owner: Any, name: str, make: Callable[[Any], Any]) -> Patch:
    """Set ``owner.name`` to ``make(owner.name)`` on the instance."""
    wrapper = make(getattr(owner, name))
    setattr(owner, name, wrapper)
    _forget_views(owner)
    return Patch(owner, name, wrapper)


def returning(wrap: Callable[[Any, dict[str, Any]], Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A ``make`` for :func:`replace`: the method, its result handed back as ``wrap(result, kwargs)``."""

    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def method(*args: Any, **kwargs: Any) -> Any:
            return wrap(original(*args, **kwargs), kwargs)

        return method

    return make


def restore(patches: list[Patch]) -> None:
    """Remove the instance attributes the patches set, when they are still ours."""
    for patch in reversed(patches):
        attributes = vars(patch.owner)
        if attributes.get(patch.name) is patch.wrapper:
            del attributes[patch.name]
        _forget_views(patch.owner)


def _forget_views(owner: Any) -> None:
    client = getattr(owner, "_client", None)
    resources = list(vars(client).values()) if hasattr(client, "__dict__") else []
    for holder in (owner, client, *resources):
        attributes = getattr(holder, "__dict__", None)
        if isinstance(attributes, dict):
            for view in _VIEWS:
                attributes.pop(view, None)
