"""Prompt and completion text stay out of every output unless ``capture_content=True`` asks for them."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes.otlp import OTLPReceiver
from tests.fakes.providers import CANARY, REPLY, Fault, ProviderServer
from tokentrace import FileTransport, OTLPTransport, Span, StdoutTransport, Tracer
from tokentrace.integrations import instrument
from tokentrace.integrations._calls import _content
from tokentrace.testing import InMemoryTransport, capture_spans

PROMPT = f"Repeat after me: {CANARY}"
MESSAGES: list[Any] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}]
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOLS: list[Any] = [{"type": "function", "function": {"name": "lookup", "parameters": SCHEMA}}]
CLAUDE_TOOLS: list[Any] = [{"name": "lookup", "input_schema": SCHEMA}]
RESPONSES_TOOLS: list[Any] = [{"type": "function", "name": "lookup", "parameters": SCHEMA}]
CUSTOM_TOOLS: list[Any] = [{"type": "custom", "name": "lookup", "description": "Takes a city, as text."}]
MCP_TOOLS: list[Any] = [{"type": "mcp", "server_label": "fake", "server_url": "https://mcp.example.com/sse"}]
TOOL_CALL = f'[tool call: lookup] {{"city": "{CANARY}"}}'  # the fake calls the tool with the canary
CUSTOM_CALL = f"[tool call: lookup] {CANARY}"  # a custom tool's input is text
MCP_CALL = "[tool call: lookup] {}"  # the fake MCP server's tool takes no arguments


def every_kind_of_call(server: ProviderServer, tracer: Tracer, **options: Any) -> None:
    """Chat (plain, streamed), responses (plain, streamed), embeddings, messages (plain, streamed),
    text completions (plain, streamed), beta responses, beta messages (plain, streamed), chat
    through ``with_streaming_response`` (plain, streamed), and chat, responses and messages
    answered with a tool call (plain, streamed; responses calling a function, a custom tool and an
    MCP server's tool), an image made and an audio file's transcription (plain, streamed), whose
    prompts are text too, and text read out."""
    with (
        openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw_openai,
        anthropic.Anthropic(base_url=server.anthropic_url, api_key="k", max_retries=0) as raw_anthropic,
    ):
        oa = instrument(tracer, raw_openai, **options)
        an = instrument(tracer, raw_anthropic, **options)
        oa.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        list(oa.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
        oa.responses.create(model="o4-mini", instructions="Be brief.", input=PROMPT)
        list(oa.responses.create(model="o4-mini", input=PROMPT, stream=True))
        oa.embeddings.create(model="text-embedding-3-small", input=PROMPT)
        an.messages.create(model="claude-sonnet-4-0", max_tokens=64, system="Be brief.", messages=MESSAGES[1:])
        with an.messages.stream(model="claude-sonnet-4-0", max_tokens=64, messages=MESSAGES[1:]) as stream:
            stream.until_done()
        oa.completions.create(model="gpt-3.5-turbo-instruct", prompt=PROMPT)
        list(oa.completions.create(model="gpt-3.5-turbo-instruct", prompt=PROMPT, stream=True))
        oa.beta.responses.create(model="o4-mini", input=PROMPT)
        an.beta.messages.create(model="claude-sonnet-4-0", max_tokens=64, messages=MESSAGES[1:])
        list(an.beta.messages.create(model="claude-sonnet-4-0", max_tokens=64, messages=MESSAGES[1:], stream=True))
        with oa.chat.completions.with_streaming_response.create(model="gpt-4o", messages=MESSAGES) as response:
            response.parse()
        with oa.chat.completions.with_streaming_response.create(
            model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        ) as response:
            list(response.parse())
        oa.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=TOOLS)
        list(oa.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=TOOLS, stream=True))
        for tools in (RESPONSES_TOOLS, CUSTOM_TOOLS, MCP_TOOLS):
            oa.responses.create(model="o4-mini", input=PROMPT, tools=tools)
            list(oa.responses.create(model="o4-mini", input=PROMPT, tools=tools, stream=True))
        an.messages.create(model="claude-sonnet-4-0", max_tokens=64, messages=MESSAGES[1:], tools=CLAUDE_TOOLS)
        with an.messages.stream(
            model="claude-sonnet-4-0", max_tokens=64, messages=MESSAGES[1:], tools=CLAUDE_TOOLS
        ) as stream:
            stream.until_done()
        oa.images.generate(model="gpt-image-1", prompt=PROMPT)
        list(oa.images.generate(model="gpt-image-1", prompt=PROMPT, stream=True))
        audio = ("speech.wav", b"RIFF fake audio", "audio/wav")
        oa.audio.transcriptions.create(model="gpt-4o-transcribe", file=audio, prompt=PROMPT)
        list(oa.audio.transcriptions.create(model="gpt-4o-transcribe", file=audio, prompt=PROMPT, stream=True))
        oa.audio.speech.create(model="tts-1", voice="alloy", input=PROMPT)


def test_the_canary_appears_in_no_transport_output_by_default(
    server: ProviderServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stdout, memory, jsonl = io.StringIO(), InMemoryTransport(), tmp_path / "spans.jsonl"
    caplog.set_level(logging.DEBUG, logger="tokentrace")
    with OTLPReceiver() as receiver:
        tracer = Tracer(
            transport=[
                StdoutTransport(out=stdout),
                StdoutTransport(out=stdout, compact=True),
                FileTransport(jsonl),
                memory,
                OTLPTransport(receiver.url),
            ]
        )
        every_kind_of_call(server, tracer)
        assert tracer.flush(10)
        tracer.close()
    assert len(memory.spans) == 29 and all(s.status == "ok" for s in memory.spans)
    outputs = {
        "stdout": stdout.getvalue(),
        "jsonl": jsonl.read_text(),
        "memory": repr(memory.spans),
        "otlp": b"".join(r.SerializeToString() for r in receiver.requests).decode("utf-8", "replace"),
    }
    assert all(outputs.values())
    outputs["tokentrace logs"] = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("tokentrace"))
    assert [name for name, text in outputs.items() if CANARY in text] == []
    assert CANARY in server.requests[0].body["messages"][1]["content"]  # the canary did travel


def test_capture_content_records_prompt_and_completion(server: ProviderServer) -> None:
    memory = InMemoryTransport()
    tracer = Tracer(transport=memory)
    every_kind_of_call(server, tracer, capture_content=True)
    tracer.close()
    spans: list[Span] = memory.spans
    assert len(spans) == 29
    for span in spans:
        attributes = span.attributes or {}
        assert CANARY in attributes["gen_ai.prompt"], span.name
    completions = [(s.attributes or {}).get("gen_ai.completion") for s in spans]
    tool_calls = [TOOL_CALL] * 4 + [CUSTOM_CALL] * 2 + [MCP_CALL] * 2 + [TOOL_CALL] * 2  # chat, responses, messages
    assert completions == [REPLY] * 4 + [None] + [REPLY] * 9 + tool_calls + [None, None] + [REPLY] * 2 + [None]
    assert "Be brief." in (spans[0].attributes or {})["gen_ai.prompt"]  # the system message too
    assert "Be brief." in (spans[2].attributes or {})["gen_ai.prompt"]  # responses instructions
    assert "Be brief." in (spans[5].attributes or {})["gen_ai.prompt"]  # anthropic system


def test_captured_content_is_truncated(server: ProviderServer) -> None:
    memory = InMemoryTransport()
    tracer = Tracer(transport=memory)
    with openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw:
        client = instrument(tracer, raw, capture_content=True, max_content_chars=12)
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": PROMPT}])
        list(
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": PROMPT}], stream=True)
        )
    tracer.close()
    for span in memory.spans:
        attributes = span.attributes or {}
        assert len(attributes["gen_ai.prompt"]) == 12
        assert attributes["gen_ai.completion"] == REPLY[:12]
    assert [span.prompt_tokens for span in memory.spans] == [1000, 1000]  # the usage chunk, past the text kept


def test_messages_given_as_a_generator_are_left_to_the_sdk(server: ProviderServer) -> None:
    memory = InMemoryTransport()
    tracer = Tracer(transport=memory)
    with openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw:
        client = instrument(tracer, raw, capture_content=True)
        client.chat.completions.create(model="gpt-4o", messages=(m for m in MESSAGES))
    tracer.close()
    assert server.requests[0].body["messages"] == MESSAGES
    [span] = memory.spans
    assert "gen_ai.prompt" not in (span.attributes or {}) and (span.attributes or {})["gen_ai.completion"] == REPLY


class Number(pydantic.BaseModel):
    """A structured output that none of the fake's replies fits: parsing them fails."""

    number: int


def calls_failing_after_the_reply(server: ProviderServer, tracer: Tracer, **options: Any) -> list[BaseException]:
    """Calls that the SDK fails once the reply arrived, sync and async: structured outputs the
    reply does not fit (chat, responses, messages, chat through ``with_raw_response``), and streams
    with an event that is not JSON (chat, messages). The exceptions raised, in the order of the
    calls."""
    raised: list[BaseException] = []

    @contextlib.contextmanager
    def expect(error: type[BaseException]) -> Iterator[None]:
        with pytest.raises(error) as info:
            yield
        raised.append(info.value)

    with (
        openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw_openai,
        anthropic.Anthropic(base_url=server.anthropic_url, api_key="k", max_retries=0) as raw_anthropic,
    ):
        oa, an = instrument(tracer, raw_openai, **options), instrument(tracer, raw_anthropic, **options)
        with expect(pydantic.ValidationError):
            oa.chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=Number)
        with expect(pydantic.ValidationError):
            oa.responses.parse(model="o4-mini", input=PROMPT, text_format=Number)
        with expect(pydantic.ValidationError):
            an.messages.parse(model="claude-sonnet-4-0", max_tokens=64, messages=MESSAGES[1:], output_format=Number)
        raw = oa.chat.completions.with_raw_response.parse(model="gpt-4o", messages=MESSAGES, response_format=Number)
        with expect(pydantic.ValidationError):
            raw.parse()
        server.script(Fault(garbled=True))
        with expect(json.JSONDecodeError):
            list(oa.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))

    async def main() -> None:
        async with (
            openai.AsyncOpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw_openai,
            anthropic.AsyncAnthropic(base_url=server.anthropic_url, api_key="k", max_retries=0) as raw_anthropic,
        ):
            oa, an = instrument(tracer, raw_openai, **options), instrument(tracer, raw_anthropic, **options)
            with expect(pydantic.ValidationError):
                await oa.chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=Number)
            server.script(Fault(garbled=True))
            with expect(json.JSONDecodeError):
                async with an.messages.stream(
                    model="claude-sonnet-4-0", max_tokens=64, messages=MESSAGES[1:]
                ) as stream:
                    await stream.until_done()

    asyncio.run(main())
    return raised


def test_an_error_raised_after_the_reply_arrived_is_recorded_by_its_type_alone(
    server: ProviderServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tokentrace")
    with capture_spans() as (tracer, spans):
        raised = calls_failing_after_the_reply(server, tracer)
    assert sum(CANARY in str(error) for error in raised) == 5  # the parse errors quote the reply
    withheld = "(message not recorded without capture_content)"
    assert [(span.name, span.error) for span in spans] == [
        ("chat", f"ValidationError {withheld}"),
        ("responses", f"ValidationError {withheld}"),
        ("messages", f"ValidationError {withheld}"),
        ("chat", f"ValidationError {withheld}"),
        ("chat", f"JSONDecodeError {withheld}"),
        ("chat", f"ValidationError {withheld}"),
        ("messages", f"JSONDecodeError {withheld}"),
    ]
    assert tracer.stats()["dropped"] == {}  # the SDK's errors, not tokentrace's
    assert [
        r.getMessage() for r in caplog.records if r.name.startswith("tokentrace") and CANARY in r.getMessage()
    ] == []


def test_an_error_raised_after_the_reply_arrived_is_recorded_whole_when_content_is_captured(
    server: ProviderServer,
) -> None:
    with capture_spans() as (tracer, spans):
        raised = calls_failing_after_the_reply(server, tracer, capture_content=True)
    assert len(raised) == 7
    assert [span.error for span in spans] == [f"{type(error).__name__}: {error}" for error in raised]


def test_an_error_of_the_http_layer_is_recorded_whole(server: ProviderServer) -> None:
    with (
        capture_spans() as (tracer, spans),
        openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw_openai,
        anthropic.Anthropic(base_url=server.anthropic_url, api_key="k", max_retries=0) as raw_anthropic,
    ):
        oa, an = instrument(tracer, raw_openai), instrument(tracer, raw_anthropic)
        server.script(Fault(status=500), Fault(cut=True), Fault(cut=True))
        with pytest.raises(openai.InternalServerError):
            oa.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        with pytest.raises(openai.APIConnectionError):  # the SDK's, for the connection closed mid-stream
            list(oa.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
        with pytest.raises(Exception, match="peer closed") as cut:  # the transport's own: httpx's or httpx2's
            with an.messages.stream(model="claude-sonnet-4-0", max_tokens=64, messages=MESSAGES[1:]) as stream:
                stream.until_done()
    assert type(cut.value).__name__ == "RemoteProtocolError"
    assert [span.error for span in spans] == [
        "InternalServerError: Error code: 500 - fake 500",
        "APIConnectionError: Connection error.",
        "RemoteProtocolError: peer closed connection without sending complete message body (incomplete chunked read)",
    ]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


_REQUESTS = st.lists(_JSON, max_size=4) | st.dictionaries(st.text(max_size=8), _JSON, max_size=4)


@settings(max_examples=300, deadline=None)
@given(value=_REQUESTS, limit=st.integers(0, 24))
def test_captured_request_content_is_the_start_of_its_whole_json(value: Any, limit: int) -> None:
    # the long strings in a request (a document, an image sent inline) are cut before it is made
    # JSON: what is kept is the same, character for character
    assert _content(value, limit) == json.dumps(value, default=str, ensure_ascii=False)[:limit]


def test_a_long_request_is_cut_before_it_is_made_json() -> None:
    image = "data:image/png;base64," + "A" * 5_000_000
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": image}}, {"type": "text"}]}]
    kept = _content(messages, 2000)
    assert kept == json.dumps(messages, ensure_ascii=False)[:2000] and len(kept) == 2000
    assert _content(("a" * 10, "b"), 5) == '["aaa'  # tuples as JSON lists, as before
