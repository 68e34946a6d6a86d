"""Helpers for the server, store and end-to-end tests: spans, running apps, collector processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tokentrace.server.embedded import EmbeddedServer, bind_socket
from tokentrace.spans import Span, Status, new_id, now_ms

_URL_LINE = re.compile(r"listening on (http://\S+)")


def make_span(
    *,
    model: str = "gpt-4o",
    provider: str = "openai",
    prompt: int = 100,
    comp: int = 20,
    cost: str | None = "0.0015",
    latency: int = 250,
    status: Status = Status.OK,
    name: str = "job",
    trace_id: str | None = None,
    ended_ms: int | None = None,
    **extra: Any,
) -> Span:
    """A fully filled span, as a tracer would send it, ending ``ended_ms`` (default: 2 s ago)."""
    ended = now_ms() - 2000 if ended_ms is None else ended_ms
    return Span(
        model=model,
        provider=provider,
        prompt_tokens=prompt,
        comp_tokens=comp,
        latency_ms=latency,
        cost=None if cost is None else Decimal(cost),
        status=status,
        error="RateLimitError: 429" if status is Status.ERROR else None,
        name=name,
        trace_id=trace_id or new_id(),
        span_id=new_id(),
        started_at=ended - latency,
        ended_at=ended,
        **extra,
    )


def mixed_spans(count: int, *, seed: int = 7, ended_ms: int | None = None) -> list[Span]:
    """``count`` spans over three models, a few traces, some errors; deterministic for a seed."""
    import random

    rng = random.Random(seed)
    models = (
        ("gpt-4o", "openai", "0.00448"),
        ("gpt-4o-mini", "openai", "0.000153"),
        ("claude-sonnet-4-5", "anthropic", "0.0123"),
    )
    traces = [new_id() for _ in range(max(1, count // 4))]
    out = []
    for i in range(count):
        model, provider, cost = models[i % 3]
        out.append(
            make_span(
                model=model, provider=provider, cost=cost, prompt=rng.randint(1, 5000), comp=rng.randint(0, 900),
                latency=rng.randint(20, 8000), status=Status.ERROR if i % 10 == 3 else Status.OK,
                name=("summarize", "classify")[i % 2], trace_id=traces[i % len(traces)],
                ended_ms=(now_ms() - 2000 - rng.randint(0, 60_000)) if ended_ms is None else ended_ms,
            )
        )  # fmt: skip
    return out


@contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port; yields its base URL."""
    server = EmbeddedServer(app, bind_socket("127.0.0.1:0"), name="tokentrace.test-http")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


class CollectorProcess:
    """``python -m tokentrace serve`` in a subprocess, on a free port, with its log captured."""

    def __init__(self, db: Path, *args: str, env: dict[str, str] | None = None) -> None:
        command = [sys.executable, "-m", "tokentrace", "serve", "--addr", "127.0.0.1:0", "--db", str(db), *args]
        self.proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})}
        )
        self.log: list[str] = []
        self.url = self._wait_for_url(30.0)
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    def _wait_for_url(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.log.append(line)
            match = _URL_LINE.search(line)
            if match:
                return match.group(1)
        self.proc.kill()
        self.proc.wait(10)
        self.proc.stdout.close()
        raise RuntimeError("the collector did not start:\n" + "".join(self.log))

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._close()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._close()
        return self.proc.returncode

    def _close(self) -> None:
        self._drainer.join(5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


JSON_BODY = {"Content-Type": "application/json"}  # what POST /v1/spans takes, and HTTPTransport sends


def post_spans(client: httpx.Client, spans: Sequence[Span], **headers: str) -> httpx.Response:
    from tokentrace.spans import encode_batch

    return client.post("/v1/spans", content=encode_batch(list(spans)), headers={**JSON_BODY, **headers})
