"""The relay as an aiohttp application: :func:`relay_app` (mounted at ``/api/cloud``, by serve.py or by
:func:`standalone_app`), one handler applying the checks in this order, the first failing one answering:

1. Host names this server (``access.check_host``: DNS rebinding)
2. Origin is the server's own or listed; no Origin only as ``access`` allows (``OPTIONS``: the preflight
   is answered here)
3. ``GET /api/cloud/config`` is answered here (kind, model, label, availability; never the key)
4. the client's rate-limit bucket has a token (429 ``Retry-After``; the buckets and the spend live in
   ``state.store``: this process, or Redis shared by several, 503 when it cannot be reached)
5. the access token, when one is configured (401)
6. the raw request target is exactly ``/api/cloud`` + the kind's endpoint, no query (404): encoded
   slashes, dot segments, ``%3F``, double encoding never match; then POST only (405)
7. a cloud is configured (503)
8. ``Content-Type: application/json``, no ``Content-Encoding`` (415); the body within the cap (413)
9. the body's model, output cap and fields (``body.check_body``: 400)
10. the day's spend cap has room for the call's worst case (402), reserved until the answer settles it
11. forwarded (``forward.forward``)

Nothing is sent upstream before step 11, and every refusal is JSON (``errors``), logged in one line
without headers or bodies (401/403 as warnings: with no logging configured, they reach stderr).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from .access import (
    allowed_hosts,
    check_host,
    check_origin,
    check_token,
    client_address,
    cors_headers,
    preflight_headers,
)
from .body import CheckedBody, check_body
from .config import MOUNT, RelayConfig
from .errors import RelayError, error_response
from .forward import Outcome, forward
from .limits import RateLimiter, SpendLedger
from .store import MemoryStore, RelayStore, open_store

__all__ = ["RELAY", "STATE", "RelayState", "relay_app", "standalone_app"]

log = logging.getLogger("hybrid_router_relay")


@dataclass
class RelayState:
    """The relay's configuration and what it keeps between requests."""

    config: RelayConfig
    #: the rate-limit buckets and the day's spend (:mod:`.store`: in this process, or shared in Redis)
    store: RelayStore
    hosts: frozenset[str] = frozenset()
    session: aiohttp.ClientSession | None = field(default=None, repr=False)
    #: while no cloud is available: what the page should know instead (serve.py's default cloud tier,
    #: still being built: ``{"available": false, "starting": true, "status": {...}, ...}``), else None
    pending: Callable[[], dict[str, Any] | None] | None = None


STATE = web.AppKey("relay_state", RelayState)
RELAY = web.AppKey("relay", web.Application)


def relay_app(
    config: RelayConfig,
    *,
    limiter: RateLimiter | None = None,
    ledger: SpendLedger | None = None,
    pending: Callable[[], dict[str, Any] | None] | None = None,
    store: RelayStore | None = None,
) -> web.Application:
    """The relay, to mount at :data:`~hybrid_router_relay.config.MOUNT` (``config`` is validated first).

    ``app[STATE].config`` may be replaced while it runs (``with_cloud``: a cloud tier that came up);
    ``pending`` says what the page should know while there is no cloud yet (see :class:`RelayState`).
    The limits and the spend live in ``store``, else where ``config.store`` says, else in this process
    (``limiter`` and ``ledger``, when given: a test's clocks).
    """
    config.validate()
    lim = config.limits
    if store is None and config.store is not None and limiter is None and ledger is None:
        store = open_store(
            config.store, per_minute=lim.rate_per_minute, burst=lim.burst, daily_usd=lim.daily_usd
        )
    state = RelayState(
        config,
        store
        or MemoryStore(
            limiter or RateLimiter(lim.rate_per_minute, lim.burst), ledger or SpendLedger(lim.daily_usd)
        ),
        allowed_hosts(config),
        pending=pending,
    )
    app = web.Application()
    app[STATE] = state

    async def session(_: web.Application) -> AsyncIterator[None]:
        # no total timeout: a long answer may stream for minutes; the page's own timeout and the
        # per-read timeout bound the waits
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=lim.connect_timeout_s, sock_read=lim.read_timeout_s
        )
        await state.store.start()
        state.session = aiohttp.ClientSession(timeout=timeout)
        try:
            yield
        finally:
            await state.session.close()
            await state.store.close()

    app.cleanup_ctx.append(session)
    app.router.add_route("*", "/{tail:.*}", _handle)
    return app


def standalone_app(
    config: RelayConfig,
    *,
    limiter: RateLimiter | None = None,
    ledger: SpendLedger | None = None,
    store: RelayStore | None = None,
) -> web.Application:
    """The relay alone (``python relay.py``): mounted at ``/api/cloud``, a JSON 404 everywhere else;
    ``app[RELAY]`` is the relay sub-application (its ``[STATE]``: the store of limits and spend)."""
    root = web.Application(middlewares=[_security_headers])
    root[RELAY] = relay_app(config, limiter=limiter, ledger=ledger, store=store)
    root.add_subapp(MOUNT, root[RELAY])

    async def not_found(_: web.Request) -> web.StreamResponse:
        return error_response(
            404,
            "relay_endpoint_not_allowed",
            "nothing is served here",
            f"The relay answers under {MOUNT}/ only.",
        )

    root.router.add_route("*", "/{tail:.*}", not_found)
    return root


@web.middleware
async def _security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


async def _handle(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    cors = cors_headers(None)
    try:
        host = check_host(state.config, state.hosts, request)
        origin = check_origin(state.config, host, request)
        cors = cors_headers(origin)
        if request.method == "OPTIONS":
            return web.Response(status=204, headers=preflight_headers(origin, request))
        if request.raw_path.split("?", 1)[0] == MOUNT + "/config":
            return _config(request, state, cors)
        return await _relay(request, state, cors)
    except RelayError as err:
        # who may call (401/403) is worth the operator's attention: a page elsewhere tried to use the key
        level = logging.WARNING if err.status in (401, 403) else logging.INFO
        log.log(level, "relay refused %s %.80r: %s", request.method, request.raw_path, err.type)
        return err.response(cors)


def _config(request: web.Request, state: RelayState, cors: dict[str, str]) -> web.Response:
    if request.method not in ("GET", "HEAD"):
        raise _method_not_allowed("GET")
    shown = state.config.cloud.public()
    if not state.config.cloud.available and state.pending is not None:
        shown = state.pending() or shown
    return web.json_response(shown, headers={**cors, "Cache-Control": "no-store"})


def _method_not_allowed(allow: str) -> RelayError:
    return RelayError(
        405,
        "relay_method_not_allowed",
        f"use {allow}",
        hint=f"Send a {allow} request.",
        headers={"Allow": allow},
    )


async def _relay(request: web.Request, state: RelayState, cors: dict[str, str]) -> web.StreamResponse:
    config, cloud = state.config, state.config.cloud
    wait = await state.store.take(client_address(config, request))
    if wait is not None:
        raise RelayError(
            429,
            "relay_rate_limited",
            "too many requests from this client",
            hint=f"Wait {wait:.1f} s; the operator sets HYBRID_ROUTER_RELAY_RATE_PER_MINUTE and _BURST.",
            headers={
                "Retry-After": str(max(1, math.ceil(wait))),
                "retry-after-ms": str(round(wait * 1000)),
            },
        )
    check_token(config, request)
    if request.raw_path != MOUNT + cloud.endpoint:
        raise RelayError(
            404,
            "relay_endpoint_not_allowed",
            "the relay forwards one endpoint only",
            hint=f"POST {MOUNT}{cloud.endpoint} (the {cloud.kind} kind), without a query string.",
        )
    if request.method != "POST":
        raise _method_not_allowed("POST")
    if not cloud.available:
        waiting = state.pending() if state.pending is not None else None
        if waiting is not None and waiting.get("starting"):
            status = waiting.get("status") or {}
            raise RelayError(
                503,
                "cloud_tier_starting",
                "the cloud tier is still starting: "
                f"{status.get('step') or status.get('state') or 'starting'}",
                hint="Retry in a little while; local requests keep working meanwhile.",
                headers={"Retry-After": "30"},
            )
        raise RelayError(
            503,
            "relay_not_configured",
            "no cloud provider is configured on the server",
            hint="The operator sets HYBRID_ROUTER_CLOUD_BASE_URL and HYBRID_ROUTER_CLOUD_MODEL.",
            headers={"x-should-retry": "false"},
        )
    raw = await _read_json_body(request, config.limits.max_body_bytes)
    checked = check_body(raw, cloud, config.limits.max_tokens, allow_tools=config.allow_tools)
    return await _spend_and_forward(request, state, checked, cors)


async def _read_json_body(request: web.Request, limit: int) -> bytes:
    if request.content_type.lower() != "application/json" or request.headers.get("Content-Encoding"):
        raise RelayError(
            415,
            "relay_unsupported_media_type",
            "the relay takes an uncompressed JSON body only",
            hint="Send 'Content-Type: application/json' and no Content-Encoding.",
        )
    too_large = RelayError(
        413,
        "relay_body_too_large",
        f"the request body is over {limit} bytes",
        hint="Send a shorter conversation; the operator sets HYBRID_ROUTER_RELAY_MAX_BODY_BYTES.",
    )
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    data = bytearray()
    async for chunk in request.content.iter_chunked(64 << 10):
        data += chunk
        if len(data) > limit:
            raise too_large
    return bytes(data)


async def _spend_and_forward(
    request: web.Request, state: RelayState, checked: CheckedBody, cors: dict[str, str]
) -> web.StreamResponse:
    cloud = state.config.cloud
    price = state.config.prices.price_for(cloud.model)
    # worst case: a token is at least a byte of the body, and the answer is as long as allowed
    worst = price.cost(len(checked.data), checked.max_output_tokens)
    reservation = await state.store.reserve(worst)
    if reservation is None:
        wait = state.store.seconds_to_next_day()
        raise RelayError(
            402,
            "relay_spend_cap_reached",
            "the relay's daily spend cap is reached",
            hint="Use the device until the next UTC day; the operator sets HYBRID_ROUTER_RELAY_DAILY_USD.",
            headers={"Retry-After": str(round(wait))},
        )
    outcome = Outcome()
    assert state.session is not None, "the relay app was not started"
    try:
        return await forward(request, state.session, cloud, checked.data, outcome, cors)
    finally:
        usage = None if outcome.usage is None else price.cost(*outcome.usage)
        settled = state.store.settle(reservation, usage if outcome.billable else 0.0)
        try:  # shielded: a client that went away cancels this handler, the spend is settled all the same
            await asyncio.shield(settled)
        except RelayError as err:  # the answer has gone out: say it here, the reservation lapses later
            log.error("relay could not settle a call's spend: %s (%s)", err.type, err)
