"""OTLPTransport against a local OTLP/HTTP receiver that decodes the protobuf with opentelemetry-proto."""

from __future__ import annotations

import logging
import os
import shutil
import ssl
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as ProtoStatus
from opentelemetry.sdk.trace import TracerProvider

from tests.fakes.otlp import OTLPReceiver, attribute_values
from tests.fakes.providers import ProviderServer
from tests.receiver import Answer, Receiver, free_port
from tokentrace import OTLPTransport, Span, Status, Tracer
from tokentrace.testing import InMemoryTransport
from tokentrace.transports import otlp


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as rx:
        yield rx


def export(transport: OTLPTransport, record: Any) -> Tracer:
    tracer = Tracer(transport=transport)
    record(tracer)
    assert tracer.flush(10)
    tracer.close()
    return tracer


def low_64(span_id: str | None) -> bytes:
    return uuid.UUID(span_id).bytes[8:]


def by_name(spans: list[ProtoSpan]) -> dict[str, ProtoSpan]:
    return {span.name: span for span in spans}


def record_job(tracer: Tracer) -> None:
    with tracer.trace("summarize-document") as trace, trace.span(model="gpt-4o", provider="openai") as outer:
        outer.set_usage(
            {
                "prompt_tokens": 1000,
                "completion_tokens": 100,
                "prompt_tokens_details": {"cached_tokens": 800},
            }
        )
        outer.set_attribute("team", "search")
        trace.record(
            Span(
                model="claude-sonnet-4-0",
                provider="anthropic",
                prompt_tokens=2600,
                comp_tokens=200,
                cached_tokens=2000,
                cache_write_tokens=500,
                reasoning_tokens=50,
                latency_ms=40,
                status=Status.ERROR,
                error="RateLimitError: slow down",
                parent_span_id=outer.span.span_id,
                attributes={"gen_ai.operation.name": "messages", "tags": ["a", "b"], "extra": {"k": 1}},
            )
        )


def test_spans_arrive_with_genai_attributes_ids_and_parent_links(receiver: OTLPReceiver) -> None:
    memory = InMemoryTransport()  # the same spans, to compare ids with
    tracer = Tracer(
        transport=[OTLPTransport(receiver.url, headers={"x-api-key": "s3cret"}, service_name="svc"), memory]
    )
    record_job(tracer)
    assert tracer.flush(10)
    tracer.close()
    assert receiver.paths == ["/v1/traces"] and receiver.headers[0]["x-api-key"] == "s3cret"
    assert receiver.headers[0]["content-type"] == "application/x-protobuf"
    [request] = receiver.requests
    resource = attribute_values(request.resource_spans[0].resource.attributes)
    assert resource["service.name"] == "svc"
    assert request.resource_spans[0].scope_spans[0].scope.name == "tokentrace"
    child_span, outer_span = memory.spans  # the child is recorded (and listed) first
    spans = by_name(receiver.spans())
    outer, child = spans["summarize-document"], spans["messages claude-sonnet-4-0"]

    assert outer.trace_id == child.trace_id == uuid.UUID(outer_span.trace_id).bytes
    assert outer.span_id == low_64(outer_span.span_id) and outer.parent_span_id == b""
    assert child.span_id == low_64(child_span.span_id) and child.parent_span_id == outer.span_id
    assert outer.kind == ProtoSpan.SPAN_KIND_CLIENT
    assert outer.start_time_unix_nano == outer_span.started_at * 1_000_000  # type: ignore[operator]
    assert outer.end_time_unix_nano == outer_span.ended_at * 1_000_000  # type: ignore[operator]

    assert attribute_values(outer.attributes) == {
        "team": "search",
        "gen_ai.provider.name": "openai",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 100,
        "gen_ai.usage.cache_read.input_tokens": 800,
        "gen_ai.usage.cost": 0.0025,
        "tokentrace.trace.name": "summarize-document",
        "tokentrace.cost_source": "genai-prices",
    }
    assert outer.status.code == ProtoStatus.STATUS_CODE_UNSET

    child_attributes = attribute_values(child.attributes)
    assert child_attributes["gen_ai.usage.input_tokens"] == 2600
    assert child_attributes["gen_ai.usage.output_tokens"] == 200
    assert child_attributes["gen_ai.usage.cache_read.input_tokens"] == 2000
    assert child_attributes["gen_ai.usage.cache_creation.input_tokens"] == 500
    assert child_attributes["gen_ai.usage.reasoning.output_tokens"] == 50
    assert child_attributes["gen_ai.usage.cost"] == 0.005775
    assert child_attributes["gen_ai.operation.name"] == "messages"
    assert child_attributes["tags"] == ["a", "b"] and child_attributes["extra"] == '{"k": 1}'
    assert child_attributes["error.type"] == "RateLimitError"
    assert child.status.code == ProtoStatus.STATUS_CODE_ERROR
    assert child.status.message == "RateLimitError: slow down"


def test_error_type_names_the_kind_of_error_never_its_message(receiver: OTLPReceiver) -> None:
    errors = {
        "typed": ("openai.RateLimitError: slow down", {}),
        "coded": ("429: Too Many Requests", {}),
        "bare": ("APITimeoutError", {}),
        "message": ("the provider answered an HTML page: <html><body>502</body></html>", {}),
        "untyped": ("upstream timed out after 30 s", {}),
        "recorded": ("upstream timed out after 30 s", {"error.type": "timeout"}),
    }

    def record(tracer: Tracer) -> None:
        with tracer.trace("job") as trace:
            for name, (error, attributes) in errors.items():
                trace.record(Span(model="gpt-4o", name=name, status=Status.ERROR, error=error, attributes=attributes))
        with tracer.trace("no-call") as trace:
            trace.record_error("the prompt file is missing")

    export(OTLPTransport(receiver.url), record)
    spans = by_name(receiver.spans())
    types = {name: attribute_values(span.attributes)["error.type"] for name, span in spans.items()}
    assert types == {
        "typed": "openai.RateLimitError",
        "coded": "429",
        "bare": "APITimeoutError",
        "message": "_OTHER",
        "untyped": "_OTHER",
        "recorded": "timeout",
        "no-call": "_OTHER",
    }
    assert spans["untyped"].status.message == "upstream timed out after 30 s"
    no_call = attribute_values(spans["no-call"].attributes)
    assert not {"gen_ai.request.model", "gen_ai.response.model", "gen_ai.provider.name"} & set(no_call)


def test_providers_are_named_as_the_conventions_name_them(receiver: OTLPReceiver) -> None:
    calls = [
        ("gemini-2.0-flash", ""),  # priced from Google's table, and given its id: "google"
        ("gemini-2.0-flash", "Google"),
        ("grok-3", "x-ai"),
        ("mistral-large-latest", "mistral"),
        ("claude-sonnet-4-0", "aws"),
        ("gpt-4o", "azure"),
        ("gpt-4o", "openai"),
        ("llama-3.3-70b-versatile", "groq"),
        ("house-model", "House-LLM"),
    ]

    def record(tracer: Tracer) -> None:
        with tracer.trace("job") as trace:
            for model, provider in calls:
                trace.record(Span(model=model, provider=provider, name=f"{model} {provider}"))

    export(OTLPTransport(receiver.url), record)
    names = [attribute_values(span.attributes)["gen_ai.provider.name"] for span in receiver.spans()]
    expected = ["gcp.gemini", "gcp.gemini", "x_ai", "mistral_ai", "aws.bedrock", "azure.ai.openai", "openai", "groq"]
    assert names == [*expected, "House-LLM"]


def test_instrumented_calls_are_named_after_operation_and_model(receiver: OTLPReceiver) -> None:
    def record(tracer: Tracer) -> None:
        with (
            ProviderServer() as server,
            openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw,
        ):
            client = tracer.instrument(raw)
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])

    export(OTLPTransport(receiver.url), record)
    [span] = receiver.spans()
    assert span.name == "chat gpt-4o"
    attributes = attribute_values(span.attributes)
    assert attributes["gen_ai.request.model"] == "gpt-4o"
    assert attributes["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert attributes["gen_ai.usage.input_tokens"] == 1000 and attributes["gen_ai.usage.cost"] == 0.0025


def test_odd_spans_carry_what_otlp_can_hold(receiver: OTLPReceiver) -> None:
    odd_id = "z" * 32  # 32 characters, not hex: hashed like any other text

    def record(tracer: Tracer) -> None:
        with tracer.trace("house") as trace:
            trace.record(
                Span(
                    model="house-model",  # no price, so no provider is filled in
                    span_id=odd_id,
                    attributes={"budget": Decimal("1.25"), "mixed": [1, "a"], "empty": [], "ok": [1, 2]},
                )
            )

    export(OTLPTransport(receiver.url), record)
    [span] = receiver.spans()
    assert span.name == "house"  # no operation: named after its trace
    assert span.span_id == otlp.span_id_of(odd_id).to_bytes(8, "big")
    attributes = attribute_values(span.attributes)
    assert "gen_ai.provider.name" not in attributes and "gen_ai.usage.cost" not in attributes
    assert (attributes["budget"], attributes["mixed"], attributes["empty"], attributes["ok"]) == (
        1.25,
        '[1, "a"]',
        "[]",
        [1, 2],
    )


class Point:
    def __str__(self) -> str:
        return "(1, 2)"


def test_values_otlp_cannot_carry_go_as_text_and_cost_nothing_else(receiver: OTLPReceiver) -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    attributes = {"big": 2**70, "ids": [1, -(2**64)], "raw": b"\xff", "loop": loop, "point": Point(), 7: "x"}
    attributes["tag\udcff"] = "v\udcff"

    def record(tracer: Tracer) -> None:
        with tracer.trace("read-prompts") as trace:
            trace.record(Span(model="gpt-4o", provider="openai", attributes=attributes))
            with pytest.raises(FileNotFoundError) as raised, trace.span(model="gpt-4o", provider="openai"):
                os.stat(os.fsdecode(b"/nonexistent/\xff.txt"))  # the name's byte decodes to a lone surrogate
        recorded.append(f"FileNotFoundError: {raised.value}")

    recorded: list[str] = []
    tracer = export(OTLPTransport(receiver.url), record)
    assert (tracer.stats()["written"], tracer.stats()["dropped"]) == (2, {})
    with_attributes, failed = receiver.spans()
    values = attribute_values(with_attributes.attributes)
    assert {key: values[key] for key in ("big", "ids", "raw", "loop", "point", "7", "tag\\udcff")} == {
        "big": "1180591620717411303424",
        "ids": "[1, -18446744073709551616]",
        "raw": "\\xff",
        "loop": "<dict>",
        "point": "(1, 2)",
        "7": "x",
        "tag\\udcff": "v\\udcff",
    }
    assert failed.status.message == recorded[0].replace("\udcff", "\\udcff")
    assert "\\udcff.txt" in failed.status.message


def test_a_span_the_encoder_refuses_costs_only_itself(receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(otlp, "_text", lambda text: text, raising=False)  # let a lone surrogate through

    def record(tracer: Tracer) -> None:
        with tracer.trace("job") as trace:
            trace.record(Span(model="gpt-4o", provider="openai", name="bad\udcff"))
            trace.record(Span(model="gpt-4o", provider="openai", name="good"))

    tracer = export(OTLPTransport(receiver.url), record)
    assert [span.name for span in receiver.spans()] == ["good"]
    assert (tracer.stats()["written"], tracer.stats()["dropped"]) == (1, {"otlp_encode_error": 1})


def test_a_span_recorded_with_an_opentelemetry_spans_ids_lands_under_it(receiver: OTLPReceiver) -> None:
    with TracerProvider().get_tracer("app").start_as_current_span("handle-request") as app_span:
        context = app_span.get_span_context()

    def record(tracer: Tracer) -> None:
        with tracer.trace("answer") as trace:
            trace.record(
                Span(
                    model="gpt-4o",
                    provider="openai",
                    trace_id=otel_trace.format_trace_id(context.trace_id),
                    parent_span_id=otel_trace.format_span_id(context.span_id),
                )
            )

    export(OTLPTransport(receiver.url), record)
    [span] = receiver.spans()
    assert span.trace_id == context.trace_id.to_bytes(16, "big")
    assert span.parent_span_id == context.span_id.to_bytes(8, "big")


def test_the_global_tracer_provider_is_left_alone(receiver: OTLPReceiver) -> None:
    before = otel_trace.get_tracer_provider()
    export(OTLPTransport(receiver.url + "/v1/traces"), record_job)
    assert otel_trace.get_tracer_provider() is before
    assert isinstance(before, otel_trace.ProxyTracerProvider)
    assert receiver.paths == ["/v1/traces"]


APP_WITH_A_GLOBAL_PROVIDER = """
import sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import tokentrace

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
tracer = tokentrace.Tracer(transport=tokentrace.OTLPTransport(sys.argv[1]))
with trace.get_tracer("app").start_as_current_span("handle-request"), tracer.trace("answer") as t:
    t.record(tokentrace.Span(model="gpt-4o", provider="openai"))
assert tracer.flush(10)
tracer.close()
print(trace.get_tracer_provider() is provider, [span.name for span in exporter.get_finished_spans()])
"""


def test_an_applications_global_tracer_provider_keeps_its_spans_and_ours_stay_out_of_it(
    receiver: OTLPReceiver,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", APP_WITH_A_GLOBAL_PROVIDER, receiver.url], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "True ['handle-request']\n"
    assert [span.name for span in receiver.spans()] == ["answer"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_exports_over_a_connection_of_its_own(receiver: OTLPReceiver) -> None:
    def one(tracer: Tracer, name: str) -> None:
        with tracer.trace(name) as trace:
            trace.record(Span(model="gpt-4o", provider="openai"))
        assert tracer.flush(10)

    with Tracer(transport=OTLPTransport(receiver.url, interval=60)) as tracer:
        one(tracer, "parent")  # its connection stays open, kept for the next export
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                one(tracer, "child")
                code = 0
            finally:
                os._exit(code)
        assert os.waitpid(pid, 0)[1] == 0
        one(tracer, "parent again")
    assert [span.name for span in receiver.spans()] == ["parent", "child", "parent again"]
    parent, child, again = receiver.ports
    assert child != parent and again == parent  # sharing the parent's socket would mix their requests


def test_a_rejected_batch_is_dropped_and_counted_without_retries() -> None:
    with OTLPReceiver(statuses=(400,)) as receiver:
        tracer = export(OTLPTransport(receiver.url), record_job)
    assert len(receiver.requests) == 1
    assert tracer.stats()["dropped"] == {"otlp_http_400": 2}


def test_an_unavailable_receiver_is_retried_and_the_batch_arrives_once() -> None:
    with OTLPReceiver(statuses=(503, 200)) as receiver:
        tracer = export(OTLPTransport(receiver.url), record_job)
    assert len(receiver.requests) == 2  # the 503, then the retry the exporter made after backing off
    assert receiver.requests[0] == receiver.requests[1]
    assert sorted(span.name for span in receiver.spans()[2:]) == ["messages claude-sonnet-4-0", "summarize-document"]
    assert (tracer.stats()["written"], tracer.stats()["dropped"]) == (2, {})


def test_retries_stop_at_the_timeout_and_the_batch_is_counted_as_dropped() -> None:
    with OTLPReceiver(statuses=(503,)) as receiver:
        tracer = export(OTLPTransport(receiver.url, timeout=1.5), record_job)
    assert 1 <= len(receiver.requests) <= 3  # backing off 1 s, then 2 s: the timeout ends it
    assert (tracer.stats()["written"], tracer.stats()["dropped"]) == (0, {"otlp_http_503": 2})


def test_a_refusal_is_counted_by_its_status() -> None:
    with OTLPReceiver(statuses=(401,)) as receiver:
        tracer = export(OTLPTransport(receiver.url), record_job)
    assert len(receiver.requests) == 1
    assert (tracer.stats()["written"], tracer.stats()["dropped"]) == (0, {"otlp_http_401": 2})


def test_a_refusal_is_logged_with_what_the_receiver_said(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "tokentrace")
    with Receiver([Answer(401, b'{"error": "unknown tenant"}')]) as receiver:
        export(OTLPTransport(receiver.url), record_job)
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("tokentrace dropped")]
    assert line == f"tokentrace dropped 2 item(s): otlp_http_401 ({receiver.url}/v1/traces: unknown tenant)"


def test_spans_a_partial_success_rejects_are_counted_lost_and_not_sent_again(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "tokentrace")
    reply = ExportTraceServiceResponse()
    reply.partial_success.rejected_spans = 1
    reply.partial_success.error_message = "span too old"
    with OTLPReceiver(reply=reply) as receiver:
        tracer = export(OTLPTransport(receiver.url), record_job)
    assert len(receiver.requests) == 1
    assert (tracer.stats()["written"], tracer.stats()["dropped"]) == (1, {"otlp_rejected": 1})
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("tokentrace dropped")]
    assert line == f"tokentrace dropped 1 item(s): otlp_rejected ({receiver.url}/v1/traces: span too old)"


def test_a_batch_too_large_is_sent_again_in_halves() -> None:
    def record(tracer: Tracer) -> None:
        with tracer.trace("job") as trace:
            for n in range(4):
                trace.record(Span(model="gpt-4o", name=str(n), attributes={"blob": "x" * 100_000}))
            trace.record(Span(model="gpt-4o", name="alone", attributes={"blob": "x" * 300_000}))

    with OTLPReceiver(max_body=250_000) as receiver:
        tracer = export(OTLPTransport(receiver.url), record)
    assert sorted(span.name for span in receiver.spans()) == ["0", "1", "2", "3"]
    assert (tracer.stats()["written"], tracer.stats()["dropped"]) == (4, {"otlp_http_413": 1})


def test_a_receiver_that_is_down_is_counted_as_a_connection_error() -> None:
    tracer = export(OTLPTransport(f"http://127.0.0.1:{free_port()}", timeout=2.0), record_job)
    assert (tracer.stats()["written"], tracer.stats()["dropped"]) == (0, {"otlp_connection_error": 2})


@pytest.mark.parametrize(
    ("timeout", "variables"),
    [
        (1.0, {"OTEL_EXPORTER_OTLP_TIMEOUT": "60"}),  # given in code: it wins
        (None, {"OTEL_EXPORTER_OTLP_TIMEOUT": "60", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "1"}),  # in seconds
    ],
)
def test_an_answer_trickled_in_is_cut_off_at_the_timeout(
    monkeypatch: pytest.MonkeyPatch, timeout: float | None, variables: dict[str, str]
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with Receiver([Answer(200, trickle=True)]) as receiver:
        tracer = export(OTLPTransport(receiver.url, timeout=timeout), record_job)
    assert len(receiver.requests) == 1  # one attempt, cut off; no time is left for a second
    assert (tracer.stats()["written"], tracer.stats()["dropped"]) == (0, {"otlp_timeout": 2})


def test_the_timeout_variable_is_read_in_seconds_as_opentelemetrys_exporters_read_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "5")  # 5 s; as milliseconds, the answer would come too late
    with Receiver([Answer(200, body=b"", delay=0.3)]) as receiver:
        tracer = export(OTLPTransport(receiver.url), record_job)
    assert (tracer.stats()["written"], tracer.stats()["dropped"]) == (2, {})


def test_the_exporter_variables_for_headers_are_read(receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme,x-api-key=from%20env")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-api-key=traces%2Conly")
    export(OTLPTransport(receiver.url), record_job)
    export(OTLPTransport(receiver.url, headers={"x-api-key": "given"}), record_job)
    assert [(h.get("x-tenant"), h["x-api-key"]) for h in receiver.headers] == [(None, "traces,only"), (None, "given")]


def test_batches_are_compressed_when_asked(receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    export(OTLPTransport(receiver.url, compression="gzip"), record_job)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "deflate")
    export(OTLPTransport(receiver.url), record_job)
    export(OTLPTransport(receiver.url, compression="none"), record_job)
    assert [h.get("content-encoding") for h in receiver.headers] == ["gzip", "deflate", None]
    assert len(receiver.spans()) == 6  # the receiver decompressed and decoded them all


@pytest.mark.parametrize(
    ("variables", "path"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "{url}/"}, "/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "{url}/otlp"}, "/otlp/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "{url}/t"}, "/t"),
    ],
)
def test_the_endpoint_variables_are_read(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], path: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value.format(url=receiver.url))
    transport = OTLPTransport()
    assert transport.endpoint == receiver.url + path
    export(transport, record_job)
    assert receiver.paths == [path]


def test_the_resource_comes_from_the_service_name_given_else_the_variables(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.version=1.4,deployment.environment.name=prod")
    export(OTLPTransport(receiver.url), record_job)
    export(OTLPTransport(receiver.url, service_name="given"), record_job)
    resources = [attribute_values(request.resource_spans[0].resource.attributes) for request in receiver.requests]
    assert [(r["service.name"], r["service.version"], r["deployment.environment.name"]) for r in resources] == [
        ("from-env", "1.4", "prod"),
        ("given", "1.4", "prod"),
    ]


def test_an_endpoint_given_wins_over_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9/t")
    assert OTLPTransport("https://otlp.example.com/otlp/").endpoint == "https://otlp.example.com/otlp/v1/traces"


@pytest.mark.parametrize(
    ("arguments", "variables", "message"),
    [
        ({"compression": "zstd"}, {}, "OTLPTransport compression must be one of gzip, deflate, none; got 'zstd'"),
        (
            {},
            {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "br"},
            r"OTEL_EXPORTER_OTLP_\[TRACES_\]COMPRESSION must be one of gzip, deflate, none; got 'br'",
        ),
        ({"timeout": 0}, {}, "OTLPTransport timeout must be a positive number of seconds, got 0"),
        ({"timeout": "5"}, {}, "OTLPTransport timeout must be a positive number of seconds, got '5'"),
        ({"timeout": True}, {}, "OTLPTransport timeout must be a positive number of seconds, got True"),
        (
            {},
            {"OTEL_EXPORTER_OTLP_TIMEOUT": "10s"},
            r"OTEL_EXPORTER_OTLP_\[TRACES_\]TIMEOUT must be a positive number of seconds, got '10s'",
        ),
        (
            {},
            {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "-1"},
            r"OTEL_EXPORTER_OTLP_\[TRACES_\]TIMEOUT must be a positive number of seconds, got '-1'",
        ),
        (
            {},
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"},
            "OTEL_EXPORTER_OTLP_ENDPOINT must start with http:// or https://, got 'collector:4318'",
        ),
        (
            {"headers": {"authorization": "Bearer s3cret\n"}},
            {},
            r"OTLPTransport headers\['authorization'\] must be printable ASCII text without a space or line break "
            r"at either end \(a secret read from a file keeps its newline: strip it\)",
        ),
        (
            {"headers": {"x api key": "s3cret"}},
            {},
            r"OTLPTransport headers: 'x api key' is not an HTTP header name",
        ),
        (
            {},
            {"OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=s%C3%A9cret"},
            r"OTEL_EXPORTER_OTLP_\[TRACES_\]HEADERS\['x-api-key'\] must be printable ASCII text .*",
        ),
    ],
)
def test_bad_settings_are_refused_naming_them(
    monkeypatch: pytest.MonkeyPatch, arguments: dict[str, Any], variables: dict[str, str], message: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=f"^{message}$"):
        OTLPTransport(**arguments)


def self_signed(folder: Path, name: str) -> tuple[str, str]:
    """A certificate for 127.0.0.1, its own CA, and its key: the paths of both."""
    cert, key = str(folder / f"{name}.pem"), str(folder / f"{name}.key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_the_exporter_variables_for_tls_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server_cert, server_key = self_signed(tmp_path, "server")
    client_cert, client_key = self_signed(tmp_path, "client")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server_cert, server_key)
    context.load_verify_locations(client_cert)
    context.verify_mode = ssl.CERT_REQUIRED  # no request gets through without the client certificate
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", server_cert)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", client_cert)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CLIENT_KEY", client_key)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", client_cert)  # set for other clients (behind a proxy, say): not ours
    with OTLPReceiver() as receiver:
        receiver._httpd.socket = context.wrap_socket(receiver._httpd.socket, server_side=True)
        tracer = export(OTLPTransport(f"https://127.0.0.1:{receiver.port}"), record_job)
    assert (tracer.stats()["written"], tracer.stats()["dropped"]) == (2, {})
    assert len(receiver.spans()) == 2


def test_ids_map_deterministically() -> None:
    trace_id, span_id = str(uuid.uuid4()), str(uuid.uuid4())
    assert otlp.trace_id_of(trace_id) == uuid.UUID(trace_id).int
    assert otlp.span_id_of(span_id) == uuid.UUID(span_id).int & (2**64 - 1)
    assert otlp.span_id_of("not-a-uuid") == otlp.span_id_of("not-a-uuid") != 0
    assert otlp.span_id_of("00f067aa0ba902b7") == 0x00F067AA0BA902B7
    assert otlp.span_id_of("0" * 16) == otlp.span_id_of("0" * 16) != 0
    assert otlp.span_id_of("not-utf-8-\udcff") == otlp.span_id_of("not-utf-8-\udcff") != 0


def test_a_bad_endpoint_is_refused() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        OTLPTransport("127.0.0.1:4318")


def test_tokentrace_imports_without_the_extras() -> None:
    script = textwrap.dedent(
        """
        import sys
        for name in ("opentelemetry", "openai", "anthropic"):
            sys.modules[name] = None
        import tokentrace
        tokentrace.Tracer().close()
        try:
            tokentrace.OTLPTransport()
        except ImportError as exc:
            print(exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "pip install 'tokentrace[otel]'" in done.stdout
