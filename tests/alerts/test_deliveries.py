"""Deliveries: stdout and callbacks, and the webhook against a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import http.server
import io
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from tokentrace import __version__
from tokentrace.alerts import (
    SIGNATURE_HEADER,
    AlertEngine,
    AlertRule,
    CallbackDelivery,
    DeliveryOutcome,
    HTTPDelivery,
    StdoutDelivery,
    verify_signature,
)
from tokentrace.alerts.deliveries import encode_payload, sign
from tokentrace.spans import Span
from tokentrace.windows import WindowAggregator

PAYLOAD: dict[str, Any] = {
    "alert": "hourly-cost-spike",
    "fired_at": "2026-03-15T15:00:00.000Z",
    "metric": "total_cost",
    "value": Decimal("1.28") * 4,
    "threshold": Decimal("5.0"),
    "window": "1h",
    "state": "firing",
    "level": "warning",
    "filters": {},
    "resolved_at": None,
    "fingerprint": "b8d8eb05fcfa108d",
}
KEY = "b8d8eb05fcfa108d:firing:1773586800000"


# --- a real webhook receiver --------------------------------------------------------------------


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    stall: float = 0.0  # seconds to hold the request before answering
    trickle: bool = False  # send the answer a byte every 0.2 s (for about 30 s)


@dataclass
class Request:
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    """Answers POSTs with scripted answers (the last one repeats) and records the requests."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers) or [Answer()]
        self.requests: list[Request] = []
        self.answered: list[tuple[Request, int]] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/tokentrace"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02})

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()  # let stalled handlers go
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    def delivered(self) -> list[Request]:
        """Requests answered with a 2xx."""
        return [r for r, status in self.answered if 200 <= status < 300]

    def _answer(self, index: int) -> Answer:
        return self.answers[min(index, len(self.answers) - 1)]

    def _record(self, request: Request) -> Answer:
        with self._lock:
            self.requests.append(request)
            return self._answer(len(self.requests) - 1)

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = Request(dict(self.headers), body, time.monotonic())
                answer = receiver._record(request)
                if answer.stall and receiver.release.wait(answer.stall):
                    return  # the test is over; the client has long given up
                if answer.trickle:
                    text = f"HTTP/1.1 {answer.status} OK\r\nContent-Length: 0\r\nX-Pad: {'a' * 120}\r\n\r\n"
                    for i in range(len(text)):
                        if receiver.release.wait(0.2):
                            return
                        try:
                            self.wfile.write(text[i].encode())
                            self.wfile.flush()
                        except OSError:
                            return  # the client gave up
                    return
                receiver.answered.append((request, answer.status))
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"


@pytest.fixture
def hooks() -> Iterator[list[HTTPDelivery]]:
    made: list[HTTPDelivery] = []
    yield made
    for delivery in made:
        delivery.close()


def webhook(hooks: list[HTTPDelivery], url: str, **options: Any) -> HTTPDelivery:
    options.setdefault("backoff", 0.01)
    delivery = HTTPDelivery(url, **options)
    hooks.append(delivery)
    return delivery


# --- webhook ------------------------------------------------------------------------------------


def test_503_three_times_then_200_is_delivered_exactly_once(hooks: list[HTTPDelivery]) -> None:
    with Receiver(Answer(503), Answer(503), Answer(503), Answer(200)) as receiver:
        outcome = webhook(hooks, receiver.url).send(PAYLOAD, key=KEY)
    assert outcome is DeliveryOutcome.DELIVERED
    assert len(receiver.requests) == 4
    assert len(receiver.delivered()) == 1
    assert {r.headers["Idempotency-Key"] for r in receiver.requests} == {KEY}
    assert {r.body for r in receiver.requests} == {encode_payload(PAYLOAD)}


def test_the_body_is_the_payload_with_exact_numbers(hooks: list[HTTPDelivery]) -> None:
    with Receiver() as receiver:
        webhook(hooks, receiver.url, headers={"Authorization": "Bearer t0ken"}).send(PAYLOAD, key=KEY)
    (request,) = receiver.requests
    assert request.body.startswith(b'{"alert":"hourly-cost-spike","fired_at":"2026-03-15T15:00:00.000Z",')
    assert b'"value":5.12,"threshold":5.0,"window":"1h"' in request.body
    assert json.loads(request.body) == {**PAYLOAD, "value": 5.12, "threshold": 5.0}
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Bearer t0ken"
    assert request.headers["User-Agent"] == f"tokentrace/{__version__}"
    assert SIGNATURE_HEADER not in request.headers


def test_400_is_not_retried(hooks: list[HTTPDelivery]) -> None:
    with Receiver(Answer(400), Answer(200)) as receiver:
        outcome = webhook(hooks, receiver.url).send(PAYLOAD, key=KEY)
    assert outcome is DeliveryOutcome.REJECTED
    assert len(receiver.requests) == 1


def test_429_retry_after_longer_than_the_backoff_sets_the_delay(hooks: list[HTTPDelivery]) -> None:
    with Receiver(Answer(429, {"Retry-After": "1"}), Answer(200)) as receiver:
        outcome = webhook(hooks, receiver.url, backoff=0.01, deadline=5).send(PAYLOAD, key=KEY)
    assert outcome is DeliveryOutcome.DELIVERED
    first, second = receiver.requests
    assert second.at - first.at >= 0.95


@pytest.mark.parametrize("asked", ["0", "-5", "nan", "inf", email.utils.formatdate(time.time() - 10, usegmt=True)])
def test_a_retry_after_shorter_than_the_backoff_does_not_hurry_the_retries(
    hooks: list[HTTPDelivery], asked: str
) -> None:
    # a receiver that keeps refusing and asks for no wait at all gets the backoff (0.1, 0.2, 0.4 s...)
    with Receiver(Answer(429, {"Retry-After": asked})) as receiver:
        outcome = webhook(hooks, receiver.url, backoff=0.2, deadline=1).send(PAYLOAD, key=KEY)
    assert outcome is DeliveryOutcome.FAILED
    assert 2 <= len(receiver.requests) <= 5


def test_a_retry_after_beyond_the_deadline_gives_up_at_once(hooks: list[HTTPDelivery]) -> None:
    with Receiver(Answer(429, {"Retry-After": "3600"}), Answer(200)) as receiver:
        started = time.monotonic()
        outcome = webhook(hooks, receiver.url, deadline=5).send(PAYLOAD, key=KEY)
    assert outcome is DeliveryOutcome.FAILED
    assert len(receiver.requests) == 1
    assert time.monotonic() - started < 2


def test_a_receiver_that_stalls_past_the_timeout_is_cut_off(hooks: list[HTTPDelivery]) -> None:
    with Receiver(Answer(200, stall=30)) as receiver:
        started = time.monotonic()
        outcome = webhook(hooks, receiver.url, timeout=0.2, deadline=0.7).send(PAYLOAD, key=KEY)
        elapsed = time.monotonic() - started
    assert outcome is DeliveryOutcome.FAILED
    assert 0.4 <= elapsed < 2
    assert 2 <= len(receiver.requests) <= 4


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_sends_over_connections_of_its_own(hooks: list[HTTPDelivery]) -> None:
    with Receiver() as receiver:
        delivery = webhook(hooks, receiver.url)
        assert delivery.send(PAYLOAD, key="parent") is DeliveryOutcome.DELIVERED
        parents = delivery._client.made()  # its pooled sockets must not be written to by two processes
        pid = os.fork()
        if pid == 0:  # child
            code = 1
            try:
                sent = delivery.send(PAYLOAD, key="child")
                code = 0 if sent is DeliveryOutcome.DELIVERED and delivery._client.made() is not parents else 2
            finally:
                os._exit(code)
        assert os.waitpid(pid, 0)[1] == 0
        assert delivery.send(PAYLOAD, key="parent again") is DeliveryOutcome.DELIVERED
        assert delivery._client.made() is parents
    assert [r.headers["Idempotency-Key"] for r in receiver.requests] == ["parent", "child", "parent again"]


def test_a_wait_that_ends_past_the_deadline_gives_up_without_another_attempt(
    hooks: list[HTTPDelivery], monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a busy machine the wait between attempts can end after the deadline: the time left is
    # then below zero, and no attempt may be made with it (a negative timeout raises in the socket).
    from tokentrace.alerts import deliveries

    late = [0.0]
    monkeypatch.setattr(
        deliveries, "time", SimpleNamespace(monotonic=lambda: time.monotonic() + late[0], time=time.time)
    )

    class Oversleeping(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            late[0] += 10.0  # wakes up well past the 5 s deadline
            return False

    with Receiver(Answer(503), Answer(200)) as receiver:
        delivery = webhook(hooks, receiver.url, deadline=5)
        monkeypatch.setattr(deliveries, "threading", SimpleNamespace(Event=Oversleeping))
        outcome = delivery.send(PAYLOAD, key=KEY)
    assert outcome is DeliveryOutcome.FAILED
    assert len(receiver.requests) == 1


def test_an_answer_trickled_in_is_cut_off_at_the_timeout(hooks: list[HTTPDelivery]) -> None:
    # each byte comes well within the timeout: only a limit on the whole attempt ends it
    with Receiver(Answer(200, trickle=True)) as receiver:
        started = time.monotonic()
        outcome = webhook(hooks, receiver.url, timeout=0.5, deadline=1.2).send(PAYLOAD, key=KEY)
        elapsed = time.monotonic() - started
    assert outcome is DeliveryOutcome.FAILED
    assert 2 <= len(receiver.requests) <= 3
    assert elapsed < 10  # the answer alone takes 30 s to come


def test_a_dead_endpoint_is_retried_until_the_deadline(hooks: list[HTTPDelivery]) -> None:
    started = time.monotonic()
    outcome = webhook(hooks, closed_port_url(), deadline=0.5).send(PAYLOAD, key=KEY)
    assert outcome is DeliveryOutcome.FAILED
    assert time.monotonic() - started < 2


def test_the_hmac_signature_verifies(hooks: list[HTTPDelivery]) -> None:
    with Receiver() as receiver:
        webhook(hooks, receiver.url, secret="s3cret").send(PAYLOAD, key=KEY)
    (request,) = receiver.requests
    header = request.headers[SIGNATURE_HEADER]
    assert header.startswith("t=") and ",v1=" in header
    assert verify_signature("s3cret", header, request.body)
    assert not verify_signature("wrong", header, request.body)
    assert not verify_signature("s3cret", header, request.body.replace(b"5.12", b"0.01"))
    assert not verify_signature("s3cret", header, request.body, now=time.time() + 3600)
    assert not verify_signature("s3cret", "v1=abc", request.body)


def test_sign_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(b"key", b"1773586800.{}", hashlib.sha256).hexdigest()
    assert sign("key", b"{}", 1773586800) == sign(b"key", b"{}", 1773586800) == f"t=1773586800,v1={expected}"


def test_observe_is_not_delayed_while_a_webhook_stalls(hooks: list[HTTPDelivery]) -> None:
    now = [1_773_586_800.0]
    aggregator = WindowAggregator(clock=lambda: now[0])

    def record(cost: str) -> float:
        spans = [Span(model="gpt-4o", provider="openai", cost=Decimal(cost), ended_at=round(now[0] * 1000))]
        started = time.perf_counter()
        aggregator.add_many(spans)
        engine.observe(spans)
        return time.perf_counter() - started

    with Receiver(Answer(200, stall=30), Answer(200)) as receiver:
        delivery = webhook(hooks, receiver.url, timeout=0.5, deadline=5)
        rule = AlertRule("hourly-cost-spike", "total_cost", ">", 5.0, "1h", delivery)
        engine = AlertEngine([rule], aggregator)
        before = sorted(record("0.01") for _ in range(20))
        record("6")  # fires; the first attempt stalls for its 0.5 s timeout
        during = sorted(record("0.01") for _ in range(200))
        assert engine.states()[0]["last_delivery"] is None  # still being delivered
        assert engine.flush(5)
        engine.close(1)
    assert during[-1] < 0.05  # nothing waited on the webhook
    assert during[len(during) // 2] < 10 * before[len(before) // 2] + 0.001
    assert engine.states()[0]["last_delivery"] == "delivered"
    assert len(receiver.requests) == 2 and len(receiver.delivered()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"url": "ftp://example.com"}, r"HTTPDelivery\.url must be an http:// or https:// URL"),
        ({"url": "not a url"}, r"HTTPDelivery\.url must be an http:// or https:// URL"),
        ({"url": "http://x", "headers": {"X-N": 1}}, r"HTTPDelivery\.headers\['X-N'\] must be printable ASCII text"),
        (
            {"url": "http://x", "headers": {"Authorization": "Bearer s3cret\n"}},
            r"HTTPDelivery\.headers\['Authorization'\] must be printable ASCII text without a space or line break",
        ),
        ({"url": "http://x", "headers": {"X Key": "v"}}, r"HTTPDelivery\.headers: 'X Key' is not an HTTP header name"),
        ({"url": "http://x", "headers": ["X-N"]}, r"HTTPDelivery\.headers must map header names to values, got list"),
        ({"url": "http://x", "secret": ""}, r"HTTPDelivery\.secret must be a non-empty str or bytes"),
        ({"url": "http://x", "timeout": 0}, r"HTTPDelivery\.timeout must be a number of seconds > 0"),
        ({"url": "http://x", "deadline": -1}, r"HTTPDelivery\.deadline must be a number of seconds > 0"),
    ],
)
def test_bad_webhook_settings_are_named(args: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        HTTPDelivery(**args)
    assert "s3cret" not in str(refused.value)  # a header's value is never shown


# --- stdout and callbacks -----------------------------------------------------------------------


def test_stdout_prints_the_payload_indented_like_the_quickstart(capsys: pytest.CaptureFixture[str]) -> None:
    assert StdoutDelivery().send(PAYLOAD, key=KEY) is DeliveryOutcome.DELIVERED
    out = capsys.readouterr().out
    assert out.startswith('{\n  "alert": "hourly-cost-spike",\n  "fired_at": "2026-03-15T15:00:00.000Z",\n')
    assert '\n  "value": 5.12,\n  "threshold": 5.0,\n  "window": "1h",\n' in out
    assert out.endswith('  "fingerprint": "b8d8eb05fcfa108d"\n}\n')


def test_stdout_one_line_per_payload() -> None:
    out = io.StringIO()
    StdoutDelivery(out=out, pretty=False).send(PAYLOAD, key=KEY)
    StdoutDelivery(out=out, pretty=False).send({**PAYLOAD, "state": "resolved"}, key=KEY)
    first, second = out.getvalue().splitlines()
    assert json.loads(first)["value"] == 5.12 and json.loads(second)["state"] == "resolved"


def test_callback_gets_a_copy_with_decimal_money() -> None:
    got: list[dict[str, Any]] = []
    assert CallbackDelivery(got.append).send(PAYLOAD, key=KEY) is DeliveryOutcome.DELIVERED
    assert got == [PAYLOAD] and got[0] is not PAYLOAD
    assert got[0]["value"] == Decimal("5.12")
    with pytest.raises(ValueError, match="CallbackDelivery needs a callable"):
        CallbackDelivery("print")  # type: ignore[arg-type]


def test_encoded_numbers_carry_no_float_noise() -> None:
    assert encode_payload({"value": Decimal("0.1") + Decimal("0.2"), "ms": 2140.5}) == b'{"value":0.3,"ms":2140.5}'


def test_a_delivery_closed_with_one_engine_delivers_for_the_next(hooks: list[HTTPDelivery]) -> None:
    with Receiver() as receiver:
        delivery = webhook(hooks, receiver.url)
        rule = AlertRule("spend", "total_cost", ">", 1, "1h", delivery)
        for _ in range(2):  # the same rule given to one engine, then, once that is closed, another
            aggregator = WindowAggregator(clock=lambda: 1_773_586_800.0)
            engine = AlertEngine([rule], aggregator)
            spans = [Span(model="gpt-4o", provider="openai", cost=Decimal("2"), ended_at=1_773_586_800_000)]
            aggregator.add_many(spans)
            engine.observe(spans)
            assert engine.flush(10)
            assert engine.states()[0]["last_delivery"] == "delivered"
            engine.close(5)
    assert [json.loads(r.body)["state"] for r in receiver.requests] == ["firing", "firing"]


def test_close_ends_the_wait_between_retries_of_a_send_under_way(hooks: list[HTTPDelivery]) -> None:
    with Receiver(Answer(503)) as receiver:
        delivery = webhook(hooks, receiver.url, backoff=30, deadline=60)
        outcomes: list[DeliveryOutcome] = []
        sending = threading.Thread(target=lambda: outcomes.append(delivery.send(PAYLOAD, key=KEY)))
        sending.start()
        deadline = time.monotonic() + 10
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        delivery.close()
        sending.join(10)
    assert outcomes == [DeliveryOutcome.FAILED]
    assert len(receiver.requests) == 1
