"""Serve the HTTP app from inside an application: uvicorn on the ``tokentrace.http`` thread.

:func:`start_embedded` binds the socket itself (so a taken port is a clear error at once, in
the caller's thread), starts uvicorn on a named daemon thread and returns only once the
server answers. The tracer's aggregation worker feeds an in-memory ring of recent spans
(``max_spans``) for the trace endpoints, and the Prometheus counters.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn

from ..exceptions import ConfigError
from ..spans import Span
from ..store.memory import MemoryStore
from .app import make_app
from .config import HTTPServerConfig, hosts_to_check, parse_addr

__all__ = ["EmbeddedServer", "bind_socket", "socket_url", "start_embedded", "tracer_feed"]

_log = logging.getLogger(__name__)
_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0
_FEED_TIMEOUT_S = 10.0


class EmbeddedServer:
    """A running uvicorn server on its own thread; :meth:`stop` shuts it down.

    Example::

        server = EmbeddedServer(app, bind_socket("127.0.0.1:0"))
        server.start()
        print(server.url)
        server.stop()
    """

    def __init__(self, app: Any, sock: socket.socket, *, name: str = "tokentrace.http") -> None:
        self._sock = sock
        config = uvicorn.Config(
            app,
            loop="asyncio",
            http="h11",
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.url = socket_url(sock)
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._sock]))
        except BaseException as exc:
            self._error = exc
            _log.error("tokentrace HTTP server stopped: %r", exc)

    def start(self, timeout: float = _START_TIMEOUT_S) -> None:
        """Start serving; return once the server accepts requests.

        Raises:
            RuntimeError: the server did not start within ``timeout`` seconds.
        """
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the tokentrace HTTP server did not start on {self.url}: {self._error!r}")
            time.sleep(0.002)

    def stop(self, timeout: float = _STOP_TIMEOUT_S) -> None:
        """Stop accepting, finish open requests (up to ``timeout``), close the socket."""
        self._server.should_exit = True
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._sock.close()


def socket_url(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def bind_socket(addr: str) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port).

    Raises:
        ConfigError: the address cannot be bound (in use, not local, not permitted).
    """
    host, port = parse_addr(addr)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # asyncio sets TCP_NODELAY only then
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"tokentrace cannot listen on {addr!r}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def start_embedded(tracer: Any, config: HTTPServerConfig) -> EmbeddedServer:
    """Serve ``tracer``'s metrics, recent spans and alerts; answering before it returns.

    Raises:
        ConfigError: the address cannot be bound.
        TypeError: ``config`` is not an :class:`HTTPServerConfig`.
    """
    if not isinstance(config, HTTPServerConfig):
        raise TypeError(f"http_server must be a tokentrace.HTTPServerConfig, got {type(config).__name__}")
    store = MemoryStore(config.max_spans)
    app = make_app(
        tracer.aggregator,
        store,
        token=config.token,
        engine=tracer.alert_engine,
        stats=tracer.stats,
        ingest=_ingest_into(tracer, store),
        refresh=lambda: tracer.settle(1.0),
        allowed_hosts=hosts_to_check(config.host, config.allowed_hosts),
    )
    tracer.add_sink(store.add)
    tracer.add_sink(app.state.counters.observe)
    server = EmbeddedServer(app, bind_socket(config.addr))
    server.start()
    _log.info("tokentrace HTTP server listening on %s", server.url)
    return server


def tracer_feed(tracer: Any, timeout: float = _FEED_TIMEOUT_S) -> Callable[[list[Span]], None]:
    """A function handing spans that arrived over HTTP to ``tracer``'s pipeline (transports,
    windows, alerts, sinks) and waiting until they are handled, so that an answer to the
    sender means "visible in the metrics"."""

    def feed(spans: list[Span]) -> None:
        tracer.ingest(spans, wait=timeout)

    return feed


def _ingest_into(tracer: Any, store: MemoryStore) -> Callable[[list[Span]], int]:
    """Spans posted to an embedded server join the tracer's own flow (windows, alerts, ring)."""
    feed = tracer_feed(tracer)

    def ingest(spans: list[Span]) -> int:
        new = store.add(spans)
        if new:
            feed(new)
        return len(new)

    return ingest
