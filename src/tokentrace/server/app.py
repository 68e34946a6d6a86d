"""The HTTP app: seed metrics, traces, alerts, Prometheus, ingest, the dashboard.

:func:`make_app` builds one Starlette app from a window aggregator and a span store; the
embedded server (``HTTPServerConfig``) and the standalone collector (``tokentrace serve``) both
run it. Every answer is JSON (money without float noise) except ``/metrics`` (Prometheus text)
and the dashboard page. With a token, every path but ``/health`` and the dashboard page (which
holds no data and asks for the token itself) needs ``Authorization: Bearer <token>``. With
``allowed_hosts``, every path but ``/health`` needs a ``Host`` header naming a loopback or an
allowed host (see :mod:`tokentrace.server.hosts`).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Sequence
from functools import cache
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..spans import Span
from ..store.base import SpanStore, StoreBusyError, StoreError
from . import views
from .hosts import LOOPBACK_NAMES, HostNames
from .ingest import IngestError, check_content_type, parse_spans, read_body
from .openapi import openapi_document
from .prom import SpanCounters, render
from .query import QueryError, filters, limit_param, window_param

__all__ = ["JSONResponse", "make_app"]

_log = logging.getLogger(__name__)
_PUBLIC = frozenset({"/health", "/", "/dashboard"})
_MAX_POINTS = 1000  # the aggregator's own limit per series
_TIMESERIES_MODELS = 20  # /metrics/timeseries: columns for the costliest models only
_HOST_SHOWN = 300  # characters of a refused Host header repeated in the answer and the log
_HOSTS_LOGGED = 100  # distinct refused Host headers logged; more are refused silently


class JSONResponse(Response):
    """JSON encoded by msgspec: Decimals as exact numbers, keys in insertion order."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return views.encode(content)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class _BearerAuth:
    """Refuses requests without the bearer token (constant-time compare), except public paths."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _PUBLIC or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        response = _error(401, "missing or wrong bearer token", {"WWW-Authenticate": 'Bearer realm="tokentrace"'})
        await response(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        for key, value in scope["headers"]:
            if key == b"authorization":
                scheme, _, credentials = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(credentials, self._token)
        return False


class _HostCheck:
    """Refuses a request whose ``Host`` header names a host the server does not answer for.

    The answer is 421 Misdirected Request, which RFC 9110 gives a request sent to a server that
    does not serve the name it asks for: the request is well formed (so not 400) and is not
    refused for who sent it (so not 403). Starlette's ``TrustedHostMiddleware`` answers in plain
    text, refuses a request without ``Host``, and has no pattern for 127.0.0.0/8.

    A request without ``Host`` (HTTP/1.0) is answered: browsers always send one, so no web
    page can send such a request. ``/health`` is answered whatever the name, like without a
    token: it says nothing, and load balancers and orchestrators probe it by IP address.
    """

    def __init__(self, app: ASGIApp, names: HostNames) -> None:
        self.app = app
        self._names = names
        # Not the allowed names themselves: the answer may go to the very page that was refused.
        accepted = [*LOOPBACK_NAMES, "the names in allowed_hosts"] if names.extra else list(LOOPBACK_NAMES)
        self._accepted = f"{', '.join(accepted[:-1])} and {accepted[-1]}"
        self._logged: set[bytes] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != "/health":
            for key, value in scope["headers"]:
                if key == b"host":
                    if not self._names.accepts(value):
                        await self._refusal(value)(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)

    def _refusal(self, value: bytes) -> Response:
        host = value[:_HOST_SHOWN].decode("latin-1")
        if len(self._logged) < _HOSTS_LOGGED and value not in self._logged:  # once per name, not per request
            self._logged.add(value)
            _log.warning("tokentrace refused a request for Host %r: not a name it answers to", host)
        return _error(
            421,
            f"the Host header {host!r} is not a name this server answers to: it answers to {self._accepted} "
            "only (a guard against DNS rebinding); add the name to allowed_hosts "
            "(tokentrace serve --allow-host NAME) to allow it, or '*' to allow any",
        )


class _Api:
    """The route handlers, closed over the app's collaborators."""

    def __init__(
        self,
        aggregator: Any,
        store: SpanStore,
        engine: Any,
        ingest: Callable[[list[Span]], int],
        refresh: Callable[[], object] | None,
        counters: SpanCounters,
    ) -> None:
        self.aggregator = aggregator
        self.store = store
        self.engine = engine
        self.ingest_spans = ingest
        self.refresh = refresh
        self.counters = counters
        self.secured = False
        self.hosts_checked = False

    async def _snapshot(self, request: Request) -> tuple[Any, str]:
        seconds, text = window_param(request.query_params)
        chosen = filters(request.query_params)
        if self.refresh is not None:
            await run_in_threadpool(self.refresh)
        try:
            return self.aggregator.snapshot(seconds, **chosen), text
        except ValueError as exc:  # the aggregator's own bounds, should they ever differ from ours
            raise QueryError(str(exc)) from None

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def cost(self, request: Request) -> Response:
        return JSONResponse(views.cost_view(*await self._snapshot(request)))

    async def latency(self, request: Request) -> Response:
        return JSONResponse(views.latency_view(*await self._snapshot(request)))

    async def tokens(self, request: Request) -> Response:
        return JSONResponse(views.tokens_view(*await self._snapshot(request)))

    async def errors(self, request: Request) -> Response:
        return JSONResponse(views.errors_view(*await self._snapshot(request)))

    async def timeseries(self, request: Request) -> Response:
        params = request.query_params
        window, window_text = window_param(params, default="24h")
        step, step_text = window_param(params, "step", default="5m", most_s=window)
        if window / step > _MAX_POINTS:
            raise QueryError(f"step must leave at most {_MAX_POINTS} points in the window, got {step_text!r}")
        chosen = filters(params)
        if self.refresh is not None:
            await run_in_threadpool(self.refresh)
        try:
            overall, per_model = await run_in_threadpool(self._series, window, step, chosen)
        except ValueError as exc:
            raise QueryError(str(exc)) from None
        return JSONResponse(views.timeseries_view(overall, per_model, window_text, step_text))

    def _series(self, window: float, step: float, chosen: dict[str, str | None]) -> tuple[Any, Any]:
        overall = self.aggregator.timeseries(window, step, **chosen)
        spent: dict[str, tuple[float, int]] = {}  # per model: cost and calls over the window
        for point in overall:
            for model, part in point["by_model"].items():
                cost, count = spent.get(model, (0.0, 0))
                spent[model] = (cost + (part["cost"] or 0.0), count + part["span_count"])
        models = sorted(sorted(spent, key=lambda m: (-spent[m][0], -spent[m][1], m))[:_TIMESERIES_MODELS])
        per_model = {m: self.aggregator.timeseries(window, step, **{**chosen, "model": m}) for m in models}
        return overall, per_model

    async def prometheus(self, request: Request) -> Response:
        if self.refresh is not None:
            await run_in_threadpool(self.refresh)
        body = await run_in_threadpool(render, self.counters)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    async def traces(self, request: Request) -> Response:
        limit, model = limit_param(request.query_params), filters(request.query_params)["model"]
        found = await run_in_threadpool(lambda: self.store.traces(limit, model=model))
        return JSONResponse({"traces": [views.trace_summary(t) for t in found]})

    async def recent(self, request: Request) -> Response:
        limit, model = limit_param(request.query_params), filters(request.query_params)["model"]
        spans = await run_in_threadpool(lambda: self.store.recent(limit, model=model))
        return JSONResponse({"spans": views.wire_spans(spans)})

    async def trace(self, request: Request) -> Response:
        trace_id = request.path_params["trace_id"]
        spans = await run_in_threadpool(self.store.trace, trace_id)
        if not spans:
            return _error(404, f"no trace with trace_id {trace_id!r} is stored")
        return JSONResponse(views.trace_detail(trace_id, spans))

    async def alerts(self, request: Request) -> Response:
        states = [] if self.engine is None else self.engine.states()
        return JSONResponse({"alerts": states})

    async def ingest(self, request: Request) -> Response:
        headers = request.headers
        try:
            check_content_type(headers.get("content-type"))
            body = await read_body(request.stream(), headers.get("content-encoding"), headers.get("content-length"))
            total, new = await run_in_threadpool(self._store, body)  # off the event loop: CPU and disk
        except IngestError as exc:
            self.counters.count_rejected(exc.status)
            return JSONResponse(exc.body(), status_code=exc.status)
        except StoreBusyError as exc:
            self.counters.count_rejected(503)
            return _error(503, f"the collector is busy: {exc}", {"Retry-After": "1"})
        self.counters.count_ingest(new, total - new)
        return JSONResponse({"accepted": total, "duplicates": total - new}, status_code=202)

    def _store(self, body: bytes) -> tuple[int, int]:
        """Validate a body and store its spans; (spans in the body, spans that were new)."""
        spans = parse_spans(body)
        return len(spans), self.ingest_spans(spans)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document(self.secured, self.hosts_checked))

    async def dashboard(self, request: Request) -> Response:
        return HTMLResponse(_dashboard_html(), headers={"Cache-Control": "no-store"})


@cache
def _dashboard_html() -> str:
    return resources.files("tokentrace.server").joinpath("dashboard.html").read_text(encoding="utf-8")


def _default_ingest(aggregator: Any, store: SpanStore, counters: SpanCounters) -> Callable[[list[Span]], int]:
    def ingest(spans: list[Span]) -> int:
        new = store.add(spans)
        aggregator.add_many(new)
        counters.observe(new)
        return len(new)

    return ingest


def make_app(
    aggregator: Any,
    store: SpanStore,
    *,
    token: str | None = None,
    engine: Any = None,
    stats: Callable[[], dict[str, Any]] | None = None,
    ingest: Callable[[list[Span]], int] | None = None,
    refresh: Callable[[], object] | None = None,
    counters: SpanCounters | None = None,
    allowed_hosts: Sequence[str] | None = None,
) -> Starlette:
    """Build the tokentrace HTTP app.

    Example::

        app = make_app(tracer.aggregator, MemoryStore(), token="s3cret", engine=tracer.alert_engine)

    Args:
        aggregator: the ``WindowAggregator`` the ``/metrics/*`` endpoints read.
        store: where ``/traces*`` read spans from (and, by default, where ingest writes).
        token: bearer token required on every path but ``/health`` and the dashboard page.
        engine: the ``AlertEngine`` behind ``/alerts`` (none: an empty list).
        stats: ``Tracer.stats``-shaped counts exposed on ``/metrics``.
        ingest: stores validated spans durably and feeds the windows; returns how many were
            new. Default: ``store.add`` then ``aggregator.add_many`` of the new spans.
        refresh: called (on a worker thread) before metrics are read, e.g. to let the
            aggregation worker catch up with spans recorded just before.
        counters: the Prometheus counters; default a new :class:`SpanCounters` (kept as
            ``app.state.counters`` so the caller can feed it).
        allowed_hosts: when given, every path but ``/health`` answers only requests whose
            ``Host`` header names a loopback host or one of these (``"*"``: any), with 421
            otherwise; :func:`~tokentrace.server.config.hosts_to_check` gives what a bind
            address calls for. None: any ``Host``.

    Raises:
        ValueError: an ``allowed_hosts`` entry is not a host name.
    """
    counters = counters or SpanCounters(stats)
    api = _Api(aggregator, store, engine, ingest or _default_ingest(aggregator, store, counters), refresh, counters)
    app = Starlette(routes=_routes(api), exception_handlers=_handlers())
    if token:
        app.add_middleware(_BearerAuth, token=token)
        api.secured = True
    names = None if allowed_hosts is None else HostNames(allowed_hosts)
    if names is not None and not names.any:  # added last, so it runs first: a misdirected request gets no 401
        app.add_middleware(_HostCheck, names=names)
        api.hosts_checked = True
    app.state.counters = counters
    app.state.store = store
    return app


def _routes(api: _Api) -> Sequence[Route]:
    return [
        Route("/health", api.health),
        Route("/", api.dashboard),
        Route("/dashboard", api.dashboard),
        Route("/openapi.json", api.openapi),
        Route("/metrics", api.prometheus),
        Route("/metrics/cost", api.cost),
        Route("/metrics/latency", api.latency),
        Route("/metrics/tokens", api.tokens),
        Route("/metrics/errors", api.errors),
        Route("/metrics/timeseries", api.timeseries),
        Route("/traces", api.traces),
        Route("/traces/recent", api.recent),
        Route("/traces/{trace_id}", api.trace),
        Route("/alerts", api.alerts),
        Route("/v1/spans", api.ingest, methods=["POST"]),
    ]


def _handlers() -> dict[Any, Callable[[Request, Any], Any]]:
    async def bad_query(request: Request, exc: QueryError) -> Response:
        return _error(400, str(exc))

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return _error(exc.status_code, exc.detail, dict(exc.headers or {}))

    async def store_error(request: Request, exc: StoreError) -> Response:
        _log.error("tokentrace store error on %s: %s", request.url.path, exc)
        return _error(503, f"the span store is unavailable: {exc}", {"Retry-After": "1"})

    async def crash(request: Request, exc: Exception) -> Response:
        _log.exception("tokentrace HTTP handler failed on %s", request.url.path)
        return _error(500, f"internal error: {type(exc).__name__}")

    return {QueryError: bad_query, HTTPException: http_error, StoreError: store_error, Exception: crash}
