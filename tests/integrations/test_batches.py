"""OpenAI Batch API results, read from the file ``files.content`` downloads: one span per request
that succeeded, at the batch rates, recorded once, on a thread of their own."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import openai
import pytest

from tests.fakes.providers import _BATCH_RAN, REPLY, ProviderServer, _batch_file
from tokentrace import FileTransport, Span, Status, Tracer
from tokentrace.integrations import _calls
from tokentrace.testing import InMemoryTransport, capture_spans
from tokentrace.transports.base import BatchingTransport

# name, model, prompt, completion and cached tokens, cost: per Mtok at gpt-4o's batch rates, 200
# x $1.25 + 800 cached x $1.25 + 100 out x $5 ($0.0025 at the standard rates); o4-mini's, 1000 x
# $0.55 + 200 cached x $0.1375 + 300 out x $2.20
RESULTS = [
    ("chat", "gpt-4o-2024-08-06", 1000, 100, 800, Decimal("0.00175")),
    ("responses", "o4-mini-2025-04-16", 1200, 300, 200, Decimal("0.001265")),
    ("embeddings", "text-embedding-3-small", 8, 0, None, Decimal("1.6E-7")),
    ("text_completion", "gpt-3.5-turbo-instruct", 50, 20, None, Decimal("0.000115")),
]


def summary(spans: list[Span]) -> list[tuple[Any, ...]]:
    return [(s.name, s.model, s.prompt_tokens, s.comp_tokens, s.cached_tokens, s.cost) for s in spans]


def span_id(request: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"tokentrace:openai:{request}"))


def test_batch_results_are_priced_at_batch_rates_once_each(
    client: openai.OpenAI, server: ProviderServer, traced: Any
) -> None:
    tracer, spans = traced
    first = client.files.content("batch-output")
    again = client.files.content("batch-output")  # downloaded again: already counted
    assert first.content == again.content == _batch_file("batch-output")  # the file reaches the caller as sent
    assert tracer.flush(10)
    # the refused and the expired requests are not billed
    assert summary(spans) == RESULTS
    chat = spans[0]
    assert chat.attributes == {"gen_ai.operation.name": "chat", "tokentrace.batch": True}  # no model asked for
    assert all(s.status is Status.OK and s.ttft_ms is None for s in spans)
    # dated when they ran: the completions' "created", the response's "created_at" and
    # "completed_at" (and so its latency); an embedding says nothing of it, and is dated when read
    chat, response, embedding, completion = spans
    ran = _BATCH_RAN * 1000
    for span in (chat, completion):
        assert span.latency_ms is None and abs(span.started_at - ran) <= 1 and span.ended_at == span.started_at  # type: ignore[operator]
    assert response.latency_ms == 42_000 and abs(response.started_at - ran) <= 1  # type: ignore[operator]
    assert response.ended_at == response.started_at + 42_000  # type: ignore[operator]
    assert embedding.latency_ms is None and embedding.started_at > ran + 3_000_000  # type: ignore[operator]
    assert all(s.provider == "openai" and s.trace_id != chat.trace_id for s in spans[1:])  # each a trace of its own
    # the same ids in any process that reads the file, so that a collector stores each once
    assert [s.span_id for s in spans] == [span_id(f"batch_req_{n}") for n in (1, 3, 4, 5)]
    assert [r.path for r in server.requests] == ["/v1/files/batch-output/content"] * 2
    assert tracer.stats()["dropped"] == {}


def test_batch_results_downloaded_by_an_async_client(server: ProviderServer) -> None:
    async def main(tracer: Tracer) -> bytes:
        async with openai.AsyncOpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw:
            return (await tracer.instrument(raw).files.content("batch-output")).content

    with capture_spans() as (tracer, spans):
        assert asyncio.run(main(tracer)) == _batch_file("batch-output")
        assert tracer.flush(10)
        assert summary(spans) == RESULTS


def test_the_file_is_read_on_a_thread_of_its_own_and_flush_waits_for_it(server: ProviderServer) -> None:
    class Seen(InMemoryTransport):
        threads: list[str] = []

        def emit(self, spans: list[Span]) -> None:
            self.threads.append(threading.current_thread().name)
            super().emit(spans)

    transport = Seen()
    with (
        Tracer(transport=transport) as tracer,
        openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw,
    ):
        tracer.instrument(raw).files.content("batch-output")
        assert tracer.flush(10)
        assert Seen.threads == ["tokentrace.results"] * 4 and len(transport.spans) == 4


def test_files_that_hold_no_batch_results_are_left_alone(client: openai.OpenAI, traced: Any) -> None:
    tracer, spans = traced
    assert client.files.content("batch-input").content == _batch_file("batch-input")  # a batch's requests
    assert client.files.content("notes.txt").content == _batch_file("notes.txt")  # not JSON lines
    assert tracer.flush(10)
    assert spans == [] and tracer.stats()["dropped"] == {}


def test_a_raw_download_is_read_too_and_a_streamed_one_left_to_the_caller(client: openai.OpenAI, traced: Any) -> None:
    tracer, spans = traced
    with client.files.with_streaming_response.content("batch-output") as streamed:
        assert streamed.read() == _batch_file("batch-output")  # the body is the caller's to read
    assert tracer.flush(10)
    assert spans == [] and tracer.stats()["dropped"] == {}
    assert client.files.with_raw_response.content("batch-output").content == _batch_file("batch-output")
    assert tracer.flush(10)
    assert summary(spans) == RESULTS


def test_a_line_that_cannot_be_read_is_counted_and_the_rest_recorded(client: openai.OpenAI, traced: Any) -> None:
    tracer, spans = traced
    client.files.content("batch-damaged")
    assert tracer.flush(10)
    assert summary(spans) == RESULTS
    assert tracer.stats()["dropped"] == {"instrumentation_error": 1}


def test_batch_results_keep_their_text_only_when_content_is_captured(server: ProviderServer) -> None:
    for capture in (False, True):
        with (
            capture_spans() as (tracer, spans),
            openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw,
        ):
            tracer.instrument(raw, capture_content=capture).files.content("batch-output")
            assert tracer.flush(10)
            chat, response = spans[:2]
            for span in (chat, response):
                assert (span.attributes or {}).get("gen_ai.completion") == (REPLY if capture else None)
                assert "gen_ai.prompt" not in (span.attributes or {})  # the requests are in another file


def test_a_large_file_fills_no_queue(server: ProviderServer, tmp_path: Path) -> None:
    # 1,500 results through a pipeline that holds 600 at most: they are delivered as they are read
    path = tmp_path / "spans.jsonl"
    with (
        Tracer(transport=FileTransport(path), max_queue=600) as tracer,
        openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw,
    ):
        tracer.instrument(raw).files.content("batch-output-1500")
        assert tracer.flush(30)
        assert tracer.stats()["dropped"] == {}
    written = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(written) == 1500 and len({line["span_id"] for line in written}) == 1500
    assert {line["cost_usd"] for line in written} == {0.00175}


def test_a_flush_keeps_to_its_timeout_while_a_file_waits_for_a_stalled_transport(server: ProviderServer) -> None:
    class Stalled(BatchingTransport):
        def __init__(self) -> None:
            super().__init__("tokentrace.stalled", max_queue=100_000)
            self.release = threading.Event()

        def export(self, batch: list[Span]) -> None:
            self.release.wait(30)
            self.counters.written += len(batch)

    transport = Stalled()
    with (
        Tracer(transport=transport) as tracer,
        openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw,
    ):
        tracer.instrument(raw).files.content("batch-output-600")  # the reader waits for its first 500
        started = time.monotonic()
        assert tracer.flush(0.5) is False  # not done, and said so
        assert time.monotonic() - started < 10  # rather than waiting for the reader's own limit
        transport.release.set()
        assert tracer.flush(30)
        assert tracer.stats()["written"] == 600


def test_with_no_thread_to_be_had_the_file_is_read_at_once(
    client: openai.OpenAI, traced: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Refused(threading.Thread):
        def start(self) -> None:
            raise RuntimeError("can't create new thread at interpreter shutdown")

    # the integration's threads only: the fake provider's keep theirs
    monkeypatch.setattr(_calls, "threading", SimpleNamespace(**{**vars(threading), "Thread": Refused}))
    client.files.content("batch-output")
    assert summary(traced[1]) == RESULTS  # read before the download returned
