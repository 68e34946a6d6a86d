"""Per-call overhead of an instrumented OpenAI / Anthropic client, against the local fake provider.

The fake provider (``tests/fakes/providers.py``) runs in its own process, as a real one would, so
its threads do not compete with the client for the interpreter lock. Each scenario makes the same
calls through a client's own SDK method (kept from before the client was instrumented) and through
its traced one, so both share one connection pool and the same objects: many short rounds in a
shuffled order, and a trial's overhead is the median over rounds of (traced - plain) in the same
round. It is given as wall time per call, as the client process's CPU time per call (all its
threads, so tokentrace's background worker is included) and as the calling thread's CPU time.

One process's figure depends on where its objects happen to lie in memory (which lookups collide in
the interpreter's caches, how the allocator's free lists are laid out): the same code measures
tens of µs apart from one process to the next. So every trial runs in a fresh process, and a row
gives the median over trials with their range. A loopback call costs ~1 ms; the first row, the same
plain calls timed as two contenders, shows the noise that is left. Two reference rows place the chat
stream's figure: the same call with its stream handed over unwatched (the call's bookkeeping alone),
and with a watcher that only reads the clock at the first event and the usage of the last (less
than a traced stream must do: no ending on close or collection, nothing hidden). The last rows
time the wrapper alone around canned SDK results (a ChatCompletion, a 6-chunk stream, and a long
one, whose cost is also given per chunk: real answers stream hundreds of chunks), then around the
same results of both SDKs with each call made right after a sweep of memory, as between two real
calls (a low-noise figure that reproduces the loopback rows), and count the garbage collections
per 1000 calls, plain and traced: calls waiting for the tracer's worker must
keep nothing the collector tracks alive. With the bench extra installed, the chat, chat stream and
Anthropic stream calls are also timed through a peer's instrumentation (OpenLLMetry's, on
OpenTelemetry), beside tokentrace's, in trials of their own.

Usage: ``python benchmarks/bench_instrument.py [--quick]``
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import json
import multiprocessing
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' fake provider

import anthropic
import openai

import tokentrace
from _util import per_call_us, row
from tests.fakes.providers import ProviderServer
from tokentrace.integrations import _calls, _streams
from tokentrace.integrations import anthropic as anthropic_integration
from tokentrace.integrations import openai as openai_integration
from tokentrace.spans import Span
from tokentrace.transports.base import BatchingTransport

QUICK = "--quick" in sys.argv
TRIALS, ROUNDS, PER_ROUND = (3, 10, 20) if QUICK else (12, 40, 20)
MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]
USAGE_CHUNK = {"include_usage": True}  # stream_options asking for the usage chunk, as a traced chat stream does
TARGET_US = 20.0
LONG_STREAM = 300  # content chunks in the long answer the wrapper is timed around


class Timing(NamedTuple):
    wall: float  # µs per call
    cpu: float  # µs of process CPU per call
    caller: float  # µs of the calling thread's CPU per call (the tracer's workers excluded)


class Row(NamedTuple):
    label: str
    plain: Timing
    traced: Timing


class _Discard(BatchingTransport):
    """A network transport whose export does nothing: the caller-side cost is all that is left."""

    def __init__(self) -> None:
        super().__init__("tokentrace.bench", max_queue=1_000_000)

    def export(self, batch: list[Span]) -> None:
        self.counters.written += len(batch)


def _serve(urls: Any, stop: Any) -> None:
    with ProviderServer() as server:
        urls.put(server.url)
        stop.wait()


@contextmanager
def provider_process() -> Iterator[str]:
    """The fake provider's base URL, served by a child process while the block runs."""
    context = multiprocessing.get_context("spawn")
    urls, stop = context.Queue(), context.Event()
    child = context.Process(target=_serve, args=(urls, stop), daemon=True)
    child.start()
    try:
        yield urls.get(timeout=60)
    finally:
        stop.set()
        child.join(10)


def _orders(count: int, seed: int) -> Iterator[list[int]]:
    """Each round's order of ``count`` contenders, shuffled (seeded), so none always follows another."""
    rng = random.Random(seed)
    for _ in range(ROUNDS):
        order = list(range(count))
        rng.shuffle(order)
        yield order


def _overheads(runs: list[list[Timing]]) -> list[Timing]:
    """Per contender: its per-call timing in the median round, as the first's plus the median of
    the per-round differences from the first (the plain client)."""
    base = runs[0]
    middle = Timing(*(statistics.median(column) for column in zip(*base, strict=True)))
    result = []
    for run in runs:
        differences = [
            Timing(*(a - b for a, b in zip(mine, theirs, strict=True))) for mine, theirs in zip(run, base, strict=True)
        ]
        median = (statistics.median(column) for column in zip(*differences, strict=True))
        result.append(Timing(*(m + d for m, d in zip(middle, median, strict=True))))
    return result


def interleaved(seed: int, *calls: Callable[[], object]) -> list[Timing]:
    """Per-call timings of ``calls`` (see :func:`_overheads`), run in alternating rounds."""
    for call in calls:
        call()  # warm connections and lazy imports
    runs: list[list[Timing]] = [[] for _ in calls]
    for order in _orders(len(calls), seed):
        for index in order:
            started = _now()
            for _ in range(PER_ROUND):
                calls[index]()
            runs[index].append(_per_call(started))
    return _overheads(runs)


async def interleaved_async(seed: int, *calls: Callable[[], Awaitable[object]]) -> list[Timing]:
    """:func:`interleaved` for coroutine functions, on the running event loop."""
    for call in calls:
        await call()
    runs: list[list[Timing]] = [[] for _ in calls]
    for order in _orders(len(calls), seed):
        for index in order:
            started = _now()
            for _ in range(PER_ROUND):
                await calls[index]()
            runs[index].append(_per_call(started))
    return _overheads(runs)


def _now() -> Timing:
    return Timing(time.perf_counter(), time.process_time(), time.thread_time())


def _per_call(started: Timing) -> Timing:
    return Timing(*((now - then) / PER_ROUND * 1e6 for now, then in zip(_now(), started, strict=True)))


class Methods(NamedTuple):
    """One client of each SDK, called through the SDK's own method and through the traced one, so
    that both go over the same connection and the same objects."""

    plain_chat: Callable[..., Any]
    plain_messages: Callable[..., Any]
    traced_chat: Callable[..., Any]
    traced_messages: Callable[..., Any]


@contextmanager
def methods(url: str, tracer: tokentrace.Tracer) -> Iterator[Methods]:
    with (
        openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0) as client,
        anthropic.Anthropic(base_url=url, api_key="k", max_retries=0) as claude,
    ):
        plain_chat, plain_messages = client.chat.completions.create, claude.messages.create
        tracer.instrument(client)
        tracer.instrument(claude)
        yield Methods(plain_chat, plain_messages, client.chat.completions.create, claude.messages.create)


def chat(create: Callable[..., Any]) -> Callable[[], object]:
    return lambda: create(model="gpt-4o", messages=MESSAGES)


def stream(create: Callable[..., Any], **kw: Any) -> Callable[[], object]:
    return lambda: list(create(model="gpt-4o", messages=MESSAGES, stream=True, **kw))


def messages(create: Callable[..., Any]) -> Callable[[], object]:
    return lambda: create(model="claude-sonnet-4-0", max_tokens=64, messages=MESSAGES)


def message_stream(create: Callable[..., Any]) -> Callable[[], object]:
    return lambda: list(create(model="claude-sonnet-4-0", max_tokens=64, messages=MESSAGES, stream=True))


def _unwatched(stream: Any, call: Any) -> None:
    """For reference: a stream's call ended as it is handed over, none of its events read."""
    call.finish()


def _first_and_last(stream: Any, call: Any) -> None:
    """For reference, a watcher doing less than tokentrace's must: the clock read at the first
    event, the usage of the last taken when the stream is exhausted, nothing else (no ending on
    close or collection, no usage chunk hidden)."""

    def events(inner: Iterator[Any]) -> Iterator[Any]:
        item = None
        for item in inner:
            call.mark_output()
            yield item
            break
        for item in inner:
            yield item
        call.usage = getattr(item, "usage", None)
        call.finish()

    stream._iterator = events(stream._iterator)


@contextmanager
def watched_by(watch: Callable[[Any, Any], None], url: str, tracer: tokentrace.Tracer) -> Iterator[Callable[..., Any]]:
    """The chat method of a client instrumented with ``watch`` in place of tokentrace's stream watcher."""
    saved, _streams.watch_sync = _streams.watch_sync, watch  # taken by the wrappers instrument() makes
    try:
        client = tracer.instrument(openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0))
    finally:
        _streams.watch_sync = saved
    with client:
        yield client.chat.completions.create


def sync_scenarios(url: str, tracer: tokentrace.Tracer, seed: int) -> list[Row]:
    with (
        methods(url, tracer) as (plain_chat, plain_messages, traced_chat, traced_messages),
        watched_by(_unwatched, url, tracer) as unwatched,
        watched_by(_first_and_last, url, tracer) as first_and_last,
    ):
        first, second, instrumented = interleaved(seed, chat(plain_chat), chat(plain_chat), chat(traced_chat))
        # A traced stream asks for the usage chunk; the second baseline asks for it too.
        bare, with_usage, traced_stream, floor, least = interleaved(
            seed,
            stream(plain_chat),
            stream(plain_chat, stream_options=USAGE_CHUNK),
            stream(traced_chat),
            stream(unwatched),
            stream(first_and_last),
        )
        return [
            Row("noise: the same plain calls, timed apart", first, second),
            Row("openai chat.completions.create", first, instrumented),
            Row("openai chat stream, read to the end", bare, traced_stream),
            Row("  same, baseline also asking for the usage chunk", with_usage, traced_stream),
            Row("  for reference: the call's bookkeeping, no event read", with_usage, floor),
            Row("  for reference: only first and last events read", with_usage, least),
            Row("anthropic messages.create", *interleaved(seed, messages(plain_messages), messages(traced_messages))),
            Row(
                "anthropic messages.create(stream=True)",
                *interleaved(seed, message_stream(plain_messages), message_stream(traced_messages)),
            ),
        ]


def async_scenario(url: str, tracer: tokentrace.Tracer, seed: int) -> Row:
    async def main() -> list[Timing]:
        async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="k", max_retries=0) as client:
            plain = client.chat.completions.create
            traced = tracer.instrument(client).chat.completions.create

            def chat(create: Callable[..., Awaitable[object]]) -> Callable[[], Awaitable[object]]:
                return lambda: create(model="gpt-4o", messages=MESSAGES)

            return await interleaved_async(seed, chat(plain), chat(traced))

    return Row("openai AsyncOpenAI chat.completions.create", *asyncio.run(main()))


def trial(url: str, seed: int, results: Any) -> None:
    """One trial, in a fresh process: every scenario's rows, put on ``results``."""
    tracer = tokentrace.Tracer(transport=_Discard())
    rows = [*sync_scenarios(url, tracer, seed), async_scenario(url, tracer, seed)]
    tracer.flush(30)
    dropped = dict(tracer.stats()["dropped"])
    tracer.close()
    results.put((rows, dropped))


def trials(url: str, run: Callable[[str, int, Any], None] = trial, count: int = TRIALS) -> list[list[Row]]:
    """The rows of ``count`` trials of ``run``, one after another, each in a fresh process."""
    context = multiprocessing.get_context("spawn")
    found = []
    for number in range(count):
        results = context.Queue()
        child = context.Process(target=run, args=(url, 20261128 + number, results))
        child.start()
        rows, dropped = results.get(timeout=1800)
        child.join(60)
        if dropped:
            raise RuntimeError(f"trial {number} dropped spans: {dropped}")
        found.append(rows)
        print(f"  trial {number + 1}/{count} done", file=sys.stderr, flush=True)
    return found


# --- a peer on the same calls ---------------------------------------------------------------------

PEER = "opentelemetry.instrumentation.openai"  # OpenLLMetry's instrumentations, in the bench extra


def peer_trial(url: str, seed: int, results: Any) -> None:
    """One trial of the peer rows, in a fresh process: the same calls plain, through tokentrace,
    and through OpenLLMetry's instrumentations, whose OpenTelemetry spans go through a batch
    processor to an exporter that discards them, prompts and completions not recorded (as
    tokentrace by default). The peer patches the SDKs' classes: the other contenders' methods are
    bound before it does, so they stay as they were. Every stream asks for its usage chunk."""
    os.environ["TRACELOOP_TRACE_CONTENT"] = "false"
    from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Nowhere(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer = tokentrace.Tracer(transport=_Discard())
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Nowhere(), max_queue_size=100_000))
    with (
        methods(url, tracer) as (plain_chat, plain_messages, traced_chat, traced_messages),
        openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0) as peer_client,
        anthropic.Anthropic(base_url=url, api_key="k", max_retries=0) as peer_claude,
    ):
        OpenAIInstrumentor().instrument(tracer_provider=provider)
        AnthropicInstrumentor().instrument(tracer_provider=provider)
        peer_chat, peer_messages = peer_client.chat.completions.create, peer_claude.messages.create  # the peer's
        scenarios = [
            ("openai chat.completions.create", chat(plain_chat), chat(traced_chat), chat(peer_chat)),
            (
                "openai chat stream, read to the end",
                stream(plain_chat, stream_options=USAGE_CHUNK),
                stream(traced_chat),
                stream(peer_chat, stream_options=USAGE_CHUNK),
            ),
            (
                "anthropic messages.create(stream=True)",
                message_stream(plain_messages),
                message_stream(traced_messages),
                message_stream(peer_messages),
            ),
        ]
        rows = []
        for label, *calls in scenarios:
            plain, traced, peer = interleaved(seed, *calls)
            rows += [Row(f"{label}: tokentrace", plain, traced), Row(f"  same: {_peer_name()}", plain, peer)]
    tracer.close()
    provider.shutdown()
    results.put((rows, {}))


def _peer_name() -> str:
    from importlib.metadata import version

    return f"OpenLLMetry {version('opentelemetry-instrumentation-openai')}"


def report(rows: list[Row]) -> None:
    """One line per scenario: the median over trials of the overheads, and their range."""
    label = rows[0].label
    overheads = [Timing(*(t - p for t, p in zip(r.traced, r.plain, strict=True))) for r in rows]
    wall, cpu, caller = (sorted(column) for column in zip(*overheads, strict=True))
    base = statistics.median(r.plain.wall for r in rows)
    middle = f"{base:5.0f} µs {statistics.median(wall):+5.1f} ({wall[0]:+.0f} to {wall[-1]:+.0f})"
    others = f"CPU {statistics.median(cpu):+5.1f}, caller's thread {statistics.median(caller):+5.1f} µs"
    print(row(label, middle, others))


class _CannedStream(openai.Stream[Any]):
    """The SDK's stream, read through its own ``__iter__``, its events canned."""

    def __init__(self, events: list[Any]) -> None:  # no response to decode
        self._iterator = iter(events)

    def close(self) -> None:
        pass


class _CannedEvents(anthropic.Stream[Any]):
    """Anthropic's stream, read through its own ``__iter__``, its events canned."""

    def __init__(self, events: list[Any]) -> None:
        vars(self)["_iterator"] = iter(events)  # in place of the SDK's cached property
        self.response = None  # the SDK asks it for an observer of the stream

    def close(self) -> None:
        pass


SWEPT_CALLS = 300 if QUICK else 3000
_SWEEP = bytearray(16 << 20)  # more than the processor's caches below the last level hold


def swept(url: str, tracer: tokentrace.Tracer) -> list[tuple[str, float, float]]:
    """The wrapper around canned SDK results, as in :func:`wrapper_alone`, each call made right
    after a 16 MB sweep of memory, as the SDK's own work between two calls sweeps the caches: per
    result, the median wall time of the plain call and what the traced one adds to it, over
    interleaved calls in a shuffled order. Free of the network's and the fake provider's noise,
    it gives within a µs from one run to the next what the loopback rows give within several."""
    with (
        openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0) as client,
        anthropic.Anthropic(base_url=url, api_key="k", max_retries=0) as claude,
    ):
        completion = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        chunks = list(
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True, stream_options=USAGE_CHUNK)
        )
        message = claude.messages.create(model="claude-sonnet-4-0", max_tokens=64, messages=MESSAGES)
        events = list(claude.messages.create(model="claude-sonnet-4-0", max_tokens=64, messages=MESSAGES, stream=True))
    settings = _calls.Settings(tracer)

    def traced(op: Any, result: Callable[[], Any]) -> Callable[..., Any]:
        return _calls.traced_sync(settings, op, lambda **kwargs: result())

    chat_op, messages_op = openai_integration.CHAT, anthropic_integration.MESSAGES
    scenarios = [
        ("a ChatCompletion", chat, lambda: completion, chat_op),
        (f"a chat stream of {len(chunks)} chunks", stream, lambda: _CannedStream(chunks), chat_op),
        ("an Anthropic Message", messages, lambda: message, messages_op),
        (f"an Anthropic stream of {len(events)} events", message_stream, lambda: _CannedEvents(events), messages_op),
    ]
    contenders = []
    for _, use, result, op in scenarios:
        contenders += [use(lambda result=result, **kwargs: result()), use(traced(op, result))]
    for call in contenders:
        call()  # warm
    times: list[list[float]] = [[] for _ in contenders]
    order = list(range(len(contenders)))
    rng = random.Random(20261129)
    gc.disable()  # collected between rounds, not inside a timed call
    try:
        for number in range(SWEPT_CALLS):
            rng.shuffle(order)
            for index in order:
                bytes(_SWEEP)
                started = time.perf_counter()
                contenders[index]()
                times[index].append(time.perf_counter() - started)
            if number % 200 == 199:
                gc.collect()
                tracer.flush(30)
    finally:
        gc.enable()
    medians = [statistics.median(taken) * 1e6 for taken in times]
    return [(label, medians[2 * i], medians[2 * i + 1] - medians[2 * i]) for i, (label, *_) in enumerate(scenarios)]


def wrapper_alone(url: str, tracer: tokentrace.Tracer) -> list[tuple[str, float, float, int]]:
    """µs per call the chat wrapper adds around canned SDK results (a ChatCompletion; streams of
    the SDK's own chunks, read to the end): on the calling thread, and in all (the span is built,
    priced and counted on the tracer's worker); and how many results each call hands over."""
    with openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0) as client:
        completion = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        chunks = list(
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True, stream_options=USAGE_CHUNK)
        )

    # A long answer: the same content chunks over and over, between the first and the last two.
    long = [chunks[0], *chunks[1:-2] * (LONG_STREAM // (len(chunks) - 3)), *chunks[-2:]]
    single = _calls.traced_sync(_calls.Settings(tracer), openai_integration.CHAT, lambda **kwargs: completion)
    timing = _alone(tracer, lambda: completion, lambda: single(model="gpt-4o", messages=MESSAGES))
    rows = [("a ChatCompletion", *timing, 1)]
    for events, label in ((chunks, " (usage last)"), (long, "")):
        streamed = _calls.traced_sync(
            _calls.Settings(tracer), openai_integration.CHAT, lambda events=events, **kwargs: _CannedStream(events)
        )
        timing = _alone(
            tracer,
            lambda events=events: list(_CannedStream(events)),
            lambda streamed=streamed: list(streamed(model="gpt-4o", messages=MESSAGES, stream=True)),
            number=2_000 if events is long else None,
        )
        rows.append((f"a {len(events)}-chunk chat stream{label}, read to the end", *timing, len(events)))
    return rows


def _alone(
    tracer: tokentrace.Tracer, bare: Callable[[], object], traced: Callable[[], object], number: int | None = None
) -> tuple[float, float]:
    """CPU µs per call of ``traced`` over ``bare``: on the calling thread, and in all."""
    number = number or (5_000 if QUICK else 20_000)  # well within the tracer's queue

    def run(call: Callable[[], object]) -> Timing:
        tracer.flush(30)
        started = _now()
        for _ in range(number):
            call()
        caller = time.thread_time() - started.caller
        tracer.flush(30)
        return Timing(0.0, (time.process_time() - started.cpu) / number * 1e6, caller / number * 1e6)

    plain, instrumented = [], []
    for _ in range(5):
        plain.append(run(bare))
        instrumented.append(run(traced))
    caller = statistics.median(t.caller for t in instrumented) - statistics.median(t.caller for t in plain)
    total = statistics.median(t.cpu for t in instrumented) - statistics.median(t.cpu for t in plain)
    return caller, total


def captured_prompt() -> list[tuple[str, float, float]]:
    """µs on the caller's thread to read a request's content with ``capture_content=True`` (its
    first 2,000 characters of JSON), for a long document and an image sent inline, against
    making the whole request JSON and cutting that (as a first version did)."""
    document = [{"role": "system", "content": "x" * 1_000_000}, {"role": "user", "content": "Summarize."}]
    inline = "data:image/png;base64," + "A" * 5_000_000
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": inline}}]}]
    rows = []
    for label, request in (("a 1 MB document", document), ("a 5 MB image sent inline", image)):
        cut = per_call_us(lambda request=request: _calls._content(request, 2000), 200)
        whole = per_call_us(lambda request=request: json.dumps(request, default=str, ensure_ascii=False)[:2000], 20)
        rows.append((label, cut, whole))
    return rows


def gc_pressure(url: str, tracer: tokentrace.Tracer) -> list[tuple[str, GC, GC]]:
    """Garbage collections, plain and traced: what waits in the tracer's queue must not keep
    objects the collector tracks alive, or it makes collections more frequent."""
    number = 300 if QUICK else 2000
    long = 1000 if QUICK else 20_000  # long enough for the older generations to be collected too
    with methods(url, tracer) as (plain_chat, plain_messages, traced_chat, traced_messages):
        scenarios = [
            (f"openai chat.completions.create, {long:,} calls", long, chat(plain_chat), chat(traced_chat)),
            (
                f"openai chat stream, {number:,} calls",
                number,
                stream(plain_chat, stream_options=USAGE_CHUNK),
                stream(traced_chat),
            ),
            (
                f"anthropic messages.create(stream=True), {number:,} calls",
                number,
                message_stream(plain_messages),
                message_stream(traced_messages),
            ),
        ]
        return [
            (label, _collections(tracer, plain, count), _collections(tracer, traced, count))
            for label, count, plain, traced in scenarios
        ]


class GC(NamedTuple):
    collections: float  # per 1000 calls, all generations
    full: int  # how many of them were full (generation 2)
    us: float  # µs per call spent in them, on any thread


def _collections(tracer: tokentrace.Tracer, call: Callable[[], object], number: int) -> GC:
    for _ in range(50):  # warm: the tracer's first spans of a scenario cost it some one-time work
        call()
    tracer.flush(30)
    gc.collect()
    spent, started = [0.0], [0.0]

    def clock(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            spent[0] += time.perf_counter() - started[0]

    before = [generation["collections"] for generation in gc.get_stats()]
    gc.callbacks.append(clock)
    try:
        for _ in range(number):
            call()
    finally:
        gc.callbacks.remove(clock)
    made = [now - then for now, then in zip((g["collections"] for g in gc.get_stats()), before, strict=True)]
    return GC(sum(made) / number * 1000, made[2], spent[0] / number * 1e6)


def main() -> None:
    print(
        f"plain -> instrumented client, fake provider in another process: {TRIALS} trials in fresh processes, "
        f"each {ROUNDS} shuffled rounds x {PER_ROUND} calls; per trial the median difference, here the median "
        f"over trials (and their range); target <= {TARGET_US:.0f} µs"
    )
    with provider_process() as url:
        found = trials(url)
        for rows in zip(*found, strict=True):
            report(list(rows))
        if importlib.util.find_spec(PEER) is None:
            print("  (the peer rows need the bench extra: pip install -e '.[dev,bench]')")
        else:
            print(f"the same calls through a peer's instrumentation, {max(TRIALS // 2, 2)} trials:")
            for rows in zip(*trials(url, peer_trial, max(TRIALS // 2, 2)), strict=True):
                report(list(rows))
        tracer = tokentrace.Tracer(transport=_Discard())
        alone = wrapper_alone(url, tracer)
        cold = swept(url, tracer)
        with tokentrace.Tracer(transport=_Discard()) as counted:
            collected = gc_pressure(url, counted)
    print("the wrapper alone around canned SDK results, CPU per call: on the calling thread / in all,")
    print("with the span built, priced and counted on the worker")
    for label, caller, total, results in alone:
        per = f"{caller * 1000 / results:.0f} / {total * 1000 / results:.0f} ns per chunk" if results > 100 else ""
        print(row(label, f"{caller:.2f} / {total:.2f} µs", per))
    print(f"the same, each call right after a 16 MB sweep of memory ({SWEPT_CALLS:,} interleaved calls each):")
    print("the plain call's median wall time, and what tracing adds")
    for label, plain, added in cold:
        print(row(label, f"{plain:.2f} µs {added:+6.2f}", f"target <= {TARGET_US:.0f} µs"))
    print("capture_content: reading a request's content on the caller's thread / making its whole JSON")
    for label, cut, whole in captured_prompt():
        print(row(f"a request holding {label}", f"{cut:.1f} / {whole:.0f} µs"))
    print("garbage collections per 1000 calls (of which full), and µs per call spent in them: plain / traced")
    for label, plain, traced in collected:
        made = f"{plain.collections:.1f} ({plain.full}) / {traced.collections:.1f} ({traced.full})"
        print(row(label, made, f"{plain.us:.2f} / {traced.us:.2f} µs"))
    tracer.flush(30)
    stats = tracer.stats()
    print(f"  spans written {stats['written']}, dropped {dict(stats['dropped'])}")
    print(f"  ({os.cpu_count()} cores, Python {sys.version.split()[0]})")
    tracer.close()


if __name__ == "__main__":
    main()
