"""HTTPTransport delivery rules against a real receiver on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.collector_kit import running
from tests.receiver import Answer, Receiver, free_port
from tokentrace import HTTPTransport, Span, Tracer
from tokentrace.server.collector import Collector


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    """A real collector (``tokentrace serve``'s app on SQLite) that wants the token ``s3cret``."""
    collector = Collector(tmp_path / "tokentrace.db", token="s3cret")
    yield collector
    collector.close()


@pytest.fixture
def collector_url(collector: Collector) -> Iterator[str]:
    with running(collector.app) as url:
        yield url


def send_spans(url: str, spans: list[Span]) -> Tracer:
    tracer = Tracer(transport=HTTPTransport(url, token="s3cret"))
    with tracer.trace("job") as trace:
        for span in spans:
            trace.record(span)
    assert tracer.flush(60)
    tracer.close()
    return tracer


def stored_names(collector: Collector) -> list[str]:
    return sorted(str(span.attributes["n"]) for span in collector.store.recent(100) if span.attributes)


def dropped_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("tokentrace dropped")]


def send(transport: HTTPTransport, count: int = 3, flush: float = 30.0) -> Tracer:
    tracer = Tracer(transport=transport)
    with tracer.trace("job") as t:
        for _ in range(count):
            t.record(Span(model="gpt-4o", provider="openai", prompt_tokens=10, comp_tokens=2))
    assert tracer.flush(flush)
    return tracer


def test_batches_post_the_ingest_body_with_the_token() -> None:
    with Receiver([Answer(202)]) as rx:
        tracer = send(HTTPTransport(rx.url, token="s3cret"))
        assert tracer.stats() == {"queued": 0, "written": 3, "dropped": {}, "unpriced": 0}
        tracer.close()
    [request] = rx.requests
    assert request.path == "/v1/spans"
    assert request.headers["Authorization"] == "Bearer s3cret"
    body = json.loads(request.body)
    assert list(body) == ["spans"] and len(body["spans"]) == 3
    assert body["spans"][0]["cost_usd"] == 0.000045


@pytest.mark.parametrize(
    ("path", "posted_to"),
    [
        ("", "/v1/spans"),
        ("/", "/v1/spans"),
        ("/v1/spans", "/v1/spans"),
        ("/v1/spans/", "/v1/spans"),
        ("/collector", "/collector/v1/spans"),
        ("/collector/v1/spans", "/collector/v1/spans"),
    ],
)
def test_the_url_may_be_the_base_or_the_ingest_endpoint(path: str, posted_to: str) -> None:
    with Receiver([Answer(202)]) as rx:
        send(HTTPTransport(rx.url + path)).close()
    assert [request.path for request in rx.requests] == [posted_to]


def test_503_three_times_then_200_is_delivered_once() -> None:
    with Receiver([Answer(503), Answer(503), Answer(503), Answer(202)]) as rx:
        tracer = send(HTTPTransport(rx.url, backoff=0.01))
        assert tracer.stats()["written"] == 3 and tracer.stats()["dropped"] == {}
        tracer.close()
    assert len(rx.requests) == 4
    assert len({r.body for r in rx.requests}) == 1


def test_400_is_not_retried_and_counted_as_dropped() -> None:
    with Receiver([Answer(400, b'{"error": "spans[0].model: expected str"}')]) as rx:
        tracer = send(HTTPTransport(rx.url, backoff=0.01))
        assert tracer.stats()["dropped"] == {"http_400": 3}
        tracer.close()
    assert len(rx.requests) == 1


def test_a_wrong_token_is_logged_with_what_the_collector_said(
    collector_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "tokentrace")
    tracer = send(HTTPTransport(collector_url, token="wrong"))
    tracer.close()
    assert tracer.stats()["dropped"] == {"http_401": 3}
    assert dropped_lines(caplog) == [
        f"tokentrace dropped 3 item(s): http_401 ({collector_url}/v1/spans: missing or wrong bearer token)"
    ]


def test_a_refusal_in_plain_text_is_logged_too(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "tokentrace")
    answer = Answer(403, b"<p>Blocked by\n policy</p>", headers={"Content-Type": "text/html"})
    with Receiver([answer]) as rx:
        send(HTTPTransport(rx.url)).close()
    assert dropped_lines(caplog) == [
        f"tokentrace dropped 3 item(s): http_403 ({rx.url}/v1/spans: <p>Blocked by policy</p>)"
    ]


def test_a_span_the_collector_refuses_costs_only_itself(collector: Collector, collector_url: str) -> None:
    def span(n: int, error: str | None = None) -> Span:
        return Span(model="gpt-4o", provider="openai", attributes={"n": n}, error=error)

    too_long = "APIError: " + "<html>" * 12_000  # an error page in the message: past the 65,536 characters taken
    spans = [span(0), span(1, too_long), span(2), span(3, too_long), span(4)]
    tracer = send_spans(collector_url, spans)
    assert (tracer.stats()["written"], tracer.stats()["dropped"]) == (3, {"http_400": 2})
    assert stored_names(collector) == ["0", "2", "4"]


def test_a_batch_too_large_is_sent_again_in_halves(collector: Collector, collector_url: str) -> None:
    megabyte, five = "x" * 1_000_000, "x" * 5_000_000  # the collector takes 4 MiB a request
    spans = [Span(model="gpt-4o", attributes={"n": n, "blob": megabyte}) for n in range(4)]
    spans.insert(2, Span(model="gpt-4o", attributes={"n": "alone", "blob": five}))
    tracer = send_spans(collector_url, spans)
    assert (tracer.stats()["written"], tracer.stats()["dropped"]) == (4, {"http_413": 1})
    assert stored_names(collector) == ["0", "1", "2", "3"]


def test_a_redirect_is_not_followed_and_the_log_says_where_it_points(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "tokentrace")
    moved = Answer(308, b"", headers={"Location": "https://tt.example.com/v1/spans"})
    with Receiver([moved]) as rx:
        tracer = send(HTTPTransport(rx.url, token="s3cret"))
        tracer.close()
    assert len(rx.requests) == 1 and tracer.stats()["dropped"] == {"http_308": 3}
    assert dropped_lines(caplog) == [
        f"tokentrace dropped 3 item(s): http_308 ({rx.url}/v1/spans: redirected to https://tt.example.com/v1/spans)"
    ]


def test_retry_after_is_respected() -> None:
    with Receiver([Answer(429, headers={"Retry-After": "2"}), Answer(202)]) as rx:
        tracer = send(HTTPTransport(rx.url, backoff=0.01))
        tracer.close()
    first, second = rx.requests
    assert second.at - first.at >= 1.9


def test_a_retry_after_of_zero_does_not_cut_the_backoff() -> None:
    with Receiver([Answer(503, headers={"Retry-After": "0"})]) as rx:
        tracer = send(HTTPTransport(rx.url, backoff=0.2, deadline=1))
        assert tracer.stats()["dropped"] == {"http_503": 3}
        tracer.close()
    assert 2 <= len(rx.requests) <= 5


def test_a_receiver_that_never_answers_is_cut_off_at_the_deadline() -> None:
    with Receiver([Answer(202, delay=5)]) as rx:
        tracer = Tracer(transport=HTTPTransport(rx.url, deadline=1.0, timeout=10))
        with tracer.trace("t") as t:
            t.record(Span(model="gpt-4o", provider="openai"))
        started = time.monotonic()
        tracer.flush(10)
        assert time.monotonic() - started < 4
        assert tracer.stats()["dropped"] == {"timeout": 1}
        tracer.close(0)


def test_an_answer_trickled_in_is_cut_off_at_the_timeout() -> None:
    with Receiver([Answer(202, trickle=True)]) as rx:
        tracer = Tracer(transport=HTTPTransport(rx.url, deadline=1.0, timeout=0.4, backoff=0.05))
        with tracer.trace("t") as t:
            t.record(Span(model="gpt-4o", provider="openai"))
        started = time.monotonic()
        tracer.flush(10)
        assert time.monotonic() - started < 4  # one answer alone takes 6 s to come
        assert tracer.stats()["dropped"] == {"timeout": 1}
        tracer.close(0)
    assert 2 <= len(rx.requests) <= 4


def test_connection_refused_is_retried_then_dropped() -> None:
    tracer = send(HTTPTransport(f"http://127.0.0.1:{free_port()}", deadline=0.5, backoff=0.05))
    assert tracer.stats()["dropped"] == {"connection_error": 3}
    tracer.close()


def test_full_queue_drops_the_newest_and_counts_them() -> None:
    with Receiver([Answer(202, delay=1)]) as rx:
        tracer = Tracer(transport=HTTPTransport(rx.url, max_queue=10, max_batch=10))
        for _ in range(3):
            with tracer.trace("t") as t:
                for _ in range(10):
                    t.record(Span(model="gpt-4o", provider="openai"))
        assert not tracer.flush(0.5)  # the slow receiver holds the first batch
        stats = tracer.stats()
        assert stats["dropped"]["queue_full"] >= 10
        tracer.close(5)
        assert tracer.stats()["written"] + tracer.stats()["dropped"]["queue_full"] == 30


@pytest.mark.parametrize("token", ["s3cret\n", " s3cret", "s3cr\x00t", "sécret"])
def test_a_token_no_header_can_carry_is_refused_at_construction_without_showing_it(token: str) -> None:
    # "s3cret\n" (a token read from a file) was sent on every batch, refused by httpx as a
    # protocol error, and counted as the collector being down
    with pytest.raises(ValueError) as refused:
        HTTPTransport("http://127.0.0.1:9090", token=token)
    assert str(refused.value) == (
        "HTTPTransport token must be printable ASCII text without a space or line break at either end "
        "(a secret read from a file keeps its newline: strip it)"
    )


def test_bad_url_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="HTTPTransport url must start with http:// or https://, got 'localhost:9090'"):
        HTTPTransport("localhost:9090")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_children_send_their_own_spans_and_never_the_parents_queue() -> None:
    with Receiver([Answer(202)]) as rx:
        tracer = Tracer(transport=HTTPTransport(rx.url, interval=60))
        with tracer.trace("parent") as t:
            t.record(Span(model="gpt-4o", provider="openai"))  # queued, not yet sent (interval 60 s)
        children = []
        for i in range(2):
            pid = os.fork()
            if pid == 0:  # child
                code = 0
                try:
                    with tracer.trace(f"child-{i}") as t:
                        t.record(Span(model="gpt-4o", provider="openai"))
                    code = 0 if tracer.flush(10) else 1
                finally:
                    os._exit(code)
            children.append(pid)
        for pid in children:
            assert os.waitpid(pid, 0)[1] == 0
        assert tracer.flush(10)
        tracer.close()
    names = sorted(s["name"] for r in rx.requests for s in json.loads(r.body)["spans"])
    assert names == ["child-0", "child-1", "parent"]


def test_a_batch_still_being_sent_at_close_is_counted_lost_once() -> None:
    with Receiver([Answer(202, delay=1.0)]) as rx:
        tracer = Tracer(transport=HTTPTransport(rx.url, deadline=5))
        with tracer.trace("t") as t:
            t.record(Span(model="gpt-4o", provider="openai"))
            t.record(Span(model="gpt-4o", provider="openai"))
        assert tracer._pipeline.settle(10)
        until = time.monotonic() + 5
        while not rx.requests and time.monotonic() < until:
            time.sleep(0.01)
        assert not tracer.close(0.1)
        assert tracer.stats()["dropped"] == {"shutdown_in_flight": 2}
        time.sleep(1.5)  # the send ends (its client was closed): not counted a second time
        assert tracer.stats()["dropped"] == {"shutdown_in_flight": 2} and tracer.stats()["written"] == 0
