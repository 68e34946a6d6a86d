"""The seed guide's program, translated, prints the seed's span key for key."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tokentrace import Span, StdoutTransport, Tracer, cost
from tokentrace.spans import parse_timestamp

ROOT = Path(__file__).resolve().parents[1]
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SEED = {
    "trace_id": "7f3a1c2b-e4d5-4f6a-8b9c-0d1e2f3a4b5c", "span_id": "a1b2c3d4-e5f6-7890-abcd-ef1234567890",
    "name": "summarize-document", "model": "gpt-4o", "provider": "openai", "prompt_tokens": 512,
    "comp_tokens": 128, "total_tokens": 640, "cost_usd": 0.00448, "latency_ms": 1240, "status": "ok",
    "started_at": "2026-03-15T14:23:01.441Z", "ended_at": "2026-03-15T14:23:02.681Z",
}  # fmt: skip


def run_seed(model: str, capsys: object) -> dict[str, object]:
    import pytest

    assert isinstance(capsys, pytest.CaptureFixture)
    tracer = Tracer(transport=StdoutTransport())
    usage = {"prompt_tokens": 512, "completion_tokens": 128}
    trace = tracer.start("summarize-document")
    trace.record(Span(model=model, provider="openai", prompt_tokens=512, comp_tokens=128, latency_ms=1240,
                      cost=cost(model, usage), status="ok"))  # fmt: skip
    trace.end()
    tracer.close()
    printed: dict[str, object] = json.loads(capsys.readouterr().out)
    return printed


def test_seed_span_matches_key_for_key_at_the_seed_price(capsys: object) -> None:
    span = run_seed("gpt-4o-2024-05-13", capsys)
    assert list(span) == list(SEED)
    for key in ("name", "provider", "prompt_tokens", "comp_tokens", "total_tokens", "cost_usd", "latency_ms", "status"):
        assert span[key] == SEED[key], key
    assert UUID4.match(str(span["trace_id"])) and UUID4.match(str(span["span_id"]))
    assert TIMESTAMP.match(str(span["started_at"])) and TIMESTAMP.match(str(span["ended_at"]))
    assert parse_timestamp(str(span["ended_at"])) - parse_timestamp(str(span["started_at"])) == 1240


def test_todays_gpt_4o_price(capsys: object) -> None:
    assert run_seed("gpt-4o", capsys)["cost_usd"] == 0.00256


def test_quickstart_example_prints_the_span_then_done() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")], capture_output=True,
                            text=True, timeout=60, check=True)  # fmt: skip
    body, _, tail = result.stdout.rpartition("}\n")
    span = json.loads(body + "}")
    assert list(span) == list(SEED) and span["cost_usd"] == 0.00256
    assert tail == "done\n"


def test_seed_cost_alert_fires_once_on_the_span_that_crosses_five_dollars(capsys: object) -> None:
    import pytest

    from tokentrace import AlertRule, Op, StdoutDelivery

    assert isinstance(capsys, pytest.CaptureFixture)
    rule = AlertRule(name="hourly-cost-spike", metric="total_cost", op=Op.GT, threshold=5.00, window="1h",
                     delivery=StdoutDelivery())  # fmt: skip
    tracer = Tracer(alerts=[rule])
    printed = []
    for i in range(8):
        trace = tracer.start("summarize-document")
        trace.record(Span(model="gpt-4o", provider="openai", prompt_tokens=512, comp_tokens=128, cost=1.28))
        trace.end()
        assert tracer.flush(10)
        printed.append(capsys.readouterr().out)
        if i < 3:
            assert printed[-1] == ""
    tracer.close()
    alerts = [json.loads(out) for out in printed if out]
    assert len(alerts) == 1 and printed[3] != ""
    payload = alerts[0]
    assert list(payload)[:6] == ["alert", "fired_at", "metric", "value", "threshold", "window"]
    assert (payload["alert"], payload["metric"], payload["value"], payload["threshold"], payload["window"]) == (
        "hourly-cost-spike", "total_cost", 5.12, 5.0, "1h")  # fmt: skip
    assert payload["state"] == "firing" and TIMESTAMP.match(payload["fired_at"])


def test_seed_http_section_serves_the_seed_shapes(capsys: object) -> None:
    import httpx

    from tokentrace import AlertRule, HTTPServerConfig, Op, StdoutDelivery

    tracer = Tracer(
        transport=StdoutTransport(),
        alerts=[AlertRule(name="hourly-cost-spike", metric="total_cost", op=Op.GT, threshold=5.00, window="1h",
                          delivery=StdoutDelivery())],
        http_server=HTTPServerConfig(addr=":0"),  # no host: loopback only, any free port
    )  # fmt: skip
    try:
        url = tracer.server_url or ""
        assert url.startswith("http://127.0.0.1:")
        for model, latency in (("gpt-4o", 820), ("gpt-4o", 2140), ("gpt-4o-mini", 3810)):
            trace = tracer.start("summarize-document")
            trace.record(Span(model=model, provider="openai", prompt_tokens=512, comp_tokens=128, latency_ms=latency))
            trace.end()
        cost = httpx.get(url + "/metrics/cost?window=1h").json()
        latency = httpx.get(url + "/metrics/latency?window=1h").json()
        assert list(cost)[:4] == ["total_usd", "by_model", "window", "span_count"]
        assert (cost["total_usd"], cost["by_model"], cost["window"], cost["span_count"]) == (
            0.0052736, {"gpt-4o": 0.00512, "gpt-4o-mini": 0.0001536}, "1h", 3)  # fmt: skip
        assert list(latency)[:4] == ["p50_ms", "p95_ms", "p99_ms", "window"]
        assert abs(latency["p50_ms"] - 2140) <= 21.4 and abs(latency["p99_ms"] - 3810) <= 38.1
        assert httpx.get(url + "/health").json() == {"status": "ok"}
    finally:
        tracer.close()
