"""``Config``: the tracer's settings as one object, loadable from ``tokentrace.toml``.

Example ``tokentrace.toml``::

    exit_timeout = 5.0            # seconds the exit hook may spend flushing
    max_queue = 100000            # ended traces waiting for the worker at most

    [[transports]]
    type = "file"                 # "stdout", "file", "http" or "otlp"
    path = "./traces.jsonl"

    [http_server]
    addr = "127.0.0.1:9090"
    allowed_hosts = ["tt.example.com"]   # Host names answered besides loopback ones; ["*"]: any

    [[alerts]]
    name = "hourly-cost-spike"
    metric = "total_cost"
    op = ">"
    threshold = 5.0
    window = "1h"
    delivery = "stdout"
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from .alerts import AlertRule, load_rules
from .exceptions import ConfigError
from .server.config import HTTPServerConfig
from .server.hosts import allowed_hosts
from .transports import FileTransport, HTTPTransport, StdoutTransport, Transport

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

if TYPE_CHECKING:
    from .tracer import Tracer

__all__ = ["Config"]

_T = TypeVar("_T")


@dataclass
class Config:
    """The fields ``Tracer(...)`` takes, as one value; :meth:`from_toml` reads them from a file."""

    transport: Transport | Sequence[Transport] | None = None
    alerts: Sequence[AlertRule] = ()
    http_server: HTTPServerConfig | None = None
    exit_timeout: float = 5.0
    max_queue: int = 100_000

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> Config:
        """Read ``[[transports]]``, ``[http_server]``, ``[[alerts]]``, ``exit_timeout`` and ``max_queue``.

        Every field's type is checked (``insecure = "false"`` is refused, not taken as true), and
        keys the tables do not take are refused.

        Raises:
            ConfigError: a table or field is not acceptable; the message names it
                (``http_server.insecure``) and what it accepts. A ``ValueError``.
            OSError: the file cannot be read.
        """
        with open(path, "rb") as file:
            return cls.from_mapping(tomllib.load(file))

    @classmethod
    def from_mapping(cls, document: Mapping[str, Any]) -> Config:
        """The same as :meth:`from_toml`, from an already parsed document."""
        _check_keys(document, _TOP_LEVEL, "")
        tables = document.get("transports", [])
        if not isinstance(tables, list) or not all(isinstance(t, Mapping) for t in tables):
            raise ConfigError("transports must be an array of tables ([[transports]] in TOML)")
        server = document.get("http_server")
        if server is not None and not isinstance(server, Mapping):
            raise ConfigError("http_server must be a table ([http_server] in TOML)")
        settings = _checked(document, _TRACER_FIELDS, "")
        return cls(
            transport=[_transport(t, f"transports[{i}]") for i, t in enumerate(tables)],
            alerts=load_rules(document),
            http_server=None if server is None else _build(HTTPServerConfig, server, _SERVER_FIELDS, "http_server"),
            **settings,
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
    kind = table.get("type")
    if kind not in _TRANSPORT_FIELDS:
        raise ConfigError(f"{where}.type must be one of {', '.join(_TRANSPORT_FIELDS)}; got {kind!r}")
    fields = _TRANSPORT_FIELDS[kind]
    args = {key: value for key, value in table.items() if key != "type"}
    _check_keys(args, ("type", *fields), where)
    for key in fields:
        if fields[key].required and key not in args:
            raise ConfigError(f"{where}.{key} is required for a {kind} transport ({fields[key].accepted})")
    return _build(_TRANSPORT_MAKERS[kind], args, fields, where)


@dataclass(frozen=True)
class _Kind:
    """What one field accepts: a type, for numbers a range, and how to say it in an error."""

    accepted: str
    types: type | tuple[type, ...]
    low: float | None = None
    low_open: bool = False
    required: bool = False

    def check(self, value: Any, where: str) -> None:
        if not self._fits(value):
            raise ConfigError(f"{where} must be {self.accepted}, got {value!r}")

    def _fits(self, value: Any) -> bool:
        types = self.types if isinstance(self.types, tuple) else (self.types,)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            return False  # a TOML boolean is a Python int, and "false" a truthy string
        if isinstance(value, Mapping):
            return all(isinstance(v, str) for v in value.values())
        if self.low is None or not isinstance(value, (int, float)):
            return True
        return math.isfinite(value) and (value > self.low if self.low_open else value >= self.low)


@dataclass(frozen=True)
class _HostList(_Kind):
    """A list of ``Host`` names, each one checked, so an error names the entry (``[1]``)."""

    def check(self, value: Any, where: str) -> None:
        try:
            allowed_hosts(value, where)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


def _check_keys(table: Mapping[str, Any], fields: Collection[str], where: str) -> None:
    unknown = sorted(set(table) - set(fields))
    if unknown:
        prefix = f"{where}: unknown" if where else "unknown top-level"
        raise ConfigError(f"{prefix} key(s) {', '.join(unknown)}; accepted: {', '.join(fields)}")


def _checked(table: Mapping[str, Any], fields: Mapping[str, _Kind], where: str) -> dict[str, Any]:
    """The table's values for ``fields``, each checked; errors name ``where.key``."""
    values = {key: table[key] for key in fields if key in table}
    for key, value in values.items():
        fields[key].check(value, f"{where}.{key}" if where else key)
    return values


def _build(factory: Callable[..., _T], table: Mapping[str, Any], fields: Mapping[str, _Kind], where: str) -> _T:
    _check_keys(table, fields, where)
    try:
        return factory(**_checked(table, fields, where))
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


_BOOL = _Kind("true or false", bool)
_STR = _Kind("a string", str)
_REQUIRED_STR = _Kind("a string", str, required=True)
_POSITIVE = _Kind("a number greater than 0", (int, float), low=0, low_open=True)
_NOT_NEGATIVE = _Kind("a number of at least 0", (int, float), low=0)
_COUNT = _Kind("an integer of at least 1", int, low=1)
_BATCHING = {"max_queue": _COUNT, "max_batch": _COUNT, "interval": _POSITIVE}
_TRANSPORT_FIELDS: dict[str, dict[str, _Kind]] = {
    "stdout": {"compact": _BOOL},
    "file": {"path": _REQUIRED_STR, "fsync": _BOOL, "sync": _BOOL},
    "http": {
        "url": _REQUIRED_STR,
        "token": _STR,
        "deadline": _POSITIVE,
        "timeout": _POSITIVE,
        "backoff": _NOT_NEGATIVE,
        **_BATCHING,
    },
    "otlp": {
        "endpoint": _STR,
        "headers": _Kind("a table of strings", Mapping),
        "timeout": _POSITIVE,
        "compression": _STR,
        "service_name": _STR,
        **_BATCHING,
    },
}


def _otlp(**args: Any) -> Transport:
    """An OTLPTransport, whose module (and the OpenTelemetry packages) is imported only for one."""
    from .transports.otlp import OTLPTransport

    return OTLPTransport(**args)


_TRANSPORT_MAKERS: dict[str, Callable[..., Transport]] = {
    "stdout": StdoutTransport,
    "file": FileTransport,
    "http": HTTPTransport,
    "otlp": _otlp,
}
_SERVER_FIELDS = {
    "addr": _STR,
    "token": _STR,
    "insecure": _BOOL,
    "max_spans": _COUNT,
    "allowed_hosts": _HostList("a list of host names", list),
}
_TRACER_FIELDS = {"exit_timeout": _NOT_NEGATIVE, "max_queue": _COUNT}
_TOP_LEVEL = ("transports", "http_server", "alerts", *_TRACER_FIELDS)
