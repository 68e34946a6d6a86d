"""Clients of the real SDKs pointed at other providers' compatible APIs name those providers and
are priced at their rates. The requests go to the local fake provider whatever host the client
was given (a transport that redirects them), so the SDK builds them exactly as for that host."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import anthropic
import openai
import pytest

try:  # the HTTP client the SDKs are built on: httpx2 in the newer ones
    import httpx2 as http
except ImportError:  # pragma: no cover - older SDKs
    import httpx as http

from tests.fakes.providers import ProviderServer
from tokentrace import Span
from tokentrace.integrations import _calls
from tokentrace.pricing import price_span

MESSAGES: list[Any] = [{"role": "user", "content": "Say hello"}]


class Redirect(http.BaseTransport):
    """Sends every request to the fake provider, keeping its path."""

    def __init__(self, target: str) -> None:
        self.target = http.URL(target)
        self.inner = http.HTTPTransport()

    def handle_request(self, request: Any) -> Any:
        request.url = request.url.copy_with(scheme=self.target.scheme, host=self.target.host, port=self.target.port)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def redirected(server: ProviderServer) -> Iterator[Any]:
    with http.Client(transport=Redirect(server.url)) as client:
        yield client


def calls_at(monkeypatch: pytest.MonkeyPatch, hour: int) -> None:
    """Instrumented calls start at ``hour`` UTC today, as their spans say (DeepSeek's rates are
    half from 16:30 to 00:30 UTC)."""
    moment = datetime.now(timezone.utc).replace(hour=hour, minute=0, second=0, microsecond=0)
    ns = round(moment.timestamp()) * 1_000_000_000
    monkeypatch.setattr(_calls, "time", SimpleNamespace(time_ns=lambda: ns, time=time.time, sleep=time.sleep))


@pytest.fixture
def at_noon(monkeypatch: pytest.MonkeyPatch) -> None:
    calls_at(monkeypatch, 12)


@pytest.mark.usefixtures("at_noon")
@pytest.mark.parametrize(
    ("base_url", "model", "provider", "cost"),
    [
        # 1000 in (all at the input rate: no cache rates) x $0.59 + 100 out x $0.79 per Mtok
        ("https://api.groq.com/openai/v1", "llama-3.3-70b-versatile", "groq", Decimal("0.000669")),
        # DeepSeek's usage: 200 cache misses x $0.27 + 800 cache hits x $0.07 + 100 out x $1.10
        ("https://api.deepseek.com/v1", "deepseek-chat", "deepseek", Decimal("0.00022")),
        ("https://api.together.xyz/v1", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "together", Decimal("0.000968")),
    ],
)
def test_an_openai_client_at_another_providers_api_names_it_and_takes_its_prices(
    redirected: Any, traced: tuple[Any, list[Span]], base_url: str, model: str, provider: str, cost: Decimal
) -> None:
    client = traced[0].instrument(openai.OpenAI(base_url=base_url, api_key="k", max_retries=0, http_client=redirected))
    client.chat.completions.create(model=model, messages=MESSAGES)
    list(client.chat.completions.create(model=model, messages=MESSAGES, stream=True))
    for span in traced[1]:
        assert (span.provider, span.model, span.cost) == (provider, model, cost)
        assert (span.prompt_tokens, span.comp_tokens) == (1000, 100)
    assert len(traced[1]) == 2


def test_a_copy_made_for_another_providers_api_names_that_provider(
    redirected: Any, traced: tuple[Any, list[Span]]
) -> None:
    client = traced[0].instrument(
        openai.OpenAI(base_url="https://api.openai.com/v1", api_key="k", max_retries=0, http_client=redirected)
    )
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    client.with_options(base_url="https://api.groq.com/openai/v1").chat.completions.create(
        model="llama-3.3-70b-versatile", messages=MESSAGES
    )
    assert [(s.provider, s.cost) for s in traced[1]] == [("openai", Decimal("0.0025")), ("groq", Decimal("0.000669"))]


def test_deepseek_calls_in_its_off_peak_hours_cost_half(
    redirected: Any, traced: tuple[Any, list[Span]], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls_at(monkeypatch, 20)
    raw = openai.OpenAI(base_url="https://api.deepseek.com/v1", api_key="k", max_retries=0, http_client=redirected)
    traced[0].instrument(raw).chat.completions.create(model="deepseek-chat", messages=MESSAGES)
    [span] = traced[1]
    assert (span.cached_tokens, span.cost) == (800, Decimal("0.00011"))


@pytest.mark.usefixtures("at_noon")
def test_an_anthropic_client_at_another_providers_api_names_it(redirected: Any, traced: tuple[Any, list[Span]]) -> None:
    raw = anthropic.Anthropic(
        base_url="https://api.deepseek.com/anthropic", api_key="k", max_retries=0, http_client=redirected
    )
    traced[0].instrument(raw).messages.create(model="deepseek-chat", max_tokens=64, messages=MESSAGES)
    [span] = traced[1]
    assert (span.provider, span.model, span.prompt_tokens, span.comp_tokens) == ("deepseek", "deepseek-chat", 2600, 200)
    # 100 uncached x $0.27 + 2000 cache reads x $0.07 + 300 five-minute writes x $0.27 + 200 one-hour
    # writes at twice the input rate (no rate of its own) + 200 out x $1.10, per Mtok
    assert span.cost == Decimal("0.000576")


def test_a_client_at_a_server_the_table_does_not_know_keeps_the_sdks_provider(
    server: ProviderServer, traced: tuple[Any, list[Span]]
) -> None:
    with openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as raw:
        traced[0].instrument(raw).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    [span] = traced[1]
    assert (span.provider, span.cost) == ("openai", Decimal("0.0025"))


def test_the_openai_module_at_another_providers_api_names_it(
    redirected: Any, traced: tuple[Any, list[Span]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (("api_key", "k"), ("base_url", "https://api.groq.com/openai/v1/"), ("http_client", redirected)):
        monkeypatch.setattr(openai, name, value)
    openai._reset_client()
    try:
        traced[0].instrument(openai).chat.completions.create(model="llama-3.3-70b-versatile", messages=MESSAGES)
    finally:
        openai._reset_client()  # the module's next client is made afresh
    assert [(s.provider, s.cost) for s in traced[1]] == [("groq", Decimal("0.000669"))]


@pytest.mark.parametrize(
    ("model", "completion", "reasoning", "attributes", "cost", "table_cost"),
    [
        # what Perplexity billed: 1000 in x $1 + 100 out x $1 per Mtok, and the fee per call for the
        # low search context the call used, $5 per thousand calls; the table's, $12, is the highest
        ("sonar", 100, None, {}, Decimal("0.0061"), Decimal("0.0131")),
        # reported without a cost: 1000 in x $2, 100 out x $8, 5000 reasoning x $3, 2000 citation
        # tokens x $2 per Mtok, and 3 searches at $5 per thousand: Perplexity reports the reasoning
        # and citations beside the output
        (
            "sonar-deep-research",
            7100,
            5000,
            {"tokentrace.usage.web_searches": 3, "tokentrace.usage.citation_tokens": 2000},
            Decimal("0.0368"),
            Decimal("0.0368"),
        ),
    ],
)
def test_perplexity_calls_cost_what_it_billed_else_their_fee_per_call_reasoning_citations_and_searches(
    redirected: Any,
    traced: tuple[Any, list[Span]],
    model: str,
    completion: int,
    reasoning: int | None,
    attributes: dict[str, int],
    cost: Decimal,
    table_cost: Decimal,
) -> None:
    client = traced[0].instrument(
        openai.OpenAI(base_url="https://api.perplexity.ai", api_key="k", max_retries=0, http_client=redirected)
    )
    client.chat.completions.create(model=model, messages=MESSAGES)
    list(client.chat.completions.create(model=model, messages=MESSAGES, stream=True))
    assert len(traced[1]) == 2
    for span in traced[1]:
        source = "provider" if cost != table_cost else "genai-prices"
        assert (span.provider, span.model, span.cost, span.cost_source) == ("perplexity", model, cost, source)
        assert (span.prompt_tokens, span.comp_tokens, span.reasoning_tokens) == (1000, completion, reasoning)
        usage = {key: value for key, value in span.attributes.items() if key.startswith("tokentrace.usage")}
        assert usage == attributes
        again = Span(model=model, provider="perplexity", prompt_tokens=1000, comp_tokens=completion,
                     reasoning_tokens=reasoning, attributes=span.attributes)  # fmt: skip
        assert price_span(again) and again.cost == table_cost  # as a collector prices a span sent without cost


@pytest.mark.parametrize(
    ("base_url", "model", "provider", "cost", "source", "output"),
    [
        # what OpenRouter billed; the table says 0.0025
        ("https://openrouter.ai/api/v1", "openai/gpt-4o", "openrouter", Decimal("0.00213"), "provider", (100, None)),
        # its fee, and the upstream provider's bill for a call made with the caller's own key there
        ("https://openrouter.ai/api/v1", "anthropic/claude-sonnet-4", "openrouter", Decimal("0.002536"), "provider",
         (100, None)),
        # a cost that is not an amount: the table's price for the counts (the collector's as well)
        ("https://openrouter.ai/api/v1", "meta-llama/llama-3.3-70b-instruct", "openrouter", Decimal("0.000433"),
         "genai-prices", (100, None)),
        # xAI's, in ticks of 1e-10 USD (the table says 0.0072 for its counts); its 300 reasoning tokens,
        # reported beside the 100 completion tokens, are output too
        ("https://api.x.ai/v1", "grok-4", "x_ai", Decimal("0.002134"), "provider", (400, 300)),
    ],
)  # fmt: skip
def test_calls_cost_what_their_provider_reports_they_cost(
    redirected: Any,
    traced: tuple[Any, list[Span]],
    base_url: str,
    model: str,
    provider: str,
    cost: Decimal,
    source: str,
    output: tuple[int, int | None],
) -> None:
    client = traced[0].instrument(openai.OpenAI(base_url=base_url, api_key="k", max_retries=0, http_client=redirected))
    client.chat.completions.create(model=model, messages=MESSAGES)
    list(client.chat.completions.create(model=model, messages=MESSAGES, stream=True))
    spans = traced[1]
    assert [(s.provider, s.model, s.cost, s.cost_source) for s in spans] == [(provider, model, cost, source)] * 2
    assert [
        (s.prompt_tokens, s.cached_tokens, s.cache_write_tokens, (s.comp_tokens, s.reasoning_tokens)) for s in spans
    ] == [(1000, 800, 100, output)] * 2


def test_openrouters_usage_chunk_reaches_the_caller_as_it_always_sends_it(
    server: ProviderServer, redirected: Any, traced: tuple[Any, list[Span]]
) -> None:
    openrouter = "https://openrouter.ai/api/v1"
    with openai.OpenAI(base_url=openrouter, api_key="k", max_retries=0, http_client=redirected) as raw:
        untraced = list(raw.chat.completions.create(model="openai/gpt-4o", messages=MESSAGES, stream=True))
        client = traced[0].instrument(raw)
        chunks = list(client.chat.completions.create(model="openai/gpt-4o", messages=MESSAGES, stream=True))
    assert [(bool(c.choices), c.usage is not None) for c in chunks] == [
        (bool(c.choices), c.usage is not None) for c in untraced
    ]
    assert (chunks[-1].choices, chunks[-1].usage.model_extra["cost"]) == ([], 0.00213)  # the caller's to read
    assert [r.body.get("stream_options") for r in server.requests] == [None, None]  # sent as the caller asked
    [span] = traced[1]
    assert (span.cost, span.cost_source, span.prompt_tokens) == (Decimal("0.00213"), "provider", 1000)


def test_the_openai_module_traced_at_openrouter_and_moved_still_asks_for_its_usage_chunk(
    redirected: Any, traced: tuple[Any, list[Span]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (("api_key", "k"), ("base_url", "https://openrouter.ai/api/v1"), ("http_client", redirected)):
        monkeypatch.setattr(openai, name, value)
    openai._reset_client()
    try:
        traced[0].instrument(openai)
        monkeypatch.setattr(openai, "base_url", "https://api.openai.com/v1/")  # read again on every call
        chunks = list(openai.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    finally:
        openai._reset_client()
    assert all(chunk.choices for chunk in chunks)  # the usage chunk asked for is hidden, as it was not the caller's
    [span] = traced[1]
    assert (span.prompt_tokens, span.comp_tokens) == (1000, 100)
