"""A forked child. Forked while another thread holds one of tokentrace's locks (its worker
pricing a span, aggregating a batch, evaluating the rules), it gets every lock back unlocked: its
tracing, queries and traced calls go on rather than hang. Its metric windows and alert rules are
about its own spans, and its rules tick."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import openai
import pytest

import tokentrace
from tests.fakes.providers import ProviderServer
from tokentrace import AlertRule, CallbackDelivery, Span, Tracer, pricing
from tokentrace.integrations import _calls
from tokentrace.testing import InMemoryTransport

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")

HUNG = -signal.SIGKILL


@contextmanager
def held(*locks: Any) -> Iterator[None]:
    """``locks`` held by another thread while the block runs."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with ExitStack() as stack:
            for lock in locks:
                stack.enter_context(lock)
            holding.set()
            release.wait(60)

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(5)
    try:
        yield
    finally:
        release.set()
        thread.join(5)


def in_child(work: Callable[[], Any]) -> tuple[int, Any]:
    """Fork; the child runs ``work`` and sends back its result as JSON. Returns the child's exit
    status and that result; a child still running after 20 s is killed (status ``HUNG``)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.write(write, json.dumps(work()).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    deadline = time.monotonic() + 20
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read)
            return HUNG, None
        time.sleep(0.02)
    with os.fdopen(read, "rb") as pipe:
        sent = pipe.read()
    return os.waitstatus_to_exitcode(status), json.loads(sent) if sent else None


def test_a_child_forked_while_the_worker_held_every_lock_of_the_pipeline_traces_prices_and_queries() -> None:
    fired: list[dict[str, Any]] = []
    rule = AlertRule("spend", "total_cost", ">", 100, "1h", CallbackDelivery(fired.append))
    transport = InMemoryTransport()
    with Tracer(transport=transport, alerts=[rule]) as tracer:
        with tracer.trace("warm") as trace:  # the worker and its pricing in use in the parent
            trace.record(Span(model="gpt-4o", provider="openai", prompt_tokens=1, comp_tokens=1))
        assert tracer.flush(5)

        def child() -> Any:
            pricing._cache.clear()  # so that pricing takes its lock again
            with tracer.trace("child") as trace:
                trace.record(Span(model="gpt-4o", provider="openai", prompt_tokens=1000, comp_tokens=100))
            flushed = tracer.flush(5)
            snapshot = tracer.metrics("1h", name="child")
            cost = tokentrace.cost("gpt-4o-mini", {"prompt_tokens": 1000, "completion_tokens": 100})
            names = [span.name for span in transport.spans]
            return [flushed, snapshot.span_count, str(snapshot.total_cost), str(cost), names]

        locks = [
            pricing._lock,
            tracer.aggregator._lock,
            tracer.alert_engine._lock,
            transport._lock,
            tracer._trace_lock,
            tracer._pipeline._worker._done,
        ]
        with held(*locks):
            status, result = in_child(child)
    assert status == 0, "the child hung on a lock its parent's thread held"
    # $2.50 per Mtok in, $10 out; gpt-4o-mini: $0.15 and $0.60
    assert result == [True, 1, "0.0035", "0.00021", ["warm", "child"]]


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    with ProviderServer() as fake:
        yield fake


def test_a_traced_call_in_a_child_forked_while_the_results_already_recorded_were_locked(
    server: ProviderServer,
) -> None:
    transport = InMemoryTransport()
    with Tracer(transport=transport) as tracer, openai.OpenAI(base_url=server.openai_url, api_key="k") as raw:
        client = tracer.instrument(raw)
        queued = client.responses.create(model="o4-mini", input="hi", background=True)
        _calls.first_time(tracer, "made")  # the tracer's record of results read after their call

        def child() -> Any:
            finished = client.responses.retrieve(queued.id)  # recorded once, when first seen finished
            assert tracer.flush(5)
            return [finished.status, [(s.name, s.attributes.get("tokentrace.background")) for s in transport.spans]]

        with held(_calls._recorded_lock, _calls._recorded[tracer]._lock):
            status, result = in_child(child)
    assert status == 0, "the child's traced call hung on a lock its parent's thread held"
    assert result == ["completed", [["responses", "queued"], ["responses", "completed"]]]


def test_every_lock_of_the_package_is_made_fork_safe() -> None:
    """Each module makes its locks through ``_fork``; a plain ``threading`` lock is a hang waiting
    for a forked child."""
    root = os.path.dirname(tokentrace.__file__)
    plain = []
    for folder, _, names in os.walk(root):
        for name in names:
            if name.endswith(".py") and name != "_fork.py":
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as source:
                    for number, line in enumerate(source, 1):
                        if any(f"threading.{kind}(" in line for kind in ("Lock", "RLock", "Condition", "Semaphore")):
                            plain.append(f"{os.path.relpath(path, root)}:{number}")
    assert plain == []


def test_a_forked_child_counts_and_alerts_on_its_own_spans_and_its_rules_tick() -> None:
    notices: list[tuple[str, str]] = []
    delivery = CallbackDelivery(lambda payload: notices.append((payload["alert"], payload["state"])))
    rules = [
        AlertRule("spend", "total_cost", ">", 0.005, "1h", delivery),
        AlertRule("burst", "span_count", ">", 0, "2s", delivery),
    ]
    with Tracer(transport=InMemoryTransport(), alerts=rules) as tracer:
        for _ in range(2):  # $0.0035 each: the hour's spend crosses $0.005
            with tracer.trace("parent") as trace:
                trace.record(Span(model="gpt-4o", provider="openai", prompt_tokens=1000, comp_tokens=100))
        assert tracer.flush(5)
        assert sorted(notices) == [("burst", "firing"), ("spend", "firing")]

        def child() -> Any:
            del notices[:]  # the parent's, copied
            with tracer.trace("child") as trace:
                trace.record(Span(model="gpt-4o", provider="openai", prompt_tokens=1000, comp_tokens=100))
            assert tracer.flush(5)
            snapshot = tracer.metrics("1h")
            states = {state["name"]: state["state"] for state in tracer.alert_engine.states()}
            deadline = time.monotonic() + 15
            while ("burst", "resolved") not in notices and time.monotonic() < deadline:
                time.sleep(0.05)  # only the ticker resolves it: no span comes to evaluate it
            return [snapshot.span_count, str(snapshot.total_cost), states, notices]

        status, result = in_child(child)
    assert status == 0
    assert result == [
        1,  # not the parent's 2 as well
        "0.0035",
        {"spend": "inactive", "burst": "firing"},  # the spend is under $0.005 without the parent's
        [["burst", "firing"], ["burst", "resolved"]],
    ]
