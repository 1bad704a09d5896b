"""serve.py serves the manifest as this server built it: only the models it has built, each with the files
of its built folder (the stamp's sizes and sha256s, not the committed manifest's: trained weights differ
between machines), and the others under ``not_built`` with their build state."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import serve
from aiohttp.test_utils import TestClient, TestServer
from builder.served import NOT_BUILT_FIELDS, BuiltModels, served_manifest

from hybrid_router.manifest import Manifest

REPO = Path(__file__).resolve().parents[2]
RAW = json.loads((REPO / "models_manifest.json").read_text())
SITE: dict[str, Any] = {"mounts": {}, "boot": {}}


def committed_files(model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    files = dict(model["files"])
    for variant in model["variants"].values():
        files.update(variant["files"])
    return files


def other_machine(model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The model's files as another machine's training made them: the same names, other bytes."""
    return {
        p: {"size": f["size"] + 1, "sha256": hashlib.sha256(p.encode()).hexdigest()}
        for p, f in committed_files(model).items()
    }


def build_folder(cache: Path, model_id: str, files: dict[str, bytes]) -> Path:
    """A built folder, its stamp and index.json, as builder.models writes them."""
    folder = cache / "models" / model_id / "key1"
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    stamp = {rel: {"size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for rel, d in files.items()}
    folder.with_name("key1.stamp.json").write_text(json.dumps({"key": "key1", "files": stamp}))
    index_path = cache / "models" / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {"models": {}}
    index["models"][model_id] = {"dir": str(folder), "key": "key1"}
    index_path.write_text(json.dumps(index))
    return folder


def test_built_models_are_served_with_their_built_files() -> None:
    trained = next(m for m in RAW["models"] if m["conversion"]["recipe"] == "finetune-encoder")
    converted = RAW["models"][0]
    built = {trained["id"]: other_machine(trained), converted["id"]: committed_files(converted)}
    served = served_manifest(RAW, built)
    by_id = {m["id"]: m for m in served["models"]}
    assert list(by_id) == [m["id"] for m in RAW["models"] if m["id"] in built]  # the manifest's order
    assert committed_files(by_id[trained["id"]]) == built[trained["id"]]  # this machine's bytes...
    assert by_id[trained["id"]]["variants"].keys() == trained["variants"].keys()
    for dtype, variant in by_id[trained["id"]]["variants"].items():  # ... split by dtype like the committed
        assert variant["files"].keys() == trained["variants"][dtype]["files"].keys()
    assert by_id[converted["id"]] == converted  # a converted model: the same as committed
    Manifest.from_dict(served)  # the worker reads it as usual


def test_the_models_not_built_are_named_with_their_state_and_a_hint() -> None:
    first = RAW["models"][0]
    served = served_manifest(RAW, {first["id"]: committed_files(first)})
    assert [m["id"] for m in served["not_built"]] == [m["id"] for m in RAW["models"][1:]]
    for entry in served["not_built"]:
        assert tuple(entry) == NOT_BUILT_FIELDS
        assert entry["state"] == "skipped" and "./hr build" in entry["hint"]
    sst2 = "minilm-l6-sst2"
    job = {
        "id": sst2,
        "kind": "model",
        "title": "t",
        "state": "running",
        "step": "training",
        "detail": "epoch 1/1, step 3/9",
        "progress": 0.3,
        "eta_s": 540,
        "message": None,
        "hint": None,
    }
    entry = next(e for e in served_manifest(RAW, {}, {sst2: job})["not_built"] if e["id"] == sst2)
    assert entry == {
        "id": sst2,
        "tasks": ["text-classification"],
        "state": "running",
        "step": "training",
        "progress": 0.3,
        "eta_s": 540,
        "message": None,
        "hint": None,
    }
    everything = served_manifest(RAW, {m["id"]: committed_files(m) for m in RAW["models"]})
    assert everything == RAW and "not_built" not in everything


def test_files_that_do_not_fit_the_manifest_are_not_served() -> None:
    first = RAW["models"][0]
    odd = {**committed_files(first), "onnx/model_odd.onnx": {"size": 1, "sha256": "0" * 64}}
    served = served_manifest(RAW, {first["id"]: odd})
    assert served["models"] == [] and served["not_built"][0]["id"] == first["id"]


async def test_the_endpoint_follows_the_build_without_a_restart(tmp_path: Path) -> None:
    embedder = next(m for m in RAW["models"] if "feature-extraction" in m["tasks"])
    cache = tmp_path / "cache"
    (cache / "models").mkdir(parents=True)
    app = serve.make_app(SITE, BuiltModels(cache / "models" / "index.json"))
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/models_manifest.json")
        assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
        assert (await resp.json())["models"] == []
        # the build finishes a model (other bytes than the committed ones: a training on this machine)
        files = {p: f"built here: {p}".encode() for p in committed_files(embedder)}
        build_folder(cache, embedder["id"], files)
        body = await (await client.get("/models_manifest.json")).json()
        assert [m["id"] for m in body["models"]] == [embedder["id"]]
        served = committed_files(body["models"][0])
        assert served == {
            p: {"size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for p, d in files.items()
        }
        some = next(iter(files))
        resp = await client.get(f"/models/{embedder['id']}/{some}")
        assert resp.status == 200 and await resp.read() == files[some]
        assert len(body["not_built"]) == len(RAW["models"]) - 1
        assert str(tmp_path) not in json.dumps(body)  # no server path on the wire
