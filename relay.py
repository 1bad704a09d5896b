"""Run Hybrid Router's cloud relay alone: ``python relay.py --port 8787 --allow-origin https://my.site``.

The cloud comes from HYBRID_ROUTER_CLOUD_* and the defences from flags or HYBRID_ROUTER_RELAY_*
(``python relay.py --help``; hybrid_router_relay/config.py). Needs only aiohttp (and redis, for
``--store redis://host:port/db``: limits and spend shared by several relay processes).
"""

from __future__ import annotations

import sys

from hybrid_router_relay.cli import main

if __name__ == "__main__":
    sys.exit(main())
