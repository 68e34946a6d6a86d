"""SIGKILL the collector in the middle of an ingest stream: after a restart and a resend of what was
not acknowledged, every span is stored exactly once and the metrics count them all."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from decimal import Decimal
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.collector_kit import JSON_BODY, CollectorProcess, mixed_spans, post_spans
from tokentrace.spans import encode_batch

TOTAL = 30_000
BATCH = 500
KILL_AFTER = 20  # acknowledged batches before the SIGKILL


class Sender:
    """Posts every batch not yet acknowledged, as fast as the collector answers."""

    def __init__(self, bodies: list[bytes]) -> None:
        self.bodies = bodies
        self.acked: set[int] = set()
        self.failures = 0
        self.duplicates = 0

    def send(self, url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            for i, body in enumerate(self.bodies):
                if i in self.acked:
                    continue
                try:
                    response = http.post("/v1/spans", content=body, headers=JSON_BODY)
                except httpx.TransportError:
                    self.failures += 1
                    continue
                if response.status_code == 202:
                    self.duplicates += response.json()["duplicates"]
                    self.acked.add(i)


def test_sigkill_loses_nothing_and_stores_nothing_twice(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    spans = mixed_spans(TOTAL, seed=99)
    expected_cost = sum((s.cost for s in spans if s.cost is not None), Decimal(0))
    sender = Sender([encode_batch(spans[i : i + BATCH]) for i in range(0, TOTAL, BATCH)])

    first = CollectorProcess(db)
    stream = threading.Thread(target=sender.send, args=(first.url,))
    stream.start()
    deadline = time.monotonic() + 60
    while len(sender.acked) < KILL_AFTER and time.monotonic() < deadline:
        time.sleep(0.001)
    first.kill()
    stream.join(60)
    assert KILL_AFTER <= len(sender.acked) < TOTAL // BATCH, "the kill must land in the middle of the stream"
    assert sender.failures > 0

    second = CollectorProcess(db)
    try:
        sender.send(second.url)  # the client resends what was not acknowledged
        assert len(sender.acked) == TOTAL // BATCH
        with httpx.Client(base_url=second.url) as http:
            cost = json.loads(http.get("/metrics/cost", params={"window": "24h"}).text, parse_float=Decimal)
    finally:
        second.stop()

    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert check.execute("SELECT COUNT(*), COUNT(DISTINCT span_id) FROM spans").fetchone() == (TOTAL, TOTAL)
    assert cost["span_count"] == TOTAL
    assert cost["total_usd"] == expected_cost


def _spans_counted(http: httpx.Client) -> float:
    families = text_string_to_metric_families(http.get("/metrics").text)
    return sum(s.value for f in families if f.name == "tokentrace_spans" for s in f.samples)


def test_after_a_sigkill_the_prometheus_counters_count_every_stored_span(tmp_path: Path) -> None:
    db = tmp_path / "scraped.db"
    first = CollectorProcess(db)
    with httpx.Client(base_url=first.url) as http:
        assert post_spans(http, mixed_spans(50, seed=1)).status_code == 202
    first.stop()  # a clean stop keeps the counters at 50

    second = CollectorProcess(db)
    with httpx.Client(base_url=second.url) as http:
        assert post_spans(http, mixed_spans(100, seed=2)).status_code == 202
        assert _spans_counted(http) == 150  # what Prometheus has now read, kept at 150
        assert post_spans(http, mixed_spans(30, seed=3)).status_code == 202
    second.kill()

    third = CollectorProcess(db)
    try:
        with httpx.Client(base_url=third.url) as http:
            # not 50, which Prometheus would take for a reset, nor 150, which misses stored spans
            assert _spans_counted(http) == 180
    finally:
        third.stop()


def test_after_a_sigkill_a_firing_rule_goes_on_as_the_same_firing(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[alerts]]\nname = "hourly-cost"\nmetric = "total_cost"\nop = ">"\nthreshold = 0.01\nwindow = "1h"\n'
        'delivery = "stdout"\n'
    )
    db = tmp_path / "alerts.db"
    first = CollectorProcess(db, "--config", str(rules))
    with httpx.Client(base_url=first.url) as http:
        assert post_spans(http, mixed_spans(30, seed=5)).status_code == 202
        [fired] = http.get("/alerts").json()["alerts"]
    first.kill()  # no clean stop: the state was kept when the rule fired
    assert (fired["state"], fired["notifications"]) == ("firing", 1)

    second = CollectorProcess(db, "--config", str(rules))
    try:
        with httpx.Client(base_url=second.url) as http:
            [after] = http.get("/alerts").json()["alerts"]
    finally:
        second.stop()
    assert (after["state"], after["fired_at"], after["notifications"]) == ("firing", fired["fired_at"], 1)


def test_windows_kept_at_a_clean_stop_are_not_taken_back_after_a_later_kill(tmp_path: Path) -> None:
    db = tmp_path / "windows.db"
    first = CollectorProcess(db)
    with httpx.Client(base_url=first.url) as http:
        assert post_spans(http, mixed_spans(50, seed=6)).status_code == 202
    first.stop()  # keeps its windows

    second = CollectorProcess(db)  # takes them back, and out of the database
    with httpx.Client(base_url=second.url) as http:
        assert post_spans(http, mixed_spans(100, seed=7)).status_code == 202
        assert http.get("/metrics/cost", params={"window": "24h"}).json()["span_count"] == 150
    second.kill()

    third = CollectorProcess(db)  # nothing kept: rebuilt from the stored spans, the last 100 too
    try:
        with httpx.Client(base_url=third.url) as http:
            assert http.get("/metrics/cost", params={"window": "24h"}).json()["span_count"] == 150
    finally:
        third.stop()
    assert any("took back its windows as kept" in line for line in second.log)
    assert any("loaded the stored spans into its windows" in line for line in third.log)
