"""Per-call overhead of an instrumented OpenAI / Anthropic client, against the local fake provider.

The fake provider (``tests/fakes/providers.py``) runs in its own process, as a real one would, so
its threads do not compete with the client for the interpreter lock. Each scenario makes the same
calls through a client's own SDK method (kept from before the client was instrumented) and through
its traced one, so both share one connection pool and the same objects, in one run: many short
rounds in a shuffled order, and the overhead is the median over rounds of (traced - plain) in the
same round. It is given as wall time per call, as the client process's CPU time per call (all its
threads, so tokentrace's background worker is included) and as the calling thread's CPU time. A
loopback call costs ~1 ms and one call's time wanders by tens of µs; the first row, the same plain
calls timed as two contenders, shows the noise that is left. The last row times the wrapper alone
around a canned SDK result.

Usage: ``python benchmarks/bench_instrument.py [--quick]``
"""

from __future__ import annotations

import asyncio
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
from _util import row
from tests.fakes.providers import ProviderServer
from tokentrace.integrations import _calls
from tokentrace.integrations import openai as openai_integration
from tokentrace.spans import Span
from tokentrace.transports.base import BatchingTransport

QUICK = "--quick" in sys.argv
ROUNDS, PER_ROUND = (20, 25) if QUICK else (200, 50)
MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]
TARGET_US = 20.0


class Timing(NamedTuple):
    wall: float  # µs per call
    cpu: float  # µs of process CPU per call
    caller: float  # µs of the calling thread's CPU per call (the tracer's workers excluded)


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


def _orders(count: int) -> Iterator[list[int]]:
    """Each round's order of ``count`` contenders, shuffled (seeded), so none always follows another."""
    rng = random.Random(20261128)
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


def interleaved(*calls: Callable[[], object]) -> list[Timing]:
    """Per-call timings of ``calls`` (see :func:`_overheads`), run in alternating rounds."""
    for call in calls:
        call()  # warm connections and lazy imports
    runs: list[list[Timing]] = [[] for _ in calls]
    for order in _orders(len(calls)):
        for index in order:
            started = _now()
            for _ in range(PER_ROUND):
                calls[index]()
            runs[index].append(_per_call(started))
    return _overheads(runs)


async def interleaved_async(*calls: Callable[[], Awaitable[object]]) -> list[Timing]:
    """:func:`interleaved` for coroutine functions, on the running event loop."""
    for call in calls:
        await call()
    runs: list[list[Timing]] = [[] for _ in calls]
    for order in _orders(len(calls)):
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


def report(label: str, plain: Timing, traced: Timing) -> None:
    wall = f"{plain.wall:7.0f} -> {traced.wall:7.0f} µs ({traced.wall - plain.wall:+5.1f})"
    cpu = f"CPU {traced.cpu - plain.cpu:+5.1f}, caller's thread {traced.caller - plain.caller:+5.1f} µs"
    print(row(label, wall, cpu))


def sync_scenarios(url: str, tracer: tokentrace.Tracer) -> None:
    with (
        openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0) as client,
        anthropic.Anthropic(base_url=url, api_key="k", max_retries=0) as claude,
    ):
        # One client each, called through the SDK's own method and through the traced one, so
        # that both go over the same connection and the same objects.
        plain_chat, plain_messages = client.chat.completions.create, claude.messages.create
        tracer.instrument(client)
        tracer.instrument(claude)
        traced_chat, traced_messages = client.chat.completions.create, claude.messages.create

        def chat(create: Callable[..., Any]) -> Callable[[], object]:
            return lambda: create(model="gpt-4o", messages=MESSAGES)

        def stream(create: Callable[..., Any], **kw: Any) -> Callable[[], object]:
            return lambda: list(create(model="gpt-4o", messages=MESSAGES, stream=True, **kw))

        def messages(create: Callable[..., Any]) -> Callable[[], object]:
            return lambda: create(model="claude-sonnet-4-0", max_tokens=64, messages=MESSAGES)

        def message_stream(create: Callable[..., Any]) -> Callable[[], object]:
            return lambda: list(create(model="claude-sonnet-4-0", max_tokens=64, messages=MESSAGES, stream=True))

        first, second, instrumented = interleaved(chat(plain_chat), chat(plain_chat), chat(traced_chat))
        report("noise: the same plain calls, timed apart", first, second)
        report("openai chat.completions.create", first, instrumented)
        # A traced stream asks for the usage chunk; the second baseline asks for it too.
        bare, with_usage, traced_stream = interleaved(
            stream(plain_chat), stream(plain_chat, stream_options={"include_usage": True}), stream(traced_chat)
        )
        report("openai chat stream, read to the end", bare, traced_stream)
        report("  same, baseline also asking for the usage chunk", with_usage, traced_stream)
        report("anthropic messages.create", *interleaved(messages(plain_messages), messages(traced_messages)))
        report(
            "anthropic messages.create(stream=True)",
            *interleaved(message_stream(plain_messages), message_stream(traced_messages)),
        )


def async_scenario(url: str, tracer: tokentrace.Tracer) -> None:
    async def main() -> list[Timing]:
        async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="k", max_retries=0) as client:
            plain = client.chat.completions.create
            traced = tracer.instrument(client).chat.completions.create

            def chat(create: Callable[..., Awaitable[object]]) -> Callable[[], Awaitable[object]]:
                return lambda: create(model="gpt-4o", messages=MESSAGES)

            return await interleaved_async(chat(plain), chat(traced))

    report("openai AsyncOpenAI chat.completions.create", *asyncio.run(main()))


def wrapper_alone(url: str, tracer: tokentrace.Tracer) -> tuple[float, float]:
    """µs per call the chat wrapper adds to a function returning a canned ChatCompletion: on the
    calling thread, and in all (the span is built, priced and counted on the tracer's worker)."""
    with openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0) as client:
        completion = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    def canned(**kwargs: Any) -> Any:
        return completion

    wrapped = _calls.traced_sync(_calls.Settings(tracer), openai_integration.CHAT, canned)
    number = 5_000 if QUICK else 20_000  # well within the tracer's queue

    def run(call: Callable[[], object]) -> Timing:
        tracer.flush(30)
        started = _now()
        for _ in range(number):
            call()
        caller = time.thread_time() - started.caller
        tracer.flush(30)
        return Timing(0.0, (time.process_time() - started.cpu) / number * 1e6, caller / number * 1e6)

    bare, traced = [], []
    for _ in range(5):
        bare.append(run(lambda: canned(model="gpt-4o", messages=MESSAGES)))
        traced.append(run(lambda: wrapped(model="gpt-4o", messages=MESSAGES)))
    caller = statistics.median(t.caller for t in traced) - statistics.median(t.caller for t in bare)
    total = statistics.median(t.cpu for t in traced) - statistics.median(t.cpu for t in bare)
    return caller, total


def main() -> None:
    tracer = tokentrace.Tracer(transport=_Discard())
    print(
        f"plain -> instrumented client, fake provider in another process "
        f"({ROUNDS} shuffled rounds x {PER_ROUND} calls, median difference; target <= {TARGET_US:.0f} µs)"
    )
    with provider_process() as url:
        sync_scenarios(url, tracer)
        async_scenario(url, tracer)
        alone = wrapper_alone(url, tracer)
    caller, total = alone
    print("the wrapper alone around a canned ChatCompletion, CPU per call")
    print(row("on the calling thread: clock, model and usage objects, queue", f"{caller:.2f} µs"))
    print(row("in all, with the span built, priced, counted on the worker", f"{total:.2f} µs"))
    tracer.flush(30)
    stats = tracer.stats()
    print(f"  spans written {stats['written']}, dropped {dict(stats['dropped'])}")
    print(f"  ({os.cpu_count()} cores, Python {sys.version.split()[0]})")
    tracer.close()


if __name__ == "__main__":
    main()
