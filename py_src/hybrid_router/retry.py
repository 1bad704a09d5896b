"""Retries, after the contract of the official OpenAI and Anthropic Python SDKs.

- Up to ``max_retries`` (2) retries after the first attempt.
- Retried: connection failures and timeouts raised by the transport (``OfflineError``,
  ``CloudTimeoutError``), and the statuses 408, 409, 429 and 5xx. A response header
  ``x-should-retry: true|false`` overrides the status either way.
- The wait: the server's ``retry-after-ms`` (milliseconds) or ``Retry-After`` (seconds, or an HTTP date)
  when it is in ``0 < x <= max_retry_after`` (60 s); otherwise exponential backoff
  ``min(initial_delay * 2**n, max_delay)`` (0.5, 1, 2, ... 8 s) times ``1 - jitter * random()``.
  A server that asks for more than ``max_retry_after`` is not retried at all (as the current SDKs
  do): waiting less than it asked is pointless, and the caller gets ``retry_after`` in the error.
- When no retry is left: 429 -> ``RateLimitError`` (``details``: status, retry_after), any other
  status -> ``CloudError`` (status, the provider's own message, type and code), a timeout ->
  ``CloudTimeoutError``, a connection failure -> ``OfflineError``; all with ``attempts``.

Only the exchange up to the response headers is retried. A streamed body that breaks later is not
(see ``providers.base``): the caller may already have shown part of it.

``sleep``, ``random`` and ``clock`` are injectable, so tests never wait and can check every delay.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import random as _random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from .errors import CloudError, CloudTimeoutError, HybridRouterError, OfflineError, RateLimitError
from .transport import AsyncTransport, Request, Response

__all__ = [
    "RetryPolicy",
    "error_fields",
    "error_for_status",
    "parse_retry_after",
    "send_with_retries",
]

_RETRY_STATUSES = frozenset({408, 409, 429})
_MAX_MESSAGE = 500  # characters of a provider's error text kept in our message


def parse_retry_after(headers: Mapping[str, str], *, now: float) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms``, else ``Retry-After`` as seconds or as
    an HTTP date (relative to ``now``, a Unix time). None when absent or unreadable."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if not math.isnan(seconds):
            return seconds
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" in an HTTP date: UTC
        when = when.replace(tzinfo=UTC)
    return when.timestamp() - now


@dataclass(frozen=True)
class RetryPolicy:
    """How many times and how long to wait; see the module docstring."""

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.25
    max_retry_after: float = 60.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False, compare=False)
    random: Callable[[], float] = field(default=_random.random, repr=False, compare=False)
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, not {self.max_retries!r}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be in [0, 1], not {self.jitter!r}")
        if self.initial_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must be >= 0")

    def retry_after(self, headers: Mapping[str, str]) -> float | None:
        return parse_retry_after(headers, now=self.clock())

    def backoff(self, retries_taken: int) -> float:
        """The wait before retry number ``retries_taken + 1`` when the server did not say."""
        base = min(self.initial_delay * 2.0 ** min(retries_taken, 64), self.max_delay)
        return max(0.0, base * (1.0 - self.jitter * self.random()))

    def delay(self, retries_taken: int, headers: Mapping[str, str] | None = None) -> float:
        """The wait before the next retry: the server's, when given and reasonable, else backoff."""
        if headers is not None:
            asked = self.retry_after(headers)
            if asked is not None and 0 < asked <= self.max_retry_after:
                return asked
        return self.backoff(retries_taken)

    def should_retry(self, response: Response) -> bool:
        """Whether this (non-2xx) response is worth another attempt, retries left aside."""
        asked = self.retry_after(response.headers)
        if asked is not None and asked > self.max_retry_after:
            return False
        flag = response.headers.get("x-should-retry", "").strip().lower()
        if flag in ("true", "false"):
            return flag == "true"
        return response.status in _RETRY_STATUSES or response.status >= 500


async def send_with_retries(
    transport: AsyncTransport,
    request: Request,
    *,
    stream: bool,
    policy: RetryPolicy,
    provider: str,
    model: str | None = None,
) -> Response:
    """Send ``request`` until a 2xx response comes back (returned, open if ``stream``), or raise the
    error of the last attempt (see the module docstring)."""
    retries_taken = 0
    while True:
        try:
            response = await transport.send(request, stream=stream)
        except (OfflineError, CloudTimeoutError) as exc:
            if retries_taken >= policy.max_retries:
                _add_details(exc, provider=provider, model=model, attempts=retries_taken + 1)
                raise
            await policy.sleep(policy.delay(retries_taken))
            retries_taken += 1
            continue
        if response.is_success:
            return response
        if retries_taken < policy.max_retries and policy.should_retry(response):
            await response.aclose()
            await policy.sleep(policy.delay(retries_taken, response.headers))
            retries_taken += 1
            continue
        raise await error_for_status(
            response, policy=policy, provider=provider, model=model, attempts=retries_taken + 1
        )


def _add_details(exc: HybridRouterError, **details: Any) -> None:
    for key, value in details.items():
        if value is not None:
            exc.details.setdefault(key, value)


def error_fields(payload: object) -> tuple[str | None, str | None, str | None]:
    """``(message, type, code)`` of a provider error payload. Understands OpenAI's and llama-server's
    ``{"error": {"message", "type", "code"}}``, Anthropic's ``{"type": "error", "error": {"type",
    "message"}}``, ``{"error": "text"}`` and ``{"message": "text"}``."""
    if not isinstance(payload, Mapping):
        return None, None, None
    error = payload.get("error")
    if isinstance(error, str):
        return error, None, None
    if isinstance(error, Mapping):
        message, kind, code = error.get("message"), error.get("type"), error.get("code")
        return (
            str(message) if message is not None else None,
            str(kind) if kind is not None else None,
            str(code) if code is not None else None,
        )
    message = payload.get("message")
    return (str(message) if message is not None else None), None, None


def _body_message(body: bytes) -> tuple[str | None, str | None, str | None]:
    try:
        return error_fields(json.loads(body))
    except (ValueError, UnicodeDecodeError):
        text = body.decode("utf-8", errors="replace").strip()
        return (text or None), None, None


def _hint_for_status(status: int) -> str:
    if status in (401, 403):
        return "The provider refused the credentials: check the API key configured on the relay."
    if status == 404:
        return "Check the model name and the provider's base URL in the router configuration."
    if status == 413:
        return "The request is too large for the provider: shorten the input."
    if 400 <= status < 500 and status not in _RETRY_STATUSES:
        return "The provider rejected the request (see its message): check the messages and parameters."
    return "The provider failed after retries; try again later, or let the router fall back to the device."


async def error_for_status(
    response: Response, *, policy: RetryPolicy, provider: str, model: str | None, attempts: int
) -> CloudError:
    """The error for a non-2xx response (reads its body for the provider's message, then closes it)."""
    try:
        body = await response.aread()
    except HybridRouterError:
        body = b""
    finally:
        await response.aclose()
    message, kind, code = _body_message(body)
    text = f"{provider} answered HTTP {response.status}"
    if message:
        text += f": {message[:_MAX_MESSAGE]}"
    details: dict[str, Any] = {
        "status": response.status,
        "provider": provider,
        "model": model,
        "error_type": kind,
        "error_code": code,
        "attempts": attempts,
        "request_id": response.headers.get("x-request-id") or response.headers.get("request-id"),
    }
    if response.status == 429:
        retry_after = policy.retry_after(response.headers)
        if retry_after is not None and not 0 < retry_after < math.inf:
            retry_after = None
        return RateLimitError(text, retry_after=retry_after, **details)
    return CloudError(text, hint=_hint_for_status(response.status), **details)
