"""Fixtures shared by the SDK tests: the local fake provider and a tracer that keeps its spans."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.fakes.providers import ProviderServer
from tokentrace import Span, Tracer
from tokentrace.testing import capture_spans


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    with ProviderServer() as fake:
        yield fake


@pytest.fixture
def traced() -> Iterator[tuple[Tracer, list[Span]]]:
    with capture_spans() as pair:
        yield pair


@pytest.fixture
def client(server: ProviderServer, traced: tuple[Tracer, list[Span]]) -> Iterator[openai.OpenAI]:
    """An instrumented ``openai.OpenAI`` on the fake provider (the Anthropic tests have their own)."""
    raw = openai.OpenAI(base_url=server.openai_url, api_key="test-key", max_retries=0)
    yield traced[0].instrument(raw)
    raw.close()
