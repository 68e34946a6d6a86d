"""A demo workload: a few simulated services sending realistic LLM traffic to a collector.

Each service runs on its own thread with its own :class:`~tokentrace.Tracer` and
:class:`~tokentrace.HTTPTransport`, as separate applications would. Calls follow each model's
typical token counts, cache hits, reasoning and latency (log-normal), with rate limits,
timeouts and server errors mixed in. ``backfill_s`` first sends a quieter history so charts
have something to show at once. Nothing here calls a real provider.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..pricing import Usage, price
from ..spans import Span, Status, now_ms
from ..tracer import Trace, Tracer
from ..transports.http import HTTPTransport

__all__ = ["SERVICES", "DemoStats", "DemoWorkload", "Service", "demo_rules", "run_demo"]

_ERRORS = (
    (0.5, "RateLimitError: Error code: 429 - Rate limit reached for requests", 0.08),
    (0.3, "APITimeoutError: Request timed out.", 1.0),
    (0.2, "InternalServerError: Error code: 503 - The server is overloaded", 0.3),
)  # (share, message, fraction of the usual latency before it fails)
_BACKFILL_RATE = 0.25  # history is sent at a quarter of the live rate
_SEND_DEADLINE_S = 5.0  # a demo that outlives its collector should not linger at exit


@dataclass(frozen=True)
class Call:
    """One kind of model call: its usual sizes, latency and failure rate."""

    model: str
    provider: str
    prompt: tuple[int, int]
    completion: tuple[int, int]
    latency_ms: float  # median
    cached_share: float = 0.0  # share of the prompt read from the provider's cache
    reasoning_share: float = 0.0  # share of the completion spent reasoning
    error_rate: float = 0.02


@dataclass(frozen=True)
class Flow:
    """A named workflow (the trace name) and the calls it makes, in order."""

    name: str
    calls: tuple[Call, ...]
    weight: float = 1.0


@dataclass(frozen=True)
class Service:
    """A simulated application: its flows and how many traces per second it starts."""

    name: str
    rate: float
    flows: tuple[Flow, ...]


_MINI = Call("gpt-4o-mini", "openai", (300, 1800), (40, 300), 650)
_GPT4O = Call("gpt-4o", "openai", (1200, 6000), (150, 700), 1900, cached_share=0.3)
_SONNET = Call("claude-sonnet-4-5", "anthropic", (12_000, 40_000), (300, 1200), 5200, cached_share=0.6, error_rate=0.04)
_HAIKU = Call("claude-haiku-4-5", "anthropic", (2000, 8000), (100, 400), 1100)
_O3 = Call("o3-mini", "openai", (3000, 12_000), (800, 4000), 9000, reasoning_share=0.7, error_rate=0.05)
_GPT41 = Call("gpt-4.1", "openai", (4000, 16_000), (300, 1500), 3400)
_FLASH = Call("gemini-2.0-flash", "google", (800, 4000), (60, 400), 420, error_rate=0.01)
_FLASH25 = Call("gemini-2.5-flash", "google", (4000, 20_000), (200, 900), 1500, reasoning_share=0.3)

SERVICES: tuple[Service, ...] = (
    Service("support-bot", 1.5, (Flow("triage-ticket", (_MINI,), 2.0), Flow("answer-customer", (_MINI, _GPT4O)))),
    Service("doc-pipeline", 0.4, (Flow("summarize-document", (_HAIKU, _SONNET)),)),
    Service("code-review", 0.2, (Flow("review-pull-request", (_O3, _GPT41)),)),
    Service("search", 2.0, (Flow("rag-answer", (_FLASH, _FLASH25)),)),
)
"""The default services: support chat, document summaries, code review and search."""


@dataclass
class DemoStats:
    """What a service sent."""

    traces: int = 0
    spans: int = 0
    errors: int = 0
    cost: Decimal = Decimal(0)


def demo_rules(
    prefix: str = "demo", threshold_usd: float = 5.0, window: str = "5m", *, errors: bool = True
) -> list[Any]:
    """The demo's alerts: spend over ``window`` above ``threshold_usd`` (the default services
    spend about $0.05/s, so it trips within two minutes) and, with ``errors``, an error rate
    above 10% held for a minute."""
    from ..alerts import AlertRule, Op, StdoutDelivery

    rules = [
        AlertRule(
            name=f"{prefix}-cost-spike",
            metric="total_cost",
            op=Op.GT,
            threshold=threshold_usd,
            window=window,
            keep_firing_for="2m",  # spend hovering at the threshold must not flap
            delivery=StdoutDelivery(),
        ),
    ]
    if errors:
        rules.append(
            AlertRule(
                name=f"{prefix}-error-rate", metric="error_rate", op=Op.GT, threshold=0.10, window=window,
                for_="1m", keep_firing_for="2m", delivery=StdoutDelivery(),
            )
        )  # fmt: skip
    return rules


def _lognormal(rng: random.Random, median: float, sigma: float = 0.45) -> int:
    return max(1, round(median * math.exp(rng.gauss(0.0, sigma))))


def _span(rng: random.Random, call: Call, service: str, started: int) -> Span:
    latency = _lognormal(rng, call.latency_ms)
    prompt = rng.randint(*call.prompt)
    span = Span(
        model=call.model,
        provider=call.provider,
        prompt_tokens=prompt,
        comp_tokens=rng.randint(*call.completion),
        latency_ms=latency,
        started_at=started,
        ended_at=started + latency,
        attributes={"service": service},
        ttft_ms=max(1, round(latency * rng.uniform(0.1, 0.3))),
    )
    if call.cached_share and rng.random() < 0.8:
        span.cached_tokens = round(prompt * call.cached_share * rng.uniform(0.6, 1.0))
    if call.reasoning_share:
        span.reasoning_tokens = round(span.comp_tokens * call.reasoning_share)
    if rng.random() < call.error_rate:
        _fail(rng, span)
    usage = Usage(prompt_tokens=span.prompt_tokens, completion_tokens=span.comp_tokens,
                  cached_tokens=span.cached_tokens or 0, reasoning_tokens=span.reasoning_tokens or 0)  # fmt: skip
    span.cost = price(call.model, usage, provider=call.provider)  # as an app would, from the response's usage
    return span


def _fail(rng: random.Random, span: Span) -> None:
    message, fraction = rng.choices([e[1:] for e in _ERRORS], weights=[e[0] for e in _ERRORS])[0]
    span.status, span.error = Status.ERROR, message
    span.latency_ms = max(1, round((span.latency_ms or 1) * fraction))
    span.ended_at = (span.started_at or 0) + span.latency_ms
    span.comp_tokens = 0
    span.cached_tokens = span.reasoning_tokens = span.ttft_ms = None


def _trace(rng: random.Random, tracer: Tracer, service: Service, end_ms: int, stats: DemoStats) -> None:
    flow = rng.choices(service.flows, weights=[f.weight for f in service.flows])[0]
    spans = []
    at = end_ms
    for call in reversed(flow.calls):  # laid out backwards so the trace ends at end_ms
        span = _span(rng, call, service.name, 0)
        span.started_at = at - (span.latency_ms or 0)
        span.ended_at = at
        at = span.started_at - rng.randint(5, 60)
        spans.append(span)
    trace: Trace = tracer.start(flow.name)
    for span in reversed(spans):
        trace.record(span)
        stats.spans += 1
        stats.errors += span.status is Status.ERROR
    trace.end()
    stats.traces += 1
    stats.cost += sum((s.cost for s in spans if s.cost is not None), Decimal(0))


def _run_service(
    service: Service,
    tracer: Tracer,
    stop: threading.Event,
    seed: int,
    backfill_s: float,
    deadline: float | None,
    stats: DemoStats,
) -> None:
    rng = random.Random(seed)
    now = now_ms()
    at = now - backfill_s * 1000
    while at < now and not stop.is_set():
        _trace(rng, tracer, service, round(at), stats)
        at += rng.expovariate(service.rate * _BACKFILL_RATE) * 1000
    next_at = time.monotonic()
    while not stop.is_set() and (deadline is None or next_at < deadline):
        if stop.wait(max(next_at - time.monotonic(), 0.0)):
            break
        _trace(rng, tracer, service, now_ms(), stats)
        next_at += rng.expovariate(service.rate)
    tracer.close(_SEND_DEADLINE_S)


def run_demo(
    target: str,
    *,
    token: str | None = None,
    duration: float | None = None,
    backfill_s: float = 0.0,
    services: Sequence[Service] = SERVICES,
    stop: threading.Event | None = None,
    seed: int | None = None,
    rules: Mapping[str, Sequence[Any]] | None = None,
) -> dict[str, DemoStats]:
    """Run every service against the collector at ``target`` until ``duration`` or ``stop``.

    Args:
        target: the collector's base URL.
        token: its bearer token.
        duration: seconds of live traffic (None: until ``stop`` is set).
        backfill_s: seconds of history sent first.
        services: what to simulate.
        stop: set it to end the run early.
        seed: makes the traffic reproducible.
        rules: alert rules a service's own tracer evaluates, by service name.

    Returns:
        What each service sent, by name.
    """
    stop = stop or threading.Event()
    deadline = None if duration is None else time.monotonic() + duration
    base = random.randrange(2**32) if seed is None else seed
    stats = {s.name: DemoStats() for s in services}
    threads = []
    for i, service in enumerate(services):
        alerts = list((rules or {}).get(service.name, ()))
        transport = HTTPTransport(target, token=token, interval=0.5, deadline=_SEND_DEADLINE_S)
        tracer = Tracer(transport=transport, alerts=alerts, exit_timeout=_SEND_DEADLINE_S)
        args = (service, tracer, stop, base + i, backfill_s, deadline, stats[service.name])
        thread = threading.Thread(target=_run_service, args=args, name=f"tokentrace.demo.{service.name}", daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    return stats


class DemoWorkload:
    """:func:`run_demo` on a background thread that :meth:`stop` winds down (its spans are
    flushed before it returns), for running next to a collector or from a console.

    Example::

        workload = DemoWorkload(backfill_s=3600)
        workload.start("http://127.0.0.1:9090")
        ...
        stats = workload.stop()
    """

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats: dict[str, DemoStats] = {}

    def start(self, target: str) -> None:
        def work() -> None:
            self.stats = run_demo(target, stop=self._stop, **self._options)

        self._thread = threading.Thread(target=work, name="tokentrace.demo")
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the workload has finished (its duration ran out)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()

    def stop(self, timeout: float = 15.0) -> dict[str, DemoStats]:
        self._stop.set()
        self.wait(timeout)
        return self.stats
