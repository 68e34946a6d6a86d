"""Fixtures for the HTTP tests: a collector on a real SQLite file served by a real uvicorn."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.collector_kit import running
from tokentrace.server.collector import Collector


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    c = Collector(tmp_path / "tokentrace.db")
    yield c
    c.close()


@pytest.fixture
def client(collector: Collector) -> Iterator[httpx.Client]:
    with running(collector.app) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http
