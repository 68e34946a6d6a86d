"""The real ``openai`` SDK, instrumented, against the local fake provider: one exact span per call."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import msgspec
import openai
import pydantic
import pytest

from tests.fakes.providers import CANARY, REPLY, Fault, ProviderServer
from tokentrace import Span, Status
from tokentrace.integrations import instrument, uninstrument
from tokentrace.integrations._calls import record_abandoned
from tokentrace.testing import capture_spans

MESSAGES: list[Any] = [{"role": "user", "content": f"Say hello ({CANARY})"}]
# per Mtok: 100 uncached x $2.50 + 800 cached x $1.25 + 100 cache writes x $2.50 (the table has no
# write rate for gpt-4o: the input rate) + 100 out x $10
GPT4O_COST = Decimal("0.0025")
# per Mtok: 700 uncached x $1.10 + 200 cached x $0.275 + 300 cache writes x $1.10 + 300 out x $4.40
O4_MINI_COST = Decimal("0.002475")
EMBEDDING_COST = Decimal("0.00000016")  # 8 x $0.02 per Mtok


def chat(client: openai.OpenAI, **kwargs: Any) -> Any:
    return client.chat.completions.create(model="gpt-4o", messages=MESSAGES, **kwargs)


def assert_gpt4o(span: Span) -> None:
    assert (span.provider, span.model) == ("openai", "gpt-4o-2024-08-06")
    assert (span.prompt_tokens, span.comp_tokens, span.cached_tokens, span.cache_write_tokens) == (1000, 100, 800, 100)
    assert span.reasoning_tokens is None
    assert span.cost == GPT4O_COST
    assert span.status is Status.OK and span.error is None
    assert span.attributes == {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}


# --- chat completions ---------------------------------------------------------------------------


def test_chat_call_is_one_priced_span_in_its_own_trace(client: openai.OpenAI, traced: Any) -> None:
    reply = chat(client)
    assert reply.choices[0].message.content == REPLY
    [span] = traced[1]
    assert_gpt4o(span)
    assert span.name == "chat" and span.parent_span_id is None and span.ttft_ms is None
    assert span.latency_ms is not None and span.ended_at == span.started_at + span.latency_ms


def test_a_call_inside_a_trace_joins_it_under_the_enclosing_span(client: openai.OpenAI, traced: Any) -> None:
    tracer, spans = traced
    with tracer.trace("summarize") as trace, trace.span(model="planner", provider="local") as outer:
        chat(client)
    call = next(s for s in spans if s.provider == "openai")
    assert call.trace_id == trace.trace_id and call.name == "summarize"
    assert call.parent_span_id == outer.span.span_id
    assert_gpt4o(call)


def test_streamed_chat_asks_for_usage_and_hides_the_usage_chunk(
    client: openai.OpenAI, server: ProviderServer, traced: Any
) -> None:
    chunks = list(chat(client, stream=True))
    assert server.requests[-1].body["stream_options"] == {"include_usage": True}
    assert all(chunk.choices and chunk.usage is None for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == REPLY
    [span] = traced[1]
    assert_gpt4o(span)
    assert span.ttft_ms is not None and 0 <= span.ttft_ms <= span.latency_ms


def test_streamed_chat_with_the_callers_stream_options_is_left_alone(
    client: openai.OpenAI, server: ProviderServer, traced: Any
) -> None:
    chunks = list(chat(client, stream=True, stream_options={"include_usage": True}))
    assert server.requests[-1].body["stream_options"] == {"include_usage": True}
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 1000
    assert_gpt4o(traced[1][0])


def test_a_stream_the_caller_asked_without_usage_is_marked_as_reporting_none(
    client: openai.OpenAI, server: ProviderServer, traced: Any
) -> None:
    chunks = list(chat(client, stream=True, stream_options={"include_usage": False}))
    assert server.requests[-1].body["stream_options"] == {"include_usage": False}
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == REPLY
    [span] = traced[1]
    assert (span.model, span.prompt_tokens, span.comp_tokens, span.cost) == ("gpt-4o-2024-08-06", 0, 0, Decimal(0))
    assert span.status is Status.OK and span.ttft_ms is not None
    assert span.attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "tokentrace.usage.reported": False,  # zero tokens, but not because the provider counted none
    }


def test_other_stream_options_of_the_caller_get_usage_merged_in(
    client: openai.OpenAI, server: ProviderServer, traced: Any
) -> None:
    chunks = list(chat(client, stream=True, stream_options={"include_obfuscation": False}))
    assert server.requests[-1].body["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert all(chunk.choices for chunk in chunks)
    assert_gpt4o(traced[1][0])


def test_stream_options_the_caller_sends_through_extra_body_count_as_theirs(
    client: openai.OpenAI, server: ProviderServer, traced: Any
) -> None:
    asked = list(chat(client, stream=True, extra_body={"stream_options": {"include_usage": True}}))
    assert server.requests[-1].body["stream_options"] == {"include_usage": True}
    assert asked[-1].choices == [] and asked[-1].usage.prompt_tokens == 1000  # the chunk they asked for
    extra = {"stream_options": {"include_obfuscation": False}}
    merged = list(chat(client, stream=True, extra_body=extra))
    assert server.requests[-1].body["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert all(chunk.choices for chunk in merged)
    assert extra == {"stream_options": {"include_obfuscation": False}}  # the caller's dict is untouched
    assert len(traced[1]) == 2
    for span in traced[1]:
        assert_gpt4o(span)


def test_the_sdk_stream_helper_is_traced_through_create(client: openai.OpenAI, traced: Any) -> None:
    with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES) as stream:
        completion = stream.get_final_completion()
    assert completion.choices[0].message.content == REPLY
    [span] = traced[1]
    assert_gpt4o(span)


def test_an_azure_client_is_traced_with_azure_as_its_provider(server: ProviderServer, traced: Any) -> None:
    async def main() -> None:
        async with openai.AsyncAzureOpenAI(
            azure_endpoint=server.url, api_version="2024-10-21", api_key="k", max_retries=0
        ) as raw:
            await traced[0].instrument(raw).embeddings.create(model="text-embedding-3-small", input="hi")

    with openai.AzureOpenAI(azure_endpoint=server.url, api_version="2024-10-21", api_key="k", max_retries=0) as raw:
        client = traced[0].instrument(raw)
        list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
        client.responses.create(model="o4-mini", input="hi")
    asyncio.run(main())
    assert server.requests[0].path.startswith("/openai/deployments/gpt-4o/chat/completions")
    chat, responses, embeddings = traced[1]
    assert chat.provider == "azure.ai.openai"  # OpenTelemetry's name, priced from genai-prices' Azure table
    assert_gpt4o(msgspec.structs.replace(chat, provider="openai"))  # the same counts and cost
    assert (responses.provider, responses.name, responses.cost) == ("azure.ai.openai", "responses", O4_MINI_COST)
    assert (embeddings.provider, embeddings.name, embeddings.cost) == ("azure.ai.openai", "embeddings", EMBEDDING_COST)


def test_the_service_tier_a_response_reports_prices_it(client: openai.OpenAI, traced: Any) -> None:
    chat(client, service_tier="priority")
    list(chat(client, service_tier="priority", stream=True))
    client.responses.create(model="o4-mini", input="hi", service_tier="flex")
    list(client.responses.create(model="o4-mini", input="hi", service_tier="flex", stream=True))
    chat(client, service_tier="auto")  # served at the default tier, and reported so
    tiers = [(s.attributes or {}).get("openai.response.service_tier") for s in traced[1]]
    assert tiers == ["priority", "priority", "flex", "flex", "default"]
    # gpt-4o at priority: $4.25 / $2.125 cached / $17 per Mtok; o4-mini at flex: $0.55 / $0.138 / $2.20
    costs = [Decimal("0.00425")] * 2 + [Decimal("0.0012376")] * 2 + [GPT4O_COST]
    assert [s.cost for s in traced[1]] == costs


def test_spoken_output_is_priced_at_the_audio_rates(client: openai.OpenAI, traced: Any) -> None:
    audio = {"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}}
    client.chat.completions.create(model="gpt-audio", messages=MESSAGES, **audio)
    list(client.chat.completions.create(model="gpt-audio", messages=MESSAGES, stream=True, **audio))
    for span in traced[1]:
        assert (span.prompt_tokens, span.comp_tokens) == (1000, 500)
        # per Mtok: 400 text in x $2.50 + 600 audio in x $32 + 100 text out x $10 + 400 audio out x $64
        # (as text alone: $0.0075)
        assert span.cost == Decimal("0.0468")
        assert span.attributes == {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-audio",
            "tokentrace.usage.audio_prompt_tokens": 600,
            "tokentrace.usage.audio_completion_tokens": 400,
        }
    assert len(traced[1]) == 2


# --- legacy text completions ---------------------------------------------------------------------

INSTRUCT_COST = Decimal("0.000115")  # gpt-3.5-turbo-instruct per Mtok: 50 in x $1.50 + 20 out x $2


def assert_instruct(span: Span) -> None:
    assert (span.name, span.provider, span.model) == ("text_completion", "openai", "gpt-3.5-turbo-instruct")
    assert (span.prompt_tokens, span.comp_tokens, span.cached_tokens, span.reasoning_tokens) == (50, 20, None, None)
    assert span.cost == INSTRUCT_COST
    assert span.status is Status.OK and span.error is None
    assert span.attributes == {
        "gen_ai.operation.name": "text_completion",
        "gen_ai.request.model": "gpt-3.5-turbo-instruct",
    }


def test_text_completions_plain_and_streamed(client: openai.OpenAI, server: ProviderServer, traced: Any) -> None:
    completion = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hello")
    assert completion.choices[0].text == REPLY
    chunks = list(client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hello", stream=True))
    assert server.requests[-1].body["stream_options"] == {"include_usage": True}
    assert all(chunk.choices and chunk.usage is None for chunk in chunks)  # the usage chunk is hidden
    assert "".join(chunk.choices[0].text for chunk in chunks) == REPLY
    plain, streamed = traced[1]
    assert_instruct(plain)
    assert_instruct(streamed)
    assert plain.ttft_ms is None and streamed.ttft_ms is not None


def test_text_completion_content_is_captured_when_asked(server: ProviderServer) -> None:
    with capture_spans() as (tracer, spans), openai.OpenAI(base_url=server.openai_url, api_key="k") as raw:
        client = tracer.instrument(raw, capture_content=True)
        client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hello")
        list(client.completions.create(model="gpt-3.5-turbo-instruct", prompt=["Say", "hello"], stream=True))
    assert [(s.attributes["gen_ai.prompt"], s.attributes["gen_ai.completion"]) for s in spans] == [
        ("Say hello", REPLY),
        ('["Say", "hello"]', REPLY),
    ]


# --- responses and embeddings -------------------------------------------------------------------


def assert_o4_mini(span: Span) -> None:
    assert (span.name, span.model) == ("responses", "o4-mini-2025-04-16")
    assert (span.prompt_tokens, span.comp_tokens) == (1200, 300)
    assert (span.cached_tokens, span.cache_write_tokens, span.reasoning_tokens) == (200, 300, 120)
    assert span.cost == O4_MINI_COST and span.status is Status.OK


def test_responses_api_plain_and_streamed(client: openai.OpenAI, traced: Any) -> None:
    assert client.responses.create(model="o4-mini", input="hi").output_text == REPLY
    events = list(client.responses.create(model="o4-mini", input="hi", stream=True))
    assert events[-1].type == "response.completed"
    plain, streamed = traced[1]
    assert_o4_mini(plain)
    assert_o4_mini(streamed)
    assert plain.ttft_ms is None and streamed.ttft_ms is not None


def test_searches_of_the_responses_tools_are_priced_per_thousand(client: openai.OpenAI, traced: Any) -> None:
    tools: Any = [{"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["vs_fake"]}]
    response = client.responses.create(model="o4-mini", input="hi", tools=tools)
    assert [item.type for item in response.output].count("web_search_call") == 3  # 2 searches, a page opened
    list(client.responses.create(model="o4-mini", input="hi", tools=tools, stream=True))
    assert len(traced[1]) == 2
    for span in traced[1]:
        # 2 web searches at $10 per thousand, 1 file search at $2.50
        assert span.cost == O4_MINI_COST + Decimal("0.0225")
        assert span.attributes == {
            "gen_ai.operation.name": "responses",
            "gen_ai.request.model": "o4-mini",
            "tokentrace.usage.web_searches": 2,
            "tokentrace.usage.file_searches": 1,
        }


def test_failed_responses_plain_and_streamed_are_errors_with_the_usage_they_had(
    client: openai.OpenAI, server: ProviderServer, traced: Any
) -> None:
    server.script(Fault(break_stream=True), Fault(break_stream=True))
    assert client.responses.create(model="o4-mini", input="hi").status == "failed"
    events = list(client.responses.create(model="o4-mini", input="hi", stream=True))
    assert [e.type for e in events][-2:] == ["response.failed", "error"]
    plain, streamed = traced[1]
    for span in (plain, streamed):
        assert span.status is Status.ERROR and span.model == "o4-mini-2025-04-16"
        assert (span.prompt_tokens, span.comp_tokens, span.cached_tokens) == (1200, 10, 200)
        assert span.cost == Decimal("0.001199")  # per Mtok: 1000 x $1.10 + 200 cached x $0.275 + 10 out x $4.40
    assert plain.error == "server_error: fake overload mid-response"
    assert streamed.error == "server_error: fake stream cut"  # the last one it reported
    assert plain.ttft_ms is None and streamed.ttft_ms is not None


def test_a_background_response_is_priced_when_it_is_first_retrieved_finished(
    client: openai.OpenAI, server: ProviderServer, traced: Any
) -> None:
    queued = client.responses.create(model="o4-mini", input="hi", background=True)
    assert queued.status == "queued"
    finished = client.responses.retrieve(queued.id)
    assert finished.status == "completed" and finished.output_text == REPLY
    client.responses.retrieve(queued.id)  # read again: already counted
    asked, done = traced[1]
    assert (asked.prompt_tokens, asked.cost, asked.attributes) == (
        0,
        Decimal(0),
        {
            "gen_ai.operation.name": "responses",
            "gen_ai.request.model": "o4-mini",
            "tokentrace.usage.reported": False,
            "tokentrace.background": "queued",
        },
    )
    assert_o4_mini(done)
    assert done.attributes["tokentrace.background"] == "completed"
    assert done.latency_ms == 42_000 and done.ended_at == done.started_at + 42_000  # type: ignore[operator]
    assert abs(done.started_at - 1_700_000_000_000) <= 1  # type: ignore[operator]  # created_at, to the wall clock's ms
    assert done.trace_id != asked.trace_id and done.ttft_ms is None
    # the same id in any process that retrieves it, so that a collector stores it once
    assert done.span_id == str(uuid.uuid5(uuid.NAMESPACE_URL, "tokentrace:openai:resp_fake"))
    assert [r.path for r in server.requests][-2:] == ["/v1/responses/resp_fake"] * 2


def test_a_background_response_streamed_is_priced_when_a_resumed_stream_of_it_finishes(
    client: openai.OpenAI, server: ProviderServer, traced: Any
) -> None:
    async def resume() -> list[Any]:  # from another client, async: already counted
        async with openai.AsyncOpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw:
            resumed = await traced[0].instrument(raw).responses.retrieve("resp_fake", stream=True, starting_after=2)
            return [event async for event in resumed]

    with client.responses.create(model="o4-mini", input="hi", background=True, stream=True) as stream:
        assert next(stream).response.status == "queued"  # then the caller leaves, and the response runs on
    events = list(client.responses.retrieve("resp_fake", stream=True, starting_after=2))
    assert [event.sequence_number for event in events] == [3, 4, 5, 6]
    assert events[-1].type == "response.completed" and events[-1].response.output_text == REPLY
    assert [event.sequence_number for event in asyncio.run(resume())] == [3, 4, 5, 6]
    left, done = traced[1]
    assert (left.error, left.prompt_tokens, left.attributes["tokentrace.background"]) == (
        "stream not consumed",
        0,
        "queued",
    )
    assert_o4_mini(done)
    assert done.attributes["tokentrace.background"] == "completed"
    assert done.latency_ms == 42_000 and done.ttft_ms is None
    assert done.span_id == str(uuid.uuid5(uuid.NAMESPACE_URL, "tokentrace:openai:resp_fake"))
    assert server.requests[-1].path == "/v1/responses/resp_fake?starting_after=2&stream=true"


def test_a_background_response_that_failed_and_one_retrieved_by_an_async_client(server: ProviderServer) -> None:
    async def main(tracer: Any) -> None:
        async with openai.AsyncOpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw:
            client = tracer.instrument(raw)
            server.script(Fault(break_stream=True))
            assert (await client.responses.retrieve("resp_fake")).status == "failed"

    with capture_spans() as (tracer, spans):
        asyncio.run(main(tracer))
    [failed] = spans
    assert failed.status is Status.ERROR and failed.error == "server_error: fake overload mid-response"
    assert (failed.prompt_tokens, failed.comp_tokens, failed.cost) == (1200, 10, Decimal("0.001199"))
    assert failed.attributes["tokentrace.background"] == "failed"


def test_beta_responses_are_traced(client: openai.OpenAI, server: ProviderServer, traced: Any) -> None:
    assert client.beta.responses.create(model="o4-mini", input="hi").output[0].content[0].text == REPLY
    events = list(client.beta.responses.create(model="o4-mini", input="hi", stream=True))
    assert events[-1].type == "response.completed"
    assert [request.path for request in server.requests] == ["/v1/responses?beta=true"] * 2
    plain, streamed = traced[1]
    assert_o4_mini(plain)
    assert_o4_mini(streamed)
    assert plain.ttft_ms is None and streamed.ttft_ms is not None


def test_the_responses_stream_helper_is_traced_through_create(client: openai.OpenAI, traced: Any) -> None:
    with client.responses.stream(model="o4-mini", input="hi") as stream:
        assert stream.get_final_response().output_text == REPLY
    assert_o4_mini(traced[1][0])


class Answer(pydantic.BaseModel):
    reply: str


def test_structured_output_parse_calls_are_traced(client: openai.OpenAI, traced: Any) -> None:
    parsed = client.chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=Answer)
    assert parsed.choices[0].message.parsed == Answer(reply=REPLY)
    assert client.responses.parse(model="o4-mini", input="hi").output_text == REPLY
    chat_span, responses_span = traced[1]
    assert_gpt4o(chat_span)
    assert chat_span.name == "chat"
    assert_o4_mini(responses_span)


@pytest.mark.parametrize(
    ("finish", "error_type"),
    [("length", openai.LengthFinishReasonError), ("content_filter", openai.ContentFilterFinishReasonError)],
)
def test_a_completion_parse_refuses_for_how_it_finished_keeps_its_usage_and_cost(
    server: ProviderServer, traced: Any, finish: str, error_type: type[Exception]
) -> None:
    async def main() -> None:
        async with openai.AsyncOpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw:
            with pytest.raises(error_type):
                await (
                    traced[0]
                    .instrument(raw)
                    .chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=Answer)
                )

    server.script(Fault(finish=finish), Fault(finish=finish))
    with openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw:
        with pytest.raises(error_type):
            traced[0].instrument(raw).chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=Answer)
    asyncio.run(main())
    for span in traced[1]:  # billed, so counted and priced, yet failed
        assert (span.name, span.model) == ("chat", "gpt-4o-2024-08-06")
        assert (span.prompt_tokens, span.comp_tokens, span.cached_tokens, span.cache_write_tokens) == (
            1000,
            100,
            800,
            100,
        )
        assert span.cost == GPT4O_COST
        assert span.status is Status.ERROR
        assert span.error == f"{error_type.__name__} (message not recorded without capture_content)"
        assert span.attributes == {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}
    assert len(traced[1]) == 2


def test_images_made_and_edited_are_priced_from_their_text_and_image_tokens(
    client: openai.OpenAI, server: ProviderServer, traced: Any
) -> None:
    prompt = f"A lighthouse ({CANARY})"
    made = client.images.generate(model="gpt-image-1", prompt=prompt)
    assert made.data is not None and made.usage is not None and made.usage.output_tokens == 4160
    events = list(client.images.generate(model="gpt-image-1", prompt=prompt, stream=True, partial_images=2))
    assert [event.type for event in events] == ["image_generation.partial_image"] * 2 + ["image_generation.completed"]
    client.images.edit(model="gpt-image-1", image=("in.png", b"a picture", "image/png"), prompt=prompt)
    assert server.requests[-1].body == {"model": "gpt-image-1", "prompt": prompt}  # a form, the image left out
    assert len(traced[1]) == 3
    for span in traced[1]:
        assert (span.name, span.provider, span.model) == ("images", "openai", "gpt-image-1")
        assert (span.prompt_tokens, span.comp_tokens, span.cached_tokens) == (50, 4160, None)
        # per Mtok: 40 text in x $5 + 10 image in x $10 + 4160 out x $40 (gpt-image-1's output rate is for images)
        assert span.cost == Decimal("0.1667")
        assert span.attributes == {
            "gen_ai.operation.name": "images",
            "gen_ai.request.model": "gpt-image-1",
            "tokentrace.usage.image_prompt_tokens": 10,
        }
        assert span.status is Status.OK
    assert [span.ttft_ms is not None for span in traced[1]] == [False, True, False]
    client.images.generate(model="dall-e-3", prompt=prompt)  # billed per image, which the table does not price
    older = traced[1][-1]
    assert (older.model, older.prompt_tokens, older.cost) == ("dall-e-3", 0, None)
    assert older.attributes == {
        "gen_ai.operation.name": "images",
        "gen_ai.request.model": "dall-e-3",
        "tokentrace.usage.reported": False,
    }


def test_transcriptions_are_priced_by_their_tokens_or_by_the_length_of_the_audio(
    client: openai.OpenAI, server: ProviderServer, traced: Any
) -> None:
    audio = ("speech.wav", b"RIFF fake audio", "audio/wav")
    assert client.audio.transcriptions.create(model="gpt-4o-transcribe", file=audio).text == REPLY
    events = list(client.audio.transcriptions.create(model="gpt-4o-transcribe", file=audio, stream=True))
    assert [event.type for event in events] == ["transcript.text.delta"] * 3 + ["transcript.text.done"]
    assert client.audio.transcriptions.create(model="whisper-1", file=audio).text == REPLY
    said = client.audio.transcriptions.create(model="whisper-1", file=audio, response_format="text")
    assert said == REPLY  # text alone: no usage
    assert server.requests[-1].body == {"model": "whisper-1", "response_format": "text"}
    plain, streamed, whisper, text_only = traced[1]
    for span in (plain, streamed):
        assert (span.name, span.model, span.prompt_tokens, span.comp_tokens) == (
            "transcriptions",
            "gpt-4o-transcribe",
            1200,
            300,
        )
        # per Mtok: 200 text in x $2.50 + 1000 audio in x $6 + 300 out x $10
        assert span.cost == Decimal("0.0095")
        assert span.attributes == {
            "gen_ai.operation.name": "transcriptions",
            "gen_ai.request.model": "gpt-4o-transcribe",
            "tokentrace.usage.audio_prompt_tokens": 1000,
        }
    assert streamed.ttft_ms is not None and plain.ttft_ms is None
    assert (whisper.prompt_tokens, whisper.comp_tokens, whisper.cost) == (0, 0, Decimal("0.00125"))  # 12.5 s at $0.36/h
    assert whisper.attributes == {
        "gen_ai.operation.name": "transcriptions",
        "gen_ai.request.model": "whisper-1",
        "tokentrace.usage.audio_ms": 12_500,
    }
    assert text_only.cost == 0 and (text_only.attributes or {})["tokentrace.usage.reported"] is False


def test_speech_is_priced_by_the_characters_read_out_or_the_tokens_an_sse_body_reports(
    client: openai.OpenAI, traced: Any
) -> None:
    text = "Hello from the fake model, read out."  # 36 characters
    for model in ("tts-1", "tts-1-hd", "gpt-4o-mini-tts"):
        assert client.audio.speech.create(model=model, voice="alloy", input=text).content == b"ID3 fake audio"
    body = client.audio.speech.create(model="gpt-4o-mini-tts", voice="alloy", input=text, stream_format="sse")
    assert body.content.count(b"speech.audio.delta") == 2
    tts, hd, unreported, sse = traced[1]
    assert [span.name for span in traced[1]] == ["speech"] * 4
    # $15 and $30 per million characters
    assert (tts.cost, hd.cost) == (Decimal("0.00054"), Decimal("0.00108"))
    assert tts.attributes == {
        "gen_ai.operation.name": "speech",
        "gen_ai.request.model": "tts-1",
        "tokentrace.usage.input_characters": 36,
    }
    # billed by tokens, which only an SSE body reports
    assert (unreported.cost, (unreported.attributes or {}).get("tokentrace.usage.reported")) == (0, False)
    assert (sse.prompt_tokens, sse.comp_tokens) == (14, 800)
    assert sse.cost == Decimal("0.0096084")  # 14 in x $0.60 + 800 out x $12 per Mtok
    assert "tokentrace.usage.reported" not in (sse.attributes or {})


def test_embeddings(client: openai.OpenAI, traced: Any) -> None:
    result = client.embeddings.create(model="text-embedding-3-small", input=f"embed {CANARY}")
    assert result.data[0].embedding == [0.25, -0.5, 0.125]
    [span] = traced[1]
    assert (span.name, span.model, span.prompt_tokens, span.comp_tokens) == (
        "embeddings",
        "text-embedding-3-small",
        8,
        0,
    )
    assert span.cost == EMBEDDING_COST


def test_async_client_chat_stream_responses_and_embeddings(server: ProviderServer, traced: Any) -> None:
    tracer, spans = traced

    async def main() -> list[Any]:
        async with openai.AsyncOpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw:
            client = tracer.instrument(raw)
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
            chunks = [chunk async for chunk in stream]
            await client.responses.create(model="o4-mini", input="hi")
            await client.embeddings.create(model="text-embedding-3-small", input="hi")
            async for _ in await client.images.generate(model="gpt-image-1", prompt="hi", stream=True):
                pass
            return chunks

    chunks = asyncio.run(main())
    assert all(chunk.choices for chunk in chunks)
    chat_plain, chat_streamed, responses, embeddings, image = spans
    assert_gpt4o(chat_plain)
    assert_gpt4o(chat_streamed)
    assert chat_streamed.ttft_ms is not None
    assert_o4_mini(responses)
    assert embeddings.cost == EMBEDDING_COST
    assert (image.name, image.cost, image.ttft_ms is not None) == ("images", Decimal("0.1667"), True)


# --- failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "error_type"), [(500, openai.InternalServerError), (429, openai.RateLimitError)])
def test_api_errors_reach_the_caller_and_mark_the_span(
    client: openai.OpenAI, server: ProviderServer, traced: Any, status: int, error_type: type[Exception]
) -> None:
    server.script(Fault(status=status))
    with pytest.raises(error_type) as raised:
        chat(client)
    assert raised.value.status_code == status  # type: ignore[attr-defined]
    assert len(server.requests) == 1  # retries off: the SDK's own error, not ours
    [span] = traced[1]
    assert span.status is Status.ERROR
    assert span.error == f"{error_type.__name__}: Error code: {status} - fake {status}"
    assert (span.model, span.prompt_tokens, span.comp_tokens, span.cost) == ("gpt-4o", 0, 0, Decimal(0))


def test_the_sdks_own_retries_make_one_span_per_call(server: ProviderServer, traced: Any) -> None:
    with openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=1) as raw:
        client = traced[0].instrument(raw)
        server.script(Fault(status=429))
        chat(client)  # retried once by the SDK, then answered
        server.script(Fault(status=500), Fault(status=500))
        with pytest.raises(openai.InternalServerError):
            chat(client)
    assert len(server.requests) == 4
    recovered, failed = traced[1]
    assert_gpt4o(recovered)
    assert failed.status is Status.ERROR and failed.error.startswith("InternalServerError: ")
    assert (failed.prompt_tokens, failed.cost) == (0, Decimal(0))


def test_a_timeout_is_recorded_on_a_client_copy_made_with_options(
    client: openai.OpenAI, server: ProviderServer, traced: Any
) -> None:
    server.script(Fault(delay=10))
    with pytest.raises(openai.APITimeoutError):
        chat(client.with_options(timeout=0.3))
    [span] = traced[1]
    assert span.status is Status.ERROR and span.error == "APITimeoutError: Request timed out."
    assert span.latency_ms is not None and span.latency_ms >= 250


def test_a_stream_broken_by_the_provider_reports_its_exception(
    client: openai.OpenAI, server: ProviderServer, traced: Any
) -> None:
    server.script(Fault(break_stream=True))
    stream = chat(client, stream=True)
    with pytest.raises(openai.APIError) as raised:
        list(stream)
    [span] = traced[1]
    assert span.status is Status.ERROR
    assert span.error == f"{type(raised.value).__name__}: fake overload mid-stream"


def test_an_async_stream_broken_by_the_provider_reports_its_exception(server: ProviderServer, traced: Any) -> None:
    async def main() -> BaseException:
        async with openai.AsyncOpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw:
            server.script(Fault(break_stream=True))
            stream = await chat(traced[0].instrument(raw), stream=True)
            with pytest.raises(openai.APIError) as raised:
                async for _ in stream:
                    pass
            return raised.value

    error = asyncio.run(main())
    [span] = traced[1]
    assert span.status is Status.ERROR
    assert span.error == f"{type(error).__name__}: fake overload mid-stream"
    assert span.model == "gpt-4o-2024-08-06" and span.ttft_ms is not None


def test_a_stream_closed_half_way_is_recorded_as_not_consumed(client: openai.OpenAI, traced: Any) -> None:
    with chat(client, stream=True) as stream:
        first = next(stream)
    assert first.choices[0].delta.role == "assistant"
    [span] = traced[1]
    assert span.status is Status.ERROR and span.error == "stream not consumed"
    assert span.model == "gpt-4o-2024-08-06" and span.ttft_ms is not None
    assert (span.prompt_tokens, span.comp_tokens) == (0, 0)  # chat usage comes last


def test_a_watched_stream_is_the_sdks_stream_with_nothing_set_on_it(
    server: ProviderServer, client: openai.OpenAI
) -> None:
    with openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw:
        plain = raw.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        watched = chat(client, stream=True)
        assert isinstance(watched, openai.Stream) and type(watched).__name__ == "Stream"
        assert set(vars(watched)) == set(vars(plain))  # its close is its class's
        plain.close()
        watched.close()


def test_reading_on_after_close_is_left_to_the_sdk_and_records_nothing_more(client: openai.OpenAI, traced: Any) -> None:
    tracer, spans = traced
    stream = chat(client, stream=True)
    next(stream)
    stream.close()
    with contextlib.suppress(openai.APIConnectionError):  # the SDK's own answer, once its response is closed
        list(stream)
    [span] = spans
    assert (span.error, span.comp_tokens) == ("stream not consumed", 0)
    assert dict(tracer.stats()["dropped"]) == {}


def test_reading_on_after_close_never_yields_the_usage_chunk_asked_for(server: ProviderServer, traced: Any) -> None:
    # a short reply's body is often all read by the time the caller closes the stream: reading on
    # after close() then yields the chunks left in it, as the SDK does, but for the one we added
    async def main() -> list[Any]:
        async with openai.AsyncOpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw:
            stream = await chat(traced[0].instrument(raw), stream=True)
            await stream.response.aread()
            await stream.__anext__()
            await stream.close()
            return [chunk async for chunk in stream]

    with openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw:
        stream = chat(traced[0].instrument(raw), stream=True)
        stream.response.read()
        next(stream)
        stream.close()
        rests = [list(stream), asyncio.run(main())]
    for rest in rests:
        assert [len(chunk.choices) for chunk in rest] == [1, 1, 1, 1]  # no usage-only chunk among them
        assert [chunk.choices[0].finish_reason for chunk in rest] == [None, None, None, "stop"]
    assert [(span.error, span.comp_tokens) for span in traced[1]] == [("stream not consumed", 0)] * 2


@pytest.mark.parametrize("helper", ["chat", "responses"])
def test_a_helper_stream_left_half_way_is_recorded_when_its_block_ends(
    client: openai.OpenAI, traced: Any, helper: str
) -> None:
    gc.disable()  # recorded by the block's exit, not by the collector
    try:
        if helper == "chat":
            manager = client.chat.completions.stream(model="gpt-4o", messages=MESSAGES)
        else:
            manager = client.responses.stream(model="o4-mini", input="hi")
        with manager as stream:
            next(iter(stream))
        [span] = traced[1]
    finally:
        gc.enable()
    assert (span.name, span.status, span.error) == (helper, Status.ERROR, "stream not consumed")
    assert (span.ttft_ms is not None) == (helper == "chat")  # a chunk with output came first


def test_an_async_helper_stream_closed_half_way_is_recorded_at_once(server: ProviderServer, traced: Any) -> None:
    async def main() -> None:
        async with openai.AsyncOpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw:
            client = traced[0].instrument(raw)
            async with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES) as stream:
                await stream.__anext__()
                await stream.close()
                assert [span.error for span in traced[1]] == ["stream not consumed"]

    gc.disable()
    try:
        asyncio.run(main())
    finally:
        gc.enable()
    [span] = traced[1]
    assert (span.name, span.status) == ("chat", Status.ERROR)


def test_a_stream_dropped_half_way_is_recorded_when_collected(client: openai.OpenAI, traced: Any) -> None:
    stream = chat(client, stream=True)
    next(stream)
    del stream
    gc.collect()
    record_abandoned()
    [span] = traced[1]
    assert (span.status, span.error) == (Status.ERROR, "stream not consumed")


def test_a_stream_dropped_unread_is_recorded_when_collected(client: openai.OpenAI, traced: Any) -> None:
    chat(client, stream=True)
    gc.collect()
    record_abandoned()
    [span] = traced[1]
    assert (span.status, span.error, span.ttft_ms) == (Status.ERROR, "stream not consumed", None)


def test_a_stream_dropped_unread_is_recorded_before_the_next_call(client: openai.OpenAI, traced: Any) -> None:
    chat(client, stream=True)
    gc.collect()  # queued by the collector, whose context is no place to record from
    chat(client)
    dropped, made = traced[1]
    assert (dropped.status, dropped.error) == (Status.ERROR, "stream not consumed")
    assert_gpt4o(made)


def test_an_async_stream_closed_half_way_is_recorded_as_not_consumed(server: ProviderServer, traced: Any) -> None:
    async def main() -> None:
        async with openai.AsyncOpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw:
            stream = (
                await traced[0].instrument(raw).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
            )
            async with stream:
                await stream.__anext__()

    asyncio.run(main())
    [span] = traced[1]
    assert (span.status, span.error) == (Status.ERROR, "stream not consumed")


def test_an_async_stream_dropped_unread_is_recorded_when_collected(server: ProviderServer, traced: Any) -> None:
    async def main() -> None:
        async with openai.AsyncOpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw:
            client = traced[0].instrument(raw)
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
            gc.collect()
            await asyncio.sleep(0)  # the event loop closes the dropped stream's generator

    asyncio.run(main())
    record_abandoned()
    [span] = traced[1]
    assert (span.status, span.error, span.ttft_ms) == (Status.ERROR, "stream not consumed", None)
    assert (span.model, span.prompt_tokens, span.comp_tokens) == ("gpt-4o", 0, 0)


def test_a_cancelled_call_is_recorded_and_the_cancellation_reaches_the_caller(
    server: ProviderServer, traced: Any
) -> None:
    async def main() -> None:
        async with openai.AsyncOpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw:
            server.script(Fault(delay=10))
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(chat(traced[0].instrument(raw)), 0.2)

    asyncio.run(main())
    [span] = traced[1]
    assert (span.status, span.error, span.model, span.prompt_tokens) == (Status.ERROR, "CancelledError", "gpt-4o", 0)


def test_a_stream_left_by_a_cancelled_task_is_recorded_by_the_next_flush(server: ProviderServer, traced: Any) -> None:
    tracer, spans = traced

    async def main() -> None:
        async with openai.AsyncOpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw:
            client, first = tracer.instrument(raw), asyncio.Event()

            async def consume() -> None:
                async for _ in await chat(client, stream=True):
                    first.set()
                    await asyncio.Event().wait()  # cancelled here, the stream half-read

            task = asyncio.create_task(consume())
            await first.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            for _ in range(3):
                await asyncio.sleep(0)  # the event loop closes the dropped stream's generator

    asyncio.run(main())
    tracer.flush()
    [span] = spans
    assert (span.status, span.error, span.model) == (Status.ERROR, "stream not consumed", "gpt-4o-2024-08-06")
    assert span.ttft_ms is not None and span.prompt_tokens == 0


def test_a_failing_tokentrace_never_breaks_the_call(
    client: openai.OpenAI, traced: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokentrace.integrations import _calls

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("bookkeeping bug")

    monkeypatch.setattr(_calls, "blank_span", broken)
    assert chat(client).choices[0].message.content == REPLY
    assert [c.choices for c in chat(client, stream=True)]
    monkeypatch.setattr(_calls, "_current", broken)  # read when a call begins
    assert chat(client).choices[0].message.content == REPLY
    tracer, spans = traced
    assert spans == [] and tracer.stats()["dropped"]["instrumentation_error"] == 3


# --- instrument / uninstrument ------------------------------------------------------------------


def test_instrumenting_twice_is_a_no_op_and_uninstrument_undoes_it(client: openai.OpenAI, traced: Any) -> None:
    tracer, spans = traced
    wrapper = client.chat.completions.create
    assert tracer.instrument(client) is client and client.chat.completions.create is wrapper
    chat(client)
    assert len(spans) == 1
    assert uninstrument(client) is client
    assert "create" not in vars(client.chat.completions) and "with_options" not in vars(client)
    assert "parse" not in vars(client.chat.completions) and "parse" not in vars(client.responses)
    assert "create" not in vars(client.beta.responses) and "create" not in vars(client.completions)
    assert "content" not in vars(client.files) and "retrieve" not in vars(client.responses)
    assert not {"generate", "edit"} & set(vars(client.images)) and "create" not in vars(client.audio.transcriptions)
    assert "create" not in vars(client.audio.speech)
    chat(client)
    client.responses.create(model="o4-mini", input="hi")
    client.beta.responses.create(model="o4-mini", input="hi")
    client.completions.create(model="gpt-3.5-turbo-instruct", prompt="hi")
    client.files.content("batch-output")
    assert tracer.flush(10)
    assert len(spans) == 1


@pytest.fixture
def module_client(server: ProviderServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The ``openai`` module, its own client (made on first use) pointed at the fake provider."""
    monkeypatch.setattr(openai, "api_key", "k")
    monkeypatch.setattr(openai, "base_url", server.openai_url + "/")
    monkeypatch.setattr(openai, "max_retries", 0)
    openai._reset_client()
    yield openai
    openai._reset_client()


def test_the_openai_module_is_traced_through_its_client(module_client: Any, traced: Any) -> None:
    tracer, spans = traced
    assert tracer.instrument(module_client) is openai and tracer.instrument(openai) is openai  # twice: no-op
    reply = openai.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert reply.choices[0].message.content == REPLY
    [span] = spans
    assert_gpt4o(span)
    assert uninstrument(openai) is openai
    openai.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert len(spans) == 1


def test_raw_response_views_follow_instrument_and_uninstrument(server: ProviderServer, traced: Any) -> None:
    def ask(client: openai.OpenAI) -> None:  # through views cached by the SDK at three levels
        client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES).parse()
        client.chat.with_raw_response.completions.create(model="gpt-4o", messages=MESSAGES).parse()
        client.with_raw_response.chat.completions.create(model="gpt-4o", messages=MESSAGES).parse()

    with openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as client:
        ask(client)  # the views of the untraced method are made here
        instrument(traced[0], client)
        ask(client)
        uninstrument(client)
        ask(client)
    assert len(traced[1]) == 3


def test_two_clients_report_to_two_tracers(server: ProviderServer) -> None:
    with (
        capture_spans() as (first, first_spans),
        capture_spans() as (second, second_spans),
        openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as a,
        openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as b,
    ):
        chat(instrument(first, a))
        chat(instrument(second, b))
        chat(b)
    assert (len(first_spans), len(second_spans)) == (1, 2)


def test_a_call_inside_another_tracers_trace_joins_it_from_its_own_tracer(server: ProviderServer) -> None:
    with (
        capture_spans() as (app, app_spans),
        capture_spans() as (calls, call_spans),
        openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw,
    ):
        client = calls.instrument(raw)
        with app.trace("summarize") as trace, trace.span(model="planner", provider="local") as outer:
            chat(client)
    assert [s.model for s in app_spans] == ["planner"]
    [span] = call_spans
    assert_gpt4o(span)
    assert (span.name, span.trace_id, span.parent_span_id) == ("chat", trace.trace_id, outer.span.span_id)


def test_raw_response_calls_are_traced_through_the_response_they_return(client: openai.OpenAI, traced: Any) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
    assert raw.headers["content-type"] == "application/json"
    assert raw.parse().choices[0].message.content == REPLY
    streamed = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES, stream=True)
    chunks = list(streamed.parse())
    assert all(chunk.choices for chunk in chunks)  # the usage chunk asked for is hidden here too
    plain, stream = traced[1]
    assert_gpt4o(plain)
    assert_gpt4o(stream)
    assert plain.ttft_ms is None and stream.ttft_ms is not None


def test_an_async_raw_response_call_is_traced(server: ProviderServer, traced: Any) -> None:
    async def main() -> str:
        async with openai.AsyncOpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw:
            client = traced[0].instrument(raw)
            response = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
            return str(response.parse().choices[0].message.content)

    assert asyncio.run(main()) == REPLY
    [span] = traced[1]
    assert_gpt4o(span)


def test_unsupported_objects_are_refused_naming_the_supported_clients(client: openai.OpenAI, traced: Any) -> None:
    supported = r"openai\.OpenAI, openai\.AsyncOpenAI, anthropic\.Anthropic"
    completions = client.chat.completions
    not_clients = [object(), completions, anthropic.types.Usage(input_tokens=1, output_tokens=1)]
    for thing in not_clients:  # the SDKs' own objects too, which are not clients
        with pytest.raises(TypeError, match=rf"{supported}.*, got {type(thing).__qualname__}$"):
            instrument(traced[0], thing)
    assert not any(name.startswith("_tokentrace") for name in vars(completions))  # nothing set on it
    with pytest.raises(TypeError, match=r"or the openai module, got the class openai\.OpenAI itself: instrument a"):
        instrument(traced[0], openai.OpenAI)
    with pytest.raises(TypeError, match=r", got the module anthropic$"):
        instrument(traced[0], anthropic)
    with pytest.raises(ValueError, match="max_content_chars"):
        instrument(traced[0], object(), max_content_chars=-1)


def test_a_missing_sdk_names_the_extra_to_install(traced: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)
    monkeypatch.delitem(sys.modules, "tokentrace.integrations.openai")
    look_alike = type("OpenAI", (), {"__module__": "openai._client"})
    with pytest.raises(ImportError, match=r"pip install 'tokentrace\[openai\]'"):
        instrument(traced[0], look_alike())


def test_speech_streamed_to_a_file_is_priced_by_the_characters_read_out(
    server: ProviderServer, client: openai.OpenAI, traced: Any, tmp_path: Path
) -> None:
    text = "Hello from the fake model, read out."  # 36 characters
    for model in ("tts-1", "gpt-4o-mini-tts"):
        with client.audio.speech.with_streaming_response.create(model=model, voice="alloy", input=text) as response:
            response.stream_to_file(tmp_path / f"{model}.mp3")
        assert (tmp_path / f"{model}.mp3").read_bytes() == b"ID3 fake audio"

    async def hd() -> None:
        async with openai.AsyncOpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw:
            speech = traced[0].instrument(raw).audio.speech
            async with speech.with_streaming_response.create(model="tts-1-hd", voice="alloy", input=text) as response:
                await response.stream_to_file(tmp_path / "hd.mp3")

    asyncio.run(hd())
    tts, by_tokens, async_hd = traced[1]
    assert (async_hd.cost, async_hd.attributes) == (
        Decimal("0.00108"),
        {**(tts.attributes or {}), "gen_ai.request.model": "tts-1-hd"},
    )
    assert (tts.model, tts.cost, tts.status) == ("tts-1", Decimal("0.00054"), Status.OK)
    assert tts.attributes == {
        "gen_ai.operation.name": "speech",
        "gen_ai.request.model": "tts-1",
        "tokentrace.usage.input_characters": 36,
    }
    # billed by tokens, which only the body the caller kept could have reported
    assert (by_tokens.model, by_tokens.cost) == ("gpt-4o-mini-tts", 0)
    assert by_tokens.attributes == {
        "gen_ai.operation.name": "speech",
        "gen_ai.request.model": "gpt-4o-mini-tts",
        "tokentrace.response.parsed": False,
        "tokentrace.usage.reported": False,
    }
