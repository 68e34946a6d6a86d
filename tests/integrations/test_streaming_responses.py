"""Calls made through the SDKs' ``with_streaming_response``, whose body is the caller's to read: the
span is read from the response's ``parse()``, or from the body the caller read in full, and is
otherwise recorded without tokens, marked. The real SDKs against the local fake provider."""

from __future__ import annotations

import asyncio
import gc
import json
from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest

from tests.fakes.providers import REPLY, Fault, ProviderServer
from tests.integrations.test_anthropic import MESSAGES as CLAUDE_MESSAGES
from tests.integrations.test_anthropic import assert_sonnet
from tests.integrations.test_openai import MESSAGES, assert_gpt4o
from tokentrace import Span, Status
from tokentrace.integrations._calls import record_abandoned

NOT_PARSED = {
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "gpt-4o",
    "tokentrace.response.parsed": False,
    "tokentrace.usage.reported": False,
}


def streaming(client: Any, **kwargs: Any) -> Any:
    return client.chat.completions.with_streaming_response.create(model="gpt-4o", messages=MESSAGES, **kwargs)


def assert_without_tokens(span: Span) -> None:
    assert (span.model, span.prompt_tokens, span.comp_tokens, span.cost) == ("gpt-4o", 0, 0, Decimal(0))
    assert span.status is Status.OK and span.error is None
    assert span.attributes == NOT_PARSED


def test_a_parsed_response_is_one_priced_span(client: openai.OpenAI, traced: Any) -> None:
    with streaming(client) as response:
        assert traced[1] == []  # read from the parse, not before
        completion = response.parse()
        assert completion.choices[0].message.content == REPLY
        assert response.parse() is completion  # the SDK's own cache, still
    [span] = traced[1]
    assert_gpt4o(span)
    assert type(response).__name__ == "APIResponse" and isinstance(response, openai._response.APIResponse)


def test_a_parsed_stream_is_watched_and_sent_as_asked(
    client: openai.OpenAI, server: ProviderServer, traced: Any
) -> None:
    with streaming(client, stream=True, stream_options={"include_usage": True}) as response:
        chunks = list(response.parse())
    assert server.requests[-1].body["stream_options"] == {"include_usage": True}
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 1000  # asked for: not hidden
    [span] = traced[1]
    assert_gpt4o(span)
    assert span.ttft_ms is not None and 0 <= span.ttft_ms <= span.latency_ms


def test_a_parsed_stream_left_half_way_is_recorded_when_the_block_ends(client: openai.OpenAI, traced: Any) -> None:
    with streaming(client, stream=True) as response:
        next(response.parse())
        assert traced[1] == []
    [span] = traced[1]
    assert span.status is Status.ERROR and span.error == "stream not consumed"
    assert span.model == "gpt-4o-2024-08-06" and span.ttft_ms is not None


def test_a_stream_whose_body_is_the_callers_gets_no_usage_request_added(
    client: openai.OpenAI, server: ProviderServer, traced: Any
) -> None:
    with streaming(client, stream=True) as response:
        lines = [line for line in response.iter_lines() if line]
    assert "stream_options" not in server.requests[-1].body  # the raw body holds only what was asked
    assert all(json.loads(line.removeprefix("data: ")).get("usage") is None for line in lines[:-1])
    assert lines[-1] == "data: [DONE]"
    [span] = traced[1]
    assert_without_tokens(span)
    assert span.ttft_ms is None


def test_a_body_read_in_full_by_the_caller_is_read_for_its_tokens(client: openai.OpenAI, traced: Any) -> None:
    with streaming(client) as response:
        body = response.json()
        assert traced[1] == []
    assert body["choices"][0]["message"]["content"] == REPLY
    [span] = traced[1]
    assert_gpt4o(span)


def test_a_body_parsed_to_the_callers_type_is_read_for_its_tokens(client: openai.OpenAI, traced: Any) -> None:
    with streaming(client) as response:
        body = response.parse(to=dict)
    assert body["usage"]["prompt_tokens"] == 1000
    [span] = traced[1]
    assert_gpt4o(span)


def test_a_body_left_unread_is_recorded_without_tokens(client: openai.OpenAI, traced: Any) -> None:
    with streaming(client) as response:
        assert response.http_response.status_code == 200
    [span] = traced[1]
    assert_without_tokens(span)


def test_a_response_never_closed_is_recorded_when_collected(client: openai.OpenAI, traced: Any) -> None:
    manager = streaming(client)
    response = manager.__enter__()  # entered by hand, and the block never left
    assert response.http_response.status_code == 200
    del manager, response
    gc.collect()
    record_abandoned()  # what the next call, or the tracer's stream thread within a second, does
    [span] = traced[1]
    assert_without_tokens(span)


def test_a_body_read_in_part_is_recorded_without_tokens(client: openai.OpenAI, traced: Any) -> None:
    with streaming(client) as response:
        next(response.iter_bytes(chunk_size=8))
    [span] = traced[1]
    assert_without_tokens(span)


def test_an_api_error_reaches_the_caller_and_marks_the_span(
    client: openai.OpenAI, server: ProviderServer, traced: Any
) -> None:
    server.script(Fault(status=500))
    with pytest.raises(openai.InternalServerError), streaming(client):
        pass
    [span] = traced[1]
    assert span.status is Status.ERROR
    assert span.error == "InternalServerError: Error code: 500 - fake 500"


def test_a_body_that_does_not_parse_is_recorded_without_tokens(
    client: openai.OpenAI, server: ProviderServer, traced: Any
) -> None:
    server.script(Fault(garbled=True))
    with streaming(client) as response:
        with pytest.raises(json.JSONDecodeError):
            response.parse()  # the caller's own error, as the SDK raises it
    [span] = traced[1]
    assert_without_tokens(span)


def test_async_responses_parsed_and_streamed(server: ProviderServer, traced: Any) -> None:
    async def main() -> tuple[str, int]:
        async with openai.AsyncOpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw:
            client = traced[0].instrument(raw)
            async with streaming(client) as response:
                text = (await response.parse()).choices[0].message.content
            async with streaming(client, stream=True, stream_options={"include_usage": True}) as response:
                chunks = [chunk async for chunk in await response.parse()]
            async with streaming(client) as response:
                await response.read()
            async with streaming(client, stream=True) as response:
                await (await response.parse()).__anext__()
            return str(text), len(chunks)

    text, count = asyncio.run(main())
    assert text == REPLY and count > 2
    assert len(traced[1]) == 4
    for span in traced[1][:3]:
        assert_gpt4o(span)
    assert [span.ttft_ms is None for span in traced[1]] == [True, False, True, False]
    assert traced[1][3].error == "stream not consumed"


def test_anthropic_responses_parsed_and_streamed(server: ProviderServer, traced: Any) -> None:
    with anthropic.Anthropic(base_url=server.anthropic_url, api_key="k", max_retries=0) as raw:
        client = traced[0].instrument(raw)
        request = {"model": "claude-sonnet-4-0", "max_tokens": 256, "messages": CLAUDE_MESSAGES}
        with client.messages.with_streaming_response.create(**request) as response:
            message = response.parse()
        with client.messages.with_streaming_response.create(**request, stream=True) as response:
            events = list(response.parse())
    assert message.content[0].text == REPLY
    assert events[0].type == "message_start" and events[-1].type == "message_stop"
    assert len(traced[1]) == 2
    for span in traced[1]:
        assert_sonnet(span)
    assert traced[1][1].ttft_ms is not None


def test_a_collected_response_still_runs_its_own_classs_finalizer(traced: Any) -> None:
    from tokentrace.integrations import openai as integration
    from tokentrace.integrations._calls import Call, Settings
    from tokentrace.integrations._streams import watch_response

    finalized: list[str] = []

    class Response:  # a response class of an SDK that finalizes its objects itself
        def parse(self) -> None:
            raise NotImplementedError

        def close(self) -> None:
            pass

        def __del__(self) -> None:
            finalized.append("sdk")

    response = Response()
    watch_response(response, Call(Settings(traced[0]), integration.CHAT, "gpt-4o", unread=True))
    assert type(response) is not Response and isinstance(response, Response)
    del response
    record_abandoned()
    assert finalized == ["sdk"]
    [span] = traced[1]
    assert_without_tokens(span)
