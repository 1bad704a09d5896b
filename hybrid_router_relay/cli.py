"""``python relay.py``: the relay alone, for an operator to put behind their own site.

    HYBRID_ROUTER_CLOUD_BASE_URL=https://api.openai.com/v1 HYBRID_ROUTER_CLOUD_MODEL=gpt-4o-mini \\
    HYBRID_ROUTER_CLOUD_API_KEY=sk-... python relay.py --port 8787 --allow-origin https://my.site

Every setting: :mod:`hybrid_router_relay.config`. Exit status 2 for a setting it cannot start with.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from aiohttp import web

from .app import standalone_app
from .config import MOUNT, RelayConfig, add_relay_arguments, describe_bind
from .errors import RelayConfigError

__all__ = ["main"]


def parse_config(argv: list[str] | None = None) -> tuple[RelayConfig, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="relay.py",
        description="Hybrid Router's cloud relay: the page's chat calls to one provider, with its key.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8787, help="port (default 8787)")
    add_relay_arguments(parser)
    args = parser.parse_args(argv)
    config = RelayConfig.from_args(args, os.environ, host=args.host, port=args.port)
    if not config.cloud.available:
        raise RelayConfigError(
            "no cloud provider is configured",
            hint="Set HYBRID_ROUTER_CLOUD_BASE_URL and HYBRID_ROUTER_CLOUD_MODEL (and _API_KEY, _KIND).",
        )
    return config, args


def main(argv: list[str] | None = None) -> int:
    try:
        config, args = parse_config(argv)
    except RelayConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    bound, url = describe_bind(args.host, args.port)
    cloud = config.cloud
    print(
        f"Hybrid Router relay on {bound}: POST {url.rstrip('/')}{MOUNT}{cloud.endpoint} goes to the "
        f"{cloud.kind} provider as model {cloud.model!r}; origins allowed besides its own: "
        f"{', '.join(sorted(config.allowed_origins)) or 'none'}; access token "
        f"{'required' if config.token else 'off (loopback only)'}; limits and spend kept "
        f"{'in Redis (shared)' if config.store else 'in this process'}  (Ctrl+C to stop)",
        flush=True,
    )
    try:
        web.run_app(
            standalone_app(config),
            host=args.host,
            port=args.port,
            print=None,
            access_log=None,
            handler_cancellation=True,
        )
    except RelayConfigError as exc:  # the store (--store redis://...) could not be reached at start
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
