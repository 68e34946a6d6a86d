"""Agent loops of the real ``anthropic`` SDK, instrumented: its tool runner and message threads
send each turn through ``beta.messages.create``, so every turn is one exact span."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from anthropic import beta_async_tool, beta_tool

from tests.fakes.providers import CANARY, REPLY, ProviderServer
from tests.integrations.test_anthropic import MESSAGES, assert_sonnet
from tokentrace import Span, Tracer

calls: list[tuple[str, int]] = []


@beta_tool
def lookup(city: str, days: int) -> str:
    """Look up the weather forecast.

    Args:
        city: the city.
        days: how many days ahead.
    """
    calls.append((city, days))
    return f"sunny in {city}"


@beta_async_tool
async def alookup(city: str, days: int) -> str:
    """Look up the weather forecast.

    Args:
        city: the city.
        days: how many days ahead.
    """
    calls.append((city, days))
    return f"sunny in {city}"


@pytest.fixture
def client(server: ProviderServer, traced: tuple[Tracer, list[Span]]) -> Iterator[anthropic.Anthropic]:
    calls.clear()
    raw = anthropic.Anthropic(base_url=server.anthropic_url, api_key="test-key", max_retries=0)
    yield traced[0].instrument(raw)
    raw.close()


def assert_turns(spans: list[Span], trace: str, *, streamed: bool) -> None:
    """Two turns (the tool called, then the answer), each a priced span of the one trace."""
    assert len(spans) == 2
    for span in spans:
        assert_sonnet(span, name=trace)
        assert (span.ttft_ms is not None) is streamed
    assert len({span.trace_id for span in spans}) == 1
    assert calls == [(CANARY, 1)]


def test_each_turn_of_the_tool_runner_is_a_span(
    client: anthropic.Anthropic, server: ProviderServer, traced: Any
) -> None:
    tracer, spans = traced
    with tracer.trace("agent"):
        runner = client.beta.messages.tool_runner(
            model="claude-sonnet-4-0", max_tokens=256, tools=[lookup], messages=MESSAGES
        )
        replies = list(runner)
    assert [reply.stop_reason for reply in replies] == ["tool_use", "end_turn"]
    assert replies[-1].content[0].text == REPLY
    assert len(server.requests) == 2
    assert server.requests[1].body["messages"][-1]["content"][0]["type"] == "tool_result"
    assert_turns(spans, "agent", streamed=False)


def test_each_turn_of_a_streaming_tool_runner_is_a_span(client: anthropic.Anthropic, traced: Any) -> None:
    tracer, spans = traced
    with tracer.trace("agent"):
        runner = client.beta.messages.tool_runner(
            model="claude-sonnet-4-0", max_tokens=256, tools=[lookup], messages=MESSAGES, stream=True
        )
        texts = [stream.get_final_message().stop_reason for stream in runner]
    assert texts == ["tool_use", "end_turn"]
    assert_turns(spans, "agent", streamed=True)


def test_each_turn_of_an_async_tool_runner_is_a_span(server: ProviderServer, traced: Any) -> None:
    tracer, spans = traced
    calls.clear()

    async def main() -> list[str | None]:
        async with anthropic.AsyncAnthropic(base_url=server.anthropic_url, api_key="k", max_retries=0) as raw:
            client = tracer.instrument(raw)
            with tracer.trace("agent"):
                runner = client.beta.messages.tool_runner(
                    model="claude-sonnet-4-0", max_tokens=256, tools=[alookup], messages=MESSAGES
                )
                return [reply.stop_reason async for reply in runner]

    assert asyncio.run(main()) == ["tool_use", "end_turn"]
    assert_turns(spans, "agent", streamed=False)


def test_a_message_thread_turn_is_a_span_sent_or_streamed(
    client: anthropic.Anthropic, server: ProviderServer, traced: Any
) -> None:
    thread = client.beta.messages.thread(model="claude-sonnet-4-0", max_tokens=256)
    assert thread.send(MESSAGES[0]).content[0].text == REPLY
    with thread.stream({"role": "user", "content": "And again?"}) as stream:
        assert stream.get_final_text() == REPLY
    assert server.requests[1].body["thread"] == {"type": "continue", "previous_message_id": "msg_fake"}
    spans = traced[1]
    assert len(spans) == 2
    for span in spans:
        assert_sonnet(span)
    assert [span.ttft_ms is None for span in spans] == [True, False]
    assert spans[0].trace_id != spans[1].trace_id  # outside a trace, each turn is a trace of its own


def test_captured_text_and_parallel_tool_calls_are_kept_in_order() -> None:
    from tokentrace.integrations._calls import Call, Settings
    from tokentrace.integrations.anthropic import MESSAGES as OPERATION

    message = anthropic.types.Message.model_validate(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-20250514",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "t1", "name": "lookup", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "t2", "name": "lookup", "input": {"city": "Bergen"}},
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 10, "output_tokens": 20},
        }
    )
    with Tracer(transport=[]) as tracer:
        call = Call(Settings(tracer, capture_content=True), OPERATION, "claude-sonnet-4-0", texts=[], text_room=2000)
        OPERATION.read(call, message)
    assert "".join(call.texts or []) == (
        'Let me look.\n[tool call: lookup] {"city": "Oslo"}\n[tool call: lookup] {"city": "Bergen"}'
    )
