"""Automatic spans for the OpenAI and Anthropic SDK clients: sync, async and streamed calls.

Example::

    client = tracer.instrument(openai.OpenAI())   # or integrations.instrument(tracer, client)
    client.chat.completions.create(model="gpt-4o", messages=[...])   # one span, priced
    tokentrace.uninstrument(client)

Each model call becomes one span in the trace active where it is made (``with tracer.trace(...)``),
or in a trace of its own named after the operation (``"chat"``, ``"responses"``, ``"embeddings"``,
``"messages"``). The span carries the response's model id (the requested one when there is no
response), token counts from the response usage, latency, time to first token for streams, and
the SDK's exception as ``"TypeName: message"`` when the call fails (the exception itself reaches
the caller unchanged). Its attributes hold ``gen_ai.operation.name`` and ``gen_ai.request.model``;
prompt and completion text are added (``gen_ai.prompt``, ``gen_ai.completion``) only with
``capture_content=True``, without which an exception whose message may quote them (any but the
SDK's API errors and the transport's) is recorded by its type alone.

Only the given client object is changed, never the SDK's classes, so two clients can report to
two tracers; copies made with ``client.with_options(...)`` / ``client.copy(...)`` are traced like
their original. The ``openai`` module itself may be given, for the calls made through it
(``openai.chat.completions.create(...)``): its client is instrumented. The SDKs are imported only
when a client of theirs is instrumented.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from ._calls import Settings, note_failure
from ._patch import Patch, replace, restore, then

if TYPE_CHECKING:
    from ..tracer import Tracer

__all__ = ["instrument", "uninstrument"]

C = TypeVar("C")

_STATE = "_tokentrace_instrumentation"
_PACKAGES = ("openai", "anthropic")  # the SDKs with an integration module of the same name
_SUPPORTED = (
    "openai.OpenAI, openai.AsyncOpenAI, anthropic.Anthropic, anthropic.AsyncAnthropic, or anthropic's "
    "Vertex AI / Bedrock client, or the openai module"
)
_VIEWS = ("with_raw_response", "with_streaming_response")  # cached by the SDKs; see _forget_views


@dataclass(frozen=True)
class _Instrumentation:
    """Kept on an instrumented client: what to undo."""

    patches: list[Patch]


def instrument(tracer: Tracer, client: C, *, capture_content: bool = False, max_content_chars: int = 2000) -> C:
    """Trace every model call ``client`` makes, on ``tracer``; returns the same client.

    Instrumenting a client that already is has no effect (its first tracer keeps it).

    Args:
        tracer: the :class:`~tokentrace.Tracer` the spans go to.
        client: an ``openai.OpenAI`` / ``openai.AsyncOpenAI`` (Azure ones too) or an
            ``anthropic.Anthropic`` / ``anthropic.AsyncAnthropic`` client (the SDK's Vertex AI and
            Bedrock clients too); or the ``openai`` module, whose client (the one its module-level
            calls go through) is instrumented, made now if it was not yet.
        capture_content: also record prompt and completion text in the span's attributes.
        max_content_chars: the most characters kept of each of them.

    Raises:
        TypeError: ``client`` is none of the supported clients, or ``tracer`` is not a tracer.
        ValueError: ``max_content_chars`` is negative.
        ImportError: the client's SDK cannot be imported (install ``tokentrace[openai]`` or
            ``tokentrace[anthropic]``).
        openai.OpenAIError: the ``openai`` module's client cannot be made (older SDKs make it
            only with an API key set), as its first call would raise.
    """
    if not callable(getattr(tracer, "start", None)):
        raise TypeError(f"tracer must be a tokentrace.Tracer, got {type(tracer).__name__}")
    if type(max_content_chars) is not int or max_content_chars < 0:
        raise ValueError(f"max_content_chars must be a non-negative int, got {max_content_chars!r}")
    if _is_openai_module(client):
        module_client = client._load_client()  # type: ignore[attr-defined]
        instrument(tracer, module_client, capture_content=capture_content, max_content_chars=max_content_chars)
        return client
    if _state(client) is not None:
        return client
    integration = _integration_for(client)
    settings = Settings(tracer, bool(capture_content), max_content_chars)
    patches = integration.patch(client, settings) if integration is not None else None
    if patches is None:
        raise TypeError(f"tokentrace can instrument an {_SUPPORTED}, got {_named(client)}")
    patches += _trace_copies(client, settings)
    setattr(client, _STATE, _Instrumentation(patches))
    _forget_views(client)
    return client


def uninstrument(client: C) -> C:
    """Stop tracing ``client`` (or the ``openai`` module's client); a client that is not
    instrumented is returned as it is."""
    if _is_openai_module(client):
        module_client = getattr(client, "_client", None)
        if module_client is not None:
            uninstrument(module_client)
        return client
    state = _state(client)
    if state is not None:
        restore(state.patches)
        delattr(client, _STATE)
        _forget_views(client)
    return client


def _forget_views(holder: Any, depth: int = 2) -> None:
    """Drop the SDKs' cached ``with_raw_response`` / ``with_streaming_response`` views from the
    client and its resources (``client.chat``, ``client.chat.completions``): each holds the
    methods as they were when it was made, so they are made again after the methods change."""
    attributes = getattr(holder, "__dict__", None)
    if not isinstance(attributes, dict):
        return
    for view in _VIEWS:
        attributes.pop(view, None)
    if depth:
        for value in list(attributes.values()):
            _forget_views(value, depth - 1)


def _named(thing: Any) -> str:
    """What ``thing`` is, for an error: a class given in place of a client is named as such."""
    if isinstance(thing, type):
        package = thing.__module__.partition(".")[0]  # openai.OpenAI, as it is imported, not openai._client.OpenAI
        return f"the class {package}.{thing.__qualname__} itself: instrument a client made from it"
    if isinstance(thing, ModuleType):
        return f"the module {thing.__name__}"
    return type(thing).__qualname__


def _is_openai_module(client: Any) -> bool:
    """Whether ``client`` is the ``openai`` module, whose module-level calls go through a client
    it makes on first use (``openai._load_client()``)."""
    return isinstance(client, ModuleType) and client.__name__ == "openai" and hasattr(client, "_load_client")


def _state(client: Any) -> _Instrumentation | None:
    state = getattr(client, "__dict__", {}).get(_STATE)
    return state if isinstance(state, _Instrumentation) else None


def _integration_for(client: Any) -> ModuleType | None:
    """The integration module for the SDK ``client`` comes from (which tells whether it is one of
    that SDK's clients), found without importing any SDK; None for an object of no such SDK."""
    for cls in type(client).__mro__:
        package = cls.__module__.partition(".")[0]
        if package in _PACKAGES:
            return importlib.import_module(f"{__name__}.{package}")
    return None


def _trace_copies(client: Any, settings: Settings) -> list[Patch]:
    """``client.copy()`` / ``client.with_options()`` build a fresh client: instrument it the same way."""
    patches = []
    for name in ("copy", "with_options"):
        if callable(getattr(client, name, None)):
            patches.append(replace(client, name, _copier(settings)))
    return patches


def _copier(settings: Settings) -> Callable[[Any], Callable[..., Any]]:
    def instrumented(new: Any, args: Any, kwargs: Any) -> Any:
        try:
            instrument(
                settings.tracer,
                new,
                capture_content=settings.capture_content,
                max_content_chars=settings.max_content_chars,
            )
        except Exception as exc:
            note_failure(settings.tracer, exc)
        return new

    return then(instrumented)
