"""Reading and validating ``POST /v1/spans`` bodies.

A body is ``{"spans": [<wire span>, ...]}`` (DESIGN §2), plain or gzip-compressed, at most
:data:`MAX_BODY_BYTES` after decompression (decompressed as a stream with a cap, so a small
"zip bomb" costs at most the cap). A gzip body may hold several members, one after the other
(RFC 1952; what ``cat a.gz b.gz`` makes), read as the concatenation of their contents; bytes
after a member that are not another member make it a 400, never dropped. Every span is checked
before any is stored; the first bad one makes the whole batch a 400 whose message names the
span's index and field.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from ..spans import MAX_COST, Span, WireSpan, decode_wire_span

__all__ = ["MAX_BODY_BYTES", "MAX_COST", "IngestError", "check_content_type", "parse_spans", "read_body"]

MAX_BODY_BYTES = 4 * 1024 * 1024
_MAX_INT = 2**53 - 1  # the largest integer every JSON reader (the dashboard's too) keeps exact
_MAX_ID = 128
_MAX_TEXT = 1024
_MAX_ERROR = 65_536
_MAX_DEPTH = 32
_MAX_GZIP_MEMBERS = 1000  # each costs a new inflater: a body of empty members must not burn CPU
_GZIP_SLICE = 64 * 1024  # input fed to the inflater at a time; a member's end copies what is left of it
_INT_FIELDS = (
    "prompt_tokens",
    "comp_tokens",
    "total_tokens",
    "latency_ms",
    "cached_tokens",
    "reasoning_tokens",
    "cache_write_tokens",
    "ttft_ms",
)
_TEXT_FIELDS = (
    ("model", _MAX_TEXT),
    ("provider", _MAX_TEXT),
    ("name", _MAX_TEXT),
    ("parent_span_id", _MAX_ID),
    ("cost_source", _MAX_TEXT),
    ("error", _MAX_ERROR),
)
_SPAN_TO_WIRE = {"cost": "cost_usd"}
_PATH = re.compile(r"`\$\.spans\[(\d+)\](?:\.(\w+))?")


class IngestError(Exception):
    """A request the collector refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, *, index: int | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.index = index
        self.field = field

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message}
        if self.index is not None:
            out["span_index"] = self.index
        if self.field is not None:
            out["field"] = self.field
        return out


class _Body(msgspec.Struct):
    spans: list[WireSpan]


_decoder = msgspec.json.Decoder(_Body)


# --- the body --------------------------------------------------------------------------------


async def read_body(
    chunks: AsyncIterator[bytes],
    encoding: str | None,
    declared_length: str | None,
    limit: int = MAX_BODY_BYTES,
) -> bytes:
    """The request body, gunzipped when ``encoding`` says so, refused past ``limit`` bytes.

    Raises:
        IngestError: 413 past the limit (compressed or not), 415 for an unknown encoding,
            400 for a bad ``Content-Length``, a corrupt or truncated gzip stream, bytes after a
            gzip member that are not another member, or more than 1000 members.
    """
    gunzip = _decompressor(encoding)
    _check_length(declared_length, limit)
    parts: list[bytes] = []
    size = raw = 0
    async for chunk in chunks:
        raw += len(chunk)
        if raw > limit:
            raise _too_large(limit)
        for piece in gunzip.inflate(chunk, limit - size) if gunzip is not None else (chunk,):
            size += len(piece)
            if size > limit:
                raise _too_large(limit)
            parts.append(piece)
    if gunzip is not None:
        gunzip.finish()
    return b"".join(parts)


def _decompressor(encoding: str | None) -> _Gunzip | None:
    name = (encoding or "identity").strip().lower()
    if name in ("", "identity"):
        return None
    if name in ("gzip", "x-gzip"):
        return _Gunzip()
    raise IngestError(415, f"Content-Encoding must be gzip or identity, got {encoding!r}")


def check_content_type(content_type: str | None) -> None:
    """Refuse a body not sent as ``application/json``: a web page may post anything else (form
    fields, plain text, a body with no type) to a collector on this machine without the browser
    asking it first, so without a token the type is what keeps such pages from sending spans.

    Raises:
        IngestError: 415 for any other type, or none.
    """
    media = (content_type or "").partition(";")[0].strip().lower()
    if media != "application/json":
        raise IngestError(415, f"Content-Type must be application/json, got {content_type!r}")


def _check_length(declared: str | None, limit: int) -> None:
    if declared is None:
        return
    if not declared.strip().isdigit():
        raise IngestError(400, f"Content-Length must be a number of bytes, got {declared!r}")
    if int(declared) > limit:
        raise _too_large(limit)


class _Gunzip:
    """A gzip stream of one or more members, inflated a chunk at a time."""

    def __init__(self) -> None:
        self._member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._count = 1

    def inflate(self, chunk: bytes, room: int) -> list[bytes]:
        """Decompress ``chunk`` but never more than ``room + 1`` bytes (enough to see the overflow)."""
        out: list[bytes] = []
        view = memoryview(chunk)
        for start in range(0, len(view), _GZIP_SLICE):
            room = self._inflate_slice(view[start : start + _GZIP_SLICE], room, out)
            if room < 0:
                break
        return out

    def _inflate_slice(self, data: memoryview | bytes, room: int, out: list[bytes]) -> int:
        try:
            while data and room >= 0:
                if self._member.eof:  # what follows a member must be another one
                    self._next_member()
                piece = self._member.decompress(data, room + 1)
                out.append(piece)
                room -= len(piece)
                data = self._member.unused_data if self._member.eof else self._member.unconsumed_tail
        except zlib.error as exc:
            where = "" if self._count == 1 else f" at member {self._count} (only a gzip member may follow one)"
            raise IngestError(400, f"the gzip body is corrupt{where}: {exc}") from None
        return room

    def _next_member(self) -> None:
        if self._count == _MAX_GZIP_MEMBERS:
            raise IngestError(400, f"the gzip body has more than {_MAX_GZIP_MEMBERS} members")
        self._member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._count += 1

    def finish(self) -> None:
        """Check that the body ended where a member did."""
        if self._member.eof:
            return
        if self._count == 1:
            raise IngestError(400, "the gzip body is truncated")
        raise IngestError(
            400,
            f"the gzip body is truncated: it ends inside member {self._count}, "
            f"or what follows member {self._count - 1} is not gzip",
        )


def _too_large(limit: int) -> IngestError:
    return IngestError(413, f"the body is larger than {limit} bytes (after decompression); send smaller batches")


# --- the spans -------------------------------------------------------------------------------


def parse_spans(body: bytes) -> list[Span]:
    """Decode and check a ``{"spans": [...]}`` body; all spans, or an error for the first bad one.

    Raises:
        IngestError: 400 naming the span index and field at fault.
    """
    if not body.strip():
        raise IngestError(400, 'the body is empty; send {"spans": [...]}')
    try:
        batch = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise _from_validation(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise IngestError(400, f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise IngestError(400, "the body is nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise IngestError(400, f"the body is not valid UTF-8: {exc.reason} at byte {exc.start}") from None
    return [_check_span(index, wire) for index, wire in enumerate(batch.spans)]


def _from_validation(message: str) -> IngestError:
    match = _PATH.search(message)
    text = message.split(" - at ")[0]
    if match is None:
        return IngestError(400, f'the body must be {{"spans": [<span>, ...]}}: {message}')
    index, field = int(match.group(1)), match.group(2)
    missing = re.search(r"missing required field `(\w+)`", message)
    field = missing.group(1) if missing else field
    where = f"spans[{index}]" + (f".{field}" if field else "")
    return IngestError(400, f"{where}: {text}", index=index, field=field)


def _check_span(index: int, wire: WireSpan) -> Span:
    problem = _limits(wire)
    if problem is not None:
        field, text = problem
        raise IngestError(400, f"spans[{index}].{field}: {text}", index=index, field=field)
    try:
        return decode_wire_span(wire)
    except (ValueError, TypeError) as exc:
        field = _field_of(str(exc))
        raise IngestError(400, f"spans[{index}].{field}: {exc}", index=index, field=field) from None


def _limits(wire: WireSpan) -> tuple[str, str] | None:
    """The first field past tokentrace's bounds (ids, sizes, integers, cost, nesting), if any."""
    if _plainly_within(wire):
        return None
    for field in ("trace_id", "span_id"):
        value = getattr(wire, field)
        if not 0 < len(value) <= _MAX_ID:
            return field, f"must be a non-empty string of at most {_MAX_ID} characters"
    for field, most in _TEXT_FIELDS:
        value = getattr(wire, field)
        if value is not None and len(value) > most:
            return field, f"must be at most {most} characters"
    for field in _INT_FIELDS:
        value = getattr(wire, field)
        if value is not None and not 0 <= value <= _MAX_INT:
            return field, f"must be an integer from 0 to {_MAX_INT}, got {value}"
    cost = wire.cost_usd
    if cost is not None and not (cost.is_finite() and 0 <= cost <= MAX_COST):
        return "cost_usd", f"must be a finite number of USD from 0 to {MAX_COST}, or null; got {cost}"
    if wire.attributes is not None and _depth(wire.attributes) > _MAX_DEPTH:
        return "attributes", f"must be nested at most {_MAX_DEPTH} levels deep"
    return None


def _plainly_within(w: WireSpan) -> bool:
    """The common case in one expression (no loops, no ``getattr``): a span without attributes
    or an error, every field in bounds. Spans from ``HTTPTransport`` are priced, so a cost, a
    cost source and a parent are common and checked here too."""
    cost = w.cost_usd
    return (
        0 < len(w.trace_id) <= _MAX_ID
        and 0 < len(w.span_id) <= _MAX_ID
        and (w.parent_span_id is None or len(w.parent_span_id) <= _MAX_ID)
        and w.error is None
        and w.attributes is None
        and (w.cost_source is None or len(w.cost_source) <= _MAX_TEXT)
        and (cost is None or (cost.is_finite() and 0 <= cost <= MAX_COST))
        and len(w.model) <= _MAX_TEXT
        and len(w.provider) <= _MAX_TEXT
        and len(w.name) <= _MAX_TEXT
        and 0 <= w.prompt_tokens <= _MAX_INT
        and 0 <= w.comp_tokens <= _MAX_INT
        and 0 <= w.total_tokens <= _MAX_INT
        and (w.latency_ms is None or 0 <= w.latency_ms <= _MAX_INT)
        and (w.cached_tokens is None or 0 <= w.cached_tokens <= _MAX_INT)
        and (w.reasoning_tokens is None or 0 <= w.reasoning_tokens <= _MAX_INT)
        and (w.cache_write_tokens is None or 0 <= w.cache_write_tokens <= _MAX_INT)
        and (w.ttft_ms is None or 0 <= w.ttft_ms <= _MAX_INT)
    )


def _depth(value: Any) -> int:
    deepest, level = 0, [value]
    while level:
        deepest += 1
        if deepest > _MAX_DEPTH:
            return deepest
        level = [c for v in level for c in (v.values() if isinstance(v, dict) else v if isinstance(v, list) else ())]
    return deepest - 1


def _field_of(message: str) -> str:
    """The wire field a ``decode_wire_span`` error is about."""
    word = re.match(r"(?:Span\.)?(\w+)", message)
    name = "" if word is None else _SPAN_TO_WIRE.get(word.group(1), word.group(1))
    return name if name in WireSpan.__struct_fields__ else "ended_at"
