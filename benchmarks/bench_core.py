"""Caller-thread cost, CPU per span, JSONL throughput, queue memory and cost() speed.

Runs the OpenTelemetry SDK (BatchSpanProcessor, discarding exporter, 10 gen_ai.* attributes)
side by side as the baseline, in the same process and run.
"""

from __future__ import annotations

import gc
import logging
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import tokentrace
from _util import per_call_us, row
from tokentrace.spans import Span
from tokentrace.transports.base import BatchingTransport

N = 50_000


def otel_per_span_us() -> float:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Discard(SpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    tracer = provider.get_tracer("bench")
    attrs = {
        "gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o", "gen_ai.usage.input_tokens": 512, "gen_ai.usage.output_tokens": 128,
        "gen_ai.usage.cache_read.input_tokens": 0, "gen_ai.usage.reasoning.output_tokens": 0,
        "gen_ai.usage.cost": 0.00256, "gen_ai.response.id": "chatcmpl-1",
    }  # fmt: skip

    def one() -> None:
        with tracer.start_as_current_span("chat gpt-4o") as span:
            span.set_attributes(attrs)

    result = per_call_us(one, N)
    provider.shutdown()
    return result


def ten_rules() -> list[tokentrace.AlertRule]:
    metrics = ["total_cost", "span_count", "error_count", "error_rate", "prompt_tokens", "comp_tokens",
               "total_tokens", "latency_p50", "latency_p95", "latency_p99"]  # fmt: skip
    sink = tokentrace.CallbackDelivery(lambda payload: None)
    return [
        tokentrace.AlertRule(
            name=f"rule-{m}", metric=m, op=">", threshold=1 if m == "error_rate" else 10**12, window="1h", delivery=sink
        )
        for m in metrics
    ]


def tokentrace_caller_us(path: Path, rules: list[tokentrace.AlertRule] | None = None) -> tuple[float, float]:
    """(CPU µs per span on the caller's thread, process CPU µs per span incl. the worker).

    Spans are recorded in bursts of 1,000 with a flush between them, the way an application
    that waits on model calls leaves the worker idle time; the caller's cost is its thread's
    CPU time during a burst, the total is the process's CPU time over a burst and its flush
    (medians over the bursts).
    """
    tracer = tokentrace.Tracer(transport=tokentrace.FileTransport(path), alerts=rules or ())

    def burst() -> tuple[float, float]:
        process0, thread0 = time.process_time(), time.thread_time()
        for _ in range(1000):
            trace = tracer.start("summarize-document")
            trace.record(Span(model="gpt-4o", provider="openai", prompt_tokens=512, comp_tokens=128, latency_ms=1240))
            trace.end()
        spent = time.thread_time() - thread0
        tracer.flush()
        return spent, time.process_time() - process0

    for _ in range(3):
        burst()
    callers, totals = zip(*(burst() for _ in range(N // 1000)), strict=True)
    tracer.close()
    return statistics.median(callers) / 1000 * 1e6, statistics.median(totals) / 1000 * 1e6


def jsonl_throughput(path: Path) -> float:
    transport = tokentrace.FileTransport(path)
    batch = []
    for i in range(1000):
        span = Span(model="gpt-4o", provider="openai", prompt_tokens=512, comp_tokens=i, latency_ms=900,
                    trace_id=tokentrace.spans.new_id(), span_id=tokentrace.spans.new_id(), name="batch",
                    started_at=1773584581441, ended_at=1773584582341)  # fmt: skip
        batch.append(span)
    rounds = 200
    started = time.perf_counter()
    for _ in range(rounds):
        transport.emit(batch)
    elapsed = time.perf_counter() - started
    transport.shutdown()
    return rounds * len(batch) / elapsed


class _Parked(BatchingTransport):
    """Holds spans in its queue (the export never runs during the measurement)."""

    def __init__(self) -> None:
        super().__init__("tokentrace.bench", max_queue=1_000_000, max_batch=1_000_000, interval=3600)

    def export(self, batch: list[Span]) -> None:
        pass


def bytes_per_queued_span() -> float:
    transport = _Parked()
    tracer = tokentrace.Tracer(transport=transport, max_queue=1_000_000)
    count = 50_000
    tokentrace.cost("gpt-4o", {"prompt_tokens": 1})  # the price table loaded before tracemalloc slows it
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(count // 10):
        trace = tracer.start("mem")
        for _ in range(10):
            trace.record(Span(model="gpt-4o", provider="openai", prompt_tokens=512, comp_tokens=128, latency_ms=1240))
        trace.end()
    tracer.settle(30)  # the windows keep aggregates, not spans
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert transport.queued == count
    logging.disable(logging.WARNING)  # the parked spans are dropped on purpose: no warning for them
    try:
        tracer.close(0)
    finally:
        logging.disable(logging.NOTSET)
    return used / count


def cost_us() -> float:
    usage = {"prompt_tokens": 512, "completion_tokens": 128, "prompt_tokens_details": {"cached_tokens": 256}}
    tokentrace.cost("gpt-4o", usage)
    return per_call_us(lambda: tokentrace.cost("gpt-4o", usage), 100_000)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        otel = otel_per_span_us()
        caller, cpu = tokentrace_caller_us(Path(tmp) / "caller.jsonl")
        ruled, ruled_cpu = tokentrace_caller_us(Path(tmp) / "ruled.jsonl", ten_rules())
        rate = jsonl_throughput(Path(tmp) / "batch.jsonl")
    print("core (issue: caller cost <= 1/8 of OpenTelemetry, <= 5 µs CPU/span, >= 1M spans/s, <= 500 B, <= 3 µs)")
    print(row("OpenTelemetry SDK span, 10 gen_ai.* attrs, batch processor", f"{otel:.2f} µs"))
    print(
        row("tokentrace start+record+end, FileTransport, auto cost", f"{caller:.2f} µs", f"ratio {caller / otel:.3f}")
    )
    print(row("total CPU per span (encode, write, windows)", f"{cpu:.2f} µs"))
    print(row("same caller with 10 alert rules", f"{ruled:.2f} µs", f"{(ruled / caller - 1) * 100:+.1f}%"))
    print(row("total CPU per span with 10 alert rules", f"{ruled_cpu:.2f} µs"))
    print(row("JSONL throughput, batches of 1000", f"{rate / 1e6:.2f} M spans/s"))
    print(row("memory per queued span", f"{bytes_per_queued_span():.0f} B"))
    print(row("tokentrace.cost() repeated (gpt-4o, cached tokens)", f"{cost_us():.2f} µs"))
    print(f"  ({os.cpu_count()} cores, Python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
