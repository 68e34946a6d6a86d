"""The dashboard page in a real headless Chromium: charts per model, traces, alerts, the token."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import tokentrace
from tests.collector_kit import make_span, mixed_spans, post_spans, running
from tokentrace.server.collector import Collector
from tokentrace.server.config import hosts_to_check

CHROMIUM = "/usr/bin/chromium"
TOKEN = "dash-token"
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (apt-get install -y chromium)"
)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[str]:
    nowhere = tokentrace.CallbackDelivery(lambda payload: None)
    rules = [
        tokentrace.AlertRule(name="cost-spike", metric="total_cost", op=">", threshold=0.01, window="1h",
                             delivery=nowhere),
        tokentrace.AlertRule(name="slow", metric="latency_avg", op=">", threshold=1.5, window="1h", delivery=nowhere),
    ]  # fmt: skip
    # as `tokentrace serve` on 127.0.0.1 runs it: answering to loopback names only
    collector = Collector(tmp_path / "dash.db", token=TOKEN, rules=rules, allowed_hosts=hosts_to_check("127.0.0.1", ()))
    with running(collector.app) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            assert post_spans(http, mixed_spans(60)).status_code == 202
        yield url
    collector.close()


@pytest.fixture
def page() -> Iterator[object]:
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"],
        )  # fmt: skip
        try:
            yield browser.new_page()
        finally:
            browser.close()


def _loaded(page: object) -> None:
    page.wait_for_selector("body[data-loaded=true]", timeout=15_000)  # type: ignore[attr-defined]


def test_dashboard_shows_models_traces_and_alerts(dashboard: str, page: object) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))  # type: ignore[attr-defined]
    page.goto(f"{dashboard}/#token={TOKEN}")  # type: ignore[attr-defined]
    _loaded(page)
    models = page.eval_on_selector_all(  # type: ignore[attr-defined]
        "#chart-cost polyline", "lines => lines.map(l => l.dataset.model).sort()"
    )
    assert models == ["claude-sonnet-4-5", "gpt-4o", "gpt-4o-mini"]
    assert page.locator("#traces tbody tr.trace").count() == 15  # type: ignore[attr-defined]
    assert page.locator("#alerts tbody tr[data-alert=cost-spike] .state").inner_text() == "firing"  # type: ignore[attr-defined]
    assert page.locator("#kpi-spans").inner_text() == "60"  # type: ignore[attr-defined]
    slow = page.eval_on_selector_all(  # type: ignore[attr-defined]
        "#alerts tbody tr[data-alert=slow] td.num", "cells => cells.map(c => c.textContent)"
    )
    spans = mixed_spans(60)  # the same seed: the same latencies
    average = sum(s.latency_ms or 0 for s in spans) / 60
    assert slow == [str(float(f"{average:.6g}")), "> 1.5"]  # six significant digits, not the float's seventeen
    spend = page.eval_on_selector_all(  # type: ignore[attr-defined]
        "#spend-provider tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    # 20 of each model: claude-sonnet-4-5 at $0.0123 (anthropic), gpt-4o at $0.00448 and gpt-4o-mini
    # at $0.000153 (openai), largest first
    assert spend == [["anthropic", "$0.246", "72.6%"], ["openai", "$0.0927", "27.4%"]]
    assert page.locator("#spend-model tbody tr").count() == 3  # type: ignore[attr-defined]
    assert "token" not in page.url  # type: ignore[attr-defined]
    assert all(url.startswith(dashboard) for url in requests), "the page must not load anything from elsewhere"


def test_a_model_without_a_price_shows_an_unknown_cost(dashboard: str, page: object) -> None:
    with httpx.Client(base_url=dashboard, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        assert post_spans(http, [make_span(model="made-up", provider="acme", cost=None)]).status_code == 202
    page.goto(f"{dashboard}/#token={TOKEN}")  # type: ignore[attr-defined]
    _loaded(page)
    spend = page.eval_on_selector_all(  # type: ignore[attr-defined]
        "#spend-model tbody tr, #spend-provider tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    assert ["made-up", "unknown", "\N{EN DASH}"] in spend and ["acme", "unknown", "\N{EN DASH}"] in spend
    lines = page.eval_on_selector_all(  # type: ignore[attr-defined]
        "#chart-cost polyline", "lines => lines.map(l => [l.dataset.model, l.getAttribute('points').includes('NaN')])"
    )
    assert sorted(lines) == [[m, False] for m in ("claude-sonnet-4-5", "gpt-4o", "gpt-4o-mini", "made-up")]


def test_a_trace_row_opens_its_spans(dashboard: str, page: object) -> None:
    page.goto(f"{dashboard}/#token={TOKEN}")  # type: ignore[attr-defined]
    _loaded(page)
    page.locator("#traces tbody tr.trace").first.click()  # type: ignore[attr-defined]
    page.wait_for_selector("#traces tr.detail div")  # type: ignore[attr-defined]
    assert page.locator("#traces tr.detail div").count() == 4  # type: ignore[attr-defined]


def test_without_the_fragment_the_page_asks_for_the_token(dashboard: str, page: object) -> None:
    asked: list[str] = []

    def answer(dialog: object) -> None:
        asked.append(dialog.message)  # type: ignore[attr-defined]
        dialog.accept(TOKEN)  # type: ignore[attr-defined]

    page.on("dialog", answer)  # type: ignore[attr-defined]
    page.goto(dashboard + "/dashboard")  # type: ignore[attr-defined]
    _loaded(page)
    assert asked == ["tokentrace bearer token"]
    assert page.locator("#kpi-spans").inner_text() == "60"  # type: ignore[attr-defined]


def test_the_page_opened_as_localhost_loads_too(dashboard: str, page: object) -> None:
    """Its requests carry ``Host: localhost:PORT``, a loopback name the server answers to."""
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))  # type: ignore[attr-defined]
    page.goto(dashboard.replace("127.0.0.1", "localhost") + f"/#token={TOKEN}")  # type: ignore[attr-defined]
    _loaded(page)
    assert page.locator("#kpi-spans").inner_text() == "60"  # type: ignore[attr-defined]
    assert len(requests) > 1 and all(url.startswith("http://localhost:") for url in requests)
