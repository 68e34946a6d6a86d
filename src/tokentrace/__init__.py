"""tokentrace: tracing, pricing and alerting for LLM inference calls.

Example::

    import tokentrace

    tracer = tokentrace.Tracer(transport=tokentrace.StdoutTransport())
    trace = tracer.start("summarize-document")
    trace.record(tokentrace.Span(model="gpt-4o", provider="openai", prompt_tokens=512, comp_tokens=128))
    trace.end()
"""

from __future__ import annotations

import importlib.metadata as _metadata

from .alerts import AlertRule, CallbackDelivery, HTTPDelivery, Op, StdoutDelivery
from .config import Config
from .exceptions import ConfigError, TokentraceError
from .pricing import Usage, cost, register_price, unregister_prices
from .server.config import HTTPServerConfig
from .spans import Span, Status
from .tracer import ActiveSpan, Trace, Tracer, current_trace
from .transports import FileTransport, HTTPTransport, StdoutTransport, Transport

try:
    __version__ = _metadata.version("tokentrace")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    from ._version import __version__

__all__ = [
    "ActiveSpan",
    "AlertRule",
    "CallbackDelivery",
    "Config",
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


def __getattr__(name: str) -> object:
    # Names whose modules need optional extras are imported on first use.
    if name == "OTLPTransport":
        from .transports.otlp import OTLPTransport

        return OTLPTransport
    if name == "uninstrument":
        from .integrations import uninstrument

        return uninstrument
    raise AttributeError(f"module 'tokentrace' has no attribute {name!r}")
