"""Alert rules across collector restarts: where each rule stood is kept in the database, so a
restart neither notifies a firing rule again nor leaves it firing once its condition cleared."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import tokentrace
from tests.collector_kit import make_span
from tokentrace.server.collector import Collector


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def start(db: Path, clock: Clock, *, threshold: float = 0.01) -> tuple[Collector, list[dict[str, Any]]]:
    """A collector with one cost rule, and the notifications it sends."""
    sent: list[dict[str, Any]] = []
    rule = tokentrace.AlertRule(
        name="hourly-cost", metric="total_cost", op=">", threshold=threshold, window="1h",
        delivery=tokentrace.CallbackDelivery(sent.append),
    )  # fmt: skip
    return Collector(db, rules=[rule], clock=clock), sent


def evaluate(collector: Collector) -> dict[str, Any]:
    """Evaluate the rule now, wait for its notifications, and say where it stands."""
    engine = collector.tracer.alert_engine
    assert engine is not None
    engine.tick()
    assert engine.flush(10)
    [state] = engine.states()
    return state


def test_a_rule_firing_before_a_restart_goes_on_firing_without_notifying_again(tmp_path: Path) -> None:
    clock = Clock()
    first, sent = start(tmp_path / "a.db", clock)
    first.ingest([make_span(cost="0.02", ended_ms=round(clock.now * 1000) - 1000)])
    assert evaluate(first)["state"] == "firing"
    first.close()
    assert [n["state"] for n in sent] == ["firing"]

    clock.now += 60
    second, sent_after = start(tmp_path / "a.db", clock)
    try:
        state = evaluate(second)
        assert (state["state"], state["notifications"]) == ("firing", 1)
        assert state["fired_at"] == sent[0]["fired_at"]  # the same firing, not a new one
        assert sent_after == []
    finally:
        second.close()


def test_a_rule_whose_condition_cleared_while_stopped_resolves_after_the_restart(tmp_path: Path) -> None:
    clock = Clock()
    first, sent = start(tmp_path / "a.db", clock)
    first.ingest([make_span(cost="0.02", ended_ms=round(clock.now * 1000) - 1000)])
    evaluate(first)
    first.close()

    clock.now += 2 * 3600  # the span has left the hour by the time the collector is back
    second, sent_after = start(tmp_path / "a.db", clock)
    try:
        assert evaluate(second)["state"] == "inactive"
    finally:
        second.close()
    assert [(n["state"], n["fired_at"]) for n in sent_after] == [("resolved", sent[0]["fired_at"])]


def test_a_changed_rule_and_spoilt_states_start_afresh(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    first, _ = start(tmp_path / "a.db", clock)
    first.ingest([make_span(cost="0.02", ended_ms=round(clock.now * 1000) - 1000)])
    evaluate(first)
    first.close()

    changed, sent = start(tmp_path / "a.db", clock, threshold=0.015)  # another rule: its own fingerprint
    try:
        assert evaluate(changed)["state"] == "firing"
        assert [n["state"] for n in sent] == ["firing"]
    finally:
        changed.close()

    with sqlite3.connect(tmp_path / "a.db") as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'alert_states'", (b"[1, 2",))
    spoilt, sent = start(tmp_path / "a.db", clock)
    try:
        assert evaluate(spoilt)["state"] == "firing"
        assert [n["state"] for n in sent] == ["firing"]
    finally:
        spoilt.close()
    assert any(r.message.startswith("tokentrace starts its alert rules afresh") for r in caplog.records)


def test_a_tick_while_the_windows_are_refilled_does_not_resolve_a_firing_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    first, sent = start(tmp_path / "a.db", clock)
    first.ingest([make_span(cost="0.02", ended_ms=round(clock.now * 1000) - 1000)])
    assert evaluate(first)["state"] == "firing"
    assert [n["state"] for n in sent] == ["firing"]
    first.tracer.close()  # a crash: the windows are not kept, so the restart refills them from the spans
    first.store.close()

    rebuild = Collector._rebuild

    def slow_rebuild(self: Collector) -> int:
        """The refill of a large store: the alert ticker runs before it is done."""
        engine = self.tracer.alert_engine
        assert engine is not None
        ticked = threading.Event()
        tick = engine.tick
        engine.tick = lambda: (tick(), ticked.set())  # type: ignore[method-assign]
        assert ticked.wait(10)
        del engine.tick
        return rebuild(self)

    monkeypatch.setattr(Collector, "_rebuild", slow_rebuild)
    second, sent_after = start(tmp_path / "a.db", clock)
    try:
        state = evaluate(second)
        assert (state["state"], state["notifications"]) == ("firing", 1)
        assert sent_after == []  # neither "resolved" by the empty windows nor "firing" again after
    finally:
        second.close()


def test_a_less_than_rule_counts_the_stored_spans_as_watched(tmp_path: Path) -> None:
    clock = Clock()
    quiet = tokentrace.AlertRule("quiet", "span_count", "<", 1, "10m", tokentrace.CallbackDelivery(list.append))
    fresh = Collector(tmp_path / "q.db", rules=[quiet], clock=clock)
    try:
        assert evaluate(fresh)["state"] == "inactive"  # an empty database: windows only just started
        fresh.ingest([make_span(ended_ms=round(clock.now * 1000) - 3_600_000)])  # an hour old
    finally:
        fresh.close()
    restarted = Collector(tmp_path / "q.db", rules=[quiet], clock=clock)
    try:
        assert evaluate(restarted)["state"] == "firing"  # it ran before: ten quiet minutes are known
    finally:
        restarted.close()
