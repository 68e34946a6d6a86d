"""Windowed metrics: exact sums, window edges, late spans, filters, percentiles, memory bounds."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokentrace.spans import Span, Status
from tokentrace.windows import MAX_WINDOW, METRICS, LatencySketch, WindowAggregator, WindowSnapshot

T0 = 1_773_586_800  # 2026-03-15T15:00:00Z


class Clock:
    def __init__(self, start: float = T0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def span(
    at: float | None,
    *,
    model: str = "gpt-4o",
    provider: str = "openai",
    name: str | None = "summarize",
    cost: str | None = "1.28",
    latency: int | None = 1000,
    status: str = "ok",
    prompt: int = 500,
    comp: int = 100,
) -> Span:
    return Span(
        model=model,
        provider=provider,
        name=name,
        cost=None if cost is None else Decimal(cost),
        latency_ms=latency,
        status=status,  # type: ignore[arg-type]
        prompt_tokens=prompt,
        comp_tokens=comp,
        ended_at=None if at is None else round(at * 1000),
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def agg(clock: Clock) -> WindowAggregator:
    return WindowAggregator(clock=clock)


# --- sums and windows ---------------------------------------------------------------------------


def test_costs_add_up_exactly_in_decimal(agg: WindowAggregator, clock: Clock) -> None:
    for _ in range(4):
        agg.add(span(clock.now))
    assert agg.metric("total_cost", "1h") == Decimal("5.12")
    assert str(agg.metric("total_cost", "1h")) == "5.12"
    assert agg.metric("span_count", 3600) == 4
    assert agg.metric("prompt_tokens", timedelta(hours=1)) == 2000
    assert agg.metric("comp_tokens", "1h") == 400
    assert agg.metric("total_tokens", "1h") == 2400


def test_cost_recorded_61_minutes_ago_is_outside_a_1h_window(agg: WindowAggregator, clock: Clock) -> None:
    agg.add(span(clock.now - 61 * 60, cost="3.00"))
    agg.add(span(clock.now - 59 * 60, cost="0.25"))
    assert agg.metric("total_cost", "1h") == Decimal("0.25")
    assert agg.metric("total_cost", "2h") == Decimal("3.25")


def test_window_expires_as_the_clock_moves_on(agg: WindowAggregator, clock: Clock) -> None:
    agg.add(span(clock.now, cost="2.50"))
    clock.advance(59 * 60)
    assert agg.metric("total_cost", "1h") == Decimal("2.50")
    clock.advance(2 * 60)
    assert agg.metric("total_cost", "1h") == Decimal(0)
    assert agg.metric("span_count", "1h") == 0


@pytest.mark.parametrize("window", [10, 59, 300, 3600, 5400, 86400, 7 * 86400, MAX_WINDOW])
def test_window_edges_are_within_one_second_or_one_percent(agg: WindowAggregator, clock: Clock, window: float) -> None:
    clock.advance(0.37)
    snap = agg.snapshot(window)
    assert abs(snap.start - (clock.now - window)) <= max(1.0, window / 100)
    assert snap.end == int(clock.now) + 1


def test_spans_just_inside_and_outside_the_tolerance_of_a_1h_edge(agg: WindowAggregator, clock: Clock) -> None:
    agg.add_many([span(clock.now - 3600 + 40, cost="1"), span(clock.now - 3600 - 40, cost="10")])
    assert agg.metric("total_cost", "1h") == Decimal(1)


def test_late_span_lands_in_the_bucket_of_its_end_time(agg: WindowAggregator, clock: Clock) -> None:
    agg.add(span(clock.now, cost="1"))
    clock.advance(3 * 3600 + 600)  # every bucket of that hour is sealed and rolled up
    agg.add(span(clock.now - 2.5 * 3600, cost="0.5"))  # arrives from another process, late
    assert agg.metric("total_cost", "1h") == Decimal(0)
    assert agg.metric("total_cost", "3h") == Decimal("0.5")
    assert agg.metric("total_cost", "4h") == Decimal("1.5")
    assert agg.metric("span_count", "4h") == 2


def test_span_without_end_time_counts_now_and_future_spans_are_clamped(agg: WindowAggregator, clock: Clock) -> None:
    agg.add_many([span(None, cost="1"), span(clock.now + 3600, cost="2")])
    assert agg.metric("total_cost", "10s") == Decimal(3)
    clock.advance(30)
    assert agg.metric("total_cost", "10s") == Decimal(0)


def test_spans_older_than_30_days_are_dropped_and_counted(agg: WindowAggregator, clock: Clock) -> None:
    agg.add(span(clock.now - 31 * 86400))
    assert agg.metric("span_count", MAX_WINDOW) == 0
    assert agg.stats()["dropped"] == {"too_old": 1}


def test_take_totals_gives_what_the_same_batch_added_once(agg: WindowAggregator, clock: Clock) -> None:
    batch = [
        span(clock.now, cost="1.28", status="error", prompt=10, comp=5),
        span(clock.now - 5, model="gpt-4o-mini", cost="0.000000000000000000000001"),
        span(None, cost=None, prompt=1, comp=2),
        span(clock.now - 31 * 86400, cost="2"),  # dropped as too old, yet still an upper bound
    ]
    agg.add_many(batch)
    assert agg.take_totals(list(batch)) is None  # an equal batch is not the same batch
    totals = agg.take_totals(batch)
    assert totals is not None
    assert totals[:4] == (4, 1, 1011, 207) and totals.total_tokens == 1218
    assert totals.total_cost == Decimal("3.280000000000000000000001")
    assert agg.take_totals(batch) is None  # taken once
    agg.add_many(batch)
    agg.add(span(clock.now))
    assert agg.take_totals(batch) is None  # a later batch came in between


def test_sums_of_an_open_second_follow_the_spans_added_after_a_query(agg: WindowAggregator, clock: Clock) -> None:
    for i in range(3):
        agg.add_many([span(clock.now, latency=100 * (i + 1)), span(clock.now, model="gpt-4o-mini", latency=5000)])
        assert agg.metric("span_count", 10, model="gpt-4o") == i + 1
        assert agg.metric("latency_p99", 10, model="gpt-4o") == pytest.approx(100 * (i + 1), rel=0.01)
        assert agg.metric("span_count", 10) == 2 * (i + 1)


def test_empty_window_has_zero_sums_and_no_rates_or_percentiles(agg: WindowAggregator) -> None:
    snap = agg.snapshot("1h")
    assert (snap.span_count, snap.total_cost, snap.error_count, snap.total_tokens) == (0, Decimal(0), 0, 0)
    assert (snap.error_rate, snap.latency_p50, snap.latency_p99, snap.latency_avg) == (None, None, None, None)
    assert snap.cost_by_model == {}


def test_errors_rates_and_average_latency(agg: WindowAggregator, clock: Clock) -> None:
    agg.add_many(
        [
            span(clock.now, status="error", latency=100),
            span(clock.now, latency=200),
            span(clock.now, latency=None),
            span(clock.now, status="error", latency=600),
        ]
    )
    assert agg.metric("error_count", "1m") == 2
    assert agg.metric("error_rate", "1m") == 0.5
    assert agg.metric("latency_avg", "1m") == 300.0


# --- filters and breakdowns ---------------------------------------------------------------------


@pytest.fixture
def mixed(agg: WindowAggregator, clock: Clock) -> WindowAggregator:
    agg.add_many(
        [
            span(clock.now, model="gpt-4o", provider="openai", name="chat", cost="0.30"),
            span(clock.now, model="gpt-4o", provider="azure", name="chat", cost="0.08"),
            span(clock.now - 30, model="gpt-4o-mini", provider="openai", name="summarize", cost="0.04"),
            span(clock.now - 90, model="claude-sonnet-4-5", provider="anthropic", name="chat", cost="0.50"),
        ]
    )
    clock.advance(10)  # seal the seconds, so sealed and open buckets are both read
    agg.add(span(clock.now, model="gpt-4o", provider="openai", name="summarize", cost="0.01"))
    return agg


@pytest.mark.parametrize(
    ("filters", "cost", "count"),
    [
        ({}, "0.93", 5),
        ({"model": "gpt-4o"}, "0.39", 3),
        ({"provider": "openai"}, "0.35", 3),
        ({"name": "chat"}, "0.88", 3),
        ({"model": "gpt-4o", "name": "chat"}, "0.38", 2),
        ({"model": "gpt-4o", "provider": "openai"}, "0.31", 2),
        ({"provider": "openai", "name": "summarize"}, "0.05", 2),
        ({"model": "gpt-4o", "provider": "openai", "name": "summarize"}, "0.01", 1),
        ({"model": "no-such-model"}, "0", 0),
    ],
)
def test_filters_combine(mixed: WindowAggregator, filters: dict[str, str], cost: str, count: int) -> None:
    assert mixed.metric("total_cost", "1h", **filters) == Decimal(cost)
    assert mixed.metric("span_count", "1h", **filters) == count


def test_cost_by_model_and_provider_largest_first(mixed: WindowAggregator) -> None:
    snap = mixed.snapshot("1h")
    assert list(snap.cost_by_model.items()) == [
        ("claude-sonnet-4-5", Decimal("0.5")),
        ("gpt-4o", Decimal("0.39")),
        ("gpt-4o-mini", Decimal("0.04")),
    ]
    assert snap.cost_by_provider == {"anthropic": Decimal("0.5"), "openai": Decimal("0.35"), "azure": Decimal("0.08")}
    assert mixed.snapshot("1h", name="summarize").cost_by_model == {
        "gpt-4o-mini": Decimal("0.04"),
        "gpt-4o": Decimal("0.01"),
    }


def test_snapshot_to_dict_is_json_ready(mixed: WindowAggregator, clock: Clock) -> None:
    out = mixed.snapshot("1h", model="gpt-4o").to_dict()
    assert out == {
        "window": "1h",
        "start": "2026-03-15T14:00:15.000Z",
        "end": "2026-03-15T15:00:11.000Z",
        "filters": {"model": "gpt-4o"},
        "total_cost": 0.39,
        "span_count": 3,
        "error_count": 0,
        "error_rate": 0.0,
        "prompt_tokens": 1500,
        "comp_tokens": 300,
        "total_tokens": 1800,
        "latency_p50": 1000.0,
        "latency_p95": 1000.0,
        "latency_p99": 1000.0,
        "latency_avg": 1000.0,
        "unpriced_count": 0,
        "cost_by_model": {"gpt-4o": 0.39},
        "cost_by_provider": {"openai": 0.31, "azure": 0.08},
    }
    assert mixed.snapshot("1h").value("total_cost") == Decimal("0.93")


def test_a_model_without_a_price_costs_none_not_zero(agg: WindowAggregator, clock: Clock) -> None:
    agg.add_many(
        [
            span(clock.now - 50, model="made-up", provider="acme", cost=None),
            span(clock.now - 30, cost="0.00448"),
            span(clock.now - 30, model="made-up", provider="acme", cost=None),
            span(clock.now - 20, model="gpt-4o-mini", cost="0.000153"),
            span(clock.now - 20, model="gpt-4o-mini", cost=None),  # priced in part: the priced part's sum
            span(clock.now - 10, model="free", provider="acme", cost="0"),  # priced at nothing: 0
        ]
    )
    clock.advance(5)  # sealed seconds, and an open one
    agg.add_many([span(clock.now, cost="0.00448"), span(clock.now, model="made-up", provider="acme", cost=None)])
    snap = agg.snapshot("1h")
    assert snap.cost_by_model == {
        "gpt-4o": Decimal("0.00896"),
        "gpt-4o-mini": Decimal("0.000153"),
        "free": Decimal(0),
        "made-up": None,
    }
    assert snap.cost_by_provider == {"openai": Decimal("0.009113"), "acme": Decimal(0)}
    assert (snap.total_cost, snap.span_count, snap.unpriced_count) == (Decimal("0.009113"), 8, 4)
    assert agg.snapshot("1h", model="made-up").cost_by_provider == {"acme": None}
    assert snap.to_dict()["cost_by_model"]["made-up"] is None
    points = agg.timeseries("1m", "15s")  # steps from 14:59:05
    assert [p["cost"] for p in points] == [None, 0.00448, 0.000153, 0.0, 0.00448]
    assert [p["by_model"].get("made-up") for p in points] == [
        {"cost": None, "span_count": 1},
        {"cost": None, "span_count": 1},
        None,
        None,
        {"cost": None, "span_count": 1},
    ]
    assert [p["cost"] for p in agg.timeseries("1m", "15s", model="made-up")] == [None, None, 0.0, 0.0, None]


def test_more_combinations_than_max_series_fold_the_trace_name(clock: Clock) -> None:
    agg = WindowAggregator(clock=clock, max_series=2)
    agg.add_many([span(clock.now, name=f"job-{i}", cost="1") for i in range(4)])
    assert agg.metric("total_cost", "1m") == Decimal(4)
    assert agg.metric("total_cost", "1m", name="(other)") == Decimal(2)
    assert agg.stats()["series"] == 3
    assert agg.stats()["dropped"] == {"series_overflow": 2}


def test_past_max_series_new_models_are_counted_under_other_too(clock: Clock) -> None:
    agg = WindowAggregator(clock=clock, max_series=8)
    agg.add_many([span(clock.now, model="gpt-4o", name=f"job-{i}", cost="1") for i in range(8)])
    agg.add_many([span(clock.now, model=f"made-up-{i}", name="job", cost="1") for i in range(1000)])
    assert agg.stats()["series"] == 8 + 2 + 1  # two new models keep theirs, then one "(other)" for all
    assert agg.metric("total_cost", "1m") == Decimal(1008)
    assert agg.metric("total_cost", "1m", model="made-up-1", name="(other)") == Decimal(1)
    assert agg.metric("total_cost", "1m", model="(other)") == Decimal(998)
    assert agg.snapshot("1m").cost_by_model["(other)"] == Decimal(998)
    assert agg.stats()["dropped"] == {"series_overflow": 1000}


# --- API errors ---------------------------------------------------------------------------------


def test_unknown_metric_is_rejected_listing_the_metrics(agg: WindowAggregator) -> None:
    with pytest.raises(ValueError, match=r"metric must be one of total_cost, span_count, .*latency_avg; got 'cost'"):
        agg.metric("cost", "1h")


@pytest.mark.parametrize("window", [0, "0s", -5, "31d", "soon"])
def test_windows_out_of_range_are_rejected(agg: WindowAggregator, window: object) -> None:
    with pytest.raises(ValueError, match="window must be"):
        agg.snapshot(window)  # type: ignore[arg-type]


def test_filter_values_must_be_strings(agg: WindowAggregator) -> None:
    with pytest.raises(ValueError, match="model filter must be a str or None"):
        agg.metric("span_count", "1h", model=4)  # type: ignore[arg-type]


# --- timeseries ---------------------------------------------------------------------------------


def test_timeseries_points_cover_the_window(agg: WindowAggregator, clock: Clock) -> None:
    clock.now = T0 + 0.5
    agg.add_many([span(T0 - 30, cost="1", latency=100), span(T0 - 200, cost="2", latency=300)])
    agg.add(span(T0 - 200, model="gpt-4o-mini", cost="0.5", latency=50))
    points = agg.timeseries("5m", "1m")
    assert [p["start"] for p in points] == [
        "2026-03-15T14:55:00.000Z",
        "2026-03-15T14:56:00.000Z",
        "2026-03-15T14:57:00.000Z",
        "2026-03-15T14:58:00.000Z",
        "2026-03-15T14:59:00.000Z",
        "2026-03-15T15:00:00.000Z",
    ]
    assert [p["span_count"] for p in points] == [0, 2, 0, 0, 1, 0]
    assert points[1]["cost"] == 2.5
    assert points[1]["by_model"] == {
        "gpt-4o": {"cost": 2.0, "span_count": 1},
        "gpt-4o-mini": {"cost": 0.5, "span_count": 1},
    }
    assert (points[4]["latency_p50"], points[4]["total_tokens"]) == (100.0, 600)  # its one span's, exactly
    assert points[0]["latency_p99"] is None


def test_timeseries_step_is_rounded_to_the_window_resolution(agg: WindowAggregator) -> None:
    points = agg.timeseries("1h", "1s")  # a 1 h window is read in 15 s buckets
    assert len(points) == 241
    assert points[1]["start"] == "2026-03-15T14:00:15.000Z"


# --- memory -------------------------------------------------------------------------------------


def test_buckets_stay_bounded_however_long_it_runs(agg: WindowAggregator, clock: Clock) -> None:
    ends = []
    for _ in range(3000):  # ~35 days, one span every 1000 s
        agg.add(span(clock.now))
        ends.append(int(clock.now))
        clock.advance(1000)
    buckets = agg.stats()["buckets"]
    assert buckets == {"1s": 0, "3s": 1, "15s": 6, "1m": 30, "5m": 183, "30m": 611, "3h": 241}
    limits = {"1s": 306, "3s": 510, "15s": 408, "1m": 510, "5m": 612, "30m": 612, "3h": 242}
    assert all(buckets[res] <= limit for res, limit in limits.items())
    snap = agg.snapshot("30d")
    assert snap.span_count == sum(snap.start <= end < snap.end for end in ends)


# --- latency sketch -----------------------------------------------------------------------------


def _exact(values: list[int], q: float) -> int:
    ordered = sorted(values)
    rank = max(1, -(-round(q * len(ordered) * 10**9) // 10**9))
    return ordered[rank - 1]


def _first_or_last(values: list[int], q: float) -> bool:
    """Whether the q-quantile is the least or the greatest of the values (which sketches keep exactly)."""
    rank = max(1, -(-round(q * len(values) * 10**9) // 10**9))
    return rank in (1, len(values))


def test_sketch_quantiles_within_one_percent() -> None:
    values = [int(1.07**i) + i for i in range(300)]
    sketch = LatencySketch()
    for v in values:
        sketch.add(v)
    for q in (0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 1.0):
        exact = _exact(values, q)
        assert sketch.quantile(q) == pytest.approx(exact, rel=0.01)
    assert sketch.count == 300


def test_sketch_is_exact_below_50ms_and_merges() -> None:
    a, b = LatencySketch(), LatencySketch()
    for v in (1, 2, 3):
        a.add(v)
    b.add(49, n=3)
    a.merge(b)
    assert a.quantiles([0.0, 0.5, 0.51, 1.0]) == [1.0, 3.0, 49.0, 49.0]
    assert a.count == 6


def test_sketch_is_exact_at_its_ends_and_for_values_all_alike() -> None:
    alike = LatencySketch()
    alike.add(2000, n=100)
    assert alike.quantiles([0.0, 0.5, 0.95, 1.0]) == [2000.0] * 4  # the bin's own value is 2018.31
    spread, other = LatencySketch(), LatencySketch()
    for v in (1000, 1000, 1000, 5013):
        spread.add(v)
    other.add(4990)
    spread.merge(other)
    assert spread.quantiles([0.0, 0.5, 1.0]) == [1000.0, 1000.0, 5013.0]
    assert spread.quantile(0.8) == pytest.approx(4990, rel=0.01)  # neither end: its bin's value
    assert LatencySketch.joint_quantile(alike, other, 1.0) == 4990.0
    assert spread.copy().quantile(0.0) == 1000.0


def test_empty_sketch_and_bad_quantiles() -> None:
    assert LatencySketch().quantile(0.5) is None
    with pytest.raises(ValueError, match="between 0 and 1"):
        LatencySketch().quantile(1.5)


# --- property: the aggregator equals a brute-force recomputation ---------------------------------

_spans = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=3 * 3600),  # age in seconds when recorded
        st.sampled_from(["a", "b"]),
        st.sampled_from(["x", "y"]),
        st.sampled_from(["n1", "n2", None]),
        st.one_of(st.none(), st.integers(min_value=0, max_value=10_000)),  # cost in 1/1000 USD, or no price
        st.one_of(st.none(), st.integers(min_value=0, max_value=120_000)),
        st.booleans(),
        st.integers(min_value=0, max_value=3),  # batch it goes in
    ),
    max_size=60,
)


Row = tuple[float, str, str, str | None, int | None, int | None, bool, int]


def _row_span(row: Row, now: float) -> Span:
    age, model, provider, name, millicents, latency, error, _ = row
    return Span(
        model=model,
        provider=provider,
        name=name,
        cost=None if millicents is None else Decimal(millicents) / 1000,
        latency_ms=latency,
        status=Status.ERROR if error else Status.OK,
        prompt_tokens=(millicents or 7) % 97,
        comp_tokens=(millicents or 5) % 13,
        ended_at=round((now - age) * 1000),
    )


def _inside(span: Span, start: int, end: int, filters: dict[str, str]) -> bool:
    assert span.ended_at is not None
    return start <= span.ended_at // 1000 < end and all(getattr(span, k) == v for k, v in filters.items())


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=_spans,
    window=st.one_of(st.sampled_from([10.0, 60.0, 3600.0, 7200.0]), st.floats(min_value=1, max_value=4 * 3600)),
    step=st.one_of(st.floats(min_value=0, max_value=600), st.sampled_from([900.0, 3600.0, 20000.0])),
    filters=st.fixed_dictionaries(
        {}, optional={"model": st.sampled_from(["a", "b"]), "name": st.sampled_from(["n1", "n2"])}
    ),
)
def test_matches_brute_force(
    rows: list[Row],
    window: float,
    step: float,
    filters: dict[str, str],
) -> None:
    clock = Clock(T0 + 0.25)
    agg = WindowAggregator(clock=clock)
    spans: list[Span] = []
    for batch in range(4):  # the same window is asked after each batch: it moves incrementally
        made = [_row_span(row, clock.now) for row in rows if row[-1] == batch]
        agg.add_many(made)
        spans += made
        _check_against_brute_force(agg.snapshot(window, **filters), spans, clock.now, filters)
        clock.advance(step)  # and asked again, nothing added: only time moves it
        _check_against_brute_force(agg.snapshot(window, **filters), spans, clock.now, filters)


def _check_against_brute_force(snap: WindowSnapshot, spans: list[Span], now: float, filters: dict[str, str]) -> None:
    assert abs(snap.start - (now - snap.window)) <= max(1.0, snap.window / 100)
    chosen = [s for s in spans if _inside(s, snap.start, snap.end, filters)]
    assert snap.span_count == len(chosen)
    assert snap.error_count == sum(s.status is Status.ERROR for s in chosen)
    assert snap.total_cost == sum((s.cost for s in chosen if s.cost is not None), Decimal(0))
    assert snap.prompt_tokens == sum(s.prompt_tokens for s in chosen)
    assert snap.comp_tokens == sum(s.comp_tokens for s in chosen)
    assert snap.unpriced_count == sum(s.cost is None for s in chosen)
    by_model: dict[str, Decimal | None] = {}
    for s in chosen:
        before = by_model.get(s.model)
        by_model[s.model] = before if s.cost is None else (before or Decimal(0)) + s.cost
    assert snap.cost_by_model == by_model
    latencies = [s.latency_ms for s in chosen if s.latency_ms is not None]
    for q, got in ((0.5, snap.latency_p50), (0.95, snap.latency_p95), (0.99, snap.latency_p99)):
        if latencies:
            exact = _exact(latencies, q)
            assert got == pytest.approx(exact, rel=0.01)
            assert min(latencies) <= got <= max(latencies)
            if min(latencies) == max(latencies) or _first_or_last(latencies, q):
                assert got == exact
        else:
            assert got is None


@pytest.mark.parametrize("seed", [1, 2])
def test_a_window_moving_on_alone_is_still_exact(seed: int) -> None:
    """Asked again as only time moves it, a window takes away the seconds it left, which may
    have held its least or greatest latency: they are found again."""
    rnd = random.Random(seed)
    for _ in range(30):
        clock = Clock(T0 + 0.25)
        agg = WindowAggregator(clock=clock)
        ages = [rnd.uniform(0, 3 * 3600) for _ in range(40)]
        rows: list[Row] = [
            (age, rnd.choice("ab"), "x", None, rnd.choice([None, 5]), rnd.randrange(120_000), False, 0) for age in ages
        ]
        spans = [_row_span(row, clock.now) for row in rows]
        agg.add_many(spans)
        for _ in range(4):
            _check_against_brute_force(agg.snapshot("1h"), spans, clock.now, {})
            clock.advance(300)


def test_a_window_asked_again_after_a_long_pause_is_still_exact(agg: WindowAggregator, clock: Clock) -> None:
    spans: list[Span] = []
    for pause in (0, 1, 60, 1800, 7200, 86400, 3):
        clock.advance(pause)
        spans += [span(clock.now - age, cost="0.01") for age in (0, 1, 2, 4)]  # none late: no recompute
        agg.add_many(spans[-4:])
        _check_against_brute_force(agg.snapshot("1d"), spans, clock.now, {})
        _check_against_brute_force(agg.snapshot("10m", model="gpt-4o"), spans, clock.now, {})


def test_every_metric_name_is_served(mixed: WindowAggregator) -> None:
    snap = mixed.snapshot("1h")
    for metric in METRICS:
        assert mixed.metric(metric, "1h") == snap.value(metric)


def test_percentiles_of_calls_all_alike_are_their_latency(agg: WindowAggregator, clock: Clock) -> None:
    agg.add_many([span(clock.now - age, latency=2000) for age in range(0, 600, 7)])
    for window in ("10s", "1h", "30d"):
        assert agg.metric("latency_p95", window) == 2000.0
        assert agg.snapshot(window).latency_p99 == 2000.0
    agg.add(span(clock.now, model="gpt-4o-mini", latency=1000))
    assert agg.metric("latency_p50", "1h", model="gpt-4o-mini") == 1000.0
    assert agg.timeseries("1h", "1h")[-1]["latency_p95"] == 2000.0


def test_a_window_moving_past_its_slowest_and_fastest_calls_finds_its_new_ends(
    agg: WindowAggregator, clock: Clock
) -> None:
    agg.add_many([span(clock.now - 50, latency=2030), span(clock.now - 50, latency=1990)])
    for age in range(40):
        agg.add(span(clock.now - age, latency=2000))
    window = ("latency_p99", "latency_p50", "latency_p95")
    assert [agg.metric(m, "1m") for m in window] == [2030.0, 2018.31, 2018.31]  # one bin holds 1990 to 2030
    clock.advance(30)  # the windows, asked again, move past the calls of 2030 and 1990 ms
    assert [agg.metric(m, "1m") for m in window] == [2000.0, 2000.0, 2000.0]
    assert agg.snapshot("1m").latency_p95 == 2000.0


def test_late_span_into_sealed_seconds_counts_with_and_without_filters(agg: WindowAggregator, clock: Clock) -> None:
    for i in range(12):
        agg.add_many([span(T0 + i, latency=100 + i), span(T0 + i, model="gpt-4o-mini", latency=300)])
        clock.advance(1)
    clock.advance(5)  # the first seconds are sealed and rolled up into the 3 s buckets
    agg.add(span(T0 + 1, latency=5000))
    assert agg.metric("span_count", 20) == 25
    assert agg.metric("span_count", 20, model="gpt-4o") == 13
    assert agg.metric("latency_p99", 20) == pytest.approx(5000, rel=0.01)
    assert agg.metric("latency_p50", 20, model="gpt-4o-mini") == pytest.approx(300, rel=0.01)
