"""Shared fixtures; tests under e2e/ are marked ``e2e`` by folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tokentrace import pricing


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "e2e" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def _fresh_price_overrides() -> Iterator[None]:
    yield
    pricing.unregister_prices()
