"""POST /v1/spans: durable, idempotent, all-or-nothing per batch, size-capped, gzip-aware."""

from __future__ import annotations

import gzip
import itertools
import json
import sqlite3
from datetime import datetime, timezone
from decimal import Decimal

import httpx
import pytest

import tokentrace
from tests.collector_kit import JSON_BODY, make_span, mixed_spans, post_spans, running
from tokentrace import pricing
from tokentrace.server.app import make_app
from tokentrace.server.collector import Collector
from tokentrace.server.ingest import MAX_BODY_BYTES
from tokentrace.spans import encode_batch
from tokentrace.store import MemoryStore, StoreBusyError, StoreError
from tokentrace.windows import WindowAggregator


def _rows(collector: Collector) -> int:
    with sqlite3.connect(collector.store.path) as db:
        return int(db.execute("SELECT COUNT(*) FROM spans").fetchone()[0])


def _wire(count: int = 5) -> list[dict]:
    return json.loads(encode_batch(mixed_spans(count)))["spans"]


def _post_json(client: httpx.Client, spans: list[dict]) -> httpx.Response:
    return client.post("/v1/spans", json={"spans": spans})


def test_accepted_only_once_stored(collector: Collector, client: httpx.Client) -> None:
    spans = mixed_spans(40)
    response = post_spans(client, spans)
    assert response.status_code == 202
    assert response.json() == {"accepted": 40, "duplicates": 0}
    assert _rows(collector) == 40


def test_resent_batch_is_stored_and_counted_once(collector: Collector, client: httpx.Client) -> None:
    spans = mixed_spans(30)
    post_spans(client, spans[:20])
    response = post_spans(client, spans)
    assert response.json() == {"accepted": 30, "duplicates": 20}
    assert _rows(collector) == 30
    assert client.get("/metrics/cost").json()["span_count"] == 30


def test_duplicates_inside_one_batch_count_once(collector: Collector, client: httpx.Client) -> None:
    span = make_span()
    assert post_spans(client, [span, span]).json() == {"accepted": 2, "duplicates": 1}
    assert _rows(collector) == 1


def test_one_bad_span_rejects_the_whole_batch(collector: Collector, client: httpx.Client) -> None:
    spans = _wire(6)
    spans[3]["prompt_tokens"] = -5
    response = _post_json(client, spans)
    assert response.status_code == 400
    body = response.json()
    assert body["span_index"] == 3
    assert body["field"] == "prompt_tokens"
    assert body["error"].startswith("spans[3].prompt_tokens: ")
    assert _rows(collector) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("prompt_tokens", "12"),
        ("comp_tokens", 1.5),
        ("latency_ms", True),
        ("total_tokens", 2**64),
        ("cached_tokens", 2**60),
        ("status", "maybe"),
        ("cost_usd", "NaN"),
        ("cost_usd", -0.5),
        ("cost_usd", "1e400"),
        ("started_at", "yesterday"),
        ("ended_at", "2026-03-15T14:23:01"),
        ("ended_at", "9999-12-31T23:59:59-01:00"),  # year 10000 in UTC: no wire timestamp can say it
        ("started_at", "1969-12-31T23:59:59.999Z"),
        ("span_id", ""),
        ("trace_id", "x" * 200),
        ("model", 7),
        ("attributes", {"a": json.loads("[" * 40 + "1" + "]" * 40)}),
    ],
)
def test_a_bad_field_is_named(client: httpx.Client, field: str, value: object) -> None:
    spans = _wire(3)
    spans[1][field] = value
    response = _post_json(client, spans)
    assert response.status_code == 400
    body = response.json()
    assert (body["span_index"], body["field"]) == (1, field)
    assert body["error"].startswith(f"spans[1].{field}: ")


def test_missing_field_and_inconsistent_values_are_named(client: httpx.Client) -> None:
    spans = _wire(3)
    del spans[0]["span_id"]
    assert _post_json(client, spans).json()["field"] == "span_id"
    spans = _wire(3)
    spans[2]["total_tokens"] += 1
    assert _post_json(client, spans).json()["field"] == "total_tokens"
    spans = _wire(3)
    spans[2]["ended_at"] = "2000-01-01T00:00:00.000Z"
    assert _post_json(client, spans).json()["field"] == "ended_at"


@pytest.mark.parametrize(
    ("body", "starts"),
    [
        (b"", "the body is empty"),
        (b"{", "the body is not valid JSON"),
        (b"[]", 'the body must be {"spans": [<span>, ...]}'),
        (b'{"spans": {}}', 'the body must be {"spans": [<span>, ...]}'),
        (b'{"spans": [1]}', "spans[0]: Expected `object`"),
        (b"[" * 100_000 + b"]" * 100_000, "the body"),
    ],
)
def test_malformed_bodies_are_400(client: httpx.Client, body: bytes, starts: str) -> None:
    response = client.post("/v1/spans", content=body, headers=JSON_BODY)
    assert response.status_code == 400
    assert response.json()["error"].startswith(starts)


def test_gzip_body_is_accepted(collector: Collector, client: httpx.Client) -> None:
    body = gzip.compress(encode_batch(mixed_spans(25)))
    response = client.post("/v1/spans", content=body, headers={**JSON_BODY, "Content-Encoding": "gzip"})
    assert response.json() == {"accepted": 25, "duplicates": 0}
    assert _rows(collector) == 25


def test_limit_applies_after_decompression(collector: Collector, client: httpx.Client) -> None:
    padding = "x" * 1000
    span = json.loads(encode_batch([make_span()]))["spans"][0]
    huge = json.dumps({"spans": [span], "pad": [padding] * (MAX_BODY_BYTES // 1000 + 10)}).encode()
    body = gzip.compress(huge)
    assert len(body) < MAX_BODY_BYTES // 50
    response = client.post("/v1/spans", content=body, headers={**JSON_BODY, "Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert response.json()["error"] == (
        f"the body is larger than {MAX_BODY_BYTES} bytes (after decompression); send smaller batches"
    )
    assert _rows(collector) == 0


def test_plain_body_over_the_limit_is_413(client: httpx.Client) -> None:
    response = client.post("/v1/spans", content=b" " * (MAX_BODY_BYTES + 1), headers=JSON_BODY)
    assert response.status_code == 413


def test_chunked_body_over_the_limit_is_413(client: httpx.Client) -> None:
    def chunks():  # no Content-Length: the limit is enforced while streaming
        for _ in range(5):
            yield b" " * (1024 * 1024)

    response = client.post("/v1/spans", content=chunks(), headers=JSON_BODY)
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("headers", "body", "status", "starts"),
    [
        ({"Content-Encoding": "br"}, b"{}", 415, "Content-Encoding must be gzip or identity"),
        ({"Content-Encoding": "gzip"}, b"not gzip at all", 400, "the gzip body is corrupt"),
        ({"Content-Encoding": "gzip"}, gzip.compress(b'{"spans": []}')[:-12], 400, "the gzip body is truncated"),
    ],
)
def test_encoding_problems(client: httpx.Client, headers: dict, body: bytes, status: int, starts: str) -> None:
    response = client.post("/v1/spans", content=body, headers={**JSON_BODY, **headers})
    assert response.status_code == status
    assert response.json()["error"].startswith(starts)


def _members(body: bytes, count: int) -> bytes:
    """``body`` gzipped as ``count`` members, one after the other, cut at arbitrary bytes."""
    cuts = [len(body) * i // count for i in range(count + 1)]
    return b"".join(gzip.compress(body[a:b]) for a, b in itertools.pairwise(cuts))


def test_a_gzip_body_of_several_members_is_read_whole(collector: Collector, client: httpx.Client) -> None:
    body = _members(encode_batch(mixed_spans(30)), 3)  # as `cat a.gz b.gz c.gz` makes
    response = client.post("/v1/spans", content=body, headers={**JSON_BODY, "Content-Encoding": "gzip"})
    assert response.json() == {"accepted": 30, "duplicates": 0}
    assert _rows(collector) == 30


def test_gzip_members_are_read_across_any_chunking(collector: Collector, client: httpx.Client) -> None:
    body = _members(encode_batch(mixed_spans(12)), 4)

    def chunks():  # 7 bytes at a time: members' headers and trailers are cut too
        for start in range(0, len(body), 7):
            yield body[start : start + 7]

    response = client.post("/v1/spans", content=chunks(), headers={**JSON_BODY, "Content-Encoding": "gzip"})
    assert response.json() == {"accepted": 12, "duplicates": 0}
    assert _rows(collector) == 12


@pytest.mark.parametrize(
    ("after", "error"),
    [
        (
            b"THIS IS NOT GZIP",
            "the gzip body is corrupt at member 2 (only a gzip member may follow one): "
            "Error -3 while decompressing data: incorrect header check",
        ),
        (
            b"\0" * 8,
            "the gzip body is corrupt at member 2 (only a gzip member may follow one): "
            "Error -3 while decompressing data: incorrect header check",
        ),
        (b"X", "the gzip body is truncated: it ends inside member 2, or what follows member 1 is not gzip"),
        (
            gzip.compress(b"more")[:-3],
            "the gzip body is truncated: it ends inside member 2, or what follows member 1 is not gzip",
        ),
    ],
    ids=["text", "zeros", "one-byte", "cut-member"],
)
def test_bytes_after_a_gzip_member_that_are_not_one_are_refused(
    collector: Collector, client: httpx.Client, after: bytes, error: str
) -> None:
    body = gzip.compress(encode_batch(mixed_spans(3))) + after  # the first member alone is a valid batch
    response = client.post("/v1/spans", content=body, headers={**JSON_BODY, "Content-Encoding": "gzip"})
    assert (response.status_code, response.json()) == (400, {"error": error})
    assert _rows(collector) == 0


def test_the_limit_applies_to_all_gzip_members_together(collector: Collector, client: httpx.Client) -> None:
    span = json.loads(encode_batch([make_span()]))["spans"][0]
    huge = json.dumps({"spans": [span], "pad": ["x" * 1000] * (MAX_BODY_BYTES // 1000 + 10)}).encode()
    body = _members(huge, 2)  # each member under the limit, both over it
    response = client.post("/v1/spans", content=body, headers={**JSON_BODY, "Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert _rows(collector) == 0


def test_a_gzip_body_has_at_most_a_thousand_members(collector: Collector, client: httpx.Client) -> None:
    batch = encode_batch(mixed_spans(5))
    gzipped = {**JSON_BODY, "Content-Encoding": "gzip"}
    response = client.post("/v1/spans", content=_members(batch, 1000), headers=gzipped)
    assert response.json() == {"accepted": 5, "duplicates": 0}
    body = _members(batch, 1000) + gzip.compress(b"")
    response = client.post("/v1/spans", content=body, headers={**JSON_BODY, "Content-Encoding": "gzip"})
    assert (response.status_code, response.json()) == (400, {"error": "the gzip body has more than 1000 members"})


def test_unpriced_spans_are_priced_before_they_are_stored(collector: Collector, client: httpx.Client) -> None:
    span = make_span(model="gpt-4o", cost=None, prompt=1000, comp=100)
    post_spans(client, [span])
    expected = pricing.price("gpt-4o", tokentrace.Usage(prompt_tokens=1000, completion_tokens=100))
    stored = collector.store.recent(1)[0]
    assert stored.cost == expected
    assert Decimal(client.get("/metrics/cost").text.split('"total_usd":')[1].split(",")[0]) == expected


def test_spans_sent_unpriced_are_priced_at_the_rates_of_their_time(collector: Collector, client: httpx.Client) -> None:
    # deepseek-chat costs half from 16:30 to 00:30 UTC: a resent batch from last night is priced so
    night, day = (int(datetime(2026, 11, 28, hour, tzinfo=timezone.utc).timestamp() * 1000) for hour in (20, 12))
    spans = [
        make_span(model="deepseek-chat", provider="deepseek", cost=None, prompt=1000, comp=100, ended_ms=ended)
        for ended in (night, day)
    ]
    post_spans(client, spans)
    stored = {span.ended_at: span.cost for span in collector.store.recent(2)}
    assert stored == {night: Decimal("0.00019"), day: Decimal("0.00038")}


def test_a_span_priced_here_above_the_cost_limit_is_refused(collector: Collector, client: httpx.Client) -> None:
    # no call uses 2**52 tokens; a sent cost of that size is refused, so one priced here is too
    huge = make_span(model="o1-pro", cost=None, prompt=2**52 - 1, comp=2**52 - 1)
    response = post_spans(client, [make_span(), huge])
    assert response.status_code == 400
    assert response.json()["error"].startswith("spans[1]: its tokens cost ")
    assert response.json()["error"].endswith(" USD, more than the 1000000 a span may cost")
    assert response.json()["span_index"] == 1  # named, so that HTTPTransport sends the others again
    assert _rows(collector) == 0
    assert client.get("/metrics/cost").json()["span_count"] == 0


def test_http_transport_delivers_to_the_collector(collector: Collector, client: httpx.Client) -> None:
    tracer = tokentrace.Tracer(transport=tokentrace.HTTPTransport(str(client.base_url)))
    for i in range(20):
        with tracer.trace(f"job-{i % 2}") as trace:
            trace.record(tokentrace.Span(model="gpt-4o-mini", provider="openai", prompt_tokens=100, comp_tokens=10))
    assert tracer.flush(10)
    tracer.close()
    assert _rows(collector) == 20
    assert tracer.stats()["written"] == 20
    body = client.get("/metrics/cost").json()
    assert body["span_count"] == 20


def test_a_busy_store_answers_503_with_retry_after() -> None:
    def busy(spans: list) -> int:
        raise StoreBusyError("200000 spans are waiting to be written; retry later")

    app = make_app(WindowAggregator(), MemoryStore(), ingest=busy)
    with running(app) as url:
        response = httpx.post(url + "/v1/spans", content=encode_batch([make_span()]), headers=JSON_BODY)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json() == {"error": "the collector is busy: 200000 spans are waiting to be written; retry later"}


def test_a_failing_store_answers_503() -> None:
    def broken(spans: list) -> int:
        raise StoreError("disk I/O error")

    app = make_app(WindowAggregator(), MemoryStore(), ingest=broken)
    with running(app) as url:
        response = httpx.post(url + "/v1/spans", content=encode_batch([make_span()]), headers=JSON_BODY)
    assert response.status_code == 503
    assert response.json() == {"error": "the span store is unavailable: disk I/O error"}


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonp"],
)
def test_a_body_not_sent_as_json_is_refused_as_a_web_page_could_send_it(
    collector: Collector, client: httpx.Client, content_type: str | None
) -> None:
    # what a page in the browser may post to 127.0.0.1 without the browser asking the collector first
    headers = {"Origin": "https://elsewhere.example"} | ({} if content_type is None else {"Content-Type": content_type})
    response = client.post("/v1/spans", content=encode_batch(mixed_spans(3)), headers=headers)
    assert (response.status_code, response.json()) == (
        415,
        {"error": f"Content-Type must be application/json, got {content_type!r}"},
    )
    assert _rows(collector) == 0


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON; charset=utf-8"])
def test_json_with_or_without_parameters_is_taken(client: httpx.Client, content_type: str) -> None:
    response = client.post("/v1/spans", content=encode_batch(mixed_spans(3)), headers={"Content-Type": content_type})
    assert response.json() == {"accepted": 3, "duplicates": 0}
