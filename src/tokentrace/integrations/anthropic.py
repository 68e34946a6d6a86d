"""Tracing for ``anthropic.Anthropic`` and ``anthropic.AsyncAnthropic`` clients (and subclasses), and
for the SDK's Vertex AI and Bedrock clients (``AnthropicVertex``, ``AnthropicBedrock``, and
``AnthropicBedrockMantle`` for Bedrock's Anthropic-compatible endpoint, and their async twins),
whose spans name the provider ``"gcp.vertex_ai"`` / ``"aws.bedrock"``.

Traced: ``messages.create`` (also with ``stream=True``), ``messages.parse`` (structured outputs, a
request of its own) and ``messages.stream(...)``, whose manager is handed back wrapped: the span
starts when its ``with`` block sends the request and ends with the stream (read to its end, closed
by the block's exit, or collected); the same methods of ``beta.messages``. Calls made through
``with_raw_response`` are traced through the result their response parses (see
``_calls._parsed``); ``with_streaming_response`` ones through their response's ``parse()`` (see
``_streams.watch_response``).

Usage: Anthropic's ``input_tokens`` exclude the prompt cache, so cache reads and cache writes are
added into ``prompt_tokens`` and reported as ``cached_tokens`` / ``cache_write_tokens``; a stream's
``message_start`` usage is updated by the cumulative counts of its ``message_delta``; thinking
tokens (``output_tokens_details.thinking_tokens``) become ``reasoning_tokens``.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import operator
from collections.abc import Callable
from typing import Any

try:
    import anthropic
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "tracing an Anthropic client needs the anthropic package: pip install 'tokentrace[anthropic]'"
    ) from exc

from ..pricing import Usage, normalize_usage, provider_at
from ._calls import (
    MODEL_AND_USAGE,
    Call,
    Latest,
    Operation,
    Settings,
    StreamCall,
    _content,
    begin,
    first_time,
    for_provider,
    note_failure,
    ran,
    result_call,
    traced_async,
    traced_sync,
    transport_errors,
)
from ._patch import AsyncStandIn, Patch, SyncStandIn, replace, then
from ._streams import record_each, watch_async, watch_sync

__all__ = ["BEDROCK", "MESSAGES", "VERTEX", "patch"]


def _usage(kept: Any) -> Usage:
    """What a call kept of its usage, as a :class:`Usage`, read when the call ends: a whole
    message's usage model, or a stream's list of them (``message_start``'s, then the cumulative
    ``message_delta`` ones), each one's counts that are set replacing those before them.

    Written out in one function, since it runs on the caller's thread: helper calls and an
    interim dict of the merged fields cost more there than the lines they would save."""
    prompt = completion = read = write = creation = details = speed = server = None
    for usage in kept if type(kept) is list else (kept,):
        fields = usage.__dict__
        if "output_tokens_details" not in fields:  # an older SDK: the newer fields are in its extras
            fields = {**(getattr(usage, "__pydantic_extra__", None) or {}), **fields}
        value = fields.get("input_tokens")
        if value is not None:
            prompt = value
        value = fields.get("output_tokens")
        if value is not None:
            completion = value
        value = fields.get("cache_read_input_tokens")
        if value is not None:
            read = value
        value = fields.get("cache_creation_input_tokens")
        if value is not None:
            write = value
        value = fields.get("cache_creation")
        if value is not None:
            creation = value
        value = fields.get("output_tokens_details")
        if value is not None:
            details = value
        value = fields.get("speed")
        if value is not None:
            speed = value
        value = fields.get("server_tool_use")
        if value is not None:
            server = value
    read, write = read or 0, write or 0
    return Usage(
        prompt_tokens=(prompt or 0) + read + write,
        completion_tokens=completion or 0,
        cached_tokens=read,
        cache_write_tokens=write,
        reasoning_tokens=_count(details, "thinking_tokens") if details is not None else 0,
        cache_write_1h_tokens=min(_count(creation, "ephemeral_1h_input_tokens"), write) if creation is not None else 0,
        speed=speed if type(speed) is str else None,
        web_searches=_count(server, "web_search_requests") if server is not None else 0,
    )


def _count(part: Any, name: str) -> int:
    """A count inside a nested part of the usage: a model, or a dict when the SDK does not know
    the part and keeps it as sent."""
    value = part.get(name) if isinstance(part, dict) else getattr(part, name, None)
    return value or 0


def _prompt(kwargs: dict[str, Any]) -> Any:
    system = kwargs.get("system")
    if isinstance(system, (str, list)) and system:
        return {"system": system, "messages": kwargs.get("messages")}
    return kwargs.get("messages")


def _read(call: Call, message: Any) -> None:
    call.model, call.usage = MODEL_AND_USAGE(message)
    if call.text_room:
        for block in message.content:
            if block.type == "text":
                call.add_text(block.text)
            elif block.type == "tool_use":
                call.add_tool_call(block.name, _content(block.input, call.text_room))


def _observe(call: StreamCall, event: Any) -> bool:
    # The usage models are kept as they are and read when the stream ends (see ``_usage``).
    kind = event.type
    if kind == "content_block_delta":
        if call.ttft_ms is None:
            call.mark_output()
        if call.text_room:
            delta = event.delta
            if delta.type == "text_delta":
                call.add_text(delta.text)
            elif delta.type == "input_json_delta":  # a tool call's arguments, in pieces
                call.add_text(delta.partial_json)
    elif kind == "message_start":
        call.model = event.message.model
        call.usage = [event.message.usage]
    elif kind == "message_delta":
        if type(call.usage) is list:
            call.usage.append(event.usage)
        else:
            call.usage = [event.usage]
    elif call.text_room and kind == "content_block_start" and event.content_block.type == "tool_use":
        call.add_tool_call(event.content_block.name)
    return False


# Past the first output, what a stream's span needs is in its message_delta events alone
_PASSING = frozenset({"content_block_start", "content_block_delta", "content_block_stop", "message_stop", "ping"})
MESSAGES = Operation(
    "anthropic",
    "messages",
    prompt=_prompt,
    read=_read,
    observe=_observe,
    usage=_usage,
    fields=MODEL_AND_USAGE,
    skip=(operator.attrgetter("type"), _PASSING),
    api_errors=(anthropic.APIError, *transport_errors()),  # their messages hold no prompt or reply
)
# Claude served by the cloud platforms: the same calls, the provider named as OpenTelemetry names it
VERTEX = dataclasses.replace(MESSAGES, provider="gcp.vertex_ai")
BEDROCK = dataclasses.replace(MESSAGES, provider="aws.bedrock")
_CLIENTS: tuple[tuple[type[Any], bool, Operation], ...] = (  # a client class, whether it is async, its calls
    (anthropic.AsyncAnthropic, True, MESSAGES),
    (anthropic.Anthropic, False, MESSAGES),
    (anthropic.AsyncAnthropicVertex, True, VERTEX),
    (anthropic.AnthropicVertex, False, VERTEX),
    (anthropic.AsyncAnthropicBedrock, True, BEDROCK),
    (anthropic.AnthropicBedrock, False, BEDROCK),
    *(  # Bedrock's Anthropic-compatible endpoint, in SDKs that have a client for it
        (getattr(anthropic, name), is_async, BEDROCK)
        for name, is_async in (("AsyncAnthropicBedrockMantle", True), ("AnthropicBedrockMantle", False))
        if hasattr(anthropic, name)
    ),
)


class _StreamManager(SyncStandIn):
    """Stands in for ``MessageStreamManager``: the call starts when ``__enter__`` sends it."""

    def __init__(self, inner: Any, settings: Settings, op: Operation, kwargs: dict[str, Any]) -> None:
        super().__init__(inner, settings)
        self._op, self._kwargs = op, kwargs

    def __enter__(self) -> Any:
        call = begin(StreamCall, self._settings, self._op, self._kwargs)
        if call is None:
            return self._inner.__enter__()
        try:
            stream = self._inner.__enter__()
        except BaseException as exc:
            call.fail(exc)
            raise
        watch_sync(getattr(stream, "_raw_stream", stream), call)
        return stream


class _AsyncStreamManager(AsyncStandIn):
    """Stands in for ``AsyncMessageStreamManager``; see :class:`_StreamManager`."""

    def __init__(self, inner: Any, settings: Settings, op: Operation, kwargs: dict[str, Any]) -> None:
        super().__init__(inner, settings)
        self._op, self._kwargs = op, kwargs

    async def __aenter__(self) -> Any:
        call = begin(StreamCall, self._settings, self._op, self._kwargs)
        if call is None:
            return await self._inner.__aenter__()
        try:
            stream = await self._inner.__aenter__()
        except BaseException as exc:
            call.fail(exc)
            raise
        watch_async(getattr(stream, "_raw_stream", stream), call)
        return stream


# --- message batches -----------------------------------------------------------------------------
# A batch's requests run later, billed at the batch rates: each succeeded result, as the caller
# reads ``messages.batches.results(id)``, is recorded once (per tracer, the latest 10,000
# remembered) as a span of its own with its usage and cost and no latency (its own is not known),
# dated when the batch ended (its ``ended_at``, as ``results()`` retrieves the batch first; when
# read, with SDKs that do not); its span id derives from the batch and custom ids, so a collector
# keeps one span when several processes read the results. Errored, canceled and expired requests
# are not billed, nor recorded.

_ended = Latest(1000)  # batch id -> when it ended (unix seconds), for the latest 1,000 retrieved


def _retrieved(settings: Settings, batch: Any, args: Any, kwargs: Any) -> Any:
    """``batch``, a retrieved message batch, when it ended kept for its results; never raises."""
    try:
        ended = getattr(batch, "ended_at", None)  # none on a raw response (with_raw_response), nor before the end
        if isinstance(ended, datetime.datetime):
            _ended.put(batch.id, ended.timestamp())
    except Exception as exc:
        note_failure(settings.tracer, exc)
    return batch


def _record_result(settings: Settings, op: Operation, batch_id: str, item: Any) -> None:
    try:
        message = getattr(item.result, "message", None) if item.result.type == "succeeded" else None
        key = f"{batch_id}:{item.custom_id}"
        if message is None or not first_time(settings.tracer, key):
            return
        call = result_call(settings, op, key)
        if call is None:
            return
        call.timed = False
        if call.texts is not None:  # content is captured: the reply's text
            op.read(call, message)
        call.model, call.usage = message.model, normalize_usage(message.usage)  # its service tier says batch
        ended = _ended.get(batch_id)
        call.finish(ended=ran(call, ended, ended))
    except Exception as exc:
        note_failure(settings.tracer, exc)


def _watch_results(settings: Settings, op: Operation, decoder: Any, args: Any, kwargs: Any) -> Any:
    """The SDK's results decoder, its iterator replaced by one that records each result."""
    batch_id = str(args[0] if args else kwargs.get("message_batch_id"))
    record = functools.partial(_record_result, settings, op, batch_id)
    try:  # a response whose body is the caller's (with_raw_response, with_streaming_response) has no iterator
        record_each(decoder, record)
    except Exception as exc:
        note_failure(settings.tracer, exc)
    return decoder


def patch(client: Any, settings: Settings) -> list[Patch] | None:
    """Trace ``client``'s model calls with ``settings``; the patches undo it. None, with nothing
    done, when ``client`` is none of the SDK's clients for Anthropic, Vertex AI or Bedrock."""
    found = next((kind for kind in _CLIENTS if isinstance(client, kind[0])), None)
    if found is None:
        return None
    _, is_async, op = found
    if type(client) in (anthropic.Anthropic, anthropic.AsyncAnthropic):  # maybe another provider's API
        op = for_provider(op, provider_at(str(client.base_url)) or op.provider)
    wrap: Callable[..., Any] = traced_async if is_async else traced_sync
    manager = _AsyncStreamManager if is_async else _StreamManager
    traced = functools.partial(wrap, settings, op)
    helper = then(lambda inner, args, kwargs: manager(inner, settings, op, kwargs))
    batch_results = then(functools.partial(_watch_results, settings, op), awaited=is_async)
    batch_retrieved = then(functools.partial(_retrieved, settings), awaited=is_async)
    patches = []
    for messages in (client.messages, getattr(getattr(client, "beta", None), "messages", None)):
        for name, make in (("create", traced), ("parse", traced), ("stream", helper)):
            if callable(getattr(messages, name, None)):
                patches.append(replace(messages, name, make))
        batches = getattr(messages, "batches", None)
        if callable(getattr(batches, "results", None)):
            patches.append(replace(batches, "results", batch_results))
        if callable(getattr(batches, "retrieve", None)):  # which results() calls first, in recent SDKs
            patches.append(replace(batches, "retrieve", batch_retrieved))
    return patches
