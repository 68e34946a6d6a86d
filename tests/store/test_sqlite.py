"""SQLiteStore: durable, idempotent, exact money, versioned schema, background retention."""

from __future__ import annotations

import sqlite3
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from tests.collector_kit import make_span, mixed_spans
from tokentrace.spans import Span, Status, new_id, now_ms
from tokentrace.store import SpanStore, SQLiteStore, StoreBusyError, StoreError
from tokentrace.store import sqlite as sqlite_module
from tokentrace.store.base import summarize


@pytest.fixture
def store(tmp_path: Path):
    s = SQLiteStore(tmp_path / "spans.db")
    yield s
    s.close()


def test_is_a_span_store(store: SQLiteStore) -> None:
    assert isinstance(store, SpanStore)


def test_add_returns_only_new_spans(store: SQLiteStore) -> None:
    spans = mixed_spans(20)
    assert store.add(spans[:5]) == spans[:5]
    assert store.add(spans) == spans[5:]
    assert store.add(spans) == []
    assert store.add([spans[0], spans[0]]) == []
    assert store.count() == 20


def test_a_large_batch_is_stored_whole_and_resent_parts_once(store: SQLiteStore) -> None:
    spans = mixed_spans(700)  # 256 + 256 + 128 + 32 + 16 + 8 + 4 rows to a statement
    assert store.add(spans[:301]) == spans[:301]
    assert store.add(spans) == spans[301:]  # a resend among new spans: only the new ones
    assert store.count() == 700
    assert sorted(store.recent(700), key=lambda s: s.span_id or "") == sorted(spans, key=lambda s: s.span_id or "")


def test_a_batch_with_a_span_that_cannot_be_stored_is_refused_whole(store: SQLiteStore) -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise ValueError("no text")

    spans = mixed_spans(3)
    spans[1].attributes = {"value": Unprintable()}
    with pytest.raises(StoreError, match="span database write failed"):
        store.add(spans)
    assert store.count() == 0
    assert store.add(mixed_spans(2, seed=8)) != [] and store.count() == 2


def test_duplicate_inside_a_batch_is_stored_once(store: SQLiteStore) -> None:
    span = make_span()
    assert store.add([span, span]) == [span]
    assert store.count() == 1


def test_every_field_round_trips(store: SQLiteStore) -> None:
    span = make_span(
        cost="0.000000012345678901234567890123", cached_tokens=80, reasoning_tokens=7, cache_write_tokens=3,
        ttft_ms=42, attributes={"service": "search", "nested": {"k": [1, 2.5, None]}}, cost_source="genai-prices",
        parent_span_id="p-1", status=Status.ERROR,
    )  # fmt: skip
    store.add([span])
    assert store.recent(1) == [span]
    assert store.recent(1)[0].cost == Decimal("0.000000012345678901234567890123")


def test_unknown_cost_stays_null(store: SQLiteStore) -> None:
    store.add([make_span(cost=None)])
    assert store.recent(1)[0].cost is None


def test_a_span_ending_at_the_epoch_keeps_its_times(store: SQLiteStore) -> None:
    at_epoch = make_span(ended_ms=0, latency=0, trace_id="epoch")  # 1970-01-01T00:00:00.000Z, a valid time
    unstarted = make_span(ended_ms=0, latency=0, trace_id="epoch")
    unstarted.started_at = None
    store.add([at_epoch, unstarted])
    assert {(s.started_at, s.ended_at) for s in store.trace("epoch")} == {(0, 0)}
    (summary,) = store.traces(1)
    assert (summary.started_at, summary.ended_at) == (0, 0)
    assert [s.ended_at for batch in store.iter_since(0, metrics_only=True) for s in batch] == [0, 0]
    assert list(store.iter_since(1)) == []  # a rebuild of recent windows does not count them
    assert store.prune(1) == 2


def test_recent_is_newest_first(store: SQLiteStore) -> None:
    base = now_ms() - 10_000
    spans = [make_span(ended_ms=base + i) for i in (5, 1, 9, 3)]
    store.add(spans)
    assert [s.ended_at for s in store.recent(3)] == [base + 9, base + 5, base + 3]


def test_traces_are_summarized_newest_first(store: SQLiteStore) -> None:
    base = now_ms() - 10_000
    store.add([make_span(trace_id="a", ended_ms=base + i, cost="0.1", model="gpt-4o") for i in range(3)])
    store.add([make_span(trace_id="b", ended_ms=base + 50, cost=None, model="o3-mini", status=Status.ERROR)])
    store.add([make_span(trace_id="a", ended_ms=base + 10, cost="0.2", model="gpt-4o-mini")])
    summaries = store.traces(10)
    assert [t.trace_id for t in summaries] == ["b", "a"]
    a = summaries[1]
    assert (a.span_count, a.error_count, a.cost_usd, a.models) == (4, 0, Decimal("0.5"), ["gpt-4o", "gpt-4o-mini"])
    assert a.ended_at == base + 10
    assert summaries[0].cost_usd is None
    assert summaries[0].error_count == 1
    assert [t.trace_id for t in store.traces(1)] == ["b"]


def test_trace_summaries_are_those_of_the_whole_spans(store: SQLiteStore) -> None:
    spans = mixed_spans(200)  # 50 traces of 4 spans: three models, errors
    for i, span in enumerate(spans):
        span.name = f"step-{i}"  # the summary is named after the trace's first span
        if i % 7 == 0:
            span.cost = None
    store.add(spans)
    whole: dict[str, list[Span]] = {}
    for span in spans:
        whole.setdefault(span.trace_id or "", []).append(span)
    assert {t.trace_id: t for t in store.traces(1000)} == {tid: summarize(tid, group) for tid, group in whole.items()}


def _agent_loops(count: int, length: int, **fields: str) -> list[Span]:
    """``count`` traces ``loop-0``, ``loop-1``... one after the other, of ``length`` spans each."""
    base = now_ms() - 1_000_000
    return [
        make_span(trace_id=f"loop-{t}", ended_ms=base + t * 10_000 + i, latency=1, **fields)
        for t in range(count)
        for i in range(length)
    ]


def test_traces_finds_as_many_as_asked_behind_long_traces(store: SQLiteStore) -> None:
    store.add(_agent_loops(5, 120, model="o3-mini"))  # an agent's tool loop: 120 calls a trace
    store.add([make_span(trace_id="old", model="gpt-4o", ended_ms=now_ms() - 2_000_000)])
    newest_first = [f"loop-{t}" for t in (4, 3, 2, 1, 0)]
    for limit in (1, 2, 3, 5):
        assert [s.trace_id for s in store.traces(limit)] == newest_first[:limit]
        assert [s.trace_id for s in store.traces(limit, model="o3-mini")] == newest_first[:limit]
    assert [(s.trace_id, s.span_count) for s in store.traces(20)] == [(t, 120) for t in newest_first] + [("old", 1)]
    assert [s.trace_id for s in store.traces(20, model="gpt-4o")] == ["old"]


def test_the_walk_for_recent_traces_is_bounded(store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.add(_agent_loops(5, 120))
    monkeypatch.setattr(sqlite_module, "_TRACE_SCAN_LIMIT", 250)  # rows: two loops and 10 spans of a third
    assert [s.trace_id for s in store.traces(5)] == ["loop-4", "loop-3", "loop-2"]
    assert [s.span_count for s in store.traces(5)] == [120, 120, 120]  # each summary covers the whole trace


def test_trace_returns_its_spans_in_start_order(store: SQLiteStore) -> None:
    base = now_ms() - 10_000
    spans = [make_span(trace_id="t", ended_ms=base + i * 100, latency=50) for i in (3, 1, 2)]
    store.add(spans)
    store.add([make_span(trace_id="other")])
    assert [s.ended_at for s in store.trace("t")] == [base + 100, base + 200, base + 300]
    assert store.trace("missing") == []


def test_iter_since_streams_in_batches_oldest_first(store: SQLiteStore) -> None:
    base = now_ms() - 100_000
    store.add([make_span(ended_ms=base + i) for i in range(25)])
    batches = list(store.iter_since(base + 5, batch_size=7))
    assert [len(b) for b in batches] == [7, 7, 6]
    assert [s.ended_at for b in batches for s in b] == [base + i for i in range(5, 25)]


def test_iter_since_for_metrics_reads_what_they_read_and_nothing_else(store: SQLiteStore) -> None:
    base = now_ms() - 100_000
    full = Span(
        model="gpt-4o", provider="openai", name="chat", prompt_tokens=1000, comp_tokens=100, cost=Decimal("0.0025"),
        latency_ms=900, status=Status.ERROR, error="RateLimitError: slow down", started_at=base, ended_at=base + 900,
        cached_tokens=800, reasoning_tokens=20, cache_write_tokens=100, ttft_ms=300, attributes={"k": "v"},
        cost_source="genai-prices", trace_id=new_id(), span_id=new_id(), parent_span_id=new_id(),
    )  # fmt: skip
    store.add([full, make_span(ended_ms=base + 950)])
    [[read, plain]] = list(store.iter_since(base, metrics_only=True))
    kept = ("name", "model", "provider", "prompt_tokens", "comp_tokens", "cost", "latency_ms", "status", "ended_at",
            "cached_tokens", "reasoning_tokens", "cache_write_tokens")  # fmt: skip
    assert {field: getattr(read, field) for field in kept} == {field: getattr(full, field) for field in kept}
    assert read.status is Status.ERROR and plain.status is Status.OK
    for field in set(Span.__struct_fields__) - set(kept):  # ids, times, error, details, attributes
        assert getattr(read, field) is None, field
    [[whole, _]] = list(store.iter_since(base))
    assert whole == full  # the whole span otherwise


def test_prune_deletes_only_older_spans(store: SQLiteStore) -> None:
    base = now_ms() - 100_000
    store.add([make_span(ended_ms=base + i) for i in range(30)])
    assert store.prune(base + 10) == 10
    assert store.count() == 20
    assert store.prune(base + 10) == 0


def test_retention_prunes_in_the_background(tmp_path: Path) -> None:
    now = time.time()
    store = SQLiteStore(tmp_path / "r.db", retention_s=3600, prune_interval_s=0.05, clock=lambda: now)
    try:
        old = int((now - 7200) * 1000)
        store.add([make_span(ended_ms=old + i) for i in range(5)] + [make_span(ended_ms=int(now * 1000))])
        for _ in range(200):
            if store.count() == 1:
                break
            time.sleep(0.02)
        assert store.count() == 1
    finally:
        store.close()


def test_database_runs_wal_with_full_sync_and_indexes(store: SQLiteStore) -> None:
    assert store._writer_db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._writer_db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with sqlite3.connect(store.path) as db:
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        version = db.execute("SELECT version FROM schema_version").fetchone()[0]
    assert {"spans_ended_at", "spans_trace_id", "spans_model"} <= indexes
    assert version == sqlite_module.SCHEMA_VERSION == 4


def test_an_older_schema_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    sqlite_module.MIGRATIONS[0](db)
    db.execute("INSERT INTO schema_version VALUES (1)")
    db.execute(
        "INSERT INTO spans VALUES ('s-1', 't-1', NULL, 'job', 'gpt-4o', 'openai', 10, 5, '0.25', 120, 'ok', NULL, "
        "1000, 1120)"
    )
    db.close()
    store = SQLiteStore(path)
    try:
        (old,) = store.recent(5)
        assert (old.span_id, old.cost, old.cached_tokens, old.attributes) == ("s-1", Decimal("0.25"), None, None)
        store.add([make_span(cached_tokens=4)])
        assert store.count() == 2
    finally:
        store.close()
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT version FROM schema_version").fetchone()[0] == sqlite_module.SCHEMA_VERSION


def test_ids_of_any_form_round_trip_and_stay_unique(store: SQLiteStore) -> None:
    uuid_id = "0f8fad5b-d9cb-469f-a165-70867728950e"
    odd = [uuid_id, uuid_id.upper(), "s-1", "0f8fad5bd9cb469fa16570867728950e", " " + uuid_id[1:], "-" * 36]
    spans = [make_span(trace_id=tid) for tid in odd]
    for span in spans:
        span.span_id = span.trace_id
    assert store.add(spans) == spans
    assert store.add(spans) == []
    assert sorted(s.span_id or "" for s in store.recent(10)) == sorted(odd)
    for span in spans:
        assert store.trace(span.trace_id or "") == [span]
    assert {t.trace_id for t in store.traces(10)} == set(odd)


def test_text_ids_of_schema_2_are_migrated_to_keys(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for step in sqlite_module.MIGRATIONS[:2]:
        step(db)
    db.execute("INSERT INTO schema_version VALUES (2)")
    uuid_id = "0f8fad5b-d9cb-469f-a165-70867728950e"
    for span_id in (uuid_id, "legacy-1"):
        db.execute(
            "INSERT INTO spans (span_id, trace_id, name, model, provider, prompt_tokens, comp_tokens, cost_usd, "
            "status, started_at, ended_at, attributes) "
            "VALUES (?, ?, 'job', 'gpt-4o', 'openai', 10, 5, '0.25', 'ok', 1000, 1120, '{\"k\":1}')",
            (span_id, span_id),
        )
    db.close()
    store = SQLiteStore(path)
    try:
        assert sorted(s.span_id or "" for s in store.recent(5)) == sorted([uuid_id, "legacy-1"])
        (migrated,) = store.trace(uuid_id)
        assert (migrated.cost, migrated.attributes) == (Decimal("0.25"), {"k": 1})
        resent = make_span(trace_id=uuid_id)
        resent.span_id = uuid_id
        assert store.add([resent]) == []
        assert store.count() == 2
    finally:
        store.close()
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT typeof(span_id) FROM spans WHERE span_id = 'legacy-1'").fetchone() == ("text",)
        assert check.execute("SELECT COUNT(*) FROM spans WHERE typeof(span_id) = 'blob'").fetchone() == (1,)


def test_values_kept_under_a_key_are_replaced_and_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "meta.db"
    store = SQLiteStore(path)
    try:
        assert store.get_meta("counters") is None
        store.set_meta("counters", b"[1]")
        store.set_meta("counters", b"[1,2]")
        store.set_meta("other", b"\x00\xff")
    finally:
        store.close()
    store = SQLiteStore(path)
    try:
        assert (store.get_meta("counters"), store.get_meta("other")) == (b"[1,2]", b"\x00\xff")
        assert store.pop_meta("other") == b"\x00\xff"
        assert (store.pop_meta("other"), store.get_meta("other"), store.pop_meta("never")) == (None, None, None)
    finally:
        store.close()
    with sqlite3.connect(path) as db:  # taken out for good
        assert db.execute("SELECT key FROM meta").fetchall() == [("counters",)]
    with pytest.raises(StoreError, match="closed"):
        store.set_meta("counters", b"[]")


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreError, match="schema version 99, newer than this tokentrace understands"):
        SQLiteStore(path)


def test_concurrent_adds_share_commits_and_lose_nothing(store: SQLiteStore) -> None:
    batches = [mixed_spans(100, seed=i) for i in range(24)]

    def send(mine: list) -> None:
        for batch in mine:
            store.add(batch)

    threads = [threading.Thread(target=send, args=(batches[i::6],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count() == 2400
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_failing_batch_does_not_fail_its_neighbours(store: SQLiteStore) -> None:
    good = mixed_spans(10)
    bad = make_span()
    bad.prompt_tokens = 2**70  # past SQLite's integer range: the insert raises
    errors: list[Exception] = []

    def send_bad() -> None:
        try:
            store.add([bad])
        except StoreError as exc:
            errors.append(exc)

    thread = threading.Thread(target=send_bad)
    thread.start()
    store.add(good)
    thread.join()
    assert len(errors) == 1
    assert store.count() == 10


def test_closed_store_raises(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "c.db")
    store.add([make_span()])
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.add([make_span()])
    with pytest.raises(StoreError, match="closed"):
        store.recent(1)


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous must be 'FULL' or 'NORMAL'"):
        SQLiteStore(tmp_path / "x.db", synchronous="OFF")
    with pytest.raises(ValueError, match="retention_s must be positive"):
        SQLiteStore(tmp_path / "x.db", retention_s=0)


def test_data_survives_reopening(tmp_path: Path) -> None:
    spans = mixed_spans(50)
    store = SQLiteStore(tmp_path / "p.db")
    store.add(spans)
    store.close()
    again = SQLiteStore(tmp_path / "p.db")
    try:
        assert again.count() == 50
        assert again.add(spans) == []
    finally:
        again.close()


def test_a_writer_too_far_behind_answers_busy(store: SQLiteStore) -> None:
    with store._wake:
        store._pending = store._max_pending  # as if that many spans were waiting for the writer
    with pytest.raises(StoreBusyError, match="waiting to be written; retry later"):
        store.add([make_span()])
    with store._wake:
        store._pending = 0
    assert store.add([make_span()]) != []


def test_recent_and_traces_filter_by_model(store: SQLiteStore) -> None:
    base = now_ms() - 10_000
    store.add([make_span(trace_id="a", model="gpt-4o", ended_ms=base + 1)])
    store.add([make_span(trace_id="a", model="o3-mini", ended_ms=base + 2)])
    store.add([make_span(trace_id="b", model="o3-mini", ended_ms=base + 3)])
    assert [s.ended_at for s in store.recent(10, model="gpt-4o")] == [base + 1]
    assert [t.trace_id for t in store.traces(10, model="gpt-4o")] == ["a"]
    assert store.traces(10, model="gpt-4o")[0].span_count == 2
    assert [t.trace_id for t in store.traces(10, model="o3-mini")] == ["b", "a"]
