"""GET /metrics: Prometheus text that parses, on a private registry, matching the stored totals."""

from __future__ import annotations

from decimal import Decimal

import httpx
import prometheus_client
from prometheus_client.parser import text_string_to_metric_families

import tokentrace
from tests.collector_kit import make_span, mixed_spans, post_spans
from tokentrace.server.collector import Collector
from tokentrace.server.prom import SpanCounters, render


def _samples(text: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def _total(samples: list, **labels: str) -> float:
    return sum(s.value for s in samples if all(s.labels.get(k) == v for k, v in labels.items()))


def test_counters_match_the_stored_totals(collector: Collector, client: httpx.Client) -> None:
    spans = mixed_spans(300)
    post_spans(client, spans)
    post_spans(client, spans[:10])  # resent: must not be counted twice
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    stored = collector.store.recent(1000)
    assert len(stored) == 300
    cost = sum((s.cost for s in stored if s.cost is not None), Decimal(0))
    assert _total(samples["tokentrace_cost_usd_total"]) == float(cost)
    assert _total(samples["tokentrace_cost_usd_total"], model="gpt-4o") == float(
        sum((s.cost for s in stored if s.model == "gpt-4o" and s.cost is not None), Decimal(0))
    )
    tokens = samples["tokentrace_tokens_total"]
    assert _total(tokens, type="prompt") == sum(s.prompt_tokens for s in stored)
    assert _total(tokens, type="completion") == sum(s.comp_tokens for s in stored)
    spans = samples["tokentrace_spans_total"]
    assert _total(spans, status="ok") == 270
    assert _total(spans, status="error") == 30
    assert _total(spans, model="claude-sonnet-4-5", provider="anthropic") == 100
    assert _total(samples["tokentrace_latency_seconds_count"]) == 300
    assert _total(samples["tokentrace_latency_seconds_sum"]) == sum(s.latency_ms or 0 for s in stored) / 1000
    inf = [s for s in samples["tokentrace_latency_seconds_bucket"] if s.labels["le"] == "+Inf"]
    assert sum(s.value for s in inf) == 300
    assert _total(samples["tokentrace_ingest_spans_total"], result="stored") == 300
    assert _total(samples["tokentrace_ingest_spans_total"], result="duplicate") == 10
    assert samples["tokentrace_transport_queued_spans"][0].value == 0


def test_rejected_requests_are_counted(client: httpx.Client) -> None:
    client.post("/v1/spans", content=b"{")
    client.post("/v1/spans", content=b"{")
    samples = _samples(client.get("/metrics").text)
    assert _total(samples["tokentrace_ingest_rejected_requests_total"], code="400") == 2


def test_the_global_registry_is_left_alone(client: httpx.Client) -> None:
    post_spans(client, [make_span()])
    client.get("/metrics")
    names = {m.name for m in prometheus_client.REGISTRY.collect()}
    assert not any(name.startswith("tokentrace") for name in names)


def test_latency_buckets_are_cumulative() -> None:
    counters = SpanCounters()
    counters.observe([make_span(latency=ms) for ms in (10, 60, 60, 700, 200_000)])
    samples = _samples(render(counters).decode())
    buckets = {s.labels["le"]: s.value for s in samples["tokentrace_latency_seconds_bucket"]}
    assert buckets["0.05"] == 1
    assert buckets["0.1"] == 3
    assert buckets["1.0"] == 4
    assert buckets["120.0"] == 4
    assert buckets["+Inf"] == 5


def test_label_pairs_are_capped() -> None:
    counters = SpanCounters()
    counters.observe([make_span(model=f"m-{i}", cost="1") for i in range(600)])
    samples = _samples(render(counters).decode())["tokentrace_cost_usd_total"]
    assert len(samples) == 501
    assert _total(samples) == 600
    assert _total(samples, model="other") == 100


def test_embedded_server_exposes_the_tracer_spans_and_queue() -> None:
    tracer = tokentrace.Tracer(http_server=tokentrace.HTTPServerConfig(addr="127.0.0.1:0"))
    try:
        for _ in range(3):
            with tracer.trace("job") as trace:
                trace.record(tokentrace.Span(model="gpt-4o", provider="openai", prompt_tokens=10, comp_tokens=5))
        samples = _samples(httpx.get(tracer._server.url + "/metrics").text)
    finally:
        tracer.close()
    assert _total(samples["tokentrace_spans_total"], model="gpt-4o", status="ok") == 3
    assert _total(samples["tokentrace_tokens_total"], type="prompt") == 30
    assert "tokentrace_transport_queued_spans" in samples
