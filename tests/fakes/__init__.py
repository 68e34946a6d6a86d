"""Local HTTP servers that speak real wire formats, for driving real client libraries in tests.

:class:`LocalServer` runs a stdlib ``ThreadingHTTPServer`` on ``127.0.0.1`` and a free port, in a
daemon thread, with HTTP/1.1 keep-alive and ``TCP_NODELAY`` (without it, Nagle's algorithm and
delayed ACKs cap a keep-alive client at a few dozen requests a second). :class:`Handler` adds
JSON, chunked (server-sent events) and protobuf replies.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import sys
import threading
from typing import Any, TypeVar

__all__ = ["Handler", "LocalServer", "Server"]

S = TypeVar("S", bound="LocalServer")


class Handler(http.server.BaseHTTPRequestHandler):
    """Request handler base: keep-alive, no Nagle delay, quiet, bounded idle connections."""

    protocol_version = "HTTP/1.1"
    timeout = 10  # an idle keep-alive connection's thread ends after this many seconds
    owner: Any = None  # the LocalServer subclass answering; set per server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError):  # the client went away (a timeout, a dropped stream)
            super().handle()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send_bytes(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(status, json.dumps(payload).encode(), "application/json", headers)

    def start_chunked(self, content_type: str = "text/event-stream") -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class Server(http.server.ThreadingHTTPServer):
    """``ThreadingHTTPServer`` with daemon handler threads, silent about clients that hang up
    (other errors in a handler are still printed)."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LocalServer:
    """Serves ``handler`` on ``127.0.0.1`` while used as a context manager.

    Example::

        with MyServer() as server:
            httpx.get(server.url + "/health")
    """

    handler: type[Handler] = Handler

    def __init__(self) -> None:
        handler = type(f"{type(self).__name__}Handler", (self.handler,), {"owner": self})
        self._httpd = Server(("127.0.0.1", 0), handler)
        self.port = int(self._httpd.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.release = threading.Event()  # set on exit: wakes handlers stalled on purpose
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-server", daemon=True
        )

    def __enter__(self: S) -> S:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
