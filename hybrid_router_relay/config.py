"""The relay's settings, read once from flags and the environment and checked before anything binds.

The cloud (the key never leaves the server)::

    HYBRID_ROUTER_CLOUD_KIND       openai (any OpenAI-compatible server, the default) | anthropic
    HYBRID_ROUTER_CLOUD_BASE_URL   the provider's base URL as its SDK takes it: https://api.openai.com/v1,
                                   http://127.0.0.1:8081/v1 (llama-server), https://api.anthropic.com
    HYBRID_ROUTER_CLOUD_API_KEY    sent as "Authorization: Bearer" (openai) or "x-api-key" (anthropic)
    HYBRID_ROUTER_CLOUD_MODEL      the one model the relay asks for
    HYBRID_ROUTER_CLOUD_LABEL      how the page names it (optional)

The defences (flag / environment variable / default)::

    --token / HYBRID_ROUTER_RELAY_TOKEN                  none; required to bind a non-loopback address
    --allow-origin / HYBRID_ROUTER_RELAY_ALLOWED_ORIGINS  none; origins that may call it besides its own
    --public-host / HYBRID_ROUTER_RELAY_PUBLIC_HOSTS      none; Host names it is reached by besides its bind
    --max-body-bytes / HYBRID_ROUTER_RELAY_MAX_BODY_BYTES 1048576
    --max-tokens / HYBRID_ROUTER_RELAY_MAX_TOKENS         4096 (the cap on max_tokens; missing: set to it)
    --rate-per-minute / HYBRID_ROUTER_RELAY_RATE_PER_MINUTE  60 per client (0: off)
    --burst / HYBRID_ROUTER_RELAY_BURST                  30
    --daily-usd / HYBRID_ROUTER_RELAY_DAILY_USD          none (no spend cap)
    --prices / HYBRID_ROUTER_RELAY_PRICES                models_manifest.json (its cloud_prices)
    --connect-timeout / HYBRID_ROUTER_RELAY_CONNECT_TIMEOUT_S  10
    --read-timeout / HYBRID_ROUTER_RELAY_READ_TIMEOUT_S  120 (between two chunks of the answer)
    --trust-forwarded-for / HYBRID_ROUTER_RELAY_TRUST_FORWARDED  off: the client is the TCP peer
    --store / HYBRID_ROUTER_RELAY_STORE                  memory (this process); redis://host:port/db:
                                                         limits and spend shared by every relay process
                                                         using it, kept across restarts (.store)

Lists in the environment are separated by commas or spaces. A flag wins over its variable.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import RelayConfigError
from .limits import Prices

__all__ = [
    "ENDPOINTS",
    "MOUNT",
    "CloudConfig",
    "Limits",
    "RelayConfig",
    "add_relay_arguments",
    "check_bind",
    "describe_bind",
    "is_loopback_host",
]

#: where the relay lives on its server (the page's providers use it as their base URL)
MOUNT = "/api/cloud"
#: the one endpoint per provider kind: the path the page posts to under MOUNT, which is also the path
#: appended to the base URL upstream (the page's providers and the SDKs name them so)
ENDPOINTS = {"openai": "/chat/completions", "anthropic": "/v1/messages"}
DEFAULT_PRICES = Path(__file__).resolve().parents[1] / "models_manifest.json"
MIN_TOKEN_LENGTH = 16
_TOKEN_HINT = (
    "Set HYBRID_ROUTER_RELAY_TOKEN to a long random secret, e.g. "
    "python -c 'import secrets; print(secrets.token_urlsafe(32))'; clients send it as "
    "'Authorization: Bearer <token>'. Or bind 127.0.0.1 and put your site's reverse proxy in front."
)


@dataclass(frozen=True)
class CloudConfig:
    """The provider the relay forwards to (``HYBRID_ROUTER_CLOUD_*``)."""

    kind: str = "openai"
    base_url: str = ""
    api_key: str = field(default="", repr=False)
    model: str = ""
    label: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> CloudConfig:
        kind = env.get("HYBRID_ROUTER_CLOUD_KIND", "openai").strip().lower()
        base = env.get("HYBRID_ROUTER_CLOUD_BASE_URL", "").strip().rstrip("/")
        model = env.get("HYBRID_ROUTER_CLOUD_MODEL", "").strip()
        label = env.get("HYBRID_ROUTER_CLOUD_LABEL", "") or (f"{model} ({kind})" if model else "")
        cloud = cls(kind, base, env.get("HYBRID_ROUTER_CLOUD_API_KEY", ""), model, label)
        cloud.validate()
        return cloud

    def validate(self) -> None:
        if self.kind not in ENDPOINTS:
            raise RelayConfigError(
                f"HYBRID_ROUTER_CLOUD_KIND={self.kind!r} is not a provider kind",
                hint="Use openai (any OpenAI-compatible API) or anthropic.",
            )
        if not self.base_url:
            return
        parts = urllib.parse.urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise RelayConfigError(
                "HYBRID_ROUTER_CLOUD_BASE_URL is not an http(s) base URL without query or fragment",
                hint="Give it as the provider's SDK takes it: https://api.openai.com/v1 or "
                "https://api.anthropic.com.",
            )
        if parts.username or parts.password:
            raise RelayConfigError(
                "HYBRID_ROUTER_CLOUD_BASE_URL holds credentials",
                hint="Put the key in HYBRID_ROUTER_CLOUD_API_KEY, never in the URL.",
            )

    @property
    def available(self) -> bool:
        return bool(self.base_url and self.model)

    @property
    def endpoint(self) -> str:
        return ENDPOINTS[self.kind]

    @property
    def upstream_url(self) -> str:
        """Built from the base URL and the fixed endpoint only: nothing of a request goes into it."""
        return self.base_url + self.endpoint

    def public(self) -> dict[str, Any]:
        """What the page may know: never the key or the upstream's address."""
        return {
            "available": self.available,
            "kind": self.kind,
            "model": self.model,
            "label": self.label,
            "base_url": MOUNT,
            "has_key": bool(self.api_key),
        }

    def auth_headers(self) -> dict[str, str]:
        if not self.api_key:
            return {}
        if self.kind == "anthropic":
            return {"x-api-key": self.api_key}
        return {"Authorization": f"Bearer {self.api_key}"}

    def secrets(self) -> tuple[str, ...]:
        """Strings that must never reach a client: the key, the base URL, the upstream's host."""
        parts = urllib.parse.urlsplit(self.base_url)
        return tuple(s for s in (self.api_key, self.base_url, parts.netloc, parts.hostname or "") if s)


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1 << 20
    max_tokens: int = 4096
    rate_per_minute: float = 60.0
    burst: int = 30
    daily_usd: float | None = None
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 120.0


@dataclass(frozen=True)
class RelayConfig:
    """Everything the relay app needs; :meth:`validate` (run by :func:`relay_app`) refuses unsafe ones."""

    cloud: CloudConfig = field(default_factory=CloudConfig)
    host: str = "127.0.0.1"
    port: int = 8787
    token: str | None = field(default=None, repr=False)
    allowed_origins: frozenset[str] = frozenset()
    public_hosts: frozenset[str] = frozenset()
    limits: Limits = field(default_factory=Limits)
    prices: Prices = field(default_factory=Prices)
    trust_forwarded: bool = False
    #: where the rate limits and the day's spend live: None (in this process) or a ``redis://`` URL
    store: str | None = field(default=None, repr=False)
    #: forward tool calling (OpenAI ``tools``/``tool_choice``/``parallel_tool_calls``, tool messages,
    #: Anthropic tools beyond structured output's forced answer): off unless the operator opts in
    allow_tools: bool = False

    def validate(self) -> None:
        self.cloud.validate()
        check_bind(self.host, self.token)
        for origin in self.allowed_origins:
            if normalize_origin(origin) != origin:
                raise RelayConfigError(f"allowed origin {origin!r} is not normalized", hint=_ORIGIN_HINT)
        lim = self.limits
        if lim.max_body_bytes < 1024 or lim.max_tokens < 1 or lim.burst < 1:
            raise RelayConfigError(
                "max_body_bytes must be >= 1024, max_tokens >= 1 and burst >= 1",
                hint="Fix HYBRID_ROUTER_RELAY_MAX_BODY_BYTES / _MAX_TOKENS / _BURST.",
            )
        if lim.connect_timeout_s <= 0 or lim.read_timeout_s <= 0:
            raise RelayConfigError("timeouts must be > 0 s", hint="Fix HYBRID_ROUTER_RELAY_*_TIMEOUT_S.")

    def with_cloud(self, cloud: CloudConfig) -> RelayConfig:
        return replace(self, cloud=cloud)

    @property
    def loopback(self) -> bool:
        return is_loopback_host(self.host)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] = os.environ, *, host: str = "127.0.0.1", port: int = 8787
    ) -> RelayConfig:
        return cls.from_args(argparse.Namespace(), env, host=host, port=port)

    @classmethod
    def from_args(
        cls,
        args: argparse.Namespace,
        env: Mapping[str, str] = os.environ,
        *,
        host: str,
        port: int,
        cloud: CloudConfig | None = None,
    ) -> RelayConfig:
        """Flags added by :func:`add_relay_arguments` (missing ones fall back to the environment)."""
        src = _Source(args, env)
        limits = Limits(
            max_body_bytes=src.integer("max_body_bytes", "MAX_BODY_BYTES", Limits.max_body_bytes),
            max_tokens=src.integer("max_tokens", "MAX_TOKENS", Limits.max_tokens),
            rate_per_minute=src.number("rate_per_minute", "RATE_PER_MINUTE", Limits.rate_per_minute),
            burst=src.integer("burst", "BURST", Limits.burst),
            daily_usd=src.optional_float("daily_usd", "DAILY_USD"),
            connect_timeout_s=src.number("connect_timeout", "CONNECT_TIMEOUT_S", Limits.connect_timeout_s),
            read_timeout_s=src.number("read_timeout", "READ_TIMEOUT_S", Limits.read_timeout_s),
        )
        prices = Prices()
        if limits.daily_usd is not None:
            prices = Prices.from_file(Path(src.text("prices", "PRICES") or DEFAULT_PRICES))
        token = src.text("token", "TOKEN") or None
        config = cls(
            cloud=cloud or CloudConfig.from_env(env),
            host=host,
            port=port,
            token=token.strip() if token else None,
            allowed_origins=frozenset(
                normalize_origin(o) for o in src.items("allow_origin", "ALLOWED_ORIGINS")
            ),
            public_hosts=frozenset(normalize_host(h) for h in src.items("public_host", "PUBLIC_HOSTS")),
            limits=limits,
            prices=prices,
            trust_forwarded=src.flag("trust_forwarded_for", "TRUST_FORWARDED"),
            store=_store_url(src.text("store", "STORE")),
            allow_tools=src.flag("allow_tools", "ALLOW_TOOLS"),
        )
        config.validate()
        return config


def _store_url(value: str | None) -> str | None:
    name = (value or "").strip()
    if name in ("", "memory"):
        return None
    if urllib.parse.urlsplit(name).scheme not in ("redis", "rediss", "unix"):
        raise RelayConfigError(
            "HYBRID_ROUTER_RELAY_STORE (--store) is neither memory nor a redis:// URL",
            hint="Use memory (the default: one relay process) or redis://host:port/db (shared by every "
            "relay process that names the same Redis; see docs/deploying.md).",
        )
    return name


class _Source:
    """A setting from a flag (when given) or ``HYBRID_ROUTER_RELAY_<NAME>``."""

    def __init__(self, args: argparse.Namespace, env: Mapping[str, str]) -> None:
        self.args, self.env = args, env

    def _raw(self, attr: str, name: str) -> tuple[Any, str]:
        value = getattr(self.args, attr, None)
        if value is not None and value != []:
            return value, "--" + attr.replace("_", "-")
        return self.env.get("HYBRID_ROUTER_RELAY_" + name), "HYBRID_ROUTER_RELAY_" + name

    def text(self, attr: str, name: str) -> str | None:
        value, _ = self._raw(attr, name)
        return None if value is None else str(value)

    def _number(self, attr: str, name: str, convert: type[int] | type[float]) -> int | float | None:
        value, where = self._raw(attr, name)
        if value is None or str(value).strip() == "":
            return None
        try:
            number = convert(value)
        except ValueError as exc:
            raise RelayConfigError(f"{where}={value!r} is not a number", hint=f"Set {where} to one.") from exc
        if number < 0:
            raise RelayConfigError(f"{where}={value!r} is negative", hint=f"Set {where} to a number >= 0.")
        return number

    def integer(self, attr: str, name: str, default: int) -> int:
        value = self._number(attr, name, int)
        return default if value is None else int(value)

    def number(self, attr: str, name: str, default: float) -> float:
        value = self.optional_float(attr, name)
        return default if value is None else value

    def optional_float(self, attr: str, name: str) -> float | None:
        value = self._number(attr, name, float)
        return None if value is None else float(value)

    def items(self, attr: str, name: str) -> list[str]:
        value, _ = self._raw(attr, name)
        if value is None:
            return []
        items = value if isinstance(value, list) else re.split(r"[\s,]+", str(value))
        return [str(i).strip() for i in items if str(i).strip()]

    def flag(self, attr: str, name: str) -> bool:
        value, _ = self._raw(attr, name)
        return value is True or str(value).strip().lower() in ("1", "true", "yes", "on")


_ORIGIN_HINT = "Give an origin as scheme://host[:port], e.g. https://my.site or http://localhost:3000."


def normalize_origin(origin: str) -> str:
    """``scheme://host[:port]`` lower-cased, default port dropped; anything else refused."""
    parts = urllib.parse.urlsplit(origin.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    bad = parts.scheme not in ("http", "https") or not parts.hostname or port == -1
    if bad or parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise RelayConfigError(f"{origin!r} is not an origin", hint=_ORIGIN_HINT)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def normalize_host(host: str) -> str:
    """A Host value (``name`` or ``name:port``, IPv6 in brackets), lower-cased."""
    value = host.strip().lower()
    if not re.fullmatch(r"(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:[0-9]{1,5})?", value):
        raise RelayConfigError(
            f"{host!r} is not a host name", hint="Give a public host as name or name:port, e.g. my.site."
        )
    return value


def is_loopback_host(host: str) -> bool:
    """Whether binding ``host`` keeps the relay on this machine (an empty host binds every interface)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # another name: it may resolve to anything


def check_bind(host: str, token: str | None) -> None:
    """Refuse a non-loopback bind without an access token, and a token too short to be one."""
    if token is not None and len(token.strip()) < MIN_TOKEN_LENGTH:
        raise RelayConfigError(
            f"the relay token is shorter than {MIN_TOKEN_LENGTH} characters", hint=_TOKEN_HINT
        )
    if not is_loopback_host(host) and not token:
        raise RelayConfigError(
            f"refusing to bind {host or 'every interface'!r} without an access token: everyone who can "
            "reach this address could spend the cloud API key",
            hint=_TOKEN_HINT,
        )


def describe_bind(host: str, port: int) -> tuple[str, str]:
    """(the address really bound, a URL to open): ``0.0.0.0:8000`` is not ``127.0.0.1:8000``."""
    name = host.strip() or "0.0.0.0"
    wildcard = name in ("0.0.0.0", "::")
    shown = f"[{name}]" if ":" in name else name
    bound = f"{shown}:{port}" + (" (every interface)" if wildcard else "")
    url_host = "127.0.0.1" if wildcard else shown
    return bound, f"http://{url_host}:{port}/"


def add_relay_arguments(parser: argparse.ArgumentParser, *, limits: bool = True) -> None:
    """The relay's flags (``limits=False``: only access; the limits then come from the environment)."""
    group = parser.add_argument_group("cloud relay (see hybrid_router_relay/config.py)")
    group.add_argument(
        "--token",
        default=None,
        help="access token clients send as 'Authorization: Bearer <token>'; required to bind a "
        "non-loopback address (prefer HYBRID_ROUTER_RELAY_TOKEN: flags show in ps)",
    )
    group.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="an origin that may call the relay besides its own (repeatable), e.g. https://my.site",
    )
    group.add_argument(
        "--public-host",
        action="append",
        default=[],
        metavar="HOST",
        help="a Host name the relay is reached by besides its bind address (repeatable)",
    )
    group.add_argument(
        "--allow-tools",
        action="store_true",
        default=None,
        help="forward tool calling (OpenAI tools/tool_choice and tool messages, Anthropic tools); "
        "off by default: a tool call's arguments and results reach the upstream",
    )
    if not limits:
        return
    group.add_argument("--max-body-bytes", type=int, default=None, help="request body cap (default 1 MiB)")
    group.add_argument("--max-tokens", type=int, default=None, help="cap on max_tokens (default 4096)")
    group.add_argument("--rate-per-minute", type=float, default=None, help="per client (default 60; 0: off)")
    group.add_argument("--burst", type=int, default=None, help="requests a client may make at once (30)")
    group.add_argument("--daily-usd", type=float, default=None, help="daily spend cap in USD (default none)")
    group.add_argument("--prices", default=None, help="price table (default models_manifest.json)")
    group.add_argument("--connect-timeout", type=float, default=None, help="upstream connect, s (10)")
    group.add_argument("--read-timeout", type=float, default=None, help="upstream, between chunks, s (120)")
    group.add_argument(
        "--trust-forwarded-for",
        action="store_true",
        default=None,
        help="behind a reverse proxy on loopback: the client is X-Forwarded-For's last entry",
    )
    group.add_argument(
        "--store",
        default=None,
        metavar="URL",
        help="where rate limits and the day's spend live: memory (default, this process) or "
        "redis://host:port/db, shared by every relay process using it and kept across restarts",
    )
