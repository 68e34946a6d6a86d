"""Instrumented calls on a tracer with only queued transports: their spans are built on the
pipeline worker, so this checks what reaches the JSONL file, not just what the caller saw."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anthropic
import openai
import pytest

from tests.fakes.providers import CANARY, Fault, ProviderServer
from tokentrace import FileTransport, Span, Tracer
from tokentrace.integrations import _calls
from tokentrace.integrations.openai import CHAT

MESSAGES: list[Any] = [{"role": "user", "content": "Say hello"}]
CHAT_LINE = {  # every key but the ids, times and latency, exactly as the file holds them
    "name": "chat",
    "model": "gpt-4o-2024-08-06",
    "provider": "openai",
    "prompt_tokens": 1000,
    "comp_tokens": 100,
    "total_tokens": 1100,
    "cost_usd": 0.0025,
    "status": "ok",
    "cached_tokens": 800,
    "cache_write_tokens": 100,
    "attributes": {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"},
    "cost_source": "genai-prices",
}
VARYING = {"trace_id", "span_id", "started_at", "ended_at", "latency_ms", "ttft_ms"}


@pytest.fixture
def tracer(tmp_path: Path) -> Iterator[Tracer]:
    with Tracer(transport=FileTransport(tmp_path / "spans.jsonl")) as tracer:
        assert not tracer._sync  # the spans of instrumented calls are built on the worker
        yield tracer


@pytest.fixture
def client(server: ProviderServer, tracer: Tracer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw:
        yield tracer.instrument(raw)


def lines(tracer: Tracer, tmp_path: Path) -> list[dict[str, Any]]:
    assert tracer.flush(10)
    return [json.loads(line) for line in (tmp_path / "spans.jsonl").read_text().splitlines()]


def chat_returning(tracer: Tracer, result: Any) -> Callable[..., Any]:
    """A traced chat method whose SDK call returns ``result``: what this version may be handed."""
    return _calls.traced_sync(_calls.Settings(tracer), CHAT, lambda **kwargs: result)


def millis(stamp: str) -> int:
    return round(datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() * 1000)


def chat(client: openai.OpenAI, **kwargs: Any) -> Any:
    return client.chat.completions.create(model="gpt-4o", messages=MESSAGES, **kwargs)


def test_each_call_is_a_whole_priced_trace_of_its_own(client: openai.OpenAI, tracer: Tracer, tmp_path: Path) -> None:
    before = time.time_ns() // 1_000_000
    chat(client)
    chat(client)
    after = time.time_ns() // 1_000_000
    first, second = lines(tracer, tmp_path)
    for line in (first, second):
        assert {key: value for key, value in line.items() if key not in VARYING} == CHAT_LINE
        assert set(line) - set(CHAT_LINE) == {"trace_id", "span_id", "started_at", "ended_at", "latency_ms"}
    assert len({first["trace_id"], second["trace_id"], first["span_id"], second["span_id"]}) == 4
    started = [millis(line["started_at"]) for line in (first, second)]
    ended = [millis(line["ended_at"]) for line in (first, second)]
    # the wall clock of a span built later on the worker still says when the call ran (±1 ms rounding)
    assert before - 1 <= started[0] <= ended[0] <= started[1] + 1 <= ended[1] + 1 <= after + 2
    assert ended[0] - started[0] == first["latency_ms"]
    window = tracer.metrics("1h")
    assert (window.span_count, window.prompt_tokens) == (2, 2000)


def test_a_stream_and_an_error_are_built_with_what_the_caller_saw(
    client: openai.OpenAI, server: ProviderServer, tracer: Tracer, tmp_path: Path
) -> None:
    list(chat(client, stream=True))
    server.script(Fault(status=429))
    with pytest.raises(openai.RateLimitError):
        chat(client)
    streamed, failed = lines(tracer, tmp_path)
    assert {key: value for key, value in streamed.items() if key not in VARYING} == CHAT_LINE
    assert 0 <= streamed["ttft_ms"] <= streamed["latency_ms"]
    assert (failed["status"], failed["model"], failed["prompt_tokens"], failed["cost_usd"]) == ("error", "gpt-4o", 0, 0)
    assert failed["error"] == "RateLimitError: Error code: 429 - fake 429"


def test_calls_inside_a_trace_still_join_it(client: openai.OpenAI, tracer: Tracer, tmp_path: Path) -> None:
    with tracer.trace("summarize") as trace:
        chat(client)
        chat(client)
    assert [(line["trace_id"], line["name"]) for line in lines(tracer, tmp_path)] == [
        (trace.trace_id, "summarize"),
        (trace.trace_id, "summarize"),
    ]


def test_anthropic_messages_are_built_on_the_worker_too(server: ProviderServer, tracer: Tracer, tmp_path: Path) -> None:
    with anthropic.Anthropic(base_url=server.anthropic_url, api_key="k", max_retries=0) as raw:
        tracer.instrument(raw).messages.create(model="claude-sonnet-4-0", max_tokens=64, messages=MESSAGES)
    [line] = lines(tracer, tmp_path)
    assert (line["name"], line["provider"], line["prompt_tokens"], line["comp_tokens"]) == (
        "messages",
        "anthropic",
        2600,
        200,
    )
    # 200 of the 500 cache writes were for an hour, priced at their rate on the worker
    assert (line["cached_tokens"], line["cache_write_tokens"], line["cost_usd"]) == (2000, 500, 0.006225)


def test_a_span_that_fails_to_build_on_the_worker_is_counted_and_the_next_ones_flow(
    client: openai.OpenAI, tracer: Tracer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(template: Span) -> Span:
        raise RuntimeError("bookkeeping bug")

    with monkeypatch.context() as patched:
        patched.setattr(_calls, "blank_span", broken)
        assert chat(client).choices[0].message.content
        assert lines(tracer, tmp_path) == []
    chat(client)
    assert len(lines(tracer, tmp_path)) == 1
    assert tracer.stats()["dropped"] == {"instrumentation_error": 1}


def test_calls_after_close_are_counted_not_raised(client: openai.OpenAI, tracer: Tracer, tmp_path: Path) -> None:
    tracer.close()
    assert chat(client).choices[0].message.content
    assert tracer.stats()["dropped"] == {"closed": 1}
    assert (tmp_path / "spans.jsonl").read_text() == ""


def test_a_response_that_cannot_be_read_still_gives_its_span(tracer: Tracer, tmp_path: Path) -> None:
    odd = SimpleNamespace(model="gpt-4o-2024-08-06")  # no usage: not what the SDK returns

    traced = chat_returning(tracer, odd)
    assert traced(model="gpt-4o", messages=MESSAGES) is odd
    [line] = lines(tracer, tmp_path)
    assert (line["name"], line["model"], line["prompt_tokens"], line["status"]) == ("chat", "gpt-4o", 0, "ok")
    assert tracer.stats()["dropped"] == {"instrumentation_error": 1}


@pytest.mark.parametrize(
    ("usage", "failures"),
    [
        (None, {}),  # a compatible server that sends no usage: nothing went wrong
        (("12", "5"), {"instrumentation_error": 1}),  # a usage shape this version does not know
    ],
)
def test_a_usage_that_cannot_be_read_keeps_the_span_and_its_model(
    tracer: Tracer, tmp_path: Path, usage: Any, failures: dict[str, int]
) -> None:
    odd = SimpleNamespace(model="gpt-4o-2024-08-06", usage=usage)
    traced = chat_returning(tracer, odd)
    assert traced(model="gpt-4o", messages=MESSAGES) is odd
    [line] = lines(tracer, tmp_path)
    assert (line["name"], line["model"], line["prompt_tokens"], line["comp_tokens"], line["status"]) == (
        "chat",
        "gpt-4o-2024-08-06",
        0,
        0,
        "ok",
    )
    assert tracer.stats()["dropped"] == failures


@pytest.mark.parametrize(
    "details",
    [
        {},  # what some OpenAI-compatible servers send: no details at all
        {"prompt_tokens_details": {"cached_tokens": 4}},  # no completion details
        {"prompt_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 2}, "completion_tokens_details": {}},
    ],
)
def test_usage_with_details_missing_is_read_all_the_same(
    tracer: Tracer, tmp_path: Path, details: dict[str, Any]
) -> None:
    usage = openai.types.CompletionUsage.model_validate(
        {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10, **details}
    )
    response = SimpleNamespace(model="gpt-4o-2024-08-06", usage=usage)
    chat_returning(tracer, response)(model="gpt-4o", messages=MESSAGES)
    [line] = lines(tracer, tmp_path)
    cached = details.get("prompt_tokens_details", {})
    assert (line["prompt_tokens"], line["comp_tokens"]) == (7, 3)
    assert (line.get("cached_tokens"), line.get("cache_write_tokens")) == (
        cached.get("cached_tokens"),
        cached.get("cache_write_tokens"),
    )
    assert tracer.stats()["dropped"] == {}


def test_a_stream_chunk_that_cannot_be_read_is_passed_on_and_the_rest_still_read(
    tracer: Tracer, tmp_path: Path
) -> None:
    usage = SimpleNamespace(prompt_tokens=7, completion_tokens=3)
    chunks: list[Any] = [
        SimpleNamespace(model="gpt-4o-2024-08-06", choices=["Hel"], usage=None),
        ("lo",),  # not what the SDK returns: no fields at all
        SimpleNamespace(model="gpt-4o-2024-08-06", choices=[], usage=usage),  # the usage chunk we asked for
    ]

    class Stream:  # the SDK's: events read from ``_iterator``, and a ``close``
        _iterator = iter(chunks)

        def close(self) -> None:
            pass

    stream = Stream()

    traced = chat_returning(tracer, stream)
    assert traced(model="gpt-4o", messages=MESSAGES, stream=True) is stream
    assert list(stream._iterator) == chunks[:2]
    [line] = lines(tracer, tmp_path)
    assert (line["model"], line["prompt_tokens"], line["comp_tokens"], line["status"]) == (
        "gpt-4o-2024-08-06",
        7,
        3,
        "ok",
    )
    assert line["ttft_ms"] >= 0  # the first chunk was read
    assert tracer.stats()["dropped"] == {"instrumentation_error": 1}


def test_an_async_stream_chunk_that_cannot_be_read_is_passed_on_and_the_rest_still_read(
    tracer: Tracer, tmp_path: Path
) -> None:
    usage = SimpleNamespace(prompt_tokens=7, completion_tokens=3)
    chunks: list[Any] = [
        SimpleNamespace(model="gpt-4o-2024-08-06", choices=["Hel"], usage=None),
        ("lo",),
        SimpleNamespace(model="gpt-4o-2024-08-06", choices=[], usage=usage),
    ]

    async def events() -> Any:
        for chunk in chunks:
            yield chunk

    class AsyncStream:  # the SDK's: events read from ``_iterator``, and an async ``close``
        def __init__(self) -> None:
            self._iterator = events()

        async def close(self) -> None:
            pass

    async def main() -> list[Any]:
        stream = AsyncStream()

        async def create(**kwargs: Any) -> AsyncStream:
            return stream

        traced = _calls.traced_async(_calls.Settings(tracer), CHAT, create)
        assert await traced(model="gpt-4o", messages=MESSAGES, stream=True) is stream
        return [chunk async for chunk in stream._iterator]

    assert asyncio.run(main()) == chunks[:2]
    [line] = lines(tracer, tmp_path)
    assert (line["model"], line["prompt_tokens"], line["comp_tokens"], line["status"]) == (
        "gpt-4o-2024-08-06",
        7,
        3,
        "ok",
    )
    assert tracer.stats()["dropped"] == {"instrumentation_error": 1}


def test_a_stream_that_cannot_be_watched_is_left_as_it_was_and_recorded_once(tracer: Tracer, tmp_path: Path) -> None:
    class Stream:  # events read from ``_iterator``, but its slots keep it from moving to a subclass
        __slots__ = ("_iterator",)

        def __init__(self) -> None:
            self._iterator = iter(["Hel", "lo"])

        def close(self) -> None:
            pass

    stream = Stream()
    events = stream._iterator

    traced = chat_returning(tracer, stream)
    assert traced(model="gpt-4o", messages=MESSAGES, stream=True) is stream
    assert stream._iterator is events
    assert list(stream._iterator) == ["Hel", "lo"]
    [line] = lines(tracer, tmp_path)
    assert (line["model"], line["prompt_tokens"], line["status"], line.get("ttft_ms")) == ("gpt-4o", 0, "ok", None)
    assert line["attributes"] == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "tokentrace.stream.watched": False,
        "tokentrace.usage.reported": False,
    }
    assert tracer.stats()["dropped"] == {"instrumentation_error": 1}


def test_a_raw_response_that_cannot_be_parsed_is_recorded_as_failed(tracer: Tracer, tmp_path: Path) -> None:
    class Unreadable:  # what with_raw_response hands back, with a body the SDK cannot parse
        def parse(self) -> Any:
            raise ValueError(f"not a chat completion: {CANARY}")

    response = Unreadable()
    traced = chat_returning(tracer, response)
    raw = {"X-Stainless-Raw-Response": "true"}
    assert traced(model="gpt-4o", messages=MESSAGES, extra_headers=raw) is response  # its parse() is the caller's
    [line] = lines(tracer, tmp_path)
    assert (line["model"], line["prompt_tokens"], line["status"]) == ("gpt-4o", 0, "error")
    assert line["error"] == "ValueError (message not recorded without capture_content)"  # the SDK's, not ours
    assert tracer.stats()["dropped"] == {}


def _usage_models() -> int:
    """How many of the SDKs' usage models are alive."""
    gc.collect()
    kinds = (
        openai.types.CompletionUsage,
        openai.types.completion_usage.PromptTokensDetails,
        openai.types.completion_usage.CompletionTokensDetails,
        anthropic.types.Usage,
        anthropic.types.MessageDeltaUsage,
    )
    return sum(isinstance(item, kinds) for item in gc.get_objects())


def test_calls_waiting_for_the_worker_keep_none_of_the_sdks_objects(
    server: ProviderServer, tracer: Tracer, tmp_path: Path
) -> None:
    # Each usage model is several objects tracked by the garbage collector: calls that kept them
    # while queued would make collections far more frequent in a busy application.
    held, release = threading.Event(), threading.Event()

    def hold(spans: list[Span]) -> None:  # keeps the worker busy, so the calls after it wait
        held.set()
        release.wait(30)

    async def async_chat() -> None:
        async with openai.AsyncOpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw:
            await tracer.instrument(raw).chat.completions.create(model="gpt-4o", messages=MESSAGES)

    tracer.add_sink(hold)
    with (
        openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw_openai,
        anthropic.Anthropic(base_url=server.anthropic_url, api_key="k", max_retries=0) as raw_anthropic,
    ):
        client, claude = tracer.instrument(raw_openai), tracer.instrument(raw_anthropic)
        try:
            chat(client)
            assert held.wait(10)
            before = _usage_models()
            for _ in range(2):  # no result is kept: the counts below are what the calls keep
                chat(client)
                for _ in chat(client, stream=True):
                    pass
                claude.messages.create(model="claude-sonnet-4-0", max_tokens=64, messages=MESSAGES)
                for _ in claude.messages.create(
                    model="claude-sonnet-4-0", max_tokens=64, messages=MESSAGES, stream=True
                ):
                    pass
                asyncio.run(async_chat())
            assert tracer.stats()["queued"] == 10
            assert _usage_models() == before
        finally:
            release.set()
    found = lines(tracer, tmp_path)
    assert [(line["name"], line["prompt_tokens"], line["comp_tokens"]) for line in found] == [
        ("chat", 1000, 100),
        *[("chat", 1000, 100), ("chat", 1000, 100), ("messages", 2600, 200), ("messages", 2600, 200),
          ("chat", 1000, 100)] * 2,
    ]  # fmt: skip
