"""Traces, spans, context propagation and the never-raise promise of the record path."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from decimal import Decimal
from pathlib import Path

import pytest

import tokentrace
from tokentrace import Span, Status, Tracer
from tokentrace.store.sqlite import SQLiteStore
from tokentrace.testing import InMemoryTransport, capture_spans


def test_record_fills_ids_name_times_and_cost() -> None:
    with capture_spans() as (tracer, spans):
        trace = tracer.start("summarize-document")
        trace.record(Span(model="gpt-4o", provider="openai", prompt_tokens=512, comp_tokens=128, latency_ms=1240))
        assert spans == []  # nothing leaves before end()
        trace.end()
    [span] = spans
    assert span.name == "summarize-document"
    assert span.trace_id == trace.trace_id and span.span_id and span.parent_span_id is None
    assert span.ended_at is not None and span.started_at == span.ended_at - 1240
    assert span.cost == Decimal("0.00256") and span.cost_source == "genai-prices"


def test_user_cost_is_kept_and_provider_is_filled_from_the_table() -> None:
    with capture_spans() as (tracer, spans), tracer.trace("t") as t:
        t.record(Span(model="gpt-4o", cost=0.5))
        t.record(Span(model="claude-sonnet-4-5", prompt_tokens=1000))
    assert (spans[0].cost, spans[0].cost_source, spans[0].provider) == (Decimal("0.5"), None, "")
    assert (spans[1].cost, spans[1].provider) == (Decimal("0.003"), "anthropic")


def test_unknown_model_gets_null_cost_and_is_counted_once(tmp_path: Path) -> None:
    for transport in (InMemoryTransport(), tokentrace.FileTransport(tmp_path / "t.jsonl")):
        tracer = Tracer(transport=transport)
        with tracer.trace("t") as t:
            t.record(Span(model="no-such-model-xyz", provider="acme", prompt_tokens=5))
        assert tracer.flush(10)
        assert tracer.stats()["unpriced"] == 1
        tracer.close()
    assert json.loads((tmp_path / "t.jsonl").read_text())["cost_usd"] is None


def test_record_error_marks_the_last_span_or_records_one() -> None:
    with capture_spans() as (tracer, spans):
        trace = tracer.start("a")
        trace.record(Span(model="gpt-4o", provider="openai"))
        trace.record_error(TimeoutError("model took too long"))
        trace.end()
        empty = tracer.start("b")
        empty.record_error(ValueError("bad prompt"))
        empty.end()
    assert (spans[0].status, spans[0].error) == (Status.ERROR, "TimeoutError: model took too long")
    assert (spans[1].name, spans[1].model, spans[1].status, spans[1].error) == (
        "b",
        "",
        Status.ERROR,
        "ValueError: bad prompt",
    )
    assert spans[1].cost is None


def test_record_error_after_end_records_an_error_span_of_its_own(tmp_path: Path) -> None:
    tracer = Tracer(transport=tokentrace.FileTransport(tmp_path / "t.jsonl"))
    trace = tracer.start("a")
    trace.record(Span(model="gpt-4o", provider="openai", latency_ms=100))
    trace.end()  # its span is on its way: it is not changed any more
    trace.record_error(TimeoutError("the retry timed out"))
    assert tracer.flush(10)
    tracer.close()
    lines = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert [(s["name"], s["model"], s["status"], s.get("error")) for s in lines] == [
        ("a", "gpt-4o", "ok", None),
        ("a", "", "error", "TimeoutError: the retry timed out"),
    ]
    assert lines[0]["trace_id"] == lines[1]["trace_id"]


def test_a_span_recorded_without_times_or_latency_has_no_latency() -> None:
    with capture_spans() as (tracer, spans), tracer.trace("t") as t:
        t.record(Span(model="gpt-4o", provider="openai", latency_ms=1000))
        t.record(Span(model="gpt-4o", provider="openai"))  # nothing measured
        t.record(Span(model="gpt-4o", provider="openai", started_at=tokentrace.spans.now_ms() + 86_400_000))
    assert tracer.settle(10)
    measured, unmeasured, ahead = spans
    assert measured.latency_ms == 1000 and measured.ended_at - measured.started_at == 1000
    assert unmeasured.latency_ms is None and unmeasured.started_at == unmeasured.ended_at
    assert json.loads(tokentrace.spans.encode_lines([unmeasured]))["latency_ms"] is None
    assert tracer.aggregator.metric("latency_avg", "1h") == 500.0  # 1000 and 0 ms: the unmeasured one is not a 0
    assert ahead.latency_ms == 0 and ahead.ended_at == ahead.started_at  # a clock ahead: never ends first


def test_set_usage_with_no_usage_or_an_unreadable_one_never_raises() -> None:
    with capture_spans() as (tracer, spans), tracer.trace("t") as t:
        with t.span(model="gpt-4o", provider="openai") as s:
            s.set_usage(None)  # a stream that did not report its usage
        with t.span(model="gpt-4o", provider="openai") as s:
            s.set_usage(["not", "a", "usage"])
    assert tracer.settle(10)
    for span in spans:
        assert (span.status, span.prompt_tokens, span.cost) == (Status.OK, 0, Decimal(0))
        assert span.attributes == {"tokentrace.usage.reported": False}
    assert tracer.stats()["dropped"] == {"invalid_usage": 1}


def test_with_block_marks_error_and_reraises() -> None:
    with capture_spans() as (tracer, spans), pytest.raises(KeyError), tracer.trace("job") as t:
        t.record(Span(model="gpt-4o", provider="openai"))
        raise KeyError("missing")
    assert spans[0].status == Status.ERROR and spans[0].error == "KeyError: 'missing'"


def test_span_block_measures_latency_usage_and_errors() -> None:
    usage = {"prompt_tokens": 1000, "completion_tokens": 100, "prompt_tokens_details": {"cached_tokens": 800}}
    with capture_spans() as (tracer, spans), tracer.trace("job") as t:
        with t.span(model="gpt-4o", provider="openai") as s:
            s.set_usage(usage)
        with pytest.raises(RuntimeError), t.span(model="gpt-4o", provider="openai"):
            raise RuntimeError("boom")
    ok, failed = spans
    assert (ok.prompt_tokens, ok.comp_tokens, ok.cached_tokens, ok.cost) == (1000, 100, 800, Decimal("0.0025"))
    assert ok.latency_ms is not None and ok.ended_at == (ok.started_at or 0) + ok.latency_ms
    assert (failed.status, failed.error) == (Status.ERROR, "RuntimeError: boom")


def test_span_block_takes_the_cost_the_provider_reported_unless_one_was_given() -> None:
    openrouter = {"prompt_tokens": 1000, "completion_tokens": 100, "cost": 0.00213}  # the table says 0.0035
    with capture_spans() as (tracer, spans), tracer.trace("job") as t:
        with t.span(model="openai/gpt-4o", provider="openrouter") as s:
            s.set_usage(openrouter)
        with t.span(model="openai/gpt-4o", provider="openrouter", cost=Decimal("0.01")) as s:
            s.set_usage(openrouter)  # a cost set by hand stays
        with t.span(model="openai/gpt-4o", provider="openrouter") as s:
            s.set_usage({**openrouter, "cost": -1})  # not an amount: the table prices the tokens
        with t.span(model="openai/gpt-4o", provider="openrouter") as s:
            s.set_usage(openrouter)
            s.set_usage({"prompt_tokens": 2000, "completion_tokens": 100})  # a later usage without a cost
    assert [(s.cost, s.cost_source) for s in spans] == [
        (Decimal("0.00213"), "provider"),
        (Decimal("0.01"), None),
        (Decimal("0.0035"), "genai-prices"),
        (Decimal("0.006"), "genai-prices"),  # not the first usage's cost
    ]
    assert json.loads(tokentrace.spans.encode_lines(spans[:1]))["cost_source"] == "provider"


def test_span_block_prices_one_hour_cache_writes_from_the_usage_it_was_given() -> None:
    usage = {"input_tokens": 100, "output_tokens": 200, "cache_read_input_tokens": 2000,
             "cache_creation_input_tokens": 500, "cache_creation": {"ephemeral_1h_input_tokens": 200}}  # fmt: skip
    with capture_spans() as (tracer, spans), tracer.trace("job") as t:
        with t.span("", provider="anthropic") as s:
            s.set_usage(usage)
            s.set_model("claude-sonnet-4-0")  # the model may come after the usage
    [span] = spans
    assert (span.prompt_tokens, span.cached_tokens, span.cache_write_tokens) == (2600, 2000, 500)
    assert span.cost == Decimal("0.006225")  # 200 of the writes at the one-hour rate ($6, not $3.75)
    assert span.attributes == {"tokentrace.usage.cache_write_1h_tokens": 200}  # which price it anywhere


@pytest.mark.parametrize(
    ("model", "reported", "cost", "attributes"),
    [
        # fast mode: $10 / $50 per Mtok, twice the standard rates
        ("claude-opus-4-8", {"speed": "fast"}, "0.015", {"anthropic.response.speed": "fast"}),
        # a message batch's result: $1.50 / $7.50 per Mtok, half the standard rates
        ("claude-sonnet-4-5", {"service_tier": "batch"}, "0.00225", {"tokentrace.batch": True}),
    ],
)
def test_span_block_prices_the_rates_the_usage_it_was_given_reports(
    model: str, reported: dict[str, str], cost: str, attributes: dict[str, object]
) -> None:
    usage = {"input_tokens": 1000, "output_tokens": 100, "cache_read_input_tokens": 0, **reported}
    with capture_spans() as (tracer, spans), tracer.trace("job") as t:
        with t.span(model=model, provider="anthropic") as s:
            s.set_usage(usage)
    [span] = spans
    assert span.cost == Decimal(cost)
    assert span.attributes == attributes


def test_nested_trace_joins_the_outer_trace_with_the_enclosing_span_as_parent() -> None:
    with capture_spans() as (tracer, spans):
        with tracer.trace("outer") as outer, outer.span(model="gpt-4o", provider="openai") as parent:
            with tracer.trace("inner") as inner:
                inner.record(Span(model="gpt-4o-mini", provider="openai"))
    inner_span, outer_span = spans
    assert inner_span.trace_id == outer_span.trace_id == outer.trace_id
    assert inner_span.parent_span_id == parent.span.span_id == outer_span.span_id
    assert inner_span.name == "inner"


def test_context_is_per_thread_and_per_task() -> None:
    with capture_spans() as (tracer, spans):

        def worker(i: int) -> None:
            with tracer.trace(f"thread-{i}") as t, t.span(model="gpt-4o", provider="openai"):
                with tracer.trace("child") as child:
                    child.record(Span(model="gpt-4o", provider="openai"))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()

        async def task(i: int) -> None:
            with tracer.trace(f"task-{i}") as t, t.span(model="gpt-4o", provider="openai"):
                await asyncio.sleep(0)
                with tracer.trace("child") as child:
                    child.record(Span(model="gpt-4o", provider="openai"))

        async def main() -> None:
            await asyncio.gather(*(task(i) for i in range(4)))

        asyncio.run(main())
    parents = {s.span_id: s for s in spans if s.name != "child"}
    children = [s for s in spans if s.name == "child"]
    assert len(parents) == 8 and len(children) == 8
    for child in children:
        parent = parents[child.parent_span_id or ""]
        assert child.trace_id == parent.trace_id
    assert len({c.parent_span_id for c in children}) == 8


def test_closed_tracer_drops_and_counts_without_raising() -> None:
    transport = InMemoryTransport()
    tracer = Tracer(transport=transport)
    tracer.close()
    trace = tracer.start("late")
    trace.record(Span(model="gpt-4o"))
    trace.end()
    assert transport.spans == []
    assert tracer.stats()["dropped"] == {"closed": 1}


def test_record_of_a_non_span_is_counted_not_raised() -> None:
    with capture_spans() as (tracer, spans):
        with tracer.trace("t") as t:
            t.record({"model": "gpt-4o"})  # type: ignore[arg-type]
        assert tracer.stats()["dropped"] == {"invalid_span": 1}
    assert spans == []


def test_a_span_recorded_twice_is_two_spans_in_the_file_the_store_and_the_metrics(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "spans.db")
    tracer = Tracer(transport=tokentrace.FileTransport(tmp_path / "t.jsonl"))
    tracer.add_sink(store.add)
    span = Span(model="gpt-4o", provider="openai", prompt_tokens=512, comp_tokens=128, latency_ms=1240)
    first, second = tracer.start("first"), tracer.start("second")
    first.record(span)
    first.record(span)
    second.record(span)
    first.end()
    second.end()
    assert tracer.flush(10)
    lines = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert [(s["trace_id"], s["name"]) for s in lines] == [
        (first.trace_id, "first"),
        (first.trace_id, "first"),
        (second.trace_id, "second"),
    ]
    assert len({s["span_id"] for s in lines}) == 3
    assert store.count() == 3 and tracer.metrics("1h").span_count == 3
    assert (span.name, span.trace_id, span.span_id, span.started_at, span.cost) == (None, None, None, None, None)
    tracer.close()
    store.close()


def test_a_span_changed_and_recorded_again_keeps_what_each_record_saw() -> None:
    with capture_spans() as (tracer, spans):
        attributes = {"step": 0}
        span = Span(model="gpt-4o", provider="openai", latency_ms=100, attributes=attributes)
        with tracer.trace("loop") as t:
            for step in range(3):
                span.prompt_tokens = step * 10
                attributes["step"] = step
                t.record(span)
            span.prompt_tokens = 99  # after the last record: changes nothing recorded
    assert [(s.prompt_tokens, s.attributes) for s in spans] == [(0, {"step": 0}), (10, {"step": 1}), (20, {"step": 2})]
    assert len({s.span_id for s in spans}) == 3


def test_a_span_id_given_by_the_caller_is_kept() -> None:
    with capture_spans() as (tracer, spans), tracer.trace("t") as t:
        t.record(Span(model="gpt-4o", span_id="my-span"))
    assert [s.span_id for s in spans] == ["my-span"]


def test_a_span_recorded_after_end_is_still_delivered() -> None:
    with capture_spans() as (tracer, spans):
        trace = tracer.start("t")
        trace.end()
        trace.record(Span(model="gpt-4o", provider="openai"))
    assert len(spans) == 1


def test_a_span_recorded_while_another_thread_ends_the_trace_is_delivered_once() -> None:
    with capture_spans() as (tracer, spans):
        trace = tracer.start("t")
        trace.record(Span(model="gpt-4o", provider="openai", prompt_tokens=1))
        ender = threading.Thread(target=trace.end)

        class EndsMidAppend(list[Span]):
            """Lets the other thread end the trace, and its spans leave, in the middle of record()."""

            def append(self, span: Span) -> None:
                ender.start()
                ender.join(0.2)  # unless record() holds end() off, the trace has ended by now
                tracer.flush(5)
                super().append(span)

        trace._spans = EndsMidAppend(trace._spans)
        trace.record(Span(model="gpt-4o", provider="openai", prompt_tokens=2))
        ender.join(5)
    assert sorted(span.prompt_tokens for span in spans) == [1, 2]
    assert len({span.trace_id for span in spans}) == 1


def test_a_span_added_just_before_another_thread_ends_the_trace_goes_out_once() -> None:
    with capture_spans() as (tracer, spans):
        trace = tracer.start("t")
        trace.record(Span(model="gpt-4o", provider="openai", prompt_tokens=1))
        ender = threading.Thread(target=trace.end)

        class EndsAfterAppend(list[Span]):
            """Lets the other thread end the trace, and its spans leave, once the span is added
            but before record() has looked whether the trace ended."""

            def append(self, span: Span) -> None:
                super().append(span)
                ender.start()
                ender.join(0.2)
                tracer.flush(5)

        trace._spans = EndsAfterAppend(trace._spans)
        trace.record(Span(model="gpt-4o", provider="openai", prompt_tokens=2))
        ender.join(5)
    assert sorted(span.prompt_tokens for span in spans) == [1, 2]
    assert len({span.trace_id for span in spans}) == 1


def test_fan_out_to_a_list_of_transports(tmp_path: Path) -> None:
    memory = InMemoryTransport()
    tracer = Tracer(transport=[memory, tokentrace.FileTransport(tmp_path / "t.jsonl")])
    with tracer.trace("t") as t:
        t.record(Span(model="gpt-4o", provider="openai", prompt_tokens=1))
    tracer.close()
    line = json.loads((tmp_path / "t.jsonl").read_text())
    assert line["span_id"] == memory.spans[0].span_id
    assert tracer.stats() == {"queued": 0, "written": 2, "dropped": {}, "unpriced": 0}


class _HeldSink:
    """A sink that holds the pipeline worker in the first batch until released."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    def __call__(self, spans: list[Span]) -> None:
        self.entered.set()
        self.release.wait(10)


def _trace_of(tracer: Tracer, count: int) -> None:
    with tracer.trace(f"{count} spans") as t:
        for _ in range(count):
            t.record(Span(model="gpt-4o", provider="openai"))


def test_a_close_that_cannot_wait_counts_the_queued_spans_not_traces() -> None:
    tracer, sink = Tracer(), _HeldSink()
    tracer.add_sink(sink)
    _trace_of(tracer, 1)
    assert tracer.flush(0) is False and sink.entered.wait(10)
    _trace_of(tracer, 2)
    _trace_of(tracer, 3)
    assert tracer.close(0) is False
    assert tracer.stats()["dropped"]["shutdown_timeout"] == 5
    sink.release.set()


def test_a_close_that_cannot_wait_counts_the_spans_the_pipeline_worker_holds_until_it_is_done(tmp_path: Path) -> None:
    tracer, sink = Tracer(transport=tokentrace.FileTransport(tmp_path / "t.jsonl")), _HeldSink()
    tracer.add_sink(sink)
    _trace_of(tracer, 3)
    assert tracer.flush(0) is False and sink.entered.wait(10)
    assert tracer.close(0) is False
    assert tracer.stats()["dropped"] == {"shutdown_in_flight": 3}
    sink.release.set()
    thread = tracer._pipeline._worker._thread
    assert thread is not None
    thread.join(10)
    assert tracer.stats()["dropped"] == {}
    assert len((tmp_path / "t.jsonl").read_text().splitlines()) == 3


def test_notifications_lost_at_close_are_not_counted_as_spans() -> None:
    entered, release = threading.Event(), threading.Event()

    def held(payload: object) -> None:
        entered.set()
        release.wait(10)

    delivery = tokentrace.CallbackDelivery(held)
    rules = [
        tokentrace.AlertRule(name=metric, metric=metric, op=">", threshold=0, window="1h", delivery=delivery)
        for metric in ("span_count", "total_tokens")
    ]
    tracer = Tracer(alerts=rules)
    with tracer.trace("t") as t:
        t.record(Span(model="gpt-4o", provider="openai", prompt_tokens=10))
    assert tracer.settle(10) and entered.wait(10)  # one rule's notice delivered, the other's queued
    assert tracer.close(0) is False
    assert tracer.stats()["dropped"] == {"alert_shutdown_timeout": 1, "alert_shutdown_in_flight": 1}
    release.set()


def test_transport_must_be_a_transport() -> None:
    with pytest.raises(TypeError, match="transport must be a tokentrace transport, got str"):
        Tracer(transport="stdout")  # type: ignore[arg-type]


def test_a_failing_transport_never_reaches_the_caller() -> None:
    class Broken(InMemoryTransport):
        def emit(self, spans: list[Span]) -> None:
            raise OSError("disk on fire")

    tracer = Tracer(transport=Broken())
    with tracer.trace("t") as t:
        t.record(Span(model="gpt-4o"))
    assert tracer.stats()["dropped"] == {"emit_error": 1}
    tracer.close()


def test_stdout_transport_prints_the_seed_shape(capsys: pytest.CaptureFixture[str]) -> None:
    tracer = Tracer(transport=tokentrace.StdoutTransport())
    trace = tracer.start("summarize-document")
    trace.record(Span(model="gpt-4o", provider="openai", prompt_tokens=512, comp_tokens=128, latency_ms=1240))
    trace.end()
    printed = json.loads(capsys.readouterr().out)
    assert printed["cost_usd"] == 0.00256 and printed["total_tokens"] == 640
    tracer.close()


def test_stdout_compact_is_one_line_per_span(capsys: pytest.CaptureFixture[str]) -> None:
    tracer = Tracer(transport=tokentrace.StdoutTransport(compact=True))
    with tracer.trace("t") as t:
        t.record(Span(model="gpt-4o", provider="openai"))
        t.record(Span(model="gpt-4o", provider="openai"))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(json.loads(line)["name"] == "t" for line in lines)
    tracer.close()


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="needs POSIX signals")
def test_a_signal_handler_may_record_while_the_thread_it_interrupted_is_recording() -> None:
    with capture_spans() as (tracer, spans):
        trace = tracer.start("job")

        class Interrupted(list[Span]):  # the handler runs inside record(), where the lock is held
            def append(self, span: Span) -> None:
                if span.name == "interrupted":
                    signal.raise_signal(signal.SIGUSR1)
                super().append(span)

        def handler(signum: int, frame: object) -> None:
            trace.record(Span(model="gpt-4o", name="from the handler"))

        def stuck(signum: int, frame: object) -> None:
            raise TimeoutError("record() deadlocked in the signal handler")

        trace._spans = Interrupted()
        previous = signal.signal(signal.SIGUSR1, handler), signal.signal(signal.SIGALRM, stuck)
        signal.setitimer(signal.ITIMER_REAL, 5)  # a lock that is not reentrant never returns
        try:
            trace.record(Span(model="gpt-4o", name="interrupted"))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGUSR1, previous[0])
            signal.signal(signal.SIGALRM, previous[1])
        trace.end()
    assert [span.name for span in spans] == ["from the handler", "interrupted"]


def test_a_span_recorded_inside_a_span_block_gets_it_as_parent() -> None:
    with capture_spans() as (tracer, spans):
        with tracer.trace("job") as t, t.span(model="gpt-4o", provider="openai") as outer:
            t.record(Span(model="gpt-4o-mini", provider="openai"))
        t2 = tracer.start("other")
        t2.record(Span(model="gpt-4o", provider="openai"))
        t2.end()
    inner, outer_span, other = spans
    assert inner.parent_span_id == outer.span.span_id == outer_span.span_id
    assert outer_span.parent_span_id is None and other.parent_span_id is None


def test_metrics_sum_what_was_recorded() -> None:
    with capture_spans() as (tracer, _):
        for model, latency in (("gpt-4o", 100), ("gpt-4o", 300), ("gpt-4o-mini", 200)):
            with tracer.trace("job") as t:
                t.record(Span(model=model, provider="openai", prompt_tokens=1000, comp_tokens=100, latency_ms=latency))
        t = tracer.start("job")
        t.record(Span(model="gpt-4o-mini", provider="openai", status="error", latency_ms=50))
        t.end()
        snapshot = tracer.metrics(window="1h")
        only_4o = tracer.metrics("1h", model="gpt-4o")
    assert snapshot.span_count == 4 and snapshot.error_count == 1
    assert snapshot.total_cost == Decimal("0.00721")
    assert snapshot.cost_by_model == {"gpt-4o": Decimal("0.007"), "gpt-4o-mini": Decimal("0.00021")}
    assert snapshot.prompt_tokens == 3000 and snapshot.comp_tokens == 300
    assert only_4o.span_count == 2 and only_4o.total_cost == Decimal("0.007")
    with pytest.raises(ValueError, match="window"):
        tracer.metrics(window="banana")


def test_a_server_that_cannot_bind_fails_the_constructor_without_leaving_threads() -> None:
    import socket
    import time

    from tokentrace import AlertRule, CallbackDelivery, ConfigError, HTTPServerConfig

    rule = AlertRule(name="r", metric="span_count", op=">", threshold=1, window="1m", delivery=CallbackDelivery(print))

    def tickers() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name == "tokentrace.alerts.tick"}

    before = tickers()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"tokentrace cannot listen on '127.0.0.1:{port}'"):
            Tracer(alerts=[rule], http_server=HTTPServerConfig(addr=f"127.0.0.1:{port}"))
    deadline = time.monotonic() + 5
    while tickers() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tickers() <= before


def test_ingest_keeps_the_ids_and_times_spans_carry() -> None:
    seen: list[Span] = []
    with capture_spans() as (tracer, spans):
        tracer.add_sink(seen.extend)
        span = Span(model="gpt-4o", provider="openai", prompt_tokens=10, trace_id="t-1", span_id="s-1",
                    started_at=1_000, ended_at=2_000, latency_ms=1_000)  # fmt: skip
        assert tracer.ingest([span], wait=5)
        assert seen == [span]
    assert spans == [span]
    assert (span.trace_id, span.span_id, span.ended_at, span.cost) == ("t-1", "s-1", 2_000, Decimal("0.000025"))
