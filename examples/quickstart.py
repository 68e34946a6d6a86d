"""The quickstart guide as a Python program: record one model call and print its span."""

from __future__ import annotations

import time
from dataclasses import dataclass

import tokentrace


@dataclass
class ModelUsage:
    prompt_tokens: int
    completion_tokens: int


@dataclass
class ModelResponse:
    content: str
    usage: ModelUsage


def call_model(prompt: str) -> ModelResponse:
    """Stands in for your real inference call (OpenAI, Anthropic or any provider)."""
    return ModelResponse(content="...", usage=ModelUsage(prompt_tokens=512, completion_tokens=128))


def main() -> None:
    # In production, swap StdoutTransport for FileTransport or HTTPTransport.
    tracer = tokentrace.Tracer(transport=tokentrace.StdoutTransport())

    trace = tracer.start("summarize-document")
    start = time.perf_counter()
    err: Exception | None = None
    try:
        resp = call_model("Summarize the following document in two sentences: ...")
    except Exception as exc:
        err, resp = exc, ModelResponse("", ModelUsage(0, 0))
    elapsed_ms = (time.perf_counter() - start) * 1000

    trace.record(
        tokentrace.Span(
            model="gpt-4o",
            provider="openai",
            prompt_tokens=resp.usage.prompt_tokens,
            comp_tokens=resp.usage.completion_tokens,
            latency_ms=elapsed_ms,
            cost=tokentrace.cost("gpt-4o", resp.usage),
            status=tokentrace.Status.OK,
        )
    )
    if err is not None:
        trace.record_error(err)
    trace.end()  # the span is printed by the time end() returns
    print("done")
    tracer.close()


if __name__ == "__main__":
    main()
