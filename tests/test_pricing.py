"""Prices from genai-prices, cached tokens, usage shapes and user overrides."""

from __future__ import annotations

import decimal
import logging
import math
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import msgspec
import pydantic
import pytest

import tokentrace
from tokentrace import Span
from tokentrace.pricing import Usage, normalize_usage, price, price_span, resolve
from tokentrace.testing import capture_spans

# (model, provider, prompt (incl. cached), cached, cache_write, completion, expected USD)
TABLE = [
    ("gpt-4o", None, 512, 0, 0, 128, "0.00256"),
    ("gpt-4o-2024-05-13", None, 512, 0, 0, 128, "0.00448"),
    ("gpt-4o", None, 1000, 800, 0, 100, "0.0025"),
    ("gpt-4o-mini", None, 1000, 0, 0, 1000, "0.00075"),
    ("gpt-4o-mini", None, 10000, 5000, 0, 0, "0.001125"),
    ("gpt-4.1", None, 1_000_000, 0, 0, 0, "2"),
    ("gpt-4.1", None, 2000, 1000, 0, 500, "0.0065"),
    ("gpt-4.1-mini", None, 1000, 0, 0, 1000, "0.002"),
    ("o3-mini", None, 1000, 500, 0, 2000, "0.009625"),
    ("claude-sonnet-4-5", "anthropic", 1300, 1000, 200, 50, "0.0021"),
    ("claude-3-5-haiku-latest", "anthropic", 1000, 0, 0, 1000, "0.0048"),
    ("claude-opus-4-1", "anthropic", 1000, 0, 0, 100, "0.0225"),
    ("claude-3-haiku-20240307", "anthropic", 2000, 1000, 0, 1000, "0.00153"),
    ("claude-sonnet-4-5", "anthropic", 300_000, 0, 0, 1000, "1.8225"),  # the >200k tier
    ("gemini-2.5-pro", "google", 1000, 0, 0, 100, "0.00225"),
    ("gemini-2.5-pro", "google", 300_000, 0, 0, 100, "0.7515"),
    ("gemini-2.5-flash", "google", 1000, 0, 0, 1000, "0.0028"),
    ("gemini-2.0-flash", "google", 1000, 0, 0, 1000, "0.0005"),
]


@pytest.mark.parametrize(("model", "provider", "prompt", "cached", "write", "completion", "expected"), TABLE)
def test_price_table(
    model: str, provider: str | None, prompt: int, cached: int, write: int, completion: int, expected: str
) -> None:
    usage = Usage(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached, cache_write_tokens=write)
    assert price(model, usage, provider=provider) == Decimal(expected)
    assert tokentrace.cost(model, usage, provider=provider) == float(expected)


def test_agrees_with_genai_prices_for_every_table_row() -> None:
    import genai_prices

    for model, provider, prompt, cached, write, completion, _ in TABLE:
        theirs = genai_prices.calc_price(
            genai_prices.Usage(
                input_tokens=prompt, cache_read_tokens=cached, cache_write_tokens=write, output_tokens=completion
            ),
            model,
            provider_id=provider,
        ).total_price
        assert price(model, Usage(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached,
                                  cache_write_tokens=write), provider=provider) == theirs, model  # fmt: skip


def test_every_model_of_the_table_costs_what_genai_prices_says() -> None:
    import random

    import genai_prices
    from genai_prices import data_snapshot

    rng = random.Random(20261129)
    moment = datetime(2026, 11, 29, 12, tzinfo=timezone.utc)  # one moment for both: some rates change with the hour
    compared = 0
    for provider in data_snapshot.get_snapshot().providers:
        for model in provider.models:
            for _ in range(3):  # below and above the thresholds of tiered rates (200k, 1M input tokens)
                prompt = rng.choice([rng.randrange(2_000), rng.randrange(100_000, 1_500_000)])
                cached = rng.randrange(prompt + 1) if rng.random() < 0.5 else 0
                written = rng.randrange(prompt - cached + 1) if rng.random() < 0.5 else 0
                completion = rng.randrange(50_000)
                table_usage = genai_prices.Usage(
                    input_tokens=prompt, cache_read_tokens=cached, cache_write_tokens=written, output_tokens=completion
                )
                try:
                    theirs = genai_prices.calc_price(
                        table_usage, model.id, provider_id=provider.id, genai_request_timestamp=moment
                    ).total_price
                except LookupError:  # priced only under conditions (a service tier, a date to come)
                    continue
                usage = Usage(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached,
                              cache_write_tokens=written)  # fmt: skip
                ours = price(model.id, usage, provider=provider.id, at=moment)
                assert ours == theirs, (provider.id, model.id, usage)
                assert tokentrace.cost(model.id, usage, provider=provider.id, at=moment) == float(theirs), model.id
                compared += 1
    assert compared > 6_000


def test_every_digit_of_a_cost_is_kept_and_its_float_is_rounded_once() -> None:
    tokentrace.register_price("my-fine-model", "0.1", "1E-40", request_per_k="0.000000000000000000000000000001")
    try:
        usage = Usage(prompt_tokens=10, completion_tokens=3)
        # $1e-6 of input + 3 x 1e-46 of output + a 1e-33 fee: 43 digits, more than Decimal's default 28
        assert price("my-fine-model", usage) == Decimal("0.0000010000000000000000000000000010000000000003")
        assert tokentrace.cost("my-fine-model", usage) == 1e-6
        tokentrace.register_price("my-float-model", 0.1, 0.7, cache_read_per_mtok=0.01)
        cached = Usage(prompt_tokens=3_000_001, completion_tokens=7, cached_tokens=1_000_000)
        assert price("my-float-model", cached) == Decimal("0.210005")  # (2000001 x 0.1 + 1e6 x 0.01 + 7 x 0.7) / 1e6
        assert tokentrace.cost("my-float-model", cached) == 0.210005
    finally:
        tokentrace.unregister_prices()


def test_usage_shapes_are_normalized() -> None:
    chat = SimpleNamespace(prompt_tokens=1000, completion_tokens=100,
                           prompt_tokens_details=SimpleNamespace(cached_tokens=800),
                           completion_tokens_details=SimpleNamespace(reasoning_tokens=40))  # fmt: skip
    assert normalize_usage(chat) == Usage(
        prompt_tokens=1000, completion_tokens=100, cached_tokens=800, reasoning_tokens=40
    )
    responses = {"input_tokens": 1000, "output_tokens": 100, "input_tokens_details": {"cached_tokens": 800},
                 "output_tokens_details": {"reasoning_tokens": 40}}  # fmt: skip
    assert normalize_usage(responses) == normalize_usage(chat)
    anthropic = SimpleNamespace(input_tokens=100, output_tokens=50, cache_read_input_tokens=1000,
                                cache_creation_input_tokens=200)  # fmt: skip
    assert normalize_usage(anthropic) == Usage(prompt_tokens=1300, completion_tokens=50, cached_tokens=1000,
                                               cache_write_tokens=200)  # fmt: skip
    uncached_anthropic = {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": None,
                          "cache_creation_input_tokens": None}  # fmt: skip
    assert normalize_usage(uncached_anthropic) == Usage(prompt_tokens=10, completion_tokens=5)
    # Anthropic's, without its cache fields: told by its tools' counts, or the batch tier it was billed at
    searched = {"input_tokens": 10, "output_tokens": 5, "server_tool_use": {"web_search_requests": 2}}
    assert normalize_usage(searched) == Usage(prompt_tokens=10, completion_tokens=5, web_searches=2)
    batched = {"input_tokens": 10, "output_tokens": 5, "service_tier": "batch"}
    assert normalize_usage(batched) == Usage(prompt_tokens=10, completion_tokens=5, batch=True)
    with pytest.raises(
        TypeError, match="usage must have prompt_tokens/completion_tokens, input_tokens/output_tokens or seconds"
    ):
        normalize_usage(object())


def test_cached_tokens_are_not_counted_twice() -> None:
    # 1000 input of which 800 cached: 200 at $2.50 + 800 at $1.25 + 100 out at $10 per Mtok.
    usage = {"prompt_tokens": 1000, "completion_tokens": 100, "prompt_tokens_details": {"cached_tokens": 800}}
    assert tokentrace.cost("gpt-4o", usage) == 0.0025


def test_openai_cache_writes_are_read_and_priced_at_the_write_rate() -> None:
    from openai.types.completion_usage import CompletionUsage, PromptTokensDetails

    details = PromptTokensDetails(cached_tokens=600, cache_write_tokens=300)
    chat = CompletionUsage(prompt_tokens=1000, completion_tokens=100, total_tokens=1100, prompt_tokens_details=details)
    expected = Usage(prompt_tokens=1000, completion_tokens=100, cached_tokens=600, cache_write_tokens=300)
    assert normalize_usage(chat) == expected
    responses = {"input_tokens": 1000, "output_tokens": 100,
                 "input_tokens_details": {"cached_tokens": 600, "cache_write_tokens": 300}}  # fmt: skip
    assert normalize_usage(responses) == expected
    tokentrace.register_price("my-cached-model", 1, 2, cache_read_per_mtok="0.1", cache_write_per_mtok="1.25")
    try:
        # 100 uncached at $1 + 600 read at $0.10 + 300 written at $1.25 + 100 out at $2, per Mtok
        assert price("my-cached-model", chat) == Decimal("0.000735")  # at the input rate it would be 0.00066
    finally:
        tokentrace.unregister_prices()


def test_anthropic_one_hour_cache_writes_are_priced_at_their_own_rate() -> None:
    from anthropic.types import CacheCreation
    from anthropic.types import Usage as AnthropicUsage

    creation = CacheCreation(ephemeral_5m_input_tokens=300, ephemeral_1h_input_tokens=200)
    claude = AnthropicUsage(input_tokens=100, output_tokens=200, cache_read_input_tokens=2000,
                            cache_creation_input_tokens=500, cache_creation=creation)  # fmt: skip
    assert normalize_usage(claude) == Usage(prompt_tokens=2600, completion_tokens=200, cached_tokens=2000,
                                            cache_write_tokens=500, cache_write_1h_tokens=200)  # fmt: skip
    # claude-sonnet-4 per Mtok: 100 x $3 + 2000 read x $0.30 + 300 written for 5 min x $3.75
    # + 200 written for 1 h x $6 + 200 out x $15; all 500 writes at $3.75 would be 0.005775
    assert price("claude-sonnet-4-0", claude) == Decimal("0.006225")
    tokentrace.register_price("my-claude", 3, 15, cache_read_per_mtok="0.3", cache_write_per_mtok="3.75")
    tokentrace.register_price("my-claude-1h-rate", 3, 15, cache_read_per_mtok="0.3", cache_write_per_mtok="3.75",
                              cache_write_1h_per_mtok="4.5")  # fmt: skip
    try:  # no one-hour rate given: twice the input rate, as Anthropic bills them
        assert price("my-claude", claude) == Decimal("0.006225")
        assert price("my-claude-1h-rate", claude) == Decimal("0.005925")  # 200 x $4.50
    finally:
        tokentrace.unregister_prices()
    with pytest.raises(ValueError, match="cache_write_1h_per_mtok"):
        tokentrace.register_price("my-claude", 3, 15, cache_write_1h_per_mtok=-1)
    more_than_written = {"input_tokens": 10, "output_tokens": 0, "cache_creation_input_tokens": 5,
                         "cache_creation": {"ephemeral_1h_input_tokens": 9}}  # fmt: skip
    assert normalize_usage(more_than_written).cache_write_1h_tokens == 5
    # a span sent on without its cost, as a collector gets it: its attributes keep the split
    sent = Span(model="claude-sonnet-4-0", provider="anthropic", prompt_tokens=2600, comp_tokens=200,
                cached_tokens=2000, cache_write_tokens=500,
                attributes={"tokentrace.usage.cache_write_1h_tokens": 200})  # fmt: skip
    assert price_span(sent) and sent.cost == Decimal("0.006225")
    sent.attributes = {"tokentrace.usage.cache_write_1h_tokens": 900}  # more than were written: the 500
    assert price_span(sent) and sent.cost == Decimal("0.0069")


def test_audio_tokens_are_priced_at_the_audio_rates() -> None:
    from genai_prices import Usage as TableUsage
    from genai_prices import calc_price
    from openai.types.completion_usage import CompletionTokensDetails, CompletionUsage, PromptTokensDetails

    chat = CompletionUsage(prompt_tokens=1000, completion_tokens=500, total_tokens=1500,
                           prompt_tokens_details=PromptTokensDetails(audio_tokens=600, cached_tokens=0),
                           completion_tokens_details=CompletionTokensDetails(audio_tokens=400))  # fmt: skip
    counts = Usage(prompt_tokens=1000, completion_tokens=500, audio_prompt_tokens=600, audio_completion_tokens=400)
    assert normalize_usage(chat) == counts
    assert normalize_usage(chat.model_dump()) == counts
    # gpt-audio per Mtok: 400 text in x $2.50 + 600 audio in x $32 + 100 text out x $10 + 400 audio out x $64
    table = calc_price(TableUsage(input_tokens=1000, input_audio_tokens=600, output_tokens=500,
                                  output_audio_tokens=400), "gpt-audio", provider_id="openai")  # fmt: skip
    assert price("gpt-audio", chat) == table.total_price == Decimal("0.0468")
    assert tokentrace.cost("gpt-audio", chat) == 0.0468
    assert price("gpt-4o", chat) == Decimal("0.0075")  # no audio rates in the table: the text rates
    # a span keeps the audio in its attributes, whose values may come from anywhere: read back only when counts
    attributes = {"tokentrace.usage.audio_prompt_tokens": 600, "tokentrace.usage.audio_completion_tokens": 400}
    spans = [
        Span(model="gpt-audio", prompt_tokens=1000, comp_tokens=500, attributes=given)
        for given in (attributes, {"tokentrace.usage.audio_prompt_tokens": "600"},
                      {"tokentrace.usage.audio_completion_tokens": -4}, {"tokentrace.usage.audio_prompt_tokens": True})
    ]  # fmt: skip
    for span in spans:
        assert price_span(span)
    assert [span.cost for span in spans] == [Decimal("0.0468")] + [Decimal("0.0075")] * 3
    tokentrace.register_price("my-voice", 1, 2, input_audio_per_mtok=10, output_audio_per_mtok="20")
    try:  # 400 x $1 + 600 x $10 + 100 x $2 + 400 x $20 per Mtok
        assert price("my-voice", counts) == Decimal("0.0146")
        assert price("my-voice", Usage(prompt_tokens=1000, completion_tokens=500)) == Decimal("0.002")
    finally:
        tokentrace.unregister_prices()
    with pytest.raises(ValueError, match="output_audio_per_mtok must be a non-negative number of USD"):
        tokentrace.register_price("my-voice", 1, 2, output_audio_per_mtok="loud")


def test_image_tokens_are_priced_at_the_image_rates() -> None:
    from genai_prices import Usage as TableUsage
    from genai_prices import calc_price
    from openai.types.images_response import Usage as ImagesUsage

    details = {"text_tokens": 40, "image_tokens": 10}
    made = ImagesUsage.model_validate(
        {"input_tokens": 50, "input_tokens_details": details, "output_tokens": 4160, "total_tokens": 4210}
    )
    assert normalize_usage(made) == Usage(prompt_tokens=50, completion_tokens=4160, image_prompt_tokens=10)
    # gpt-image-1 per Mtok: 40 text in x $5 + 10 image in x $10 + 4160 out x $40 (its output rate is for images)
    table = calc_price(TableUsage(input_tokens=50, input_image_tokens=10, output_tokens=4160), "gpt-image-1",
                       provider_id="openai")  # fmt: skip
    assert price("gpt-image-1", made) == table.total_price == Decimal("0.1667")
    split = made.model_copy(update={"output_tokens_details": {"text_tokens": 160, "image_tokens": 4000}})
    # gpt-image-1.5: output text at $10, output images at $32 per Mtok
    assert normalize_usage(split).image_completion_tokens == 4000
    assert price("gpt-image-1.5", split) == Decimal("0.12988")  # 40 x 5 + 10 x 8 + 160 x 10 + 4000 x 32
    kept = {"tokentrace.usage.image_prompt_tokens": 10, "tokentrace.usage.image_completion_tokens": 4000}
    span = Span(model="gpt-image-1.5", prompt_tokens=50, comp_tokens=4160, attributes=kept)
    assert price_span(span) and span.cost == Decimal("0.12988")
    tokentrace.register_price("my-painter", 1, 2, input_image_per_mtok=3, output_image_per_mtok="4")
    try:  # 40 x $1 + 10 x $3 + 160 x $2 + 4000 x $4 per Mtok
        assert price("my-painter", split) == Decimal("0.01639")
    finally:
        tokentrace.unregister_prices()


def test_transcriptions_are_priced_by_tokens_or_by_the_length_of_the_audio() -> None:
    from openai.types.audio.transcription import UsageDuration, UsageTokens

    details = {"text_tokens": 200, "audio_tokens": 1000}
    tokens = UsageTokens.model_validate(
        {
            "type": "tokens",
            "input_tokens": 1200,
            "output_tokens": 300,
            "total_tokens": 1500,
            "input_token_details": details,
        }
    )
    assert normalize_usage(tokens) == Usage(prompt_tokens=1200, completion_tokens=300, audio_prompt_tokens=1000)
    assert price("gpt-4o-transcribe", tokens) == Decimal("0.0095")  # 200 x $2.50 + 1000 x $6 + 300 x $10 per Mtok
    length = UsageDuration(type="duration", seconds=61.3)
    assert normalize_usage(length) == Usage(audio_ms=61_300)
    assert price("whisper-1", length) == Decimal("0.00613")  # $0.36 an hour, to the millisecond
    assert tokentrace.cost("whisper-1", {"seconds": 30}) == 0.003
    span = Span(model="whisper-1", attributes={"tokentrace.usage.audio_ms": 61_300})
    assert price_span(span) and span.cost == Decimal("0.00613")
    tokentrace.register_price("my-listener", 0, 0, audio_per_hour="0.5")
    try:
        assert price("my-listener", length) == Decimal("0.008513888889")  # 61.3 s of $0.50 an hour, to 1e-12 USD
    finally:
        tokentrace.unregister_prices()
    with pytest.raises(TypeError, match="input_tokens/output_tokens or seconds"):
        normalize_usage({"seconds": "long"})


def test_text_read_out_is_priced_by_its_characters() -> None:
    read_out = Usage(input_characters=2000)
    assert (price("tts-1", read_out), price("tts-1-hd", read_out)) == (Decimal("0.03"), Decimal("0.06"))  # $15, $30/M
    span = Span(model="tts-1", attributes={"tokentrace.usage.input_characters": 2000})
    assert price_span(span) and span.cost == Decimal("0.03")
    tokentrace.register_price("my-voice", 0, 0, input_per_mchars=20)
    try:
        assert price("my-voice", read_out) == Decimal("0.04")
    finally:
        tokentrace.unregister_prices()


def test_searches_of_the_providers_tools_are_priced_per_thousand() -> None:
    from anthropic.types import ServerToolUsage
    from anthropic.types import Usage as AnthropicUsage

    claude = AnthropicUsage(input_tokens=1000, output_tokens=100, cache_read_input_tokens=0,
                            server_tool_use=ServerToolUsage(web_search_requests=3, web_fetch_requests=2))  # fmt: skip
    assert normalize_usage(claude) == Usage(prompt_tokens=1000, completion_tokens=100, web_searches=3)
    assert normalize_usage(claude.model_dump()).web_searches == 3
    # claude-sonnet-4-5 per Mtok: 1000 in x $3 + 100 out x $15, and 3 searches at $10 per thousand
    assert price("claude-sonnet-4-5", claude) == Decimal("0.0345")
    # gpt-4o: 2 web searches at $10 per thousand, 4 file searches at $2.50
    searched = Usage(prompt_tokens=1000, completion_tokens=100, web_searches=2, file_searches=4)
    assert price("gpt-4o", searched) == Decimal("0.0335")
    spans = [
        Span(model="gpt-4o", prompt_tokens=1000, comp_tokens=100, attributes=given)
        for given in ({"tokentrace.usage.web_searches": 2, "tokentrace.usage.file_searches": 4},
                      {"tokentrace.usage.web_searches": 2.5}, {"tokentrace.usage.file_searches": "4"})
    ]  # fmt: skip
    for span in spans:
        assert price_span(span)
    assert [span.cost for span in spans] == [Decimal("0.0335"), Decimal("0.0035"), Decimal("0.0035")]
    tokentrace.register_price("my-searcher", 1, 2, web_search_per_k=5, file_search_per_k="0.5")
    try:  # 1000 x $1 + 100 x $2 per Mtok, 2 x $0.005 + 4 x $0.0005
        assert price("my-searcher", searched) == Decimal("0.0132")
        assert price("my-searcher", Usage(prompt_tokens=1000, completion_tokens=100)) == Decimal("0.0012")
    finally:
        tokentrace.unregister_prices()
    with pytest.raises(ValueError, match="web_search_per_k must be a non-negative number of USD"):
        tokentrace.register_price("my-searcher", 1, 2, web_search_per_k=-10)


def test_a_span_with_audio_records_it_and_is_priced_when_it_ends() -> None:
    usage = {"prompt_tokens": 1000, "completion_tokens": 500, "prompt_tokens_details": {"audio_tokens": 600},
             "completion_tokens_details": {"audio_tokens": 400}}  # fmt: skip
    with capture_spans() as (tracer, spans):
        with tracer.trace("voice") as trace, trace.span(model="gpt-audio", provider="openai") as call:
            call.set_usage(usage)
    [span] = spans
    assert span.cost == Decimal("0.0468")
    assert span.attributes == {
        "tokentrace.usage.audio_prompt_tokens": 600,
        "tokentrace.usage.audio_completion_tokens": 400,
    }


def test_unknown_model_is_none_and_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tokentrace.pricing")
    usage = Usage(prompt_tokens=10, completion_tokens=10)
    assert tokentrace.cost("acme-secret-model-1", usage) is None
    assert tokentrace.cost("acme-secret-model-1", usage) is None
    warnings = [r for r in caplog.records if "acme-secret-model-1" in r.getMessage()]
    assert len(warnings) == 1


def test_register_price_wins_over_the_table_and_prices_new_models() -> None:
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000, cached_tokens=500_000)
    tokentrace.register_price("my-finetune-*", "1", "2", cache_read_per_mtok="0.1")
    assert price("my-finetune-v3", usage) == Decimal("2.55")
    tokentrace.register_price("gpt-4o", 1, 1)
    assert price("gpt-4o", usage) == Decimal("2")
    tokentrace.unregister_prices()
    assert price("gpt-4o", usage) == Decimal("11.875")


@pytest.mark.parametrize(
    ("args", "message"),
    [(("m", -1, 1), "input_per_mtok must be a non-negative number of USD"),
     (("m", 1, "lots"), "output_per_mtok must be a non-negative number of USD"),
     (("m", True, 2), "input_per_mtok must be a non-negative number of USD, got True"),
     (("m", 1, "1E-101"), r"output_per_mtok must have at most 100 decimal places and be under 1E\+31 USD, got '1E-1"),
     (("m", 1e-300, 2), r"input_per_mtok must have at most 100 decimal places and be under 1E\+31 USD, got 1e-300")],
)  # fmt: skip
def test_register_price_rejects_bad_prices(args: tuple[str, object, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tokentrace.register_price(*args)  # type: ignore[arg-type]


def test_register_price_rejects_flags_for_prices_and_names_that_are_not_str() -> None:
    with pytest.raises(ValueError, match="cache_read_per_mtok must be a non-negative number of USD, got False"):
        tokentrace.register_price("m", 1, 2, cache_read_per_mtok=False)
    for pattern in (None, ("gpt-4o",)):
        with pytest.raises(TypeError, match="model_pattern must be a str"):
            tokentrace.register_price(pattern, 1, 2)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"provider must be a str .* or None, got int"):
        tokentrace.register_price("m", 1, 2, provider=5)  # type: ignore[arg-type]
    assert price("m", Usage(prompt_tokens=1)) is None  # none of them was registered


def test_provider_the_table_does_not_know_falls_back_to_the_model_name() -> None:
    assert price("gpt-4o", Usage(prompt_tokens=512, completion_tokens=128), provider="my-proxy") == Decimal("0.00256")


def test_platform_providers_are_priced_from_their_platforms_tables() -> None:
    # OpenTelemetry's names for the platforms, as instrumented clients name them
    tables = {"azure.ai.openai": "azure", "aws.bedrock": "aws", "gcp.vertex_ai": "google"}
    claude = "claude-sonnet-4-20250514"  # the model id Claude's responses carry on every platform
    models = {"azure.ai.openai": "gpt-4o", "aws.bedrock": claude, "gcp.vertex_ai": claude}
    found = {name: resolve(models[name], name) for name in tables}
    assert {name: entry.provider for name, entry in found.items() if entry} == tables
    assert price("gpt-4o", {"prompt_tokens": 1000, "completion_tokens": 100}, provider="azure.ai.openai") == Decimal(
        "0.0035"
    )


def test_a_service_tier_is_priced_at_its_rates() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=100, cached_tokens=800, cache_write_tokens=100)
    # gpt-4o at priority per Mtok: 200 uncached (100 of them cache writes) x $4.25 + 800 cached x
    # $2.125 + 100 out x $17, where the default tier costs $2.50 / $1.25 / $10
    assert price("gpt-4o", usage, service_tier="priority") == Decimal("0.00425")
    assert price("gpt-4o", usage, service_tier="default") == price("gpt-4o", usage) == Decimal("0.0025")
    assert price("gpt-4o", usage, service_tier="scale") == Decimal("0.0025")  # no rates of its own
    # gpt-5: $1.25 / $10 per Mtok, at flex $0.625 / $5
    assert tokentrace.cost("gpt-5", {"prompt_tokens": 1000, "completion_tokens": 100}, service_tier="flex") == 0.001125
    assert tokentrace.cost("gpt-5", {"prompt_tokens": 1000, "completion_tokens": 100}) == 0.00225


def test_anthropic_fast_mode_is_priced_at_its_rates_from_the_usage() -> None:
    usage = {"input_tokens": 1000, "output_tokens": 100, "cache_read_input_tokens": 0, "speed": "fast"}
    assert normalize_usage(usage).speed == "fast"
    # claude-opus-4-8 per Mtok: $5 / $25, in fast mode $10 / $50
    assert price("claude-opus-4-8", usage) == Decimal("0.015")
    assert price("claude-opus-4-8", {**usage, "speed": "standard"}) == Decimal("0.0075")
    assert price("claude-opus-4-8", Usage(prompt_tokens=1000, completion_tokens=100, speed="fast")) == Decimal("0.015")


def test_batch_api_calls_are_priced_at_the_batch_rates() -> None:
    # half the standard rates: gpt-4o $1.25 / $5 per Mtok, claude-sonnet-4-5 $1.50 / $7.50
    assert price("gpt-4o", Usage(prompt_tokens=1000, completion_tokens=100), batch=True) == Decimal("0.00175")
    assert tokentrace.cost("gpt-4o", {"prompt_tokens": 1000, "completion_tokens": 100}, batch=True) == 0.00175
    result = {"input_tokens": 1000, "output_tokens": 100, "cache_read_input_tokens": 0, "service_tier": "batch"}
    assert normalize_usage(result).batch is True  # a message batch's result says so itself
    assert price("claude-sonnet-4-5", result) == Decimal("0.00225")
    assert price("claude-sonnet-4-5", {**result, "service_tier": "standard"}) == Decimal("0.0045")
    spans = [
        Span(model="gpt-4o", prompt_tokens=1000, comp_tokens=100, attributes={"tokentrace.batch": flag})
        for flag in (True, "yes", False)
    ]
    for span in spans:
        assert price_span(span)
    assert [span.cost for span in spans] == [Decimal("0.00175"), Decimal("0.0035"), Decimal("0.0035")]


def test_a_span_is_priced_at_the_service_tier_in_its_attributes() -> None:
    spans = [
        Span(model="gpt-5", prompt_tokens=1000, comp_tokens=100, attributes=attributes)
        for attributes in ({"openai.response.service_tier": "flex"}, {"openai.response.service_tier": 3}, None)
    ]
    for span in spans:
        assert price_span(span)
    assert [span.cost for span in spans] == [Decimal("0.001125"), Decimal("0.00225"), Decimal("0.00225")]


def test_tiers_the_table_has_no_rates_for_do_not_grow_the_cache() -> None:
    from tokentrace import pricing

    spans = [
        Span(model="gpt-4o", prompt_tokens=1000, attributes={"openai.response.service_tier": f"tier-{n}"})
        for n in range(200)
    ]
    price_span(Span(model="gpt-4o", prompt_tokens=1000))
    before = len(pricing._cache)
    for span in spans:
        assert price_span(span)
    assert len(pricing._cache) == before  # all priced as the standard tier, from one entry
    assert {span.cost for span in spans} == {Decimal("0.0025")}


def test_made_up_model_names_cannot_grow_the_cache_without_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    from tokentrace import pricing

    monkeypatch.setattr(pricing, "_MAX_KEPT", 20)
    monkeypatch.setattr(pricing, "_warned", set())
    for n in range(100):
        assert price(f"no-such-model-{n}", Usage(prompt_tokens=1)) is None
        assert len(pricing._cache) <= 20
    assert len(pricing._warned) == 20  # warned once each, for the first ones
    assert price("gpt-4o", Usage(prompt_tokens=1000)) == Decimal("0.0025")


def test_sdk_usage_objects_are_read_fully() -> None:
    from openai.types.completion_usage import CompletionUsage, PromptTokensDetails

    usage = CompletionUsage(prompt_tokens=1000, completion_tokens=100, total_tokens=1100,
                            prompt_tokens_details=PromptTokensDetails(cached_tokens=800))  # fmt: skip
    assert normalize_usage(usage) == Usage(prompt_tokens=1000, completion_tokens=100, cached_tokens=800)
    from anthropic.types import Usage as AnthropicUsage

    claude = AnthropicUsage(input_tokens=100, output_tokens=50, cache_read_input_tokens=1000,
                            cache_creation_input_tokens=200)  # fmt: skip
    assert normalize_usage(claude) == Usage(prompt_tokens=1300, completion_tokens=50, cached_tokens=1000,
                                            cache_write_tokens=200)  # fmt: skip


def test_a_provider_the_table_knows_without_the_model_is_not_priced_at_another_providers_rates() -> None:
    import genai_prices

    usage = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000)
    for model, provider in (("gpt-oss-120b", "baseten"), ("gpt-4o", "anthropic"), ("claude-sonnet-4-5", "openai")):
        with pytest.raises(LookupError):  # genai-prices does not price them either
            genai_prices.calc_price(genai_prices.Usage(input_tokens=10**6), model, provider_id=provider)
        assert price(model, usage, provider=provider) is None, (model, provider)
    assert price("openai/gpt-oss-120b", usage, provider="baseten") == Decimal("0.6")  # baseten's own id and rates
    assert price("gpt-4o", usage, provider="my-gateway") == Decimal("12.5")  # a provider it does not know


def test_counts_that_are_not_counts_are_refused_not_read_as_zero() -> None:
    base = {"prompt_tokens": 1000, "completion_tokens": 100}
    # an integral float, as some JSON decoders give, is that count: 1000 x $2.50 + 100 x $10 per Mtok
    assert price("gpt-4o", {**base, "prompt_tokens": 1000.0}) == Decimal("0.0035")
    cached = {**base, "prompt_tokens_details": {"cached_tokens": 800.0}}
    assert normalize_usage(cached).cached_tokens == 800
    assert price("gpt-4o", cached) == Decimal("0.0025")
    for bad in ("1000", -1000, True, 1000.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"usage\.prompt_tokens must be a non-negative int, got "):
            tokentrace.cost("gpt-4o", {**base, "prompt_tokens": bad})
    with pytest.raises(ValueError, match=r"usage\.prompt_tokens_details\.cached_tokens must be .*got '800'"):
        tokentrace.cost("gpt-4o", {**base, "prompt_tokens_details": {"cached_tokens": "800"}})
    with pytest.raises(ValueError, match=r"usage\.cache_read_input_tokens must be a non-negative int, got -5"):
        normalize_usage({"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": -5})
    with pytest.raises(ValueError, match=r"Usage\.prompt_tokens must be a non-negative int, got -1000"):
        price("gpt-4o", Usage(prompt_tokens=-1000, completion_tokens=100))
    assert price("gpt-4o", Usage(prompt_tokens=1000.0, completion_tokens=100)) == Decimal("0.0035")  # type: ignore[arg-type]


def test_cache_reads_and_writes_beyond_the_input_are_refused() -> None:
    import genai_prices

    with pytest.raises(ValueError, match="cannot exceed"):
        genai_prices.calc_price(genai_prices.Usage(input_tokens=100, cache_read_tokens=1000), "gpt-4o")
    with pytest.raises(ValueError, match="1000 cached and 0 cache-write tokens, more than the 100 input tokens"):
        price("gpt-4o", {"prompt_tokens": 100, "prompt_tokens_details": {"cached_tokens": 1000}})
    with pytest.raises(ValueError, match="60 cached and 50 cache-write tokens, more than the 100 input tokens"):
        price("gpt-4o", Usage(prompt_tokens=100, cached_tokens=60, cache_write_tokens=50))
    assert price("gpt-4o", Usage(prompt_tokens=100, cached_tokens=100)) == Decimal("0.000125")  # all of it cached


def test_seconds_of_audio_must_be_a_finite_length() -> None:
    for bad in (float("inf"), float("nan"), -1.0):
        with pytest.raises(ValueError, match=r"usage\.seconds must be a non-negative finite number"):
            price("whisper-1", {"seconds": bad})
    assert price("whisper-1", {"seconds": 10.0}) == Decimal("0.001")  # $0.36 an hour


def test_any_mapping_is_read_as_a_mapping() -> None:
    from collections import OrderedDict, UserDict

    class Row(dict):  # type: ignore[type-arg]
        pass

    base = {"prompt_tokens": 1000, "completion_tokens": 100}
    for kind in (OrderedDict, UserDict, Row):
        # 200 x $2.50 + 800 cached x $1.25 + 100 out x $10 per Mtok, not the 800 at the input rate
        assert price("gpt-4o", {**base, "prompt_tokens_details": kind(cached_tokens=800)}) == Decimal("0.0025"), kind
        assert price("gpt-4o", kind(base)) == Decimal("0.0035"), kind
        claude = kind(input_tokens=100, output_tokens=50, cache_read_input_tokens=1000, cache_creation_input_tokens=300,
                      cache_creation=kind(ephemeral_1h_input_tokens=300))  # fmt: skip
        # claude-sonnet-4: 100 x $3 + 1000 read x $0.30 + 300 written for an hour x $6 + 50 out x $15 per Mtok
        assert price("claude-sonnet-4-0", claude) == Decimal("0.00315"), kind
        assert normalize_usage(kind(input_tokens=10, output_tokens=5, cache_read_input_tokens=0)) == Usage(
            prompt_tokens=10, completion_tokens=5
        )


def test_a_lookup_under_way_when_a_price_is_registered_does_not_cache_the_old_price(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    from tokentrace import pricing

    table = pricing._from_table
    looked_up, go_on = threading.Event(), threading.Event()

    def slow_from_table(*args: object) -> object:
        entry = table(*args)  # type: ignore[arg-type]
        looked_up.set()
        assert go_on.wait(10)
        return entry

    tokentrace.unregister_prices()  # empties the cache: the lookup below is a first one
    monkeypatch.setattr(pricing, "_from_table", slow_from_table)
    usage = Usage(prompt_tokens=1_000_000)
    found: list[Decimal | None] = []
    worker = threading.Thread(target=lambda: found.append(price("gpt-4o", usage, provider="openai")))
    worker.start()
    try:
        assert looked_up.wait(10)
        tokentrace.register_price("gpt-4o", "1", "1")  # while the table's price is being looked up
    finally:
        go_on.set()
        worker.join(10)
    monkeypatch.setattr(pricing, "_from_table", table)
    try:
        assert found == [Decimal("2.5")]  # the lookup begun before it
        assert price("gpt-4o", usage, provider="openai") == Decimal("1")  # the user's price, from now on
    finally:
        tokentrace.unregister_prices()
    assert price("gpt-4o", usage, provider="openai") == Decimal("2.5")


def test_a_price_registered_for_a_provider_applies_under_each_of_its_names() -> None:
    usage = Usage(prompt_tokens=1_000_000)
    tokentrace.register_price("gpt-4o", "1", "1", provider="azure")
    tokentrace.register_price("gemini-2.5-pro", "2", "2", provider="Google")
    tokentrace.register_price("my-model", "3", "3", provider="My-Gateway")
    try:
        for name in ("azure", "Azure", "azure.ai.openai"):
            assert price("gpt-4o", usage, provider=name) == Decimal("1"), name
        assert price("gpt-4o", usage, provider="openai") == Decimal("2.5")  # another provider: the table's
        span = Span(model="gemini-2.5-pro", provider="gcp.vertex_ai", prompt_tokens=1_000_000)
        assert price_span(span) and (span.cost, span.cost_source) == (Decimal("2"), "override")
        assert price("my-model", usage, provider="my-gateway") == Decimal("3")
    finally:
        tokentrace.unregister_prices()


def test_a_price_registered_for_a_table_model_covers_the_names_the_table_takes_for_it() -> None:
    usage = Usage(prompt_tokens=1_000_000)
    tokentrace.register_price("gpt-4o", "1", "1")
    tokentrace.register_price("claude-sonnet-4-0", "2", "2", provider="anthropic")
    try:
        for name in ("gpt-4o", "GPT-4o", "gpt-4o-2024-08-06"):  # the table's gpt-4o
            assert price(name, usage) == Decimal("1"), name
        assert price("gpt-4o-2024-05-13", usage) == Decimal("5")  # a model of its own in the table
        assert price("gpt-4o-mini", usage) == Decimal("0.15")
        assert price("claude-sonnet-4-20250514", usage, provider="anthropic") == Decimal("2")
        assert price("claude-sonnet-4-20250514", usage) == Decimal("3")  # for Anthropic only
    finally:
        tokentrace.unregister_prices()
    assert price("gpt-4o-2024-08-06", usage) == Decimal("2.5")


PERPLEXITY_USAGES = [
    {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100, "search_context_size": "low"},
    {"prompt_tokens": 19, "completion_tokens": 5950, "total_tokens": 5969, "citation_tokens": 12826,
     "num_search_queries": 24, "reasoning_tokens": 128397, "search_context_size": "low"},
]  # fmt: skip


@pytest.mark.parametrize(
    "model", ["sonar", "sonar-pro", "sonar-reasoning", "sonar-reasoning-pro", "sonar-deep-research"]
)
@pytest.mark.parametrize("usage", PERPLEXITY_USAGES)
def test_perplexity_usage_agrees_with_genai_prices(model: str, usage: dict[str, object]) -> None:
    import genai_prices

    theirs = genai_prices.extract_usage({"model": model, "usage": usage}, provider_id="perplexity").usage
    expected = genai_prices.calc_price(theirs, model, provider_id="perplexity").total_price
    assert price(model, usage, provider="perplexity") == expected


def test_a_cost_is_exact_whatever_the_threads_decimal_context() -> None:
    claude = {"input_tokens": 100, "output_tokens": 200, "cache_read_input_tokens": 2000,
              "cache_creation_input_tokens": 500, "cache_creation": {"ephemeral_1h_input_tokens": 200}}  # fmt: skip
    tokentrace.register_price("my-fine-searcher", "0.1", "1E-40", web_search_per_k="1E-30")
    try:
        with decimal.localcontext(decimal.Context(prec=4)):  # an application's own, on the calling thread
            assert price("claude-sonnet-4-0", claude) == Decimal("0.006225")  # 1 h writes priced apart
            assert tokentrace.cost("claude-sonnet-4-0", claude) == 0.006225
            searched = Usage(prompt_tokens=10, completion_tokens=3, web_searches=1)
            # $1e-6 of input + 3 x 1e-46 of output + a search at 1e-33: no digit lost
            assert price("my-fine-searcher", searched) == Decimal("0.0000010000000000000000000000000010000000000003")
    finally:
        tokentrace.unregister_prices()


def test_rates_are_taken_in_their_shortest_form_and_absurd_ones_refused() -> None:
    tokentrace.register_price("my-padded", "2.5" + "0" * 120, "0E-200")
    try:
        assert price("my-padded", Usage(prompt_tokens=1000, completion_tokens=100)) == Decimal("0.0025")
    finally:
        tokentrace.unregister_prices()
    with pytest.raises(ValueError, match=r"^input_per_mtok must have at most 100 decimal places and be under 1E\+31"):
        tokentrace.register_price("m", "1E+31", 1)
    assert tokentrace.cost("gpt-4o", {"prompt_tokens": 10**320, "completion_tokens": 0}) == math.inf  # as float()


CHAT_COUNTS = {"prompt_tokens": 1000, "completion_tokens": 100}


@pytest.mark.parametrize(
    ("usage", "reported"),
    [
        ({**CHAT_COUNTS, "cost": 0.00213}, Decimal("0.00213")),  # OpenRouter's, in USD (its credits)
        ({**CHAT_COUNTS, "cost": 0}, Decimal(0)),  # a free model's
        ({**CHAT_COUNTS, "cost": -0.0}, Decimal(0)),
        (SimpleNamespace(**CHAT_COUNTS, cost=0.00213), Decimal("0.00213")),
        ({"input_tokens": 1000, "output_tokens": 100, "cost": 0.00213}, Decimal("0.00213")),  # its Responses API's
        # made with the caller's key at the upstream provider: OpenRouter's fee and that provider's bill
        ({**CHAT_COUNTS, "cost": 0.000121, "is_byok": True, "cost_details": {"upstream_inference_cost": 0.002415}},
         Decimal("0.002536")),
        ({**CHAT_COUNTS, "cost": 0.000121, "is_byok": True}, None),  # the upstream bill untold
        ({**CHAT_COUNTS, "cost": 0.5, "is_byok": True, "cost_details": {"upstream_inference_cost": 1e-30}},
         Decimal("0.500000000000000000000000000001")),  # every digit of the sum
        # not made with the caller's key: the upstream cost is part of the cost, not added to it
        ({**CHAT_COUNTS, "cost": 0.00213, "is_byok": False, "cost_details": {"upstream_inference_cost": 0.00213}},
         Decimal("0.00213")),
        ({**CHAT_COUNTS, "cost": {"request_cost": 0.005, "total_cost": 0.0061}}, Decimal("0.0061")),  # Perplexity's
        ({**CHAT_COUNTS, "cost_in_usd_ticks": 37_756_000}, Decimal("0.0037756")),  # xAI's, 1e-10 USD each
        ({"input_tokens": 1000, "output_tokens": 100, "cost_in_usd_ticks": 3}, Decimal("3E-10")),
        ({**CHAT_COUNTS, "cost_in_usd_ticks": -1}, None),
        ({**CHAT_COUNTS, "cost_in_usd_ticks": 10**17}, None),  # over 1,000,000 USD
        ({**PERPLEXITY_USAGES[1], "cost": {"total_cost": 0.4105}}, Decimal("0.4105")),
        ({**CHAT_COUNTS, "cost": True}, None),
        ({**CHAT_COUNTS, "cost": "0.002"}, None),
        ({**CHAT_COUNTS, "cost": -0.002}, None),
        ({**CHAT_COUNTS, "cost": float("nan")}, None),
        ({**CHAT_COUNTS, "cost": float("inf")}, None),
        ({**CHAT_COUNTS, "cost": 2_000_000}, None),  # more than a collector takes for a span
        ({**CHAT_COUNTS, "cost": {"total": 0.0061}}, None),
        ({**CHAT_COUNTS, "cost": None}, None),
        (CHAT_COUNTS, None),
    ],
)  # fmt: skip
def test_a_cost_the_provider_reports_is_read_as_sent_when_it_is_an_amount(usage: Any, reported: Decimal | None) -> None:
    counts = normalize_usage(usage)
    assert counts.reported_cost == reported
    # price() and cost() give the table's price, whatever the provider reported
    assert price("gpt-4o", usage) == price("gpt-4o", msgspec.structs.replace(counts, reported_cost=None))


def test_a_usage_that_reports_only_a_cost_is_read() -> None:
    # xAI's image and video generations: no tokens, the cost in ticks of 1e-10 USD
    assert normalize_usage({"cost_in_usd_ticks": 200_000_000}) == Usage(reported_cost=Decimal("0.02"))
    with pytest.raises(TypeError, match="usage must have prompt_tokens/completion_tokens"):
        normalize_usage({"cost_in_usd_ticks": -1})  # not a cost: nothing to read


def test_a_usage_model_declaring_perplexitys_counts_or_a_cost_is_read_as_such_every_time() -> None:
    class Declared(pydantic.BaseModel):  # as an SDK whose model declares them would
        prompt_tokens: int
        completion_tokens: int
        num_search_queries: int | None = None
        cost: float | None = None

    for _ in range(2):  # the first call learns the class is a pydantic model's
        usage = normalize_usage(Declared(prompt_tokens=1000, completion_tokens=100, num_search_queries=3, cost=0.25))
        assert (usage.web_searches, usage.reported_cost) == (3, Decimal("0.25"))


def test_a_usage_given_with_a_reported_cost_that_is_not_a_decimal_amount_is_refused() -> None:
    message = r"^Usage.reported_cost must be None or a Decimal of USD from 0 to 1000000, got 0.5$"
    with pytest.raises(ValueError, match=message):
        tokentrace.cost("gpt-4o", Usage(prompt_tokens=10, reported_cost=0.5))  # type: ignore[arg-type]
    assert tokentrace.cost("gpt-4o", Usage(prompt_tokens=1000, reported_cost=Decimal(1))) == 0.0025


def test_reasoning_tokens_counted_beside_the_completion_tokens_are_output_too() -> None:
    # xAI's: completion_tokens leaves the reasoning out, total_tokens has it
    xai = {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1400,
           "completion_tokens_details": {"reasoning_tokens": 300}}  # fmt: skip
    assert normalize_usage(xai) == Usage(prompt_tokens=1000, completion_tokens=400, reasoning_tokens=300)
    responses = {"input_tokens": 1000, "output_tokens": 100, "total_tokens": 1400,
                 "output_tokens_details": {"reasoning_tokens": 300}}  # fmt: skip
    assert normalize_usage(responses) == normalize_usage(xai)
    # OpenAI's: the reasoning is among the completion tokens, and the total is input and output alone
    openai_usage = {**xai, "completion_tokens": 400, "total_tokens": 1400}
    assert normalize_usage(openai_usage) == normalize_usage(xai)
    assert normalize_usage({**xai, "total_tokens": None}).completion_tokens == 100  # no total: as reported


def test_deepseeks_cache_hits_are_its_cached_tokens() -> None:
    deepseek = {"prompt_tokens": 1000, "completion_tokens": 100, "prompt_cache_hit_tokens": 800,
                "prompt_cache_miss_tokens": 200}  # fmt: skip
    assert normalize_usage(deepseek) == Usage(prompt_tokens=1000, completion_tokens=100, cached_tokens=800)
    # 200 misses x $0.27 + 800 hits x $0.07 + 100 out x $1.10 per Mtok, at its standard hours
    assert price("deepseek-chat", deepseek, provider="deepseek", at=datetime(2026, 11, 29, 12)) == Decimal("0.00022")


def test_perplexitys_reasoning_citations_and_searches_are_read_beside_its_completion_tokens() -> None:
    assert normalize_usage(PERPLEXITY_USAGES[1]) == Usage(
        prompt_tokens=19,
        completion_tokens=5950 + 12826 + 128397,
        reasoning_tokens=128397,
        citation_tokens=12826,
        web_searches=24,
    )
    # 19 in x $2, 5950 out x $8, 128397 reasoning x $3, 12826 citations x $2 per Mtok, 24 searches at $5 per thousand
    assert price("sonar-deep-research", PERPLEXITY_USAGES[1], provider="perplexity") == Decimal("0.578481")
    # elsewhere, reasoning tokens at the top of a usage are among its completion tokens, as ever
    plain = {"prompt_tokens": 1000, "completion_tokens": 500, "reasoning_tokens": 300}
    assert normalize_usage(plain) == Usage(prompt_tokens=1000, completion_tokens=500, reasoning_tokens=300)
    assert price("gpt-4o", plain) == Decimal("0.0075")


def test_a_fee_per_call_is_charged_to_calls_that_used_tokens() -> None:
    # sonar: 1000 in x $1 + 100 out x $1 per Mtok, and $12 per thousand calls
    called = SimpleNamespace(prompt_tokens=1000, completion_tokens=100)
    assert price("sonar", called, provider="perplexity") == Decimal("0.0131")
    assert price("sonar", Usage(prompt_tokens=1000), provider="perplexity") == Decimal("0.013")
    assert price("sonar", Usage(), provider="perplexity") == Decimal(0)  # a call that failed before any token
    assert price("sonar", Usage(prompt_tokens=300_000), provider="perplexity") == Decimal("0.312")
    tokentrace.register_price("my-gateway-model", 1, 2, request_per_k="0.5")
    try:
        assert price("my-gateway-model", Usage(prompt_tokens=1000, completion_tokens=100)) == Decimal("0.0017")
        span = Span(model="my-gateway-model", prompt_tokens=1000, comp_tokens=100)
        assert price_span(span) and span.cost == Decimal("0.0017")
    finally:
        tokentrace.unregister_prices()
    with pytest.raises(ValueError, match="request_per_k must be a non-negative number of USD"):
        tokentrace.register_price("my-gateway-model", 1, 2, request_per_k="free")


def _utc(*when: int) -> datetime:
    return datetime(*when, tzinfo=timezone.utc)  # type: ignore[misc]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


CHAT = Usage(prompt_tokens=1000, completion_tokens=100)


def test_deepseeks_off_peak_hours_are_priced_at_their_rates() -> None:
    # deepseek-chat: $0.27 in, $1.10 out per Mtok from 00:30 to 16:30 UTC, half that off-peak
    peak, off_peak = Decimal("0.00038"), Decimal("0.00019")
    for moment, expected in [
        (_utc(2026, 11, 29, 12), peak),
        (_utc(2026, 11, 29, 20), off_peak),
        (_utc(2026, 11, 29, 16, 29, 59, 999000), peak),
        (_utc(2026, 11, 29, 16, 30), off_peak),
        (_utc(2026, 11, 30, 0, 29, 59), off_peak),
        (_utc(2026, 11, 30, 0, 30), peak),
        (_utc(2026, 11, 29, 12), peak),  # a period seen before, again
    ]:
        assert price("deepseek-chat", CHAT, provider="deepseek", at=moment) == expected, moment
    assert price("deepseek-chat", CHAT, provider="deepseek", at=datetime(2026, 11, 29, 20)) == off_peak  # naive: UTC
    with pytest.raises(TypeError, match="at must be a datetime, got float"):
        price("deepseek-chat", CHAT, provider="deepseek", at=1.0)  # type: ignore[arg-type]


def test_spans_are_priced_at_the_rates_of_the_time_they_started() -> None:
    spans = [
        Span(model="deepseek-chat", provider="deepseek", prompt_tokens=1000, comp_tokens=100, started_at=_ms(moment))
        for moment in (_utc(2026, 11, 29, 12), _utc(2026, 11, 29, 20), _utc(2026, 11, 30, 12), _utc(2026, 11, 29, 16))
    ]
    for span in spans:
        assert price_span(span)
    assert [span.cost for span in spans] == [
        Decimal("0.00038"),
        Decimal("0.00019"),
        Decimal("0.00038"),
        Decimal("0.00038"),
    ]
    # a dated change: gemini-3.6-flash's rates double on 2027-01-01
    before, after = (
        Span(model="gemini-3.6-flash", provider="google", prompt_tokens=1000, comp_tokens=100, ended_at=_ms(moment))
        for moment in (_utc(2026, 12, 31, 23, 59, 59), _utc(2027, 1, 1))
    )
    assert price_span(after) and price_span(before)
    assert (before.cost, after.cost) == (Decimal("0.001125"), Decimal("0.00225"))


def test_the_rates_of_now_change_at_the_hour_the_table_changes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from tokentrace import pricing

    clock = [_utc(2026, 11, 29, 16, 29, 59).timestamp()]
    monkeypatch.setattr(pricing.time, "time", lambda: clock[0])
    pricing.unregister_prices()  # a fresh cache
    assert price("deepseek-chat", CHAT, provider="deepseek") == Decimal("0.00038")
    clock[0] += 1  # 16:30: off-peak, an hour before the cache's resolutions are renewed
    assert price("deepseek-chat", CHAT, provider="deepseek") == Decimal("0.00019")
    assert tokentrace.cost("deepseek-chat", CHAT, provider="deepseek") == 0.00019


def test_time_dependent_rates_agree_with_genai_prices_at_any_time() -> None:
    import random

    import genai_prices

    rng = random.Random(20261129)
    start = _utc(2026, 1, 1)
    for model, provider in [("deepseek-chat", "deepseek"), ("deepseek-reasoner", "deepseek"),
                            ("deepseek-v4-flash", "deepseek"), ("gemini-3.6-flash", "google")]:  # fmt: skip
        for _ in range(40):  # in no order: the periods cached in turn
            moment = start + timedelta(seconds=rng.randrange(2 * 365 * 86400))
            theirs = genai_prices.calc_price(
                genai_prices.Usage(input_tokens=1000, cache_read_tokens=200, output_tokens=100),
                model,
                provider_id=provider,
                genai_request_timestamp=moment,
            ).total_price
            usage = Usage(prompt_tokens=1000, cached_tokens=200, completion_tokens=100)
            assert price(model, usage, provider=provider, at=moment) == theirs, (model, moment)
