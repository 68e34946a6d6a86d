"""The alert engine: evaluates rules against the metric windows and sends notifications.

Rules follow Prometheus and Alertmanager: a rule whose condition holds is *pending* until it has
held for ``for_``, then *firing*; while firing it notifies once, then again only after
``cooldown``; it resolves (one notification, unless ``notify_resolved=False``) once the condition
has been false for ``keep_firing_for``. A condition that clears while pending sends nothing.

:meth:`AlertEngine.observe` runs right after the spans are aggregated, so a threshold is caught
on the span that crosses it; :meth:`AlertEngine.tick` runs every second or so, so windows that
slide past their spans (and ``<`` rules) change state without new traffic. Notifications go to a
bounded queue per delivery, drained by a ``tokentrace.alerts`` worker thread.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from operator import attrgetter
from typing import Any, NamedTuple

import msgspec

from .. import _fork
from .._worker import BatchWorker, Counters, deadline, left
from ..durations import format_duration
from ..spans import Span, Status, exact, format_timestamp
from ..windows import WindowAggregator
from ..windows.aggregates import BatchTotals
from .deliveries import Delivery, DeliveryOutcome
from .rules import AlertRule, Op

__all__ = ["AlertEngine", "AlertState"]

_DEFAULT_MAX_QUEUE = 1000
_ADDITIVE: dict[str, Callable[[Span], Decimal | int]] = {
    "total_cost": lambda s: s.cost if s.cost is not None else Decimal(0),
    "span_count": lambda s: 1,
    "error_count": lambda s: int(s.status is Status.ERROR),
    "prompt_tokens": lambda s: s.prompt_tokens,
    "comp_tokens": lambda s: s.comp_tokens,
    "total_tokens": lambda s: s.prompt_tokens + s.comp_tokens,
}

Value = Decimal | float | int | None
_RATIO_EVERY_S = 1.0  # how often a batch may re-check a non-additive rule


class AlertState(str, enum.Enum):
    """Where a rule stands."""

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


class _Notice(NamedTuple):
    track: _Track
    payload: dict[str, Any]
    key: str


def _ms(seconds: float) -> int:
    return math.floor(seconds * 1000)


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else format_timestamp(_ms(seconds))


def _json_number(value: Value) -> float | int | None:
    return float(value) if isinstance(value, Decimal) else value


class _Kept(msgspec.Struct, array_like=True):
    """One rule's state as kept across restarts (see :meth:`AlertEngine.state`)."""

    fingerprint: str
    state: AlertState
    active_since: float
    last_true: float
    fired_at: float
    notified_at: float
    notifications: int
    kept_at: float = 0.0  # when it was kept (0: by a version that did not say; see restore())


class _Track:
    """One rule's state machine and its bookkeeping."""

    def __init__(self, rule: AlertRule) -> None:
        self.rule = rule
        self.state = AlertState.INACTIVE
        self.active_since = 0.0  # when the condition started to hold (pending or firing)
        self.last_true = 0.0
        self.fired_at = 0.0
        self.notified_at = 0.0
        self.value: Value = None
        self.bound: Value = None  # the last value plus what was recorded since: never below it
        self.evaluated_at: float | None = None
        self.notifications = 0
        self.last_delivery: DeliveryOutcome | None = None

    def step(self, active: bool, now: float) -> str | None:
        """Advance the state machine; returns ``"firing"``, ``"repeat"``, ``"resolved"`` or None."""
        rule = self.rule
        if active:
            self.last_true = now
            if self.state is AlertState.INACTIVE:
                self.state, self.active_since = AlertState.PENDING, now
            if self.state is AlertState.PENDING:
                if now - self.active_since < rule.for_:
                    return None
                self.state, self.fired_at, self.notified_at = AlertState.FIRING, now, now
                return "firing"
        elif self.state is AlertState.PENDING:  # cleared before it fired: nothing to say
            self.state = AlertState.INACTIVE
            return None
        elif self.state is AlertState.FIRING and now - self.last_true >= rule.keep_firing_for:
            self.state = AlertState.INACTIVE
            return "resolved"
        if self.state is AlertState.FIRING and now - self.notified_at >= rule.cooldown:
            self.notified_at = now
            return "repeat"
        return None

    def kept(self, now: float) -> _Kept:
        return _Kept(
            self.rule.fingerprint,
            self.state,
            self.active_since,
            self.last_true,
            self.fired_at,
            self.notified_at,
            self.notifications,
            now,
        )

    def payload(self, kind: str, value: Value, now: float) -> dict[str, Any]:
        """The notification: the quickstart's keys first, in order, then the extras."""
        rule = self.rule
        resolved = kind == "resolved"
        return {
            "alert": rule.name,
            "fired_at": _iso(self.fired_at),
            "metric": rule.metric,
            "value": value,
            "threshold": rule.threshold,
            "window": format_duration(rule.window),
            "state": "resolved" if resolved else "firing",
            "level": rule.level,
            "filters": dict(rule.filters),
            "resolved_at": _iso(now) if resolved else None,
            "fingerprint": rule.fingerprint,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.rule.to_dict(),
            "state": self.state.value,
            "value": _json_number(self.value),
            "active_since": None if self.state is AlertState.INACTIVE else _iso(self.active_since),
            "fired_at": _iso(self.fired_at) if self.state is AlertState.FIRING else None,
            "last_evaluated": _iso(self.evaluated_at),
            "notifications": self.notifications,
            "last_delivery": None if self.last_delivery is None else self.last_delivery.value,
        }


class AlertEngine:
    """Evaluates alert rules over a :class:`~tokentrace.windows.WindowAggregator`.

    Example::

        aggregator = WindowAggregator()
        engine = AlertEngine(rules, aggregator)
        # on the aggregation worker, for each batch:
        aggregator.add_many(spans)
        engine.observe(spans)
        # on a timer thread, about every second:
        engine.tick()
        # at shutdown:
        engine.close(timeout=2)

    Where the rules stand can outlive the process: :meth:`state` gives it as JSON, which
    :meth:`restore` takes back, and ``keep``, when set, is handed :meth:`state` whenever a rule
    changes state or notifies (the collector keeps it in its database).

    A ``<`` or ``<=`` rule ("fewer than 1 call in 10 minutes") cannot trip before a whole window
    has been watched, from ``watched_since`` (when the engine was made; the collector moves it
    back when its windows hold stored spans): windows that only just started would look quiet.

    Args:
        rules: the :class:`AlertRule` objects; each must be distinct (by fingerprint).
        aggregator: where the metrics come from.
        clock: seconds since the epoch; defaults to the aggregator's clock.
        counters: where lost notifications are counted, by reason (each starting ``alert_``).
        max_queue: notifications waiting per delivery before new ones are dropped.

    Raises:
        ValueError: a rule is not an ``AlertRule``, or two rules are the same.
    """

    def __init__(
        self,
        rules: Iterable[AlertRule],
        aggregator: WindowAggregator,
        *,
        clock: Callable[[], float] | None = None,
        counters: Counters | None = None,
        max_queue: int = _DEFAULT_MAX_QUEUE,
    ) -> None:
        self._tracks = [_Track(rule) for rule in _check_rules(rules)]
        self.keep: Callable[[bytes], None] | None = None  # given state() after a rule changes state
        self._aggregator = aggregator
        self._clock = clock or aggregator.clock
        self.counters = counters or Counters()
        self._lock = _fork.lock()
        self._closed = False
        self._paused = False
        self.watched_since = self._clock()
        self._workers: dict[int, tuple[Delivery, BatchWorker[_Notice]]] = {}
        for track in self._tracks:
            delivery = track.rule.delivery
            if id(delivery) not in self._workers:
                worker = BatchWorker(
                    "tokentrace.alerts", self._deliverer(delivery), max_queue=max_queue, max_batch=1,
                    counters=self.counters, reason_prefix="alert_",
                )  # fmt: skip
                self._workers[id(delivery)] = (delivery, worker)

    @property
    def rules(self) -> list[AlertRule]:
        return [track.rule for track in self._tracks]

    def _forget(self) -> None:
        """Every rule back where it starts: inactive, never notified."""
        self._tracks = [_Track(track.rule) for track in self._tracks]

    def observe(self, spans: Sequence[Span]) -> None:
        """Evaluate the rules after ``spans`` were aggregated (call it on the same thread,
        right after ``aggregator.add_many(spans)``). Never raises; never waits on a delivery.

        A rule on a sum (cost, counts, tokens) is skipped when these spans cannot change its
        state: more spans never clear a ``>`` rule nor trip a ``<`` rule, and a ``>`` rule
        whose last value plus these spans stays under the threshold cannot have crossed it.
        Given the very sequence just passed to ``add_many``, the batch's sums are the ones the
        aggregator kept while folding it in; otherwise they are added up from the spans.
        """
        if spans:
            self._evaluate(spans, _BatchSums(spans, self._aggregator.take_totals(spans)))

    def tick(self) -> None:
        """Evaluate every rule at the current time (call it about once a second)."""
        self._evaluate((), None)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No rule is evaluated inside the block: meant for while the windows the rules read
        are being refilled (a restart), which would look like a fall to nothing."""
        self._paused = True
        try:
            yield
        finally:
            self._paused = False

    def _evaluate(self, spans: Sequence[Span], batch: _BatchSums | None) -> None:
        if self._closed or self._paused:
            return
        with self._lock:
            now = self._clock()
            before = self._marks() if self.keep is not None else None
            for track in self._tracks:
                try:
                    if batch is None or not _unmoved(track, batch, now):
                        self._check(track, now, spans)
                except Exception as exc:  # one broken rule must not stop the others
                    self.counters.drop("alert_rule_error", 1, f"{track.rule.name}: {exc!r}")
            changed = before is not None and before != self._marks()
        if changed:
            self._keep()

    def _marks(self) -> list[tuple[AlertState, float, float]]:
        """What a kept state must follow: each rule's state, when it last notified, and, for a
        firing rule that keeps firing for a while after its condition last held, when that was,
        in steps of a tenth of that while (at least 1 s): a restart resolves it at most that
        much early."""
        return [(track.state, track.notified_at, _last_true_step(track)) for track in self._tracks]

    def _keep(self) -> None:
        assert self.keep is not None
        try:
            self.keep(self.state())
        except Exception as exc:  # the rules go on; a restart would start them afresh
            self.counters.drop("alert_state_not_kept", 1, repr(exc))

    def state(self) -> bytes:
        """Where every rule stands (state, since when, when it last notified), as JSON that
        :meth:`restore` takes back in a later process."""
        with self._lock:
            now = self._clock()
            return msgspec.json.encode([track.kept(now) for track in self._tracks])

    def restore(self, state: bytes) -> int:
        """Take back where the rules stood (a :meth:`state`): a rule firing before goes on
        firing without notifying again, and resolves, with a notification, if its condition no
        longer holds; a pending one goes on waiting for ``for_``, the time no process watched it
        left out, as Prometheus does: the time between when the state was kept (a clean stop
        keeps it; a crash leaves the one kept when the rule became pending) and now. Rules are
        matched by fingerprint; the others start inactive. Returns how many were taken back.

        Raises:
            ValueError: ``state`` is not what :meth:`state` gives.
        """
        try:
            kept = msgspec.json.decode(state, type=list[_Kept])
        except msgspec.DecodeError as exc:
            raise ValueError(f"saved alert states cannot be read: {exc}") from exc
        by_fingerprint = {item.fingerprint: item for item in kept}
        restored = 0
        with self._lock:
            now = self._clock()
            for track in self._tracks:
                item = by_fingerprint.get(track.rule.fingerprint)
                if item is not None:
                    track.state, track.active_since, track.last_true = item.state, item.active_since, item.last_true
                    if item.state is AlertState.PENDING:  # unwatched, the condition may not have held
                        track.active_since += max(0.0, now - (item.kept_at or item.active_since))
                    track.fired_at, track.notified_at = item.fired_at, item.notified_at
                    track.notifications = item.notifications
                    restored += 1
        return restored

    def _check(self, track: _Track, now: float, spans: Sequence[Span]) -> None:
        rule = track.rule
        value = self._aggregator.metric(rule.metric, rule.window, **rule.query())
        was_inactive = track.state is AlertState.INACTIVE
        track.value, track.bound, track.evaluated_at = value, value, now
        active = rule.condition(value) and (rule.op not in _AT_MOST or now - self.watched_since >= rule.window)
        kind = track.step(active, now)
        if kind is None:
            return
        if kind == "firing" and was_inactive and len(spans) > 1:
            value = self._crossing(rule, spans, value)
        if kind != "resolved" or rule.notify_resolved:
            self._notify(track, kind, value, now)

    def _crossing(self, rule: AlertRule, spans: Sequence[Span], value: Value) -> Value:
        """The value right after the span of this batch that tripped an additive rule (the
        seed's rule reports the total at the span that took it past $5, not the batch's end)."""
        contribution = _ADDITIVE.get(rule.metric)
        if contribution is None or rule.op not in (Op.GT, Op.GE) or not isinstance(value, (int, Decimal)):
            return value
        start, _ = self._aggregator.bounds(rule.window)
        parts = [
            contribution(s) for s in spans if rule.matches(s) and (s.ended_at is None or s.ended_at // 1000 >= start)
        ]
        running = value - sum(parts)
        if rule.condition(running):
            return value
        for part in parts:
            running += part
            if rule.condition(running):
                return running if isinstance(running, int) else exact(running)
        return value

    def _notify(self, track: _Track, kind: str, value: Value, now: float) -> None:
        payload = track.payload(kind, value, now)
        key = f"{track.rule.fingerprint}:{payload['state']}:{_ms(now)}"
        track.notifications += 1
        self._workers[id(track.rule.delivery)][1].put(_Notice(track, payload, key))

    def _deliverer(self, delivery: Delivery) -> Callable[[list[_Notice]], None]:
        def deliver(batch: list[_Notice]) -> None:
            for notice in batch:
                try:
                    outcome = delivery.send(notice.payload, key=notice.key)
                except Exception as exc:  # a failing delivery must not stop the worker
                    self.counters.drop("alert_delivery_error", 1, f"{notice.payload['alert']}: {exc!r}")
                    outcome = DeliveryOutcome.FAILED
                else:
                    if outcome is not DeliveryOutcome.DELIVERED:
                        self.counters.drop(f"alert_{outcome.value}", 1, notice.payload["alert"])
                notice.track.last_delivery = outcome

        return deliver

    def states(self) -> list[dict[str, Any]]:
        """Every rule with its state, last value and delivery status (JSON-ready)."""
        with self._lock:
            return [track.to_dict() for track in self._tracks]

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every notification so far was handed to its delivery; False on timeout."""
        until = deadline(timeout)
        done = True
        for _, worker in self._workers.values():
            done = worker.flush(left(until)) and done
        return done

    def close(self, timeout: float | None = None) -> bool:
        """Deliver what is queued (up to ``timeout``), stop the workers, close the deliveries."""
        self._closed = True
        until = deadline(timeout)
        done = True
        for delivery, worker in self._workers.values():
            done = worker.shutdown(left(until)) and done
            delivery.close()
        return done


class _BatchSums:
    """Per metric, what a batch of spans adds to a sum: the totals the aggregator kept while
    folding the batch in, else computed on first use. Filters are ignored: the sum over all
    spans is an upper bound of the sum over the matching ones."""

    def __init__(self, spans: Sequence[Span], totals: BatchTotals | None = None) -> None:
        self._spans = spans
        self._totals = totals
        self._sums: dict[str, Decimal | int] = {}

    def added(self, metric: str) -> Decimal | int:
        if self._totals is not None:
            kept: Decimal | int = getattr(self._totals, metric)  # fields are named after metrics
            return kept
        total = self._sums.get(metric)
        if total is None:
            total = self._sums[metric] = _BATCH_SUMS[metric](self._spans)
        return total


def _tokens(spans: Sequence[Span]) -> int:
    total: int = sum(map(_PROMPT, spans)) + sum(map(_COMP, spans))
    return total


_PROMPT, _COMP = attrgetter("prompt_tokens"), attrgetter("comp_tokens")
# whole-batch sums without a Python call per span (a falsy cost, None or zero, adds nothing)
_BATCH_SUMS: dict[str, Callable[[Sequence[Span]], Decimal | int]] = {
    "total_cost": lambda spans: sum(filter(None, map(attrgetter("cost"), spans)), Decimal(0)),
    "span_count": len,
    "error_count": lambda spans: list(map(attrgetter("status"), spans)).count(Status.ERROR),
    "prompt_tokens": lambda spans: sum(map(_PROMPT, spans)),
    "comp_tokens": lambda spans: sum(map(_COMP, spans)),
    "total_tokens": _tokens,
}


def _unmoved(track: _Track, batch: _BatchSums, now: float) -> bool:
    """Whether the batch's spans need not be checked against the rule now.

    True when they certainly leave its state as it is, and for a percentile, average or rate
    rule already checked less than a second ago: those cost a sketch merge each, and the tick
    checks them every second anyway.
    """
    rule = track.rule
    if rule.metric not in _ADDITIVE:
        return track.evaluated_at is not None and now - track.evaluated_at < _RATIO_EVERY_S
    if rule.op in (Op.LT, Op.LE):  # sums only grow with spans: a "<" rule can only clear
        return track.state is AlertState.INACTIVE
    if track.state is AlertState.PENDING:  # the condition holds on: only time moves it on
        return True
    if track.state is AlertState.FIRING:  # unless keep_firing_for counts from the last true
        return rule.keep_firing_for == 0
    if not isinstance(track.bound, (int, Decimal)):
        return False
    track.bound += batch.added(rule.metric)
    return not rule.condition(track.bound)


_AT_MOST = (Op.LT, Op.LE)  # rules that windows holding nothing yet would trip


def _last_true_step(track: _Track) -> float:
    keep_firing_for = track.rule.keep_firing_for
    if track.state is not AlertState.FIRING or not keep_firing_for:
        return 0.0
    return track.last_true // max(1.0, keep_firing_for / 10)


def _check_rules(rules: Iterable[AlertRule]) -> list[AlertRule]:
    checked = list(rules)
    seen: set[str] = set()
    for rule in checked:
        if not isinstance(rule, AlertRule):
            raise ValueError(f"alerts must be AlertRule objects, got {type(rule).__name__}")
        if rule.fingerprint in seen:
            raise ValueError(f"alert rule {rule.name!r} is listed twice")
        seen.add(rule.fingerprint)
    return checked
