"""A local server speaking the OpenAI and Anthropic HTTP APIs, for the real SDKs to call.

Routes: OpenAI ``POST /v1/chat/completions`` and ``/v1/completions`` (JSON, or server-sent events
with the usage-only final chunk sent only when ``stream_options.include_usage`` is set),
``/v1/responses`` (JSON or typed events), ``/v1/embeddings`` (floats or base64); Anthropic
``POST /v1/messages`` (JSON, or ``message_start`` with cache usage, ``content_block_delta``,
``message_delta`` with the output usage, ``message_stop``), also on Vertex AI's
``.../models/{model}:rawPredict`` / ``:streamRawPredict`` and Bedrock's ``/model/{model}/invoke``
/ ``invoke-with-response-stream`` (AWS event-stream framing). Every reply carries :data:`CANARY` in
its text, and token counts are the fixed ones below, so tests can assert exact counts and costs.
With tools offered, chat, responses and messages call the first one (its text arguments
:data:`CANARY`) until the last message holds the result.

Failures are scripted per request with :meth:`ProviderServer.script`: an HTTP error status (500,
429...), a stall before answering (for client timeouts), a stream broken by an in-band error or cut
by the connection closing, a body (a stream's event) that is not JSON, or a chat completion cut at
its length limit or by the content filter.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import functools
import json
import re
import struct
import threading
import time
import urllib.parse
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from . import Handler, LocalServer

__all__ = [
    "ANTHROPIC_USAGE",
    "CANARY",
    "CHAT_AUDIO_USAGE",
    "CHAT_USAGE",
    "COMPLETION_USAGE",
    "DEEPSEEK_USAGE",
    "EMBEDDING_USAGE",
    "IMAGE_USAGE",
    "OPENROUTER_USAGE",
    "RESPONSES_USAGE",
    "SPEECH_USAGE",
    "TRANSCRIPTION_USAGE",
    "XAI_USAGE",
    "Fault",
    "ProviderServer",
    "Request",
]

CANARY = "canary-7f3a9c1e"
REPLY_PIECES = ["Hello ", "from the fake model ", f"({CANARY})."]
REPLY = "".join(REPLY_PIECES)
RESPONSE_MODELS = {  # request model -> the dated id the fake answers with
    "gpt-4o": "gpt-4o-2024-08-06",
    "o4-mini": "o4-mini-2025-04-16",
    "claude-sonnet-4-0": "claude-sonnet-4-20250514",
    "claude-sonnet-4@20250514": "claude-sonnet-4-20250514",  # Vertex AI's id
    "us.anthropic.claude-sonnet-4-20250514-v1:0": "claude-sonnet-4-20250514",  # Bedrock's
}
CHAT_USAGE = {
    "prompt_tokens": 1000,
    "completion_tokens": 100,
    "total_tokens": 1100,
    "prompt_tokens_details": {"cached_tokens": 800, "cache_write_tokens": 100, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
}
SONAR_COUNTS = {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100, "search_context_size": "low"}
SONAR_USAGE = {  # Perplexity's, with what it billed: the fee for a low search context is $5 per thousand calls
    **SONAR_COUNTS,
    "cost": {"input_tokens_cost": 0.001, "output_tokens_cost": 0.0001, "request_cost": 0.005, "total_cost": 0.0061},
}
DEEP_RESEARCH_USAGE = {  # Perplexity's: its reasoning and citations beside the completion tokens, and its searches
    **SONAR_COUNTS,
    "citation_tokens": 2000,
    "num_search_queries": 3,
    "reasoning_tokens": 5000,
}
OPENROUTER_USAGE = {  # by model: what OpenRouter reports a call cost, in USD (its credits), beside the counts
    "openai/gpt-4o": {**CHAT_USAGE, "cost": 0.00213, "is_byok": False,
                      "cost_details": {"upstream_inference_cost": 0.00213}},
    # made with the caller's own key at the upstream provider, which bills the inference itself
    "anthropic/claude-sonnet-4": {**CHAT_USAGE, "cost": 0.000121, "is_byok": True,
                                  "cost_details": {"upstream_inference_cost": 0.002415}},
    "meta-llama/llama-3.3-70b-instruct": {**CHAT_USAGE, "cost": "n/a"},  # not an amount: the table prices it
}  # fmt: skip
DEEPSEEK_USAGE = {  # DeepSeek's: its cache reads and the rest of the input in counts of its own
    "prompt_tokens": 1000,
    "completion_tokens": 100,
    "total_tokens": 1100,
    "prompt_cache_hit_tokens": 800,
    "prompt_cache_miss_tokens": 200,
    "completion_tokens_details": {"reasoning_tokens": 0},
}
XAI_USAGE = {  # xAI's: its reasoning counted beside the completion tokens (and in the total), its cost in ticks
    **CHAT_USAGE,
    "total_tokens": 1400,
    "completion_tokens_details": {"reasoning_tokens": 300, "audio_tokens": 0},
    "num_sources_used": 0,
    "cost_in_usd_ticks": 21_340_000,  # 1e-10 USD each
}
CHAT_AUDIO_USAGE = {  # a chat call asking for spoken output (modalities: text and audio)
    "prompt_tokens": 1000,
    "completion_tokens": 500,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 600},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 400},
}
RESPONSES_USAGE = {
    "input_tokens": 1200,
    "input_tokens_details": {"cached_tokens": 200, "cache_write_tokens": 300},
    "output_tokens": 300,
    "output_tokens_details": {"reasoning_tokens": 120},
    "total_tokens": 1500,
}
FAILED_USAGE = {  # what a response that failed half-way had used
    "input_tokens": 1200,
    "input_tokens_details": {"cached_tokens": 200},
    "output_tokens": 10,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 1210,
}
EMBEDDING_USAGE = {"prompt_tokens": 8, "total_tokens": 8}
COMPLETION_USAGE = {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70}
ANTHROPIC_USAGE = {
    "input_tokens": 100,
    "cache_read_input_tokens": 2000,
    "cache_creation_input_tokens": 500,
    "cache_creation": {"ephemeral_5m_input_tokens": 300, "ephemeral_1h_input_tokens": 200},
    "output_tokens": 200,
}
THINKING_TOKENS = 50  # reported in output_tokens_details when the request asks for thinking
WEB_SEARCHES = 2  # the searches a provider's web search tool makes, when the request offers it


@dataclass
class Fault:
    """What to do instead of a normal answer, for one request."""

    status: int | None = None  # answer with this HTTP error status
    delay: float = 0.0  # stall this many seconds first (released early when the server stops)
    break_stream: bool = False  # stream two events, then an in-band error event (a failed response)
    garbled: bool = False  # answer 200 with a JSON content type and a body that is not JSON (streamed: an event)
    cut: bool = False  # stream two events, then close the connection in the middle of the body
    finish: str | None = None  # a chat completion's finish_reason ("length", "content_filter"), its usage as ever


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)


class _ProviderHandler(Handler):
    owner: ProviderServer

    def do_POST(self) -> None:
        raw = self.read_body()
        kind = self.headers.get("Content-Type", "")
        body = _form(kind, raw) if kind.startswith("multipart/") else json.loads(raw) if raw else {}
        fault = self.owner.take(Request(self.path, dict(self.headers), body))
        if fault is not None and fault.delay:
            self.owner.release.wait(fault.delay)
        if fault is not None and fault.status:
            self._error(fault.status)
        elif fault is not None and fault.garbled and not body.get("stream"):
            self.send_bytes(200, b"not json", "application/json")
        else:
            self._answer(body, fault or Fault())

    def do_GET(self) -> None:
        """``GET /v1/responses/{id}``: the background response, finished (failed when the next
        scripted fault breaks it); with ``?stream=true``, its events after the one numbered
        ``starting_after``, as it resumes. ``GET /v1/messages/batches/{id}``: an ended message batch,
        and ``.../results`` its results, one succeeded and one errored. ``GET
        /v1/files/{id}/content``: a Batch API job's files (see :func:`_batch_file`). Any other
        path is not found."""
        fault = self.owner.take(Request(self.path, dict(self.headers)))
        path, query = _route(self.path), urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if path.startswith("/v1/responses/") and query.get("stream") == ["true"]:
            self.start_chunked()
            for event in _background_events(int(query.get("starting_after", ["-1"])[0])):
                self.write_chunk(event)
            self.end_chunked()
        elif path.startswith("/v1/responses/"):
            self.send_json(200, _finished_in_background(fault is not None and fault.break_stream))
        elif path.startswith("/v1/messages/batches/") and path.endswith("/results"):
            lines = [json.dumps(result) for result in _batch_results()]
            self.send_bytes(200, ("\n".join(lines) + "\n").encode(), "application/binary")
        elif path.startswith("/v1/messages/batches/"):
            self.send_json(200, _ended_batch(f"http://{self.headers['Host']}{path}/results"))
        elif path.startswith("/v1/files/") and path.endswith("/content"):
            file_id = path.removeprefix("/v1/files/").removesuffix("/content")
            self.send_bytes(200, _batch_file(file_id), "application/binary")
        else:
            self.send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def _answer(self, body: dict[str, Any], fault: Fault) -> None:
        route = {
            "/v1/chat/completions": _chat,
            "/v1/completions": _completions,
            "/v1/responses": _responses,
            "/v1/embeddings": _embeddings,
            "/v1/images/generations": functools.partial(_images, "image_generation"),
            "/v1/images/edits": functools.partial(_images, "image_edit"),
            "/v1/audio/transcriptions": _transcriptions,
            "/v1/audio/speech": _speech,
            "/v1/messages": _messages,
        }.get(_route(self.path))
        frame = None
        platform = _VERTEX.match(self.path) or _BEDROCK.match(self.path)
        if platform is not None:  # the model and whether to stream are in the path
            model, action = platform.groups()
            stream = action in ("streamRawPredict", "invoke-with-response-stream")
            route, body = _messages, {**body, "model": urllib.parse.unquote(model), "stream": stream}
            if action == "invoke-with-response-stream":
                frame = _bedrock_frame
        if route is None:
            self.send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        events = route(body, fault.break_stream)
        if fault.finish is not None:
            events["choices"][0]["finish_reason"] = fault.finish
        if isinstance(events, dict):
            self.send_json(200, events)
            return
        if isinstance(events, str):
            self.send_bytes(200, events.encode(), "text/plain")
            return
        if isinstance(events, bytes):
            self.send_bytes(200, events, "audio/mpeg")
            return
        if fault.garbled:  # the second event's data is not JSON
            events[1] = events[1].partition(b"data: ")[0] + b"data: {not json\n\n"
        self.start_chunked()
        for event in events[:2] if fault.cut else events:
            self.write_chunk(event if frame is None else frame(event))
        if fault.cut:
            self.close_connection = True  # the body's end never comes
            return
        self.end_chunked()

    def _error(self, status: int) -> None:
        kind = "rate_limit_error" if status == 429 else "api_error"
        if self.path.startswith("/v1/messages"):
            payload: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": f"fake {status}"}}
        else:
            payload = {"error": {"message": f"fake {status}", "type": kind, "param": None, "code": None}}
        headers = {"retry-after": "0"} if status == 429 else {}
        self.send_json(status, payload, headers)


class ProviderServer(LocalServer):
    """The fake provider; see the module docstring.

    Example::

        with ProviderServer() as server:
            client = openai.OpenAI(base_url=server.openai_url, api_key="test", max_retries=0)
    """

    handler = _ProviderHandler

    def __init__(self) -> None:
        super().__init__()
        self.openai_url = f"{self.url}/v1"
        self.anthropic_url = self.url
        self.requests: list[Request] = []
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()

    def script(self, *faults: Fault) -> None:
        """Answer the next requests with these faults, one each, in order."""
        self._faults.extend(faults)

    def take(self, request: Request) -> Fault | None:
        with self._lock:
            self.requests.append(request)
            return self._faults.popleft() if self._faults else None


def _route(path: str) -> str:
    """Azure's ``/openai/deployments/{name}/chat/completions?api-version=...`` (and
    ``/openai/responses``), Groq's ``/openai/v1/...``, OpenRouter's ``/api/v1/...`` and
    Perplexity's ``/chat/completions`` are OpenAI's routes, and Bedrock's Anthropic-compatible
    endpoint (``/anthropic/v1/messages``) Anthropic's."""
    path = path.partition("?")[0]
    if path == "/chat/completions":  # Perplexity's, with no version
        return "/v1" + path
    if path.startswith("/api/v1/"):  # OpenRouter's
        return path.removeprefix("/api")
    if path.startswith("/openai/v1/"):  # Groq's OpenAI-compatible API
        return path.removeprefix("/openai")
    if path.startswith("/openai/deployments/"):
        return "/v1/" + path.split("/", 4)[4]
    if path.startswith("/openai/"):
        return "/v1/" + path.removeprefix("/openai/")
    return path.removeprefix("/anthropic")


# Claude on the cloud platforms: Vertex AI's and Bedrock's paths for messages, plain and streamed
_VERTEX = re.compile(
    r"/v1/projects/[^/]+/locations/[^/]+/publishers/anthropic/models/([^/:]+):(rawPredict|streamRawPredict)$"
)
_BEDROCK = re.compile(r"/model/([^/]+)/(invoke|invoke-with-response-stream)$")


def _bedrock_frame(sse: bytes) -> bytes:
    """One server-sent event as Bedrock streams it: an AWS event-stream message (big-endian
    lengths, CRC-32 of the prelude and of the whole message) whose JSON payload holds the event's
    JSON, base64-encoded."""
    data = next(line for line in sse.decode().splitlines() if line.startswith("data: "))[len("data: ") :]
    payload = json.dumps({"bytes": base64.b64encode(data.encode()).decode()}).encode()
    headers = b"".join(
        struct.pack(">B", len(name)) + name.encode() + struct.pack(">BH", 7, len(value)) + value.encode()
        for name, value in ((":event-type", "chunk"), (":content-type", "application/json"), (":message-type", "event"))
    )
    prelude = struct.pack(">II", 12 + len(headers) + len(payload) + 4, len(headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def _model(body: dict[str, Any]) -> str:
    requested = str(body.get("model", ""))
    return RESPONSE_MODELS.get(requested, requested)


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    text = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {text}\n\n".encode()


# --- OpenAI chat completions --------------------------------------------------------------------


def _chat(body: dict[str, Any], broken: bool) -> Any:
    called = _first_tool(body)
    if not body.get("stream"):
        structured = (body.get("response_format") or {}).get("type") == "json_schema"
        content = json.dumps({"reply": REPLY}) if structured else REPLY  # what parse() asks for
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
        if called is not None:
            function = {"name": called[0], "arguments": json.dumps(called[1])}
            message.update(content=None, tool_calls=[{"id": "call_fake", "type": "function", "function": function}])
        choice = {"index": 0, "message": message, "finish_reason": "tool_calls" if called else "stop", "logprobs": None}
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": _model(body),
            "choices": [choice],
            "usage": _chat_usage(body),
            "system_fingerprint": "fp_fake",
            **_served(body),
        }
    return _chat_events(body, broken, called)


def _chat_usage(body: dict[str, Any]) -> dict[str, Any]:
    model = _model(body)
    if model.startswith("sonar"):  # Perplexity's models
        return DEEP_RESEARCH_USAGE if model == "sonar-deep-research" else SONAR_USAGE
    if model in OPENROUTER_USAGE:
        return OPENROUTER_USAGE[model]
    if model.startswith("grok-"):  # xAI's models
        return XAI_USAGE
    if model.startswith("deepseek-"):
        return DEEPSEEK_USAGE
    return CHAT_AUDIO_USAGE if "audio" in (body.get("modalities") or ()) else CHAT_USAGE


def _served(body: dict[str, Any]) -> dict[str, Any]:
    """The service tier a request asked for, as OpenAI reports the one it was served at."""
    tier = body.get("service_tier")
    return {"service_tier": "default" if tier == "auto" else tier} if tier else {}


def _chat_events(body: dict[str, Any], broken: bool, called: tuple[str, dict[str, Any]] | None) -> list[bytes]:
    # OpenRouter ends every stream with its usage chunk, asked for or not
    with_usage = bool((body.get("stream_options") or {}).get("include_usage")) or _model(body) in OPENROUTER_USAGE
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    if called is None:
        deltas += [{"content": piece} for piece in REPLY_PIECES]
    else:  # the call's name first, then its arguments in two pieces
        arguments = json.dumps(called[1])
        head = {"index": 0, "id": "call_fake", "type": "function", "function": {"name": called[0], "arguments": ""}}
        deltas = [{"role": "assistant", "content": None, "tool_calls": [head]}]
        middle = len(arguments) // 2
        for piece in (arguments[:middle], arguments[middle:]):
            deltas.append({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
    chunks = [_chat_chunk(body, [_choice(delta, None)], with_usage) for delta in deltas]
    if broken:
        return [*chunks[:2], _sse({"error": {"message": "fake overload mid-stream", "type": "server_error"}})]
    chunks.append(_chat_chunk(body, [_choice({}, "tool_calls" if called else "stop")], with_usage))
    if with_usage:
        chunks.append(_sse({**_chunk_head(body), "choices": [], "usage": _chat_usage(body)}))
    return [*chunks, _sse("[DONE]")]


def _chunk_head(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": _model(body),
        **_served(body),
    }


def _choice(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}


def _chat_chunk(body: dict[str, Any], choices: list[dict[str, Any]], with_usage: bool) -> bytes:
    chunk = {**_chunk_head(body), "choices": choices}
    if with_usage:
        chunk["usage"] = None
    return _sse(chunk)


# --- OpenAI legacy text completions -------------------------------------------------------------


def _completions(body: dict[str, Any], broken: bool) -> Any:
    head = {"id": "cmpl-fake", "object": "text_completion", "created": 1_700_000_000, "model": _model(body)}
    if not body.get("stream"):
        choice = {"text": REPLY, "index": 0, "finish_reason": "stop", "logprobs": None}
        return {**head, "choices": [choice], "usage": COMPLETION_USAGE}
    with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    pieces = [*REPLY_PIECES, ""]
    chunks = [
        _sse({**head, "choices": [{"text": piece, "index": 0, "finish_reason": None if piece else "stop"}]})
        for piece in pieces
    ]
    if with_usage:
        chunks.append(_sse({**head, "choices": [], "usage": COMPLETION_USAGE}))
    return [*chunks, _sse("[DONE]")]


# --- OpenAI responses ---------------------------------------------------------------------------


def _response(
    body: dict[str, Any], status: str, text: str, usage: dict[str, Any] | None, called: Any = None
) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": []}]
    output = [{"type": "message", "id": "msg_fake", "status": status, "role": "assistant", "content": content}]
    if called is not None:
        output = [_function_call(body, called, _call_input(body, called), status)]
    if text or called:
        output = [*_searched(body), *output]
    return {
        "id": "resp_fake",
        "object": "response",
        "created_at": 1_700_000_000,
        "model": _model(body),
        "status": status,
        "output": output if text or called else [],  # with the searches made before it
        "usage": usage,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "metadata": {},
        **_served(body),
    }


# A Responses tool's type -> the type of the output item that calls it, the field holding what it
# is called with, and the events that stream that (``.delta``, ``.done``)
_CALL_ITEMS = {
    "function": ("function_call", "arguments", "response.function_call_arguments"),
    "custom": ("custom_tool_call", "input", "response.custom_tool_call_input"),
    "mcp": ("mcp_call", "arguments", "response.mcp_call_arguments"),
}


def _call_kind(body: dict[str, Any]) -> tuple[str, str, str]:
    return _CALL_ITEMS[(body.get("tools") or [{}])[0].get("type", "function")]


def _call_input(body: dict[str, Any], called: tuple[str, dict[str, Any]]) -> str:
    """What the first tool is called with: free text for a custom tool (the canary), else JSON."""
    return CANARY if _call_kind(body)[0] == "custom_tool_call" else json.dumps(called[1])


def _function_call(body: dict[str, Any], called: tuple[str, dict[str, Any]], given: str, status: str) -> dict[str, Any]:
    """The output item calling the first tool (a function, a custom tool, an MCP server's tool)."""
    item_type, field, _ = _call_kind(body)
    item = {"type": item_type, "id": "fc_fake", "call_id": "call_fake", "name": called[0], field: given}
    item["status"] = status
    if item_type == "mcp_call":
        item.update(server_label="fake", output=None, error=None)
    return item


def _responses(body: dict[str, Any], broken: bool) -> Any:
    called = _first_tool(body)
    if body.get("background"):
        return (
            _background_events(-1)
            if body.get("stream")
            else {**_response(body, "queued", "", None), "background": True}
        )
    if broken:
        return _failed_response(body)
    if not body.get("stream"):
        return _response(body, "completed", REPLY, RESPONSES_USAGE, called)
    if called is not None:
        return _function_call_events(body, called)
    events = [
        {"type": "response.created", "response": _response(body, "in_progress", "", None)},
        {"type": "response.output_item.added", "output_index": 0, "item": _output_item("in_progress", [])},
        {"type": "response.content_part.added", **_part_head(), "part": _text_part("")},
    ]
    events += [{"type": "response.output_text.delta", **_part_head(), "delta": p, "logprobs": []} for p in REPLY_PIECES]
    events += [
        {"type": "response.output_text.done", **_part_head(), "text": REPLY, "logprobs": []},
        {"type": "response.content_part.done", **_part_head(), "part": _text_part(REPLY)},
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": _output_item("completed", [_text_part(REPLY)]),
        },
        {"type": "response.completed", "response": _response(body, "completed", REPLY, RESPONSES_USAGE)},
    ]
    return [_sse({**event, "sequence_number": number}, event["type"]) for number, event in enumerate(events)]


def _ended_batch(results_url: str) -> dict[str, Any]:
    counts = {"processing": 0, "succeeded": 1, "errored": 1, "canceled": 0, "expired": 0}
    return {
        "id": "msgbatch_fake",
        "type": "message_batch",
        "processing_status": "ended",
        "request_counts": counts,
        "created_at": "2026-11-28T10:00:00Z",
        "ended_at": "2026-11-28T10:20:00Z",
        "expires_at": "2026-11-29T10:00:00Z",
        "archived_at": None,
        "cancel_initiated_at": None,
        "results_url": results_url,
    }


def _batch_results() -> list[dict[str, Any]]:
    """What a message batch's results say: a message billed at batch rates, an error."""
    return [
        {
            "custom_id": "first",
            "result": {
                "type": "succeeded",
                "message": _message(
                    {"model": "claude-sonnet-4-5"},
                    [{"type": "text", "text": REPLY}],
                    {"input_tokens": 1000, "output_tokens": 200, "service_tier": "batch"},
                ),
            },
        },
        {
            "custom_id": "second",
            "result": {
                "type": "errored",
                "error": {"type": "error", "error": {"type": "invalid_request_error", "message": "fake bad request"}},
            },
        },
    ]


_BATCH_RAN = int(time.time()) - 3600  # when the batch's requests ran: an hour before the tests


def _batch_file(file_id: str) -> bytes:
    """A Batch API job's files: ``batch-output``, its results (a chat completion and a response
    that ran an hour ago, a request refused, an embedding, a text completion, a request expired;
    the completions and the response dated, the response with its 42 s); ``batch-damaged``,
    the same with a line that is not JSON after the first; ``batch-output-{n}``, n chat
    completions; ``batch-input``, its requests; ``notes.txt``, not JSON lines."""
    asked = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    if file_id == "notes.txt":
        return b"{plain text that starts like JSON\nand goes on\n"
    if file_id == "batch-input":
        return _jsonl([{"custom_id": "first", "method": "POST", "url": "/v1/chat/completions", "body": asked}])
    refused = {"error": {"message": "fake bad request", "type": "invalid_request_error"}}
    ran = _BATCH_RAN
    bodies = [
        (200, {**_chat(asked, False), "created": ran}),
        (400, refused),
        (
            200,
            {
                **_response({"model": "o4-mini"}, "completed", REPLY, RESPONSES_USAGE),
                "created_at": ran,
                "completed_at": ran + 42,
            },
        ),
        (200, _embeddings({"model": "text-embedding-3-small"}, False)),
        (200, {**_completions({"model": "gpt-3.5-turbo-instruct"}, False), "created": ran}),
    ]
    if file_id.startswith("batch-output-"):
        bodies = bodies[:1] * int(file_id.removeprefix("batch-output-"))
    lines: list[dict[str, Any]] = [
        {
            "id": f"batch_req_{number}",
            "custom_id": f"request-{number}",
            "response": {"status_code": status, "request_id": f"req_{number}", "body": body},
            "error": None,
        }
        for number, (status, body) in enumerate(bodies, 1)
    ]
    if file_id.startswith("batch-output-"):
        return _jsonl(lines)
    expired = {"code": "batch_expired", "message": "fake: not run before the batch expired"}
    whole = _jsonl([*lines, {"id": "batch_req_6", "custom_id": "request-6", "response": None, "error": expired}])
    if file_id == "batch-damaged":
        first, rest = whole.split(b"\n", 1)
        return first + b"\n{not json\n" + rest
    return whole


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def _finished_in_background(failed: bool) -> dict[str, Any]:
    """The background response as retrieved once it has run: 42 s after it was created."""
    body = {"model": "o4-mini", "background": True}
    finished = _failed_response(body) if failed else _response(body, "completed", REPLY, RESPONSES_USAGE)
    return {**finished, "background": True, "completed_at": 1_700_000_042}


def _background_events(starting_after: int) -> list[bytes]:
    """The background response streamed from queued to finished, as ``create(stream=True)`` sends
    it; ``retrieve(stream=True)`` resumes it after the event numbered ``starting_after``."""
    queued = {**_response({"model": "o4-mini"}, "queued", "", None), "background": True}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": queued},
        {"type": "response.queued", "response": queued},
        {"type": "response.in_progress", "response": {**queued, "status": "in_progress"}},
    ]
    events += [{"type": "response.output_text.delta", **_part_head(), "delta": p, "logprobs": []} for p in REPLY_PIECES]
    events.append({"type": "response.completed", "response": _finished_in_background(False)})
    numbered = [{**event, "sequence_number": number} for number, event in enumerate(events)]
    return [_sse(event, event["type"]) for event in numbered[starting_after + 1 :]]


def _failed_response(body: dict[str, Any]) -> Any:
    """A response the server gave up on, with what it used so far: whole, or streamed as one
    piece of text then a ``response.failed`` event and an ``error`` event."""
    failed = {
        **_response(body, "failed", "", FAILED_USAGE),
        "error": {"code": "server_error", "message": "fake overload mid-response"},
    }
    if not body.get("stream"):
        return failed
    events = [
        {"type": "response.created", "response": _response(body, "in_progress", "", None)},
        {"type": "response.output_item.added", "output_index": 0, "item": _output_item("in_progress", [])},
        {"type": "response.content_part.added", **_part_head(), "part": _text_part("")},
        {"type": "response.output_text.delta", **_part_head(), "delta": REPLY_PIECES[0], "logprobs": []},
        {"type": "response.failed", "response": failed},
        {"type": "error", "code": "server_error", "message": "fake stream cut", "param": None},
    ]
    return [_sse({**event, "sequence_number": number}, event["type"]) for number, event in enumerate(events)]


def _function_call_events(body: dict[str, Any], called: tuple[str, dict[str, Any]]) -> list[bytes]:
    """A streamed tool call: its item with the name, then what it is called with in two pieces."""
    _, field, streamed = _call_kind(body)
    given, head = _call_input(body, called), {"item_id": "fc_fake", "output_index": 0}
    middle = len(given) // 2
    added = _function_call(body, called, "", "in_progress")
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": _response(body, "in_progress", "", None)},
        {"type": "response.output_item.added", "output_index": 0, "item": added},
    ]
    events += [{"type": f"{streamed}.delta", **head, "delta": piece} for piece in (given[:middle], given[middle:])]
    events += [
        {"type": f"{streamed}.done", **head, field: given},
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": _function_call(body, called, given, "completed"),
        },
        {"type": "response.completed", "response": _response(body, "completed", "", RESPONSES_USAGE, called)},
    ]
    return [_sse({**event, "sequence_number": number}, event["type"]) for number, event in enumerate(events)]


def _part_head() -> dict[str, Any]:
    return {"item_id": "msg_fake", "output_index": 0, "content_index": 0}


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": []}


def _output_item(status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "message", "id": "msg_fake", "status": status, "role": "assistant", "content": content}


# --- OpenAI images -------------------------------------------------------------------------------

IMAGE_USAGE = {  # gpt-image-1's: the prompt's text and the image given to edit, then the image made
    "input_tokens": 50,
    "input_tokens_details": {"text_tokens": 40, "image_tokens": 10},
    "output_tokens": 4160,
    "total_tokens": 4210,
}
_PICTURE = base64.b64encode(b"a picture").decode()


def _images(kind: str, body: dict[str, Any], broken: bool) -> Any:
    """An image made (``kind``: ``"image_generation"``) or edited (``"image_edit"``): whole, or
    streamed as two partial images and the finished one, whose event has the usage."""
    made = {"background": "opaque", "output_format": "png", "quality": "high", "size": "1024x1024"}
    if str(body.get("stream")).lower() != "true":  # a form's fields are text
        picture = {"b64_json": _PICTURE, "revised_prompt": f"A picture ({CANARY})"}
        usage = {} if str(body.get("model", "")).startswith("dall-e") else {"usage": IMAGE_USAGE}  # billed per image
        return {"created": 1_700_000_000, "data": [picture], **made, **usage}
    events: list[dict[str, Any]] = [
        {"type": f"{kind}.partial_image", "partial_image_index": index, "b64_json": _PICTURE, **made}
        for index in range(2)
    ]
    events.append({"type": f"{kind}.completed", "b64_json": _PICTURE, **made, "usage": IMAGE_USAGE})
    return [_sse({**event, "created_at": 1_700_000_000}, event["type"]) for event in events]


def _form(content_type: str, raw: bytes) -> dict[str, Any]:
    """The text fields of a ``multipart/form-data`` body (an image edit's), files left out."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    return {
        str(part.get_param("name", header="content-disposition")): part.get_content()
        for part in message.iter_parts()
        if part.get_filename() is None
    }


# --- OpenAI transcriptions ------------------------------------------------------------------------

TRANSCRIPTION_USAGE = {  # gpt-4o-transcribe's: the prompt's text and the audio, then the text made
    "type": "tokens",
    "input_tokens": 1200,
    "input_token_details": {"text_tokens": 200, "audio_tokens": 1000},
    "output_tokens": 300,
    "total_tokens": 1500,
}
AUDIO_SECONDS = 12.5  # the length of the audio, as whisper-1 reports it


def _transcriptions(body: dict[str, Any], broken: bool) -> Any:
    """The audio's text (:data:`REPLY`), with the usage of a token-billed model, or the audio's
    length for ``whisper-1``; as text alone for ``response_format=text``; streamed as its pieces,
    then the whole with the usage."""
    usage = {"type": "duration", "seconds": AUDIO_SECONDS} if body.get("model") == "whisper-1" else TRANSCRIPTION_USAGE
    if body.get("response_format") == "text":
        return REPLY
    if str(body.get("stream")).lower() != "true":
        return {"text": REPLY, "usage": usage}
    events = [{"type": "transcript.text.delta", "delta": piece} for piece in REPLY_PIECES]
    events.append({"type": "transcript.text.done", "text": REPLY, "usage": usage})
    return [_sse(event, event["type"]) for event in events]


# --- OpenAI speech --------------------------------------------------------------------------------

SPEECH_USAGE = {"input_tokens": 14, "output_tokens": 800, "total_tokens": 814}  # gpt-4o-mini-tts's


def _speech(body: dict[str, Any], broken: bool) -> Any:
    """The text read out: the audio's bytes, or with ``stream_format="sse"`` its pieces as events,
    the last with the usage (the only place it is reported)."""
    if body.get("stream_format") != "sse":
        return b"ID3 fake audio"
    events = [{"type": "speech.audio.delta", "audio": _PICTURE} for _ in range(2)]
    events.append({"type": "speech.audio.done", "usage": SPEECH_USAGE})
    return [_sse(event) for event in events]


# --- OpenAI embeddings --------------------------------------------------------------------------


def _embeddings(body: dict[str, Any], broken: bool) -> dict[str, Any]:
    vector = [0.25, -0.5, 0.125]
    encoded: Any = vector
    if body.get("encoding_format") == "base64":
        encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": encoded}],
        "model": _model(body),
        "usage": EMBEDDING_USAGE,
    }


# --- Anthropic messages -------------------------------------------------------------------------


def _anthropic_usage(body: dict[str, Any]) -> dict[str, Any]:
    usage = {**ANTHROPIC_USAGE, **({"speed": body["speed"]} if body.get("speed") else {})}  # as asked
    if body.get("thinking"):
        usage["output_tokens_details"] = {"thinking_tokens": THINKING_TOKENS}
    if _hosted(body):  # Anthropic's web search tool, run on its side
        usage["server_tool_use"] = {"web_search_requests": WEB_SEARCHES, "web_fetch_requests": 1}
    return usage


def _message(body: dict[str, Any], content: list[dict[str, Any]], usage: dict[str, Any]) -> dict[str, Any]:
    called = any(block["type"] == "tool_use" for block in content)
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": _model(body),
        "content": content,
        "stop_reason": ("tool_use" if called else "end_turn") if content else None,
        "stop_sequence": None,
        "usage": usage,
    }


def _tool_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """With tools offered and no tool result in the last message yet, the first tool is called
    (each required argument 1 when numeric, else :data:`CANARY`), as an Anthropic ``tool_use``
    block; None: the answer is text."""
    called = _first_tool(body)
    if called is None:
        return None
    return {"type": "tool_use", "id": "toolu_fake", "name": called[0], "input": called[1]}


def _hosted(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tools offered that the provider runs itself (web and file search), not the caller."""
    kinds = ("web_search", "file_search")
    return [tool for tool in body.get("tools") or [] if str(tool.get("type", "")).startswith(kinds)]


def _searched(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The Responses output items of the searches the offered search tools made: per web search
    tool, ``WEB_SEARCHES`` searches and a page opened; per file search tool, one search."""
    items: list[dict[str, Any]] = []
    for tool in _hosted(body):
        if tool["type"] == "file_search":
            items.append({"type": "file_search_call", "id": "fs_fake", "status": "completed", "queries": ["fake"]})
            continue
        actions = [{"type": "search", "query": "fake"}] * WEB_SEARCHES + [
            {"type": "open_page", "url": "https://example.com"}
        ]
        items += [
            {"type": "web_search_call", "id": f"ws_fake_{number}", "status": "completed", "action": action}
            for number, action in enumerate(actions)
        ]
    return items


def _first_tool(body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The first tool offered and the arguments it is called with, as :func:`_tool_call` says;
    tools in Anthropic's form, or OpenAI's (``{"type": "function", "function": {...}}``, flat in
    the Responses API)."""
    tools = [tool for tool in body.get("tools") or [] if tool not in _hosted(body)]
    items = body.get("messages") or body.get("input") or [{}]
    last = items[-1] if isinstance(items, list) else {}  # the Responses API's input may be a string
    content = last.get("content")
    answered = (
        last.get("role") == "tool"
        or last.get("type") == "function_call_output"
        or (isinstance(content, list) and any(block.get("type") == "tool_result" for block in content))
    )
    if not tools or answered:
        return None
    tool = tools[0].get("function") or tools[0]  # an MCP server's (no name given) has one tool, "lookup"
    schema = tool.get("input_schema") or tool.get("parameters") or {}
    numeric = {"integer", "number"}
    arguments = {
        name: 1 if (schema.get("properties") or {}).get(name, {}).get("type") in numeric else CANARY
        for name in schema.get("required") or []
    }
    return tool.get("name") or "lookup", arguments


def _messages(body: dict[str, Any], broken: bool) -> Any:
    usage = _anthropic_usage(body)
    call = _tool_call(body)
    if not body.get("stream"):
        return _message(body, [call or {"type": "text", "text": REPLY}], usage)
    start_usage = {**usage, "output_tokens": 1}
    start_usage.pop("output_tokens_details", None)
    if call is None:
        block: dict[str, Any] = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in REPLY_PIECES]
    else:
        block = {**call, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": json.dumps(call["input"])}]
    events = [
        _sse({"type": "message_start", "message": _message(body, [], start_usage)}, "message_start"),
        _sse({"type": "content_block_start", "index": 0, "content_block": block}, "content_block_start"),
        _sse({"type": "ping"}, "ping"),
    ]
    for delta in deltas:
        events.append(_sse({"type": "content_block_delta", "index": 0, "delta": delta}, "content_block_delta"))
    if broken:
        error = {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "fake overload mid-stream"},
        }
        return [*events[:4], _sse(error, "error")]
    cumulative = ("output_tokens", "output_tokens_details", "server_tool_use")  # what message_delta reports
    delta_usage = {key: usage[key] for key in cumulative if key in usage}
    message_delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use" if call else "end_turn", "stop_sequence": None},
        "usage": delta_usage,
    }
    return [
        *events,
        _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        _sse(message_delta, "message_delta"),
        _sse({"type": "message_stop"}, "message_stop"),
    ]
