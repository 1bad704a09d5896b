"""One checked call, sent to the one upstream URL, its answer streamed back as it arrives.

- The URL is the configured base URL plus the kind's fixed endpoint; the headers are the key and a few
  the page may set (``accept``, ``anthropic-version``, ``x-stainless-retry-count``); cookies, the
  relay token and everything else stay behind. Redirects are not followed.
- Timeouts: connect, and each read (the headers, then between two chunks). Failing before the answer
  began: 502 ``relay_upstream_unreachable`` / 504 ``relay_upstream_timeout``, naming no host. A pooled
  connection the upstream had closed (the request could not be written, or the server disconnected
  before answering) is retried once on a fresh one.
- **Failing after the answer began** (reset, truncated body, read timeout) or the client going away:
  the client connection is *aborted*, so the cut shows as a network error / an unterminated chunked
  body. Nothing else is written into the body and it is never ended cleanly.
- The client going away cancels this handler (aiohttp's ``handler_cancellation``); leaving the
  ``async with`` then closes the upstream connection, so the provider stops generating.
- A provider's error status is passed through with its retry headers and a rewritten JSON body: its
  ``type``, its ``message`` with the key, base URL and host scrubbed (401/403: replaced entirely).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from .config import CloudConfig
from .errors import RelayError, error_response
from .usage import UsageMeter

__all__ = ["Outcome", "forward"]

log = logging.getLogger("hybrid_router_relay")

_FROM_CLIENT = ("accept", "x-stainless-retry-count")
_TO_CLIENT = ("retry-after", "retry-after-ms", "x-should-retry", "x-request-id", "request-id")
ANTHROPIC_VERSION = "2023-06-01"
_MAX_ERROR_BODY = 64 << 10


@dataclass
class Outcome:
    """What the call cost: usage when the answer reported it; ``billable`` False for error statuses."""

    billable: bool = False
    usage: tuple[int, int] | None = None


def upstream_headers(cloud: CloudConfig, incoming: Mapping[str, str]) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    for name in _FROM_CLIENT:
        if (value := incoming.get(name)) is not None:
            headers[name] = value[:200]
    if cloud.kind == "anthropic":
        headers["anthropic-version"] = incoming.get("anthropic-version", ANTHROPIC_VERSION)[:40]
    headers.update(cloud.auth_headers())
    return headers


async def forward(
    request: web.Request,
    session: aiohttp.ClientSession,
    cloud: CloudConfig,
    body: bytes,
    outcome: Outcome,
    cors: Mapping[str, str],
) -> web.StreamResponse:
    try:
        async with await _open(session, cloud, body, upstream_headers(cloud, request.headers)) as upstream:
            passed = {k: v for k, v in upstream.headers.items() if k.lower() in _TO_CLIENT}
            if upstream.status >= 300:
                return await _error_answer(upstream, cloud, {**cors, **passed})
            outcome.billable = True
            return await _stream_back(request, upstream, cloud, outcome, {**cors, **passed})
    except TimeoutError as exc:  # aiohttp's ServerTimeoutError / ConnectionTimeoutError are TimeoutErrors
        log.warning("upstream timed out before answering (%s)", type(exc).__name__)
        raise RelayError(
            504,
            "relay_upstream_timeout",
            "the cloud provider did not answer in time",
            hint="Retry later; the operator can raise HYBRID_ROUTER_RELAY_READ_TIMEOUT_S.",
        ) from exc
    except aiohttp.ClientError as exc:
        log.warning("upstream unreachable (%s)", type(exc).__name__)
        raise RelayError(
            502,
            "relay_upstream_unreachable",
            "the cloud provider could not be reached",
            hint="Retry later, or use the device; the operator can check the relay's log.",
        ) from exc


async def _open(
    session: aiohttp.ClientSession, cloud: CloudConfig, body: bytes, headers: Mapping[str, str]
) -> aiohttp.ClientResponse:
    """POST to the upstream; once more when the first try failed before any answer on a connection the
    upstream had already closed (llama-server closes kept-alive connections after a stream, and the pool
    reuses them): the request never reached it whole, so nothing runs twice."""
    for attempt in (1, 2):
        try:
            return await session.post(cloud.upstream_url, data=body, headers=headers, allow_redirects=False)
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            if attempt == 2:
                raise
            log.info("upstream connection closed before answering (%s): trying once more", type(exc).__name__)
    raise AssertionError("unreachable")


async def _stream_back(
    request: web.Request,
    upstream: aiohttp.ClientResponse,
    cloud: CloudConfig,
    outcome: Outcome,
    headers: Mapping[str, str],
) -> web.StreamResponse:
    content_type = upstream.headers.get("Content-Type", "application/json")
    response = web.StreamResponse(
        status=upstream.status, headers={**headers, "Content-Type": content_type, "Cache-Control": "no-store"}
    )
    meter = UsageMeter(cloud.kind, content_type)
    await response.prepare(request)
    try:
        async for chunk in upstream.content.iter_any():
            meter.feed(chunk)
            await response.write(chunk)
    except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
        # the upstream broke (or the client left) after the answer began: cut the client off
        log.warning("answer cut after it began (%s): aborting the client connection", type(exc).__name__)
        outcome.usage = meter.finish()
        _abort(request)
        return response  # aiohttp's write_eof on the aborted transport fails quietly: no clean end
    outcome.usage = meter.finish()
    await response.write_eof()
    return response


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


async def _error_answer(
    upstream: aiohttp.ClientResponse, cloud: CloudConfig, headers: Mapping[str, str]
) -> web.Response:
    status = upstream.status
    try:
        raw = await asyncio.wait_for(upstream.content.read(_MAX_ERROR_BODY), timeout=10)
    except (aiohttp.ClientError, TimeoutError):
        raw = b""
    kind, message = _error_fields(raw)
    if status < 400:
        status, kind, message = 502, "relay_upstream_bad_answer", f"the cloud provider answered {status}"
    elif status in (401, 403):
        kind, message = (
            "relay_upstream_auth",
            f"the cloud provider refused the relay's credentials ({status})",
        )
    message = _scrub(message or f"the cloud provider answered {status}", cloud)
    hint = _hint(status)
    return error_response(
        status, _scrub(kind or "upstream_error", cloud)[:60], message, hint, headers=headers
    )


def _error_fields(raw: bytes) -> tuple[str | None, str | None]:
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None, None  # HTML from a proxy, say: nothing of it is shown
    error = payload.get("error") if isinstance(payload, Mapping) else None
    if isinstance(error, Mapping):
        kind, message = error.get("type"), error.get("message")
        return (str(kind) if kind is not None else None), (
            str(message)[:500] if message is not None else None
        )
    if isinstance(error, str):
        return None, error[:500]
    return None, None


def _scrub(text: str, cloud: CloudConfig) -> str:
    for secret in sorted(cloud.secrets(), key=len, reverse=True):
        text = text.replace(secret, "[upstream]")
    return text


def _hint(status: int) -> str:
    if status in (401, 403):
        return "The relay's operator must check HYBRID_ROUTER_CLOUD_API_KEY; nothing to change in the call."
    if status == 429:
        return "The provider is rate limiting: retry after the time it gave."
    if status >= 500:
        return "The provider failed: retry later, or use the device."
    return "The provider refused the request: check what the call asked for."
