"""Which ``Host`` headers the HTTP server answers for: its guard against DNS rebinding.

A web page on ``evil.example`` whose name the attacker then points at 127.0.0.1 is, to the
browser, the same origin as the tokentrace server it reaches there, so the page could read
every answer. The browser still sends ``Host: evil.example``, though, which the page cannot
change. So a server on a loopback address answers only for loopback names (``localhost``,
``*.localhost``, ``127.0.0.0/8``, ``[::1]``) and for the names the user allows
(``allowed_hosts``, e.g. behind a reverse proxy; ``"*"``: any). This module matches names; the
app refuses the requests.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Sequence

__all__ = ["ANY", "LOOPBACK_NAMES", "HostNames", "allowed_host", "allowed_hosts", "is_loopback"]

LOOPBACK_NAMES = ("localhost", "*.localhost", "127.0.0.0/8", "[::1]")  # always answered to
ANY = "*"
_NAME = re.compile(r"(?:\*\.)?[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")  # "*." for the subdomains
_HEADER = re.compile(r"(?:\[(?P<ipv6>[0-9a-f:.]+)\]|(?P<name>[^:\[\]]+))(?::[0-9]*)?")
_REMEMBERED = 256  # distinct Host values whose verdict is kept: a sender cannot grow it further


def allowed_host(entry: object) -> str:
    """One ``allowed_hosts`` entry, normalised: lower case, no trailing dot, IPs canonical.

    Raises:
        ValueError: not a host name, ``*.domain``, an IP address or ``*``; the message says so.
    """
    text = entry.strip().lower().removesuffix(".") if isinstance(entry, str) else ""
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if text == ANY or _NAME.fullmatch(text):
        return text
    raise ValueError(
        "must be a host name without scheme or port, such as tt.example.com, *.example.com for its "
        f"subdomains, an IP address, or * for any; got {entry!r}"
    )


def allowed_hosts(entries: object, where: str) -> tuple[str, ...]:
    """``entries`` checked and normalised (see :func:`allowed_host`).

    Raises:
        ValueError: not a list of such names; the message starts with ``where`` (and the index).
    """
    if isinstance(entries, (str, bytes)) or not isinstance(entries, Collection):
        raise ValueError(f"{where} must be a list of host names such as ['tt.example.com'], got {entries!r}")
    names = []
    for i, entry in enumerate(entries):
        try:
            names.append(allowed_host(entry))
        except ValueError as exc:
            raise ValueError(f"{where}[{i}] {exc}") from None
    return tuple(names)


class HostNames:
    """Which ``Host`` header values are answered: loopback names and ``allowed`` ones.

    Example::

        names = HostNames(["tt.example.com", "*.internal"])
        names.accepts(b"localhost:9090"), names.accepts(b"evil.example")   # True, False

    Args:
        allowed: names besides loopback ones (see :func:`allowed_host`); ``"*"``: any.

    Raises:
        ValueError: an entry is not acceptable.
    """

    def __init__(self, allowed: Sequence[str] = ()) -> None:
        names = allowed_hosts(allowed, "allowed_hosts")
        self.any = ANY in names
        self.extra = bool(names)
        self._exact = frozenset(names)
        self._suffixes = tuple(name[1:] for name in names if name.startswith("*."))
        self._seen: dict[bytes, bool] = {}  # a request costs one lookup for a value seen before

    def accepts(self, value: bytes) -> bool:
        """Whether a request with ``Host: value`` (port or not) is answered."""
        verdict = self._seen.get(value)
        if verdict is None:
            verdict = self.any or self._matches(value.decode("latin-1").lower())
            if len(self._seen) < _REMEMBERED:
                self._seen[value] = verdict
        return verdict

    def _matches(self, value: str) -> bool:
        parsed = _HEADER.fullmatch(value)
        if parsed is None:
            return False
        name = parsed["name"]
        if name is None:
            try:
                address = ipaddress.IPv6Address(parsed["ipv6"])
            except ValueError:
                return False
            return address.is_loopback or str(address) in self._exact
        name = name.removesuffix(".")
        if name.endswith(".localhost") or name in self._exact:
            return True
        return name.endswith(self._suffixes) or is_loopback(name)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, without brackets or port) is this machine's."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
