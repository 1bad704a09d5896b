"""The default cloud tier for real: serve.py starts llama-server itself once it is built, without blocking,
and then relays to it. Uses the llama-server binary and GGUF the build made (skipped where they are not
built); it builds nothing."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest
import serve
from aiohttp.test_utils import TestClient, TestServer, unused_port
from hybrid_router_relay import CloudConfig, RelayConfig

pytestmark = pytest.mark.slow


@pytest.fixture
def built_tier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache that has the shared cache's llama-server build and GGUFs (linked, read only)."""
    from builder import llama
    from builder.common import cache_root

    shared = cache_root()
    if not llama.cloud_tier_built():
        pytest.skip("the default cloud tier is not built here (python -m builder llama)")
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in ("llama.cpp", "gguf"):
        os.symlink(shared / name, cache / name)
    monkeypatch.setenv("HYBRID_ROUTER_CACHE", str(cache))  # llama-server's log goes here
    assert llama.cloud_tier_built()
    return cache


async def test_the_server_starts_the_built_cloud_tier_and_relays_to_it(built_tier: Path) -> None:
    tier = serve.CloudTier(CloudConfig(), default=True, build=None)
    port = unused_port()  # the relay answers only for the host it serves
    app = serve.make_app(
        {"mounts": {}, "boot": {}}, {"models": {}}, relay=RelayConfig.from_env({}, port=port), tier=tier
    )
    async with TestClient(TestServer(app, port=port)) as client:
        first: dict[str, Any] = await (await client.get("/api/cloud/config")).json()
        assert first["available"] is False and first["starting"] is True  # answered while it starts
        deadline = time.monotonic() + 120
        while not (body := await (await client.get("/api/cloud/config")).json())["available"]:
            assert time.monotonic() < deadline, body
            await asyncio.sleep(0.2)
        assert body["model"] == "qwen2.5-coder-0.5b-instruct" and "127.0.0.1" not in str(body)
        resp = await client.post(
            "/api/cloud/chat/completions",
            json={
                "model": body["model"],
                "messages": [{"role": "user", "content": "Say hi."}],
                "max_tokens": 4,
            },
            headers={"Origin": f"http://127.0.0.1:{port}"},
        )
        assert resp.status == 200 and (await resp.json())["choices"][0]["message"]["content"]
    assert tier.server is None  # stopped with the app
