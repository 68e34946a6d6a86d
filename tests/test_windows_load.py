"""Loading stored spans into the windows: the same answers as adding them, then and later."""

from __future__ import annotations

import math
import random
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokentrace.spans import Span, Status
from tokentrace.windows import WindowAggregator

T0 = 1_773_586_800  # 2026-03-15T15:00:00Z
DAY = 86400
WINDOWS = ["5s", "1m", "10m", "1h", "6h", "1d", "7d", "30d"]
FILTERS: list[dict[str, str]] = [
    {},
    {"model": "m1"},
    {"provider": "p2"},
    {"name": "chat"},
    {"model": "m0", "name": "n"},
]


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def history(rnd: random.Random, now: float, *, recent: bool = True) -> list[Span]:
    """Spans of the last 30 days, oldest first: thin over the days, dense in the last hour, a
    few too old to keep and, when ``recent``, some in the seconds still open and in the future."""
    ages = [rnd.uniform(0, 30 * DAY) for _ in range(600)]
    ages += [rnd.uniform(5 if not recent else 0, 3600) for _ in range(900)]
    if recent:
        ages += [rnd.uniform(0, 2.5) for _ in range(30)]
        ages += [-rnd.uniform(0, 30) for _ in range(5)]
    ages += [30 * DAY + 7 * 3600 + rnd.uniform(0, 100) for _ in range(4)]  # past 30 days and 6 h of slack
    return sorted((made(rnd, now - age) for age in ages), key=lambda s: s.ended_at or 0)


def made(rnd: random.Random, at: float) -> Span:
    k = rnd.randrange(6)
    return Span(
        model=f"m{k % 3}",
        provider=f"p{k % 2}",
        name=rnd.choice(["chat", "n", None]),
        prompt_tokens=rnd.randrange(1000),
        comp_tokens=rnd.randrange(300),
        cost=None if rnd.random() < 0.1 else Decimal(rnd.randrange(1, 10**6)) / 10**7,
        latency_ms=None if rnd.random() < 0.05 else int(rnd.lognormvariate(6.5, 1)),
        status=Status.ERROR if rnd.random() < 0.1 else Status.OK,
        ended_at=round(at * 1000),
    )


def batches(spans: list[Span], size: int) -> list[list[Span]]:
    return [spans[i : i + size] for i in range(0, len(spans), size)]


def in_window(agg: WindowAggregator, window: str, spans: list[Span]) -> int:
    """How many of ``spans`` a window ending now covers (a future span counts now)."""
    snap, now_s = agg.snapshot(window), math.floor(agg.clock())
    return sum(snap.start <= min((s.ended_at or 0) // 1000, now_s) < snap.end for s in spans)


def assert_same(loaded: WindowAggregator, added: WindowAggregator) -> None:
    for window in WINDOWS:
        for filters in FILTERS:
            assert loaded.snapshot(window, **filters).to_dict() == added.snapshot(window, **filters).to_dict()
    for window, step in (("1h", "5m"), ("7d", "6h"), ("30d", "1d")):
        assert loaded.timeseries(window, step) == added.timeseries(window, step)
    assert loaded.stats() == added.stats()


def assert_same_as_time_goes_on(
    one: WindowAggregator, other: WindowAggregator, clock: Clock, rnd: random.Random, pauses: tuple[int, ...]
) -> None:
    """After each pause, the same live spans (of the last few seconds) into both; the same answers."""
    for pause in pauses:
        clock.now += pause
        live = [made(rnd, clock.now - rnd.uniform(0, 3)) for _ in range(10)]
        one.add_many(live)
        other.add_many(live)
        assert_same(one, other)


@pytest.mark.parametrize(("seed", "recent"), [(1, True), (2, True), (3, False), (4, False)])
def test_loaded_history_answers_as_added_history_then_and_as_time_goes_on(seed: int, recent: bool) -> None:
    rnd = random.Random(seed)
    clock = Clock(T0 + rnd.random())
    spans = history(rnd, clock.now, recent=recent)
    loaded, added = WindowAggregator(clock=clock), WindowAggregator(clock=clock)

    assert loaded.load(iter(batches(spans, 97))) == len(spans)
    for batch in batches(spans, 97):
        added.add_many(batch)

    assert loaded.metric("span_count", "30d") == in_window(loaded, "30d", spans)
    assert loaded.metric("span_count", "1h") == in_window(loaded, "1h", spans) >= 900
    assert loaded.stats()["dropped"] == {"too_old": 4}
    assert_same(loaded, added)
    assert_same_as_time_goes_on(loaded, added, clock, rnd, (4000, 1, 2, 30, 900, 3 * 3600))  # pending buckets roll up


def test_a_span_older_than_one_loaded_before_it_still_counts() -> None:
    rnd = random.Random(5)
    clock = Clock(T0)
    spans = history(rnd, clock.now)
    spans[100], spans[-50] = spans[-50], spans[100]  # a recent one early, an old one late
    loaded, added = WindowAggregator(clock=clock), WindowAggregator(clock=clock)

    loaded.load(batches(spans, 200))
    added.add_many(spans)

    assert_same(loaded, added)


def test_loading_into_windows_that_hold_spans_already() -> None:
    rnd = random.Random(6)
    clock = Clock(T0)
    first = [made(rnd, clock.now - rnd.uniform(0, 7200)) for _ in range(50)]
    spans = history(rnd, clock.now)
    loaded, added = WindowAggregator(clock=clock), WindowAggregator(clock=clock)
    for agg in (loaded, added):
        agg.add_many(first)
        agg.metric("total_cost", "1h")  # a window sum cached before the load

    loaded.load(batches(spans, 500))
    added.add_many(spans)

    assert loaded.metric("span_count", "30d") == in_window(loaded, "30d", first + spans)
    assert_same(loaded, added)


def test_loading_nothing_leaves_the_windows_empty() -> None:
    clock = Clock(T0)
    agg = WindowAggregator(clock=clock)
    assert agg.load([]) == 0
    assert agg.load([[]]) == 0
    assert agg.metric("span_count", "30d") == 0
    agg.add(made(random.Random(7), clock.now))
    assert agg.metric("span_count", "1m") == 1


def test_windows_only_queried_so_far_are_loaded_the_fast_way() -> None:
    """An alert rule's tick may query the windows before the store is loaded: the levels are
    still built whole (complete buckets, which queries read one aggregate of), not span by span."""
    rnd = random.Random(8)
    clock = Clock(T0)
    agg = WindowAggregator(clock=clock)
    assert agg.metric("span_count", "1h") == 0
    agg.load(batches(history(rnd, clock.now, recent=False), 300))
    coarse = [b for level in agg._levels[2:] for b in level.buckets.values()]
    assert len(coarse) > 100
    assert all(bucket.complete for bucket in coarse)


_AGES = st.one_of(
    st.floats(min_value=-20, max_value=40),  # the open seconds, and a little past and ahead of them
    st.floats(min_value=0, max_value=7200),
    st.floats(min_value=0, max_value=31 * DAY),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ages=st.lists(_AGES, max_size=80),
    size=st.integers(min_value=1, max_value=40),
    shuffled=st.booleans(),
    seed=st.integers(min_value=0, max_value=2**32),
    pause=st.sampled_from([0, 1, 3, 17, 3600, 2 * DAY]),
)
def test_load_matches_add_many_for_any_history(
    ages: list[float], size: int, shuffled: bool, seed: int, pause: int
) -> None:
    rnd = random.Random(seed)
    clock = Clock(T0 + rnd.random())
    spans = sorted((made(rnd, clock.now - age) for age in ages), key=lambda s: s.ended_at or 0)
    if shuffled:
        rnd.shuffle(spans)
    loaded, added = WindowAggregator(clock=clock), WindowAggregator(clock=clock)

    assert loaded.load(batches(spans, size)) == len(spans)
    added.add_many(spans)
    assert_same(loaded, added)

    assert_same_as_time_goes_on(loaded, added, clock, rnd, (pause,))


# --- the state kept across restarts ---------------------------------------------------------------


@pytest.mark.parametrize("seed", [11, 12])
def test_windows_taken_back_from_their_state_answer_as_before_and_as_time_goes_on(seed: int) -> None:
    rnd = random.Random(seed)
    clock = Clock(T0 + rnd.random())
    spans = history(rnd, clock.now)
    kept, same = WindowAggregator(clock=clock), WindowAggregator(clock=clock)
    kept.load(batches(spans, 500))
    same.load(batches(spans, 500))
    recent = [made(rnd, clock.now - 0.5), made(rnd, clock.now + 40)]  # open seconds; one from the future
    for agg in (kept, same):
        agg.add_many(recent)
    state = kept.state()

    back = WindowAggregator(clock=clock)
    back.restore(state)
    assert_same(back, same)
    assert back.state() == state
    assert_same_as_time_goes_on(back, same, clock, rnd, (1, 3, 4000, 3 * 3600, 2 * DAY))


def test_a_state_is_taken_back_sharing_its_aggregates_as_it_was_written() -> None:
    rnd = random.Random(13)
    clock = Clock(T0)
    agg = WindowAggregator(clock=clock)
    agg.load(batches(history(rnd, clock.now), 500))
    back = WindowAggregator(clock=clock)
    back.restore(agg.state())

    def distinct(windows: WindowAggregator) -> int:
        return len(
            {
                id(f)
                for level in windows._levels
                for b in level.buckets.values()
                for f in (*b.series.values(), *b.combos.values())
            }
        )

    assert distinct(back) == distinct(agg)


def test_a_state_of_the_first_format_is_taken_back() -> None:
    """Windows kept by the first format, which counted no priced spans and kept no least or
    greatest latency: five gpt-4o calls at $0.00448 and 2000 ms and five of a model without a
    price at 1000 ms, sealed and in the second still open, kept at T0 + 0.5."""
    state = (Path(__file__).parent / "data" / "windows-state-format-1.msgpack").read_bytes()
    clock = Clock(T0 + 0.5)
    back = WindowAggregator(clock=clock)
    back.restore(state)
    snap = back.snapshot("1h")
    assert snap.cost_by_model == {"gpt-4o": Decimal("0.0224"), "made-up": None}
    assert (snap.total_cost, snap.span_count, snap.unpriced_count) == (Decimal("0.0224"), 10, 5)
    assert (snap.latency_p50, snap.latency_p99) == (996.41, 2018.31)  # the bins' values, as then
    assert back.metric("latency_p99", "1h", model="made-up") == 996.41
    back.add(Span(model="gpt-4o", provider="openai", cost=Decimal(1), latency_ms=2000, ended_at=T0 * 1000 - 9000))
    for _ in range(8):  # the window, asked as it moves on, leaves the spans kept before
        clock.now += 50
        back.add(Span(model="gpt-4o", provider="openai", latency_ms=2000, ended_at=round(clock.now * 1000) - 1000))
        p95 = back.metric("latency_p95", "5m")
    assert p95 == 2000.0
    again = WindowAggregator(clock=clock)
    again.restore(back.state())
    assert again.snapshot("1h").to_dict() == back.snapshot("1h").to_dict()
    assert again.snapshot("1h").cost_by_model == {"gpt-4o": Decimal("1.0224"), "made-up": None}


def test_a_state_that_cannot_be_taken_back_leaves_the_windows_as_they_were() -> None:
    clock = Clock(T0)
    agg = WindowAggregator(clock=clock)
    agg.add(made(random.Random(14), clock.now))
    state = agg.state()
    with pytest.raises(ValueError, match="hold spans already"):
        agg.restore(state)
    other = WindowAggregator(clock=clock, grace=5)
    with pytest.raises(ValueError, match="another grace period"):
        other.restore(state)
    for spoilt in (b"", b"\x93\x01\x02", state[:-7]):
        with pytest.raises(ValueError, match="cannot be read"):
            other.restore(spoilt)
    assert other.metric("span_count", "30d") == 0 and other.stats()["series"] == 0
    other.load([[made(random.Random(15), clock.now - 100)]])
    assert other.metric("span_count", "1h") == 1
