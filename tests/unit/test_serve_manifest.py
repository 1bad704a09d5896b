"""serve.py serves the manifest less the models it has not built: the router never picks a model it
cannot download (a user without the training data has no task models, and their tasks fall back)."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

import serve
from hybrid_router.manifest import Manifest

REPO = Path(__file__).resolve().parents[2]
RAW = json.loads((REPO / "models_manifest.json").read_text())


def test_only_built_models_are_served_and_the_rest_are_named_with_a_hint() -> None:
    built = {RAW["models"][0]["id"]: {"dir": "/nowhere"}}
    served = serve.served_manifest(RAW, built)
    assert [m["id"] for m in served["models"]] == [RAW["models"][0]["id"]]
    assert [m["id"] for m in served["not_built"]] == [m["id"] for m in RAW["models"][1:]]
    assert all("./hr build" in m["hint"] for m in served["not_built"])
    assert Manifest.from_dict(served).ids == (RAW["models"][0]["id"],)  # the worker reads it as usual
    everything = serve.served_manifest(RAW, {m["id"]: {} for m in RAW["models"]})
    assert everything == RAW and "not_built" not in everything


async def test_the_endpoint_serves_the_filtered_manifest(tmp_path: Path) -> None:
    embedder = next(m["id"] for m in RAW["models"] if "feature-extraction" in m["tasks"])
    site = {"mounts": {}, "boot": {}}
    app = serve.make_app(site, {"models": {embedder: {"dir": str(tmp_path)}}})
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/models_manifest.json")
        assert resp.status == 200 and "no-cache" in resp.headers["Cache-Control"]
        body = await resp.json()
    assert [m["id"] for m in body["models"]] == [embedder]
    assert len(body["not_built"]) == len(RAW["models"]) - 1
