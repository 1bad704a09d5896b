"""Hybrid Router's cloud relay: the one place that holds the provider's API key.

An aiohttp application that forwards the page's chat calls to one configured provider, safe by default
(:mod:`.app` lists the checks in order; :mod:`.access` who may call; :mod:`.body` what a call may ask;
:mod:`.limits` how much, kept by :mod:`.store` (this process, or Redis for many); :mod:`.forward`
the upstream call and the mid-stream abort; :mod:`.errors` the answers; :mod:`.config` every
setting). serve.py mounts :func:`relay_app` at ``/api/cloud``; ``python relay.py`` runs
:func:`standalone_app` alone.
"""

from __future__ import annotations

from .app import RELAY, STATE, RelayState, relay_app, standalone_app
from .config import (
    ENDPOINTS,
    MOUNT,
    CloudConfig,
    Limits,
    RelayConfig,
    add_relay_arguments,
    check_bind,
    describe_bind,
    is_loopback_host,
)
from .errors import RelayConfigError, RelayError
from .limits import Prices, RateLimiter, SpendLedger
from .store import MemoryStore, RedisStore, RelayStore, open_store

__all__ = [
    "ENDPOINTS",
    "MOUNT",
    "RELAY",
    "STATE",
    "CloudConfig",
    "Limits",
    "MemoryStore",
    "Prices",
    "RateLimiter",
    "RedisStore",
    "RelayConfig",
    "RelayConfigError",
    "RelayError",
    "RelayState",
    "RelayStore",
    "SpendLedger",
    "add_relay_arguments",
    "check_bind",
    "describe_bind",
    "is_loopback_host",
    "open_store",
    "relay_app",
    "standalone_app",
]
