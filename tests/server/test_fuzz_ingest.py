"""Fuzzing: 1,000 malformed ingest bodies are each a 400 with a reason; schemathesis on the API."""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.collector_kit import JSON_BODY, mixed_spans, post_spans, running
from tokentrace.server.collector import Collector
from tokentrace.spans import encode_batch

Mutation = Callable[[random.Random, dict], object]
_IDS = ("", 5, None, [], "x" * 200, {"$gt": 0})
_TEXT = (None, 5, 1.5, [], {}, "x" * 5000)
_COUNT = ("12", 1.5, True, None, [], -1, 2**64, 10**30, "NaN")
_INVALID: dict[str, tuple[object, ...]] = {
    "trace_id": _IDS, "span_id": _IDS, "name": _TEXT, "model": _TEXT, "provider": _TEXT,
    "prompt_tokens": _COUNT, "comp_tokens": _COUNT, "total_tokens": _COUNT,
    "latency_ms": ("12", 1.5, True, [], -1, 2**64),
    "cost_usd": ("abc", True, [], {}, -1, -0.001, "NaN", "Infinity", 10**30, "1e400"),
    "status": ("maybe", 1, None, "", "OK"),
    "started_at": (5, None, "", "now", "2026-13-01T00:00:00Z"),
    "ended_at": (5, None, "", "2026-03-15T14:23:01", "1999-01-01T00:00:00.000Z"),
}  # fmt: skip
_FIELDS = tuple(_INVALID)


def _wrong_type(rng: random.Random, span: dict) -> object:
    field = rng.choice(_FIELDS)
    span[field] = rng.choice(_INVALID[field])
    return {"spans": [span]}


def _negative(rng: random.Random, span: dict) -> object:
    span[rng.choice(("prompt_tokens", "comp_tokens", "latency_ms", "cost_usd", "ttft_ms"))] = -rng.randint(1, 10**6)
    return {"spans": [span]}


def _huge(rng: random.Random, span: dict) -> object:
    span[rng.choice(("prompt_tokens", "comp_tokens", "total_tokens", "latency_ms", "cached_tokens"))] = (
        2 ** rng.randint(54, 300)
    )
    return {"spans": [span]}


def _missing(rng: random.Random, span: dict) -> object:
    del span[rng.choice(_FIELDS)]
    return {"spans": [span]}


def _deep(rng: random.Random, span: dict) -> object:
    depth = rng.choice((33, 100, 5000))
    span["attributes"] = {"x": _Raw("[" * depth + "]" * depth)}
    return {"spans": [span]}


class _Raw(str):
    """Text spliced into the JSON as is (nesting too deep for ``json.dumps`` to build)."""


def _dumps(value: object) -> bytes:
    raws: list[str] = []

    def mark(obj: object) -> object:
        raws.append(str(obj))
        return f"@@raw{len(raws) - 1}@@"

    def walk(obj: object) -> object:
        if isinstance(obj, _Raw):
            return mark(obj)
        if isinstance(obj, dict):
            return {k: walk(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [walk(v) for v in obj]
        return obj

    text = json.dumps(walk(value))
    for i, raw in enumerate(raws):
        text = text.replace(f'"@@raw{i}@@"', raw)
    return text.encode()


def _bad_time(rng: random.Random, span: dict) -> object:
    span[rng.choice(("started_at", "ended_at"))] = rng.choice(
        ("", "now", "2026-13-01T00:00:00Z", "2026-03-15T14:23:01", "9" * 40, "1970-01-01T00:00:00.000-05:00x")
    )
    return {"spans": [span]}


def _wrong_shape(rng: random.Random, span: dict) -> object:
    return rng.choice(([span], {"spans": span}, {"spans": [[span]]}, {"span": [span]}, "spans", 42, None))


MUTATIONS: tuple[Mutation, ...] = (_wrong_type, _negative, _huge, _missing, _deep, _bad_time, _wrong_shape)


def _broken_bytes(rng: random.Random, good: bytes) -> bytes:
    kind = rng.randrange(6)
    if kind == 0:
        return good[: rng.randrange(1, len(good) - 1)]
    if kind == 1:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    if kind == 2:
        return good.replace(b'"cost_usd":', rng.choice((b'"cost_usd":NaN,"x":', b'"cost_usd":Infinity,"x":')), 1)
    if kind == 3:
        return b"[" * 200_000
    if kind == 4:
        return good.replace(b'"model":"', b'"model":"\xff\xfe', 1)
    return b'{"spans": [' + b"{" * rng.randrange(2, 50)


def _bodies(seed: int, count: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    good_span = json.loads(encode_batch(mixed_spans(1, seed=seed)))["spans"][0]
    good = encode_batch(mixed_spans(1, seed=seed))
    for i in range(count):
        if i % 4 == 0:
            yield _broken_bytes(rng, good)
        else:
            mutation = MUTATIONS[i % len(MUTATIONS)]
            yield _dumps(mutation(rng, dict(good_span)))


def _rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM spans").fetchone()[0])


def test_a_thousand_malformed_bodies_are_each_a_400(collector: Collector, client: httpx.Client) -> None:
    post_spans(client, mixed_spans(10))
    before = _rows(collector.store.path)
    for body in _bodies(seed=4, count=1000):
        response = client.post("/v1/spans", content=body, headers=JSON_BODY)
        assert response.status_code == 400, (body[:300], response.text)
        reason = response.json()["error"]
        assert isinstance(reason, str)
        assert reason
    assert client.get("/health").json() == {"status": "ok"}
    assert _rows(collector.store.path) == before
    assert client.get("/metrics/cost").json()["span_count"] == before


@pytest.fixture
def api(tmp_path: Path) -> Iterator[str]:
    collector = Collector(tmp_path / "schema.db")
    with running(collector.app) as url, httpx.Client(base_url=url) as http:
        post_spans(http, mixed_spans(20))
        yield url
    collector.close()


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
def test_schemathesis_finds_the_api_as_documented(api: str, mode: schemathesis.GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(api + "/openapi.json")

    @settings(max_examples=120, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=schema.as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case) -> None:
        response = case.call(base_url=api, timeout=30)
        case.validate_response(response, checks=CHECKS)

    check()
    assert httpx.get(api + "/health").json() == {"status": "ok"}
