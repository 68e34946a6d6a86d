"""The HTTP server: one Starlette app (:func:`make_app`), run inside an application
(``HTTPServerConfig``) or standalone as the collector (``tokentrace serve``).

Only the configuration is imported eagerly, so ``import tokentrace`` does not pay for the web
stack; the rest loads on first use.
"""

from __future__ import annotations

from typing import Any

from .config import HTTPServerConfig, parse_addr

__all__ = ["Collector", "HTTPServerConfig", "make_app", "parse_addr", "start_embedded"]


def __getattr__(name: str) -> Any:
    if name == "make_app":
        from .app import make_app

        return make_app
    if name == "start_embedded":
        from .embedded import start_embedded

        return start_embedded
    if name == "Collector":
        from .collector import Collector

        return Collector
    raise AttributeError(f"module 'tokentrace.server' has no attribute {name!r}")
