"""Span validation and the wire format of DESIGN §2."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from tokentrace import Span, Status
from tokentrace.spans import (
    encode_batch,
    encode_lines,
    encode_pretty,
    format_timestamp,
    new_id,
    new_ids,
    parse_timestamp,
)

SEED_KEYS = [
    "trace_id", "span_id", "name", "model", "provider", "prompt_tokens", "comp_tokens",
    "total_tokens", "cost_usd", "latency_ms", "status", "started_at", "ended_at",
]  # fmt: skip


def recorded(**fields: object) -> Span:
    base: dict[str, object] = dict(
        model="gpt-4o", provider="openai", prompt_tokens=512, comp_tokens=128, latency_ms=1240,
        name="summarize-document", trace_id=new_id(), span_id=new_id(), ended_at=1773584582681,
    )  # fmt: skip
    base.update(fields)
    span = Span(**base)  # type: ignore[arg-type]
    span.started_at = span.started_at or (span.ended_at or 0) - (span.latency_ms or 0)
    return span


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"prompt_tokens": -1}, "Span.prompt_tokens must be a non-negative int, got -1"),
        ({"comp_tokens": 1.5}, "Span.comp_tokens must be a non-negative int, got 1.5"),
        ({"prompt_tokens": True}, "Span.prompt_tokens must be a non-negative int, got True"),
        ({"cached_tokens": -3}, "Span.cached_tokens must be a non-negative int, got -3"),
        ({"latency_ms": -5}, "Span.latency_ms must be a number of milliseconds from 0 to 31,536,000,000 (a year), got"),
        ({"latency_ms": float("nan")}, "Span.latency_ms must be a number of milliseconds from 0"),
        ({"latency_ms": 10**17}, "Span.latency_ms must be a number of milliseconds from 0 to 31,536,000,000"),
        ({"ended_at": 5, "latency_ms": 1000}, "Span.latency_ms (1000) would start the call before 1970"),
        ({"status": "fine"}, "Span.status must be one of 'ok', 'error' (Status.OK, Status.ERROR), got 'fine'"),
        ({"cost": -0.1}, "Span.cost must be a non-negative float or Decimal in USD"),
        ({"cost": "cheap"}, "Span.cost must be a non-negative float or Decimal in USD"),
        ({"model": None}, "Span.model must be a str, got NoneType"),
        ({"started_at": datetime(2026, 1, 1)}, "Span.started_at must be timezone-aware"),
    ],
)
def test_bad_fields_raise_value_error_naming_the_field(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as info:
        Span(**{"model": "gpt-4o", **fields})  # type: ignore[arg-type]
    assert str(info.value).startswith(message)


def test_status_accepts_strings_and_float_latency_is_rounded() -> None:
    span = Span(model="m", status="error", latency_ms=12.6)  # type: ignore[arg-type]
    assert span.status is Status.ERROR
    assert span.latency_ms == 13
    assert Status.OK == "ok"


def test_wire_keys_are_the_seeds_in_order_and_optional_keys_only_when_set() -> None:
    line = json.loads(encode_lines([recorded(cost=Decimal("0.00448"))]))
    assert list(line) == SEED_KEYS
    full = recorded(
        parent_span_id=new_id(), status="error", error="TimeoutError: slow", cached_tokens=100,
        reasoning_tokens=7, cache_write_tokens=3, ttft_ms=90, attributes={"k": "v"},
    )  # fmt: skip
    keys = list(json.loads(encode_lines([full])))
    assert keys == [
        "trace_id", "span_id", "parent_span_id", "name", "model", "provider", "prompt_tokens",
        "comp_tokens", "total_tokens", "cost_usd", "latency_ms", "status", "error", "started_at",
        "ended_at", "cached_tokens", "reasoning_tokens", "cache_write_tokens", "ttft_ms", "attributes",
    ]  # fmt: skip


def test_timestamps_are_utc_millis_with_z_and_match_latency() -> None:
    line = json.loads(encode_lines([recorded()]))
    assert line["started_at"] == "2026-03-15T14:23:01.441Z"
    assert line["ended_at"] == "2026-03-15T14:23:02.681Z"
    assert parse_timestamp(line["ended_at"]) - parse_timestamp(line["started_at"]) == line["latency_ms"] == 1240
    assert line["total_tokens"] == 640


@pytest.mark.parametrize(
    ("cost", "text"),
    [
        (Decimal("0.00448"), b'"cost_usd":0.00448,'),
        (Decimal("0.004480000"), b'"cost_usd":0.00448,'),
        (0.1 + 0.2, b'"cost_usd":0.30000000000000004,'),  # a float the user computed is kept as given
        (Decimal("5.120"), b'"cost_usd":5.12,'),
        (Decimal("10"), b'"cost_usd":10,'),
        (Decimal("-0"), b'"cost_usd":0,'),
        (Decimal("999999.123456789012345678901234000"), b'"cost_usd":999999.123456789012345678901234,'),
        (Decimal("1E+30"), b'"cost_usd":1000000000000000000000000000000,'),
        (None, b'"cost_usd":null,'),
    ],
)
def test_cost_is_printed_exactly(cost: Decimal | float | None, text: bytes) -> None:
    assert text in encode_lines([recorded(cost=cost)])


def test_ids_are_uuid4() -> None:
    import uuid

    ids = {new_id() for _ in range(1000)} | set(new_ids(1000)) | set(new_ids(15)) | set(new_ids(16))
    assert len(new_ids(0)) == 0 and len(new_ids(15)) == 15 and len(new_ids(16)) == 16
    assert len(ids) == 2031
    for value in ids:
        parsed = uuid.UUID(value)
        assert parsed.version == 4 and str(parsed) == value


def test_pretty_matches_the_seed_layout_and_batch_wraps_spans() -> None:
    pretty = encode_pretty([recorded(cost=Decimal("0.00448"))]).decode()
    assert pretty.startswith('{\n  "trace_id": "')
    assert '\n  "cost_usd": 0.00448,\n' in pretty
    assert list(json.loads(encode_batch([recorded(), recorded()]))) == ["spans"]


def test_format_and_parse_timestamp_round_trip() -> None:
    ms = round(datetime(2026, 3, 15, 15, 0, tzinfo=timezone.utc).timestamp() * 1000)
    assert format_timestamp(ms) == "2026-03-15T15:00:00.000Z"
    assert parse_timestamp("2026-03-15T15:00:00.000Z") == ms
    assert parse_timestamp("2026-03-15T16:00:00.000+01:00") == ms
    with pytest.raises(ValueError, match="no time zone"):
        parse_timestamp("2026-03-15T15:00:00")
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_timestamp("yesterday")


def test_attributes_with_odd_values_still_encode() -> None:
    line = json.loads(
        encode_lines([recorded(attributes={"when": datetime(2026, 1, 1, tzinfo=timezone.utc), "obj": object})])
    )
    assert line["attributes"]["when"] == "2026-01-01T00:00:00Z"
    assert line["attributes"]["obj"] == "<class 'object'>"


def test_both_encodings_agree_key_for_key() -> None:
    from tokentrace.spans import to_wire

    plain = recorded(cached_tokens=100, ttft_ms=90, attributes={"k": 1}, cost_source="genai-prices")
    nested = recorded(parent_span_id=new_id(), cached_tokens=100, cost_source="genai-prices")
    for span in (plain, nested, recorded(), recorded(error="E: x", status="error")):
        assert json.loads(encode_lines([span])) == to_wire(span) | {"status": span.status.value}
        assert list(json.loads(encode_lines([span]))) == list(to_wire(span))


def test_times_are_those_the_wire_format_can_write() -> None:
    last = Span(model="m", provider="p", started_at=0, ended_at=253_402_300_799_999)
    assert json.loads(encode_lines([last]))["ended_at"] == "9999-12-31T23:59:59.999Z"
    assert json.loads(encode_lines([last]))["started_at"] == "1970-01-01T00:00:00.000Z"
    with pytest.raises(ValueError, match=r"Span\.ended_at must be from 1970-01-01T00:00:00\.000Z to 9999-12-31T23:59"):
        Span(model="m", provider="p", ended_at=253_402_300_800_000)
    with pytest.raises(ValueError, match=r"Span\.started_at must be from 1970"):
        Span(model="m", provider="p", started_at=datetime(1969, 12, 31, 23, 59, tzinfo=timezone.utc))
