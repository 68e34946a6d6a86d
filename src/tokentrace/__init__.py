"""tokentrace: tracing, pricing and alerting for LLM inference calls.

Example::

    import tokentrace

    tracer = tokentrace.Tracer(transport=tokentrace.StdoutTransport())
    trace = tracer.start("summarize-document")
    trace.record(tokentrace.Span(model="gpt-4o", provider="openai", prompt_tokens=512, comp_tokens=128))
    trace.end()
"""

from __future__ import annotations

from typing import Any

from ._version import __version__
from .alerts import AlertRule, CallbackDelivery, HTTPDelivery, Op, StdoutDelivery
from .exceptions import ConfigError, TokentraceError
from .pricing import Usage, cost, register_price, unregister_prices
from .server.config import HTTPServerConfig
from .spans import Span, Status
from .tracer import ActiveSpan, Trace, Tracer, current_trace
from .transports import FileTransport, HTTPTransport, StdoutTransport, Transport

__all__ = [
    "ActiveSpan",
    "AlertRule",
    "CallbackDelivery",
    "ConfigError",
    "FileTransport",
    "HTTPDelivery",
    "HTTPServerConfig",
    "HTTPTransport",
    "OTLPTransport",
    "Op",
    "Span",
    "Status",
    "StdoutDelivery",
    "StdoutTransport",
    "TokentraceError",
    "Trace",
    "Tracer",
    "Transport",
    "Usage",
    "__version__",
    "cost",
    "current_trace",
    "register_price",
    "uninstrument",
    "unregister_prices",
]


def __getattr__(name: str) -> Any:
    # Names whose modules need optional extras are imported on first use.
    if name == "OTLPTransport":
        from .transports.otlp import OTLPTransport

        return OTLPTransport
    if name == "uninstrument":
        from .integrations import uninstrument

        return uninstrument
    raise AttributeError(f"module 'tokentrace' has no attribute {name!r}")
