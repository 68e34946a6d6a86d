"""A local OTLP/HTTP receiver: decodes each ``ExportTraceServiceRequest`` with opentelemetry-proto.

Example::

    with OTLPReceiver() as receiver:
        ...export to receiver.url...
        [span] = receiver.spans()
        assert attribute_values(span.attributes)["gen_ai.provider.name"] == "openai"
"""

from __future__ import annotations

import gzip
import threading
import zlib
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from . import Handler, LocalServer

__all__ = ["OTLPReceiver", "attribute_values"]


class _OTLPHandler(Handler):
    owner: OTLPReceiver

    def do_POST(self) -> None:
        body = self.read_body()
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        elif self.headers.get("Content-Encoding") == "deflate":
            body = zlib.decompress(body)
        headers = {key.lower(): value for key, value in self.headers.items()}
        status = self.owner.received(self.path, headers, body, self.client_address[1])
        if status != 200:
            self.send_bytes(status, b"", "application/x-protobuf")
            return
        self.send_bytes(200, self.owner.reply.SerializeToString(), "application/x-protobuf")


class OTLPReceiver(LocalServer):
    """Records every export request (header names lower-cased); answers ``statuses`` in order, the
    last one repeating, a 200 with ``reply`` (default: an empty answer). A body past ``max_body``
    bytes is answered 413 and not recorded, only counted in ``too_large``."""

    handler = _OTLPHandler

    def __init__(
        self,
        statuses: tuple[int, ...] = (200,),
        max_body: int | None = None,
        reply: ExportTraceServiceResponse | None = None,
    ) -> None:
        super().__init__()
        self.statuses = statuses
        self.reply = reply or ExportTraceServiceResponse()
        self.max_body = max_body
        self.too_large = 0
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.requests: list[ExportTraceServiceRequest] = []
        self.ports: list[int] = []  # the client's port of each request: its connection
        self._lock = threading.Lock()

    def received(self, path: str, headers: dict[str, str], body: bytes, port: int) -> int:
        if self.max_body is not None and len(body) > self.max_body:
            with self._lock:
                self.too_large += 1
            return 413
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with self._lock:
            self.paths.append(path)
            self.headers.append(headers)
            self.requests.append(request)
            self.ports.append(port)
            return self.statuses[min(len(self.requests), len(self.statuses)) - 1]

    def spans(self) -> list[ProtoSpan]:
        return [
            span
            for request in self.requests
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]


def attribute_values(attributes: Any) -> dict[str, Any]:
    """OTLP ``KeyValue`` attributes as a plain dict of Python values."""
    return {item.key: _any_value(item.value) for item in attributes}


def _any_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None
