"""Retry timing, and a time limit on each attempt, shared by everything that posts over HTTP
(span batches, alert webhooks); and the retrying POST of span batches, by OTLP/HTTP's rules."""

from __future__ import annotations

import email.utils
import math
import random
import threading
import time
from typing import Any

import httpx

from ._fork import PerProcess

__all__ = ["backoff_delay", "post_retrying", "post_within", "refusal", "retry_after", "retry_delay"]

_MAX_BACKOFF_S = 30.0
_MAX_REFUSAL_CHARS = 300
_RETRYABLE = frozenset({429, 502, 503, 504})


def retry_delay(retry_after_header: str | None, base: float, attempt: int) -> float:
    """Seconds to wait before the next attempt: the backoff, or longer if the server's
    ``Retry-After`` asks for more (a shorter one, even ``0``, does not hurry a server that keeps
    refusing)."""
    return max(retry_after(retry_after_header) or 0.0, backoff_delay(base, attempt))


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), if valid."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def backoff_delay(base: float, attempt: int, cap: float = _MAX_BACKOFF_S) -> float:
    """Exponential backoff with jitter: ``base * 2**attempt`` (at most ``cap``), halved at random,
    so many senders retrying at once spread out."""
    ceiling = min(cap, base * 2**attempt)
    return random.uniform(ceiling / 2, ceiling)


def post_within(client: PerProcess[httpx.Client], url: str, seconds: float, **options: Any) -> httpx.Response:
    """POST with ``client``, within ``seconds`` in all: httpx's timeouts bound each read and
    write, not the whole exchange, so an answer trickled in a byte at a time could hold an
    attempt for minutes. Past ``seconds`` the connection is closed (the next attempt makes a new
    client) and ``httpx.ReadTimeout`` is raised."""
    http = client.get()
    cut = threading.Event()

    def cut_off() -> None:
        cut.set()
        if client.made() is http:
            client.take()
        http.close()

    timer = threading.Timer(seconds, cut_off)
    timer.daemon = True
    timer.start()
    try:
        return http.post(url, timeout=seconds, **options)
    except httpx.TransportError as exc:
        if cut.is_set():
            raise httpx.ReadTimeout(f"no whole answer within {seconds:g} s") from exc
        raise
    finally:
        timer.cancel()


def post_retrying(
    client: PerProcess[httpx.Client],
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    until: float,
    timeout: float,
    backoff: float,
) -> tuple[str | None, httpx.Response | None]:
    """POST ``body`` until it is answered for good or ``until`` (a ``time.monotonic()`` time)
    passes: connection errors, timeouts and 429/502/503/504 are retried after
    :func:`retry_delay`, each attempt within ``timeout`` seconds (see :func:`post_within`).

    Returns:
        ``(None, answer)`` when accepted (2xx); else why it was not (``http_<status>``,
        ``timeout``, ``connection_error``, or ``deadline`` when no attempt had time left), and
        the last answer, if there was one.
    """
    attempt = 0
    while (remaining := until - time.monotonic()) > 0:
        response = None
        try:
            response = post_within(client, url, min(timeout, remaining), content=body, headers=headers)
        except httpx.TimeoutException:
            reason = "timeout"
        except httpx.TransportError:
            reason = "connection_error"
        else:
            if response.status_code < 300:
                return None, response
            reason = f"http_{response.status_code}"
            if response.status_code not in _RETRYABLE:
                return reason, response
        delay = retry_delay(None if response is None else response.headers.get("Retry-After"), backoff, attempt)
        attempt += 1
        if time.monotonic() + delay >= until:
            return reason, response
        time.sleep(delay)
    return "deadline", None


def refusal(url: str, response: httpx.Response | None) -> str:
    """``url`` and what its answer said, for the log line of a loss: where a redirect points
    (redirects are not followed: the headers would go along), a JSON answer's ``error`` (what
    the collector says: ``missing or wrong bearer token``), else the start of a text answer."""
    said = ""
    if response is not None and response.is_redirect:
        said = f"redirected to {response.headers['Location']}"
    elif response is not None and response.content:
        kind = response.headers.get("Content-Type", "")
        if "json" in kind:
            try:
                error = response.json().get("error")
            except (ValueError, AttributeError):
                error = None
            said = error if isinstance(error, str) else response.text
        elif kind.startswith("text/"):
            said = response.text
    said = " ".join(said.split())[:_MAX_REFUSAL_CHARS]
    return f"{url}: {said}" if said else url
