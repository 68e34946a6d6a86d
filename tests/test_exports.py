"""``tokentrace.__all__`` is exactly the public names, sorted."""

from __future__ import annotations

import tokentrace


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in dir(tokentrace) if not name.startswith("_")} - {
        "alerts", "durations", "exceptions", "integrations", "pricing", "server", "spans", "store",
        "testing", "tracer", "transports", "windows", "annotations", "config", "cli",
    }  # fmt: skip
    lazy = {"OTLPTransport", "uninstrument"}  # imported on first use (optional extras)
    assert set(tokentrace.__all__) == public | lazy | {"__version__"}
    assert tokentrace.__all__ == sorted(tokentrace.__all__, key=str)
    for name in tokentrace.__all__:
        assert getattr(tokentrace, name) is not None


def test_version_comes_from_the_package() -> None:
    from importlib.metadata import version

    assert tokentrace.__version__ == version("tokentrace")
