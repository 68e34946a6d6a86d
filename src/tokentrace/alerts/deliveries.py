"""Where alert notifications go: stdout, a webhook, or a function of yours.

Every delivery's :meth:`Delivery.send` runs on the alert delivery worker
(``tokentrace.alerts``), never on the thread that records spans, so a slow or dead webhook
delays nothing else. :class:`HTTPDelivery` retries connection errors, timeouts, 429 and 5xx
with jittered exponential backoff inside a total deadline, honours ``Retry-After``, gives up
at once on other 4xx answers, sends an ``Idempotency-Key`` so receivers can drop repeats, and
signs the body with HMAC-SHA256 when given a secret (checked with :func:`verify_signature`).
"""

from __future__ import annotations

import abc
import enum
import functools
import hashlib
import hmac
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

import httpx
import msgspec

from .. import _fork
from .._retry import post_within, retry_delay
from .._version import __version__
from ..transports.base import check_headers

__all__ = [
    "SIGNATURE_HEADER",
    "CallbackDelivery",
    "Delivery",
    "DeliveryOutcome",
    "HTTPDelivery",
    "StdoutDelivery",
    "encode_payload",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Tokentrace-Signature"
"""Carries ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>`` when a secret is set."""

_log = logging.getLogger(__name__)
_encoder = msgspec.json.Encoder(decimal_format="number")
_DEFAULT_TIMEOUT_S = 10.0
_DEFAULT_DEADLINE_S = 60.0
_DEFAULT_BACKOFF_S = 0.5
_SIGNATURE_TOLERANCE_S = 300


class DeliveryOutcome(str, enum.Enum):
    """What became of one notification."""

    DELIVERED = "delivered"
    REJECTED = "rejected"  # the receiver refused it (4xx other than 429): not retried
    FAILED = "failed"  # no success before the deadline, or the delivery raised


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """The payload as compact JSON, keys in order, money printed exactly (``5.12``)."""
    return _encoder.encode(payload)


class Delivery(abc.ABC):
    """Base class of alert deliveries; subclass it to send notifications elsewhere."""

    @abc.abstractmethod
    def send(self, payload: dict[str, Any], *, key: str) -> DeliveryOutcome:
        """Deliver one notification. ``key`` is unique per notification (for deduplication)."""

    def close(self) -> None:  # noqa: B027 - most deliveries hold nothing to release
        """Release what the delivery holds (connections); called when the engine closes."""

    def describe(self) -> str:
        """A short description for ``GET /alerts``."""
        return type(self).__name__


class StdoutDelivery(Delivery):
    """Print each payload as JSON, indented like the quickstart shows it.

    Example::

        AlertRule(..., delivery=StdoutDelivery())             # sys.stdout at send time
        AlertRule(..., delivery=StdoutDelivery(out=stream, pretty=False))   # one line each
    """

    def __init__(self, out: TextIO | None = None, *, pretty: bool = True) -> None:
        self._out = out
        self._pretty = pretty
        self._lock = _fork.lock()

    def send(self, payload: dict[str, Any], *, key: str) -> DeliveryOutcome:
        body = encode_payload(payload)
        if self._pretty:
            body = msgspec.json.format(body, indent=2)
        out = self._out or sys.stdout
        with self._lock:  # one write per payload, never interleaved
            out.write(body.decode() + "\n")
            out.flush()
        return DeliveryOutcome.DELIVERED

    def describe(self) -> str:
        return "stdout"


class CallbackDelivery(Delivery):
    """Call ``fn(payload)`` with each payload dict (money as ``Decimal``).

    Example::

        AlertRule(..., delivery=CallbackDelivery(lambda alert: pager.page(alert["alert"])))
    """

    def __init__(self, fn: Callable[[dict[str, Any]], object]) -> None:
        if not callable(fn):
            raise ValueError(f"CallbackDelivery needs a callable taking the payload dict, got {fn!r}")
        self._fn = fn

    def send(self, payload: dict[str, Any], *, key: str) -> DeliveryOutcome:
        self._fn(dict(payload))
        return DeliveryOutcome.DELIVERED

    def describe(self) -> str:
        return f"callback:{getattr(self._fn, '__qualname__', type(self._fn).__name__)}"


def sign(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (unix seconds)."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str | bytes,
    header: str,
    body: bytes,
    *,
    tolerance: float = _SIGNATURE_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Check a received ``X-Tokentrace-Signature`` header (for webhook receivers).

    Returns:
        True when the signature matches the body and its timestamp is within ``tolerance``
        seconds of ``now`` (default: the current time).
    """
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split(",", 1)[1]
    return hmac.compare_digest(expected, f"v1={fields.get('v1', '')}")


class HTTPDelivery(Delivery):
    """POST each payload as JSON to a webhook.

    Example::

        HTTPDelivery("https://hooks.example.com/tokentrace", secret=os.environ["TT_HOOK_SECRET"])

    Args:
        url: an ``http://`` or ``https://`` URL.
        headers: extra request headers (an ``Authorization`` token, say).
        secret: sign each body: header ``X-Tokentrace-Signature: t=<unix>,v1=<hex>``, the
            HMAC-SHA256 of ``"<t>." + body`` (see :func:`verify_signature`).
        timeout: seconds for one attempt (connect, send, and wait for the answer).
        deadline: seconds for all attempts of one notification; no attempt starts after it.
        backoff: the first retry delay in seconds; it doubles per retry (jittered, at most
            30 s). A ``Retry-After`` answer asking for longer sets the delay instead.

    Raises:
        ValueError: a bad URL, header, secret or duration.
    """

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        secret: str | bytes | None = None,
        timeout: float = _DEFAULT_TIMEOUT_S,
        *,
        deadline: float = _DEFAULT_DEADLINE_S,
        backoff: float = _DEFAULT_BACKOFF_S,
    ) -> None:
        self.url = _check_url(url)
        self._headers = _check_headers(headers)
        if secret is not None and (not isinstance(secret, (str, bytes)) or not secret):
            raise ValueError("HTTPDelivery.secret must be a non-empty str or bytes, or None")
        self._secret = secret
        for field, value in (("timeout", timeout), ("deadline", deadline), ("backoff", backoff)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"HTTPDelivery.{field} must be a number of seconds > 0, got {value!r}")
        self.timeout, self.deadline, self.backoff = float(timeout), float(deadline), float(backoff)
        self._client = _fork.PerProcess(
            functools.partial(httpx.Client, follow_redirects=False, headers={"User-Agent": f"tokentrace/{__version__}"})
        )
        self._waits: set[threading.Event] = set()  # one per send under way: close() ends its waits
        self._waits_lock = _fork.lock()

    def describe(self) -> str:
        return f"webhook:{httpx.URL(self.url).copy_with(query=None, fragment=None)}"

    def send(self, payload: dict[str, Any], *, key: str) -> DeliveryOutcome:
        """POST the payload, retrying as the class describes; never raises for HTTP trouble."""
        body = encode_payload(payload)
        deadline = time.monotonic() + self.deadline
        attempts = 0
        closing = threading.Event()
        with self._waits_lock:
            self._waits.add(closing)
        try:
            # the time left is checked before each attempt: a wait between two can end past the deadline
            while (remaining := deadline - time.monotonic()) > 0:
                outcome, asked = self._attempt(body, key, min(self.timeout, remaining))
                if outcome is not None:
                    return outcome
                delay = retry_delay(asked, self.backoff, attempts)
                attempts += 1
                if time.monotonic() + delay >= deadline or closing.wait(delay):
                    break
        finally:
            with self._waits_lock:
                self._waits.discard(closing)
        _log.warning("tokentrace alert webhook %s gave up after %d attempt(s)", self.url, attempts)
        return DeliveryOutcome.FAILED

    def _attempt(self, body: bytes, key: str, timeout: float) -> tuple[DeliveryOutcome | None, str | None]:
        """One POST: an outcome when settled, else (None, the Retry-After header if any)."""
        try:
            headers = self._request_headers(body, key)
            response = post_within(self._client, self.url, timeout, content=body, headers=headers)
        except httpx.TransportError as exc:  # refused, reset, timed out: worth another try
            _log.debug("tokentrace alert webhook %s: %r", self.url, exc)
            return None, None
        status = response.status_code
        if 200 <= status < 300:
            return DeliveryOutcome.DELIVERED, None
        if status == 429 or status >= 500:
            return None, response.headers.get("Retry-After")
        _log.warning("tokentrace alert webhook %s refused the notification: HTTP %d", self.url, status)
        return DeliveryOutcome.REJECTED, None

    def _request_headers(self, body: bytes, key: str) -> dict[str, str]:
        headers = {**self._headers, "Content-Type": "application/json", "Idempotency-Key": key}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret, body, int(time.time()))
        return headers

    def close(self) -> None:
        """Stop the sends under way waiting between retries, and close the connections; a
        later send (the rule given to another tracer) opens new ones."""
        with self._waits_lock:
            for closing in self._waits:
                closing.set()
        client = self._client.take()  # a parent's stays open for it
        if client is not None:
            client.close()


def _check_url(url: object) -> str:
    try:
        parsed = httpx.URL(url) if isinstance(url, str) else None
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"HTTPDelivery.url must be an http:// or https:// URL, got {url!r}")
    return str(url)


def _check_headers(headers: object) -> dict[str, str]:
    """Headers HTTP carries as they are: a token read from a file with its newline would fail
    every delivery, as if the receiver were down."""
    return {} if headers is None else check_headers(headers, "HTTPDelivery.headers")
