"""The alert state machine: the seed's rule, pending, cooldown, resolve, flapping, deliveries."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from tokentrace.alerts import AlertEngine, AlertRule, CallbackDelivery, Delivery, DeliveryOutcome, StdoutDelivery
from tokentrace.spans import Span, Status
from tokentrace.windows import WindowAggregator

T0 = 1_773_586_800  # 2026-03-15T15:00:00Z


class Clock:
    def __init__(self) -> None:
        self.now = float(T0)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Inbox(list[dict[str, Any]]):
    """Collects the payloads a CallbackDelivery receives."""

    def __call__(self, payload: dict[str, Any]) -> None:
        self.append(payload)


class Harness:
    def __init__(self, *rules: AlertRule, same_batch: bool = True) -> None:
        self.clock = Clock()
        self.aggregator = WindowAggregator(clock=self.clock)
        self.engine = AlertEngine(rules, self.aggregator)
        self.same_batch = same_batch

    def record(self, *spans: Span) -> None:
        """What the tracer's worker does with each batch: the engine takes the batch's totals
        from the aggregator; handed a copy, it sums the spans itself."""
        batch = list(spans)
        self.aggregator.add_many(batch)
        self.engine.observe(batch if self.same_batch else list(batch))
        assert self.engine.flush(5)

    def tick(self, after: float = 0) -> None:
        self.clock.advance(after)
        self.engine.tick()
        assert self.engine.flush(5)

    def span(self, cost: str = "1.28", **fields: Any) -> Span:
        return Span(
            model=fields.pop("model", "gpt-4o"), provider="openai", cost=Decimal(cost),
            ended_at=round(self.clock.now * 1000), **fields,
        )  # fmt: skip


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def closing() -> Iterator[list[Harness]]:
    harnesses: list[Harness] = []
    yield harnesses
    for harness in harnesses:
        harness.engine.close(2)


@pytest.fixture(params=[True, False], ids=["same-batch", "copied-batch"])
def make(closing: list[Harness], request: pytest.FixtureRequest) -> Any:
    def make(*rules: AlertRule) -> Harness:
        harness = Harness(*rules, same_batch=request.param)
        closing.append(harness)
        return harness

    return make


def cost_rule(delivery: Any, **options: Any) -> AlertRule:
    return AlertRule("hourly-cost-spike", "total_cost", ">", 5.00, "1h", delivery, **options)


# --- the seed's rule ----------------------------------------------------------------------------


def test_seed_rule_fires_once_on_the_span_that_crosses_five_dollars(make: Any) -> None:
    out = io.StringIO()
    h = make(cost_rule(StdoutDelivery(out=out)))
    for _ in range(3):
        h.record(h.span())
        h.tick(after=5)
    assert out.getvalue() == ""  # 3.84
    h.record(h.span())  # 5.12
    payload = json.loads(out.getvalue())
    assert list(payload)[:6] == ["alert", "fired_at", "metric", "value", "threshold", "window"]
    assert {k: payload[k] for k in list(payload)[:6]} == {
        "alert": "hourly-cost-spike",
        "fired_at": "2026-03-15T15:00:15.000Z",
        "metric": "total_cost",
        "value": 5.12,
        "threshold": 5.0,
        "window": "1h",
    }
    assert '"value": 5.12,' in out.getvalue() and '"threshold": 5.0,' in out.getvalue()
    written = out.getvalue()
    for _ in range(20):  # more spending and ticks for the next 50 minutes: still the same alert
        h.record(h.span())
        h.tick(after=150)
    assert out.getvalue() == written


def test_payload_keys_and_values_in_order(make: Any, inbox: Inbox) -> None:
    h = make(cost_rule(inbox, level="critical", filters={"model": "gpt-4o"}))
    h.record(*(h.span() for _ in range(4)))
    assert inbox == [
        {
            "alert": "hourly-cost-spike",
            "fired_at": "2026-03-15T15:00:00.000Z",
            "metric": "total_cost",
            "value": Decimal("5.12"),
            "threshold": Decimal("5.0"),
            "window": "1h",
            "state": "firing",
            "level": "critical",
            "filters": {"model": "gpt-4o"},
            "resolved_at": None,
            "fingerprint": h.engine.rules[0].fingerprint,
        }
    ]
    assert list(inbox[0]) == [
        "alert", "fired_at", "metric", "value", "threshold", "window",
        "state", "level", "filters", "resolved_at", "fingerprint",
    ]  # fmt: skip


def test_a_batch_reports_the_value_at_the_crossing_span(make: Any, inbox: Inbox) -> None:
    h = make(cost_rule(inbox))
    h.record(*(h.span() for _ in range(7)))  # 8.96 in all; the 4th span crossed at 5.12
    assert [p["value"] for p in inbox] == [Decimal("5.12")]


def test_count_and_token_rules_fire_on_the_crossing_span_of_a_batch(make: Any, inbox: Inbox) -> None:
    errors = AlertRule("errors", "error_count", ">", 2, "1h", inbox)
    tokens = AlertRule("tokens", "total_tokens", ">", 1000, "1h", inbox)
    h = make(errors, tokens)
    h.record(*(h.span("0", prompt_tokens=100, comp_tokens=50, status=Status.ERROR) for _ in range(2)))
    assert inbox == []
    batch = [h.span("0", prompt_tokens=300, comp_tokens=100) for _ in range(3)]
    h.record(*batch, h.span("0", status=Status.ERROR), Span(model="gpt-4o", provider="openai", cost=None))
    assert sorted((p["alert"], p["value"]) for p in inbox) == [("errors", 3), ("tokens", 1100)]


def test_filters_only_count_their_spans(make: Any, inbox: Inbox) -> None:
    h = make(cost_rule(inbox, filters={"model": "gpt-4o-mini"}))
    h.record(*(h.span("2.00") for _ in range(5)))
    assert inbox == []
    h.record(*(h.span("2.00", model="gpt-4o-mini") for _ in range(3)))
    assert [p["value"] for p in inbox] == [Decimal("6.00")]


def test_spend_that_left_the_window_does_not_count_towards_a_crossing(make: Any, inbox: Inbox) -> None:
    h = make(cost_rule(inbox))
    h.record(h.span("4.00"))
    h.tick(after=3660)  # the 4.00 left the window
    h.record(h.span("1.50"))
    assert inbox == []
    h.record(h.span("3.00"), h.span("0.60"))  # 4.50, then 5.10
    assert [str(p["value"]) for p in inbox] == ["5.1"]


# --- windows sliding, resolving, repeating ------------------------------------------------------


def test_resolves_once_when_the_spend_leaves_the_window(make: Any, inbox: Inbox) -> None:
    h = make(cost_rule(inbox))
    h.record(*(h.span() for _ in range(4)))
    h.tick(after=59 * 60)
    assert [p["state"] for p in inbox] == ["firing"]
    h.tick(after=2 * 60)  # the spans are now 61 minutes old
    assert [p["state"] for p in inbox] == ["firing", "resolved"]
    assert inbox[1]["value"] == Decimal(0)
    assert (inbox[1]["fired_at"], inbox[1]["resolved_at"]) == ("2026-03-15T15:00:00.000Z", "2026-03-15T16:01:00.000Z")
    for _ in range(10):
        h.tick(after=60)
    assert len(inbox) == 2


def test_notify_resolved_false_sends_no_resolved_notice(make: Any, inbox: Inbox) -> None:
    h = make(cost_rule(inbox, notify_resolved=False))
    h.record(*(h.span() for _ in range(4)))
    h.tick(after=61 * 60)
    assert [p["state"] for p in inbox] == ["firing"]
    assert h.engine.states()[0]["state"] == "inactive"


def test_repeats_only_after_cooldown_while_still_firing(make: Any, inbox: Inbox) -> None:
    rule = AlertRule("busy", "span_count", ">=", 3, "10m", inbox, cooldown="15m")
    h = make(rule)
    for minute in range(40):  # 3 calls a minute, for 40 minutes: always firing
        h.record(*(h.span() for _ in range(3)))
        if minute < 39:
            h.tick(after=60)
    fired = [(p["state"], p["fired_at"]) for p in inbox]
    assert fired == [("firing", "2026-03-15T15:00:00.000Z")] * 3  # at 0, 15 and 30 minutes
    assert h.engine.states()[0]["notifications"] == 3


def test_for_holds_the_alert_pending(make: Any, inbox: Inbox) -> None:
    rule = AlertRule("slow", "latency_p95", ">", 2000, "10m", inbox, for_="2m")
    h = make(rule)
    for _ in range(7):  # slow for 1 min 45 s
        h.record(h.span(latency_ms=3000))
        h.tick(after=15)
    assert inbox == []
    assert h.engine.states()[0]["state"] == "pending"
    h.record(h.span(latency_ms=3000))
    h.tick(after=15)  # now held for 2 min 0 s
    h.tick(after=15)  # 2 min 15 s
    assert [(p["state"], p["fired_at"]) for p in inbox] == [("firing", "2026-03-15T15:02:00.000Z")]
    assert float(inbox[0]["value"]) == pytest.approx(3000, rel=0.01)


def test_a_condition_that_clears_while_pending_sends_nothing(make: Any, inbox: Inbox) -> None:
    rule = AlertRule("errors", "error_count", ">", 0, "1m", inbox, for_="2m")
    h = make(rule)
    h.record(h.span(status="error"))
    h.tick(after=30)
    assert h.engine.states()[0]["state"] == "pending"
    h.tick(after=45)  # the error left the 1 min window before 2 min passed
    assert h.engine.states()[0]["state"] == "inactive"
    for _ in range(5):
        h.tick(after=60)
    assert inbox == []


def test_keep_firing_for_damps_flapping(make: Any, inbox: Inbox) -> None:
    rule = AlertRule("errors", "error_count", ">", 0, "30s", inbox, keep_firing_for="2m")
    h = make(rule)
    for _ in range(6):  # an error every 70 s: the condition flaps true/false
        h.record(h.span(status="error"))
        h.tick(after=35)
        h.tick(after=35)
    assert [p["state"] for p in inbox] == ["firing"]
    h.tick(after=25)  # no error for 1 min 35 s: still firing
    assert [p["state"] for p in inbox] == ["firing"]
    h.tick(after=30)  # no error for 2 min 5 s
    assert [p["state"] for p in inbox] == ["firing", "resolved"]


def test_a_restored_rule_keeps_firing_for_as_long_after_its_condition_last_held(make: Any, inbox: Inbox) -> None:
    def rule() -> AlertRule:
        return AlertRule("errors", "error_count", ">", 0, "1m", inbox, keep_firing_for="10m", cooldown="1h")

    h = make(rule())
    kept: list[bytes] = []
    h.engine.keep = kept.append
    for _ in range(60):  # an error every 30 s for 30 minutes: firing throughout
        h.record(h.span(status="error"))
        h.tick(after=30)
    last_held = h.clock.now  # the last check that still saw an error in the minute
    assert [p["state"] for p in inbox] == ["firing"]
    assert len(kept) == 31  # fired, then one step of a minute at a time: not a write per check

    h.clock.advance(90)  # a crash, and a restart with the same windows a minute and a half later
    restarted = AlertEngine([rule()], h.aggregator)
    try:
        assert restarted.restore(kept[-1]) == 1
        for minutes in range(2, 9):  # still firing until 10 minutes after the condition last held
            h.clock.now = last_held + 60 * minutes
            restarted.tick()
            assert restarted.states()[0]["state"] == "firing", minutes
        h.clock.now = last_held + 600
        restarted.tick()
        assert restarted.flush(5)
        assert [p["state"] for p in inbox] == ["firing", "resolved"]
    finally:
        restarted.close(2)


def test_a_restored_pending_rule_does_not_count_the_time_no_process_watched_it(make: Any, inbox: Inbox) -> None:
    def rule() -> AlertRule:  # more than $5 in 24 h, held for 10 minutes
        return AlertRule("daily-spend", "total_cost", ">", 5, "24h", inbox, for_="10m")

    h = make(rule())
    kept: list[bytes] = []
    h.engine.keep = kept.append
    h.record(*(h.span("2.00") for _ in range(3)))
    h.tick(after=4 * 60)  # pending for 4 minutes when the process stops cleanly, keeping its state
    assert (h.engine.states()[0]["state"], inbox) == ("pending", [])
    stopped = h.engine.state()
    became_pending = kept[-1]  # all a crash leaves

    for saved, waits in ((stopped, 6 * 60), (became_pending, 10 * 60)):
        h.clock.advance(2 * 3600)  # back two hours later, the day's spend still over $5
        restarted = AlertEngine([rule()], h.aggregator)
        try:
            assert restarted.restore(saved) == 1
            h.clock.advance(waits - 1)
            restarted.tick()
            assert restarted.states()[0]["state"] == "pending"
            h.clock.advance(1)
            restarted.tick()
            assert restarted.states()[0]["state"] == "firing"
        finally:
            restarted.close(2)
    assert [p["state"] for p in inbox] == ["firing", "firing"]


def test_without_keep_firing_for_the_same_flapping_notifies_each_time(make: Any, inbox: Inbox) -> None:
    h = make(AlertRule("errors", "error_count", ">", 0, "30s", inbox))
    for _ in range(3):
        h.record(h.span(status="error"))
        h.tick(after=35)
        h.tick(after=35)
    assert [p["state"] for p in inbox] == ["firing", "resolved"] * 3


def test_less_than_rule_fires_without_traffic(make: Any, inbox: Inbox) -> None:
    h = make(AlertRule("too-quiet", "span_count", "<", 1, "10m", inbox))
    h.record(h.span())
    h.tick(after=9 * 60)
    assert inbox == []
    h.tick(after=2 * 60)  # nothing for 11 minutes
    assert [(p["state"], p["value"]) for p in inbox] == [("firing", 0)]
    h.record(h.span())
    assert [p["state"] for p in inbox] == ["firing", "resolved"]


@pytest.mark.parametrize("op", ["<", "<="])
def test_a_less_than_rule_waits_one_whole_window_after_the_start(make: Any, inbox: Inbox, op: str) -> None:
    h = make(AlertRule("too-quiet", "span_count", op, 1 if op == "<" else 0, "10m", inbox))
    for _ in range(9):  # nothing yet in windows that only just started: not quiet, new
        h.tick(after=60)
    assert inbox == [] and h.engine.states()[0]["state"] == "inactive"
    h.tick(after=60)  # ten minutes watched, and nothing in them
    assert [(p["state"], p["value"]) for p in inbox] == [("firing", 0)]


# --- bookkeeping and failures -------------------------------------------------------------------


def test_states_report_rules_and_their_state(make: Any, inbox: Inbox) -> None:
    h = make(cost_rule(inbox))
    h.record(*(h.span() for _ in range(4)))
    state = h.engine.states()[0]
    assert {k: state[k] for k in ("name", "state", "value", "active_since", "fired_at", "notifications")} == {
        "name": "hourly-cost-spike",
        "state": "firing",
        "value": 5.12,
        "active_since": "2026-03-15T15:00:00.000Z",
        "fired_at": "2026-03-15T15:00:00.000Z",
        "notifications": 1,
    }
    assert (state["last_delivery"], state["window"], state["threshold"], state["delivery"]) == (
        "delivered",
        "1h",
        5.0,
        "callback:Inbox",
    )


class Broken(Delivery):
    def send(self, payload: dict[str, Any], *, key: str) -> DeliveryOutcome:
        raise RuntimeError("pager is down")


def test_a_failing_delivery_is_counted_and_does_not_stop_other_alerts(make: Any, inbox: Inbox) -> None:
    h = make(cost_rule(Broken()), AlertRule("any-call", "span_count", ">", 0, "1h", inbox))
    h.record(*(h.span() for _ in range(4)))
    assert [p["alert"] for p in inbox] == ["any-call"]
    assert h.engine.counters.dropped["alert_delivery_error"] == 1
    assert h.engine.states()[0]["last_delivery"] == "failed"


def test_a_blocked_delivery_does_not_delay_observe(make: Any, inbox: Inbox) -> None:
    release = threading.Event()
    h = make(cost_rule(CallbackDelivery(lambda payload: release.wait(10))))
    h.aggregator.add_many([h.span("9")])
    h.engine.observe([h.span("9")])  # the callback now blocks its worker
    try:
        started = time.perf_counter()
        for _ in range(50):
            h.aggregator.add_many([h.span()])
            h.engine.observe([h.span()])
        assert time.perf_counter() - started < 2  # the callback holds its worker for 10 s
        assert h.engine.states()[0]["last_delivery"] is None
    finally:
        release.set()
    assert h.engine.flush(5)
    assert h.engine.states()[0]["last_delivery"] == "delivered"


def test_duplicate_rules_and_non_rules_are_rejected(inbox: Inbox) -> None:
    aggregator = WindowAggregator()
    with pytest.raises(ValueError, match="listed twice"):
        AlertEngine([cost_rule(inbox), cost_rule(inbox)], aggregator)
    with pytest.raises(ValueError, match="must be AlertRule objects"):
        AlertEngine([{"name": "x"}], aggregator)  # type: ignore[list-item]


def test_after_close_nothing_is_evaluated(make: Any, inbox: Inbox) -> None:
    h = make(cost_rule(inbox))
    assert h.engine.close(2)
    h.record(*(h.span() for _ in range(5)))
    assert inbox == []


@pytest.mark.parametrize(
    ("op", "threshold", "errors", "fires"),
    [(">", 0.1, 1, False), (">=", 0.3, 3, True), ("<=", 0.1, 1, True), ("<", 0.7, 7, False), (">=", 0.7, 7, True)],
)
def test_a_rate_equal_to_the_threshold_compares_as_the_decimal_it_prints_as(
    make: Any, inbox: Inbox, op: str, threshold: float, errors: int, fires: bool
) -> None:
    harness = make(AlertRule("errors", "error_rate", op, threshold, "5m", CallbackDelivery(inbox)))
    harness.clock.advance(300)  # a whole window watched, for the "<" rules
    harness.record(*(harness.span(status=Status.ERROR if i < errors else Status.OK) for i in range(10)))
    harness.tick(1)
    assert [p["value"] for p in inbox] == ([errors / 10] if fires else [])


def test_an_average_latency_equal_to_the_threshold_trips_a_ge_rule(make: Any, inbox: Inbox) -> None:
    harness = make(AlertRule("slow", "latency_avg", ">=", 100.1, "5m", CallbackDelivery(inbox)))
    harness.record(*(harness.span(latency_ms=ms) for ms in [100] * 9 + [101]))  # 1001 ms over 10 calls
    harness.tick(1)
    assert [p["value"] for p in inbox] == [100.1]
