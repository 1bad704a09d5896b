"""Who may call the relay: the Host, the Origin, the access token, the client's key for rate limits.

Pure functions over a request's headers and peer address (an aiohttp request satisfies
:class:`Incoming`), so every rule is unit-tested without a server.

**Host** (DNS rebinding): the Host header must name this server: ``127.0.0.1``, ``localhost`` or
``[::1]`` with the bound port; the bound address itself; any IP literal with the bound port when bound to
every interface (an IP literal cannot be rebound); the configured public hosts; the hosts of the allowed
origins (a reverse proxy that keeps the site's Host). A page on ``evil.example`` that resolved to us is
refused, whatever its Origin says.

**Origin** (cross-site requests): a present Origin must be the server's own (``<scheme>://<Host>``, the
Host having passed) or an allowed origin; ``null`` and every other origin are refused. Browsers send
Origin on every cross-origin request and on same-origin POSTs, so a request without one is not a
cross-site browser request. It is still refused unless one of these holds:

- ``Sec-Fetch-Site: same-origin`` (a browser vouching for a same-origin request; any other value is refused);
- an access token is configured: the token check that follows decides (a non-loopback bind always has one);
- the relay is bound to loopback and the peer is loopback and no proxy headers (``Forwarded``,
  ``X-Forwarded-For``, ``X-Real-IP``) are present: a local program such as curl, which could read the key
  from this machine anyway. A reverse proxy in front makes requests arrive from loopback, hence the
  proxy-header condition.

Origin and Sec-Fetch-* can be forged by anything that is not a browser: they stop other web sites from
spending the key through a visitor's browser, not a determined client. On a public deployment the
token (for private use), the rate limit, the model and max_tokens caps and the spend cap are the defence.

**Token**: when configured, every relay request carries ``Authorization: Bearer <token>`` (compared in
constant time). The preflight and ``/config`` need none: they spend nothing.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping
from typing import Protocol

from .config import RelayConfig, normalize_origin
from .errors import RelayConfigError, RelayError

__all__ = [
    "Incoming",
    "allowed_hosts",
    "check_host",
    "check_origin",
    "check_token",
    "client_address",
    "cors_headers",
    "preflight_headers",
]

_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip")
#: headers a cross-origin page may send (the OpenAI and Anthropic SDKs add x-stainless-*)
_CORS_HEADERS = frozenset({"content-type", "accept", "authorization", "anthropic-version", "anthropic-beta"})
#: response headers a cross-origin page may read (the retry contract)
EXPOSED = "retry-after, retry-after-ms, x-should-retry, x-request-id, request-id"


class Incoming(Protocol):
    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def remote(self) -> str | None: ...

    @property
    def scheme(self) -> str: ...


def _forbidden(kind: str, message: str, hint: str, status: int = 403) -> RelayError:
    return RelayError(status, kind, message, hint=hint)


def allowed_hosts(config: RelayConfig) -> frozenset[str]:
    """The exact Host values accepted (IP literals on a wildcard bind are accepted besides these)."""
    port = config.port
    names = {f"{n}:{port}" for n in _LOOPBACK_NAMES}
    bind = config.host.strip().lower()
    if bind and bind not in ("0.0.0.0", "::"):
        names.add(f"[{bind.strip('[]')}]:{port}" if ":" in bind else f"{bind}:{port}")
    for host in config.public_hosts:
        names.add(host)
        if not _has_port(host):
            names.add(f"{host}:{port}")
    for origin in config.allowed_origins:
        names.add(origin.split("://", 1)[1])
    return frozenset(names)


def _has_port(host: str) -> bool:
    return host.rsplit("]", 1)[-1].count(":") == 1


def _wildcard(config: RelayConfig) -> bool:
    return config.host.strip() in ("", "0.0.0.0", "::")


def _ip_literal_with_port(host: str, port: int) -> bool:
    name, sep, given = host.rpartition(":")
    if not sep or given != str(port):
        return False
    try:
        ipaddress.ip_address(name.strip("[]") if name.startswith("[") else name)
    except ValueError:
        return False
    return name.startswith("[") or ":" not in name


def check_host(config: RelayConfig, hosts: frozenset[str], request: Incoming) -> str:
    """The request's Host (lower-cased), or ``relay_host_forbidden``."""
    host = (request.headers.get("Host") or "").strip().lower()
    if host in hosts or (_wildcard(config) and _ip_literal_with_port(host, config.port)):
        return host
    raise _forbidden(
        "relay_host_forbidden",
        "the Host header does not name this server",
        "Call the relay by the address it serves (e.g. 127.0.0.1:<port>); an operator serving it under "
        "another name lists it with --public-host (HYBRID_ROUTER_RELAY_PUBLIC_HOSTS).",
    )


def check_origin(config: RelayConfig, host: str, request: Incoming) -> str | None:
    """The allowed *cross* origin to answer with CORS headers, None for same-origin and no-Origin calls
    that pass (see the module docstring), or ``relay_origin_forbidden``."""
    origin = request.headers.get("Origin")
    if origin is None:
        _check_no_origin(config, request)
        return None
    normalized = _origin_or_none(origin)
    if normalized is not None and normalized == _origin_or_none(f"{request.scheme}://{host}"):
        return None
    if normalized in config.allowed_origins:
        return normalized
    raise _forbidden(
        "relay_origin_forbidden",
        "this origin may not call the relay",
        "Only the page served with the relay, and origins its operator lists with --allow-origin "
        "(HYBRID_ROUTER_RELAY_ALLOWED_ORIGINS), may call it.",
    )


def _origin_or_none(value: str) -> str | None:
    try:
        return normalize_origin(value)
    except RelayConfigError:  # "null", garbage
        return None


def _check_no_origin(config: RelayConfig, request: Incoming) -> None:
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        if site.strip().lower() == "same-origin":
            return
        raise _forbidden(
            "relay_origin_forbidden",
            f"a {site[:20]!r} request without an Origin header",
            "Browsers call the relay from its own page only.",
        )
    if config.token:
        return  # check_token decides
    proxied = any(name in request.headers for name in _PROXY_HEADERS)
    if config.loopback and _is_loopback(request.remote) and not proxied:
        return
    raise _forbidden(
        "relay_origin_forbidden",
        "a request without an Origin header from a client that is not on this machine",
        "Send the Origin of the page that calls the relay, or configure an access token "
        "(HYBRID_ROUTER_RELAY_TOKEN) and send it.",
    )


def _is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def check_token(config: RelayConfig, request: Incoming) -> None:
    """With a token configured: ``Authorization: Bearer <token>``, or 401."""
    if not config.token:
        return
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="hybrid-router-relay"'}
    if scheme.lower() != "bearer" or not value.strip():
        raise RelayError(
            401,
            "relay_token_required",
            "this relay needs an access token",
            hint="Send 'Authorization: Bearer <token>' with the token its operator gave you.",
            headers=challenge,
        )
    if not hmac.compare_digest(value.strip().encode(), config.token.encode()):
        raise RelayError(
            401,
            "relay_token_invalid",
            "the access token is not this relay's",
            hint="Check the token; its operator sets it in HYBRID_ROUTER_RELAY_TOKEN.",
            headers=challenge,
        )


def client_address(config: RelayConfig, request: Incoming) -> str:
    """The key of the client's rate-limit bucket: the TCP peer, or with ``trust_forwarded`` and a
    loopback peer (the reverse proxy) the last X-Forwarded-For entry (the one the proxy added)."""
    peer = request.remote or "unknown"
    forwarded = request.headers.get("X-Forwarded-For")
    if config.trust_forwarded and forwarded and _is_loopback(peer):
        return forwarded.split(",")[-1].strip()[:64] or peer
    return peer


def cors_headers(origin: str | None) -> dict[str, str]:
    """What an answer to an allowed cross origin carries (nothing for same-origin)."""
    if origin is None:
        return {"Vary": "Origin"}
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": EXPOSED, "Vary": "Origin"}


def preflight_headers(origin: str | None, request: Incoming) -> dict[str, str]:
    """The answer to an allowed preflight: POST and GET, and the asked headers that are on the list."""
    asked = request.headers.get("Access-Control-Request-Headers", "")
    names = [h.strip().lower() for h in asked.split(",") if h.strip()]
    allowed = [h for h in names if h in _CORS_HEADERS or h.startswith("x-stainless-")]
    headers = {
        **cors_headers(origin),
        "Access-Control-Allow-Methods": "POST, GET",
        "Access-Control-Allow-Headers": ", ".join(allowed) or "content-type",
        "Access-Control-Max-Age": "600",
    }
    if origin is None:
        return {"Vary": "Origin"}
    return headers
