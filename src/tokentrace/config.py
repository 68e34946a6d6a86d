"""``Config``: the tracer's settings as one object, loadable from ``tokentrace.toml``.

Example ``tokentrace.toml``::

    [[transports]]
    type = "file"                 # "stdout", "file", "http" or "otlp"
    path = "./traces.jsonl"

    [http_server]
    addr = "127.0.0.1:9090"

    [[alerts]]
    name = "hourly-cost-spike"
    metric = "total_cost"
    op = ">"
    threshold = 5.0
    window = "1h"
    delivery = "stdout"
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .alerts import AlertRule, load_rules
from .server.config import HTTPServerConfig
from .transports import FileTransport, HTTPTransport, StdoutTransport, Transport

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

if TYPE_CHECKING:
    from .tracer import Tracer

__all__ = ["Config"]

_TRANSPORT_TYPES = ("stdout", "file", "http", "otlp")


@dataclass
class Config:
    """The fields ``Tracer(...)`` takes, as one value; :meth:`from_toml` reads them from a file."""

    transport: Transport | Sequence[Transport] | None = None
    alerts: Sequence[AlertRule] = ()
    http_server: HTTPServerConfig | None = None
    exit_timeout: float = 5.0
    max_queue: int = 100_000
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> Config:
        """Read ``[[transports]]``, ``[http_server]`` and ``[[alerts]]`` from a TOML file.

        Raises:
            ValueError: a table or field is not acceptable; the message names it.
            OSError: the file cannot be read.
        """
        with open(path, "rb") as file:
            return cls.from_mapping(tomllib.load(file))

    @classmethod
    def from_mapping(cls, document: Mapping[str, Any]) -> Config:
        """The same as :meth:`from_toml`, from an already parsed document."""
        tables = document.get("transports", [])
        if not isinstance(tables, list) or not all(isinstance(t, Mapping) for t in tables):
            raise ValueError("transports must be an array of tables ([[transports]] in TOML)")
        server = document.get("http_server")
        if server is not None and not isinstance(server, Mapping):
            raise ValueError("http_server must be a table ([http_server] in TOML)")
        try:
            http_server = None if server is None else HTTPServerConfig(**server)
        except TypeError as exc:
            raise ValueError(f"http_server: {exc}; accepted: addr, token, insecure, max_spans") from None
        return cls(
            transport=[_transport(t, f"transports[{i}]") for i, t in enumerate(tables)],
            alerts=load_rules(document),
            http_server=http_server,
        )

    def build(self) -> Tracer:
        """A :class:`~tokentrace.Tracer` with these settings (same as ``Tracer.from_config``)."""
        from .tracer import Tracer

        return Tracer(
            transport=self.transport,
            alerts=self.alerts,
            http_server=self.http_server,
            exit_timeout=self.exit_timeout,
            max_queue=self.max_queue,
        )


def _transport(table: Mapping[str, Any], where: str) -> Transport:
    args = dict(table)
    kind = args.pop("type", None)
    try:
        if kind == "stdout":
            return StdoutTransport(**args)
        if kind == "file":
            return FileTransport(**args)
        if kind == "http":
            return HTTPTransport(**args)
        if kind == "otlp":
            from .transports.otlp import OTLPTransport

            transport: Transport = OTLPTransport(**args)
            return transport
    except TypeError as exc:
        raise ValueError(f"{where}: {exc}") from None
    raise ValueError(f"{where}.type must be one of {', '.join(_TRANSPORT_TYPES)}; got {kind!r}")
