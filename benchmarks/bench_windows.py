"""Windowed metrics and alert rules: aggregation cost per span, query latency, memory.

1. Worker cost per span (``add_many`` + ``observe`` with 10 rules), at 1M spans/hour in the
   pipeline's 0.2 s batches, and at 10,000 spans/s in full 1,024-span batches.
2. p50/p95/p99 + cost by model over a 1 h window holding 1M spans, against numpy.percentile
   over the raw latencies, in the same run.
3. Memory (tracemalloc) after 30 days of one span per minute for each of 20 models, with one
   trace name, and with three (so 60 model x name combinations).
4. A restart's rebuild: stored spans, oldest first, into empty windows with ``load``, against
   ``add_many`` in the same run; over 1 hour and thinly over 30 days. And what a clean stop keeps
   instead (``state()``, ``restore()``) for the windows of point 3.

Run: ``python benchmarks/bench_windows.py [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import pickle
import random
import statistics
import sys
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np

from _util import row
from tokentrace.alerts import AlertEngine, AlertRule, CallbackDelivery
from tokentrace.spans import Span, Status
from tokentrace.windows import WindowAggregator

T0 = 1_773_586_800.0
MODELS = [f"model-{i:02d}" for i in range(20)]
PROVIDERS = ["openai", "anthropic", "google", "mistral"]
NAMES = ["chat", "summarize", "classify"]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def make_spans(count: int, start: float, seconds: float, seed: int = 7) -> list[Span]:
    """``count`` spans ending evenly over ``seconds`` from ``start``; lognormal latencies."""
    rnd = random.Random(seed)
    spans = []
    for i in range(count):
        k = rnd.randrange(len(MODELS))
        spans.append(
            Span(
                model=MODELS[k],
                provider=PROVIDERS[k % 4],
                name=NAMES[i % 3],
                prompt_tokens=rnd.randrange(100, 4000),
                comp_tokens=rnd.randrange(10, 800),
                cost=Decimal(rnd.randrange(1, 5000)) / 100_000,
                latency_ms=int(rnd.lognormvariate(6.8, 0.7)),
                status=Status.ERROR if rnd.random() < 0.02 else Status.OK,
                ended_at=round((start + seconds * i / count) * 1000),
            )
        )
    return spans


def ten_rules() -> list[AlertRule]:
    sink = CallbackDelivery(lambda payload: None)
    specs = [
        ("hourly-cost", "total_cost", ">", 500, "1h", None),
        ("daily-cost", "total_cost", ">", 10_000, "1d", None),
        ("burst-cost", "total_cost", ">", 100, "5m", None),
        ("too-quiet", "span_count", "<", 1, "10m", None),
        ("error-rate", "error_rate", ">", 0.5, "15m", None),
        ("errors-gpt", "error_count", ">", 10_000, "1h", {"model": "model-00"}),
        ("tokens", "total_tokens", ">", 10**10, "1h", None),
        ("p95", "latency_p95", ">", 60_000, "15m", None),
        ("p99-chat", "latency_p99", ">", 60_000, "1h", {"name": "chat"}),
        ("avg-openai", "latency_avg", ">", 60_000, "1h", {"provider": "openai"}),
    ]
    return [AlertRule(n, m, op, t, w, sink, filters=f) for n, m, op, t, w, f in specs]


def feed(spans: list[Span], batch: int, span_seconds: float, rules: bool) -> tuple[float, WindowAggregator]:
    """Replay spans through add_many (+ observe), advancing the clock with them; CPU us/span."""
    clock = Clock()
    aggregator = WindowAggregator(clock=clock)
    engine = AlertEngine(ten_rules(), aggregator) if rules else None
    gc.collect()
    started = time.thread_time()
    for i in range(0, len(spans), batch):
        part = spans[i : i + batch]
        clock.now = T0 + (i + len(part)) * span_seconds
        aggregator.add_many(part)
        if engine is not None:
            engine.observe(part)
    elapsed = time.thread_time() - started
    if engine is not None:
        engine.close(1)
    return elapsed / len(spans) * 1e6, aggregator


def bench_ingest(count: int) -> WindowAggregator:
    print("Worker cost per span (add_many + observe), CPU time")
    hour = make_spans(count, T0, 3600)
    per_span = 3600 / count
    slow_batch = max(1, round(0.2 / per_span))
    base, _ = feed(hour, slow_batch, per_span, rules=False)
    ruled, aggregator = feed(hour, slow_batch, per_span, rules=True)
    label = f"{count:,} spans over 1 h, batches of {slow_batch}"
    print(row(f"{label}, no rules", f"{base:.2f} us"))
    print(row(f"{label}, 10 rules", f"{ruled:.2f} us", "target <= 1 us"))
    fast = make_spans(min(count, 300_000), T0, min(count, 300_000) / 10_000)
    base, _ = feed(fast, 1024, 1 / 10_000, rules=False)
    busy, _ = feed(fast, 1024, 1 / 10_000, rules=True)
    print(row("10,000 spans/s, batches of 1024, no rules", f"{base:.2f} us"))
    print(row("10,000 spans/s, batches of 1024, 10 rules", f"{busy:.2f} us", "target <= 1 us"))
    return aggregator


def bench_query(aggregator: WindowAggregator, count: int) -> None:
    print(f"\nQuery over a 1 h window holding {count:,} spans: p50/p95/p99 + cost by model")
    clock = aggregator.clock
    assert isinstance(clock, Clock)
    cold, warm = [], []
    for i in range(30):
        clock.now += 1  # a second is sealed and the window moves on
        started = time.perf_counter()
        aggregator.snapshot(3600 + i)  # a window never asked before: nothing cached
        cold.append(time.perf_counter() - started)
        started = time.perf_counter()
        snap = aggregator.snapshot("1h")  # asked every second: moved along incrementally
        warm.append(time.perf_counter() - started)
    print(
        row("snapshot('1h'), first time (nothing cached)", f"{statistics.median(cold) * 1e3:.3f} ms", "target <= 2 ms")
    )
    print(row("snapshot('1h'), asked again a second later", f"{statistics.median(warm) * 1e3:.3f} ms"))
    latencies = np.array([s.latency_ms for s in make_spans(count, T0, 3600)], dtype=np.int64)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        exact = np.percentile(latencies, [50, 95, 99], method="inverted_cdf")
        times.append(time.perf_counter() - started)
    print(row("numpy.percentile over the raw latencies", f"{statistics.median(times) * 1e3:.3f} ms"))
    print(row("span_count in the window", f"{snap.span_count:,}"))
    for name, got, want in zip(
        ("p50", "p95", "p99"), (snap.latency_p50, snap.latency_p95, snap.latency_p99), exact, strict=True
    ):
        assert got is not None
        print(row(f"{name}: sketch {got:.2f} ms, exact {want:.0f} ms", f"{abs(got - want) / want:.3%}", "<= 1%"))


def minute_of_spans(minute: int, names: list[str], rnd: random.Random) -> list[Span]:
    """One span per model, ending at random times within the minute, oldest first."""
    spans = [
        Span(
            model=model,
            provider=PROVIDERS[k % 4],
            name=names[minute % len(names)],
            prompt_tokens=900,
            comp_tokens=150,
            cost=Decimal("0.0042"),
            latency_ms=int(rnd.lognormvariate(6.8, 0.7)),
            ended_at=round((T0 + minute * 60 + rnd.random() * 60) * 1000),
        )
        for k, model in enumerate(MODELS)
    ]
    return sorted(spans, key=lambda s: s.ended_at or 0)


def traced_size(aggregator: WindowAggregator) -> int:
    """Bytes tracemalloc counts for an exact copy of the aggregator's state (a pickle round
    trip keeps every shared object shared), so the long replay itself runs untraced."""
    state = {k: v for k, v in vars(aggregator).items() if k not in ("_lock", "clock")}
    data = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    gc.collect()
    tracemalloc.start()
    copy = pickle.loads(data)
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del copy
    return size


def bench_memory(days: int, names: list[str]) -> None:
    clock = Clock()
    rnd = random.Random(3)
    aggregator = WindowAggregator(clock=clock)
    for minute in range(days * 1440):
        for span in minute_of_spans(minute, names, rnd):  # each recorded as it ends
            clock.now = (span.ended_at or 0) / 1000 + 0.05
            aggregator.add(span)
    stats = aggregator.stats()
    label = f"20 models, {len(names)} trace name{'s' if len(names) > 1 else ''}"
    print(row(f"{label}: held by the aggregator", f"{traced_size(aggregator) / 2**20:.1f} MB", "target <= 50 MB"))
    print(row("  buckets kept", " ".join(f"{k}:{v}" for k, v in stats["buckets"].items())))
    print(row("  model x provider x name combinations", f"{stats['series']}"))
    print(row(f"  spans in the {days} d window", f"{aggregator.metric('span_count', f'{days}d'):,}"))
    started = time.perf_counter()
    state = aggregator.state()
    kept = time.perf_counter() - started
    back = WindowAggregator(clock=clock)
    started = time.perf_counter()
    back.restore(state)
    taken = time.perf_counter() - started
    print(
        row(
            "  kept as a restart would: state() / size / restore()",
            f"{kept:.2f} s / {len(state) / 2**20:.1f} MB / {taken:.2f} s",
        )
    )


def bench_load(count: int, large: int) -> None:
    print("\nRebuild at start-up: stored spans, oldest first in batches of 5,000, into empty windows (CPU time)")
    for label, seconds in (("1 h", 3600), ("30 days", 30 * 86400)):
        spans = make_spans(count, T0 - seconds, seconds)
        base, fast = _filled(spans, load=False), _filled(spans, load=True)
        per_span = f"{count:,} spans over {label}"
        print(row(f"{per_span}: add_many", f"{base / count * 1e6:.1f} us/span"))
        print(row(f"{per_span}: load", f"{fast / count * 1e6:.1f} us/span", f"{base / fast:.1f}x as fast"))
        whole = _filled(make_spans(large, T0 - seconds, seconds), load=True)
        print(row(f"{large:,} spans over {label}: load", f"{whole:.2f} s"))


def _filled(spans: list[Span], load: bool) -> float:
    """CPU seconds to take ``spans`` into empty windows, the clock at their end, and seal them."""
    batches = [spans[i : i + 5000] for i in range(0, len(spans), 5000)]
    aggregator = WindowAggregator(clock=Clock())
    gc.collect()
    started = time.thread_time()
    if load:
        aggregator.load(batches)
    else:
        for batch in batches:
            aggregator.add_many(batch)
    aggregator.metric("span_count", "30d")
    return time.thread_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k spans and 3 days instead of 1M and 30")
    args = parser.parse_args()
    count, days = (100_000, 3) if args.quick else (1_000_000, 30)
    bench_load(count // 5, count)
    aggregator = bench_ingest(count)
    bench_query(aggregator, count)
    print(f"\nMemory after {days} days of one span per minute for each of 20 models (tracemalloc)")
    bench_memory(days, NAMES[:1])
    bench_memory(days, NAMES)


if __name__ == "__main__":
    main()
