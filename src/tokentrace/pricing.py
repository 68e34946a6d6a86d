"""Pricing: the USD cost of a model call from its token usage.

Prices come from ``genai-prices`` (its bundled snapshot, offline). Resolving a model name to a
price costs ~80 µs there, so the resolution is cached per (model, provider, rates; a lookup
costs about 0.2 µs) and the arithmetic is done here in ``Decimal``: a repeated ``cost()`` costs
2 to 3 µs. Input totals
include cached tokens, priced at their cache rates; reasoning tokens are part of the output. The
service tier a response reports (OpenAI's ``flex``, ``priority``...), Anthropic's speed mode and
the batch APIs pick the table's rates for them; audio and image tokens, the searches of the
providers' tools, audio billed by its length and text by its characters have rates of their own
(see ``Usage``). User prices from :func:`register_price` win over the table.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
import math
import time
from collections.abc import Mapping
from datetime import date, datetime, timezone
from datetime import time as dtime
from decimal import Context, Decimal, localcontext
from typing import Any

import msgspec

from . import _fork
from .spans import _UNROUNDED, MAX_COST, Span, exact

__all__ = ["Usage", "cost", "normalize_usage", "price", "price_span", "register_price", "unregister_prices"]

_log = logging.getLogger(__name__)
_MS_PER_MILLION_HOURS = Decimal("3.6")
_SHARES = Context(prec=28)  # an hourly rate's share, before it is kept to 1e-12 USD
_PICO_IN_MICROS = Decimal("1e-6")
_RESOLVE_TTL_S = 3600.0  # re-resolve hourly: the table may be updated while running (genai-prices can)


class Usage(msgspec.Struct, kw_only=True, frozen=True):
    """Token usage of one call, in tokentrace's terms.

    ``prompt_tokens`` is the whole input including ``cached_tokens`` (cache reads) and
    ``cache_write_tokens``, of which ``cache_write_1h_tokens`` were written for an hour (Anthropic's
    ``cache_creation.ephemeral_1h_input_tokens``, dearer than the default five minutes);
    ``completion_tokens`` includes ``reasoning_tokens`` and ``citation_tokens`` (Perplexity's: the
    text of the sources it read, billed at a rate of its own). Of each, ``audio_prompt_tokens`` and
    ``audio_completion_tokens`` are audio (OpenAI's ``prompt_tokens_details.audio_tokens`` and
    ``completion_tokens_details.audio_tokens``), ``image_prompt_tokens`` and
    ``image_completion_tokens`` images (an image model's ``input_tokens_details.image_tokens``
    and ``output_tokens_details.image_tokens``), billed at the model's audio and image rates where
    the table has them (``gpt-audio``'s are 13 and 6.4 times its text rates). ``web_searches`` and
    ``file_searches`` are the searches the provider's own tools made (Anthropic's
    ``server_tool_use.web_search_requests``, OpenAI's ``web_search_call`` and ``file_search_call``
    output items), billed per thousand on top of the tokens. ``audio_ms`` is audio billed by its
    length (a transcription model's ``usage.seconds``, as ``whisper-1`` reports it), in
    milliseconds; ``input_characters``, text billed by its characters (what ``tts-1`` reads
    out). ``speed`` is Anthropic's speed mode, as
    its usage reports it (``"fast"`` is billed at rates of its own); ``batch``, that the call went
    through a batch API, billed at its rates (Anthropic's usage says ``service_tier: "batch"``).
    ``reported_cost`` is what the provider says the call cost, in USD, where its usage says so (see
    :func:`reported_cost`): spans take it in place of the table's price, which :func:`price` and
    :func:`cost` give.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_1h_tokens: int = 0
    audio_prompt_tokens: int = 0
    audio_completion_tokens: int = 0
    image_prompt_tokens: int = 0
    image_completion_tokens: int = 0
    web_searches: int = 0
    file_searches: int = 0
    audio_ms: int = 0
    input_characters: int = 0
    citation_tokens: int = 0
    speed: str | None = None
    batch: bool = False
    reported_cost: Decimal | None = None

    def apart(self) -> tuple[int, ...]:
        """The counts priced apart from text tokens, in the order of :data:`APART`; () when none."""
        if not (  # the usual usage, told in half the time the tuple takes
            self.audio_prompt_tokens
            or self.audio_completion_tokens
            or self.image_prompt_tokens
            or self.image_completion_tokens
            or self.web_searches
            or self.file_searches
            or self.audio_ms
            or self.input_characters
            or self.citation_tokens
            or self.cache_write_1h_tokens
        ):
            return ()
        return (
            self.audio_prompt_tokens,
            self.audio_completion_tokens,
            self.image_prompt_tokens,
            self.image_completion_tokens,
            self.web_searches,
            self.file_searches,
            self.audio_ms,
            self.input_characters,
            self.citation_tokens,
            self.cache_write_1h_tokens,
        )


def _get(obj: Any, key: str) -> Any:
    if type(obj) is dict:
        return obj.get(key)
    if obj is None:  # a part the usage lacks (no details): not worth the checks below
        return None
    if type(obj) in _PYDANTIC:  # SDK models, known not to be mappings: read their fields
        fields = obj.__dict__
        if key in fields:
            return fields[key]
        extra = getattr(obj, "__pydantic_extra__", None)  # a miss costs ~2 µs through getattr(obj, key)
        return extra.get(key) if extra else None
    if isinstance(obj, Mapping):  # before __dict__: a dict subclass or UserDict has one too
        return obj.get(key)
    if _is_pydantic(type(obj)):  # the first of an SDK model's class
        return _get(obj, key)
    fields = getattr(obj, "__dict__", None)
    if fields is not None and key in fields:
        return fields[key]
    return getattr(obj, key, None)


_PYDANTIC: set[type] = set()


def _is_pydantic(cls: type) -> bool:
    if hasattr(cls, "__pydantic_fields__"):
        _PYDANTIC.add(cls)
        return True
    return False


def _int(obj: Any, key: str, part: str = "") -> int:
    """A count of a usage: absent (None) is 0; ``part`` names where it sits, for the error."""
    value = obj.get(key) if type(obj) is dict else _get(obj, key)
    if type(value) is int and value >= 0:
        return value
    return 0 if value is None else _count(f"usage.{part}{key}", value)


def _counted(value: Any, key: str) -> int:
    """:func:`_int` for a count already read from the usage."""
    if type(value) is int and value >= 0:
        return value
    return 0 if value is None else _count(f"usage.{key}", value)


def _count(field: str, value: Any) -> int:
    """A count that is not a non-negative int: an integral float (as JSON decoders may give) is
    read as that int; anything else would be a wrong price if read as 0."""
    if type(value) is float and value >= 0 and value.is_integer():  # not nan, not inf
        return int(value)
    raise ValueError(f"{field} must be a non-negative int, got {value!r}")


def _kept_count(attributes: Any, key: str) -> int:
    """A count a span's attributes keep: values from anywhere, so anything but a count is 0."""
    value = attributes.get(key)
    return value if type(value) is int and value > 0 else 0


def _checked(usage: Usage) -> Usage:
    """A :class:`Usage` given as is: its counts must be counts, as those read from a usage are."""
    fixed = {
        field: _count(f"Usage.{field}", value)
        for field in _COUNTS
        if not (type(value := getattr(usage, field)) is int and value >= 0)
    }
    cost = usage.reported_cost
    if cost is not None and not (isinstance(cost, Decimal) and cost.is_finite() and 0 <= cost <= MAX_COST):
        raise ValueError(f"Usage.reported_cost must be None or a Decimal of USD from 0 to 1000000, got {cost!r}")
    return msgspec.structs.replace(usage, **fixed) if fixed else usage


_IN, _OUT = "prompt_tokens_details.", "completion_tokens_details."
_IN_DETAILS, _OUT_DETAILS = "input_tokens_details.", "output_tokens_details."
_COUNTS = tuple(name for name, kind in Usage.__annotations__.items() if kind == "int")


def normalize_usage(usage: Any) -> Usage:
    """Turn a provider's usage object (or dict) into a :class:`Usage`.

    Accepts an OpenAI Chat Completions usage (``prompt_tokens``, ``completion_tokens``, and
    ``prompt_tokens_details`` with ``cached_tokens`` and ``cache_write_tokens``), an OpenAI
    Responses usage (``input_tokens``, ``output_tokens``, ``input_tokens_details``), an Anthropic
    usage (``input_tokens`` excluding cache, plus ``cache_read_input_tokens`` and
    ``cache_creation_input_tokens``, which are added to the input total), an image model's and a
    transcription model's (``input_tokens``, ``output_tokens``, with the images or audio among
    them, or ``seconds`` of audio), a :class:`Usage`, or anything else with those attribute or
    key names.

    Raises:
        TypeError: ``usage`` has none of the accepted fields.
        ValueError: a count is not a non-negative int (an integral float, ``1000.0``, is read as
            that int; ``"1000"``, ``-1``, ``True`` and ``1.5`` are refused), or ``seconds`` is
            negative or not finite.
    """
    if isinstance(usage, Usage):
        return _checked(usage)
    prompt, completion = _get(usage, "prompt_tokens"), _get(usage, "completion_tokens")
    if prompt is not None or completion is not None:
        if perplexitys(usage):
            return _perplexity(usage)
        cached = written = audio_in = reasoning = audio_out = 0  # the details, when there are any
        details, out_details = _get(usage, "prompt_tokens_details"), _get(usage, "completion_tokens_details")
        if details is not None:
            cached, written = _int(details, "cached_tokens", _IN), _int(details, "cache_write_tokens", _IN)
            audio_in = _int(details, "audio_tokens", _IN)
        if out_details is not None:
            reasoning, audio_out = _int(out_details, "reasoning_tokens", _OUT), _int(out_details, "audio_tokens", _OUT)
        prompt, reasoning = _counted(prompt, "prompt_tokens"), reasoning or _int(usage, "reasoning_tokens")
        return Usage(
            prompt_tokens=prompt,
            completion_tokens=with_reasoning(usage, prompt, _counted(completion, "completion_tokens"), reasoning),
            # DeepSeek's cache reads are its prompt_cache_hit_tokens
            cached_tokens=cached or _int(usage, "cached_tokens") or _int(usage, "prompt_cache_hit_tokens"),
            cache_write_tokens=written or _int(usage, "cache_write_tokens"),
            reasoning_tokens=reasoning,
            audio_prompt_tokens=audio_in,
            audio_completion_tokens=audio_out,
            reported_cost=reported_cost(usage),
        )
    if _get(usage, "input_tokens") is not None or _get(usage, "output_tokens") is not None:
        read, write = _int(usage, "cache_read_input_tokens"), _int(usage, "cache_creation_input_tokens")
        if read or write or _anthropics(usage):  # Anthropic: input excludes cache
            return Usage(
                prompt_tokens=_int(usage, "input_tokens") + read + write,
                completion_tokens=_int(usage, "output_tokens"),
                cached_tokens=read,
                cache_write_tokens=write,
                reasoning_tokens=_int(_get(usage, "output_tokens_details"), "thinking_tokens", _OUT_DETAILS),
                cache_write_1h_tokens=min(
                    _int(_get(usage, "cache_creation"), "ephemeral_1h_input_tokens", "cache_creation."), write
                ),
                web_searches=_int(_get(usage, "server_tool_use"), "web_search_requests", "server_tool_use."),
                speed=speed if isinstance(speed := _get(usage, "speed"), str) else None,
                batch=_get(usage, "service_tier") == "batch",
            )
        details = _get(usage, "input_tokens_details") or _get(usage, "input_token_details")  # a transcription's
        out_details = _get(usage, "output_tokens_details")
        prompt, reasoning = _int(usage, "input_tokens"), _int(out_details, "reasoning_tokens", _OUT_DETAILS)
        return Usage(  # OpenAI Responses, an image or transcription model's: input includes cache
            prompt_tokens=prompt,
            completion_tokens=with_reasoning(usage, prompt, _int(usage, "output_tokens"), reasoning),
            cached_tokens=_int(details, "cached_tokens", _IN_DETAILS),
            cache_write_tokens=_int(details, "cache_write_tokens", _IN_DETAILS),
            reasoning_tokens=reasoning,
            image_prompt_tokens=_int(details, "image_tokens", _IN_DETAILS),
            image_completion_tokens=_int(out_details, "image_tokens", _OUT_DETAILS),
            audio_prompt_tokens=_int(details, "audio_tokens", _IN_DETAILS),
            reported_cost=reported_cost(usage),
        )
    seconds = _get(usage, "seconds")
    if type(seconds) in (int, float):  # billed by the length of the audio
        if not (seconds >= 0 and math.isfinite(seconds)):
            raise ValueError(f"usage.seconds must be a non-negative finite number, got {seconds!r}")
        return Usage(audio_ms=round(seconds * 1000))
    cost = reported_cost(usage)
    if cost is not None:  # a cost alone (xAI's image and video generations report no tokens)
        return Usage(reported_cost=cost)
    raise TypeError(
        "usage must have prompt_tokens/completion_tokens, input_tokens/output_tokens or seconds "
        f"(attributes or keys), got {type(usage).__name__}"
    )


def with_reasoning(usage: Any, prompt: int, completion: int, reasoning: int) -> int:
    """``completion`` with the ``reasoning`` tokens in it: added when the usage counts them beside
    its completion tokens rather than among them, as its total tells (xAI's: its ``total_tokens``
    is the three added up; OpenAI's is the input and output alone)."""
    if reasoning and _get(usage, "total_tokens") == prompt + completion + reasoning:
        return completion + reasoning
    return completion


def perplexitys(usage: Any) -> bool:
    """Whether a Chat Completions usage is Perplexity's, told by the counts only it reports."""
    if type(usage) is dict:
        return "num_search_queries" in usage or "citation_tokens" in usage
    if _holds_none(usage, _PERPLEXITYS):
        return False
    return _get(usage, "num_search_queries") is not None or _get(usage, "citation_tokens") is not None


_PERPLEXITYS = frozenset({"num_search_queries", "citation_tokens"})


def _holds_none(usage: Any, names: frozenset[str]) -> bool:
    """Whether ``usage`` is an SDK model known to hold none of ``names``: no field beyond its
    class's, and none of those named so (reading a missing one costs about a µs)."""
    return type(usage) in _PYDANTIC and not usage.__pydantic_extra__ and names.isdisjoint(usage.__dict__)


def _perplexity(usage: Any) -> Usage:
    """Perplexity's usage, told by its search counts: its reasoning and citation tokens (those of
    ``sonar-deep-research``, each billed at a rate of its own) are reported beside its completion
    tokens, not among them, and its searches as ``num_search_queries``."""
    reasoning, citations = _int(usage, "reasoning_tokens"), _int(usage, "citation_tokens")
    return Usage(
        prompt_tokens=_int(usage, "prompt_tokens"),
        completion_tokens=_int(usage, "completion_tokens") + reasoning + citations,
        reasoning_tokens=reasoning,
        citation_tokens=citations,
        web_searches=_int(usage, "num_search_queries"),
        reported_cost=reported_cost(usage),
    )


def reported_cost(usage: Any) -> Decimal | None:
    """The cost a provider reports in its usage, in USD: OpenRouter's ``cost`` (with, for a call
    made with the caller's own key at the upstream provider, ``is_byok``, that provider's bill,
    ``cost_details.upstream_inference_cost``), Perplexity's ``cost.total_cost``, which prices its
    searches by the search context the call used, xAI's ``cost_in_usd_ticks`` (1e-10 USD each).
    None when it reports none, or a value that is not a number of USD from 0 to 1,000,000; never
    raises."""
    if type(usage) is dict:
        if "cost" not in usage and "cost_in_usd_ticks" not in usage:
            return None
    elif _holds_none(usage, _REPORTING):
        return None
    try:
        ticks = _get(usage, "cost_in_usd_ticks")
        if ticks is not None:
            return _usd(ticks, _TICKS_PER_USD)
        cost = _get(usage, "cost")
        if cost is None:
            return None
        if not _is_number(cost):
            return _usd(_get(cost, "total_cost"))
        total = _usd(cost)
        if total is not None and _get(usage, "is_byok") is True:
            upstream = _usd(_get(_get(usage, "cost_details"), "upstream_inference_cost"))
            return None if upstream is None else exact(_UNROUNDED.add(total, upstream))
        return total
    except Exception:  # an object whose attributes cannot be read: the table prices the call
        return None


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


def _usd(value: Any, per_usd: int = 1) -> Decimal | None:
    """A reported amount in USD (or in units ``per_usd`` of which make one), exactly as sent (a
    float's shortest text); None when it is not a number of USD from 0 to 1,000,000."""
    if not _is_number(value) or not 0 <= value <= MAX_COST * per_usd:  # nan and inf fail the range
        return None
    amount = abs(Decimal(repr(value)) if type(value) is float else Decimal(value))  # -0.0 is 0
    return exact(amount if per_usd == 1 else _UNROUNDED.divide(amount, per_usd))


_REPORTING = frozenset({"cost", "cost_in_usd_ticks"})  # the usage fields that may report a cost
_TICKS_PER_USD = 10**10  # xAI's unit
REPORTED = "provider"  # the cost_source of a span whose cost the provider reported


def _anthropics(usage: Any) -> bool:
    """Whether an input/output usage with no cache counts is Anthropic's: the SDK's carry its cache
    fields (None), a dict made by hand or kept may have only its tools', or a batch's tier."""
    return (
        _has(usage, "cache_read_input_tokens")
        or _has(usage, "cache_creation_input_tokens")
        or _get(usage, "server_tool_use") is not None
        or _get(usage, "service_tier") == "batch"
    )


def _has(obj: Any, key: str) -> bool:
    if type(obj) is dict or isinstance(obj, Mapping):
        return key in obj
    if type(obj) in _PYDANTIC:  # its fields, and the extra ones it was sent (a miss through hasattr costs ~1 µs)
        return key in obj.__dict__ or key in (obj.__pydantic_extra__ or ())
    fields = getattr(obj, "__dict__", None)
    if fields is not None and key in fields:
        return True
    return hasattr(obj, key)


class _Price(msgspec.Struct, frozen=True):
    """Per-million-token prices resolved for one model.

    ``tiers`` holds the flat prices that apply, cliff-style, once the input exceeds a threshold
    (e.g. above 200k tokens), highest threshold first.
    """

    provider: str
    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal
    source: str
    tiers: tuple[tuple[int, _Price], ...] = ()
    cache_write_1h: Decimal | None = None  # one-hour cache writes; None: see amount()
    # the rates of the counts priced apart (see APART); None: audio and images at the text
    # rates, searches not billed; searches per thousand
    input_audio: Decimal | None = None
    output_audio: Decimal | None = None
    input_image: Decimal | None = None
    output_image: Decimal | None = None
    web_search: Decimal | None = None
    file_search: Decimal | None = None
    audio_hour: Decimal | None = None  # audio billed by its length, per hour
    input_char: Decimal | None = None  # text billed by its characters, per million
    output_citation: Decimal | None = None  # None: at the output rate
    output_reasoning: Decimal | None = None  # None: at the output rate
    request: Decimal | None = None  # a fee per call, per thousand calls; None: no fee
    # the moments, in ms since the epoch, between which these rates apply: the table's changes
    # for the model (on a date, or at the ends of its daily windows: DeepSeek's off-peak hours)
    since: float = -math.inf
    until: float = math.inf
    timed: bool = False  # the table changes them at some time: since and until are to be checked

    # The rates of the text tokens, the one-hour cache writes, the reasoning tokens and the fee
    # per call, as integers: a call's count times its rate, summed, is its cost in 10**-places
    # USD. Made from the rates above (see __post_init__), so that a cost is summed in ints.
    linear: tuple[int, ...] = ()
    places: int = 0
    scale: int = 1  # 10**places

    def __post_init__(self) -> None:
        rates = (
            self.input,
            self.output,
            self.cache_read,
            self.cache_write,
            _UNROUNDED.multiply(2, self.input) if self.cache_write_1h is None else self.cache_write_1h,
            self.output if self.output_reasoning is None else self.output_reasoning,
            Decimal(0) if self.request is None else _UNROUNDED.multiply(self.request, 1000),
        )
        places = max(0, *(-_exponent(rate) for rate in rates))
        msgspec.structs.force_setattr(self, "linear", tuple(int(r.scaleb(places, _UNROUNDED)) for r in rates))
        msgspec.structs.force_setattr(self, "places", places + 6)  # the rates are per million tokens
        msgspec.structs.force_setattr(self, "scale", 10 ** (places + 6))

    def amount(
        self,
        prompt: int,
        completion: int,
        cached: int = 0,
        cache_write: int = 0,
        apart: tuple[int, ...] = (),
        reasoning: int = 0,
    ) -> Decimal:
        """USD for these token counts, exact; ``prompt`` includes ``cached`` and ``cache_write``,
        ``completion`` includes ``reasoning``; ``apart`` holds the counts priced apart (see
        :data:`APART`), or is empty. Of those, the one-hour cache writes are part of
        ``cache_write``: where no rate is given for them (the table has none for Claude on Bedrock
        and Vertex AI), they cost twice the input rate, as Anthropic bills them wherever Claude
        runs; only Anthropic's usage reports them. A model with a fee per call (Perplexity's
        ``sonar``) is charged it for a call that used tokens: a failed call is not billed."""
        rates = self._tier(prompt) if self.tiers else self
        total = Decimal(rates._units(prompt, completion, cached, cache_write, apart, reasoning))
        total = total.scaleb(-rates.places, _UNROUNDED)
        if apart:
            extra = rates._apart(max(prompt - cached - cache_write, 0), completion, apart)
            total = _UNROUNDED.add(total, extra.scaleb(-6, _UNROUNDED))
        return exact(total)

    def dollars(
        self,
        prompt: int,
        completion: int,
        cached: int = 0,
        cache_write: int = 0,
        apart: tuple[int, ...] = (),
        reasoning: int = 0,
    ) -> float:
        """:meth:`amount` as a float, rounded once (from the exact sum: an int ratio is)."""
        if apart:
            return float(self.amount(prompt, completion, cached, cache_write, apart, reasoning))
        rates = self._tier(prompt) if self.tiers else self
        try:
            return rates._units(prompt, completion, cached, cache_write, apart, reasoning) / rates.scale
        except OverflowError:  # more than a float holds (as float() of the Decimal gives)
            return math.inf

    def _tier(self, prompt: int) -> _Price:
        """The rates for an input of ``prompt`` tokens: those of the highest threshold it exceeds."""
        for start, tier in self.tiers:
            if prompt > start:
                return tier
        return self

    def _units(
        self, prompt: int, completion: int, cached: int, cache_write: int, apart: tuple[int, ...], reasoning: int
    ) -> int:
        """The cost at the :attr:`linear` rates, in 10**-places USD."""
        input_, output, read, write, hour_rate, reasoning_rate, fee = self.linear
        uncached = prompt - cached - cache_write
        units = (uncached if uncached > 0 else 0) * input_ + completion * output
        if cached:
            units += cached * read
        if cache_write:
            hour_writes = min(apart[-1], cache_write) if apart else 0
            units += (cache_write - hour_writes) * write + hour_writes * hour_rate
        if reasoning:
            units += min(reasoning, completion) * (reasoning_rate - output)
        if fee and (prompt or completion):
            units += fee
        return units

    def _apart(self, uncached: int, completion: int, counts: tuple[int, ...]) -> Decimal:
        """What audio and images cost over the text rates they were counted at, and searches, in
        millionths of a USD; exact, whatever the thread's decimal context, but for audio billed
        by its length (kept to 1e-12 USD)."""
        with localcontext(_UNROUNDED):
            audio_in, audio_out, image_in, image_out, web, files, audio_ms, characters, citations, _ = counts
            extra = Decimal(0)
            for count, rate, text, most in (
                (audio_in, self.input_audio, self.input, uncached),
                (image_in, self.input_image, self.input, uncached),
                (audio_out, self.output_audio, self.output, completion),
                (image_out, self.output_image, self.output, completion),
                (citations, self.output_citation, self.output, completion),
            ):
                if count and rate is not None:
                    extra += min(count, most) * (rate - text)
            for count, per_thousand in ((web, self.web_search), (files, self.file_search)):
                if count and per_thousand is not None:
                    extra += count * per_thousand * 1000  # per million, as the token rates
            if audio_ms and self.audio_hour is not None:  # a millionth of an hour is 3.6 ms
                # a share of an hourly rate need not end (1.02 / 3.6): kept to 1e-12 USD
                extra += _SHARES.divide(audio_ms * self.audio_hour, _MS_PER_MILLION_HOURS).quantize(_PICO_IN_MICROS)
            if characters and self.input_char is not None:
                extra += characters * self.input_char
            return extra


class _Override(msgspec.Struct, frozen=True):
    pattern: str
    provider: str | None
    price: _Price


_lock = _fork.lock()
_Key = tuple[str, str | None, tuple[str | None, ...]]
_cache: dict[_Key, _Price | None] = {}
# the other periods' rates of models whose rates change with time, most recent last (a collector
# may be sent spans of several periods in turn)
_periods: dict[_Key, list[_Price]] = {}
_MAX_PERIODS = 8
# The span attributes whose values pick among a model's rates: OpenAI's service tier, Anthropic's
# speed, and (true) a batch API's
SERVICE_TIER = "openai.response.service_tier"
SPEED = "anthropic.response.speed"
BATCH = "tokentrace.batch"
# The span attributes keeping the counts priced apart from text tokens (``Usage.apart()``, in
# this order): the audio and the images among its input and output tokens, at the model's audio
# and image rates, the searches its provider's tools made, per thousand, audio billed by its
# length, in milliseconds, text billed by its characters, Perplexity's citation tokens among the
# output, and the cache writes made for an hour
APART = tuple(
    f"tokentrace.usage.{name}"
    for name in (
        "audio_prompt_tokens",
        "audio_completion_tokens",
        "image_prompt_tokens",
        "image_completion_tokens",
        "web_searches",
        "file_searches",
        "audio_ms",
        "input_characters",
        "citation_tokens",
        "cache_write_1h_tokens",
    )
)
_CONDITIONS = ("service_tier", "speed", "processing")  # the genai-prices price context they set
_STANDARD = (None, None, None)
_overrides: list[_Override] = []
_generation = 0  # bumped when the cache is emptied: a resolution begun before is not cached
_warned: set[str] = set()
_MAX_KEPT = 10_000  # resolutions cached, and unknown models remembered, at most: the names come from the spans


def register_price(
    model_pattern: str,
    input_per_mtok: float | Decimal | str,
    output_per_mtok: float | Decimal | str,
    *,
    cache_read_per_mtok: float | Decimal | str | None = None,
    cache_write_per_mtok: float | Decimal | str | None = None,
    cache_write_1h_per_mtok: float | Decimal | str | None = None,
    input_audio_per_mtok: float | Decimal | str | None = None,
    output_audio_per_mtok: float | Decimal | str | None = None,
    input_image_per_mtok: float | Decimal | str | None = None,
    output_image_per_mtok: float | Decimal | str | None = None,
    web_search_per_k: float | Decimal | str | None = None,
    file_search_per_k: float | Decimal | str | None = None,
    audio_per_hour: float | Decimal | str | None = None,
    input_per_mchars: float | Decimal | str | None = None,
    request_per_k: float | Decimal | str | None = None,
    provider: str | None = None,
) -> None:
    """Price models the table lacks, or override it (user prices win).

    Args:
        model_pattern: a model id, or a glob such as ``"my-finetune-*"`` (case-insensitive). It
            applies to the model names it matches and to those the table takes for a model it
            matches: ``"gpt-4o"`` prices the ``"gpt-4o-2024-08-06"`` OpenAI's responses carry,
            which the table prices as ``gpt-4o``, but not ``"gpt-4o-2024-05-13"``, a model the
            table prices apart (``"gpt-4o*"`` covers every name that starts so).
        input_per_mtok: USD per million input tokens.
        output_per_mtok: USD per million output tokens.
        cache_read_per_mtok: USD per million cached input tokens (default: the input price).
        cache_write_per_mtok: USD per million cache-write tokens (default: the input price).
        cache_write_1h_per_mtok: USD per million tokens written to Anthropic's one-hour cache
            (default: twice the input price, as Anthropic bills them).
        input_audio_per_mtok: USD per million audio input tokens (default: the input price).
        output_audio_per_mtok: USD per million audio output tokens (default: the output price).
        input_image_per_mtok: USD per million image input tokens (default: the input price).
        output_image_per_mtok: USD per million image output tokens (default: the output price).
        web_search_per_k: USD per thousand web searches of the provider's tool (default: none).
        file_search_per_k: USD per thousand file searches of the provider's tool (default: none).
        audio_per_hour: USD per hour of audio billed by its length (default: none).
        input_per_mchars: USD per million characters of text billed by them (default: none).
        request_per_k: USD per thousand calls, a fee per call on top of the tokens, charged for
            calls that used any (default: none).
        provider: only for this provider (default: any): a genai-prices id or OpenTelemetry's
            name for it, in any case (``"azure"`` and ``"azure.ai.openai"`` are one provider, as
            ``provider=`` of :func:`cost` and a span's ``provider`` take them).

    Raises:
        ValueError: a price is negative or not a number (``True`` is not one).
        TypeError: ``model_pattern`` is not a str, or ``provider`` neither a str nor None.
    """
    if not isinstance(model_pattern, str):
        raise TypeError(f"model_pattern must be a str (a model id or a glob), got {type(model_pattern).__name__}")
    if provider is not None and not isinstance(provider, str):
        raise TypeError(f"provider must be a str (a provider id) or None, got {type(provider).__name__}")
    inp = _money("input_per_mtok", input_per_mtok)
    out = _money("output_per_mtok", output_per_mtok)
    read = inp if cache_read_per_mtok is None else _money("cache_read_per_mtok", cache_read_per_mtok)
    write = inp if cache_write_per_mtok is None else _money("cache_write_per_mtok", cache_write_per_mtok)
    hour = None if cache_write_1h_per_mtok is None else _money("cache_write_1h_per_mtok", cache_write_1h_per_mtok)
    apart: dict[str, Any] = {
        field: None if value is None else _money(name, value)
        for field, name, value in (
            ("input_audio", "input_audio_per_mtok", input_audio_per_mtok),
            ("output_audio", "output_audio_per_mtok", output_audio_per_mtok),
            ("input_image", "input_image_per_mtok", input_image_per_mtok),
            ("output_image", "output_image_per_mtok", output_image_per_mtok),
            ("web_search", "web_search_per_k", web_search_per_k),
            ("file_search", "file_search_per_k", file_search_per_k),
            ("audio_hour", "audio_per_hour", audio_per_hour),
            ("input_char", "input_per_mchars", input_per_mchars),
            ("request", "request_per_k", request_per_k),
        )
    }
    price = _Price(provider or "", inp, out, read, write, source="override", cache_write_1h=hour, **apart)
    with _lock:
        _overrides.insert(0, _Override(model_pattern.lower(), _table_provider(provider) if provider else None, price))
        _forget()


def unregister_prices() -> None:
    """Forget every price given to :func:`register_price`."""
    with _lock:
        _overrides.clear()
        _forget()


def _forget() -> None:
    """Empty the cache, and keep out of it the resolutions already under way (under ``_lock``)."""
    global _generation
    _cache.clear()
    _periods.clear()
    _generation += 1


def _money(field: str, value: float | Decimal | str) -> Decimal:
    if isinstance(value, bool):  # an int to Decimal(), but a flag set by mistake, not $1 or $0
        raise ValueError(f"{field} must be a non-negative number of USD, got {value!r}")
    try:
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except Exception:
        raise ValueError(f"{field} must be a non-negative number of USD, got {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{field} must be a non-negative number of USD, got {value!r}")
    if _exponent(amount) < -_MAX_PLACES or amount.adjusted() > _MAX_DIGITS:
        raise ValueError(
            f"{field} must have at most {_MAX_PLACES} decimal places and be under 1E+{_MAX_DIGITS + 1} USD, "
            f"got {value!r}"
        )
    return amount


def _exponent(amount: Decimal) -> int:
    """The exponent of a finite amount's shortest form (``2.50`` has -1, as ``2.5``)."""
    exponent = amount.normalize(_UNROUNDED).as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0


_MAX_PLACES = 100  # of a rate: a cost is summed in integers of the finest rate's unit
_MAX_DIGITS = 30  # before the point


def price_attributes(usage: Usage) -> dict[str, Any]:
    """The span attributes that keep what a usage's price depends on beyond a span's token
    fields: the rates it was billed at (Anthropic's speed, a batch API's) and the counts priced
    apart (:data:`APART`), which :func:`price_span` reads back; empty for text tokens at the
    standard rates."""
    apart = usage.apart()
    if not (usage.speed or usage.batch or apart):
        return _NO_ATTRIBUTES
    attributes: dict[str, Any] = {SPEED: usage.speed} if usage.speed else {}
    if usage.batch:
        attributes[BATCH] = True
    if apart:
        attributes.update((key, count) for key, count in zip(APART, apart, strict=True) if count)
    return attributes


_NO_ATTRIBUTES: dict[str, Any] = {}  # never changed: callers only read it


def price(
    model: str,
    usage: Any,
    *,
    provider: str | None = None,
    service_tier: str | None = None,
    batch: bool = False,
    at: datetime | None = None,
) -> Decimal | None:
    """The exact USD cost as a ``Decimal``, or ``None`` when the model is unknown.

    Raises:
        TypeError: ``usage`` has none of the accepted fields (see :func:`normalize_usage`).
        ValueError: a count is not a non-negative int, or the cache reads and writes are more
            than the whole input they are part of.
    """
    priced = _priced(model, usage, provider, service_tier, batch, at)
    return None if priced is None else priced[0].amount(*priced[1])


def _priced(
    model: str, usage: Any, provider: str | None, service_tier: str | None, batch: bool, at: datetime | None
) -> tuple[_Price, tuple[int, int, int, int, tuple[int, ...], int]] | None:
    """The rates of :func:`price`'s call, and its counts as :meth:`_Price.amount` takes them;
    None when the model has no price."""
    counts = normalize_usage(usage)
    if counts.cached_tokens + counts.cache_write_tokens > counts.prompt_tokens:
        raise ValueError(
            f"usage has {counts.cached_tokens} cached and {counts.cache_write_tokens} cache-write tokens, "
            f"more than the {counts.prompt_tokens} input tokens that include them"
        )
    moment = None if at is None else _epoch_ms(at)
    entry = resolve(model, provider, service_tier, counts.speed, batch or counts.batch, moment)
    if entry is None:
        return None
    return entry, (
        counts.prompt_tokens,
        counts.completion_tokens,
        counts.cached_tokens,
        counts.cache_write_tokens,
        counts.apart(),
        counts.reasoning_tokens,
    )


def price_span(span: Span) -> bool:
    """Fill ``span.cost`` (and ``cost_source``, and ``provider`` when empty) from the table, for
    the span's token counts, at the rates its attributes pick (:data:`SERVICE_TIER`,
    :data:`SPEED`, :data:`BATCH`), with the counts priced apart its attributes keep (:data:`APART`),
    at the rates of the time it started (or ended; else now) where they change with time.

    Returns:
        False when the model has no price (its cost stays ``None``).
    """
    attributes = span.attributes
    at = span.ended_at if span.started_at is None else span.started_at
    if attributes and (SERVICE_TIER in attributes or SPEED in attributes or BATCH in attributes):
        tier, speed = attributes.get(SERVICE_TIER), attributes.get(SPEED)
        entry = resolve(
            span.model,
            span.provider or None,
            tier if type(tier) is str else None,
            speed if type(speed) is str else None,
            attributes.get(BATCH) is True,
            at,
        )
    else:  # the usual span: standard rates
        entry = resolve(span.model, span.provider or None, at=at)
    if entry is None:
        return False
    apart: tuple[int, ...] = ()
    if attributes and not attributes.keys().isdisjoint(APART):  # values from anywhere: counts only
        apart = tuple(_kept_count(attributes, key) for key in APART)
    cached, written = span.cached_tokens or 0, span.cache_write_tokens or 0
    span.cost = entry.amount(span.prompt_tokens, span.comp_tokens, cached, written, apart, span.reasoning_tokens or 0)
    span.cost_source = entry.source
    if not span.provider:
        span.provider = entry.provider
    return True


def cost(
    model: str,
    usage: Any,
    *,
    provider: str | None = None,
    service_tier: str | None = None,
    batch: bool = False,
    at: datetime | None = None,
) -> float | None:
    """The USD cost of a call, or ``None`` when the model is not in the price table.

    The table's price: a cost the provider reports in the usage (see :func:`reported_cost`) is
    what spans record, not what this gives.

    Example::

        tokentrace.cost("gpt-4o", resp.usage)   # 0.00256 for 512 input, 128 output tokens

    Args:
        model: the model id, as sent to or returned by the provider.
        usage: a usage object or dict (see :func:`normalize_usage`).
        provider: the provider id (``"openai"``, ``"anthropic"``, ``"google"``...) when the
            model name alone is ambiguous.
        service_tier: the service tier the response reports (OpenAI's ``"flex"``,
            ``"priority"``...), whose rates the table may hold; others cost the standard rates.
            Anthropic's speed mode is read from its usage.
        batch: the call went through a batch API (OpenAI's Batch API, Anthropic's message
            batches), billed at the table's batch rates; Anthropic's usage says so itself.
        at: when the call was made (default: now), for the models whose rates change with time:
            on a date, or with the time of day (DeepSeek's off-peak hours).

    Raises:
        TypeError: ``usage`` has none of the accepted fields.
        ValueError: a count is not a non-negative int (``"1000"``, ``-1``, ``True``; an integral
            float such as ``1000.0`` is read as that int), or the cached and cache-write tokens are
            more than the input tokens that include them.
    """
    priced = _priced(model, usage, provider, service_tier, batch, at)
    return None if priced is None else priced[0].dollars(*priced[1])


def _epoch_ms(at: datetime) -> float:
    """``at`` in ms since the epoch; one without a zone is UTC, as genai-prices takes it."""
    if not isinstance(at, datetime):
        raise TypeError(f"at must be a datetime, got {type(at).__name__}")
    return (at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)).timestamp() * 1000


def resolve(
    model: str,
    provider: str | None = None,
    service_tier: str | None = None,
    speed: str | None = None,
    batch: bool = False,
    at: float | None = None,
) -> _Price | None:
    """The cached price entry for a model (at the rates of a service tier, a speed, a batch API);
    ``None`` (warned once) when unknown. A tier or speed no model of the table has rates for is
    priced as none, and not cached apart: spans sent to a collector cannot grow the cache with them.
    A model whose rates change with time (on a date; DeepSeek's, with the time of day) is priced at
    the rates of ``at``, the call's time in ms since the epoch (default: now)."""
    rates: tuple[str | None, ...] = _STANDARD
    if service_tier is not None or speed is not None or batch:
        named = _conditions()
        rates = (
            service_tier if service_tier in named else None,
            speed if speed in named else None,
            "batch" if batch else None,
        )
    key = (model, provider or None, rates)
    try:
        entry = _cache[key]
    except KeyError:
        return _resolved(key, time.time() * 1000 if at is None else at)
    if entry is not None and entry.timed:
        moment = time.time() * 1000 if at is None else at
        if not entry.since <= moment < entry.until:
            return _period(key, entry, moment)
    return entry


def _resolved(key: _Key, at: float) -> _Price | None:
    """Resolve ``key`` at ``at`` and cache it: the cache's entry for it from now on."""
    generation = _generation  # read before the overrides are
    entry = _resolve_uncached(key, at)
    with _lock:
        if generation != _generation:  # prices registered or expired meanwhile: this one may be stale
            return entry
        if len(_cache) >= _MAX_KEPT:  # as many model names as spans can bring: start afresh
            _cache.clear()
            _periods.clear()
        _cache[key] = entry
    return entry


def _period(key: _Key, current: _Price, at: float) -> _Price | None:
    """The rates of ``key`` at ``at``, in another period than ``current``'s: one seen before, or
    resolved. It becomes the cache's entry, and ``current`` is kept among the others."""
    seen = _periods.get(key, ())
    entry = next((p for p in seen if p.since <= at < p.until), None)
    if entry is None:
        entry = _resolve_uncached(key, at)
    with _lock:
        if entry is not None and _cache.get(key) is current:  # else forgotten, or moved on, meanwhile
            _periods[key] = [*[p for p in seen if p is not entry][-(_MAX_PERIODS - 1) :], current]
            _cache[key] = entry
    return entry


def expire_stale() -> None:
    """Forget resolutions older than an hour, so dated price changes are picked up."""
    global _next_expiry
    now = time.monotonic()
    if now >= _next_expiry:
        _next_expiry = now + _RESOLVE_TTL_S
        with _lock:
            _forget()


_next_expiry = time.monotonic() + _RESOLVE_TTL_S


@functools.cache
def _conditions() -> frozenset[str]:
    """Every service tier, speed and processing some model of the table has rates for."""
    from genai_prices import data_snapshot

    return frozenset(
        value
        for provider in data_snapshot.get_snapshot().providers
        for model in provider.models
        for variant in model.price_variants or ()
        for key, value in variant.when.items()
        if key in _CONDITIONS
    )


def _resolve_uncached(key: _Key, at: float) -> _Price | None:
    """The price entry of ``key`` (model, provider, rates) at ``at``: a user's, else the table's."""
    model, provider, rates = key
    lowered = model.lower()
    wanted = _table_provider(provider) if provider and _overrides else None
    override = _override(lowered, wanted)
    if override is not None:
        return override
    found = _find(model, provider)
    if found is None:
        _note_unknown(model)
        return None
    table_provider, info = found
    if _overrides and info.id.lower() != lowered:  # a name of a table model (a dated id): its overrides too
        override = _override(info.id.lower(), wanted)
        if override is not None:
            return override
    return _from_table(table_provider, info, dict(zip(_CONDITIONS, rates, strict=True)), at)


def _override(model: str, provider: str | None) -> _Price | None:
    for override in _overrides:
        if fnmatch.fnmatchcase(model, override.pattern) and override.provider in (None, provider):
            return override.price
    return None


def _find(model: str, provider: str | None) -> tuple[Any, Any] | None:
    """The table's provider and model info for a model name, or None."""
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    provider = _table_provider(provider) if provider else None
    try:
        found_provider, info = snapshot.find_provider_model(model, None, provider, None)
    except LookupError:
        if provider is None or data_snapshot.find_provider_by_id(snapshot.providers, provider) is not None:
            return None  # a provider the table knows, without this model: not another provider's price
        try:  # a provider id the table does not know (e.g. "my-gateway"): let the model name decide
            found_provider, info = snapshot.find_provider_model(model, None, None, None)
        except LookupError:
            return None
    return found_provider, info


def _from_table(found_provider: Any, info: Any, conditions: dict[str, str | None], at: float) -> _Price:
    """The table's entry for a model at ``at`` (ms since the epoch), at the rates of the
    ``conditions`` its variants are for (genai-prices' price context: ``service_tier``, ``speed``,
    ``processing``); unset ones are left out."""
    moment = datetime.fromtimestamp(at / 1000, tz=timezone.utc)
    context = {key: value for key, value in conditions.items() if value} or None
    prices = info.get_prices(moment, context)
    rates = {key: getattr(prices, key, None) for key in _PRICE_KEYS}
    starts = sorted({t.start for r in rates.values() if r is not None and hasattr(r, "tiers") for t in r.tiers})
    since, until = _between_changes(info, at)
    base = _flat(found_provider.id, rates, -1)
    tiers = tuple((start, _flat(found_provider.id, rates, start)) for start in reversed(starts))
    timed = since != -math.inf or until != math.inf
    return msgspec.structs.replace(base, tiers=tiers, since=since, until=until, timed=timed)


_DAY_MS = 86_400_000


def _between_changes(info: Any, at: float) -> tuple[float, float]:
    """The table's last change of a model's rates at or before ``at`` (ms since the epoch), and
    its next one after: the dates its prices start on, and the ends of its daily windows."""
    conditional = info.prices if isinstance(info.prices, list) else ()
    constraints = [c.constraint for c in (*conditional, *(info.price_variants or ())) if c.constraint is not None]
    since, until = -math.inf, math.inf
    day = at - at % _DAY_MS
    for constraint in constraints:
        if hasattr(constraint, "start_date"):
            start = datetime.combine(constraint.start_date, dtime(), tzinfo=timezone.utc)
            changes = [start.timestamp() * 1000]
        elif hasattr(constraint, "start_time"):
            changes = [
                day + offset + _time_of_day_ms(clock)
                for clock in (constraint.start_time, constraint.end_time)
                for offset in (-_DAY_MS, 0, _DAY_MS)
            ]
        else:  # a kind of change this version does not know: its rates are looked up again a minute on
            changes = [at - at % 60_000, at - at % 60_000 + 60_000]
        for change in changes:
            if change <= at:
                since = max(since, change)
            else:
                until = min(until, change)
    return since, until


def _time_of_day_ms(clock: dtime) -> int:
    """A time of day in ms after midnight UTC (one without a zone is UTC, as genai-prices takes it)."""
    moment = datetime.combine(date(1970, 1, 1), clock)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return round(moment.timestamp() * 1000) % _DAY_MS


# genai-prices' provider ids that OpenTelemetry's well-known gen_ai.provider.name values call
# otherwise, and back (Vertex AI shares Google's table)
_OTEL_NAMES = {
    "azure": "azure.ai.openai",
    "aws": "aws.bedrock",
    "google": "gcp.gemini",
    "mistral": "mistral_ai",
    "x-ai": "x_ai",
}
_TABLE_PROVIDERS = {name: table for table, name in _OTEL_NAMES.items()} | {"gcp.vertex_ai": "google"}


def _table_provider(provider: str) -> str:
    """A provider id as the table has it: any case, OpenTelemetry's names for the platforms and
    the table's other names for a provider mapped to its id; one it does not know, lowercased."""
    from genai_prices import data_snapshot

    name = provider.strip().lower()
    name = _TABLE_PROVIDERS.get(name, name)
    found = data_snapshot.find_provider_by_id(data_snapshot.get_snapshot().providers, name)
    return name if found is None else found.id


def otel_provider_name(provider: str) -> str:
    """``provider`` as OpenTelemetry's well-known ``gen_ai.provider.name`` values have it: a
    table id they name otherwise (``"google"``, which a span priced without a provider is given,
    is ``"gcp.gemini"``), in any case, by that name; any other as it is."""
    return _OTEL_NAMES.get(provider.lower(), provider)


@functools.cache
def provider_at(base_url: str) -> str | None:
    """The provider whose API ``base_url`` is (``https://api.groq.com/openai/v1`` is ``"groq"``),
    from the API addresses genai-prices knows: named as OpenTelemetry names it where it has a
    name, else by the table's id; None at an address the table does not know (a local server, a
    gateway) or when the table cannot be read."""
    from genai_prices import data_snapshot

    try:
        found = data_snapshot.get_snapshot().find_provider(None, None, base_url)
    except Exception:  # no match (LookupError), or a table this version cannot read
        return None
    if found.id == "google" and "aiplatform.googleapis.com" in base_url:
        return "gcp.vertex_ai"
    return _OTEL_NAMES.get(found.id, found.id)


# The rates beyond the text tokens' (of the counts priced apart, of reasoning tokens, a fee per
# call), by their names here and in genai-prices
_APART_RATES = {
    "input_audio": "input_audio_mtok",
    "output_audio": "output_audio_mtok",
    "input_image": "input_image_mtok",
    "output_image": "output_image_mtok",
    "web_search": "web_searches_kcount",
    "file_search": "storage_searches_kcount",
    "audio_hour": "audio_hours",
    "input_char": "input_mchars",
    "output_citation": "output_citation_mtok",
    "output_reasoning": "output_reasoning_mtok",
    "request": "requests_kcount",
}
_PRICE_KEYS = (
    "input_mtok",
    "output_mtok",
    "cache_read_mtok",
    "cache_write_mtok",
    "cache_write_1h_mtok",
    *_APART_RATES.values(),
)


def _flat(provider: str, rates: dict[str, Any], above: int) -> _Price:
    """The flat prices that apply when the input is larger than ``above`` tokens."""

    def rate(key: str) -> Decimal | None:
        value = rates[key]
        if value is None or isinstance(value, Decimal):
            return value
        chosen: Decimal = value.base
        for tier in value.tiers:
            if above >= tier.start:
                chosen = tier.price
        return chosen

    inp = rate("input_mtok") or Decimal(0)
    apart: dict[str, Any] = {field: rate(key) for field, key in _APART_RATES.items()}
    return _Price(
        provider=provider,
        input=inp,
        output=rate("output_mtok") or Decimal(0),
        cache_read=_or(rate("cache_read_mtok"), inp),
        cache_write=_or(rate("cache_write_mtok"), inp),
        source="genai-prices",
        cache_write_1h=rate("cache_write_1h_mtok"),
        **apart,
    )


def _or(value: Decimal | None, default: Decimal) -> Decimal:
    return default if value is None else value


def _note_unknown(model: str) -> None:
    if model not in _warned and len(_warned) < _MAX_KEPT:
        _warned.add(model)
        _log.warning(
            "tokentrace has no price for model %r; its cost is null. Use tokentrace.register_price().",
            model,
        )
