"""Export spans to an OpenTelemetry collector over OTLP/HTTP (protobuf), in background batches.

Needs the ``tokentrace[otel]`` extra; the OpenTelemetry packages are imported when an
:class:`OTLPTransport` is made, never by ``import tokentrace``. The OpenTelemetry SDK serves only
as encoder: each span is built directly as a ``ReadableSpan`` and encoded by the OTLP exporters'
own ``encode_spans``. No ``TracerProvider`` is made, and the application's global one is neither
read nor replaced.

Batches are sent as :class:`~tokentrace.HTTPTransport` sends them, by OTLP/HTTP's rules:
connection errors, timeouts and 429/502/503/504 are retried within ``timeout`` (each attempt
ends within it too, even when the answer trickles in), a batch too large (413) goes again in
halves, any other refusal is final (redirects are not followed: the headers would go along),
and a loss is counted by its reason (``otlp_http_401``, ``otlp_timeout``...; the spans a partial
success rejects as ``otlp_rejected``). The exporters' variables
``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``, ``..._HEADERS``, ``..._COMPRESSION`` (``gzip``,
``deflate`` or ``none``), ``..._TIMEOUT`` (in seconds, as OpenTelemetry's Python exporters read
it, where the specification says milliseconds), ``..._CERTIFICATE``, ``..._CLIENT_CERTIFICATE``
and ``..._CLIENT_KEY`` are read; what is given in code wins.

How a tokentrace span maps to an OpenTelemetry span (kind ``CLIENT``, scope ``tokentrace``):

=================================  =========================================================
tokentrace                         OpenTelemetry
=================================  =========================================================
``trace_id`` (a UUID)              trace id: the UUID's 128 bits
``span_id`` (a UUID)               span id: the UUID's low 64 bits
``parent_span_id``                 parent span id (mapped the same way), in the same trace
``started_at`` / ``ended_at``      start / end time (milliseconds as nanoseconds)
``status`` error + ``error``       ``StatusCode.ERROR`` described by ``error``; ``error.type``
                                   (unless recorded) is the exception type or error code
                                   before the first ``:``, else ``_OTHER``
``status`` ok                      ``UNSET``, as instrumentations leave successful spans
``provider``                       ``gen_ai.provider.name``, a genai-prices id named as the
                                   conventions name it (``google`` as ``gcp.gemini``,
                                   ``x-ai`` as ``x_ai``...); left out when empty, as models are
``gen_ai.operation.name`` attr.    ``gen_ai.operation.name`` (``"chat"`` when not recorded)
``gen_ai.request.model`` attr.     ``gen_ai.request.model`` (else ``model``)
``model``                          ``gen_ai.response.model``
``prompt_tokens``                  ``gen_ai.usage.input_tokens`` (cache reads and writes included)
``comp_tokens``                    ``gen_ai.usage.output_tokens`` (reasoning included)
``cached_tokens``                  ``gen_ai.usage.cache_read.input_tokens``
``cache_write_tokens``             ``gen_ai.usage.cache_creation.input_tokens``
``reasoning_tokens``               ``gen_ai.usage.reasoning.output_tokens``
``cost`` (USD)                     ``gen_ai.usage.cost`` (a float; the GenAI conventions have
                                   no cost attribute yet, this is the name OpenLIT emits)
``name`` / ``ttft_ms`` /           ``tokentrace.trace.name`` / ``tokentrace.ttft_ms`` /
``cost_source``                    ``tokentrace.cost_source``
``attributes``                     copied (the names above win); values OTLP cannot carry
                                   are sent as text (dicts and mixed lists as JSON, integers
                                   past 64 bits, bytes, other objects), ``None`` left out
=================================  =========================================================

The span is named ``"{operation} {request model}"`` (``"chat gpt-4o"``) when its operation was
recorded (every instrumented call records it), else after its trace (``"summarize-document"``).
An OpenTelemetry id written in hex (32 digits for a trace, 16 for a span) is that id, so a span
recorded with the ids of an application's OpenTelemetry span (as ``trace_id`` and
``parent_span_id``) lands under it. Other ids that are not UUIDs are hashed (BLAKE2b) to the
same widths, so they stay deterministic.

Text that protobuf cannot take (a lone surrogate, as a file name decoded with
``surrogateescape`` holds) is sent with the surrogate spelled out (``\\udcff``); should the
encoder refuse a batch all the same, only the spans it refuses alone are lost.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import math
import os
import re
import ssl
import urllib.parse
import zlib
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx

from .. import _fork
from .._retry import post_retrying, refusal
from .._version import __version__
from ..pricing import otel_provider_name
from ..spans import Span, Status, as_text
from .base import PostingTransport, check_headers, halves

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["OTLPTransport", "span_id_of", "to_otel", "trace_id_of"]

_TRACES_PATH = "/v1/traces"
_DEFAULT_ENDPOINT = "http://127.0.0.1:4318"
_DEFAULT_TIMEOUT_S = 10.0
_BACKOFF_S = 1.0  # the first retry's delay, as OpenTelemetry's exporters wait
_COMPRESSIONS = ("gzip", "deflate", "none")
_COMPRESS_LEVEL = 6  # zlib's default: level 9 costs about twice the time for a few percent
_LOW_64 = (1 << 64) - 1
_SPAN_ID_HEX = re.compile(r"[0-9a-fA-F]{16}")
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_ERROR_TYPE = re.compile(r"[\w.-]{1,128}")  # a type name, a dotted one, or an error code
_MS_NS = 1_000_000
_SIMPLE = (str, bool, int, float)


class OTLPTransport(PostingTransport):
    """Sends spans to ``{endpoint}/v1/traces`` on the ``tokentrace.otlp`` worker thread.

    Example::

        tracer = tokentrace.Tracer(transport=tokentrace.OTLPTransport("http://127.0.0.1:4318"))

    Args:
        endpoint: the collector's OTLP/HTTP base URL, or the full URL ending in ``/v1/traces``
            (default: ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` as it is, else
            ``OTEL_EXPORTER_OTLP_ENDPOINT``, else ``http://127.0.0.1:4318``).
        headers: sent with every request (e.g. an API key).
        timeout: seconds one batch may take, retries included (each attempt ends within it)
            (default: ``OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT``, else 10).
        compression: ``"gzip"``, ``"deflate"`` or ``"none"`` (default:
            ``OTEL_EXPORTER_OTLP_COMPRESSION``, else ``"none"``).
        service_name: the ``service.name`` resource attribute (default: ``OTEL_SERVICE_NAME``,
            else OpenTelemetry's ``unknown_service``).
        max_queue: spans held at most while the collector is slow or down.
        max_batch: spans per request.
        interval: seconds between exports when the queue is not full.

    Raises:
        ValueError: ``endpoint`` is not an http(s) URL, ``compression`` is not one of ``gzip``,
            ``deflate``, ``none``, ``timeout`` is not a positive number of seconds, or a header
            is not one HTTP carries (an API key read from a
            file with its newline, say); the message names the argument or variable at fault.
        ImportError: the OpenTelemetry packages are missing (``pip install 'tokentrace[otel]'``).
    """

    def __init__(
        self,
        endpoint: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        *,
        compression: str | None = None,
        service_name: str | None = None,
        max_queue: int = 10_000,
        max_batch: int = 512,
        interval: float = 1.0,
    ) -> None:
        self.endpoint = _endpoint(endpoint)
        self._compression = _compression(compression)
        otel = _import_otel()
        super().__init__("tokentrace.otlp", max_queue=max_queue, max_batch=max_batch, interval=interval)
        self._timeout = _timeout(timeout)
        self._headers = {
            "Content-Type": "application/x-protobuf",
            "User-Agent": f"tokentrace/{__version__}",
            **({} if self._compression == "none" else {"Content-Encoding": self._compression}),
            **check_headers(_env_headers(), "OTEL_EXPORTER_OTLP_[TRACES_]HEADERS"),
            **check_headers(headers or {}, "OTLPTransport headers"),
        }
        self._client = _fork.PerProcess(functools.partial(httpx.Client, verify=_tls(), follow_redirects=False))
        self._encode = otel.encode_spans
        self._response = otel.ExportTraceServiceResponse
        self._resource = otel.Resource.create({"service.name": service_name} if service_name else {})
        self._scope = otel.InstrumentationScope("tokentrace", __version__)

    def export(self, batch: list[Span]) -> None:
        converted = []
        for span in batch:
            try:
                converted.append(to_otel(span, self._resource, self._scope))
            except Exception as exc:  # one odd span must not cost the batch
                self.counters.drop("otlp_encode_error", 1, repr(exc))
        self._send_all(converted, self._timeout)

    def _send(self, spans: list[ReadableSpan], until: float) -> list[list[ReadableSpan]]:
        """POST ``spans``; what is left to send: the halves of a batch too large (413)."""
        data, spans = self._serialized(spans)
        if not spans:
            return []
        body = _compressed(data, self._compression)
        reason, response = post_retrying(
            self._client, self.endpoint, body, self._headers, until=until, timeout=self._timeout, backoff=_BACKOFF_S
        )
        if reason is None:
            self._count_accepted(len(spans), response)
        elif reason == "http_413" and len(spans) > 1:
            return halves(spans)
        else:
            self.counters.drop(f"otlp_{reason}", len(spans), refusal(self.endpoint, response))
        return []

    def _count_accepted(self, sent: int, response: httpx.Response | None) -> None:
        """Count what the receiver took: all it was sent, but for the spans its answer says it
        rejected (a partial success, which is not to be sent again)."""
        rejected, message = 0, ""
        if response is not None and response.content and "protobuf" in response.headers.get("Content-Type", ""):
            try:
                partial = self._response.FromString(response.content).partial_success
                rejected, message = min(max(partial.rejected_spans, 0), sent), partial.error_message
            except Exception:  # an answer it cannot read: the 2xx says the batch was taken
                pass
        self.counters.written += sent - rejected
        if rejected:
            self.counters.drop("otlp_rejected", rejected, f"{self.endpoint}: {message}" if message else self.endpoint)

    def _serialized(self, spans: list[ReadableSpan]) -> tuple[bytes, list[ReadableSpan]]:
        """The request for ``spans``, and the spans it holds: should the encoder refuse the batch,
        each span is tried alone, and only those it refuses are lost."""
        try:
            return self._encode(spans).SerializeToString(), spans
        except Exception:
            pass
        kept = []
        for span in spans:
            try:
                self._encode([span]).SerializeToString()
            except Exception as exc:
                self.counters.drop("otlp_encode_error", 1, repr(exc))
            else:
                kept.append(span)
        return self._encode(kept).SerializeToString(), kept


def _env(name: str) -> str:
    """An OTLP exporter variable: the traces one (``OTEL_EXPORTER_OTLP_TRACES_<name>``) first."""
    return os.environ.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}") or os.environ.get(f"OTEL_EXPORTER_OTLP_{name}") or ""


def _env_headers() -> dict[str, str]:
    """``OTEL_EXPORTER_OTLP_[TRACES_]HEADERS``: ``key=value`` pairs, comma-separated, URL-encoded."""
    headers = {}
    for item in _env("HEADERS").split(","):
        name, equals, value = item.partition("=")
        if equals and name.strip():
            headers[urllib.parse.unquote(name.strip())] = urllib.parse.unquote(value.strip())
    return headers


def _endpoint(given: str | None) -> str:
    """The URL to post to: ``given`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``, with ``/v1/traces`` added
    when it is not there, else ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` as it is."""
    traces = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if given is None and traces:
        return _http_url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces)
    if given is None:
        name, url = "OTEL_EXPORTER_OTLP_ENDPOINT", os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or _DEFAULT_ENDPOINT
    else:
        name, url = "OTLPTransport endpoint", given
    base = _http_url(name, url).rstrip("/")
    return base if base.endswith(_TRACES_PATH) else base + _TRACES_PATH


def _http_url(name: str, url: object) -> str:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"{name} must start with http:// or https://, got {url!r}")
    return url


def _compression(given: str | None) -> str:
    name, value = "OTLPTransport compression", given
    if value is None:
        name, value = "OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION", _env("COMPRESSION").strip().lower() or "none"
    if value not in _COMPRESSIONS:
        raise ValueError(f"{name} must be one of {', '.join(_COMPRESSIONS)}; got {value!r}")
    return value


def _timeout(given: float | None) -> float:
    """Seconds a batch may take: ``given``, else the variable's, else 10."""
    if given is not None:
        if not (isinstance(given, (int, float)) and not isinstance(given, bool) and 0 < given < math.inf):
            raise ValueError(f"OTLPTransport timeout must be a positive number of seconds, got {given!r}")
        return float(given)
    text = _env("TIMEOUT").strip()
    if not text:
        return _DEFAULT_TIMEOUT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise ValueError(f"OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT must be a positive number of seconds, got {text!r}")
    return seconds


def _compressed(body: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return gzip.compress(body, _COMPRESS_LEVEL)
    if compression == "deflate":
        return zlib.compress(body, _COMPRESS_LEVEL)
    return body


def _tls() -> ssl.SSLContext | bool:
    """The TLS settings the exporter variables ask for: a CA file, a client certificate and key."""
    ca, certificate = _env("CERTIFICATE"), _env("CLIENT_CERTIFICATE")
    if not (ca or certificate):
        return True
    context = ssl.create_default_context(cafile=ca or None)
    if certificate:
        context.load_cert_chain(certificate, _env("CLIENT_KEY") or None)
    return context


class _Otel:
    """The OpenTelemetry names this module uses, imported on first use."""

    def __init__(self) -> None:
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import SpanContext, SpanKind, StatusCode, TraceFlags
        from opentelemetry.trace import Status as OtelStatus

        self.encode_spans = encode_spans
        self.ExportTraceServiceResponse = ExportTraceServiceResponse
        self.Resource = Resource
        self.ReadableSpan = ReadableSpan
        self.InstrumentationScope = InstrumentationScope
        self.SpanContext = SpanContext
        self.SpanKind = SpanKind
        self.StatusCode = StatusCode
        self.Status = OtelStatus
        self.sampled = TraceFlags(TraceFlags.SAMPLED)


_otel: _Otel | None = None


def _import_otel() -> _Otel:
    global _otel
    if _otel is None:
        try:
            _otel = _Otel()
        except ImportError as exc:
            raise ImportError("OTLPTransport needs the OpenTelemetry packages: pip install 'tokentrace[otel]'") from exc
    return _otel


# --- ids ----------------------------------------------------------------------------------------


def _id128(text: str) -> int:
    digits = text.replace("-", "")
    if len(digits) == 32:
        try:
            value = int(digits, 16)
        except ValueError:
            value = 0
        if value:
            return value
    hashed = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    return int.from_bytes(hashed, "big") or 1


def trace_id_of(trace_id: str) -> int:
    """The OpenTelemetry trace id for a tokentrace trace id: the UUID's 128 bits (an
    OpenTelemetry trace id in hex, 32 digits, is the same number)."""
    return _id128(trace_id)


def span_id_of(span_id: str) -> int:
    """The OpenTelemetry span id for a tokentrace span id: the UUID's low 64 bits, or an
    OpenTelemetry span id given in hex (16 digits) as it is; never 0."""
    if _SPAN_ID_HEX.fullmatch(span_id) and (value := int(span_id, 16)):
        return value
    value = _id128(span_id)
    return (value & _LOW_64) or (value >> 64)


# --- spans --------------------------------------------------------------------------------------


def to_otel(span: Span, resource: Any = None, scope: Any = None) -> ReadableSpan:
    """The OpenTelemetry ``ReadableSpan`` for a recorded span (see the module docstring)."""
    otel = _import_otel()
    trace_id = trace_id_of(span.trace_id or "")
    context = otel.SpanContext(trace_id, span_id_of(span.span_id or ""), False, otel.sampled)
    parent = None
    if span.parent_span_id:
        parent = otel.SpanContext(trace_id, span_id_of(span.parent_span_id), False, otel.sampled)
    attributes = _attributes(span)
    ended = span.ended_at or 0
    return otel.ReadableSpan(
        name=_span_name(span, attributes),
        context=context,
        parent=parent,
        resource=resource,
        attributes=attributes,
        kind=otel.SpanKind.CLIENT,
        status=_status(otel, span, attributes),
        start_time=(ended if span.started_at is None else span.started_at) * _MS_NS,
        end_time=ended * _MS_NS,
        instrumentation_scope=scope,
    )


def _status(otel: _Otel, span: Span, attributes: dict[str, Any]) -> Any:
    if span.status is not Status.ERROR:
        return otel.Status(otel.StatusCode.UNSET)
    error = None if span.error is None else _text(span.error)
    attributes.setdefault("error.type", _error_type(error))
    return otel.Status(otel.StatusCode.ERROR, error)


def _error_type(error: str | None) -> str:
    """What failed, in few values as ``error.type`` asks: the exception type (or error code)
    before the first ``:``, else ``_OTHER``, not a message that differs with each error."""
    kind = (error or "").partition(":")[0].strip()
    return kind if _ERROR_TYPE.fullmatch(kind) else "_OTHER"


def _span_name(span: Span, attributes: Mapping[str, Any]) -> str:
    recorded = span.attributes or {}
    if "gen_ai.operation.name" in recorded:
        return f"{attributes['gen_ai.operation.name']} {attributes.get('gen_ai.request.model', '')}".strip()
    return _text(span.name or f"chat {span.model}".strip())


def _attributes(span: Span) -> dict[str, Any]:
    attributes = {}
    for key, recorded in (span.attributes or {}).items():
        value = _value(recorded)
        if value is not None:
            attributes[_text(str(key))] = value
    model = _text(span.model)
    attributes.update(
        {
            "gen_ai.provider.name": _text(otel_provider_name(span.provider)),
            "gen_ai.operation.name": str(attributes.get("gen_ai.operation.name") or "chat"),
            "gen_ai.request.model": str(attributes.get("gen_ai.request.model") or model),
            "gen_ai.response.model": model,
            "gen_ai.usage.input_tokens": span.prompt_tokens,
            "gen_ai.usage.output_tokens": span.comp_tokens,
        }
    )
    for key in ("gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model"):
        if not attributes[key]:  # not known (an error recorded without a call): left out, not ""
            del attributes[key]
    optional = {
        "gen_ai.usage.cache_read.input_tokens": span.cached_tokens,
        "gen_ai.usage.cache_creation.input_tokens": span.cache_write_tokens,
        "gen_ai.usage.reasoning.output_tokens": span.reasoning_tokens,
        "gen_ai.usage.cost": None if span.cost is None else float(span.cost),
        "tokentrace.trace.name": None if span.name is None else _text(span.name),
        "tokentrace.ttft_ms": span.ttft_ms,
        "tokentrace.cost_source": None if span.cost_source is None else _text(span.cost_source),
    }
    attributes.update({key: value for key, value in optional.items() if value is not None})
    return attributes


def _value(value: Any) -> Any:
    """An attribute value OTLP can carry: text, booleans, floats, 64-bit integers and lists of
    one of them as they are; a larger integer, bytes, and any other value as text (a dict or a
    mixed list as JSON); ``None`` as nothing."""
    if isinstance(value, str):
        return _text(value)
    if value is None or isinstance(value, (bool, float)):
        return value
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _INT64_MAX else str(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return _text(value.decode("utf-8", "backslashreplace"))
    if isinstance(value, (list, tuple)) and _uniform(value):
        items = [_value(item) for item in value]
        if _uniform(items):  # still one type: no integer became text
            return items
    if isinstance(value, (list, tuple, dict)):
        return _json(value)
    return _json_text(value)


def _uniform(values: list[Any] | tuple[Any, ...]) -> bool:
    """A non-empty list of one scalar type, which OTLP carries as an array."""
    return bool(values) and isinstance(values[0], _SIMPLE) and all(type(v) is type(values[0]) for v in values)


def _json(value: Any) -> str:
    try:
        return _text(json.dumps(value, default=_json_text, ensure_ascii=False))
    except (ValueError, RecursionError):  # a value that contains itself, or is nested too deep
        return f"<{type(value).__name__}>"


def _json_text(value: Any) -> str:
    """A value JSON has no form for, as text protobuf takes (see :func:`~tokentrace.spans.as_text`)."""
    return _text(as_text(value))


def _text(text: str) -> str:
    """``text`` as protobuf takes it: a lone surrogate (a file name decoded with
    ``surrogateescape``, say) makes the encoder refuse the whole batch, so it is spelled out."""
    if text.isascii():
        return text
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode()
    return text
