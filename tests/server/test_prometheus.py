"""GET /metrics: Prometheus text that parses, on a private registry, matching the stored totals."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

import tokentrace
from tests.collector_kit import JSON_BODY, make_span, mixed_spans, post_spans, running
from tokentrace.server.collector import Collector
from tokentrace.server.prom import SpanCounters, render
from tokentrace.spans import now_ms


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
    client.post("/v1/spans", content=b"{", headers=JSON_BODY)
    client.post("/v1/spans", content=b"{", headers=JSON_BODY)
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


def _counted(collector: Collector) -> tuple[float, float, float]:
    """(spans, cost, latency observations) the collector's /metrics reports."""
    with running(collector.app) as url, httpx.Client(base_url=url) as http:
        samples = _samples(http.get("/metrics").text)
    return (
        _total(samples["tokentrace_spans_total"]),
        _total(samples["tokentrace_cost_usd_total"]),
        _total(samples["tokentrace_latency_seconds_count"]),
    )


def test_counters_go_on_across_restarts_and_keep_the_spans_pruned(tmp_path: Path) -> None:
    first_spans, later_spans = mixed_spans(100), mixed_spans(50, seed=3)
    cost = pytest.approx(float(sum((s.cost for s in first_spans + later_spans if s.cost is not None), Decimal(0))))
    first = Collector(tmp_path / "c.db")
    with running(first.app) as url, httpx.Client(base_url=url) as http:
        post_spans(http, first_spans)
        assert _total(_samples(http.get("/metrics").text)["tokentrace_spans_total"]) == 100  # kept after the scrape
        post_spans(http, later_spans)  # kept at close
    first.close()

    second = Collector(tmp_path / "c.db")
    try:
        assert _counted(second) == (150, cost, 150)
        assert second.store.prune(now_ms() + 60_000) == 150  # retention took every span
    finally:
        second.close()

    third = Collector(tmp_path / "c.db")
    try:
        assert third.store.count() == 0
        assert _counted(third) == (150, cost, 150)  # never below what Prometheus read before
        third.ingest(mixed_spans(10, seed=4))
        assert _counted(third)[0] == 160
    finally:
        third.close()


def test_counters_are_counted_from_the_spans_when_none_were_kept(tmp_path: Path, caplog: Any) -> None:
    spans = mixed_spans(40)
    first = Collector(tmp_path / "c.db")
    first.ingest(spans)
    first.close()
    for saved in (None, b'[["gpt-4o", "openai", "1.5", {}, {}, [1], 0, 0]]', b"not json"):
        with sqlite3.connect(tmp_path / "c.db") as db:  # a database from before they were kept, or spoilt
            if saved is None:
                db.execute("DELETE FROM meta")
            else:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('prometheus_counters', ?)", (saved,))
        restarted = Collector(tmp_path / "c.db")
        try:
            assert _counted(restarted)[0] == 40
        finally:
            restarted.close()
    assert [r.message.startswith("tokentrace counts its Prometheus counters again") for r in caplog.records] == [
        True,
        True,
    ]


def _series(counters: SpanCounters) -> list[Any]:
    """The totals per (model, provider), exactly as kept (costs as decimal text)."""
    return sorted(msgspec.json.decode(counters.state())["series"])


def _counted_alone(spans: list[Any]) -> list[Any]:
    reference = SpanCounters()
    reference.observe(spans)
    return _series(reference)


def _crash(collector: Collector) -> None:
    """Stop a collector the way a crash does: nothing more is kept."""
    collector.tracer.close()
    collector.store.close()


def test_spans_stored_after_the_last_keep_are_counted_after_a_crash(tmp_path: Path) -> None:
    scraped, unscraped = mixed_spans(60), mixed_spans(25, seed=5)
    first = Collector(tmp_path / "c.db")
    with running(first.app) as url, httpx.Client(base_url=url) as http:
        post_spans(http, scraped)
        assert _total(_samples(http.get("/metrics").text)["tokentrace_spans_total"]) == 60  # kept now
        post_spans(http, unscraped)
        post_spans(http, scraped[:10])  # a resend: stored once, counted once
    _crash(first)

    second = Collector(tmp_path / "c.db")
    try:
        assert _series(second.counters) == _counted_alone(scraped + unscraped)
        assert second.counters.rows == [(0, 85)]
        later = mixed_spans(5, seed=6)
        second.ingest(later)
        assert second.counters.rows == [(0, 90)]
    finally:
        second.close()
    third = Collector(tmp_path / "c.db")  # after a clean stop: nothing to count again
    try:
        assert _series(third.counters) == _counted_alone(scraped + unscraped + later)
    finally:
        third.close()


def test_after_a_crash_rows_stored_between_counted_ones_are_counted_too(tmp_path: Path) -> None:
    first, middle, last, after = (
        mixed_spans(10),
        mixed_spans(10, seed=2),
        mixed_spans(10, seed=3),
        mixed_spans(4, seed=4),
    )
    collector = Collector(tmp_path / "c.db")
    rows = [collector.store.add_numbered(part)[1] for part in (first, middle, last, after)]
    assert rows == [range(1, 11), range(11, 21), range(21, 31), range(31, 35)]
    assert collector.store.add_numbered(first[:3] + after[:1]) == ([], range(0))  # all stored before
    _crash(collector)
    # kept while the middle batch was stored but not counted yet, and before the last one
    kept = SpanCounters()
    kept.rows = [(0, 0)]
    kept.observe(first, rows[0])
    kept.observe(last, rows[2])
    assert kept.rows == [(0, 10), (21, 30)]
    with sqlite3.connect(tmp_path / "c.db") as db:
        db.execute("INSERT OR REPLACE INTO meta VALUES ('prometheus_counters', ?)", (kept.state(),))

    restarted = Collector(tmp_path / "c.db")
    try:
        assert _series(restarted.counters) == _counted_alone(first + last + middle + after)
        assert restarted.counters.rows == [(0, 34)]
    finally:
        restarted.close()


def test_counters_kept_without_their_rows_are_taken_back_as_they_are(tmp_path: Path) -> None:
    spans = mixed_spans(12)
    collector = Collector(tmp_path / "c.db")
    collector.ingest(spans)
    _crash(collector)
    old = SpanCounters()  # as a version that kept the totals alone wrote them
    old.observe(spans[:5])
    saved = msgspec.json.encode(msgspec.json.decode(old.state())["series"])
    with sqlite3.connect(tmp_path / "c.db") as db:
        db.execute("INSERT OR REPLACE INTO meta VALUES ('prometheus_counters', ?)", (saved,))

    restarted = Collector(tmp_path / "c.db")
    try:
        assert _series(restarted.counters) == _counted_alone(spans[:5])
        assert restarted.counters.rows == [(0, 12)]
    finally:
        restarted.close()
