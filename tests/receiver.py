"""A real HTTP receiver on 127.0.0.1 for delivery tests: scripted answers, recorded requests."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.fakes import Server


@dataclass
class Answer:
    status: int = 200
    body: bytes = b'{"accepted": 0}'
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to stall before answering
    trickle: bool = False  # send the status line a byte every 0.2 s (for about 6 s)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    """Answers each POST with the next scripted :class:`Answer` (the last one repeats)."""

    def __init__(self, answers: list[Answer] | None = None, on_request: Callable[[Received], None] | None = None):
        self.answers = list(answers or [Answer(202)])
        self.requests: list[Received] = []
        self._on_request = on_request
        self._lock = threading.Lock()
        self._server = Server(("127.0.0.1", 0), self._handler_class())
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self, received: Received) -> Answer:
        with self._lock:
            self.requests.append(received)
            index = len(self.requests) - 1
        if self._on_request:
            self._on_request(received)
        return self.answers[min(index, len(self.answers) - 1)]

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                answer = receiver._next(Received(self.path, dict(self.headers), body, time.monotonic()))
                if answer.delay:
                    time.sleep(answer.delay)
                if answer.trickle:
                    for char in f"HTTP/1.1 {answer.status} OK\r\n":
                        time.sleep(0.2)
                        try:
                            self.wfile.write(char.encode())
                            self.wfile.flush()
                        except OSError:
                            return  # the client gave up
                    self.close_connection = True
                    return
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                if "Content-Type" not in answer.headers:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
