"""The read endpoints against known spans: seed shapes, exact sums, percentiles, traces, errors."""

from __future__ import annotations

import json
import math
import random
import socket
import sqlite3
import threading
from decimal import Decimal
from pathlib import Path

import httpx
import msgspec
import pytest

import tokentrace
from tests.collector_kit import make_span, mixed_spans, post_spans, running
from tokentrace.exceptions import ConfigError
from tokentrace.server.collector import Collector
from tokentrace.spans import Span, Status, now_ms


def _json(response: httpx.Response) -> dict:
    return json.loads(response.text, parse_float=Decimal)


def _exact_quantile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(round(q * len(ordered), 9))) - 1]


def _sum_cost(spans: list[Span], **match: str) -> Decimal:
    return sum(
        (s.cost for s in spans if s.cost is not None and all(getattr(s, k) == v for k, v in match.items())),
        Decimal(0),
    )


def test_health_is_the_seed_body(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_cost_has_the_seed_keys_first_and_exact_sums(client: httpx.Client) -> None:
    spans = mixed_spans(300)
    assert post_spans(client, spans).status_code == 202
    body = _json(client.get("/metrics/cost", params={"window": "1h"}))
    assert list(body)[:4] == ["total_usd", "by_model", "window", "span_count"]
    assert body["window"] == "1h"
    assert body["span_count"] == 300
    assert body["total_usd"] == _sum_cost(spans)
    assert body["by_model"] == {m: _sum_cost(spans, model=m) for m in ("claude-sonnet-4-5", "gpt-4o", "gpt-4o-mini")}
    assert body["by_provider"] == {p: _sum_cost(spans, provider=p) for p in ("anthropic", "openai")}
    assert body["error_count"] == 30


def test_money_is_printed_without_float_noise(client: httpx.Client) -> None:
    spans = [make_span(cost="0.1"), make_span(cost="0.2")]
    assert post_spans(client, spans).status_code == 202
    text = client.get("/metrics/cost").text
    assert '"total_usd":0.3,' in text
    assert '"by_model":{"gpt-4o":0.3}' in text


def test_a_model_without_a_price_costs_null_not_zero(client: httpx.Client) -> None:
    spans = [make_span(cost="0.00448"), make_span(cost="0.00448"), make_span(model="gpt-4o-mini", cost="0")]
    spans += [make_span(model="made-up", provider="acme", cost=None) for _ in range(3)]  # the collector finds no price
    assert post_spans(client, spans).status_code == 202
    response = client.get("/metrics/cost", params={"window": "1h"})
    assert '"by_model":{"gpt-4o":0.00896,"gpt-4o-mini":0,"made-up":null},' in response.text
    assert _json(response) == {
        "total_usd": Decimal("0.00896"),
        "by_model": {"gpt-4o": Decimal("0.00896"), "gpt-4o-mini": 0, "made-up": None},
        "window": "1h",
        "span_count": 6,
        "by_provider": {"openai": Decimal("0.00896"), "acme": None},
        "error_count": 0,
        "unpriced_count": 3,
        "filters": {},
    }
    series = client.get("/metrics/timeseries", params={"window": "1h", "step": "5m"}).json()
    made_up, free = series["models"]["made-up"], series["models"]["gpt-4o-mini"]
    assert [cost for cost, n in zip(made_up["cost_usd"], made_up["span_count"], strict=True) if n] == [None]
    assert [cost for cost, n in zip(free["cost_usd"], free["span_count"], strict=True) if n] == [0]
    assert set(made_up["cost_usd"]) == {0, None}  # no spans, no spend: 0
    assert sum(series["total"]["cost_usd"]) == 0.00896


def test_calls_all_alike_have_exactly_their_latency_as_percentiles(tmp_path: Path) -> None:
    fired: list[dict] = []

    def p95(name: str, op: str, threshold: int, model: str) -> tokentrace.AlertRule:
        delivery = tokentrace.CallbackDelivery(fired.append)
        return tokentrace.AlertRule(name, "latency_p95", op, threshold, "1h", delivery, filters={"model": model})

    rules = [
        p95("p95-over-2s", ">", 2000, "gpt-4o"),
        p95("p95-at-least-2s", ">=", 2000, "gpt-4o"),
        p95("p95-at-least-1s", ">=", 1000, "gpt-4o-mini"),
    ]
    collector = Collector(tmp_path / "alike.db", rules=rules)
    try:
        with running(collector.app) as url, httpx.Client(base_url=url) as http:
            spans = [make_span(latency=2000) for _ in range(40)] + [make_span(model="gpt-4o-mini", latency=1000)]
            assert post_spans(http, spans).status_code == 202
            slow = http.get("/metrics/latency", params={"model": "gpt-4o"}).json()
            fast = http.get("/metrics/latency", params={"model": "gpt-4o-mini"}).json()
            states = {a["name"]: (a["state"], a["value"]) for a in http.get("/alerts").json()["alerts"]}
        assert collector.tracer.alert_engine is not None and collector.tracer.alert_engine.flush(10)
    finally:
        collector.close()
    assert slow == {"p50_ms": 2000, "p95_ms": 2000, "p99_ms": 2000, "window": "1h", "avg_ms": 2000, "span_count": 40,
                    "filters": {"model": "gpt-4o"}}  # fmt: skip
    assert (fast["p50_ms"], fast["p95_ms"], fast["p99_ms"]) == (1000, 1000, 1000)
    assert states == {
        "p95-over-2s": ("inactive", 2000),
        "p95-at-least-2s": ("firing", 2000),
        "p95-at-least-1s": ("firing", 1000),
    }
    assert sorted((p["alert"], p["value"]) for p in fired) == [("p95-at-least-1s", 1000), ("p95-at-least-2s", 2000)]


def test_latency_percentiles_are_within_one_percent(client: httpx.Client) -> None:
    spans = mixed_spans(1000, seed=11)
    assert post_spans(client, spans[:500]).status_code == 202
    assert post_spans(client, spans[500:]).status_code == 202
    body = client.get("/metrics/latency", params={"window": "1h"}).json()
    assert list(body)[:4] == ["p50_ms", "p95_ms", "p99_ms", "window"]
    latencies = [s.latency_ms or 0 for s in spans]
    for key, q in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        exact = _exact_quantile(latencies, q)
        assert abs(body[key] - exact) <= 0.01 * exact, (key, body[key], exact)
    assert body["avg_ms"] == round(sum(latencies) / 1000, 2)
    assert body["span_count"] == 1000


def test_filters_select_model_provider_and_name(client: httpx.Client) -> None:
    spans = mixed_spans(120)
    post_spans(client, spans)
    by_model = _json(client.get("/metrics/cost", params={"model": "gpt-4o"}))
    assert by_model["total_usd"] == _sum_cost(spans, model="gpt-4o")
    assert by_model["span_count"] == 40
    assert by_model["filters"] == {"model": "gpt-4o"}
    by_provider = _json(client.get("/metrics/cost", params={"provider": "anthropic"}))
    assert by_provider["by_model"] == {"claude-sonnet-4-5": _sum_cost(spans, provider="anthropic")}
    by_name = client.get("/metrics/tokens", params={"name": "classify"}).json()
    assert by_name["prompt_tokens"] == sum(s.prompt_tokens for s in spans if s.name == "classify")


def test_tokens_and_errors(client: httpx.Client) -> None:
    spans = mixed_spans(50)
    post_spans(client, spans)
    tokens = client.get("/metrics/tokens", params={"window": "15m"}).json()
    assert tokens == {
        "prompt_tokens": sum(s.prompt_tokens for s in spans),
        "comp_tokens": sum(s.comp_tokens for s in spans),
        "total_tokens": sum(s.prompt_tokens + s.comp_tokens for s in spans),
        "window": "15m",
        "span_count": 50,
        "filters": {},
    }
    errors = client.get("/metrics/errors").json()
    assert errors == {"error_count": 5, "error_rate": 0.1, "window": "1h", "span_count": 50, "filters": {}}


def test_timeseries_has_one_column_per_metric_per_model(client: httpx.Client) -> None:
    spans = mixed_spans(90)
    post_spans(client, spans)
    body = client.get("/metrics/timeseries", params={"window": "1h", "step": "5m"}).json()
    assert body["window"] == "1h"
    assert body["step"] == "5m"
    points = len(body["timestamps"])
    assert points in (12, 13)  # 13 when the window's edges fall inside two steps
    assert sorted(body["models"]) == ["claude-sonnet-4-5", "gpt-4o", "gpt-4o-mini"]
    total = body["total"]
    assert set(total) == {"cost_usd", "span_count", "error_count", "prompt_tokens", "comp_tokens", "total_tokens",
                          "p50_ms", "p95_ms", "p99_ms"}  # fmt: skip
    assert all(len(column) == points for column in total.values())
    assert sum(total["span_count"]) == 90
    assert sum(total["error_count"]) == 9
    assert sum(total["cost_usd"]) == pytest.approx(float(_sum_cost(spans)), rel=1e-9)
    for model, columns in body["models"].items():
        assert sum(columns["span_count"]) == 30
        assert sum(columns["prompt_tokens"]) == sum(s.prompt_tokens for s in spans if s.model == model)


def test_timeseries_has_columns_for_the_20_costliest_models(client: httpx.Client) -> None:
    # 25 models, model-i costing i cents; the two unpriced ones come last
    spans = [make_span(model=f"model-{i:02d}", cost=f"0.{i:02d}") for i in range(1, 24)]
    spans += [make_span(model="free-a", cost=None) for _ in range(3)] + [make_span(model="free-b", cost=None)]
    post_spans(client, spans)
    body = client.get("/metrics/timeseries", params={"window": "1h", "step": "5m"}).json()
    assert sorted(body["models"]) == [f"model-{i:02d}" for i in range(4, 24)]
    assert sum(body["total"]["span_count"]) == 27
    one = client.get("/metrics/timeseries", params={"window": "1h", "step": "5m", "model": "free-b"}).json()
    assert list(one["models"]) == ["free-b"]
    assert sum(one["models"]["free-b"]["span_count"]) == 1


def test_traces_list_detail_and_recent(client: httpx.Client) -> None:
    base = now_ms() - 10_000
    first = [make_span(trace_id="t-1", ended_ms=base + i, cost="0.01") for i in range(3)]
    second = [make_span(trace_id="t-2", ended_ms=base + 100 + i, model="gpt-4o-mini", cost=None) for i in range(2)]
    post_spans(client, first + second)
    listed = client.get("/traces", params={"limit": 2}).json()["traces"]
    assert [t["trace_id"] for t in listed] == ["t-2", "t-1"]
    assert listed[1]["span_count"] == 3
    assert listed[1]["cost_usd"] == 0.03
    assert listed[1]["models"] == ["gpt-4o"]
    detail = client.get("/traces/t-1").json()
    assert detail["trace_id"] == "t-1"
    assert [s["span_id"] for s in detail["spans"]] == [s.span_id for s in first]
    recent = client.get("/traces/recent", params={"limit": 3}).json()["spans"]
    assert [s["span_id"] for s in recent] == [second[1].span_id, second[0].span_id, first[2].span_id]
    assert list(recent[0])[:4] == ["trace_id", "span_id", "name", "model"]


def test_traces_lists_as_many_as_asked_when_traces_are_long(client: httpx.Client) -> None:
    base = now_ms() - 100_000
    spans = [
        make_span(trace_id=f"t-{t:02}", ended_ms=base + t * 1000 + i, latency=1) for t in range(25) for i in range(60)
    ]
    assert post_spans(client, spans).status_code == 202
    listed = client.get("/traces", params={"limit": 20}).json()["traces"]  # what the dashboard asks for
    assert [t["trace_id"] for t in listed] == [f"t-{t:02}" for t in range(24, 4, -1)]
    assert {t["span_count"] for t in listed} == {60}


def test_traces_filter_by_model(client: httpx.Client) -> None:
    post_spans(client, [make_span(trace_id="t-a", model="gpt-4o"), make_span(trace_id="t-b", model="o3-mini")])
    assert [t["trace_id"] for t in client.get("/traces", params={"model": "o3-mini"}).json()["traces"]] == ["t-b"]
    spans = client.get("/traces/recent", params={"model": "gpt-4o"}).json()["spans"]
    assert [s["trace_id"] for s in spans] == ["t-a"]


def test_unknown_trace_is_404(client: httpx.Client) -> None:
    response = client.get("/traces/no-such-trace")
    assert response.status_code == 404
    assert response.json() == {"error": "no trace with trace_id 'no-such-trace' is stored"}


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/metrics/cost", {"window": "banana"}, "window"),
        ("/metrics/cost", {"window": "-1h"}, "window"),
        ("/metrics/latency", {"window": "0s"}, "window"),
        ("/metrics/latency", {"window": "31d"}, "window"),
        ("/metrics/tokens", {"window": ""}, "window"),
        ("/metrics/errors", {"model": "m" * 2000}, "model"),
        ("/metrics/timeseries", {"step": "banana"}, "step"),
        ("/metrics/timeseries", {"window": "1h", "step": "2h"}, "step"),
        ("/metrics/timeseries", {"window": "7d", "step": "1s"}, "step"),
        ("/traces", {"limit": "0"}, "limit"),
        ("/traces", {"limit": "abc"}, "limit"),
        ("/traces/recent", {"limit": "1001"}, "limit"),
        ("/traces/recent", {"limit": "9" * 5000}, "limit"),
    ],
)
def test_bad_query_is_400_naming_the_parameter(client: httpx.Client, path: str, params: dict, named: str) -> None:
    response = client.get(path, params=params)
    assert response.status_code == 400
    body = response.json()
    assert list(body) == ["error"]
    assert body["error"].startswith(named)


def test_unknown_path_and_method_answer_json(client: httpx.Client) -> None:
    assert client.get("/nope").json() == {"error": "Not Found"}
    response = client.delete("/metrics/cost")
    assert response.status_code == 405
    assert response.json() == {"error": "Method Not Allowed"}


def test_openapi_lists_every_route(collector: Collector, client: httpx.Client) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    routes = {route.path for route in collector.app.routes}  # type: ignore[attr-defined]
    assert set(doc["paths"]) == routes
    assert "security" not in doc


def test_alerts_lists_rules_and_states(tmp_path: Path) -> None:
    rule = tokentrace.AlertRule(
        name="cost-over-a-cent", metric="total_cost", op=">", threshold=0.01, window="1h",
        delivery=tokentrace.CallbackDelivery(lambda payload: None),
    )  # fmt: skip
    collector = Collector(tmp_path / "a.db", rules=[rule])
    try:
        with running(collector.app) as url, httpx.Client(base_url=url) as http:
            post_spans(http, [make_span(cost="0.02")])
            alerts = http.get("/alerts").json()["alerts"]
    finally:
        collector.close()
    assert [a["name"] for a in alerts] == ["cost-over-a-cent"]


def test_windows_kept_by_the_first_format_are_taken_back(tmp_path: Path) -> None:
    kept_at = 1_773_586_800.5  # when tests/data/windows-state-format-1.msgpack was written (see its test)
    Collector(tmp_path / "k.db", clock=lambda: kept_at).close()
    with sqlite3.connect(tmp_path / "k.db") as db:
        saved = (Path(__file__).parents[1] / "data" / "windows-state-format-1.msgpack").read_bytes()
        assert db.execute("UPDATE meta SET value = ? WHERE key = 'windows'", (saved,)).rowcount == 1
    collector = Collector(tmp_path / "k.db", clock=lambda: kept_at)
    try:
        assert collector.restored
        with running(collector.app) as url, httpx.Client(base_url=url) as http:
            cost = _json(http.get("/metrics/cost"))
            latency = http.get("/metrics/latency").json()
    finally:
        collector.close()
    assert (cost["by_model"], cost["unpriced_count"]) == ({"gpt-4o": Decimal("0.0224"), "made-up": None}, 5)
    assert (latency["p50_ms"], latency["p99_ms"], latency["span_count"]) == (996.41, 2018.31, 10)


def test_restarted_collector_answers_as_it_did_before_over_every_window(tmp_path: Path) -> None:
    rng = random.Random(5)
    now = now_ms()
    # seconds ago, each range well inside or outside every window asked (edges move on meanwhile)
    ages = [rng.uniform(*rng.choice([(5, 40), (90, 3000), (3700, 80_000), (90_000, 250_000)])) for _ in range(400)]
    spans = [
        msgspec.structs.replace(
            s, started_at=now - round(age * 1000) - (s.latency_ms or 0), ended_at=now - round(age * 1000)
        )
        for s, age in zip(mixed_spans(400), ages, strict=True)
    ]
    queries = [
        (path, {"window": window, **filters})
        for path in ("/metrics/cost", "/metrics/latency")
        for window in ("1m", "1h", "24h", "7d")
        for filters in ({}, {"model": "gpt-4o"}, {"name": "classify"})
    ]

    def answers(collector: Collector) -> list[dict]:
        with running(collector.app) as url, httpx.Client(base_url=url) as http:
            return [_json(http.get(path, params=params)) for path, params in queries]

    first = Collector(tmp_path / "r.db")
    try:
        with running(first.app) as url, httpx.Client(base_url=url) as http:
            assert post_spans(http, spans).status_code == 202
        before = answers(first)
    finally:
        first.close()
    second = Collector(tmp_path / "r.db")
    try:
        assert (second.restored, second.loaded) == (True, 400)  # taken back as kept at the clean stop
        after = answers(second)
    finally:
        second.close()
    with sqlite3.connect(tmp_path / "r.db") as db:  # as if the kept windows could not be read
        db.execute("UPDATE meta SET value = x'00' WHERE key = 'windows'")
    third = Collector(tmp_path / "r.db")
    try:
        assert (third.restored, third.loaded) == (False, 400)  # rebuilt from the stored spans
        rebuilt = answers(third)
    finally:
        third.close()
    assert after == before
    assert rebuilt == before
    totals = {
        params["window"]: body
        for (path, params), body in zip(queries, before, strict=True)
        if path == "/metrics/cost" and len(params) == 1
    }
    limits = {"1m": 60, "1h": 3600, "24h": 86400, "7d": 7 * 86400}
    assert {w: body["span_count"] for w, body in totals.items()} == {
        w: sum(age < limit for age in ages) for w, limit in limits.items()
    }
    assert totals["7d"]["span_count"] == 400
    assert totals["7d"]["total_usd"] == _sum_cost(spans)


def test_embedded_server_answers_before_the_tracer_returns() -> None:
    tracer = tokentrace.Tracer(http_server=tokentrace.HTTPServerConfig(addr="127.0.0.1:0"))
    try:
        url = tracer._server.url
        assert "tokentrace.http" in {t.name for t in threading.enumerate()}
        assert httpx.get(url + "/health").json() == {"status": "ok"}
        with tracer.trace("summarize-document") as trace:
            trace.record(tokentrace.Span(model="gpt-4o", provider="openai", prompt_tokens=512, comp_tokens=128,
                                         latency_ms=1240, cost=0.00448))  # fmt: skip
        body = httpx.get(url + "/metrics/cost", params={"window": "1h"}).json()
        assert body["total_usd"] == 0.00448
        assert body["span_count"] == 1
        assert httpx.get(url + "/traces").json()["traces"][0]["name"] == "summarize-document"
    finally:
        tracer.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/health")


def test_embedded_server_keeps_a_bounded_ring() -> None:
    tracer = tokentrace.Tracer(http_server=tokentrace.HTTPServerConfig(addr="127.0.0.1:0", max_spans=5))
    try:
        for i in range(8):
            with tracer.trace(f"job-{i}") as trace:
                trace.record(tokentrace.Span(model="gpt-4o", provider="openai", prompt_tokens=1, comp_tokens=1))
        tracer.flush()
        spans = httpx.get(tracer._server.url + "/traces/recent", params={"limit": 100}).json()["spans"]
    finally:
        tracer.close()
    assert [s["name"] for s in spans] == ["job-7", "job-6", "job-5", "job-4", "job-3"]


def test_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on '127.0.0.1:{port}'"):
            tokentrace.Tracer(http_server=tokentrace.HTTPServerConfig(addr=f"127.0.0.1:{port}"))


def test_error_spans_are_counted(client: httpx.Client) -> None:
    post_spans(client, [make_span(status=Status.ERROR), make_span()])
    assert client.get("/metrics/errors").json()["error_rate"] == 0.5
