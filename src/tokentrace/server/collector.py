"""The standalone collector behind ``tokentrace serve``: many processes send it their spans.

A :class:`Collector` owns a :class:`~tokentrace.store.sqlite.SQLiteStore` and a tracer with no
transport whose windows and alert rules see every span stored. Ingest stores a batch durably
first and hands only the spans that were new to the tracer, so a batch resent after a lost
answer is counted once. At start-up the windows are rebuilt from the store, so a restarted
collector answers ``/metrics/*`` for what it stored before.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from .. import pricing
from ..exceptions import ConfigError, StoreError
from ..spans import Span
from ..store.sqlite import SQLiteStore
from ..tracer import Tracer
from ..windows import MAX_WINDOW
from .app import make_app
from .config import hosts_to_check, parse_addr
from .embedded import bind_socket, socket_url, tracer_feed
from .hosts import is_loopback
from .ingest import MAX_COST, IngestError
from .prom import SpanCounters

__all__ = ["Collector", "check_bind", "serve"]

_log = logging.getLogger(__name__)
_PIPELINE_QUEUE = 100_000  # spans of concurrent ingest requests in flight to the windows
_COUNTERS = "prometheus_counters"  # where the database keeps their totals
_ALERTS = "alert_states"  # and where the alert rules stood
_WINDOWS = "windows"  # and the metric windows, as they were at the last clean stop


class Collector:
    """Durable span storage, windows, alerts and the HTTP app, wired together.

    Example::

        collector = Collector("./tokentrace.db", rules=load_rules("tokentrace.toml"))
        uvicorn.run(collector.app)
        collector.close()

    On construction the windows are taken back as they were kept at the last clean stop, which
    costs the same however many spans are stored, or else rebuilt from the stored spans
    (``restored``: True when taken back; ``loaded`` spans in them, in ``rebuild_s``).
    The Prometheus counters go on from the totals kept in the database after every scrape and at
    close, so a restart never shows Prometheus a counter going back (which it would read as a
    reset, and count the whole total again); spans pruned for retention stay counted, and the
    spans stored after the last keep (before a crash) are counted from the store. Where each
    alert rule stood is kept whenever it changes: a rule firing before a restart goes on firing
    without notifying again, and resolves if its condition cleared meanwhile.

    Args:
        db: the SQLite file.
        rules: alert rules evaluated over everything ingested.
        token: bearer token the HTTP app requires.
        allowed_hosts: ``Host`` names the HTTP app answers to besides loopback ones (see
            :func:`~tokentrace.server.app.make_app`); None: any.
        retention_s: delete stored spans older than this (default: keep all).
        clock: seconds since the epoch.
    """

    def __init__(
        self,
        db: str | Path,
        *,
        rules: Sequence[Any] = (),
        token: str | None = None,
        allowed_hosts: Sequence[str] | None = None,
        retention_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = SQLiteStore(db, retention_s=retention_s, clock=clock)
        self.tracer = Tracer(alerts=rules, clock=clock, max_queue=_PIPELINE_QUEUE)
        self.counters = SpanCounters(self.tracer.stats, keep=functools.partial(self._keep, _COUNTERS))
        self._feed = tracer_feed(self.tracer)
        self._retention_s = retention_s
        self._clock = clock
        self._closed = False
        engine = self.tracer.alert_engine
        with engine.paused() if engine is not None else contextlib.nullcontext():  # until the windows are full
            if engine is not None:
                self._take_back(_ALERTS, engine.restore, "starts its alert rules afresh")
                engine.keep = functools.partial(self._keep, _ALERTS)
            started = time.monotonic()
            self.loaded = self._rebuild()
            self.rebuild_s = time.monotonic() - started
        self.app = make_app(
            self.tracer.aggregator,
            self.store,
            token=token,
            engine=self.tracer.alert_engine,
            stats=self.tracer.stats,
            ingest=self.ingest,
            counters=self.counters,
            allowed_hosts=allowed_hosts,
        )

    def _rebuild(self) -> int:
        """Refill the windows (taken back as they were kept at the last clean stop, else from
        the stored spans) and the Prometheus counters (from the totals kept, else from the
        stored spans); the spans in the windows."""
        horizon = min(MAX_WINDOW, self._retention_s or MAX_WINDOW)
        batches = self.store.iter_since(int((self._clock() - horizon) * 1000), metrics_only=True)
        last_row = self.store.last_rowid()
        counted = self._take_back(
            _COUNTERS, self.counters.restore, "counts its Prometheus counters again from the stored spans"
        )
        runs = self.counters.rows
        if counted and runs:  # count what was stored after they were kept (a crash came first)
            for missed in self.store.iter_rows_after(runs[0][1], [range(a, b + 1) for a, b in runs[1:]]):
                self.counters.observe(missed)
        self.counters.rows = [(0, last_row)]
        engine = self.tracer.alert_engine
        if engine is not None and last_row:
            engine.watched_since = 0.0  # the windows hold what was stored while this ran before
        # The windows are taken out of the database: should this process stop without keeping
        # them, the next one reads the stored spans rather than windows that miss what came since.
        self.restored = self._take_back(
            _WINDOWS, self.tracer.aggregator.restore, "rebuilds its windows from the stored spans", once=True
        )
        if self.restored:
            if not counted:
                for batch in batches:
                    self.counters.observe(batch)
            return int(self.tracer.aggregator.metric("span_count", MAX_WINDOW) or 0)
        if not counted:
            batches = _counted(batches, self.counters)
        return self.tracer.aggregator.load(batches)

    def _take_back(self, key: str, restore: Callable[[bytes], object], instead: str, *, once: bool = False) -> bool:
        """Whether what was kept under ``key`` (taken out of the database if ``once``) was put
        back by ``restore``; a warning says what is done ``instead`` when it cannot be."""
        saved = self.store.pop_meta(key) if once else self.store.get_meta(key)
        if saved is None:
            return False
        try:
            restore(saved)
        except ValueError as exc:
            _log.warning("tokentrace %s: %s", instead, exc)
            return False
        return True

    def _keep(self, key: str, state: bytes) -> None:
        try:
            self.store.set_meta(key, state)
        except StoreError as exc:  # a scrape still gets its answer, the rules go on
            _log.warning("tokentrace could not keep its %s: %s", key.replace("_", " "), exc)

    def ingest(self, spans: list[Span]) -> int:
        """Store ``spans`` durably, then aggregate the new ones; how many were new.

        Spans the sender could not price are priced here *before* they are stored, so the
        store and the windows agree on every cost.
        """
        _price_missing(spans)
        new, rows = self.store.add_numbered(spans)
        if new:
            self.counters.observe(new, rows)  # here, with their rows, for a restart after a crash
            self._feed(new)  # so a 202 means "visible in /metrics/*" too
        return len(new)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.tracer.close()  # its last spans are counted, and its rules evaluated, first
        self._keep(_WINDOWS, self.tracer.aggregator.state())
        self._keep(_COUNTERS, self.counters.state())
        if self.tracer.alert_engine is not None:
            self._keep(_ALERTS, self.tracer.alert_engine.state())
        self.store.close()


def _counted(batches: Iterator[list[Span]], counters: SpanCounters) -> Iterator[list[Span]]:
    for batch in batches:
        counters.observe(batch)
        yield batch


def _price_missing(spans: list[Span]) -> None:
    """Price the spans sent without a cost, as the checks of a sent cost would take it.

    Raises:
        IngestError: a span priced above :data:`MAX_COST` (tokens no call could use).
    """
    for i, span in enumerate(spans):
        if span.cost is None and span.model:
            pricing.price_span(span)
            if span.cost is not None and span.cost > MAX_COST:
                raise IngestError(
                    400,
                    f"spans[{i}]: its tokens cost {span.cost} USD, more than the {MAX_COST} a span may cost",
                    index=i,
                )


def check_bind(addr: str, token: str | None, insecure: bool) -> None:
    """Refuse a bind beyond this machine without a token unless ``insecure``.

    Raises:
        ConfigError: the address is not loopback and neither a token nor ``insecure`` is given.
    """
    host, _ = parse_addr(addr)
    if not is_loopback(host) and not token and not insecure:
        raise ConfigError(
            f"--addr {addr} listens beyond this machine without a token; "
            "pass --token (or TOKENTRACE_TOKEN), or --insecure to allow it anyway"
        )


class _Server(uvicorn.Server):
    """uvicorn that, on the first SIGINT/SIGTERM, lets ``before_exit`` wind work down while it
    still serves, then stops; a second signal forces the exit. The process then exits normally
    (uvicorn alone would re-raise the signal and skip the collector's clean close)."""

    def __init__(self, config: uvicorn.Config, before_exit: Callable[[], object] | None) -> None:
        super().__init__(config)
        self._before_exit = before_exit
        self._exiting = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._exiting:
            self.should_exit = self.force_exit = True
            return
        self._exiting = True
        threading.Thread(target=self._wind_down, name="tokentrace.shutdown", daemon=True).start()

    def _wind_down(self) -> None:
        try:
            if self._before_exit is not None:
                self._before_exit()
        finally:
            self.should_exit = True


def serve(
    addr: str,
    db: str | Path,
    *,
    rules: Sequence[Any] = (),
    token: str | None = None,
    retention_s: float | None = None,
    insecure: bool = False,
    allowed_hosts: Sequence[str] = (),
    on_ready: Callable[[str], None] | None = None,
    before_exit: Callable[[], object] | None = None,
) -> None:
    """Run the collector in this thread until SIGINT/SIGTERM.

    Args:
        allowed_hosts: ``Host`` names answered to besides loopback ones; on a loopback
            ``addr`` other names are refused, elsewhere only when some are given (see
            :func:`~tokentrace.server.config.hosts_to_check`).
        on_ready: called with the base URL once the windows are rebuilt, before serving.
        before_exit: called on the first SIGINT/SIGTERM while the server still answers.

    Raises:
        ConfigError: the bind is refused (see :func:`check_bind`) or the port is taken.
    """
    check_bind(addr, token, insecure)
    sock = bind_socket(addr)
    try:
        hosts = hosts_to_check(parse_addr(addr)[0], allowed_hosts)
        collector = Collector(db, rules=rules, token=token, allowed_hosts=hosts, retention_s=retention_s)
    except BaseException:
        sock.close()
        raise
    try:
        url = _announce(collector, sock, db, token, hosts)
        if on_ready is not None:
            on_ready(url)
        _Server(_uvicorn_config(collector.app), before_exit).run(sockets=[sock])
    finally:
        collector.close()
        sock.close()


def _announce(
    collector: Collector, sock: socket.socket, db: str | Path, token: str | None, hosts: Sequence[str] | None
) -> str:
    """Log what was loaded, where the collector listens and to which names (never the token); its URL."""
    url = socket_url(sock)
    how = "took back its windows as kept" if collector.restored else "loaded the stored spans into its windows"
    _log.info("tokentrace %s (%d span(s)) in %.1f s", how, collector.loaded, collector.rebuild_s)
    auth = "bearer token required" if token else "no auth"
    names = "any Host" if hosts is None else f"Host: loopback names{' and --allow-host' if hosts else ''}"
    _log.info("tokentrace collector listening on %s (db %s, %s, %s)", url, db, auth, names)
    return url


def _uvicorn_config(app: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app, loop="asyncio", http="h11", lifespan="off", log_config=None, log_level="warning", access_log=False,
        timeout_graceful_shutdown=5,
    )  # fmt: skip
