"""Tracing for ``openai.OpenAI`` and ``openai.AsyncOpenAI`` clients (and their Azure subclasses,
whose spans name the provider ``"azure.ai.openai"``). A client pointed at another provider's
OpenAI-compatible API names that provider (``"groq"``, ``"deepseek"``, ``"x_ai"``...; see
``pricing.provider_at``), whose prices then apply.

Traced: ``chat.completions.create`` (also with ``stream=True``, and through the SDK's
``chat.completions.stream()`` helper, which calls it), ``chat.completions.parse`` (structured
outputs, which sends its own request), ``responses.create`` (also streamed, and
``responses.stream()``), ``responses.parse``, ``beta.responses.create``, ``embeddings.create``,
``images.generate`` and ``images.edit`` (also streamed), ``audio.transcriptions.create`` (also
streamed), ``audio.speech.create``, and the legacy text ``completions.create`` (also streamed);
``responses.retrieve`` and
``responses.cancel`` record a background response the first time they return it finished (see
"background responses" below), and ``files.content`` the results of a batch the first time it
downloads them (see "Batch API results"). Calls made through
``with_raw_response`` return HTTP responses and are traced through the result the response parses
(see ``_calls._parsed``); those made through ``with_streaming_response`` leave the body for the
caller to read, and are traced through its ``parse()`` (see ``_streams.watch_response``). The
helpers' own stream objects close the HTTP response directly; their managers are handed back
wrapped, so that closing a helper stream before its end (or leaving its ``with`` block) ends the
span at once, as closing the stream under it does.

Streamed chat and text completions only report usage when asked to: unless the caller chose
``stream_options["include_usage"]`` themselves (as a keyword, or in ``extra_body``, whose
``stream_options`` the SDK sends in place of the keyword's), it is set to ``True`` (merged into any
other stream options they gave) and the extra usage-only chunk it produces is kept from the caller.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import operator
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

try:
    import openai
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("tracing an OpenAI client needs the openai package: pip install 'tokentrace[openai]'") from exc

from ..pricing import Usage, normalize_usage, provider_at, resolve, with_reasoning
from ._calls import (
    MODEL_AND_USAGE,
    Call,
    Operation,
    Settings,
    StreamCall,
    first_time,
    for_provider,
    note_failure,
    ran,
    read_later,
    result_call,
    traced_async,
    traced_sync,
    transport_errors,
)
from ._patch import AsyncStandIn, Patch, SyncStandIn, replace, then
from ._streams import closer, record_each

__all__ = ["CHAT", "COMPLETIONS", "EMBEDDINGS", "IMAGES", "RESPONSES", "SPEECH", "TRANSCRIPTIONS", "patch"]

_PROVIDER = "openai"
# the OpenAI SDK's operations: their provider, and the errors whose messages hold no prompt or
# reply (see Operation.api_errors)
_operation = functools.partial(Operation, _PROVIDER, api_errors=(openai.APIError, *transport_errors()))
_PASSING = frozenset(  # events past the first output that the span does not need: the many deltas first
    {
        "response.output_text.delta",
        "response.reasoning_text.delta",
        "response.reasoning_summary_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.custom_tool_call_input.delta",
        "response.mcp_call_arguments.delta",
        "response.audio.delta",
        "response.audio.transcript.delta",
        "response.output_text.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.output_item.added",
        "response.output_item.done",
    }
)
# The output items that call a tool (a function, a custom tool, an MCP server's tool), each with the
# field holding what it is called with, and the events that stream that
_TOOL_CALLS = {"function_call": "arguments", "custom_tool_call": "input", "mcp_call": "arguments"}
_TOOL_INPUT_DELTAS = frozenset(
    {
        "response.function_call_arguments.delta",
        "response.custom_tool_call_input.delta",
        "response.mcp_call_arguments.delta",
    }
)
_RESPONSE_EVENTS = frozenset(
    {
        "response.created",
        "response.queued",
        "response.in_progress",
        "response.completed",
        "response.incomplete",
        "response.failed",
    }
)


def _counts(usage: Any) -> Usage:
    """The counts of an SDK usage model (Chat Completions' or Responses'), read when the call ends,
    on the caller's thread: OpenAI's own, whose model holds no fields beyond its own, here; one with
    another provider's fields (Perplexity's counts, DeepSeek's cache hits, a reported cost) as any
    usage is read."""
    if getattr(usage, "__pydantic_extra__", _UNKNOWN):  # fields beyond OpenAI's (or not an SDK model)
        return normalize_usage(usage)
    fields = usage.__dict__
    if "input_tokens" in fields:  # Responses: input and output, with the cache in the input
        prompt, completion = fields["input_tokens"], fields.get("output_tokens")
        details, out_details = fields.get("input_tokens_details"), fields.get("output_tokens_details")
    else:
        prompt, completion = fields.get("prompt_tokens"), fields.get("completion_tokens")
        details, out_details = fields.get("prompt_tokens_details"), fields.get("completion_tokens_details")
    reasoning = 0 if out_details is None else getattr(out_details, "reasoning_tokens", None) or 0
    if reasoning:  # maybe counted beside the completion tokens, not among them
        completion = with_reasoning(usage, prompt or 0, completion or 0, reasoning)
    return Usage(
        prompt_tokens=prompt or 0,
        completion_tokens=completion or 0,
        cached_tokens=0 if details is None else getattr(details, "cached_tokens", None) or 0,
        cache_write_tokens=0 if details is None else getattr(details, "cache_write_tokens", None) or 0,
        reasoning_tokens=reasoning,
        audio_prompt_tokens=0 if details is None else getattr(details, "audio_tokens", None) or 0,
        audio_completion_tokens=0 if out_details is None else getattr(out_details, "audio_tokens", None) or 0,
    )


_UNKNOWN = object()  # the extra fields of a usage that is not a pydantic model: unknown
# Providers that end every chat stream with its usage chunk, asked for or not: their streams are
# sent as the caller asked, and that chunk reaches the caller as it would untraced
_USAGE_ALWAYS_STREAMED = frozenset({"openrouter"})


def _for_provider(op: Operation, provider: str, fixed: bool) -> Operation:
    """``op`` as made by a client of ``provider``, whose address is ``fixed`` (the ``openai``
    module's client reads the module's, which may change after it is traced)."""
    op = for_provider(op, provider)
    if op.name == "chat" and fixed and provider in _USAGE_ALWAYS_STREAMED:
        return dataclasses.replace(op, prepare=None)
    return op


# --- chat completions ---------------------------------------------------------------------------


def _chat_prepare(kwargs: dict[str, Any]) -> bool:
    extra = kwargs.get("extra_body")
    if isinstance(extra, Mapping) and "stream_options" in extra:  # the SDK sends it in place of the keyword's
        options = extra["stream_options"]
        if not isinstance(options, Mapping) or "include_usage" in options:
            return False  # the caller decided (null, or left out with the SDK's omit, is theirs too)
        kwargs["extra_body"] = {**extra, "stream_options": {**options, "include_usage": True}}
        return True
    options = kwargs.get("stream_options")
    if options is None or not isinstance(options, Mapping):
        kwargs["stream_options"] = {"include_usage": True}  # the wrapper's own dict: the caller's is untouched
        return True
    if "include_usage" in options:
        return False  # the caller decided; their chunks reach them as sent
    kwargs["stream_options"] = {**options, "include_usage": True}
    return True


def _usage_only(chunk: Any) -> bool:
    """Whether ``chunk`` is the usage-only one that ``include_usage`` adds at a stream's end."""
    return not chunk.choices and chunk.usage is not None


# Chunks without usage pass, told apart by their usage's type, which hashes by identity: the usage
# itself is not hashable, and comparing it with None would run the SDK model's ``__eq__``
_NO_USAGE_YET = (operator.attrgetter("usage.__class__"), frozenset({type(None)}))


def _whole(text: Callable[[Any], Any], tools: Callable[[Any], Any] | None = None) -> Callable[[Call, Any], None]:
    """The ``read`` of a completion (chat or text), whose choices' text ``text`` reads, and their
    tool calls ``tools``."""

    def read(call: Call, completion: Any) -> None:
        call.model, call.usage = MODEL_AND_USAGE(completion)
        if call.text_room:
            for choice in completion.choices:
                call.add_text(text(choice))
                if tools is not None:
                    _add_tool_calls(call, tools(choice))

    return read


def _chunks(text: Callable[[Any], Any], tools: Callable[[Any], Any] | None = None) -> Callable[[StreamCall, Any], bool]:
    """The ``observe`` of a stream of completion chunks (chat or text), whose choices' text
    ``text`` reads, and the pieces of their tool calls ``tools``; hides the usage-only chunk when it
    was asked for by ``_chat_prepare``."""

    def observe(call: StreamCall, chunk: Any) -> bool:
        usage = chunk.usage
        if usage is not None:
            call.usage = usage
        if chunk.choices:
            if call.ttft_ms is None:  # the first output
                call.mark_output()
                call.model = chunk.model
                call.service_tier = getattr(chunk, "service_tier", None)  # text completions have none
            if call.text_room:
                for choice in chunk.choices:
                    call.add_text(text(choice))
                    if tools is not None:
                        _add_tool_calls(call, tools(choice))
            return False
        return call.hide_usage and usage is not None

    return observe


def _add_tool_calls(call: Call, tool_calls: Any) -> None:
    """Keep a message's tool calls, or a stream's pieces of them (the name comes with the first)."""
    for tool_call in tool_calls or ():
        function = getattr(tool_call, "function", None) or getattr(tool_call, "custom", None)
        if function is None:
            continue
        if function.name:
            call.add_tool_call(function.name)
        call.add_text(getattr(function, "arguments", None) or getattr(function, "input", None))


def _refused(exc: BaseException) -> Any:
    """The completion ``parse()`` refused for how it finished (cut at the length limit, or by the
    content filter), which the provider billed; None for any other exception."""
    if isinstance(exc, (openai.LengthFinishReasonError, openai.ContentFilterFinishReasonError)):
        return getattr(exc, "completion", None)  # older SDKs' content filter error carries none
    return None


CHAT = _operation(
    "chat",
    prompt=operator.methodcaller("get", "messages"),
    read=_whole(operator.attrgetter("message.content"), operator.attrgetter("message.tool_calls")),
    observe=_chunks(operator.attrgetter("delta.content"), operator.attrgetter("delta.tool_calls")),
    prepare=_chat_prepare,
    added=_usage_only,
    usage=_counts,
    fields=MODEL_AND_USAGE,
    skip=_NO_USAGE_YET,
    tiered=True,
    carried=_refused,
)

COMPLETIONS = dataclasses.replace(  # the legacy text completions, which OpenAI-compatible servers still serve
    CHAT,
    name="text_completion",
    prompt=operator.methodcaller("get", "prompt"),
    read=_whole(operator.attrgetter("text")),
    observe=_chunks(operator.attrgetter("text")),
    tiered=False,  # text completions report none
)


# --- responses ----------------------------------------------------------------------------------


def _responses_prompt(kwargs: dict[str, Any]) -> Any:
    instructions = kwargs.get("instructions")
    if isinstance(instructions, str) and instructions:
        return {"instructions": instructions, "input": kwargs.get("input")}
    return kwargs.get("input")


def _response_state(call: Call, response: Any) -> None:
    if response.model:
        call.model = response.model
    call.service_tier = getattr(response, "service_tier", None)
    if response.usage is not None:
        searches = _searches(response.output)
        call.usage = response.usage if searches is None else (response.usage, searches)
    if response.status == "failed":
        error = response.error
        call.error = f"{error.code}: {error.message}" if error is not None else "response failed"
    if getattr(response, "background", None) is True:
        call.background = response.status
        if response.status in _FINISHED:  # its usage is in this span: a retrieval must not count it again
            first_time(call.settings.tracer, response.id)


def _searches(output: Any) -> tuple[int, int] | None:
    """The web and file searches a response's tools made (its ``web_search_call`` items that
    searched, its ``file_search_call`` items), billed per thousand on top of its tokens; None when
    there were none."""
    web = files = 0
    for item in output or ():
        kind = item.type
        if kind == "web_search_call":
            action = getattr(item, "action", None)  # opening a page or finding in it is no search
            web += action is None or getattr(action, "type", "search") == "search"
        elif kind == "file_search_call":
            files += 1
    return (web, files) if web or files else None


def _response_counts(kept: Any) -> Usage:
    """The counts of a Responses usage model, with the searches it was kept with (see
    ``_response_state``)."""
    if type(kept) is tuple:
        usage, (web, files) = kept
        return msgspec.structs.replace(_counts(usage), web_searches=web, file_searches=files)
    return _counts(kept)


# --- background responses ------------------------------------------------------------------------
# ``responses.create(background=True)`` answers at once with the response queued: its span has no
# usage (marked ``tokentrace.background: "queued"``). The usage comes with the finished response,
# which the caller fetches with ``responses.retrieve`` (or gets from ``responses.cancel``, or from
# the last event of a stream of it resumed with ``responses.retrieve(id, stream=True)``): the
# first time a traced client sees it finished, it is recorded as a span of its own, with its
# usage, cost and the latency from its ``created_at`` to its ``completed_at``.

_FINISHED = frozenset({"completed", "failed", "cancelled", "incomplete"})


def _retrieved(settings: Settings, op: Operation, response: Any, args: Any, kwargs: Any) -> Any:
    """``response``, recorded first if it is a background response seen finished for the first
    time; a stream of one (``retrieve(id, stream=True)``, which resumes it) is recorded from the
    event that brings it finished. Never raises."""
    if not isinstance(response, (openai.Stream, openai.AsyncStream)):
        _record_finished(settings, op, response)
        return response
    try:
        record_each(response, functools.partial(_record_event, settings, op))
    except Exception as exc:
        note_failure(settings.tracer, exc)
    return response


def _record_event(settings: Settings, op: Operation, event: Any) -> None:
    """Record the response a stream's event brings, when finished (see :func:`_record_finished`);
    never raises."""
    if getattr(event, "type", None) in _RESPONSE_EVENTS:
        _record_finished(settings, op, getattr(event, "response", None))


def _record_finished(settings: Settings, op: Operation, response: Any) -> None:
    """Record ``response`` if it is a background response seen finished for the first time; never
    raises."""
    try:
        if getattr(response, "background", None) is not True or response.status not in _FINISHED:
            return
        if not first_time(settings.tracer, response.id):
            return
        call = result_call(settings, op, response.id)
        if call is not None:
            call.complete(response, ran(call, response.created_at, getattr(response, "completed_at", None)))
    except Exception as exc:
        note_failure(settings.tracer, exc)


def _responses_read(call: Call, response: Any) -> None:
    _response_state(call, response)
    if call.text_room:
        text = getattr(response, "output_text", None)
        if text is None:  # beta responses lack the property that joins the output's text
            text = "".join(
                part.text
                for item in response.output
                if item.type == "message"
                for part in item.content
                if part.type == "output_text"
            )
        call.add_text(text)
        for item in response.output:
            given = _TOOL_CALLS.get(item.type)
            if given is not None:
                call.add_tool_call(item.name, getattr(item, given, None))


def _responses_observe(call: StreamCall, event: Any) -> bool:
    kind = event.type
    if kind == "response.output_text.delta":
        call.mark_output()
        call.add_text(event.delta)
    elif kind.endswith(".delta"):
        call.mark_output()
        if kind in _TOOL_INPUT_DELTAS:
            call.add_text(event.delta)
    elif kind in _RESPONSE_EVENTS:
        _response_state(call, event.response)
    elif kind == "error":
        call.error = f"{event.code}: {event.message}" if event.code else str(event.message)
    elif call.text_room and kind == "response.output_item.added" and event.item.type in _TOOL_CALLS:
        call.add_tool_call(event.item.name)
    return False


RESPONSES = _operation(
    "responses",
    prompt=_responses_prompt,
    read=_responses_read,
    observe=_responses_observe,
    usage=_response_counts,
    skip=(operator.attrgetter("type"), _PASSING),
)


# --- embeddings ---------------------------------------------------------------------------------


def _embeddings_read(call: Call, response: Any) -> None:
    call.model, call.usage = MODEL_AND_USAGE(response)


def _no_stream(call: StreamCall, item: Any) -> bool:
    return False


EMBEDDINGS = _operation(
    "embeddings",
    prompt=operator.methodcaller("get", "input"),
    read=_embeddings_read,
    observe=_no_stream,
    usage=_counts,
    fields=MODEL_AND_USAGE,
)


# --- images -------------------------------------------------------------------------------------
# An image model's response names no model (the request's is the span's); its usage counts text
# and image tokens, priced at their rates. Streamed, the finished image's event has the usage.


def _images_read(call: Call, response: Any) -> None:
    call.usage = response.usage  # None for the older models, priced per image: the table has no price


def _images_observe(call: StreamCall, event: Any) -> bool:
    call.mark_output()  # a partial image, or the finished one
    if event.type in _IMAGES_DONE:
        call.usage = event.usage
    return False


_IMAGES_DONE = frozenset({"image_generation.completed", "image_edit.completed"})

IMAGES = _operation(
    "images",
    prompt=operator.methodcaller("get", "prompt"),
    read=_images_read,
    observe=_images_observe,
    skip=(operator.attrgetter("type"), frozenset({"image_generation.partial_image", "image_edit.partial_image"})),
)


# --- transcriptions -----------------------------------------------------------------------------
# The text of an audio file: the usage of a model billed by tokens (the audio among its input
# tokens), or the audio's length for one billed by it (``whisper-1``); none in an answer given as
# text alone (``response_format`` ``text``, ``srt``, ``vtt``). Streamed, the last event has it.


def _transcription_read(call: Call, response: Any) -> None:
    call.usage = getattr(response, "usage", None)
    call.add_text(getattr(response, "text", response))  # kept when content is captured


def _transcription_observe(call: StreamCall, event: Any) -> bool:
    call.mark_output()
    kind = event.type
    if kind == "transcript.text.delta":
        call.add_text(event.delta)
    elif kind == "transcript.text.done":
        call.usage = getattr(event, "usage", None)
    return False


TRANSCRIPTIONS = _operation(
    "transcriptions",
    prompt=operator.methodcaller("get", "prompt"),
    read=_transcription_read,
    observe=_transcription_observe,
    skip=(operator.attrgetter("type"), frozenset({"transcript.text.delta"})),
)


# --- speech -------------------------------------------------------------------------------------
# Text read out: the SDK hands back the audio's bytes, with no usage. A model billed by the
# characters it reads (``tts-1``) is priced by those of the request's ``input``; one billed by
# tokens reports them only at the end of an SSE body (``stream_format="sse"``), else the span is
# marked as reporting none.


def _speech_read(call: Call, response: Any) -> None:
    http = getattr(response, "response", None)  # the HTTP response under the audio's bytes
    if http is not None and _speech_asked(call, http) == "sse":
        call.usage = _speech_usage(http.content)


def _speech_asked(call: Call, http: Any) -> Any:
    """Price a call by the characters of the request's ``input`` when its model is billed by
    them, which needs no body (also one the caller streamed to a file); the request's
    ``stream_format``."""
    asked = msgspec.json.decode(http.request.content or b"{}")
    text, price = asked.get("input"), resolve(str(call.request_model), call.op.provider)
    if isinstance(text, str) and price is not None and price.input_char is not None:
        call.usage = Usage(input_characters=len(text))
    return asked.get("stream_format")


def _speech_usage(body: bytes) -> Any:
    """The usage in an SSE body's last event (``speech.audio.done``), None when it has none."""
    end = body.rfind(b'"speech.audio.done"')
    if end < 0:
        return None
    start = body.rfind(b"data:", 0, end) + len(b"data:")
    stop = body.find(b"\n", end)
    return msgspec.json.decode(body[start : stop if stop >= 0 else len(body)]).get("usage")


SPEECH = _operation(
    "speech",
    prompt=operator.methodcaller("get", "input"),
    read=_speech_read,
    observe=_no_stream,
    unparsed=_speech_asked,
)


# --- Batch API results ---------------------------------------------------------------------------
# A batch's requests run later, billed at the batch rates; their responses come as a JSONL file
# the caller downloads with ``files.content(output_file_id)``. The first time a traced client
# downloads such a file (told by its first line), a ``tokentrace.results`` thread reads it (see
# ``_calls.read_later``): each request that succeeded becomes a span of its own, at the batch
# rates, dated when it ran (its ``created``), with a latency where the result says when it
# completed (a response's ``completed_at``), its span id derived from the request's id in the
# batch, so that a collector keeps one span when several processes read the file. Requests that
# failed or expired are not billed, and not recorded.

_FIRST_LINE_MAX = 4 << 20  # how far the caller's thread looks for the end of a file's first line
_DELIVER_EVERY = 500  # results recorded before waiting for them to be delivered: a file of any size fills no queue
_DELIVER_TIMEOUT_S = 30.0


def _result_kinds() -> dict[str, tuple[Any, Operation]]:
    """A result body's ``object`` -> the SDK type it is read as and its operation."""
    kinds: dict[str, tuple[Any, Operation]] = {
        "chat.completion": (openai.types.chat.ChatCompletion, CHAT),
        "text_completion": (openai.types.Completion, COMPLETIONS),
        "list": (openai.types.CreateEmbeddingResponse, EMBEDDINGS),
    }
    responses = getattr(getattr(openai.types, "responses", None), "Response", None)  # SDKs before 1.66 have none
    if responses is not None:
        kinds["response"] = (responses, RESPONSES)
    return kinds


_RESULT_KINDS = _result_kinds()


@functools.cache
def _batched(op: Operation) -> Operation:
    """``op`` for the results of a batch, billed at its rates."""
    read = op.usage
    return dataclasses.replace(op, usage=lambda usage: msgspec.structs.replace(read(usage), batch=True))


def _downloaded(settings: Settings, provider: str, content: Any, args: Any, kwargs: Any) -> Any:
    """``content``, a downloaded file, handed to a reader first when it holds a batch's results
    and is seen for the first time; never raises."""
    try:
        data = getattr(content, "content", None)  # the SDK downloads the file whole
        if not isinstance(data, bytes):
            return content  # a body left for the caller to stream (with_streaming_response)
        end = data.find(b"\n", 0, _FIRST_LINE_MAX)
        if data[:1] != b"{" or (end < 0 and len(data) > _FIRST_LINE_MAX):
            return content  # not JSON lines: nothing more of it is read here
        if not _is_result(data if end < 0 else data[:end]):
            return content  # not a batch's results (its input, say)
        file_id = args[0] if args else kwargs.get("file_id")
        if first_time(settings.tracer, f"batch results:{file_id}"):
            read_later(settings.tracer, functools.partial(_read_results, settings, provider, data))
    except Exception as exc:
        note_failure(settings.tracer, exc)
    return content


def _is_result(line: bytes) -> bool:
    """Whether ``line`` is one of a batch's results."""
    try:
        result = msgspec.json.decode(line)
    except msgspec.DecodeError:
        return False
    return isinstance(result, dict) and "custom_id" in result and "response" in result


def _read_results(settings: Settings, provider: str, data: bytes) -> None:
    """Record the results in ``data``, a line at a time, waiting for their delivery every
    :data:`_DELIVER_EVERY` (on a ``tokentrace.results`` thread)."""
    delivering = True  # until a delivery times out (a collector down): then the queues bound what waits
    for number, line in enumerate(io.BytesIO(data), 1):  # the lines one at a time, the file not copied
        if line.strip():
            _record_result(settings, provider, line)
        if delivering and number % _DELIVER_EVERY == 0:
            delivering = settings.tracer._deliver(_DELIVER_TIMEOUT_S)


def _record_result(settings: Settings, provider: str, line: bytes) -> None:
    """Record one line of a batch's results when its request succeeded; never raises."""
    try:
        result = msgspec.json.decode(line)
        response = result.get("response") or {}
        body = response.get("body")
        if response.get("status_code") != 200 or not isinstance(body, dict):
            return  # not billed
        kind = _RESULT_KINDS.get(str(body.get("object")))
        if kind is None:
            return
        sdk_type, op = kind
        try:
            parsed = sdk_type.model_validate(body)
        except Exception:  # a body the SDK's types do not accept: read as it stands
            parsed = sdk_type.construct(**body)
        request_id = str(result.get("id") or result.get("custom_id"))  # the request's, in the batch
        call = result_call(settings, _batched(for_provider(op, provider)), request_id)
        if call is None:
            return
        ended = ran(call, body.get("created_at", body.get("created")), body.get("completed_at"))
        call.timed = ended is not None  # a latency only where the result says when it completed
        call.complete(parsed, call.t0 if ended is None else ended)
    except Exception as exc:
        note_failure(settings.tracer, exc)


# --- the SDK's stream helpers -------------------------------------------------------------------


def _through_raw(helper: Any, settings: Settings) -> Any:
    """The helper stream of ``chat.completions.stream()`` or ``responses.stream()``, made to close
    through the stream under it: that stream's ``close`` is the watcher's (see ``_streams``), which
    ends the span and then closes the same HTTP response the helper's own ``close`` would."""
    try:
        close = closer(getattr(helper, "_raw_stream", None))
        if close is not None:
            helper.close = close
    except Exception as exc:  # a helper this version does not know: recorded when collected
        note_failure(settings.tracer, exc)
    return helper


class _HelperManager(SyncStandIn):
    """Stands in for the manager of ``chat.completions.stream()`` or ``responses.stream()``."""

    def __enter__(self) -> Any:
        return _through_raw(self._inner.__enter__(), self._settings)


class _AsyncHelperManager(AsyncStandIn):
    """Stands in for their async managers."""

    async def __aenter__(self) -> Any:
        return _through_raw(await self._inner.__aenter__(), self._settings)


# --- clients ------------------------------------------------------------------------------------

_Wrap = Callable[[Settings, Operation, Callable[..., Any]], Callable[..., Any]]
# The clients named after the API they are pointed at: the SDK's own (the ``openai`` module's among
# them), not the subclasses of a platform or of another library, which keep their names
_PLAIN_CLIENTS = tuple(filter(None, (openai.OpenAI, openai.AsyncOpenAI, getattr(openai, "_ModuleClient", None))))


def patch(client: Any, settings: Settings) -> list[Patch] | None:
    """Trace ``client``'s model calls with ``settings``; the patches undo it. None, with nothing
    done, when ``client`` is not an ``openai.OpenAI`` or ``openai.AsyncOpenAI``."""
    wrap: _Wrap
    manager: type[_HelperManager | _AsyncHelperManager]
    if isinstance(client, openai.AsyncOpenAI):
        wrap, manager = traced_async, _AsyncHelperManager
    elif isinstance(client, openai.OpenAI):
        wrap, manager = traced_sync, _HelperManager
    else:
        return None
    if isinstance(client, (openai.AzureOpenAI, openai.AsyncAzureOpenAI)):
        provider = "azure.ai.openai"  # as OpenTelemetry names it; priced from genai-prices' Azure table
    elif type(client) in _PLAIN_CLIENTS:  # pointed at OpenAI, or another provider's API
        provider = provider_at(str(client.base_url)) or _PROVIDER
    else:
        provider = _PROVIDER
    fixed = type(client) is not getattr(openai, "_ModuleClient", None)
    chat = client.chat.completions
    responses = getattr(client, "responses", None)  # SDKs before 1.66 have none
    targets = [
        (chat, "create", CHAT),
        (chat, "parse", CHAT),  # structured outputs: a request of its own
        (responses, "create", RESPONSES),
        (responses, "parse", RESPONSES),
        (getattr(getattr(client, "beta", None), "responses", None), "create", RESPONSES),
        (client.embeddings, "create", EMBEDDINGS),
        (client.completions, "create", COMPLETIONS),
        (getattr(client, "images", None), "generate", IMAGES),
        (getattr(client, "images", None), "edit", IMAGES),
        (getattr(getattr(client, "audio", None), "transcriptions", None), "create", TRANSCRIPTIONS),
        (getattr(getattr(client, "audio", None), "speech", None), "create", SPEECH),
    ]
    patches = [
        replace(owner, name, functools.partial(wrap, settings, _for_provider(op, provider, fixed)))
        for owner, name, op in targets
        if callable(getattr(owner, name, None))
    ]
    is_async = wrap is traced_async
    retrieved = then(functools.partial(_retrieved, settings, for_provider(RESPONSES, provider)), awaited=is_async)
    patches += [replace(responses, name, retrieved) for name in ("retrieve", "cancel") if hasattr(responses, name)]
    files = getattr(client, "files", None)
    if callable(getattr(files, "content", None)):
        downloaded = then(functools.partial(_downloaded, settings, provider), awaited=is_async)
        patches.append(replace(files, "content", downloaded))
    helper = then(lambda inner, args, kwargs: manager(inner, settings))
    return patches + [replace(owner, "stream", helper) for owner in (chat, responses) if hasattr(owner, "stream")]
