"""Two separate processes send through HTTPTransport to one collector: its totals are the sum of
what each process saw in its own windows."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx

from tests.collector_kit import CollectorProcess

PROGRAM = """
import json, random, sys
import tokentrace

url, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
models = [("gpt-4o", "openai"), ("gpt-4o-mini", "openai"), ("claude-haiku-4-5", "anthropic")]
tracer = tokentrace.Tracer(transport=tokentrace.HTTPTransport(url, max_batch=200))
for i in range(400):
    with tracer.trace(f"service-{seed}") as trace:
        for _ in range(rng.randint(1, 3)):
            model, provider = rng.choice(models)
            failed = rng.random() < 0.05
            trace.record(tokentrace.Span(
                model=model, provider=provider, prompt_tokens=rng.randint(1, 6000),
                comp_tokens=rng.randint(0, 900), latency_ms=rng.randint(40, 9000),
                status=tokentrace.Status.ERROR if failed else tokentrace.Status.OK,
            ))
assert tracer.flush(60)
m = tracer.metrics("1h")
print(json.dumps({
    "span_count": m.span_count, "error_count": m.error_count, "prompt_tokens": m.prompt_tokens,
    "comp_tokens": m.comp_tokens, "total_cost": str(m.total_cost),
    "by_model": {k: str(v) for k, v in m.cost_by_model.items()}, "written": tracer.stats()["written"],
}))
tracer.close()
"""


def test_two_processes_add_up_at_the_collector(tmp_path: Path) -> None:
    collector = CollectorProcess(tmp_path / "shared.db")
    try:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", PROGRAM, collector.url, str(seed)], stdout=subprocess.PIPE, text=True
            )
            for seed in (1, 2)
        ]
        seen = []
        for proc in procs:
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0
            seen.append(json.loads(out))
        with httpx.Client(base_url=collector.url) as http:
            cost = json.loads(http.get("/metrics/cost", params={"window": "1h"}).text, parse_float=Decimal)
            tokens = http.get("/metrics/tokens", params={"window": "1h"}).json()
            errors = http.get("/metrics/errors", params={"window": "1h"}).json()
    finally:
        collector.stop()

    assert all(s["written"] == s["span_count"] for s in seen)
    assert cost["span_count"] == sum(s["span_count"] for s in seen)
    assert cost["total_usd"] == sum(Decimal(s["total_cost"]) for s in seen)
    models = {m for s in seen for m in s["by_model"]}
    assert cost["by_model"] == {m: sum(Decimal(s["by_model"].get(m, "0")) for s in seen) for m in models}
    assert tokens["prompt_tokens"] == sum(s["prompt_tokens"] for s in seen)
    assert tokens["comp_tokens"] == sum(s["comp_tokens"] for s in seen)
    assert errors["error_count"] == sum(s["error_count"] for s in seen)
