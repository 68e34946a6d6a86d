"""Where the HTTP server listens and who may talk to it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .hosts import ANY, allowed_hosts, is_loopback

__all__ = ["HTTPServerConfig", "hosts_to_check", "parse_addr"]

_DEFAULT_PORT = 9090


@dataclass(frozen=True)
class HTTPServerConfig:
    """The embedded HTTP server's settings.

    Example::

        tokentrace.Tracer(transport=..., http_server=tokentrace.HTTPServerConfig(addr=":9090"))

    Args:
        addr: ``host:port``. No host (``":9090"``) binds 127.0.0.1; all interfaces only when
            written out (``"0.0.0.0:9090"``), and then a ``token`` or ``insecure=True`` is required.
        token: bearer token every endpoint but ``/health`` requires.
        insecure: allow a non-loopback bind without a token.
        max_spans: recent spans kept in memory for the trace endpoints.
        allowed_hosts: ``Host`` names answered besides loopback ones, e.g. a reverse proxy's
            (``"tt.example.com"``, ``"*.example.com"`` for its subdomains, an IP address), or
            ``["*"]`` for any. On a loopback bind a request for another name is refused (421),
            which keeps web pages out that reach the server through DNS rebinding; on other
            binds names are checked only when some are given here. ``/health`` is never checked.

    Raises:
        ValueError: the address cannot be parsed, a public bind has no token, or an
            ``allowed_hosts`` entry is not a host name.
    """

    addr: str = f"127.0.0.1:{_DEFAULT_PORT}"
    token: str | None = None
    insecure: bool = False
    max_spans: int = 100_000
    allowed_hosts: Sequence[str] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.addr, str):
            raise ValueError(f"HTTPServerConfig.addr must be a str such as '127.0.0.1:9090', got {self.addr!r}")
        if self.token is not None and (not isinstance(self.token, str) or not self.token):
            raise ValueError("HTTPServerConfig.token must be a non-empty str, or None")
        if not isinstance(self.insecure, bool):  # "false" is truthy: it would allow a public bind
            raise ValueError(f"HTTPServerConfig.insecure must be True or False, got {self.insecure!r}")
        if type(self.max_spans) is not int:
            raise ValueError(f"HTTPServerConfig.max_spans must be an int, got {self.max_spans!r}")
        host, _ = parse_addr(self.addr)
        if not is_loopback(host) and not self.token and not self.insecure:
            raise ValueError(
                f"HTTPServerConfig.addr {self.addr!r} listens beyond this machine; "
                "set token= (recommended) or insecure=True"
            )
        if self.max_spans < 1:
            raise ValueError(f"HTTPServerConfig.max_spans must be at least 1, got {self.max_spans}")
        object.__setattr__(self, "allowed_hosts", allowed_hosts(self.allowed_hosts, "HTTPServerConfig.allowed_hosts"))

    @property
    def host(self) -> str:
        return parse_addr(self.addr)[0]

    @property
    def port(self) -> int:
        return parse_addr(self.addr)[1]


def parse_addr(addr: str) -> tuple[str, int]:
    """Split ``host:port`` (``[::1]:9090`` for IPv6); an empty host means 127.0.0.1.

    Raises:
        ValueError: not ``host:port`` with a port from 0 to 65535.
    """
    host, sep, port_text = addr.rpartition(":")
    digits = port_text.isascii() and port_text.isdigit() and len(port_text) <= 5  # no sign, space or "_"
    port = int(port_text) if digits else -1
    if not sep or not 0 <= port <= 65535:
        raise ValueError(
            f"addr must be host:port with a port from 0 to 65535, such as 127.0.0.1:9090 or :9090; got {addr!r}"
        )
    host = host.strip("[]") or "127.0.0.1"
    return host, port


def hosts_to_check(bind_host: str, allowed: Sequence[str]) -> Sequence[str] | None:
    """The ``Host`` names a server bound to ``bind_host`` answers for besides loopback ones;
    None: any name.

    On a loopback address the names are checked by default: that is where DNS rebinding
    reaches a server no one else can. Beyond it only when ``allowed`` gives some: the names
    the server is reached by there (its addresses, what DNS or a proxy calls it) are unknown
    here, and a token, which a rebinding page does not have, is required unless the bind was
    made ``insecure``.
    """
    if ANY in allowed or not (allowed or is_loopback(bind_host)):
        return None
    return allowed
