"""Send spans in background batches to a collector's ``POST /v1/spans``.

Delivery follows OTLP/HTTP's rules: retry only connection errors and 429/502/503/504, honour
``Retry-After``, back off exponentially with jitter inside a per-batch deadline, and treat any
other 4xx as permanent (the batch is dropped and counted with its status as the reason). Two
refusals say what to send instead, and it is sent within the same deadline: a batch too large
(413) goes again in halves, and a 400 naming a span (the collector's ``span_index``) loses only
that span, the others going again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from .. import _fork
from .._retry import post_retrying, refusal
from ..spans import encode_batch
from .base import PostingTransport, check_header_value, halves

if TYPE_CHECKING:
    from ..spans import Span

__all__ = ["HTTPTransport"]

_SPANS_PATH = "/v1/spans"


class HTTPTransport(PostingTransport):
    """Batches spans to ``{url}/v1/spans`` on the ``tokentrace.http`` worker thread.

    Example::

        tracer = tokentrace.Tracer(transport=tokentrace.HTTPTransport("http://127.0.0.1:9090", token="s3cret"))

    Args:
        url: the collector's base URL, or the full URL ending in ``/v1/spans``.
        token: sent as ``Authorization: Bearer <token>``.
        deadline: seconds one batch may take, retries included (default 10).
        timeout: seconds one request may take (capped by what is left of the deadline).
        backoff: the first retry's delay in seconds; it doubles per retry, with jitter.
        max_queue: spans held at most while the collector is slow or down.
        max_batch: spans per request.

    Raises:
        ValueError: ``url`` is not an http(s) URL, or ``token`` is not text a header carries
            (a token read from a file with its newline, say).
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        deadline: float = 10.0,
        timeout: float = 5.0,
        backoff: float = 0.5,
        max_queue: int = 10_000,
        max_batch: int = 500,
        interval: float = 1.0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"HTTPTransport url must start with http:// or https://, got {url!r}")
        super().__init__("tokentrace.http", max_queue=max_queue, max_batch=max_batch, interval=interval)
        base = url.rstrip("/")
        self.url = base if base.endswith(_SPANS_PATH) else base + _SPANS_PATH
        self._headers = {"Content-Type": "application/json", "User-Agent": "tokentrace"}
        if token:
            self._headers["Authorization"] = f"Bearer {check_header_value(token, 'HTTPTransport token')}"
        self._deadline = deadline
        self._timeout = timeout
        self._backoff = backoff
        self._client = _fork.PerProcess(httpx.Client)

    def export(self, batch: list[Span]) -> None:
        self._send_all(batch, self._deadline)

    def _send(self, spans: list[Span], until: float) -> list[list[Span]]:
        """POST ``spans``; what is left to send: the halves of a batch too large (413), the
        other spans of one with a span the collector refused (a 400 naming it)."""
        body = encode_batch(spans)
        reason, response = post_retrying(
            self._client, self.url, body, self._headers, until=until, timeout=self._timeout, backoff=self._backoff
        )
        if reason is None:
            self.counters.written += len(spans)
            return []
        if reason == "http_413" and len(spans) > 1:
            return halves(spans)
        refused = _refused_span(response, len(spans)) if reason == "http_400" else None
        if refused is None:
            self.counters.drop(reason, len(spans), refusal(self.url, response))
            return []
        self.counters.drop(reason, 1, refusal(self.url, response))
        rest = spans[:refused] + spans[refused + 1 :]
        return [rest] if rest else []


def _refused_span(response: httpx.Response | None, count: int) -> int | None:
    """The index of the span a 400 names (the collector checks every span before it stores any,
    so the others are not stored either), if it names one."""
    try:
        index = response.json().get("span_index") if response is not None else None
    except (ValueError, AttributeError):
        return None
    return index if type(index) is int and 0 <= index < count else None
