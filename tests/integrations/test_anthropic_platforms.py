"""The ``anthropic`` SDK's Vertex AI and Bedrock clients, instrumented, against the local fake
provider speaking those platforms' paths (and Bedrock's AWS event-stream framing)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import pytest

from tests.fakes.providers import CANARY, REPLY, ProviderServer
from tokentrace import Span, Status, Tracer

MESSAGES: list[Any] = [{"role": "user", "content": f"Say hello ({CANARY})"}]
VERTEX_MODEL = "claude-sonnet-4@20250514"
BEDROCK_MODEL = "us.anthropic.claude-sonnet-4-20250514-v1:0"
# claude-sonnet-4 in the platforms' tables, per Mtok: 100 uncached x $3 + 2000 cache reads x $0.30 +
# 300 five-minute cache writes x $3.75 + 200 one-hour ones x $6 (twice the input rate: the tables
# give none) + 200 out x $15
PLATFORM_COST = Decimal("0.006225")


def vertex(server: ProviderServer, cls: Any = anthropic.AnthropicVertex) -> Any:
    return cls(region="us-east5", project_id="proj", access_token="token", base_url=f"{server.url}/v1", max_retries=0)


def bedrock(server: ProviderServer, cls: Any = anthropic.AnthropicBedrock) -> Any:
    return cls(
        aws_access_key="AKIDEXAMPLE",
        aws_secret_key="secret",
        aws_region="us-east-1",
        base_url=server.url,
        max_retries=0,
    )


@pytest.fixture
def vertex_client(server: ProviderServer, traced: tuple[Tracer, list[Span]]) -> Iterator[Any]:
    raw = vertex(server)
    yield traced[0].instrument(raw)
    raw.close()


@pytest.fixture
def bedrock_client(server: ProviderServer, traced: tuple[Tracer, list[Span]]) -> Iterator[Any]:
    raw = bedrock(server)
    yield traced[0].instrument(raw)
    raw.close()


def assert_platform(span: Span, provider: str, requested: str) -> None:
    assert (span.name, span.provider, span.model) == ("messages", provider, "claude-sonnet-4-20250514")
    assert (span.prompt_tokens, span.comp_tokens, span.cached_tokens, span.cache_write_tokens) == (2600, 200, 2000, 500)
    assert span.cost == PLATFORM_COST
    assert span.status is Status.OK and span.error is None
    assert span.attributes == {
        "gen_ai.operation.name": "messages",
        "gen_ai.request.model": requested,
        "tokentrace.usage.cache_write_1h_tokens": 200,  # at twice the input rate: the table has no rate here
    }


def test_vertex_create_stream_helper_and_beta(vertex_client: Any, server: ProviderServer, traced: Any) -> None:
    ask = {"model": VERTEX_MODEL, "max_tokens": 64, "messages": MESSAGES}
    assert vertex_client.messages.create(**ask).content[0].text == REPLY
    assert list(vertex_client.messages.create(**ask, stream=True))[-1].type == "message_stop"
    with vertex_client.messages.stream(**ask) as stream:
        assert stream.get_final_text() == REPLY
    vertex_client.beta.messages.create(**ask)
    base = f"/v1/projects/proj/locations/us-east5/publishers/anthropic/models/{VERTEX_MODEL}"
    actions = ["rawPredict", "streamRawPredict", "streamRawPredict", "rawPredict"]
    assert [request.path for request in server.requests] == [f"{base}:{action}" for action in actions]
    spans = traced[1]
    assert len(spans) == 4
    for span in spans:
        assert_platform(span, "gcp.vertex_ai", VERTEX_MODEL)
    assert [span.ttft_ms is None for span in spans] == [True, False, False, True]


def test_bedrock_create_and_event_stream(bedrock_client: Any, server: ProviderServer, traced: Any) -> None:
    ask = {"model": BEDROCK_MODEL, "max_tokens": 64, "messages": MESSAGES}
    assert bedrock_client.messages.create(**ask).content[0].text == REPLY
    events = list(bedrock_client.messages.create(**ask, stream=True))
    assert [event.type for event in events] == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert [request.path.rpartition("/")[2] for request in server.requests] == ["invoke", "invoke-with-response-stream"]
    assert server.requests[0].headers["Authorization"].startswith("AWS4-HMAC-SHA256 ")  # signed by botocore
    plain, streamed = traced[1]
    assert_platform(plain, "aws.bedrock", BEDROCK_MODEL)
    assert_platform(streamed, "aws.bedrock", BEDROCK_MODEL)
    assert plain.ttft_ms is None and streamed.ttft_ms is not None


def test_a_bedrock_stream_left_half_way_keeps_the_usage_seen(bedrock_client: Any, traced: Any) -> None:
    with bedrock_client.messages.stream(model=BEDROCK_MODEL, max_tokens=64, messages=MESSAGES) as stream:
        for event in stream:
            if event.type == "content_block_delta":
                break
    [span] = traced[1]
    assert (span.provider, span.status, span.error) == ("aws.bedrock", Status.ERROR, "stream not consumed")
    assert (span.prompt_tokens, span.comp_tokens, span.cached_tokens) == (2600, 1, 2000)


def test_async_vertex_and_bedrock_clients(server: ProviderServer, traced: Any) -> None:
    tracer, spans = traced

    async def main() -> list[str]:
        texts = []
        for client, model in (
            (vertex(server, anthropic.AsyncAnthropicVertex), VERTEX_MODEL),
            (bedrock(server, anthropic.AsyncAnthropicBedrock), BEDROCK_MODEL),
        ):
            async with tracer.instrument(client) as instrumented:
                ask = {"model": model, "max_tokens": 64, "messages": MESSAGES}
                await instrumented.messages.create(**ask)
                async with instrumented.messages.stream(**ask) as stream:
                    texts.append(await stream.get_final_text())
        return texts

    assert asyncio.run(main()) == [REPLY, REPLY]
    assert [span.provider for span in spans] == ["gcp.vertex_ai"] * 2 + ["aws.bedrock"] * 2
    for span, requested in zip(spans, [VERTEX_MODEL] * 2 + [BEDROCK_MODEL] * 2, strict=True):
        assert_platform(span, span.provider or "", requested)


def mantle(server: ProviderServer, cls: Any = anthropic.AnthropicBedrockMantle) -> Any:
    return cls(api_key="bedrock-key", aws_region="us-east-1", base_url=f"{server.url}/anthropic", max_retries=0)


def test_bedrock_mantle_clients_sync_and_async(server: ProviderServer, traced: Any) -> None:
    tracer, spans = traced
    ask = {"model": BEDROCK_MODEL, "max_tokens": 64, "messages": MESSAGES}
    with tracer.instrument(mantle(server)) as client:
        assert client.messages.create(**ask).content[0].text == REPLY
        assert list(client.messages.create(**ask, stream=True))[-1].type == "message_stop"
        client.beta.messages.create(**ask)

    async def main() -> str:
        async with tracer.instrument(mantle(server, anthropic.AsyncAnthropicBedrockMantle)) as client:
            async with client.messages.stream(**ask) as stream:
                return await stream.get_final_text()

    assert asyncio.run(main()) == REPLY
    assert [request.path.partition("?")[0] for request in server.requests] == ["/anthropic/v1/messages"] * 4
    assert server.requests[0].headers["Authorization"] == "Bearer bedrock-key"
    assert len(spans) == 4
    for span in spans:
        assert_platform(span, "aws.bedrock", BEDROCK_MODEL)
    assert [span.ttft_ms is None for span in spans] == [True, False, True, False]
