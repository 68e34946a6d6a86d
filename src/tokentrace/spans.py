"""Spans: one model call each, validated on construction and encoded in the wire format.

A :class:`Span` is what user code builds and hands to ``trace.record()``, which records a copy
and fills the copy's ids, name and timestamps; :func:`encode_lines` and :func:`encode_batch` turn
spans into the JSON wire format of DESIGN §2 (fixed key order, optional keys only when set,
exact costs).
"""

from __future__ import annotations

import decimal
import enum
import functools
import os
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from random import getrandbits
from typing import Annotated, Any

import msgspec

__all__ = [
    "Span",
    "Status",
    "decode_wire_span",
    "encode_batch",
    "encode_lines",
    "encode_pretty",
    "format_timestamp",
    "new_id",
    "new_ids",
    "parse_timestamp",
    "to_wire",
]


class Status(str, enum.Enum):
    """Outcome of a model call; a ``str`` so ``Status.OK == "ok"``."""

    OK = "ok"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value


_STATUSES = {"ok": Status.OK, "error": Status.ERROR}
_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_id() -> str:
    """A random UUID4 string, about 2x faster than ``str(uuid.uuid4())``."""
    h = f"{getrandbits(128) & _V4_CLEAR | _V4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_ids(count: int) -> list[str]:
    """``count`` random UUID4 strings. Many at once are made from one ``os.urandom`` read, a
    column of their text at a time, for a sixth of what each costs alone."""
    if count < 16:
        return [new_id() for _ in range(count)]
    h = os.urandom(16 * count).hex().encode()
    text = bytearray(b"-" * (37 * count))  # an id a line
    text[36::37] = b"\n" * count
    for digit, column in enumerate(_HEX_COLUMNS):
        text[column::37] = h[digit::32]
    text[14::37] = b"4" * count  # the version
    text[19::37] = h[16::32].translate(_VARIANT)  # the variant's bits: 10
    return text.decode().split()


_HEX_COLUMNS = [column for column in range(36) if column not in (8, 13, 18, 23)]
_VARIANT = bytes.maketrans(b"0123456789abcdef", b"89ab89ab89ab89ab")


class Span(msgspec.Struct, kw_only=True, gc=False):
    """One model call.

    Example::

        span = Span(model="gpt-4o", provider="openai", prompt_tokens=512, comp_tokens=128,
                    latency_ms=1240, status=Status.OK)
        trace.record(span)

    ``started_at`` / ``ended_at`` are epoch milliseconds (a ``datetime`` is accepted and
    converted). ``cost`` is the call's price in USD; left as ``None`` the tracer prices the
    call from the table. ``prompt_tokens`` includes cached input tokens; ``comp_tokens``
    includes reasoning tokens. Spans are not tracked by the cycle collector (cheaper by far
    under load), so ``attributes`` must not refer back to the span.

    Raises:
        ValueError: a token count, latency or status is not acceptable; the message names
            the field and what is accepted.
    """

    model: str
    provider: str = ""
    prompt_tokens: int = 0
    comp_tokens: int = 0
    latency_ms: int | None = None
    cost: Decimal | None = None
    status: Status = Status.OK
    error: str | None = None
    name: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    parent_span_id: str | None = None
    started_at: int | None = None
    ended_at: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_write_tokens: int | None = None
    ttft_ms: int | None = None
    attributes: dict[str, Any] | None = None
    cost_source: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, str):
            raise ValueError(f"Span.model must be a str, got {type(self.model).__name__}")
        if not isinstance(self.provider, str):
            raise ValueError(f"Span.provider must be a str, got {type(self.provider).__name__}")
        p, c = self.prompt_tokens, self.comp_tokens
        if not (type(p) is int and type(c) is int and p >= 0 and c >= 0):  # one test for the usual case
            _check_count("prompt_tokens", p)
            _check_count("comp_tokens", c)
        if not (self.cached_tokens is None and self.reasoning_tokens is None and self.cache_write_tokens is None):
            for field in ("cached_tokens", "reasoning_tokens", "cache_write_tokens"):
                value = getattr(self, field)
                if value is not None:
                    _check_count(field, value)
        latency = self.latency_ms
        if latency is not None and not (type(latency) is int and 0 <= latency <= _MAX_MILLIS):
            self.latency_ms = _check_millis("latency_ms", latency)
        if self.ttft_ms is not None:
            self.ttft_ms = _check_millis("ttft_ms", self.ttft_ms)
        status = _STATUSES.get(self.status)
        if status is None:
            raise ValueError(f"Span.status must be one of 'ok', 'error' (Status.OK, Status.ERROR), got {self.status!r}")
        self.status = status
        if self.cost is not None:
            self.cost = exact(_check_cost(self.cost))
        if self.started_at is not None:
            self.started_at = _check_time("started_at", self.started_at)
        if self.ended_at is not None:
            self.ended_at = _check_time("ended_at", self.ended_at)
            if self.latency_ms is not None and self.started_at is None and self.latency_ms > self.ended_at:
                raise ValueError(
                    f"Span.latency_ms ({self.latency_ms}) would start the call before 1970, "
                    f"{self.ended_at} ms after the epoch that it ended"
                )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.comp_tokens


_BLANK = Span(model="")
blank_span: Callable[[], Span] = functools.partial(Span.__copy__, _BLANK)  # type: ignore[attr-defined]
"""A new span, every field at its default (``model`` empty), made without the checks of
``Span(...)``: for code that fills in values already of the accepted types (spans built from a
model call, read back from a store), where the checks would be the dearest part."""


def _check_count(field: str, value: object) -> None:
    if type(value) is not int or value < 0:  # bool is rejected too
        raise ValueError(f"Span.{field} must be a non-negative int, got {value!r}")


def _check_millis(field: str, value: object) -> int:
    if type(value) is int and 0 <= value <= _MAX_MILLIS:
        return value
    if type(value) is float and 0 <= value <= _MAX_MILLIS:  # NaN fails both comparisons
        return round(value)
    raise ValueError(f"Span.{field} must be a number of milliseconds from 0 to {_MAX_MILLIS:,} (a year), got {value!r}")


_MAX_MILLIS = 365 * 86_400_000  # a model call, a batch's included, takes days at most


def _check_cost(value: object) -> Decimal:
    if type(value) is float and value == value and value not in (float("inf"), float("-inf")):
        value = Decimal(repr(value))
    elif type(value) is int:
        value = Decimal(value)
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise ValueError(f"Span.cost must be a non-negative float or Decimal in USD, or None; got {value!r}")
    return value or _ZERO  # -0 too


def _check_time(field: str, value: object) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"Span.{field} must be timezone-aware (UTC), got a naive datetime")
        value = round(value.timestamp() * 1000)
    elif type(value) is not int:
        raise ValueError(f"Span.{field} must be an aware datetime or epoch milliseconds (int), got {value!r}")
    if not 0 <= value <= _LAST_MS:
        raise ValueError(
            f"Span.{field} must be from 1970-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z (UTC), "
            f"got {value} ms since the epoch"
        )
    return value


_LAST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: the last time the wire format can write


# --- timestamps ---------------------------------------------------------------------------------

_prefixes: dict[int, str] = {}


def format_timestamp(ms: int) -> str:
    """Epoch milliseconds as ``2026-03-15T14:23:01.441Z``; the seconds prefix is cached."""
    sec = ms // 1000
    return (_prefixes.get(sec) or _prefix(sec)) + _MILLIS[ms - sec * 1000]


def _prefix(sec: int) -> str:
    if len(_prefixes) > 4096:
        _prefixes.clear()
    prefix = _prefixes[sec] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return prefix


_MILLIS = [f".{i:03d}Z" for i in range(1000)]


def parse_timestamp(text: str) -> int:
    """Parse an ISO-8601 UTC timestamp (``...Z`` or ``+00:00``) into epoch milliseconds.

    Raises:
        ValueError: the text is not an ISO-8601 timestamp with a time zone.
    """
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except (ValueError, AttributeError):
        raise ValueError(f"expected an ISO-8601 UTC timestamp like 2026-03-15T14:23:01.441Z, got {text!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone; end it with Z")
    return round(parsed.timestamp() * 1000)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- wire format --------------------------------------------------------------------------------


class WireSpan(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The span as it travels, for decoding and validating what the collector receives.

    Timestamps are decoded straight to aware datetimes: a missing time zone or a malformed
    timestamp is a validation error naming the field.
    """

    trace_id: str
    span_id: str
    parent_span_id: str | None = None
    name: str
    model: str
    provider: str
    prompt_tokens: int
    comp_tokens: int
    total_tokens: int
    cost_usd: Decimal | None
    latency_ms: int | None
    status: str
    error: str | None = None
    started_at: Annotated[datetime, msgspec.Meta(tz=True)]  # RFC 3339, parsed by msgspec in C
    ended_at: Annotated[datetime, msgspec.Meta(tz=True)]
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_write_tokens: int | None = None
    ttft_ms: int | None = None
    attributes: dict[str, Any] | None = None
    cost_source: str | None = None


def exact(cost: Decimal) -> Decimal:
    """The shortest exact form: ``Decimal("0.004480")`` becomes ``0.00448``, ``1E+1`` becomes
    ``10``; every digit is kept, however many (the default context would round to 28)."""
    cost = cost.normalize(_UNROUNDED)
    return cost.quantize(_ONE, context=_UNROUNDED) if cost >= _TEN and cost == cost.to_integral_value() else cost


_ZERO, _ONE, _TEN = Decimal(0), Decimal(1), Decimal(10)
MAX_COST = Decimal(1_000_000)  # USD a span may cost: sent to a collector, priced there, or reported by a provider
_UNROUNDED = decimal.Context(prec=decimal.MAX_PREC)


def _times(span: Span) -> tuple[str, str]:
    """``started_at`` and ``ended_at`` as wire text (format_timestamp() inlined: it runs for
    every span)."""
    ended = span.ended_at or 0
    start = ended if span.started_at is None else span.started_at
    sec = start // 1000
    started = (_prefixes.get(sec) or _prefix(sec)) + _MILLIS[start - sec * 1000]
    sec = ended // 1000
    return started, (_prefixes.get(sec) or _prefix(sec)) + _MILLIS[ended - sec * 1000]


def to_wire(span: Span) -> dict[str, Any]:
    """The wire form of a recorded span (ids and timestamps already filled by the tracer), as a
    dict in DESIGN §2's key order."""
    started, ended = _times(span)
    p, c = span.prompt_tokens, span.comp_tokens
    wire: dict[str, Any] = {"trace_id": span.trace_id, "span_id": span.span_id}
    if span.parent_span_id is not None:
        wire["parent_span_id"] = span.parent_span_id
    wire.update(name=span.name, model=span.model, provider=span.provider, prompt_tokens=p, comp_tokens=c,
                total_tokens=p + c, cost_usd=span.cost, latency_ms=span.latency_ms, status=span.status)  # fmt: skip
    if span.error is not None:
        wire["error"] = span.error
    wire["started_at"] = started
    wire["ended_at"] = ended
    for key in _TAIL:
        value = getattr(span, key)
        if value is not None:
            wire[key] = value
    return wire


_TAIL = ("cached_tokens", "reasoning_tokens", "cache_write_tokens", "ttft_ms", "attributes", "cost_source")


class _SeedWire(msgspec.Struct, omit_defaults=True, gc=False):
    """The wire form of a span without ``parent_span_id`` and ``error``, the keys of which sit
    mid-object: built positionally, it is made and encoded about twice as fast as a dict."""

    trace_id: str | None
    span_id: str | None
    name: str | None
    model: str
    provider: str
    prompt_tokens: int
    comp_tokens: int
    total_tokens: int
    cost_usd: Decimal | None
    latency_ms: int | None
    status: Status
    started_at: str
    ended_at: str
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_write_tokens: int | None = None
    ttft_ms: int | None = None
    attributes: dict[str, Any] | None = None
    cost_source: str | None = None


def _encodable(span: Span) -> _SeedWire | dict[str, Any]:
    if span.parent_span_id is not None or span.error is not None:
        return to_wire(span)
    started, ended = _times(span)
    p, c = span.prompt_tokens, span.comp_tokens
    return _SeedWire(
        span.trace_id, span.span_id, span.name, span.model, span.provider, p, c, p + c, span.cost,
        span.latency_ms, span.status, started, ended, span.cached_tokens, span.reasoning_tokens,
        span.cache_write_tokens, span.ttft_ms, span.attributes, span.cost_source,
    )  # fmt: skip


def as_text(obj: Any) -> str:
    """An attribute value JSON has no form for, as text (or its type's name, when even that fails)."""
    try:
        return str(obj)
    except Exception:
        return f"<{type(obj).__name__}>"


_encoder = msgspec.json.Encoder(decimal_format="number", enc_hook=as_text)
UNENCODABLE = "tokentrace.attributes_not_encoded"  # what a span's unencodable attributes become


def _encoded(span: Span) -> bytes:
    """One span's JSON: a span whose attributes cannot be encoded (a value that refers to itself)
    goes without them, marked, so that one value never fails a batch."""
    try:
        return _encoder.encode(_encodable(span))
    except Exception as exc:
        unencodable = msgspec.structs.replace(span, attributes={UNENCODABLE: type(exc).__name__})
        return _encoder.encode(_encodable(unencodable))


def encode_lines(spans: list[Span]) -> bytes:
    """JSONL: one compact JSON object per span, each ending in a newline; one buffer."""
    try:
        return _encoder.encode_lines([_encodable(s) for s in spans])
    except Exception:
        return b"".join(_encoded(s) + b"\n" for s in spans)


def encode_batch(spans: list[Span]) -> bytes:
    """The ingest body ``{"spans": [...]}`` that ``POST /v1/spans`` takes."""
    try:
        return _encoder.encode({"spans": [_encodable(s) for s in spans]})
    except Exception:
        return b'{"spans":[' + b",".join(map(_encoded, spans)) + b"]}"


def encode_pretty(spans: list[Span]) -> bytes:
    """Each span as indented JSON, like the seed guide prints it."""
    return b"".join(msgspec.json.format(_encoded(s), indent=2) + b"\n" for s in spans)


def decode_wire_span(wire: WireSpan) -> Span:
    """Rebuild a :class:`Span` from its wire form (used by the collector's ingest).

    Raises:
        ValueError: a field is out of range; the message names it.
    """
    started = round(wire.started_at.timestamp() * 1000)
    ended = round(wire.ended_at.timestamp() * 1000)
    if ended < started:
        raise ValueError("ended_at must not be earlier than started_at")
    if wire.total_tokens != wire.prompt_tokens + wire.comp_tokens:
        raise ValueError("total_tokens must equal prompt_tokens + comp_tokens")
    return Span(
        model=wire.model,
        provider=wire.provider,
        prompt_tokens=wire.prompt_tokens,
        comp_tokens=wire.comp_tokens,
        latency_ms=wire.latency_ms,
        cost=wire.cost_usd,
        status=wire.status,  # type: ignore[arg-type]
        error=wire.error,
        name=wire.name,
        trace_id=wire.trace_id,
        span_id=wire.span_id,
        parent_span_id=wire.parent_span_id,
        started_at=started,
        ended_at=ended,
        cached_tokens=wire.cached_tokens,
        reasoning_tokens=wire.reasoning_tokens,
        cache_write_tokens=wire.cache_write_tokens,
        ttft_ms=wire.ttft_ms,
        attributes=wire.attributes,
        cost_source=wire.cost_source,
    )
