"""The real ``anthropic`` SDK, instrumented, against the local fake provider: one exact span per call."""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import anthropic
import pytest

from tests.fakes.providers import CANARY, REPLY, THINKING_TOKENS, WEB_SEARCHES, Fault, ProviderServer
from tokentrace import Span, Status, Tracer
from tokentrace.integrations import uninstrument
from tokentrace.integrations._calls import record_abandoned
from tokentrace.pricing import Usage
from tokentrace.testing import capture_spans

MESSAGES: list[Any] = [{"role": "user", "content": f"Say hello ({CANARY})"}]
# claude-sonnet-4 per Mtok: 100 uncached x $3 + 2000 cache reads x $0.30 + 300 five-minute cache
# writes x $3.75 + 200 one-hour cache writes x $6 + 200 out x $15
SONNET_COST = Decimal("0.006225")


@pytest.fixture
def client(server: ProviderServer, traced: tuple[Tracer, list[Span]]) -> Iterator[anthropic.Anthropic]:
    raw = anthropic.Anthropic(base_url=server.anthropic_url, api_key="test-key", max_retries=0)
    yield traced[0].instrument(raw)
    raw.close()


def ask(client: Any, **kwargs: Any) -> Any:
    return client.messages.create(model="claude-sonnet-4-0", max_tokens=256, messages=MESSAGES, **kwargs)


def stream_manager(client: Any, **kwargs: Any) -> Any:
    return client.messages.stream(model="claude-sonnet-4-0", max_tokens=256, messages=MESSAGES, **kwargs)


def assert_sonnet(span: Span, *, name: str = "messages") -> None:
    assert (span.name, span.provider, span.model) == (name, "anthropic", "claude-sonnet-4-20250514")
    assert (span.prompt_tokens, span.comp_tokens) == (2600, 200)  # input includes cache reads and writes
    assert (span.cached_tokens, span.cache_write_tokens, span.reasoning_tokens) == (2000, 500, None)
    assert span.cost == SONNET_COST
    assert span.status is Status.OK and span.error is None
    assert span.attributes == {
        "gen_ai.operation.name": "messages",
        "gen_ai.request.model": "claude-sonnet-4-0",
        "tokentrace.usage.cache_write_1h_tokens": 200,
    }


def test_create_is_one_priced_span(client: anthropic.Anthropic, traced: Any) -> None:
    message = ask(client)
    assert message.content[0].text == REPLY
    [span] = traced[1]
    assert_sonnet(span)
    assert span.ttft_ms is None and span.parent_span_id is None


def test_streamed_create_takes_usage_from_start_and_delta(client: anthropic.Anthropic, traced: Any) -> None:
    events = list(ask(client, stream=True))
    assert (events[0].type, events[-1].type) == ("message_start", "message_stop")
    [span] = traced[1]
    assert_sonnet(span)
    assert span.ttft_ms is not None and 0 <= span.ttft_ms <= span.latency_ms


def test_web_searches_are_priced_per_thousand_on_top_of_the_tokens(client: anthropic.Anthropic, traced: Any) -> None:
    tools: Any = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]
    assert ask(client, tools=tools).usage.server_tool_use.web_search_requests == WEB_SEARCHES
    list(ask(client, tools=tools, stream=True))
    with stream_manager(client, tools=tools) as stream:
        stream.until_done()
    assert len(traced[1]) == 3
    for span in traced[1]:
        assert span.cost == SONNET_COST + Decimal("0.02")  # 2 searches at $10 per thousand
        assert span.attributes == {
            "gen_ai.operation.name": "messages",
            "gen_ai.request.model": "claude-sonnet-4-0",
            "tokentrace.usage.web_searches": 2,
            "tokentrace.usage.cache_write_1h_tokens": 200,
        }


def test_raw_response_calls_are_traced_sync_and_async(
    client: anthropic.Anthropic, server: ProviderServer, traced: Any
) -> None:
    raw = client.messages.with_raw_response.create(model="claude-sonnet-4-0", max_tokens=256, messages=MESSAGES)
    assert raw.parse().content[0].text == REPLY

    async def main() -> list[str]:
        async with anthropic.AsyncAnthropic(base_url=server.anthropic_url, api_key="k", max_retries=0) as plain:
            messages = traced[0].instrument(plain).messages
            response = await messages.with_raw_response.create(
                model="claude-sonnet-4-0", max_tokens=256, messages=MESSAGES, stream=True
            )
            return [event.type async for event in await response.parse()]

    assert asyncio.run(main())[-1] == "message_stop"
    plain, stream = traced[1]
    assert_sonnet(plain)
    assert_sonnet(stream)
    assert plain.ttft_ms is None and stream.ttft_ms is not None


def test_later_message_deltas_replace_only_the_counts_they_set() -> None:
    from tokentrace.integrations.anthropic import _usage

    start = anthropic.types.Usage.construct(
        input_tokens=100, output_tokens=1, cache_read_input_tokens=2000, cache_creation_input_tokens=500
    )
    first = anthropic.types.MessageDeltaUsage.construct(output_tokens=40, cache_read_input_tokens=3000)
    second = anthropic.types.MessageDeltaUsage.construct(output_tokens=200, cache_read_input_tokens=None)
    assert _usage([start, first, second]) == Usage(
        prompt_tokens=3600, completion_tokens=200, cached_tokens=3000, cache_write_tokens=500
    )


def test_messages_stream_context_manager(client: anthropic.Anthropic, traced: Any) -> None:
    with stream_manager(client) as stream:
        assert stream.get_final_text() == REPLY
    [span] = traced[1]
    assert_sonnet(span)
    assert span.ttft_ms is not None


def test_calls_inside_a_trace_share_it(client: anthropic.Anthropic, traced: Any) -> None:
    tracer, spans = traced
    with tracer.trace("review") as trace:
        ask(client)
        with stream_manager(client) as stream:
            stream.until_done()
    assert [s.name for s in spans] == ["review", "review"]
    assert {s.trace_id for s in spans} == {trace.trace_id}


def test_parse_is_traced(client: anthropic.Anthropic, server: ProviderServer, traced: Any) -> None:
    parsed = client.messages.parse(model="claude-sonnet-4-0", max_tokens=256, messages=MESSAGES)
    assert parsed.content[0].text == REPLY
    assert len(server.requests) == 1  # a request of its own, not made through create
    [span] = traced[1]
    assert_sonnet(span)


def test_beta_messages_create_parse_and_stream(
    client: anthropic.Anthropic, server: ProviderServer, traced: Any
) -> None:
    beta = client.beta.messages
    beta.create(model="claude-sonnet-4-0", max_tokens=256, messages=MESSAGES)
    events = list(beta.create(model="claude-sonnet-4-0", max_tokens=256, messages=MESSAGES, stream=True))
    assert events[-1].type == "message_stop"
    beta.parse(model="claude-sonnet-4-0", max_tokens=256, messages=MESSAGES)
    with beta.stream(model="claude-sonnet-4-0", max_tokens=256, messages=MESSAGES) as stream:
        assert stream.get_final_text() == REPLY
    raw = beta.with_raw_response.create(model="claude-sonnet-4-0", max_tokens=256, messages=MESSAGES)
    assert raw.parse().content[0].text == REPLY
    assert len(server.requests) == 5
    spans = traced[1]
    assert len(spans) == 5
    for span in spans:
        assert_sonnet(span)
    assert [s.ttft_ms is None for s in spans] == [True, False, True, False, True]


def test_async_beta_messages_create_and_stream(server: ProviderServer, traced: Any) -> None:
    tracer, spans = traced

    async def main() -> str:
        async with anthropic.AsyncAnthropic(base_url=server.anthropic_url, api_key="k", max_retries=0) as raw:
            beta = tracer.instrument(raw).beta.messages
            await beta.create(model="claude-sonnet-4-0", max_tokens=256, messages=MESSAGES)
            await beta.parse(model="claude-sonnet-4-0", max_tokens=256, messages=MESSAGES)
            async with beta.stream(model="claude-sonnet-4-0", max_tokens=256, messages=MESSAGES) as stream:
                return await stream.get_final_text()  # type: ignore[no-any-return]

    assert asyncio.run(main()) == REPLY
    assert len(spans) == 3
    for span in spans:
        assert_sonnet(span)


def test_a_beta_stream_left_half_way_is_recorded_as_not_consumed(client: anthropic.Anthropic, traced: Any) -> None:
    with client.beta.messages.stream(model="claude-sonnet-4-0", max_tokens=256, messages=MESSAGES) as stream:
        for event in stream:
            if event.type == "content_block_delta":
                break
    [span] = traced[1]
    assert (span.status, span.error, span.prompt_tokens, span.comp_tokens) == (
        Status.ERROR,
        "stream not consumed",
        2600,
        1,
    )


def test_fast_mode_is_priced_at_its_rates(client: anthropic.Anthropic, traced: Any) -> None:
    fast = {"model": "claude-opus-4-8", "max_tokens": 256, "messages": MESSAGES, "speed": "fast"}
    client.messages.create(**fast)
    list(client.messages.create(**fast, stream=True))
    with client.messages.stream(**fast) as stream:
        stream.until_done()
    # claude-opus-4-8 in fast mode per Mtok: 100 uncached x $10 + 2000 cache reads x $1 + 300
    # five-minute cache writes x $12.50 + 200 one-hour ones x $20 + 200 out x $50 (twice the standard)
    assert [s.cost for s in traced[1]] == [Decimal("0.02075")] * 3
    assert [(s.attributes or {}).get("anthropic.response.speed") for s in traced[1]] == ["fast"] * 3


def test_thinking_tokens_become_reasoning_tokens(client: anthropic.Anthropic, traced: Any) -> None:
    thinking = {"type": "enabled", "budget_tokens": 1024}
    ask(client, thinking=thinking)
    list(ask(client, thinking=thinking, stream=True))
    assert [s.reasoning_tokens for s in traced[1]] == [THINKING_TOKENS, THINKING_TOKENS]
    assert [s.comp_tokens for s in traced[1]] == [200, 200]


def test_async_create_stream_and_stream_manager(server: ProviderServer, traced: Any) -> None:
    tracer, spans = traced

    async def main() -> str:
        async with anthropic.AsyncAnthropic(base_url=server.anthropic_url, api_key="k", max_retries=0) as raw:
            client = tracer.instrument(raw)
            await ask(client)
            stream = await ask(client, stream=True)
            async for _ in stream:
                pass
            async with stream_manager(client) as managed:
                return await managed.get_final_text()  # type: ignore[no-any-return]

    assert asyncio.run(main()) == REPLY
    assert len(spans) == 3
    for span in spans:
        assert_sonnet(span)
    assert [s.ttft_ms is None for s in spans] == [True, False, False]


def test_async_streams_left_half_way_or_closed_after_their_end(server: ProviderServer, traced: Any) -> None:
    tracer, spans = traced

    async def main() -> None:
        async with anthropic.AsyncAnthropic(base_url=server.anthropic_url, api_key="k", max_retries=0) as raw:
            client = tracer.instrument(raw)
            async with stream_manager(client) as managed:
                async for event in managed:
                    if event.type == "content_block_delta":
                        break
            assert [span.error for span in spans] == ["stream not consumed"]  # by the block's exit
            async with await ask(client, stream=True) as stream:
                assert type(stream).__name__ == "AsyncStream" and isinstance(stream, anthropic.AsyncStream)
                async for _ in stream:
                    pass
            # its close, after the end, leaves the span as the end made it

    gc.disable()  # recorded by the closes, not by the collector
    try:
        asyncio.run(main())
    finally:
        gc.enable()
    left, read = spans
    assert (left.status, left.prompt_tokens, left.comp_tokens) == (Status.ERROR, 2600, 1)  # the usage seen so far
    assert_sonnet(read)


# --- failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type"), [(500, anthropic.InternalServerError), (429, anthropic.RateLimitError)]
)
def test_api_errors_reach_the_caller_and_mark_the_span(
    client: anthropic.Anthropic, server: ProviderServer, traced: Any, status: int, error_type: type[Exception]
) -> None:
    server.script(Fault(status=status))
    with pytest.raises(error_type) as raised:
        ask(client)
    assert raised.value.status_code == status  # type: ignore[attr-defined]
    assert len(server.requests) == 1
    [span] = traced[1]
    assert span.status is Status.ERROR and span.error == f"{error_type.__name__}: {raised.value}"
    assert (span.model, span.prompt_tokens, span.comp_tokens) == ("claude-sonnet-4-0", 0, 0)


def test_a_failed_stream_request_is_recorded_on_enter_sync_and_async(
    client: anthropic.Anthropic, server: ProviderServer, traced: Any
) -> None:
    server.script(Fault(status=500))
    with pytest.raises(anthropic.InternalServerError), stream_manager(client):
        pass

    async def main() -> None:
        async with anthropic.AsyncAnthropic(base_url=server.anthropic_url, api_key="k", max_retries=0) as raw:
            server.script(Fault(status=429))
            with pytest.raises(anthropic.RateLimitError):
                async with stream_manager(traced[0].instrument(raw)):
                    pass

    asyncio.run(main())
    plain, awaited = traced[1]
    assert plain.status is Status.ERROR and plain.error.startswith("InternalServerError: ")
    assert awaited.status is Status.ERROR and awaited.error.startswith("RateLimitError: ")
    assert awaited.model == "claude-sonnet-4-0" and awaited.prompt_tokens == 0


def test_the_sdks_own_retries_make_one_span_per_call(server: ProviderServer, traced: Any) -> None:
    with anthropic.Anthropic(base_url=server.anthropic_url, api_key="k", max_retries=1) as raw:
        client = traced[0].instrument(raw)
        server.script(Fault(status=429))
        ask(client)
        server.script(Fault(status=500), Fault(status=500))
        with pytest.raises(anthropic.InternalServerError):
            ask(client)
    assert len(server.requests) == 4
    recovered, failed = traced[1]
    assert_sonnet(recovered)
    assert failed.status is Status.ERROR and failed.error.startswith("InternalServerError: ")


def test_message_batch_results_are_priced_at_batch_rates_once_each(
    client: anthropic.Anthropic, server: ProviderServer, traced: Any
) -> None:
    first = [r.custom_id for r in client.messages.batches.results("msgbatch_fake")]
    again = [r.custom_id for r in client.messages.batches.results("msgbatch_fake")]  # read again
    assert first == again == ["first", "second"]  # every result reaches the caller
    [span] = traced[1]  # the succeeded one, once; the errored request is not billed
    assert (span.name, span.model, span.prompt_tokens, span.comp_tokens) == ("messages", "claude-sonnet-4-5", 1000, 200)
    assert span.cost == Decimal("0.003")  # half of 1000 x $3 + 200 x $15 per Mtok
    assert span.attributes == {"gen_ai.operation.name": "messages", "tokentrace.batch": True}  # no model asked for
    assert span.latency_ms is None and span.status is Status.OK
    ended = datetime(2026, 11, 28, 10, 20, tzinfo=timezone.utc).timestamp() * 1000  # the batch's ended_at
    assert abs(span.started_at - ended) <= 1 and span.ended_at == span.started_at  # type: ignore[operator]
    assert span.span_id == str(uuid.uuid5(uuid.NAMESPACE_URL, "tokentrace:anthropic:msgbatch_fake:first"))
    assert [r.path for r in server.requests] == [
        "/v1/messages/batches/msgbatch_fake",
        "/v1/messages/batches/msgbatch_fake/results",
    ] * 2
    assert client.messages.batches.with_raw_response.retrieve("msgbatch_fake").parse().id == "msgbatch_fake"
    raw = client.messages.batches.with_raw_response.results("msgbatch_fake")
    with client.messages.batches.with_streaming_response.results("msgbatch_fake") as streamed:
        streamed.read()
    assert "_iterator" not in vars(raw) and "_iterator" not in vars(streamed)  # left as the SDK made them
    assert len(traced[1]) == 1  # results read raw are the caller's: not recorded, and no failure either
    assert traced[0].stats()["dropped"] == {}


def test_message_batch_results_read_by_an_async_client(server: ProviderServer, traced: Any) -> None:
    async def main() -> list[str]:
        async with anthropic.AsyncAnthropic(base_url=server.anthropic_url, api_key="k", max_retries=0) as raw:
            results = await traced[0].instrument(raw).messages.batches.results("msgbatch_fake")
            return [r.custom_id async for r in results]

    assert asyncio.run(main()) == ["first", "second"]
    [span] = traced[1]
    assert (span.model, span.cost, span.latency_ms) == ("claude-sonnet-4-5", Decimal("0.003"), None)
    ended = datetime(2026, 11, 28, 10, 20, tzinfo=timezone.utc).timestamp() * 1000
    assert abs(span.started_at - ended) <= 1  # type: ignore[operator]


def test_message_batch_results_keep_their_text_only_when_content_is_captured(server: ProviderServer) -> None:
    for capture in (False, True):
        with (
            capture_spans() as (tracer, spans),
            anthropic.Anthropic(base_url=server.anthropic_url, api_key="k", max_retries=0) as raw,
        ):
            list(tracer.instrument(raw, capture_content=capture).messages.batches.results("msgbatch_fake"))
        [span] = spans
        assert (span.attributes or {}).get("gen_ai.completion") == (REPLY if capture else None)


def test_a_timeout_is_recorded(client: anthropic.Anthropic, server: ProviderServer, traced: Any) -> None:
    server.script(Fault(delay=10))
    with pytest.raises(anthropic.APITimeoutError) as raised:
        ask(client, timeout=0.3)
    [span] = traced[1]
    assert span.status is Status.ERROR and span.error == f"APITimeoutError: {raised.value}"


def test_a_stream_broken_by_the_provider_keeps_the_usage_seen(
    client: anthropic.Anthropic, server: ProviderServer, traced: Any
) -> None:
    server.script(Fault(break_stream=True))
    with pytest.raises(anthropic.APIStatusError) as raised, stream_manager(client) as stream:
        stream.until_done()
    [span] = traced[1]
    assert span.status is Status.ERROR and span.error == f"{type(raised.value).__name__}: {raised.value}"
    assert (span.prompt_tokens, span.comp_tokens, span.cached_tokens) == (2600, 1, 2000)


def test_an_async_stream_broken_by_the_provider_keeps_the_usage_seen(server: ProviderServer, traced: Any) -> None:
    async def main() -> BaseException:
        async with anthropic.AsyncAnthropic(base_url=server.anthropic_url, api_key="k", max_retries=0) as raw:
            server.script(Fault(break_stream=True))
            stream = await ask(traced[0].instrument(raw), stream=True)
            with pytest.raises(anthropic.APIStatusError) as raised:
                async for _ in stream:
                    pass
            return raised.value

    error = asyncio.run(main())
    [span] = traced[1]
    assert span.status is Status.ERROR and span.error == f"{type(error).__name__}: {error}"
    assert (span.prompt_tokens, span.comp_tokens, span.cached_tokens) == (2600, 1, 2000)


def test_a_stream_left_half_way_is_recorded_as_not_consumed(client: anthropic.Anthropic, traced: Any) -> None:
    with stream_manager(client) as stream:
        for event in stream:
            if event.type == "content_block_delta":
                break
    [span] = traced[1]
    assert (span.status, span.error) == (Status.ERROR, "stream not consumed")
    assert (span.prompt_tokens, span.comp_tokens, span.cache_write_tokens) == (2600, 1, 500)  # usage so far
    assert span.ttft_ms is not None


def test_a_dropped_stream_is_recorded_when_collected(client: anthropic.Anthropic, traced: Any) -> None:
    stream = ask(client, stream=True)
    next(iter(stream))
    del stream
    gc.collect()
    record_abandoned()
    [span] = traced[1]
    assert (span.status, span.error, span.prompt_tokens) == (Status.ERROR, "stream not consumed", 2600)


def test_a_dropped_stream_is_freed_at_once_without_the_collector(client: anthropic.Anthropic, traced: Any) -> None:
    gc.disable()  # the SDK's streams hold no cycle: watching one must not make one
    try:
        stream = ask(client, stream=True)
        next(iter(stream))
        del stream
        record_abandoned()
        [span] = traced[1]
    finally:
        gc.enable()
    assert (span.status, span.error, span.prompt_tokens) == (Status.ERROR, "stream not consumed", 2600)


def test_uninstrument_restores_the_sdk_methods(client: anthropic.Anthropic, traced: Any) -> None:
    uninstrument(client)
    for messages in (client.messages, client.beta.messages):
        assert not {"create", "parse", "stream"} & set(vars(messages))
    ask(client)
    client.beta.messages.parse(model="claude-sonnet-4-0", max_tokens=256, messages=MESSAGES)
    with stream_manager(client) as stream:
        stream.until_done()
    assert traced[1] == []


def test_usage_of_an_older_sdk_with_counts_in_the_extras_is_read_the_same() -> None:
    from tokentrace.integrations.anthropic import MESSAGES

    payload = {
        "input_tokens": 100,
        "output_tokens": 200,
        "cache_read_input_tokens": 2000,
        "cache_creation_input_tokens": 500,
        "cache_creation": {"ephemeral_1h_input_tokens": 200, "ephemeral_5m_input_tokens": 300},
        "output_tokens_details": {"thinking_tokens": 150},
    }

    class OldUsage(anthropic.BaseModel):  # the SDK's usage model before the cache fields existed
        input_tokens: int
        output_tokens: int

    old, current = OldUsage.construct(**payload), anthropic.types.Usage.construct(**payload)
    assert "cache_read_input_tokens" not in old.__dict__  # kept in the model's extras
    assert (
        MESSAGES.usage(old)
        == MESSAGES.usage(current)
        == Usage(
            prompt_tokens=2600,
            completion_tokens=200,
            cached_tokens=2000,
            cache_write_tokens=500,
            reasoning_tokens=150,
            cache_write_1h_tokens=200,
        )
    )
